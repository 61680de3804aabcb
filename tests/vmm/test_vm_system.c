// SPDX-License-Identifier: Apache-2.0
/*
 * The VMM core on KVM with the test guest (guests/testguest.S): boot and exit status on 1
 * and 4 vCPUs, crash report, timer and MSI interrupts, MMIO/PIO dispatch, ioeventfd
 * doorbells, pause/resume under load, and RAM above the MMIO hole.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/util.h"
#include "vmig/guest_abi.h"
#include "vmm/kvm/vcpu_state.h"
#include "sys_util.h"

#define FLAG_GPA 0x200000ull
#define WAIT_MS	 10000

static const char *image;

static void test_boot_exit_status(void **state)
{
	const unsigned vcpus[] = {1, 4};

	for (size_t i = 0; i < ARRAY_SIZE(vcpus); i++) {
		struct sys_vm s;
		char cmd[32];
		snprintf(cmd, sizeof(cmd), "h %u", 40 + vcpus[i]);
		sys_vm_create(&s, image, 64 * MiB, vcpus[i], VM_DIRTY_AUTO, cmd);
		assert_int_equal(machine_start(s.m), 0);
		assert_int_equal(machine_wait(s.m, WAIT_MS), 40 + vcpus[i]);
		assert_true(sys_console_has(&s, cmd));
		/* The guest's unclaimed MMIO and PIO reads were seen by the bus and read 0. */
		assert_true(bus_unclaimed_count(s.m->bus) >= 2);
		sys_vm_destroy(&s);
	}
}

static void test_crash_is_reported_not_fatal(void **state)
{
	struct sys_vm s;

	sys_vm_create(&s, image, 32 * MiB, 2, VM_DIRTY_AUTO, "x");
	assert_int_equal(machine_start(s.m), 0);
	assert_int_equal(machine_wait(s.m, WAIT_MS), VMIG_EXIT_CRASH);
	sys_vm_destroy(&s);
}

static void test_timer_and_msi_delivered(void **state)
{
	struct sys_vm s;
	enum { N = 5 };

	sys_vm_create(&s, image, 32 * MiB, 1, VM_DIRTY_AUTO, "i 5");
	assert_int_equal(machine_start(s.m), 0);
	assert_int_equal(machine_wait_mark(s.m, 1, WAIT_MS), 0);
	for (uint32_t k = 1; k <= N; k++) {
		/* Fixed delivery to APIC id 0, edge, vector 0x30; one at a time, each counted. */
		assert_int_equal(vm_signal_msi(s.m->vm, VMIG_MSI_WINDOW, VMIG_VEC_SDMA), 0);
		assert_int_equal(machine_wait_mark(s.m, 0x100 + k, WAIT_MS), 0);
	}
	assert_int_equal(machine_wait(s.m, WAIT_MS), 0);
	assert_true(sys_console_has(&s, "timer and MSI interrupts delivered"));
	sys_vm_destroy(&s);
}

static void test_msi_through_irqfd(void **state)
{
	struct sys_vm s;
	uint64_t one = 1;

	sys_vm_create(&s, image, 32 * MiB, 1, VM_DIRTY_AUTO, "i 3");
	int efd = eventfd(0, EFD_CLOEXEC);
	int gsi = vm_irqfd_add_msi(s.m->vm, VMIG_MSI_WINDOW, VMIG_VEC_SDMA, efd);
	assert_true(gsi >= (int)VM_MSI_GSI_BASE);
	/* A second route gets another GSI; removing it leaves the first one working. */
	int efd2 = eventfd(0, EFD_CLOEXEC);
	int gsi2 = vm_irqfd_add_msi(s.m->vm, VMIG_MSI_WINDOW, 0x31, efd2);
	assert_true(gsi2 > gsi);
	assert_int_equal(vm_irqfd_del_msi(s.m->vm, gsi2, efd2), 0);
	assert_int_equal(vm_irqfd_del_msi(s.m->vm, gsi2, efd2), -ENOENT);
	assert_int_equal(machine_start(s.m), 0);
	assert_int_equal(machine_wait_mark(s.m, 1, WAIT_MS), 0);
	for (uint32_t k = 1; k <= 3; k++) {
		assert_int_equal(write(efd, &one, sizeof(one)), sizeof(one));
		assert_int_equal(machine_wait_mark(s.m, 0x100 + k, WAIT_MS), 0);
	}
	assert_int_equal(machine_wait(s.m, WAIT_MS), 0);
	assert_int_equal(vm_irqfd_del_msi(s.m->vm, gsi, efd), 0);
	close(efd);
	close(efd2);
	sys_vm_destroy(&s);
}

struct counter_dev {
	struct vm *vm;
	uint64_t writes, last, in_order, stop_after;
	int pause_from_handler;
};

