// SPDX-License-Identifier: Apache-2.0
/*
 * System tests of the passthrough wiring on KVM (the test guest runs; this thread plays its
 * drivers through the VMM's bus):
 *  - nested_dma_msi: the vSMMU answers at VMIG_VSMMU_BASE, a guest CFGI_STE becomes a host
 *    nested HWPT, BAR0 reaches the device, a copy runs through both stages, and the
 *    device's completion MSI (a DMA write to an IOVA that stage 1 maps into the MSI window)
 *    arrives in the guest as vector 0x30;
 *  - doorbell_hold_release: SLOW_HOLD keeps a doorbell from the device until released;
 *  - doorbell_paths: the guest's own doorbell loop (64-bit ring 3) on the fast path wakes
 *    the engine with no userspace exit, then on the slow path with one exit per doorbell,
 *    then held and released, switched while it runs;
 *  - stall_resume_and_abort: the device blocks on a fault, the guest gets the stall event
 *    (virtual SID, STAG), maps and RESUMEs -> success; RESUME abort -> ABORTED.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "host/vfio.h"
#include "tests/e2e/e2e_rig.h"
#include "vmig/guest_abi.h"
#include "arch/smmuv3.h"

static const char *image;

static void fill_pattern(uint8_t *p, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 131 + (i >> 9));
}

static void test_nested_dma_msi(void **state)
{
	struct e2e e;
	struct devices_stats st;
	struct host_platform_stats hs;
	const size_t len = 256 * 1024;

	e2e_boot(&e, image, "i 1", NULL);
	e2e_start(&e);
	assert_int_equal(machine_wait_mark(e.m, 1, 10000), 0);
	e2e_setup_nested(&e);
	fill_pattern(e2e_ptr(&e, E2E_SRC), len, 7);
	memset(e2e_ptr(&e, E2E_DST), 0, len);
	uint32_t slot = e2e_sdma_queue(&e,
				       (struct sdma_desc){.opcode = SDMA_OP_MEMMOVE,
							  .flags = SDMA_FLAG_RCI,
							  .src = e2e_iova(E2E_SRC),
							  .dst = e2e_iova(E2E_DST),
							  .size = len},
				       e2e_iova(E2E_COMPL));
	e2e_sdma_ring(&e);
	assert_int_equal(e2e_sdma_wait(&e, slot, 5000), SDMA_STATUS_SUCCESS);
	assert_memory_equal(e2e_ptr(&e, E2E_DST), e2e_ptr(&e, E2E_SRC), len);
	/* The guest counted the MSI on vector 0x30 (mark 0x100 + 1). */
	assert_int_equal(machine_wait_mark(e.m, 0x101, 5000), 0);
	/* Both sides count after passing the MSI on, which may be after the guest's mark. */
	for (int i = 0; i < 1000; i++) {
		devices_get_stats(e.dev, &st);
		host_platform_get_stats(e.hp, &hs);
		if (st.msis && hs.msis)
			break;
		usleep(1000);
	}
	assert_int_equal(st.msis, 1);
	assert_int_equal(hs.msis, 1);
	assert_int_equal(st.msi_errors, 0);
	/* No shadow tail: the doorbell was trapped and forwarded. */
	assert_int_equal(st.sdma.doorbells_trapped, 1);
	assert_false(vfio_dev_doorbell_fast_armed(e.dev->sdma));
	e2e_fini(&e);
}

/*
 * The event loop parked (migration's quiesce): a completion MSI the device sent stays with
 * the host and reaches the guest only when drained by the caller or when the loop runs
 * again. Without the park the guest counts it at once (test_nested_dma_msi).
 */
static void test_quiesce_holds_msis(void **state)
{
	struct e2e e;
	struct devices_stats st;

	e2e_boot(&e, image, "i 2", NULL);
	e2e_start(&e);
	assert_int_equal(machine_wait_mark(e.m, 1, 10000), 0);
	e2e_setup_nested(&e);
	for (unsigned k = 1; k <= 2; k++) {
		devices_quiesce(e.dev);
		uint32_t slot = e2e_sdma_queue(
		    &e, (struct sdma_desc){.opcode = SDMA_OP_NOOP, .flags = SDMA_FLAG_RCI},
		    e2e_iova(E2E_COMPL));
		e2e_sdma_ring(&e);
		assert_int_equal(e2e_sdma_wait(&e, slot, 5000), SDMA_STATUS_SUCCESS);
		/* Parked: nothing reaches the guest. */
		assert_int_equal(machine_wait_mark(e.m, 0x100 + k, 300), -ETIMEDOUT);
		devices_get_stats(e.dev, &st);
		assert_int_equal(st.msis, k - 1);
		if (k == 1)
			devices_drain(e.dev); /* delivered by the caller, the loop still parked */
		else
			devices_resume(e.dev);
		assert_int_equal(machine_wait_mark(e.m, 0x100 + k, 5000), 0);
		if (k == 1)
			devices_resume(e.dev);
	}
	e2e_fini(&e);
}

