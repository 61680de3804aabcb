// SPDX-License-Identifier: Apache-2.0
/*
 * Who stops the vCPUs, and how fast they run: pause owners (a user's resume must not
 * restart vCPUs the migration holds) and vCPU throttling for auto-converge. The guest is
 * the test guest's 64-bit ring-3 write loop ("W N"): it never exits to the VMM, so its
 * progress (the generation number it writes at 16 MiB) only moves while a vCPU really runs
 * guest code, and only a kick from the VMM can take it out of KVM_RUN.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/util.h"
#include "sys_util.h"

#define TOUCH_GPA 0x1000000ull
#define WAIT_MS	  10000

static const char *image;

/* The generation the guest's write loop has reached (word 0 of its first page). */
static uint32_t guest_progress(struct sys_vm *s)
{
	const volatile uint32_t *p = guest_mem_ptr(s->m->mem, TOUCH_GPA, 4);
	assert_non_null((const void *)p);
	return *p;
}

/* Waits up to WAIT_MS for the guest to make progress at all (it has to boot first). */
static void wait_progress(struct sys_vm *s)
{
	uint32_t start = guest_progress(s);
	for (int i = 0; i < WAIT_MS && guest_progress(s) == start; i++)
		usleep(1000);
	assert_int_not_equal(guest_progress(s), start);
}

static void start_write_loop(struct sys_vm *s, unsigned vcpus)
{
	sys_vm_create(s, image, 64 * MiB, vcpus, VM_DIRTY_AUTO, "W 4");
	assert_int_equal(machine_start(s->m), 0);
	wait_progress(s);
}

/* The guest's progress over ms milliseconds. */
static uint32_t progress_over(struct sys_vm *s, unsigned ms)
{
	uint32_t a = guest_progress(s);
	usleep(ms * 1000u);
	return guest_progress(s) - a;
}

static void test_pause_owners_nest(void **state)
{
	struct sys_vm s;

	start_write_loop(&s, 2);
	struct vm *vm = s.m->vm;
	assert_int_equal(vm_pause(vm, VM_PAUSE_USER), 0);
	assert_int_equal(vm_pause(vm, VM_PAUSE_MIGRATION), 0);
	assert_int_equal(vm_pause_owners(vm), VM_PAUSE_USER | VM_PAUSE_MIGRATION);
	assert_int_equal(progress_over(&s, 50), 0);

	/* The user's `cont` while the migration holds the vCPUs: they stay parked. */
	vm_resume(vm, VM_PAUSE_USER);
	assert_int_equal(vm_pause_owners(vm), VM_PAUSE_MIGRATION);
	assert_true(vm_is_paused(vm));
	assert_int_equal(progress_over(&s, 100), 0);
	assert_true(vm_is_paused(vm));

	/* Resuming an owner that holds nothing changes nothing either. */
	vm_resume(vm, VM_PAUSE_INTERNAL);
	assert_true(vm_is_paused(vm));
	assert_int_equal(progress_over(&s, 20), 0);

	/* The last holder lets go: the guest runs again. */
	vm_resume(vm, VM_PAUSE_MIGRATION);
	assert_int_equal(vm_pause_owners(vm), 0);
	assert_false(vm_is_paused(vm));
	wait_progress(&s);
	sys_vm_destroy(&s);
}

/* Guest progress per 100 ms over a 600 ms window (after 100 ms to settle). */
static double progress_rate(struct sys_vm *s)
{
	usleep(100000);
	return progress_over(s, 600) / 6.0;
}

static void test_throttle_slows_ring3_guest(void **state)
{
	struct sys_vm s;

	start_write_loop(&s, 2);
	struct vm *vm = s.m->vm;
	assert_int_equal(vm_get_throttle(vm), 0);
	assert_int_equal(vm_set_throttle(vm, 100), -EINVAL);
	double full = progress_rate(&s);
	assert_int_equal(vm_set_throttle(vm, 80), 0);
	assert_int_equal(vm_get_throttle(vm), 80);
	double slow = progress_rate(&s);
	printf("progress per 100 ms: %.0f at 0%%, %.0f at 80%% (%.2fx)\n", full, slow, slow / full);
	assert_true(full > 0);
	assert_true(slow < 0.6 * full);
	assert_true(slow > 0);

	/* A pause while throttled stops the guest, and the throttle survives it. */
	assert_int_equal(vm_pause(vm, VM_PAUSE_MIGRATION), 0);
	assert_true(vm_is_paused(vm));
	assert_int_equal(progress_over(&s, 50), 0);
	assert_true(vm_is_paused(vm));
	vm_resume(vm, VM_PAUSE_MIGRATION);
	assert_int_equal(vm_get_throttle(vm), 80);
	wait_progress(&s);

	/* Off again: back to (about) full speed. */
	assert_int_equal(vm_set_throttle(vm, 0), 0);
	double again = progress_rate(&s);
	printf("progress per 100 ms after the throttle is off: %.0f\n", again);
	assert_true(again > 0.6 * full);
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
	    cmocka_unit_test(test_pause_owners_nest),
	    cmocka_unit_test(test_throttle_slows_ring3_guest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
