// SPDX-License-Identifier: Apache-2.0
/*
 * A hostile guest at the sdma BAR, through the VMM's bus and device binding (no KVM: every
 * access traps): random 1/2/4/8-byte accesses at random offsets while the engine runs big
 * transfers, while the device is in P2P or STOP, and right after resets. Every access must
 * return promptly (no vCPU thread blocked on the engine), the device must recover with a
 * reset, and doorbells hammered while the VMM holds them must not grow VMM memory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "failnth.h"
#include "fuzz.h"
#include "hw/sdma_regs.h"
#include "host/iommufd.h"
#include "host/vfio.h"
#include "vmig/guest_abi.h"
#include "vmig/host_platform.h"
#include "vmm/bus.h"
#include "vmm/vfio/vfio_dev.h"
#include "tests/e2e/vfio_fx.h"

#define RAM_SIZE      (32u << 20)
#define RING	      0x100000ull
#define COMPL	      0x110000ull
#define DST	      0x200000ull
#define BAR_SIZE      4096u
#define ACCESS_MAX_NS (2000ull * 1000000ull) /* a vCPU exit that takes 2 s is a hang */

/* The slowest BAR access seen so far: a vCPU exit this long would be a hang. */
static uint64_t worst_ns;

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

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* One guest access, timed: a trapped MMIO exit must not wait on the engine. */
static void bar_access(struct vfio_fx *f, uint64_t off, unsigned size, bool write, uint64_t *v)
{
	uint64_t t0 = now_ns(), dt;

	bus_access(f->bus, BUS_MMIO, VMIG_SDMA_BAR0 + off, size, write, v);
	dt = now_ns() - t0;
	if (dt > worst_ns)
		worst_ns = dt;
	if (dt > ACCESS_MAX_NS)
		fail_msg("BAR %s at %#llx size %u took %llu ms", write ? "write" : "read",
			 (unsigned long long)off, size, (unsigned long long)(dt / 1000000));
}

static uint64_t rd(struct vfio_fx *f, uint32_t off)
{
	uint64_t v = 0;

	bar_access(f, off, 8, false, &v);
	return v;
}

static void wr(struct vfio_fx *f, uint32_t off, uint64_t v)
{
	bar_access(f, off, 8, true, &v);
}

static void ring_enable(struct vfio_fx *f)
{
	wr(f, SDMA_REG_CTRL, 0);
	wr(f, SDMA_REG_WQ_BASE, RING);
	wr(f, SDMA_REG_WQ_CFG, 4);
	wr(f, SDMA_REG_CTRL, 1);
	f->tail = 0;
	assert_int_equal(rd(f, SDMA_REG_STATUS) & 3, 1);
}

static uint32_t queue_fill(struct vfio_fx *f, uint64_t size, uint64_t pattern)
{
	uint32_t slot = f->tail;
	struct sdma_desc d = {.opcode = SDMA_OP_FILL,
			      .flags = SDMA_FLAG_CRAV,
			      .compl_addr = COMPL + slot * 32,
			      .dst = DST,
			      .size = size,
			      .pattern = pattern};

	memset(f->ram + COMPL + slot * 32, 0, 32);
	memcpy(f->ram + RING + slot * sizeof(d), &d, sizeof(d));
	f->tail = (f->tail + 1) & 15;
	return slot;
}

static uint8_t wait_compl(struct vfio_fx *f, uint32_t slot, unsigned ms)
{
	volatile uint8_t *st = f->ram + COMPL + slot * 32;

	for (unsigned i = 0; i < ms * 10 && !*st; i++)
		usleep(100);
	return *st;
}

static int set_state(struct vfio_fx *f, uint32_t state)
{
	struct {
		struct vfio_device_feature hdr;
		struct vfio_device_feature_mig_state s;
	} a = {.hdr = {.argsz = sizeof(a),
		       .flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE},
	       .s = {.device_state = state}};
	int rc = vfio_device_feature(vfio_dev_vfio(f->d), &a.hdr);

	if (!rc && a.s.data_fd >= 0)
		vfio_mig_data_close(a.s.data_fd);
	return rc;
}