static void counter_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct counter_dev *d = opaque;

	/* A handler runs on a vCPU thread: pausing from here must refuse, not hang. */
	if (d->writes == 0)
		d->pause_from_handler = vm_pause(d->vm, VM_PAUSE_INTERNAL);

	/* The guest writes eax and increments it: consecutive values prove the data path. */
	if (d->writes && val == d->last + 1)
		d->in_order++;
	d->last = val;
	if (++d->writes == d->stop_after)
		vm_request_stop(d->vm, VM_STOP_REQUEST, 0);
}

static const struct bus_device_ops counter_ops = {.write = counter_write};

static void run_counter(const char *cmd, enum bus_space space, uint64_t addr)
{
	struct sys_vm s;
	struct counter_dev d = {.stop_after = 200};

	sys_vm_create(&s, image, 32 * MiB, 1, VM_DIRTY_AUTO, cmd);
	d.vm = s.m->vm;
	struct bus_region r = {"counter", space, addr, 4, BUS_SIZE(4), false, &counter_ops, &d};
	assert_int_equal(bus_register(s.m->bus, &r), 0);
	assert_int_equal(machine_start(s.m), 0);
	assert_int_equal(machine_wait(s.m, WAIT_MS), 0);
	assert_int_equal(d.writes, 200);
	assert_int_equal(d.in_order, 199);
	assert_int_equal(d.pause_from_handler, -EDEADLK);
	sys_vm_destroy(&s);
}

static void test_mmio_and_pio_dispatch(void **state)
{
	run_counter("m", BUS_MMIO, 0xD0200000);
	run_counter("p", BUS_PIO, 0x510);
}

struct doorbell {
	struct sys_vm *s;
	int efd;
	uint32_t rung;
};

static void *doorbell_thread(void *arg)
{
	struct doorbell *db = arg;
	uint64_t n;

	while (db->rung < 50 && read(db->efd, &n, sizeof(n)) == sizeof(n)) {
		db->rung++;
		/* Acknowledge: the guest waits for FLAG to equal the value it wrote. */
		guest_mem_write(db->s->m->mem, FLAG_GPA, &db->rung, 4);
	}
	vm_request_stop(db->s->m->vm, VM_STOP_REQUEST, 0);
	return NULL;
}

static void test_ioeventfd_doorbell(void **state)
{
	struct sys_vm s;
	struct counter_dev trap = {.stop_after = 1};
	struct doorbell db = {.s = &s};
	pthread_t t;

	sys_vm_create(&s, image, 32 * MiB, 1, VM_DIRTY_AUTO, "d");
	trap.vm = s.m->vm;
	/* A trapping device under the doorbell: it must never see a write. */
	struct bus_region r = {"trap", BUS_MMIO, 0xD0201000, 4, 0, false, &counter_ops, &trap};
	assert_int_equal(bus_register(s.m->bus, &r), 0);
	db.efd = eventfd(0, EFD_CLOEXEC);
	struct vm_ioeventfd io = {.addr = 0xD0201000, .len = 4, .fd = db.efd};
	assert_int_equal(vm_ioeventfd_add(s.m->vm, &io), 0);
	struct vm_ioeventfd bad = {.addr = 0xD0201000, .len = 3, .fd = db.efd};
	assert_int_equal(vm_ioeventfd_add(s.m->vm, &bad), -EINVAL);
	pthread_create(&t, NULL, doorbell_thread, &db);
	assert_int_equal(machine_start(s.m), 0);
	assert_int_equal(machine_wait(s.m, WAIT_MS), 0);
	pthread_join(t, NULL);
	assert_int_equal(db.rung, 50);
	assert_int_equal(trap.writes, 0);
	assert_int_equal(vm_ioeventfd_del(s.m->vm, &io), 0);
	close(db.efd);
	sys_vm_destroy(&s);
}

static void test_pause_resume_under_load(void **state)
{
	struct sys_vm s;
	uint64_t last_rip = 0;
	unsigned moved = 0;

	sys_vm_create(&s, image, 64 * MiB, 3, VM_DIRTY_AUTO, "c 800");
	assert_int_equal(machine_start(s.m), 0);
	/* 20 rounds; more (bounded, inside the guest's ~800 ms) when a loaded host did not
	 * run the vCPUs in some of the 10 ms windows. */
	for (int i = 0; i < 20 || (moved < 10 && i < 50); i++) {
		struct vcpu_state st;
		assert_int_equal(vm_pause(s.m->vm, VM_PAUSE_INTERNAL), 0);
		assert_true(vm_is_paused(s.m->vm));
		assert_int_equal(vcpu_state_get(&s.m->vm->vcpus[0], &st), 0);
		moved += st.regs.rip != last_rip;
		last_rip = st.regs.rip;
		/* The APs never got a SIPI: they must still be waiting for one. */
		struct vcpu_state ap;
		assert_int_equal(vcpu_state_get(&s.m->vm->vcpus[2], &ap), 0);
		assert_int_equal(ap.mp_state.mp_state, KVM_MP_STATE_UNINITIALIZED);
		vcpu_state_free(&ap);
		vcpu_state_free(&st);
		vm_resume(s.m->vm, VM_PAUSE_INTERNAL);
		usleep(10000);
	}
	assert_true(moved >= 10);
	/* The counter guest verifies all its pages at the end: pausing must not corrupt. */
	assert_int_equal(machine_wait(s.m, WAIT_MS), 0);
	assert_true(sys_console_has(&s, "counter verify ok"));
	sys_vm_destroy(&s);
}

