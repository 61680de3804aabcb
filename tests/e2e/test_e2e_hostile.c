// SPDX-License-Identifier: Apache-2.0
/*
 * A hostile guest against the wired VMM (the test guest runs; this thread plays a guest
 * driver that gets everything wrong, through the VMM's bus and guest RAM). Each mistake
 * must give the architectural event or GERROR, and afterwards the same VMM must still do
 * correct DMA: vmig neither crashes nor lets the device reach memory the guest does not own.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tests/e2e/e2e_rig.h"
#include "vmig/guest_abi.h"
#include "arch/smmuv3.h"

static const char *image;

#define OUTSIDE_RAM 0x80000000ull /* below the hole, far above the 64 MiB of RAM */

static void boot_nested(struct e2e *e)
{
	e2e_boot(e, image, "i 1", NULL);
	e2e_start(e);
	assert_int_equal(machine_wait_mark(e->m, 1, 10000), 0);
	e2e_setup_nested(e);
}

static unsigned fill_wait(struct e2e *e, uint64_t iova, struct sdma_compl *c, int timeout_ms)
{
	uint32_t slot = e2e_sdma_queue(e,
				       (struct sdma_desc){.opcode = SDMA_OP_FILL,
							  .dst = iova,
							  .size = 4096,
							  .pattern = 0xA5A5A5A5A5A5A5A5ull},
				       e2e_iova(E2E_COMPL));
	e2e_sdma_ring(e);
	unsigned st = e2e_sdma_wait(e, slot, timeout_ms);
	if (c)
		*c = e2e_sdma_compl(e, slot);
	return st;
}

static unsigned fill(struct e2e *e, uint64_t iova, struct sdma_compl *c)
{
	return fill_wait(e, iova, c, 5000);
}

/*
 * A fill while the translation is broken for every address, the ring's included: the
 * device cannot fetch the descriptor and halts with WQ_FETCH (nothing written anywhere).
 * Then it is reset and set up again, as a driver recovers it.
 */
static void fill_expect_broken(struct e2e *e)
{
	assert_int_equal(fill_wait(e, e2e_iova(E2E_DST), NULL, 300), SDMA_STATUS_NONE);
	uint64_t err = e2e_rd(e, e->bar + SDMA_REG_ERR, 8);
	assert_int_equal(err & 0xFF, SDMA_ERR_WQ_FETCH);
	assert_true(e2e_rd(e, e->bar + SDMA_REG_STATUS, 8) & (1u << SDMA_STATUS_HALTED_SHIFT));
	e2e_wr(e, e->bar + SDMA_REG_CTRL, 8, 1u << SDMA_CTRL_RESET_SHIFT);
	e2e_sdma_setup(e, e2e_iova(E2E_RING), E2E_MSI_IOVA);
}

/* The device still works through the guest's stage 1 (nothing was wedged). */
static void check_dma_still_works(struct e2e *e)
{
	uint8_t want[4096];

	memset(e2e_ptr(e, E2E_DST), 0, 4096);
	assert_int_equal(fill(e, e2e_iova(E2E_DST), NULL), SDMA_STATUS_SUCCESS);
	memset(want, 0xA5, sizeof(want));
	assert_memory_equal(e2e_ptr(e, E2E_DST), want, sizeof(want));
}

/* Waits for an event of id want for the device's virtual SID, skipping others. */
static bool wait_event(struct e2e *e, unsigned want, uint64_t evt[4])
{
	for (int i = 0; i < 16; i++) {
		int id = e2e_smmu_evt_wait(e, evt, 2000);
		if (id < 0)
			return false;
		if ((unsigned)id == want)
			return FGET(evt[0], EVT0_SID) == VMIG_SDMA_SID;
	}
	return false;
}

/* DMA to an IOVA the guest never mapped, no stall: F_TRANSLATION with the virtual SID. */
static void test_unmapped_iova(void **state)
{
	struct e2e e;
	struct sdma_compl c;
	uint64_t evt[4];
	uint64_t iova = e2e_iova(E2E_DST) + (32ull << 20);

	boot_nested(&e);
	assert_int_equal(fill(&e, iova, &c), SDMA_STATUS_PAGE_FAULT);
	assert_int_equal(c.fault_addr, iova);
	assert_true(wait_event(&e, EVT_F_TRANSLATION, evt));
	assert_int_equal(evt[2], iova); /* the input address */
	check_dma_still_works(&e);
	e2e_fini(&e);
}

