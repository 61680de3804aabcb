// SPDX-License-Identifier: Apache-2.0
/*
 * The real guest firmware (guest/, docs/guest.md) on the VMM: boot on 1 and 4 vCPUs with
 * timer interrupts, every workload (idle, dirty+verify, touch, ipi, irqwait with the VMM's
 * MSIs), RAM above the MMIO hole used for real (a working set above 4 GiB, and one spanning
 * the hole), the guest's exit status, and dirty logging against the touch workload (bitmap
 * and ring).
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
#include "vmig/guest_abi.h"
#include "vmm/kvm/vcpu_state.h"
#include "sys_util.h"

#define WAIT_MS 20000

static const char *image;

/* Creates the VM with "cpus=N" in front of cmd, as vmig run does for the firmware. */
static void create_fw(struct sys_vm *s, uint64_t mem, unsigned vcpus, enum vm_dirty_mode mode,
		      const char *cmd)
{
	char full[256];

	snprintf(full, sizeof(full), "cpus=%u %s", vcpus, cmd);
	sys_vm_create(s, image, mem, vcpus, mode, full);
}

static void boot_and_expect(unsigned vcpus, uint64_t mem, const char *cmd, int status,
			    struct sys_vm *s)
{
	create_fw(s, mem, vcpus, VM_DIRTY_AUTO, cmd);
	assert_int_equal(machine_start(s->m), 0);
	assert_int_equal(machine_wait(s->m, WAIT_MS), status);
}

static void test_idle_timer_smp(void **state)
{
	const unsigned vcpus[] = {1, 4};

	for (size_t i = 0; i < ARRAY_SIZE(vcpus); i++) {
		struct sys_vm s;
		char want[32];
		boot_and_expect(vcpus[i], 128 * MiB, "workload=idle secs=1", 0, &s);
		snprintf(want, sizeof(want), "vcpus=%u", vcpus[i]);
		assert_true(sys_console_line_has(&s, "BOOT", want));
		assert_true(sys_console_line_has(&s, "RESULT workload=idle", "status=ok"));
		/* ~100 Hz for a second on every vCPU: the in-kernel LAPIC timer works. */
		for (unsigned c = 0; c < vcpus[i]; c++) {
			char tag[32];
			snprintf(tag, sizeof(tag), "IRQS cpu=%u ", c);
			assert_true(sys_console_value(&s, tag, "timer=") >= 50);
		}
		sys_vm_destroy(&s);
	}
}

/*
 * A pause lifted before the vCPU threads ran (vmig restore's load, --qmp-wait then cont)
 * left its kick behind: each thread then met immediate_exit on every KVM_RUN and spun at
 * -EINTR forever, the guest never running (seen in CI's qmp_restore). The guest must run.
 */
static void test_pause_lifted_before_start(void **state)
{
	struct sys_vm s;

	create_fw(&s, 128 * MiB, 2, VM_DIRTY_AUTO, "workload=idle secs=1");
	assert_int_equal(vm_pause(s.m->vm, VM_PAUSE_INTERNAL), 0);
	vm_resume(s.m->vm, VM_PAUSE_INTERNAL);
	assert_int_equal(machine_start(s.m), 0);
	assert_int_equal(machine_wait(s.m, 20000), 0);
	assert_true(sys_console_line_has(&s, "RESULT workload=idle", "status=ok"));
	sys_vm_destroy(&s);
}

static void test_dirty_verify_and_ipi(void **state)
{
	struct sys_vm s;

	boot_and_expect(2, 256 * MiB, "workload=dirty,verify,ipi secs=1 ws=32M", 0, &s);
	assert_true(sys_console_line_has(&s, "RESULT workload=dirty", "status=ok"));
	assert_true(sys_console_line_has(&s, "RESULT workload=verify", "mismatches=0"));
	assert_true(sys_console_line_has(&s, "RESULT workload=verify", "status=ok"));
	assert_true(sys_console_line_has(&s, "RESULT workload=ipi", "status=ok"));
	sys_vm_destroy(&s);
}

