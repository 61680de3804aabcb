// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target (-Dfuzz=true, needs /dev/kvm): the incoming migration stream, loaded as a
 * file: migration into a 64 MiB, 1-vCPU VM that never ran. Seed it with a real stream:
 *   build/src/vmm/vmig run --no-devices --mem 64M --save seed/1 --save-after 500 \
 *       --guest-args 'workload=dirty,verify secs=2 ws=8M'
 *   build-fuzz/tests/hardening/fuzz/fuzz_incoming seed -max_total_time=600
 * A refused stream leaves the VM unrun; an accepted one runs, and the VM is made anew.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/machine.h"
#include "vmm/migration/migration.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct machine *fuzz_m;

static void fuzz_quiet_console(void *opaque, const char *line)
{
}

static struct machine *fuzz_machine(void)
{
	struct machine_config cfg = {
	    .mem_size = 64u << 20, .nr_vcpus = 1, .console = fuzz_quiet_console};
	if (fuzz_m && fuzz_m->vm->started) {
		machine_destroy(fuzz_m);
		fuzz_m = NULL;
	}
	if (!fuzz_m && machine_create(&cfg, &fuzz_m) < 0)
		abort();
	return fuzz_m;
}

static void fuzz_done(void *opaque, bool ok)
{
	__atomic_store_n((int *)opaque, ok ? 1 : -1, __ATOMIC_RELEASE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int done = 0, fd = memfd_create("fuzz-stream", 0);
	struct mig_hooks h = {.incoming_done = fuzz_done, .opaque = &done};
	struct migration *mig = NULL;
	char uri[64], err[512];

	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	snprintf(uri, sizeof(uri), "file:/proc/self/fd/%d", fd);
	if (migration_create(fuzz_machine(), &h, &mig) == 0 &&
	    migration_incoming(mig, uri, err, sizeof(err)) == 0) {
		while (!__atomic_load_n(&done, __ATOMIC_ACQUIRE))
			usleep(100);
	}
	migration_destroy(mig);
	close(fd);
	return 0;
}