/* An MSI with delivery mode dm (INIT = 5, StartUp = 6) to x2APIC id dest. */
static void send_msi_dm(struct vm *vm, uint32_t dest, uint32_t dm, uint32_t vector)
{
	uint64_t addr =
	    VMIG_MSI_WINDOW | ((uint64_t)(dest & 0xFF) << 12) | ((uint64_t)(dest >> 8) << 32);
	assert_int_equal(vm_signal_msi(vm, addr, (dm << 8) | vector), 0);
}

/*
 * INIT and SIPI wait in the AP's LAPIC until something processes them; KVM_GET_MP_STATE
 * does (it moves the AP to the SIPI vector's CS:IP). A capture that reads the registers
 * before the MP state saves the reset CS:IP with a RUNNABLE MP state: the AP would run
 * from the reset vector on the destination instead of the SIPI vector.
 */
static void test_mp_state_read_before_registers(void **state)
{
	struct sys_vm s;
	struct vcpu_state ap;
	const uint32_t sipi_page = 0x9A;

	sys_vm_create(&s, image, 32 * MiB, 2, VM_DIRTY_AUTO, "W 1");
	assert_int_equal(machine_start(s.m), 0);
	assert_int_equal(vm_pause(s.m->vm, VM_PAUSE_INTERNAL), 0);
	/*
	 * This KVM routes an MSI by APIC id through a map it rebuilds lazily; until the AP's
	 * LAPIC was written once an MSI to it is dropped (returns 0). Writing its own LAPIC
	 * state back rebuilds the map and changes nothing else.
	 */
	struct kvm_lapic_state lapic;
	assert_int_equal(ioctl(s.m->vm->vcpus[1].fd, KVM_GET_LAPIC, &lapic), 0);
	assert_int_equal(ioctl(s.m->vm->vcpus[1].fd, KVM_SET_LAPIC, &lapic), 0);
	/* The AP's thread is parked outside KVM_RUN: nothing accepts the events but us. */
	send_msi_dm(s.m->vm, 1, 5, 0);
	send_msi_dm(s.m->vm, 1, 6, sipi_page);
	assert_int_equal(vcpu_state_get(&s.m->vm->vcpus[1], &ap), 0);
	assert_int_equal(ap.mp_state.mp_state, KVM_MP_STATE_RUNNABLE);
	assert_int_equal(ap.sregs.cs.selector, sipi_page << 8);
	assert_int_equal(ap.sregs.cs.base, (uint64_t)sipi_page << 12);
	assert_int_equal(ap.regs.rip, 0);
	vcpu_state_free(&ap);
	sys_vm_destroy(&s);
}

static void test_ram_above_hole(void **state)
{
	struct sys_vm s;
	uint64_t mem = 6 * GiB;
	uint64_t hi = VMIG_MMIO_HOLE_END + 2 * GiB + 0x1234;
	uint32_t v = 0xFEEDBEEF, back = 0;

	sys_vm_create(&s, image, mem, 1, VM_DIRTY_AUTO, "h 0");
	assert_int_equal(s.m->vm->nr_slots, 2);
	assert_int_equal(s.m->vm->slots[1].gpa, VMIG_MMIO_HOLE_END);
	assert_int_equal(s.m->vm->slots[1].size, mem - VMIG_MMIO_HOLE_START);
	/* The VMM write helper lands at memfd offset GPA - 1 GiB (the hole's size). */
	assert_int_equal(guest_mem_write(s.m->mem, hi, &v, 4), 0);
	assert_int_equal(pread(s.m->mem->fd, &back, 4, (off_t)(hi - GiB)), 4);
	assert_int_equal(back, v);
	assert_int_equal(machine_start(s.m), 0);
	assert_int_equal(machine_wait(s.m, WAIT_MS), 0);
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
	    cmocka_unit_test(test_boot_exit_status),
	    cmocka_unit_test(test_crash_is_reported_not_fatal),
	    cmocka_unit_test(test_timer_and_msi_delivered),
	    cmocka_unit_test(test_msi_through_irqfd),
	    cmocka_unit_test(test_mmio_and_pio_dispatch),
	    cmocka_unit_test(test_ioeventfd_doorbell),
	    cmocka_unit_test(test_pause_resume_under_load),
	    cmocka_unit_test(test_ram_above_hole),
	    cmocka_unit_test(test_mp_state_read_before_registers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
