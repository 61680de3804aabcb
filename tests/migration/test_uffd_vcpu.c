// SPDX-License-Identifier: Apache-2.0
/*
 * Post-copy's vCPU side on this host's KVM (issue 12): a running guest's vCPU that writes
 * into guest pages registered absent (src/vmm/migration/uffd.c) blocks in KVM until the
 * page is placed, then goes on; its write lands on the placed content, not on zeros. The
 * guest's `touch` step writes one 64-bit word into each of 16 pages; this test places
 * each page with a pattern only when its fault arrives, and checks every page afterwards:
 * the pattern with the guest's word (GPA ^ seed) in it. One page is answered only after a
 * pause, during which the guest must not have finished. The negative control: without the
 * registration the same pages hold zeros around the guest's word.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "../vmm/sys_util.h"
#include "vmig/guest_abi.h"
#include "vmm/guest_mem.h"
#include "vmm/migration/uffd.h"

#define PAGE	    4096u
#define TOUCH_BASE  0x8000000ull /* free RAM well above the image and the working set */
#define TOUCH_PAGES 16u
#define WAIT_MS	    60000
#define GUEST_SEED  0x5eedull /* the guest writes GPA ^ seed into each page */
#define WITHHELD    7u	      /* its fault is answered only after a pause */

static const char *image;

static void pattern(uint8_t *page, unsigned i)
{
	for (unsigned b = 0; b < PAGE; b++)
		page[b] = (uint8_t)(0x5A ^ (i * 29 + b * 3));
}

/* In place: the machine keeps a pointer to the console inside *vm. */
static void boot_touch(struct sys_vm *vm)
{
	char cmd[128];

	/* Two vCPUs as tests/vmm's touch test: the second quiesces while the first touches. */
	snprintf(cmd, sizeof(cmd),
		 "cpus=2 workload=idle,touch secs=1 touch=%#llx,%u,%#x ws=1M seed=%#llx",
		 (unsigned long long)TOUCH_BASE, TOUCH_PAGES, PAGE, GUEST_SEED);
	sys_vm_create(vm, image, 256 << 20, 2, VM_DIRTY_AUTO, cmd);
}

/* The guest cannot finish touching while one of its pages is absent. */
static void withhold(struct sys_vm *vm)
{
	usleep(300000);
	assert_int_not_equal(machine_wait_mark(vm->m, VMIG_MARK_TOUCHED, 0), 0);
}

/*
 * Serves faults until every touched page was placed; returns the faults seen, or 0 at once
 * if the guest finished touching without a single fault.
 */
static unsigned serve_faults(struct sys_vm *vm, struct mig_uffd *u)
{
	uint8_t page[PAGE];
	unsigned faults = 0;
	uint64_t off;
	bool write;

	for (unsigned placed = 0, waited = 0; placed < TOUCH_PAGES;) {
		int ret = mig_uffd_next_fault(u, 100, &off, &write);
		if (ret == -ETIMEDOUT && !faults &&
		    machine_wait_mark(vm->m, VMIG_MARK_TOUCHED, 0) == 0)
			return 0;
		assert_true(ret == 0 || (ret == -ETIMEDOUT && (waited += 100) < WAIT_MS));
		if (ret < 0)
			continue;
		faults++;
		unsigned i = (unsigned)(off / PAGE);
		assert_true(i < TOUCH_PAGES);
		pattern(page, i);
		if (i == WITHHELD)
			withhold(vm);
		ret = mig_uffd_place(u, off, page);
		assert_true(ret == 0 || ret == -EEXIST); /* a fault read twice: placed already */
		placed += ret == 0;
	}
	return faults;
}

/* Touched pages holding the pattern around the guest's own word (GPA ^ seed, first). */
static unsigned pages_with_pattern(struct sys_vm *vm)
{
	uint8_t want[PAGE];
	unsigned n = 0;

	for (unsigned i = 0; i < TOUCH_PAGES; i++) {
		uint64_t gpa = TOUCH_BASE + (uint64_t)i * PAGE, word = gpa ^ GUEST_SEED;
		uint8_t *p = guest_mem_ptr(vm->m->mem, gpa, PAGE);
		assert_non_null(p);
		pattern(want, i);
		memcpy(want, &word, sizeof(word));
		assert_memory_equal(p, &word, sizeof(word)); /* the guest's write landed */
		n += memcmp(p, want, PAGE) == 0;
	}
	return n;
}

static void test_vcpu_blocks_until_placed(void **state)
{
	struct sys_vm vm;

	boot_touch(&vm);
	struct mig_uffd *u;
	char err[256];

	uint8_t *base = guest_mem_ptr(vm.m->mem, TOUCH_BASE, TOUCH_PAGES * PAGE);
	assert_non_null(base);
	if (mig_uffd_open(base, TOUCH_PAGES * PAGE, &u, err, sizeof(err)) < 0) {
		printf("SKIP: %s\n", err);
		sys_vm_destroy(&vm);
		skip();
	}
	assert_int_equal(machine_start(vm.m), 0);
	unsigned faults = serve_faults(&vm, u);
	if (!faults)
		fail_msg("the guest wrote into pages registered absent without a single fault");
	assert_int_equal(machine_wait_mark(vm.m, VMIG_MARK_TOUCHED, WAIT_MS), 0);
	assert_true(sys_console_line_has(&vm, "workload=touch", "status=ok"));
	unsigned good = pages_with_pattern(&vm);
	struct mig_uffd_stats st;
	mig_uffd_stats(u, &st);
	printf("faults %u, placed %llu, every page kept what was placed: %u/%u\n", faults,
	       (unsigned long long)st.placed, good, TOUCH_PAGES);
	assert_int_equal(good, TOUCH_PAGES);
	mig_uffd_close(u);
	sys_vm_destroy(&vm);
}

/* The same guest without the registration: its pages never see the pattern. */
static void test_negative_control(void **state)
{
	struct sys_vm vm;

	boot_touch(&vm);

	assert_int_equal(machine_start(vm.m), 0);
	assert_int_equal(machine_wait_mark(vm.m, VMIG_MARK_TOUCHED, WAIT_MS), 0);
	assert_int_equal(pages_with_pattern(&vm), 0);
	sys_vm_destroy(&vm);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vcpu_blocks_until_placed),
	    cmocka_unit_test(test_negative_control),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s GUEST_IMAGE\n", argv[0]);
		return 2;
	}
	image = argv[1];
	sys_require_kvm();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
