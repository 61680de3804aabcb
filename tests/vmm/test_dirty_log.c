// SPDX-License-Identifier: Apache-2.0
/*
 * Dirty logging is exact: the test guest ("t N") writes N known pages between two
 * checkpoints and nothing else (no stack or data writes in that stretch), the VMM writes
 * one page (the FLAG that releases the guest) through guest_mem_write(). The harvest must
 * hold exactly those pages; a harvest after a quiet period must be empty. Both for the
 * dirty bitmap (manual protect, chunked clear) and for the dirty ring where KVM has it.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/bitmap.h"
#include "common/util.h"
#include "sys_util.h"

#define FLAG_GPA  0x200000ull
#define TOUCH_GPA 0x1000000ull
#define NPAGES	  37
#define WAIT_MS	  10000

static const char *image;

static void expect_exact(const uint64_t *map, uint64_t nbits)
{
	uint64_t *want = bitmap_alloc(nbits);
	assert_non_null(want);
	bitmap_set(want, FLAG_GPA >> 12);
	for (unsigned k = 0; k < NPAGES; k++)
		bitmap_set(want, (TOUCH_GPA >> 12) + 3 * k);
	for (uint64_t i = bitmap_find_next_set(map, nbits, 0); i < nbits;
	     i = bitmap_find_next_set(map, nbits, i + 1)) {
		if (!bitmap_test(want, i))
			fail_msg("page %#lx reported dirty but not written", (unsigned long)i);
	}
	for (uint64_t i = bitmap_find_next_set(want, nbits, 0); i < nbits;
	     i = bitmap_find_next_set(want, nbits, i + 1)) {
		if (!bitmap_test(map, i))
			fail_msg("page %#lx written but not reported", (unsigned long)i);
	}
	free(want);
}

static void run_exact(enum vm_dirty_mode mode, uint64_t mem)
{
	struct sys_vm s;
	uint32_t flag;

	sys_vm_create(&s, image, mem, 2, mode, "t 37");
	struct vm *vm = s.m->vm;
	if (mode == VM_DIRTY_RING)
		assert_true(vm->ring);
	printf("dirty mode: %s\n", vm_dirty_mode_name(vm));
	uint64_t nbits = vm_dirty_pages(vm);
	uint64_t *map = bitmap_alloc(nbits);
	assert_int_equal(machine_start(s.m), 0);
	assert_int_equal(machine_wait_mark(s.m, 1, WAIT_MS), 0);

	/* Logging starts with every RAM page dirty. */
	assert_int_equal(vm_dirty_log_start(vm), 0);
	assert_int_equal(vm_dirty_harvest(vm, map), (long)(mem >> 12));
	assert_int_equal(bitmap_count(map, nbits), mem >> 12);
	bitmap_zero(map, nbits);

	flag = 1;
	assert_int_equal(guest_mem_write(s.m->mem, FLAG_GPA, &flag, 4), 0);
	assert_int_equal(machine_wait_mark(s.m, 2, WAIT_MS), 0);
	long n = vm_dirty_harvest(vm, map);
	assert_int_equal(n, NPAGES + 1);
	expect_exact(map, nbits);

	/* The guest now only reads FLAG: nothing may be reported. */
	usleep(50000);
	bitmap_zero(map, nbits);
	assert_int_equal(vm_dirty_harvest(vm, map), 0);
	assert_true(bitmap_empty(map, nbits));

	flag = 2;
	assert_int_equal(guest_mem_write(s.m->mem, FLAG_GPA, &flag, 4), 0);
	assert_int_equal(machine_wait(s.m, WAIT_MS), 0);
	assert_int_equal(vm_dirty_log_stop(vm), 0);
	free(map);
	sys_vm_destroy(&s);
}

static void test_exact_bitmap(void **state)
{
	run_exact(VM_DIRTY_BITMAP, 64 * MiB);
}

static void test_exact_bitmap_with_hole(void **state)
{
	/* RAM above 4 GiB: a second memslot, bitmap bits indexed by GPA across the hole. */
	run_exact(VM_DIRTY_BITMAP, 5 * GiB);
}

static void test_exact_ring(void **state)
{
	struct vm_config probe = {.nr_vcpus = 1, .dirty_mode = VM_DIRTY_RING};
	struct vm *vm;
	if (vm_open(&probe, &vm) < 0)
		skip();
	vm_close(vm);
	run_exact(VM_DIRTY_RING, 64 * MiB);
}

/*
 * A harvest whose KVM_CLEAR_DIRTY_LOG fails on the second 128 MiB chunk of a slot: every
 * page it fetched is already in the caller's bitmap (merge before re-protect), the log is
 * then broken (-EIO, never a silent retry) until it is restarted, and a restart reports
 * every page again.
 */
static void test_harvest_failure_part_way(void **state)
{
	const uint64_t mem = 512 * MiB; /* one slot, four clear chunks */
	struct sys_vm s;

	sys_vm_create(&s, image, mem, 1, VM_DIRTY_BITMAP, "W 4");
	struct vm *vm = s.m->vm;
	if (!vm->manual_protect) {
		sys_vm_destroy(&s);
		skip();
	}
	uint64_t nbits = vm_dirty_pages(vm);
	uint64_t *map = bitmap_alloc(nbits);
	assert_int_equal(machine_start(s.m), 0);
	assert_int_equal(vm_dirty_log_start(vm), 0);

	vm_dirty_fail_clear_nth = 2;
	assert_int_equal(vm_dirty_harvest(vm, map), -EIO);
	assert_int_equal(vm_dirty_fail_clear_nth, 0);
	assert_int_equal(bitmap_count(map, nbits), mem >> 12);

	/* Broken: later harvests fail and report nothing, even with KVM working again. */
	bitmap_zero(map, nbits);
	assert_int_equal(vm_dirty_harvest(vm, map), -EIO);
	assert_int_equal(vm_dirty_harvest(vm, map), -EIO);
	assert_true(bitmap_empty(map, nbits));

	assert_int_equal(vm_dirty_log_stop(vm), 0);
	assert_int_equal(vm_dirty_log_start(vm), 0);
	assert_true(vm_dirty_harvest(vm, map) >= (long)(mem >> 12));
	assert_int_equal(bitmap_count(map, nbits), mem >> 12);
	assert_int_equal(vm_dirty_log_stop(vm), 0);
	free(map);
	sys_vm_destroy(&s);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s TESTGUEST.bin\n", argv[0]);
		return 2;
	}
	image = argv[1];
	sys_require_kvm();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_exact_bitmap),
	    cmocka_unit_test(test_exact_bitmap_with_hole),
	    cmocka_unit_test(test_exact_ring),
	    cmocka_unit_test(test_harvest_failure_part_way),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