static void test_working_set_above_hole(void **state)
{
	struct sys_vm s;

	/* 6 GiB: the working set lives above 4 GiB, in the second memslot. */
	boot_and_expect(2, 6 * GiB, "workload=dirty,verify secs=1 ws=64M wsbase=0x140000000", 0,
			&s);
	assert_true(sys_console_value(&s, "LAYOUT", "ws_start=") >= (long long)VMIG_MMIO_HOLE_END);
	assert_true(sys_console_line_has(&s, "RESULT workload=verify", "mismatches=0"));
	assert_true(sys_console_line_has(&s, "RESULT workload=verify", "status=ok"));
	sys_vm_destroy(&s);
}

static void test_working_set_spans_hole(void **state)
{
	struct sys_vm s;

	/* docs/guest.md's recipe: 8 MiB from 4 MiB below the hole, so half lies above 4 GiB. */
	boot_and_expect(1, 5 * GiB, "workload=dirty,verify secs=1 ws=8M wsbase=0xBFC00000", 0, &s);
	assert_true(sys_console_line_has(&s, "LAYOUT", "ws_extents=2"));
	assert_true(sys_console_value(&s, "LAYOUT", "ws_end=") > (long long)VMIG_MMIO_HOLE_END);
	assert_true(sys_console_line_has(&s, "RESULT workload=verify", "mismatches=0"));
	sys_vm_destroy(&s);
}

/* Migration's stop, many times over, while every vCPU dirties memory in ring 3. */
static void test_pause_resume_firmware(void **state)
{
	struct sys_vm s;
	unsigned pauses = 0;

	create_fw(&s, 256 * MiB, 2, VM_DIRTY_AUTO, "workload=dirty,verify secs=2 ws=32M");
	assert_int_equal(machine_start(s.m), 0);
	assert_int_equal(machine_wait_mark(s.m, VMIG_MARK_DIRTY, WAIT_MS), 0);
	srand(5);
	while (vm_wait_stop(s.m->vm, 5 + rand() % 30, NULL, NULL) == -ETIMEDOUT) {
		assert_int_equal(vm_pause(s.m->vm, VM_PAUSE_INTERNAL), 0);
		for (unsigned i = 0; i < 2; i++) {
			struct vcpu_state st;
			assert_int_equal(vcpu_state_get(&s.m->vm->vcpus[i], &st), 0);
			/* Started (a vCPU may be halted waiting for its timer). */
			assert_true(st.mp_state.mp_state == KVM_MP_STATE_RUNNABLE ||
				    st.mp_state.mp_state == KVM_MP_STATE_HALTED);
			vcpu_state_free(&st);
		}
		vm_resume(s.m->vm, VM_PAUSE_INTERNAL);
		pauses++;
	}
	assert_int_equal(machine_wait(s.m, WAIT_MS), 0);
	assert_true(pauses >= 20);
	assert_true(sys_console_line_has(&s, "RESULT workload=verify", "mismatches=0"));
	sys_vm_destroy(&s);
}

/* Stop a VM mid-dirty, move RAM, clock, irqchip and every vCPU (through the byte format)
 * into a fresh VM, discard the old one, run the new one: verify must pass. */
static void move_state(struct machine *from, struct machine *to)
{
	struct kvm_clock_data clock;
	struct kvm_irqchip chips[VM_NR_IRQCHIPS];

	for (unsigned r = 0; r < from->mem->nr_regions; r++)
		memcpy(to->mem->regions[r].host, from->mem->regions[r].host,
		       from->mem->regions[r].size);
	assert_int_equal(vm_irqchip_get(from->vm, chips), 0);
	assert_int_equal(vm_irqchip_set(to->vm, chips), 0);
	for (unsigned i = 0; i < from->vm->nr_vcpus; i++) {
		struct vcpu_state a, b;
		void *blob;
		size_t len;
		assert_int_equal(vcpu_state_get(&from->vm->vcpus[i], &a), 0);
		assert_int_equal(vcpu_state_serialise(&a, &blob, &len), 0);
		assert_int_equal(vcpu_state_parse(blob, len, &b), 0);
		assert_int_equal(vcpu_state_set(&to->vm->vcpus[i], &b), 0);
		vcpu_state_free(&a);
		vcpu_state_free(&b);
		free(blob);
	}
	assert_int_equal(vm_clock_get(from->vm, &clock), 0);
	assert_int_equal(vm_clock_set(to->vm, &clock), 0);
}