/* The device recovers: VFIO reset, then a small FILL completes. */
static void expect_recovers(struct vfio_fx *f)
{
	uint32_t s;

	assert_int_equal(vfio_device_reset(vfio_dev_vfio(f->d)), 0);
	ring_enable(f);
	s = queue_fill(f, 4096, 0x5151515151515151ull);
	wr(f, SDMA_REG_WQ_TAIL, f->tail);
	assert_int_equal(wait_compl(f, s, 5000), SDMA_STATUS_SUCCESS);
	assert_int_equal(f->ram[DST + 4095], 0x51);
}

static void random_access(struct fuzz *z, struct vfio_fx *f)
{
	static const unsigned sizes[] = {1, 2, 4, 8};
	unsigned size = sizes[fuzz_below(z, 4)];
	uint64_t off = fuzz_chance(z, 2) ? fuzz_below(z, 0x60) : fuzz_below(z, BAR_SIZE);
	uint64_t v = fuzz_chance(z, 4) ? 1 : fuzz_interesting(z);

	if (fuzz_chance(z, 4))
		off &= ~(uint64_t)(size - 1);
	bar_access(f, off, size, fuzz_chance(z, 2), &v);
}

/* The phase the guest's storm lands in: engine busy, P2P, STOP, just after a reset. */
static void phase_setup(struct fuzz *z, struct vfio_fx *f, unsigned phase)
{
	ring_enable(f);
	for (int k = 0; k < 3; k++)
		queue_fill(f, 8u << 20, fuzz_u64(z));
	wr(f, SDMA_REG_WQ_TAIL, f->tail);
	switch (phase) {
	case 1:
		assert_int_equal(set_state(f, VFIO_DEVICE_STATE_RUNNING_P2P), 0);
		break;
	case 2:
		assert_int_equal(set_state(f, VFIO_DEVICE_STATE_STOP), 0);
		break;
	case 3:
		wr(f, SDMA_REG_CTRL, 2); /* CTRL.RESET while the engine runs */
		break;
	default:
		break;
	}
}

static void test_hostile_bar_storm(void **state)
{
	struct vfio_fx *f = *state;
	struct fuzz z;

	fuzz_begin(&z, "hostile_bar", 2000);
	while (fuzz_next(&z, 8)) {
		phase_setup(&z, f, (unsigned)(z.iter % 4));
		for (unsigned k = 0; k < 256; k++)
			random_access(&z, f);
		expect_recovers(f);
	}
	fuzz_end(&z);
	printf("worst BAR access %llu us\n", (unsigned long long)(worst_ns / 1000));
}

/*
 * A guest writing the doorbell in a loop while the VMM holds the device (switchover)
 * cannot grow the held list past its bound nor lose a write: at the bound everything held
 * goes to the device in order and the hold is marked broken (the drain then fails).
 */
static void test_hostile_doorbell_hold(void **state)
{
	struct vfio_fx *f = *state;
	struct vfio_dev_stats st;
	uint32_t s0, s1;

	ring_enable(f);
	assert_int_equal(vfio_dev_doorbell_set_path(f->d, VFIO_DOORBELL_SLOW_HOLD), 0);
	assert_false(vfio_dev_doorbell_hold_broken(f->d));
	s0 = queue_fill(f, 4096, 0x6161616161616161ull);
	s1 = queue_fill(f, 4096, 0x6262626262626262ull);
	for (unsigned i = 0; i < 3 * VFIO_DEV_HELD_MAX; i++)
		wr(f, SDMA_REG_WQ_TAIL, i & 1);
	wr(f, SDMA_REG_WQ_TAIL, f->tail);
	/* Two overflows each flushed MAX held writes and the one that found the list full. */
	assert_int_equal(vfio_dev_doorbell_held_count(f->d), VFIO_DEV_HELD_MAX - 1);
	assert_true(vfio_dev_doorbell_hold_broken(f->d));
	vfio_dev_get_stats(f->d, &st);
	assert_int_equal(st.hold_overflows, 2);
	assert_int_equal(st.doorbells_held, 3 * VFIO_DEV_HELD_MAX - 1);
	assert_int_equal(vfio_dev_doorbell_unhold(f->d, VFIO_DOORBELL_SLOW_FORWARD),
			 (int)VFIO_DEV_HELD_MAX - 1);
	assert_int_equal(wait_compl(f, s0, 5000), SDMA_STATUS_SUCCESS);
	assert_int_equal(wait_compl(f, s1, 5000), SDMA_STATUS_SUCCESS);
	/* (The replayed 0,1,0,1... tail writes really move the ring, wraps included: which
	 * FILL ran last is the engine's race with the replay, so DST is not checked.) */
	assert_int_equal(vfio_dev_doorbell_set_path(f->d, VFIO_DOORBELL_FAST), 0);
}

