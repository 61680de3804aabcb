// SPDX-License-Identifier: Apache-2.0
/*
 * Allocation-failure injection over the VMM's passthrough side on a real KVM machine:
 * devices_create (iommufd context, IOAS with guest RAM, MSI window, stage-2 HWPT, the sdma
 * device bound with BAR0 on the bus and its doorbell ioeventfd, the vSMMU on the bus with
 * its nested bridge, the event loop) then devices_destroy. Every failure must come back
 * as an error with nothing leaked and nothing left on the machine's bus, so that the next
 * attempt on the same machine and host succeeds. Then an incoming migration (a file:
 * stream of a running guest into a fresh VM) the same way: every failure is a refusal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "failnth.h"
#include "tests/vmm/sys_util.h"
#include "vmig/guest_abi.h"
#include "vmig/host_platform.h"
#include "vmm/bus.h"
#include "vmm/devices.h"
#include "vmm/kvm/vm.h"
#include "tests/migration/mig_rig.h"

struct dev_rig {
	struct host_platform *hp;
	struct sys_vm vm;
};

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* Nothing of the devices may stay on the bus after a failed create or a destroy. */
static bool bus_clean(struct machine *m)
{
	uint64_t v = 0;

	return !bus_access(m->bus, BUS_MMIO, VMIG_SDMA_BAR0, 8, false, &v) &&
	       !bus_access(m->bus, BUS_MMIO, VMIG_VSMMU_BASE, 4, false, &v);
}

static int scenario_devices(void *arg)
{
	struct dev_rig *r = arg;
	struct devices *d = NULL;
	int saved = dup(2), null = open("/dev/null", O_WRONLY);
	int rc;

	/* Each failure is explained on stderr; a hundred of them here. */
	fflush(stderr);
	dup2(null, 2);
	rc = devices_create(r->vm.m, NULL, &d);
	dup2(saved, 2);
	close(saved);
	close(null);
	if (rc == 0 && (!d->sdma || !d->vsmmu || !d->nested || !d->loop_live))
		rc = 1;
	if (d)
		devices_destroy(d);
	if (!bus_clean(r->vm.m))
		return 1; /* a wrong result: the bus still routes to freed devices */
	return rc;
}

static void test_failnth_devices(void **state)
{
	struct dev_rig r;
	int fds;

	assert_int_equal(host_platform_boot(NULL, &r.hp), 0);
	sys_vm_create_empty(&r.vm, 64 * MiB, 1);
	/* One full round first: the host starts its services (threads, fds) and keeps them. */
	assert_int_equal(scenario_devices(&r), 0);
	fds = open_fds();
	assert_true(failnth_run("devices", scenario_devices, &r, 2000) > 10);
	assert_int_equal(open_fds(), fds);
	sys_vm_destroy(&r.vm);
	host_platform_shutdown(r.hp);
}

static const char *image;

struct state_rig {
	char path[64];
	unsigned loaded;
};

/* A fresh VM each run (a loaded one runs and cannot load again), then the stream into it. */
static int scenario_incoming(void *arg)
{
	struct state_rig *r = arg;
	struct machine_config cfg = {.mem_size = 32 * MiB, .nr_vcpus = 2};
	struct machine *m = NULL;
	char err[256];
	int saved = dup(2), null = open("/dev/null", O_WRONLY);
	int rc;

	fflush(stderr);
	dup2(null, 2);
	rc = machine_create(&cfg, &m);
	if (rc == 0)
		rc = rig_load_file(m, r->path, err, sizeof(err));
	r->loaded += rc == 0;
	machine_destroy(m);
	dup2(saved, 2);
	close(saved);
	close(null);
	return rc;
}

static void test_failnth_incoming(void **state)
{
	struct state_rig r = {0};
	struct sys_vm src;

	snprintf(r.path, sizeof(r.path), "/tmp/vmig-failnth-%d", getpid());
	sys_vm_create(&src, image, 32 * MiB, 2, VM_DIRTY_AUTO, "i 1000");
	assert_int_equal(machine_start(src.m), 0);
	assert_int_equal(machine_wait_mark(src.m, 1, 10000), 0);
	assert_int_equal(rig_save_file(src.m, r.path), 0);
	sys_vm_destroy(&src);
	assert_true(failnth_run("incoming", scenario_incoming, &r, 4000) > 3);
	assert_true(r.loaded >= 1);
	unlink(r.path);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_failnth_devices),
	    cmocka_unit_test(test_failnth_incoming),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s TESTGUEST.bin\n", argv[0]);
		return 1;
	}
	image = argv[1];
	sys_require_kvm();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