static void test_state_moves_to_fresh_vm(void **state)
{
	struct sys_vm src, dst;

	create_fw(&src, 128 * MiB, 2, VM_DIRTY_AUTO, "workload=dirty,verify secs=2 ws=16M");
	assert_int_equal(machine_start(src.m), 0);
	assert_int_equal(machine_wait_mark(src.m, VMIG_MARK_DIRTY, WAIT_MS), 0);
	usleep(300000);
	assert_int_equal(vm_pause(src.m->vm, VM_PAUSE_INTERNAL), 0);
	sys_vm_create_empty(&dst, 128 * MiB, 2);
	move_state(src.m, dst.m);
	sys_vm_destroy(&src);
	assert_int_equal(machine_start(dst.m), 0);
	assert_int_equal(machine_wait(dst.m, WAIT_MS), 0);
	assert_true(sys_console_line_has(&dst, "RESULT workload=dirty", "status=ok"));
	assert_true(sys_console_line_has(&dst, "RESULT workload=verify", "mismatches=0"));
	/* The SSE registers the guest parked in xmm8-15 came through XSAVE intact. */
	assert_true(sys_console_line_has(&dst, "RESULT workload=verify", "sse_bad=0"));
	sys_vm_destroy(&dst);
}

static void test_msi_irqwait(void **state)
{
	struct sys_vm s;
	enum { N = 4 };

	sys_vm_create(&s, image, 128 * MiB, 2, VM_DIRTY_AUTO,
		      "workload=irqwait irqcount=4 secs=10");
	assert_int_equal(machine_start(s.m), 0);
	assert_int_equal(machine_wait_mark(s.m, VMIG_MARK_IRQ_WAIT, WAIT_MS), 0);
	/*
	 * Edge MSIs on a vector still pending in the guest's IRR coalesce, as on real APICs, so
	 * a fixed number of injections may be counted fewer times when the vCPU is slow to take
	 * them: keep injecting until the guest has counted N and stopped (bounded; without
	 * delivery it times out and exits 1).
	 */
	for (int i = 0; i < 2000 && !__atomic_load_n(&s.m->vm->stop, __ATOMIC_ACQUIRE); i++) {
		assert_int_equal(vm_signal_msi(s.m->vm, VMIG_MSI_WINDOW, VMIG_VEC_SDMA), 0);
		usleep(2000);
	}
	assert_int_equal(machine_wait(s.m, WAIT_MS), 0);
	assert_true(sys_console_value(&s, "RESULT workload=irqwait", "received=") >= N);
	assert_true(sys_console_line_has(&s, "RESULT workload=irqwait", "status=ok"));
	sys_vm_destroy(&s);
}

/* The negative control for every verify above: damage is caught and fails the guest. */
static void test_corrupt_caught(void **state)
{
	struct sys_vm s;

	boot_and_expect(1, 64 * MiB, "workload=dirty,corrupt,verify secs=1 ws=8M",
			VMIG_GUEST_EXIT_FAILED, &s);
	assert_true(sys_console_value(&s, "RESULT workload=verify", "mismatches=") > 0);
	sys_vm_destroy(&s);
}

static void test_exit_status_bad_cmdline(void **state)
{
	struct sys_vm s;

	boot_and_expect(1, 64 * MiB, "workload=nonsense", VMIG_GUEST_EXIT_CMDLINE, &s);
	assert_true(sys_console_has(&s, "ERROR cmdline"));
	sys_vm_destroy(&s);
}

/*
 * Touch: after the BOOTED mark the guest idles (timer ticks on its own pages), then writes
 * COUNT pages and halts for good. Every reported page must be a touched one or lie in the
 * guest's own image (code, data, stacks, page tables: LAYOUT image_start..image_end); every
 * touched page must be reported; nothing afterwards.
 */