/*
 * Without memory: entering SLOW_HOLD fails cleanly; a held write the list cannot grow for
 * breaks the hold instead of vanishing (everything held, then it, go to the device);
 * pushing writes is all or nothing.
 */
static void test_hold_without_memory(void **state)
{
	struct vfio_fx *f = *state;
	struct vfio_doorbell_write w[100];
	struct vfio_dev_stats st;

	ring_enable(f);
	failnth_arm(1);
	assert_int_equal(vfio_dev_doorbell_set_path(f->d, VFIO_DOORBELL_SLOW_HOLD), -ENOMEM);
	assert_true(failnth_disarm());
	assert_int_equal(vfio_dev_doorbell_get_path(f->d), VFIO_DOORBELL_FAST);
	assert_int_equal(vfio_dev_doorbell_set_path(f->d, VFIO_DOORBELL_SLOW_HOLD), 0);
	for (unsigned i = 0; i < 64; i++) /* the first allocation's room */
		wr(f, SDMA_REG_WQ_TAIL, i & 15);
	failnth_arm(1);
	wr(f, SDMA_REG_WQ_TAIL, 7);
	assert_true(failnth_disarm());
	assert_int_equal(vfio_dev_doorbell_held_count(f->d), 0);
	assert_true(vfio_dev_doorbell_hold_broken(f->d));
	vfio_dev_get_stats(f->d, &st);
	assert_int_equal(st.hold_overflows, 1);
	assert_int_equal(st.doorbells_released, 64);
	for (unsigned i = 0; i < ARRAY_SIZE(w); i++)
		w[i] = (struct vfio_doorbell_write){SDMA_REG_WQ_TAIL, 8, i & 15};
	for (unsigned n = 1;; n++) {
		int rc;
		bool hit;

		failnth_arm(n);
		rc = vfio_dev_doorbell_push_held(f->d, w, ARRAY_SIZE(w));
		hit = failnth_disarm();
		if (!hit) {
			assert_int_equal(rc, 0);
			break;
		}
		assert_int_equal(rc, -ENOMEM);
		assert_int_equal(vfio_dev_doorbell_held_count(f->d), 0); /* nothing changed */
	}
	assert_int_equal(vfio_dev_doorbell_held_count(f->d), 100);
	assert_int_equal(vfio_dev_doorbell_copy_held(f->d, w, ARRAY_SIZE(w)), ARRAY_SIZE(w));
	assert_int_equal(vfio_dev_doorbell_held_count(f->d), 100); /* a copy keeps them */
	vfio_dev_doorbell_drop_held(f->d);
	assert_int_equal(vfio_dev_doorbell_held_count(f->d), 0);
	assert_int_equal(vfio_dev_doorbell_set_path(f->d, VFIO_DOORBELL_FAST), 0);
}

/* Held entries from a stream: outside BAR0, misaligned, odd sizes or too many are refused. */
static void test_push_held_refuses(void **state)
{
	struct vfio_fx *f = *state;
	static struct vfio_doorbell_write many[VFIO_DEV_HELD_MAX + 1];
	const struct vfio_doorbell_write bad[] = {{0x100000, 8, 0},
						  {SDMA_REG_WQ_TAIL + 2, 4, 0},
						  {SDMA_REG_WQ_TAIL, 2, 0},
						  {SDMA_REG_WQ_TAIL, 16, 0},
						  {0xFFFFFFFCu, 8, 0}};

	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(vfio_dev_doorbell_push_held(f->d, &bad[i], 1), -EINVAL);
	for (unsigned i = 0; i < ARRAY_SIZE(many); i++)
		many[i] = (struct vfio_doorbell_write){SDMA_REG_WQ_TAIL, 8, 0};
	assert_int_equal(vfio_dev_doorbell_push_held(f->d, many, ARRAY_SIZE(many)), -ENOSPC);
	assert_int_equal(vfio_dev_doorbell_held_count(f->d), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_hostile_bar_storm, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_hostile_doorbell_hold, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_hold_without_memory, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_push_held_refuses, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