/*
 * Stage 1 maps an IOVA to an IPA that stage 2 does not map (not guest RAM): the access
 * faults in stage 2 instead of reaching memory. The same for the completion MSI: stage 1
 * sends it just past the MSI window, and no interrupt arrives.
 */
static void test_s1_to_unmapped_ipa(void **state)
{
	struct e2e e;
	struct sdma_compl c;
	struct host_platform_stats h0, h1;
	uint64_t iova = e2e_iova(E2E_DST) + (64ull << 20);

	boot_nested(&e);
	assert_int_equal(e2e_s1_map(e.s1, iova, OUTSIDE_RAM, 4096), 0);
	host_platform_get_stats(e.hp, &h0);
	unsigned st = fill(&e, iova, &c);
	assert_true(st == SDMA_STATUS_PAGE_FAULT);
	host_platform_get_stats(e.hp, &h1);
	assert_true(h1.smmu_events > h0.smmu_events); /* the host SMMU saw the S2 fault */

	/* MSI: stage 1 points it at an IPA stage 2 has nothing at. */
	assert_int_equal(e2e_s1_unmap(e.s1, E2E_MSI_IOVA, 4096), 0);
	assert_int_equal(
	    e2e_s1_map(e.s1, E2E_MSI_IOVA, VMIG_MSI_WINDOW + VMIG_MSI_WINDOW_SIZE, 4096), 0);
	e2e_smmu_cmd(&e, e2e_cmd_op(CMD_TLBI_NH_ALL, 0), 0);
	assert_true(e2e_smmu_sync(&e));
	uint32_t slot =
	    e2e_sdma_queue(&e, (struct sdma_desc){.opcode = SDMA_OP_NOOP, .flags = SDMA_FLAG_RCI},
			   e2e_iova(E2E_COMPL));
	e2e_sdma_ring(&e);
	assert_int_equal(e2e_sdma_wait(&e, slot, 5000), SDMA_STATUS_SUCCESS);
	assert_int_equal(machine_wait_mark(e.m, 0x101, 300), -ETIMEDOUT);
	uint64_t err = e2e_rd(&e, e.bar + SDMA_REG_ERR, 8);
	assert_int_equal(err & 0xFF, SDMA_ERR_MSI_WRITE);

	/* Put the MSI back into the window: now it arrives. */
	assert_int_equal(e2e_s1_unmap(e.s1, E2E_MSI_IOVA, 4096), 0);
	assert_int_equal(e2e_s1_map(e.s1, E2E_MSI_IOVA, VMIG_MSI_WINDOW, 4096), 0);
	e2e_smmu_cmd(&e, e2e_cmd_op(CMD_TLBI_NH_ALL, 0), 0);
	assert_true(e2e_smmu_sync(&e));
	slot =
	    e2e_sdma_queue(&e, (struct sdma_desc){.opcode = SDMA_OP_NOOP, .flags = SDMA_FLAG_RCI},
			   e2e_iova(E2E_COMPL));
	e2e_sdma_ring(&e);
	assert_int_equal(e2e_sdma_wait(&e, slot, 5000), SDMA_STATUS_SUCCESS);
	assert_int_equal(machine_wait_mark(e.m, 0x101, 5000), 0);
	check_dma_still_works(&e);
	e2e_fini(&e);
}

