// SPDX-License-Identifier: Apache-2.0
/*
 * Unit test of the device binding without KVM (no VM: every doorbell traps): the modelled
 * host booted, the sdma device bound through vfio_dev on a bus, guest RAM a memfd mapped at
 * IOVA = GPA in an IOAS the device is attached to (stage 2 only).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "hw/sdma_regs.h"
#include "host/iommufd.h"
#include "host/vfio.h"
#include "vmig/guest_abi.h"
#include "vmig/host_platform.h"
#include "vmm/bus.h"
#include "vmm/vfio/vfio_dev.h"
#include "tests/e2e/vfio_fx.h"

#define RAM_SIZE (4u << 20)
#define RING	 0x100000ull
#define COMPL	 0x110000ull
#define DST	 0x200000ull

static int fx_setup(void **state)
{
	*state = vfio_fx_create(RAM_SIZE);
	return 0;
}

static int fx_teardown(void **state)
{
	vfio_fx_destroy(*state);
	return 0;
}

static uint64_t rd(struct vfio_fx *f, uint32_t off, unsigned size)
{
	uint64_t v = 0;

	assert_true(bus_access(f->bus, BUS_MMIO, VMIG_SDMA_BAR0 + off, size, false, &v));
	return v;
}

static void wr(struct vfio_fx *f, uint32_t off, unsigned size, uint64_t v)
{
	assert_true(bus_access(f->bus, BUS_MMIO, VMIG_SDMA_BAR0 + off, size, true, &v));
}

static void fx_enable(struct vfio_fx *f, bool shadow)
{
	wr(f, SDMA_REG_WQ_BASE, 8, RING);
	wr(f, SDMA_REG_WQ_CFG, 8, 4);
	if (shadow)
		wr(f, SDMA_REG_WQ_SHADOW, 8, (COMPL + 0x1000) | 1);
	wr(f, SDMA_REG_CTRL, 8, 1);
	assert_true(rd(f, SDMA_REG_STATUS, 8) & 1);
}

static uint32_t fx_queue_fill(struct vfio_fx *f, uint64_t pattern)
{
	uint32_t slot = f->tail;
	struct sdma_desc d = {.opcode = SDMA_OP_FILL,
			      .flags = SDMA_FLAG_CRAV,
			      .compl_addr = COMPL + slot * 32,
			      .dst = DST + slot * 4096,
			      .size = 4096,
			      .pattern = pattern};

	memset(f->ram + COMPL + slot * 32, 0, 32);
	memcpy(f->ram + RING + slot * sizeof(d), &d, sizeof(d));
	f->tail = (f->tail + 1) & 15;
	return slot;
}

static unsigned fx_wait(struct vfio_fx *f, uint32_t slot, int ms)
{
	volatile uint8_t *st = f->ram + COMPL + slot * 32;

	for (int i = 0; i < ms * 10 && !*st; i++)
		usleep(100);
	return *st;
}

static void test_bar_forwarding(void **state)
{
	struct vfio_fx *f = *state;
	struct vfio_dev_stats st;
	uint64_t v = 0;

	assert_int_equal(rd(f, SDMA_REG_CAP, 8) & 0xFF, SDMA_VERSION);
	assert_int_equal(rd(f, SDMA_REG_CAP, 4), rd(f, SDMA_REG_CAP, 8) & 0xFFFFFFFF);
	wr(f, SDMA_REG_MSI_DATA, 4, 0x1234);
	assert_int_equal(rd(f, SDMA_REG_MSI_DATA, 8), 0x1234);
	/* Sizes and alignments the BAR does not take are refused by the bus, not the device. */
	assert_false(bus_access(f->bus, BUS_MMIO, VMIG_SDMA_BAR0 + 1, 2, false, &v));
	assert_false(bus_access(f->bus, BUS_MMIO, VMIG_SDMA_BAR0 + 4, 8, true, &v));
	vfio_dev_get_stats(f->d, &st);
	assert_true(st.bar_reads >= 4 && st.bar_writes >= 1);
	assert_int_equal(st.bar_errors, 0);
}