static void test_doorbell_hold_release(void **state)
{
	struct e2e e;
	const size_t len = 8192;

	e2e_boot(&e, image, "i 5", NULL);
	e2e_start(&e);
	assert_int_equal(machine_wait_mark(e.m, 1, 10000), 0);
	e2e_setup_nested(&e);
	assert_int_equal(vfio_dev_doorbell_set_path(e.dev->sdma, VFIO_DOORBELL_SLOW_HOLD), 0);
	memset(e2e_ptr(&e, E2E_DST), 0, len);
	uint32_t slot = e2e_sdma_queue(&e,
				       (struct sdma_desc){.opcode = SDMA_OP_FILL,
							  .dst = e2e_iova(E2E_DST),
							  .size = len,
							  .pattern = 0x1122334455667788ull},
				       e2e_iova(E2E_COMPL));
	e2e_sdma_ring(&e);
	usleep(100 * 1000);
	/* Held: the device saw nothing. */
	assert_int_equal(e2e_sdma_compl(&e, slot).status, SDMA_STATUS_NONE);
	assert_int_equal(vfio_dev_doorbell_held_count(e.dev->sdma), 1);
	assert_int_equal(vfio_dev_doorbell_release_held(e.dev->sdma), 1);
	assert_int_equal(e2e_sdma_wait(&e, slot, 5000), SDMA_STATUS_SUCCESS);
	assert_int_equal(vfio_dev_doorbell_held_count(e.dev->sdma), 0);
	uint64_t first;
	memcpy(&first, e2e_ptr(&e, E2E_DST + len - 8), 8);
	assert_int_equal(first, 0x1122334455667788ull);

	/* Take/push (the migration stream's view): a held doorbell moved and replayed. */
	slot = e2e_sdma_queue(&e, (struct sdma_desc){.opcode = SDMA_OP_NOOP}, e2e_iova(E2E_COMPL));
	e2e_sdma_ring(&e);
	struct vfio_doorbell_write w[4];
	assert_int_equal(vfio_dev_doorbell_copy_held(e.dev->sdma, w, 4), 1);
	vfio_dev_doorbell_drop_held(e.dev->sdma);
	assert_int_equal(w[0].value, e.tail);
	assert_int_equal(vfio_dev_doorbell_push_held(e.dev->sdma, w, 1), 0);
	w[1] = (struct vfio_doorbell_write){.offset = 4, .size = 8}; /* misaligned */
	assert_int_equal(vfio_dev_doorbell_push_held(e.dev->sdma, &w[1], 1), -EINVAL);
	assert_int_equal(vfio_dev_doorbell_set_path(e.dev->sdma, VFIO_DOORBELL_FAST), 0);
	assert_int_equal(vfio_dev_doorbell_release_held(e.dev->sdma), 1);
	assert_int_equal(e2e_sdma_wait(&e, slot, 5000), SDMA_STATUS_SUCCESS);
	e2e_fini(&e);
}

/* A FILL with block-on-fault to an IOVA stage 1 does not map yet; returns its slot. */
static uint32_t stall_submit(struct e2e *e, uint64_t iova)
{
	uint32_t slot = e2e_sdma_queue(e,
				       (struct sdma_desc){.opcode = SDMA_OP_FILL,
							  .flags = SDMA_FLAG_BOF,
							  .dst = iova,
							  .size = 4096,
							  .pattern = 0x7777777777777777ull},
				       e2e_iova(E2E_COMPL));
	e2e_sdma_ring(e);
	return slot;
}

/* The stall event the guest gets: Stall=1, the virtual SID, the faulting IOVA. */
static uint16_t stall_event(struct e2e *e, uint64_t iova)
{
	uint64_t evt[4];

	assert_int_equal(e2e_smmu_evt_wait(e, evt, 5000), EVT_F_TRANSLATION);
	assert_true(FGET(evt[1], EVT1_STALL));
	assert_int_equal(FGET(evt[0], EVT0_SID), VMIG_SDMA_SID);
	assert_int_equal(evt[2] & ~0xFFFull, iova);
	return (uint16_t)FGET(evt[1], EVT1_STAG);
}