/* CD table pointer outside RAM, then page-table pointer outside RAM: DMA faults, events. */
static void test_bad_cd_and_table_pointers(void **state)
{
	struct e2e e;
	uint64_t evt[4], w0, w1, cd[8];
	struct host_platform_stats h0, h1;

	boot_nested(&e);
	w0 = FSET(FSET(FSET(0, STE0_V, 1), STE0_CONFIG, STE_CFG_S1), STE0_S1CTXPTR,
		  OUTSIDE_RAM >> 6);
	w1 = FSET(FSET(FSET(0, STE1_S1CIR, 1), STE1_S1COR, 1), STE1_S1CSH, 3);
	w1 = FSET(w1, STE1_S1STALLD, 1);
	e2e_smmu_ste_raw(&e, VMIG_SDMA_SID, w0, w1);
	fill_expect_broken(&e);
	int id = e2e_smmu_evt_wait(&e, evt, 2000);
	printf("# CD outside RAM: event 0x%x\n", id);
	assert_true(id == EVT_F_CD_FETCH || id == EVT_C_BAD_CD || id == EVT_F_WALK_EABT ||
		    id == EVT_F_TRANSLATION);
	assert_int_equal(FGET(evt[0], EVT0_SID), VMIG_SDMA_SID);

	/* A valid CD whose TTB0 points outside RAM. */
	e2e_smmu_ste_s1(&e, VMIG_SDMA_SID, false);
	e2e_s1_cd(e.s1, 1, false, cd);
	cd[1] = (cd[1] & ~FMASK(CD1_TTB0)) | FSET(0, CD1_TTB0, OUTSIDE_RAM >> 4);
	memcpy(e2e_ptr(&e, e.cd_gpa), cd, sizeof(cd));
	e2e_smmu_cmd(&e, FSET(e2e_cmd_op(CMD_CFGI_CD, VMIG_SDMA_SID), CMD0_SSID, 0), 1);
	e2e_smmu_cmd(&e, FSET(e2e_cmd_op(CMD_TLBI_NH_ASID, 0), CMD0_ASID, 1), 0);
	assert_true(e2e_smmu_sync(&e));
	while (e2e_smmu_evt_pop(&e, evt))
		;
	host_platform_get_stats(e.hp, &h0);
	fill_expect_broken(&e);
	host_platform_get_stats(e.hp, &h1);
	/*
	 * The walk's first table is an IPA stage 2 does not map: a stage-2 fault, which is the
	 * host's to see (as on Linux, the vEVENTQ carries only what the guest owns).
	 */
	assert_true(h1.smmu_events > h0.smmu_events);
	id = e2e_smmu_evt_wait(&e, evt, 200);
	printf("# page table outside RAM: guest event 0x%x, host events +%llu\n", id,
	       (unsigned long long)(h1.smmu_events - h0.smmu_events));

	/* A good configuration again. */
	e2e_smmu_ste_s1(&e, VMIG_SDMA_SID, false);
	e2e_smmu_cmd(&e, FSET(e2e_cmd_op(CMD_TLBI_NH_ASID, 0), CMD0_ASID, 1), 0);
	assert_true(e2e_smmu_sync(&e));
	check_dma_still_works(&e);
	e2e_fini(&e);
}

static uint32_t smmu_rd32(struct e2e *e, uint32_t off)
{
	return (uint32_t)e2e_rd(e, VMIG_VSMMU_BASE + off, 4);
}

static void smmu_wr32(struct e2e *e, uint32_t off, uint32_t v)
{
	e2e_wr(e, VMIG_VSMMU_BASE + off, 4, v);
}

/*
 * Stream table outside RAM (F_STE_FETCH), an invalid STE (C_BAD_STE), an illegal command
 * (CERROR_ILL, recovered as Linux does), then an event-queue overflow.
 */