static void test_open_errors(void **state)
{
	struct vfio_fx *f = *state;
	struct vfio_dev *d;
	struct vfio_dev_config c = {
	    .name = "nosuch", .ictx = f->ictx, .bus = f->bus, .bar0_gpa = 0xD0200000};

	assert_int_equal(vfio_dev_create(&c, &d), -ENODEV);
	c.name = HOST_PLATFORM_SDMA_NAME; /* already open */
	assert_int_equal(vfio_dev_create(&c, &d), -EBUSY);
	assert_int_equal(vfio_dev_doorbell_set_path(f->d, 7), -EINVAL);
}

/* No VM: FAST with the shadow on still traps (and forwards) every doorbell. */
static void test_doorbell_trapped_and_held(void **state)
{
	struct vfio_fx *f = *state;
	struct vfio_dev_stats st;

	fx_enable(f, true);
	assert_false(vfio_dev_doorbell_fast_armed(f->d));
	uint32_t s0 = fx_queue_fill(f, 0x0101010101010101ull);
	wr(f, SDMA_REG_WQ_TAIL, 4, f->tail);
	assert_int_equal(fx_wait(f, s0, 2000), SDMA_STATUS_SUCCESS);
	assert_int_equal(f->ram[DST + 4095], 0x01);

	assert_int_equal(vfio_dev_doorbell_set_path(f->d, VFIO_DOORBELL_SLOW_HOLD), 0);
	uint32_t s1 = fx_queue_fill(f, 0x0202020202020202ull);
	wr(f, SDMA_REG_WQ_TAIL, 8, f->tail);
	uint32_t s2 = fx_queue_fill(f, 0x0303030303030303ull);
	wr(f, SDMA_REG_WQ_TAIL, 4, f->tail);
	assert_int_equal(fx_wait(f, s1, 50), SDMA_STATUS_NONE);
	assert_int_equal(vfio_dev_doorbell_held_count(f->d), 2);
	assert_int_equal(rd(f, SDMA_REG_WQ_TAIL, 8), s1); /* the device never saw them */
	assert_int_equal(vfio_dev_doorbell_release_held(f->d), 2);
	assert_int_equal(fx_wait(f, s2, 2000), SDMA_STATUS_SUCCESS);
	assert_int_equal(fx_wait(f, s1, 2000), SDMA_STATUS_SUCCESS);
	assert_int_equal(f->ram[DST + 2 * 4096 + 7], 0x03);
	vfio_dev_get_stats(f->d, &st);
	assert_int_equal(st.doorbells_trapped, 3);
	assert_int_equal(st.doorbells_held, 2);
	assert_int_equal(st.doorbells_released, 2);
	assert_int_equal(vfio_dev_doorbell_release_held(f->d), 0);
}

static void test_held_take_push(void **state)
{
	struct vfio_fx *f = *state;
	struct vfio_doorbell_write w[4], bad = {.offset = 0x100000, .size = 8, .value = 2};

	fx_enable(f, false);
	assert_int_equal(vfio_dev_doorbell_set_path(f->d, VFIO_DOORBELL_SLOW_HOLD), 0);
	uint32_t s0 = fx_queue_fill(f, 0x4444444444444444ull);
	wr(f, SDMA_REG_WQ_TAIL, 4, f->tail);
	assert_int_equal(vfio_dev_doorbell_copy_held(f->d, w, 4), 1);
	vfio_dev_doorbell_drop_held(f->d);
	assert_int_equal(vfio_dev_doorbell_held_count(f->d), 0);
	assert_int_equal(w[0].offset, SDMA_REG_WQ_TAIL);
	assert_int_equal(w[0].value, f->tail);
	/* Only writes the device takes may be loaded: one outside BAR0 is refused. */
	assert_int_equal(vfio_dev_doorbell_push_held(f->d, &bad, 1), -EINVAL);
	assert_int_equal(vfio_dev_doorbell_push_held(f->d, w, 1), 0);
	assert_int_equal(vfio_dev_doorbell_set_path(f->d, VFIO_DOORBELL_SLOW_FORWARD), 0);
	assert_int_equal(vfio_dev_doorbell_release_held(f->d), 1);
	assert_int_equal(fx_wait(f, s0, 2000), SDMA_STATUS_SUCCESS);
}

/*
 * Holding holds every register write, in order, not only the doorbell: a configuration
 * write the guest makes after a held doorbell reaches the device after it (forwarded at
 * once it would overtake the doorbell). unhold replays and switches the path in one step.
 */