static void run_touch(enum vm_dirty_mode mode, uint64_t mem, uint64_t base)
{
	struct sys_vm s;
	char cmd[160];
	const unsigned count = 40;
	const uint64_t stride = 0x5000;

	snprintf(cmd, sizeof(cmd), "workload=idle,touch secs=1 touch=%#lx,%u,%#lx",
		 (unsigned long)base, count, (unsigned long)stride);
	create_fw(&s, mem, 2, mode, cmd);
	struct vm *vm = s.m->vm;
	uint64_t nbits = vm_dirty_pages(vm);
	uint64_t *map = bitmap_alloc(nbits);
	assert_int_equal(machine_start(s.m), 0);
	assert_int_equal(machine_wait_mark(s.m, VMIG_MARK_BOOTED, WAIT_MS), 0);
	assert_int_equal(vm_dirty_log_start(vm), 0);
	assert_true(vm_dirty_harvest(vm, map) >= (long)(mem >> 12));
	bitmap_zero(map, nbits);
	assert_int_equal(machine_wait_mark(s.m, VMIG_MARK_TOUCHED, WAIT_MS), 0);
	/*
	 * The other vCPUs' last halts still write their own pages, whenever they get to run:
	 * harvest (the map accumulates) until a harvest 20 ms after the previous finds nothing.
	 */
	long n = 0, got;
	for (int i = 0; i < 500; i++) {
		usleep(20000);
		got = vm_dirty_harvest(vm, map);
		assert_true(got >= 0);
		n += got;
		if (got == 0 && i > 0)
			break;
	}
	long long img_lo = sys_console_value(&s, "LAYOUT", "image_start=");
	long long img_hi = sys_console_value(&s, "LAYOUT", "image_end=");
	assert_true(img_lo > 0 && img_hi > img_lo);
	unsigned own = 0;
	for (uint64_t p = bitmap_find_next_set(map, nbits, 0); p < nbits;
	     p = bitmap_find_next_set(map, nbits, p + 1)) {
		uint64_t gpa = p << 12;
		bool touched =
		    gpa >= base && (gpa - base) % stride == 0 && (gpa - base) / stride < count;
		/* The image (code, data, stacks, page tables) and the AP trampoline page. */
		bool guest_own =
		    (gpa >= (uint64_t)img_lo && gpa < (uint64_t)img_hi) || gpa == 0x8000;
		if (!touched && !guest_own)
			fail_msg("page %#lx dirty: neither touched nor the guest's own",
				 (unsigned long)gpa);
		own += guest_own;
	}
	for (unsigned k = 0; k < count; k++)
		assert_true(bitmap_test(map, (base + k * stride) >> 12));
	printf("%s: %ld dirty = %u touched + %u of the guest's own pages\n", vm_dirty_mode_name(vm),
	       n, count, own);
	assert_int_equal((unsigned long)n, count + own);
	usleep(50000);
	bitmap_zero(map, nbits);
	assert_int_equal(vm_dirty_harvest(vm, map), 0);
	free(map);
	sys_vm_destroy(&s);
}

static void test_touch_dirty_bitmap(void **state)
{
	run_touch(VM_DIRTY_BITMAP, 256 * MiB, 0x8000000);
}

static void test_touch_dirty_bitmap_above_hole(void **state)
{
	run_touch(VM_DIRTY_BITMAP, 6 * GiB, VMIG_MMIO_HOLE_END + 0x10000000);
}

static void test_touch_dirty_ring(void **state)
{
	struct vm_config probe = {.nr_vcpus = 1, .dirty_mode = VM_DIRTY_RING};
	struct vm *vm;
	if (vm_open(&probe, &vm) < 0)
		skip();
	vm_close(vm);
	run_touch(VM_DIRTY_RING, 6 * GiB, VMIG_MMIO_HOLE_END + 0x10000000);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s GUEST_IMAGE basic|state\n", argv[0]);
		return 2;
	}
	image = argv[1];
	sys_require_kvm();
	const struct CMUnitTest basic[] = {
	    cmocka_unit_test(test_idle_timer_smp),
	    cmocka_unit_test(test_pause_lifted_before_start),
	    cmocka_unit_test(test_dirty_verify_and_ipi),
	    cmocka_unit_test(test_working_set_above_hole),
	    cmocka_unit_test(test_working_set_spans_hole),
	    cmocka_unit_test(test_msi_irqwait),
	    cmocka_unit_test(test_corrupt_caught),
	    cmocka_unit_test(test_exit_status_bad_cmdline),
	};
	const struct CMUnitTest state[] = {
	    cmocka_unit_test(test_pause_resume_firmware),
	    cmocka_unit_test(test_state_moves_to_fresh_vm),
	    cmocka_unit_test(test_touch_dirty_bitmap),
	    cmocka_unit_test(test_touch_dirty_bitmap_above_hole),
	    cmocka_unit_test(test_touch_dirty_ring),
	};
	if (strcmp(argv[2], "basic") == 0)
		return cmocka_run_group_tests_name("firmware basics", basic, NULL, NULL);
	return cmocka_run_group_tests_name("firmware state and dirty log", state, NULL, NULL);
}
