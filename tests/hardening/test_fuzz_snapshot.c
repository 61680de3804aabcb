// SPDX-License-Identifier: Apache-2.0
/*
 * The machine-state stream (snapshot_read_state: KVM clock, irqchip, every vCPU, RAM
 * records) from a corrupt or truncated source: mutated copies of a real stream are read
 * into a fresh VM that never runs. Every one is refused or accepted without a crash, a
 * hang or a leak, and afterwards the real stream still loads into the same VM.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "fuzz.h"
#include "tests/vmm/sys_util.h"
#include "vmm/kvm/vm.h"
#include "vmm/snapshot.h"

#define MEM   (32 * MiB)
#define VCPUS 2

static const char *image;

/* The state of a guest that has run (its timer armed, vCPUs in real code). */
static char *good_stream(size_t *len)
{
	struct sys_vm src;
	char *buf = NULL;
	FILE *w;

	sys_vm_create(&src, image, MEM, VCPUS, VM_DIRTY_AUTO, "i 1000");
	assert_int_equal(machine_start(src.m), 0);
	assert_int_equal(machine_wait_mark(src.m, 1, 10000), 0);
	assert_int_equal(vm_pause(src.m->vm, VM_PAUSE_INTERNAL), 0);
	w = open_memstream(&buf, len);
	assert_int_equal(snapshot_write_state(src.m, w), 0);
	fclose(w);
	sys_vm_destroy(&src);
	return buf;
}

static int read_state(struct machine *m, const uint8_t *buf, size_t len)
{
	FILE *r = fmemopen((void *)buf, len ? len : 1, "rb");
	int saved = dup(2), null = open("/dev/null", O_WRONLY);
	int rc;

	assert_non_null(r);
	if (!len)
		fgetc(r); /* an empty stream: fmemopen wants a size */
	/* KVM's refusals are explained on stderr; thousands of them here. */
	fflush(stderr);
	dup2(null, 2);
	rc = snapshot_read_state(m, r);
	dup2(saved, 2);
	close(saved);
	close(null);
	fclose(r);
	return rc;
}

static void test_fuzz_state_stream(void **state)
{
	struct sys_vm dst;
	size_t good_len, cap, len;
	char *good = good_stream(&good_len);
	uint8_t *buf;
	unsigned accepted = 0;
	struct fuzz z;

	cap = good_len + 4096;
	buf = malloc(cap);
	sys_vm_create_empty(&dst, MEM, VCPUS);
	fuzz_begin(&z, "state_stream", 2000);
	while (fuzz_next(&z, 50)) {
		int rc;

		len = good_len;
		memcpy(buf, good, len);
		fuzz_mutate(&z, buf, &len, cap);
		rc = read_state(dst.m, buf, len);
		assert_true(rc <= 0);
		accepted += rc == 0;
	}
	fuzz_end(&z);
	printf("accepted %u\n", accepted);
	assert_int_equal(read_state(dst.m, (const uint8_t *)good, good_len), 0);
	sys_vm_destroy(&dst);
	free(buf);
	free(good);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fuzz_state_stream),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s TESTGUEST.bin\n", argv[0]);
		return 1;
	}
	image = argv[1];
	sys_require_kvm();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
