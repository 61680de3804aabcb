// SPDX-License-Identifier: Apache-2.0
/*
 * A hostile guest driver against the wired VMM's vSMMUv3 with the sdma device behind it
 * (KVM machine running the test guest; this thread plays the guest through the VMM's bus
 * and guest RAM): random STEs and CDs for the device's stream, random commands, random
 * register writes, interleaved with device DMA to random IOVAs. Every step is bounded;
 * afterwards the guest re-probes its vSMMU and the device DMAs correctly again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "arch/smmuv3.h"
#include "common/util.h"
#include "fuzz.h"
#include "tests/e2e/e2e_rig.h"
#include "vmig/guest_abi.h"

static const char *image;

static uint32_t vsmmu_rd32(struct e2e *e, uint32_t off)
{
	return (uint32_t)e2e_rd(e, VMIG_VSMMU_BASE + off, 4);
}

static double worst_us;

/* A guest register write, timed: a vCPU's MMIO exit must never wait on the guest or hang. */
static void vsmmu_wr32(struct e2e *e, uint32_t off, uint32_t v)
{
	double t0 = e2e_now_us(), dt;

	e2e_wr(e, VMIG_VSMMU_BASE + off, 4, v);
	dt = e2e_now_us() - t0;
	if (dt > worst_us)
		worst_us = dt;
	if (dt > 2e6)
		fail_msg("vSMMU write %#x = %#x took %.0f ms", off, v, dt / 1000);
}

/* A guest-RAM or random address for table pointers. */
static uint64_t some_gpa(struct fuzz *z)
{
	return fuzz_chance(z, 2) ? E2E_PT_POOL + (fuzz_below(z, 2u << 20) & ~63ull)
				 : fuzz_interesting(z);
}

static void random_ste(struct fuzz *z, struct e2e *e)
{
	uint64_t a = E2E_STRTAB + (uint64_t)VMIG_SDMA_SID * STE_SIZE;
	uint64_t w0 = fuzz_u64(z), w1 = fuzz_u64(z);

	if (fuzz_chance(z, 2)) {
		w0 = FSET(FSET(0, STE0_V, 1), STE0_CONFIG, fuzz_below(z, 8));
		w0 = FSET(w0, STE0_S1CTXPTR, some_gpa(z) >> 6);
		w0 = FSET(w0, STE0_S1FMT, fuzz_below(z, 4));
		w0 = FSET(w0, STE0_S1CDMAX, fuzz_below(z, 32));
		w1 &= fuzz_u64(z);
	}
	memset(e->ram + a, 0, STE_SIZE);
	memcpy(e->ram + a, &w0, 8);
	memcpy(e->ram + a + 8, &w1, 8);
	e2e_smmu_cmd(e, e2e_cmd_op(CMD_CFGI_STE, VMIG_SDMA_SID), 1);
}

static void random_cd(struct fuzz *z, struct e2e *e)
{
	uint8_t *cd = e->ram + e->cd_gpa;

	if (fuzz_chance(z, 2))
		fuzz_bytes(z, cd, CD_SIZE);
	else
		cd[fuzz_below(z, CD_SIZE)] ^= (uint8_t)(1u << fuzz_below(z, 8));
	e2e_smmu_cmd(e, FSET(e2e_cmd_op(CMD_CFGI_CD, VMIG_SDMA_SID), CMD0_SSID, 0), 1);
}

static void random_cmd(struct fuzz *z, struct e2e *e)
{
	static const unsigned ops[] = {CMD_PREFETCH_CONFIG, CMD_PREFETCH_ADDR,	CMD_CFGI_STE,
				       CMD_CFGI_STE_RANGE,  CMD_CFGI_CD,	CMD_CFGI_CD_ALL,
				       CMD_TLBI_NH_ALL,	    CMD_TLBI_NH_ASID,	CMD_TLBI_NH_VA,
				       CMD_TLBI_NH_VAA,	    CMD_TLBI_S12_VMALL, CMD_TLBI_S2_IPA,
				       CMD_TLBI_NSNH_ALL,   CMD_ATC_INV,	CMD_PRI_RESP,
				       CMD_RESUME,	    CMD_STALL_TERM,	CMD_SYNC};
	uint64_t w0 = fuzz_u64(z) & ~0xffull;

	w0 |= fuzz_chance(z, 8) ? fuzz_below(z, 256) : ops[fuzz_below(z, ARRAY_SIZE(ops))];
	if (fuzz_chance(z, 2))
		w0 = FSET(w0, CMD0_SID, VMIG_SDMA_SID);
	if ((w0 & 0xff) == CMD_SYNC) /* an MSI the guest asked for, somewhere */
		w0 = FSET(w0, CMD0_SYNC_CS, fuzz_below(z, 4));
	e2e_smmu_cmd(e, w0, fuzz_u64(z));
}