static void resume(struct e2e *e, uint16_t stag, unsigned how)
{
	e2e_smmu_cmd(e, FSET(e2e_cmd_op(CMD_RESUME, VMIG_SDMA_SID), CMD0_RESUME_RESP, how), stag);
	assert_true(e2e_smmu_sync(e));
}

/*
 * I/O page faults end to end: the device stalls on an unmapped page, the host fault queue
 * reaches the guest's event queue as a stall, the guest maps the page and RESUMEs (retry):
 * the device completes; a second stall answered with abort completes as ABORTED.
 */
static void test_stall_resume_and_abort(void **state)
{
	struct e2e e;
	struct devices_stats st;
	uint64_t iova = e2e_iova(E2E_DST) + (16ull << 20);

	e2e_boot(&e, image, "i 1", NULL);
	e2e_start(&e);
	assert_int_equal(machine_wait_mark(e.m, 1, 10000), 0);
	e2e_setup_nested(&e);
	e2e_smmu_ste_s1(&e, VMIG_SDMA_SID, true);

	uint32_t slot = stall_submit(&e, iova);
	uint16_t stag = stall_event(&e, iova);
	usleep(20 * 1000);
	assert_int_equal(e2e_sdma_compl(&e, slot).status, SDMA_STATUS_NONE); /* still blocked */
	assert_int_equal(e2e_s1_map(e.s1, iova, E2E_DST, 4096), 0);
	resume(&e, stag, CMD_RESUME_RETRY);
	assert_int_equal(e2e_sdma_wait(&e, slot, 5000), SDMA_STATUS_SUCCESS);
	assert_int_equal(*(uint8_t *)e2e_ptr(&e, E2E_DST + 4095), 0x77);

	slot = stall_submit(&e, iova + 4096);
	stag = stall_event(&e, iova + 4096);
	resume(&e, stag, CMD_RESUME_ABORT);
	assert_int_equal(e2e_sdma_wait(&e, slot, 5000), SDMA_STATUS_ABORTED);

	devices_get_stats(e.dev, &st);
	assert_int_equal(st.nested.faults, 2);
	assert_int_equal(st.nested.responses, 2);
	e2e_fini(&e);
}

/*
 * The test guest's ring-3 loop "D" writes 1, 2, 3... to 0xD0201000 and waits until FLAG
 * equals the value. BAR0 is placed so that this is the TAIL register; descriptor i is a
 * FILL of 8 bytes at FLAG: FLAG = i + 1 and, in the next dword (the shadow tail), i + 2.
 * So each doorbell runs exactly one descriptor, which lets the guest ring the next.
 */
#define DB_BAR	     (0xD0201000ull - SDMA_REG_WQ_TAIL)
#define DB_RING	     0x3000000ull
#define DB_RING_LOG2 12

static void doorbell_ring_prepare(struct e2e *e)
{
	for (uint32_t i = 0; i < (1u << DB_RING_LOG2); i++) {
		struct sdma_desc d = {.opcode = SDMA_OP_FILL,
				      .dst = E2E_FLAG,
				      .size = 8,
				      .pattern = (uint64_t)(i + 1) | ((uint64_t)(i + 2) << 32)};
		memcpy(e2e_ptr(e, DB_RING + i * sizeof(d)), &d, sizeof(d));
	}
	uint32_t init[2] = {0, 1};
	memcpy(e2e_ptr(e, E2E_FLAG), init, sizeof(init));
	e2e_wr(e, e->bar + SDMA_REG_WQ_BASE, 8, DB_RING);
	e2e_wr(e, e->bar + SDMA_REG_WQ_CFG, 8, DB_RING_LOG2);
	e2e_wr(e, e->bar + SDMA_REG_CTRL, 8, 1);
	/*
	 * The shadow tail set behind the VMM's back, as a migration destination's device state
	 * arrives through VFIO: no trapped write, so the fast path is not armed until the path
	 * is set again (which re-reads the device).
	 */
	uint64_t shadow = (E2E_FLAG + 4) | 1;
	assert_int_equal(vfio_region_write(vfio_dev_vfio(e->dev->sdma), VFIO_PCI_BAR0_REGION_INDEX,
					   SDMA_REG_WQ_SHADOW, &shadow, 8),
			 8);
	assert_false(vfio_dev_doorbell_fast_armed(e->dev->sdma));
	assert_int_equal(vfio_dev_doorbell_set_path(e->dev->sdma, VFIO_DOORBELL_FAST), 0);
}