static void test_strtab_commands_overflow(void **state)
{
	struct e2e e;
	uint64_t evt[4];

	boot_nested(&e);
	/* An STE with a reserved Config: C_BAD_STE for the guest, the device stays safe. */
	e2e_smmu_ste_raw(&e, VMIG_SDMA_SID, FSET(FSET(0, STE0_V, 1), STE0_CONFIG, 6), 0);
	assert_true(wait_event(&e, EVT_C_BAD_STE, evt));
	fill_expect_broken(&e);

	/* Illegal opcode: the queue stops with CERROR_ILL and GERROR.CMDQ_ERR. */
	uint32_t bad = e.cmdq_prod & ((1u << E2E_CMDQ_LOG2) - 1);
	e2e_smmu_cmd(&e, 0x7F, 0);
	assert_false(e2e_smmu_sync(&e));
	assert_true(e2e_smmu_gerror_active(&e) & (1u << GERROR_CMDQ_ERR));
	assert_int_equal(FGET(smmu_rd32(&e, SMMU_CMDQ_CONS), Q_CONS_ERR), CMDQ_ERR_ILL);
	/* Recovery: the bad slot becomes a CMD_SYNC, GERRORN acknowledges, the queue goes on. */
	uint64_t sync[2] = {FSET(e2e_cmd_op(CMD_SYNC, 0), CMD0_SYNC_CS, CMD_SYNC_CS_SEV), 0};
	memcpy(e2e_ptr(&e, E2E_CMDQ + bad * CMD_SIZE), sync, sizeof(sync));
	smmu_wr32(&e, SMMU_GERRORN, smmu_rd32(&e, SMMU_GERROR));
	assert_true(e2e_smmu_sync(&e));
	assert_int_equal(e2e_smmu_gerror_active(&e), 0);

	/* Stream table outside RAM: CFGI_STE of the device's stream cannot fetch it. */
	smmu_wr32(&e, SMMU_CR0, (uint32_t)(FMASK(CR0_CMDQEN) | FMASK(CR0_EVENTQEN)));
	e2e_wr(&e, VMIG_VSMMU_BASE + SMMU_STRTAB_BASE, 8, OUTSIDE_RAM);
	smmu_wr32(&e, SMMU_CR0,
		  (uint32_t)(FMASK(CR0_CMDQEN) | FMASK(CR0_EVENTQEN) | FMASK(CR0_SMMUEN)));
	while (e2e_smmu_evt_pop(&e, evt))
		;
	e2e_smmu_cmd(&e, e2e_cmd_op(CMD_CFGI_STE, VMIG_SDMA_SID), 1);
	assert_true(e2e_smmu_sync(&e));
	assert_true(wait_event(&e, EVT_F_STE_FETCH, evt));
	fill_expect_broken(&e);

	/* Overflow: more events than the queue holds, none consumed. */
	for (unsigned i = 0; i < (1u << E2E_EVTQ_LOG2) + 16; i++)
		e2e_smmu_cmd(&e, e2e_cmd_op(CMD_CFGI_STE, VMIG_SDMA_SID), 1);
	assert_true(e2e_smmu_sync(&e));
	uint32_t prod = smmu_rd32(&e, SMMU_EVENTQ_PROD), cons = smmu_rd32(&e, SMMU_EVENTQ_CONS);
	assert_int_not_equal(FGET(prod, Q_PROD_OVFLG), FGET(cons, Q_CONS_OVACKFLG));

	/* Everything repaired: the stream table back in RAM, the device translating again. */
	smmu_wr32(&e, SMMU_CR0, (uint32_t)(FMASK(CR0_CMDQEN) | FMASK(CR0_EVENTQEN)));
	e2e_wr(&e, VMIG_VSMMU_BASE + SMMU_STRTAB_BASE, 8, E2E_STRTAB);
	smmu_wr32(&e, SMMU_CR0,
		  (uint32_t)(FMASK(CR0_CMDQEN) | FMASK(CR0_EVENTQEN) | FMASK(CR0_SMMUEN)));
	while (e2e_smmu_evt_pop(&e, evt))
		;
	e2e_smmu_ste_s1(&e, VMIG_SDMA_SID, false);
	e2e_smmu_cmd(&e, FSET(e2e_cmd_op(CMD_TLBI_NH_ASID, 0), CMD0_ASID, 1), 0);
	assert_true(e2e_smmu_sync(&e));
	check_dma_still_works(&e);
	e2e_fini(&e);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_unmapped_iova),
	    cmocka_unit_test(test_s1_to_unmapped_ipa),
	    cmocka_unit_test(test_bad_cd_and_table_pointers),
	    cmocka_unit_test(test_strtab_commands_overflow),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s TESTGUEST.bin\n", argv[0]);
		return 1;
	}
	image = argv[1];
	e2e_require_kvm();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