static void random_reg(struct fuzz *z, struct e2e *e)
{
	static const uint32_t regs[] = {
	    SMMU_CR0,  SMMU_CR1,       SMMU_CR2,	 SMMU_IRQ_CTRL,	   SMMU_GERRORN,
	    SMMU_GBPA, SMMU_CMDQ_CONS, SMMU_EVENTQ_PROD, SMMU_EVENTQ_CONS, SMMU_STRTAB_BASE_CFG};

	vsmmu_wr32(e, regs[fuzz_below(z, ARRAY_SIZE(regs))], (uint32_t)fuzz_interesting(z));
}

static void random_dma(struct fuzz *z, struct e2e *e)
{
	uint64_t iova = fuzz_chance(z, 2) ? e2e_iova(E2E_DST + fuzz_below(z, E2E_BUF_MAX - 4096))
					  : fuzz_interesting(z);
	uint32_t slot = e2e_sdma_queue(e,
				       (struct sdma_desc){.opcode = SDMA_OP_FILL,
							  .flags = (uint8_t)fuzz_below(z, 8),
							  .dst = iova,
							  .size = 1 + fuzz_below(z, 4096),
							  .pattern = fuzz_u64(z)},
				       e2e_iova(E2E_COMPL));

	e2e_sdma_ring(e);
	e2e_sdma_wait(e, slot, 50);
}

/*
 * The guest driver starts over as Linux's reset path does: queues off first (an error
 * acknowledged while the command queue is on restarts it at the bad command, which fails
 * again), errors acknowledged, re-probe, its S1 STE, sdma reset.
 */
static void guest_recovers(struct e2e *e)
{
	uint8_t want[4096];
	uint32_t slot;

	vsmmu_wr32(e, SMMU_CR0, 0);
	assert_int_equal(vsmmu_rd32(e, SMMU_CR0ACK), 0);
	vsmmu_wr32(e, SMMU_GERRORN, vsmmu_rd32(e, SMMU_GERROR));
	assert_int_equal(vsmmu_rd32(e, SMMU_GERROR), vsmmu_rd32(e, SMMU_GERRORN));
	e2e_smmu_probe(e);
	e2e_smmu_ste_s1(e, VMIG_SDMA_SID, false);
	assert_true(vsmmu_sid_translating(e->dev->vsmmu, VMIG_SDMA_SID));
	e2e_wr(e, e->bar + SDMA_REG_CTRL, 8, 1u << SDMA_CTRL_RESET_SHIFT);
	e2e_sdma_setup(e, e2e_iova(E2E_RING), E2E_MSI_IOVA);
	memset(e2e_ptr(e, E2E_DST), 0, 4096);
	slot = e2e_sdma_queue(e,
			      (struct sdma_desc){.opcode = SDMA_OP_FILL,
						 .dst = e2e_iova(E2E_DST),
						 .size = 4096,
						 .pattern = 0x5A5A5A5A5A5A5A5Aull},
			      e2e_iova(E2E_COMPL));
	e2e_sdma_ring(e);
	assert_int_equal(e2e_sdma_wait(e, slot, 5000), SDMA_STATUS_SUCCESS);
	memset(want, 0x5A, sizeof(want));
	assert_memory_equal(e2e_ptr(e, E2E_DST), want, sizeof(want));
}

static void test_hostile_vsmmu_storm(void **state)
{
	static void (*const acts[])(struct fuzz *, struct e2e *) = {
	    random_ste, random_cd, random_cmd, random_cmd, random_reg, random_dma, random_dma};
	struct e2e e;
	struct fuzz z;

	e2e_boot(&e, image, "i 1", NULL);
	e2e_start(&e);
	assert_int_equal(machine_wait_mark(e.m, 1, 10000), 0);
	e2e_setup_nested(&e);
	fuzz_begin(&z, "hostile_vsmmu", 3000);
	while (fuzz_next(&z, 20)) {
		for (unsigned k = 0; k < 16; k++) {
			acts[fuzz_below(&z, ARRAY_SIZE(acts))](&z, &e);
			/* Kick what was queued; whatever it did, the write returns. */
			vsmmu_wr32(&e, SMMU_CMDQ_PROD, e.cmdq_prod);
		}
		guest_recovers(&e);
	}
	fuzz_end(&z);
	printf("worst vSMMU register write %.0f us\n", worst_us);
	e2e_fini(&e);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hostile_vsmmu_storm),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s TESTGUEST.bin\n", argv[0]);
		return 1;
	}
	image = argv[1];
	e2e_require_kvm();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