static void test_hold_holds_every_write(void **state)
{
	struct vfio_fx *f = *state;
	uint64_t msi_data = rd(f, SDMA_REG_MSI_DATA, 8);

	fx_enable(f, false);
	assert_int_equal(vfio_dev_doorbell_set_path(f->d, VFIO_DOORBELL_SLOW_HOLD), 0);
	uint32_t s0 = fx_queue_fill(f, 0x5555555555555555ull);
	wr(f, SDMA_REG_WQ_TAIL, 8, f->tail);
	wr(f, SDMA_REG_MSI_DATA, 4, msi_data ^ 0x55);
	assert_int_equal(vfio_dev_doorbell_held_count(f->d), 2);
	assert_int_equal(rd(f, SDMA_REG_MSI_DATA, 8), msi_data); /* not written yet */
	assert_int_equal(fx_wait(f, s0, 50), SDMA_STATUS_NONE);
	assert_int_equal(vfio_dev_doorbell_unhold(f->d, VFIO_DOORBELL_SLOW_FORWARD), 2);
	assert_int_equal(vfio_dev_doorbell_get_path(f->d), VFIO_DOORBELL_SLOW_FORWARD);
	assert_int_equal(fx_wait(f, s0, 2000), SDMA_STATUS_SUCCESS);
	assert_int_equal(rd(f, SDMA_REG_MSI_DATA, 8), msi_data ^ 0x55);
	assert_int_equal(vfio_dev_doorbell_held_count(f->d), 0);
}

static void fx_shadow_tail(struct vfio_fx *f, uint32_t tail)
{
	__atomic_store_n((uint32_t *)(f->ram + COMPL + 0x1000), tail, __ATOMIC_SEQ_CST);
}

/*
 * With the shadow tail on, a held doorbell is replayed as a valueless kick, not its old
 * value: the device can read a newer shadow tail during the hold (a kick queued before the
 * hold began), and an old TAIL written back would then put TAIL behind HEAD and run the
 * whole ring again.
 */
static void test_replay_shadow_as_kick(void **state)
{
	struct vfio_fx *f = *state;
	struct vfio_device *vdev = vfio_dev_vfio(f->d);
	uint32_t region, width;
	uint64_t offset;
	int db_fd;

	fx_enable(f, true);
	assert_int_equal(vfio_device_get_doorbell(vdev, &region, &offset, &width, &db_fd), 0);
	assert_int_equal(vfio_dev_doorbell_set_path(f->d, VFIO_DOORBELL_SLOW_HOLD), 0);
	uint32_t s0 = fx_queue_fill(f, 0x6666666666666666ull);
	fx_shadow_tail(f, f->tail);
	wr(f, SDMA_REG_WQ_TAIL, 4, f->tail);
	uint32_t s1 = fx_queue_fill(f, 0x7777777777777777ull);
	fx_shadow_tail(f, f->tail);
	wr(f, SDMA_REG_WQ_TAIL, 4, f->tail);
	assert_int_equal(vfio_dev_doorbell_held_count(f->d), 2);
	/* A kick from before the hold: the device reads the newest shadow tail, runs both. */
	assert_int_equal(eventfd_write(db_fd, 1), 0);
	assert_int_equal(fx_wait(f, s1, 2000), SDMA_STATUS_SUCCESS);
	assert_int_equal(fx_wait(f, s0, 2000), SDMA_STATUS_SUCCESS);
	assert_int_equal(vfio_dev_doorbell_unhold(f->d, VFIO_DOORBELL_SLOW_FORWARD), 2);
	usleep(50 * 1000); /* room for a ring run wrongly restarted to show */
	assert_int_equal(rd(f, SDMA_REG_WQ_HEAD, 8), f->tail);
	assert_int_equal(rd(f, SDMA_REG_WQ_TAIL, 8), f->tail);
	assert_int_equal(rd(f, SDMA_REG_COMPLETED, 8), 2);
	assert_int_equal(rd(f, SDMA_REG_ERR, 8), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_bar_forwarding, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_open_errors, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_doorbell_trapped_and_held, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_held_take_push, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_hold_holds_every_write, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_replay_shadow_as_kick, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