static uint32_t flag_read(struct e2e *e)
{
	return __atomic_load_n((uint32_t *)e2e_ptr(e, E2E_FLAG), __ATOMIC_ACQUIRE);
}

/* Waits until FLAG >= v; returns FLAG (or less than v on timeout). */
static uint32_t flag_wait(struct e2e *e, uint32_t v, int timeout_ms)
{
	double end = e2e_now_us() + timeout_ms * 1000.0;
	uint32_t f;

	while ((f = flag_read(e)) < v && e2e_now_us() < end)
		usleep(100);
	return f;
}

static uint64_t vcpu_exits(struct e2e *e)
{
	return __atomic_load_n(&e->m->vm->vcpus[0].exits, __ATOMIC_RELAXED);
}

static void test_doorbell_paths(void **state)
{
	struct devices_config dc = {.sdma_bar0_gpa = DB_BAR, .path = VFIO_DOORBELL_FAST};
	struct devices_stats st;
	struct e2e e;

	e2e_boot(&e, image, "D", &dc);
	/* The vSMMU stays off with GBPA bypass: IOVA = IPA, straight onto stage 2. */
	doorbell_ring_prepare(&e);
	assert_true(vfio_dev_doorbell_fast_armed(e.dev->sdma));
	e2e_start(&e);

	/* Fast path: hundreds of doorbells, no exits. */
	assert_true(flag_wait(&e, 50, 10000) >= 50);
	uint64_t x0 = vcpu_exits(&e);
	uint32_t f0 = flag_read(&e);
	assert_true(flag_wait(&e, f0 + 400, 10000) >= f0 + 400);
	uint64_t x1 = vcpu_exits(&e);
	uint32_t f1 = flag_read(&e);
	printf("# fast path: %u doorbells, %llu exits\n", f1 - f0, (unsigned long long)(x1 - x0));
	assert_true(x1 - x0 < 5);
	devices_get_stats(e.dev, &st);
	assert_int_equal(st.sdma.doorbells_trapped, 0);

	/* Slow path, switched while the guest rings: one trapped write per doorbell. */
	assert_int_equal(vfio_dev_doorbell_set_path(e.dev->sdma, VFIO_DOORBELL_SLOW_FORWARD), 0);
	assert_false(vfio_dev_doorbell_fast_armed(e.dev->sdma));
	f0 = flag_read(&e);
	assert_true(flag_wait(&e, f0 + 100, 10000) >= f0 + 100);
	devices_get_stats(e.dev, &st);
	assert_true(st.sdma.doorbells_trapped >= 99);

	/*
	 * Held: the guest's next doorbell never reaches the device. Once it is held the guest
	 * has seen the previous FILL complete and waits for this one: FLAG is final (polled,
	 * not slept for: under load the guest may take long to ring again).
	 */
	assert_int_equal(vfio_dev_doorbell_set_path(e.dev->sdma, VFIO_DOORBELL_SLOW_HOLD), 0);
	for (int i = 0; i < 10000 && vfio_dev_doorbell_held_count(e.dev->sdma) == 0; i++)
		usleep(1000);
	assert_int_equal(vfio_dev_doorbell_held_count(e.dev->sdma), 1);
	f0 = flag_read(&e);
	usleep(100 * 1000);
	assert_int_equal(flag_read(&e), f0);
	assert_int_equal(vfio_dev_doorbell_held_count(e.dev->sdma), 1);

	/* Back to fast, release: the held write runs and the loop goes on without exits. */
	assert_int_equal(vfio_dev_doorbell_set_path(e.dev->sdma, VFIO_DOORBELL_FAST), 0);
	assert_int_equal(vfio_dev_doorbell_release_held(e.dev->sdma), 1);
	assert_true(flag_wait(&e, f0 + 200, 10000) >= f0 + 200);
	assert_true(flag_read(&e) < (1u << DB_RING_LOG2) - 16); /* still inside the ring */
	e2e_fini(&e);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_nested_dma_msi),
	    cmocka_unit_test(test_quiesce_holds_msis),
	    cmocka_unit_test(test_doorbell_hold_release),
	    cmocka_unit_test(test_doorbell_paths),
	    cmocka_unit_test(test_stall_resume_and_abort),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s TESTGUEST.bin\n", argv[0]);
		return 1;
	}
	image = argv[1];
	e2e_require_kvm();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
