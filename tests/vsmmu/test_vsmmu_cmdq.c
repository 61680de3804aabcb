// SPDX-License-Identifier: Apache-2.0
/* Command queue: CMD_SYNC completion, every command, CERROR_ILL/ABT and recovery, wrap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tests/vsmmu/harness.h"

static void setup_probe(struct th *t, bool bridge, unsigned cmdq_log2)
{
	th_init(t, NULL, bridge);
	if (bridge)
		th_attach(t, 0x10);
	th_driver_probe(t, false, 8, cmdq_log2, 8);
	t->n_msi = 0;
	t->n_inv = t->n_inv_calls = 0;
}

static uint32_t cmdq_cons_ptr(struct th *t)
{
	return th_rd32(t, SMMU_CMDQ_CONS) & ((2u << t->cmdq_log2) - 1);
}

static void test_sync_irq_writes_msi_word(void **state)
{
	struct th t;
	uint64_t w0 = FSET(FSET(0, CMD0_OP, CMD_SYNC), CMD0_SYNC_CS, CMD_SYNC_CS_IRQ);

	setup_probe(&t, false, 8);
	/* Linux: MSIAddr = the sync's own slot, MSIData = 0; it polls word 0 to clear. */
	assert_true(th_sync(&t));
	/* Arbitrary data to a RAM scratch address. */
	th_ram_st64(&t, TH_SCRATCH, ~0ull);
	th_cmd(&t, FSET(w0, CMD0_SYNC_MSIDATA, 0xCAFEF00D),
	       FSET(0, CMD1_SYNC_MSIADDR, TH_SCRATCH >> 2));
	th_kick(&t);
	assert_int_equal(th_ram_ld64(&t, TH_SCRATCH), 0xFFFFFFFFCAFEF00Dull); /* 32-bit write */
	/* To the MSI window: a real MSI. */
	th_cmd(&t, FSET(w0, CMD0_SYNC_MSIDATA, 0x33), FSET(0, CMD1_SYNC_MSIADDR, TH_MSI_BASE >> 2));
	th_kick(&t);
	assert_int_equal(t.n_msi, 1);
	assert_int_equal(t.msi[0].addr, TH_MSI_BASE);
	assert_int_equal(t.msi[0].data, 0x33);
	assert_int_equal(cmdq_cons_ptr(&t), t.cmdq_prod);
	th_fini(&t);
}

static void test_sync_sev_and_none(void **state)
{
	struct th t;
	uint64_t w0 = FSET(0, CMD0_OP, CMD_SYNC);
	struct vsmmu_stats st;

	setup_probe(&t, false, 8);
	th_cmd(&t, FSET(w0, CMD0_SYNC_CS, CMD_SYNC_CS_SEV), 0);
	th_cmd(&t, FSET(w0, CMD0_SYNC_CS, CMD_SYNC_CS_NONE), 0);
	th_kick(&t);
	assert_int_equal(t.n_sev, 1);
	assert_int_equal(t.n_msi, 0);
	vsmmu_get_stats(t.vs, &st);
	assert_true(st.syncs >= 4);
	assert_int_equal(cmdq_cons_ptr(&t), t.cmdq_prod);
	th_fini(&t);
}

static void test_every_command_accepted(void **state)
{
	struct th t;
	unsigned err;
	const uint64_t sid = 0x10;
	const uint64_t cmds[][2] = {
	    {th_op(CMD_PREFETCH_CONFIG, sid), 0},
	    {th_op(CMD_PREFETCH_ADDR, sid), 0x1000 | 3},
	    {th_op(CMD_CFGI_STE, sid), 1},
	    {th_op(CMD_CFGI_STE_RANGE, sid), 4},
	    {th_op(CMD_CFGI_CD, sid) | FSET(0, CMD0_SSID, 7), 1},
	    {th_op(CMD_CFGI_CD_ALL, sid), 0},
	    {FSET(th_op(CMD_TLBI_NH_ALL, 0), CMD0_VMID, 0), 0},
	    {FSET(th_op(CMD_TLBI_NH_ASID, 0), CMD0_ASID, 5), 0},
	    {FSET(th_op(CMD_TLBI_NH_VA, 0), CMD0_ASID, 5), 0x40001000 | 1},
	    {FSET(FSET(th_op(CMD_TLBI_NH_VA, 0), CMD0_TLBI_NUM, 3), CMD0_TLBI_SCALE, 1),
	     FSET(0x40000000, CMD1_TLBI_TG, 1)},
	    {th_op(CMD_TLBI_NH_VAA, 0), 0x40001000},
	    {th_op(CMD_TLBI_NSNH_ALL, 0), 0},
	    {th_op(CMD_ATC_INV, sid), 0x2000 | 1},
	    {th_op(CMD_RESUME, sid) | FSET(0, CMD0_RESUME_RESP, 1), 0x55},
	    {th_op(CMD_STALL_TERM, sid), 0},
	    {th_op(CMD_SYNC, 0), 0},
	    {th_op(CMD_ATC_INV, 0x11), 0}, /* no device: accepted, not forwarded */
	    {th_op(CMD_CFGI_CD, 0x11), 0},
	};

	setup_probe(&t, true, 8);
	for (unsigned i = 0; i < ARRAY_SIZE(cmds); i++)
		th_cmd(&t, cmds[i][0], cmds[i][1]);
	assert_true(th_sync(&t));
	assert_false(th_cmdq_error(&t, &err));
	assert_int_equal(cmdq_cons_ptr(&t), t.cmdq_prod);
	/* Forwarded in order: CFGI_CD, CFGI_CD_ALL, 5 TLBIs, NSNH_ALL, ATC_INV of sid. */
	const unsigned fwd_ops[] = {CMD_CFGI_CD,      CMD_CFGI_CD_ALL,	 CMD_TLBI_NH_ALL,
				    CMD_TLBI_NH_ASID, CMD_TLBI_NH_VA,	 CMD_TLBI_NH_VA,
				    CMD_TLBI_NH_VAA,  CMD_TLBI_NSNH_ALL, CMD_ATC_INV};
	assert_int_equal(t.n_inv, ARRAY_SIZE(fwd_ops));
	for (unsigned i = 0; i < ARRAY_SIZE(fwd_ops); i++)
		assert_int_equal(FGET(t.inv[i][0], CMD0_OP), fwd_ops[i]);
	assert_int_equal(t.inv[3][0], cmds[7][0]); /* forwarded verbatim */
	assert_int_equal(t.inv[5][1], cmds[9][1]);
	/* Batched: a CFGI_STE flushes before installing, the SYNC flushes the rest. */
	assert_true(t.n_inv_calls <= 3);
	/* CFGI_STE and CFGI_STE_RANGE covering sid 0x10 installed its (V=0 -> abort) STE. */
	assert_int_equal(t.n_installs >= 2, 1);
	assert_int_equal(t.installed[0].kind, VSMMU_STE_ABORT);
	th_fini(&t);
}

/* Linux's recovery: read CONS.ERR, overwrite the bad command with a CMD_SYNC, ack GERRORN. */
static void recover_linux(struct th *t, uint64_t bad_slot)
{
	th_ram_st64(t, bad_slot, th_op(CMD_SYNC, 0));
	th_ram_st64(t, bad_slot + 8, 0);
	th_wr32(t, SMMU_GERRORN, th_rd32(t, SMMU_GERROR));
}

static void check_illegal(uint64_t w0, uint64_t w1, bool rekick)
{
	struct th t;
	unsigned err;
	uint64_t slot;
	uint32_t bad_ptr;

	setup_probe(&t, true, 4);
	th_cmd(&t, th_op(CMD_TLBI_NH_ALL, 0), 0);
	bad_ptr = t.cmdq_prod;
	slot = th_cmd(&t, w0, w1);
	th_cmd(&t, th_op(CMD_TLBI_NH_ASID, 0), 0);
	assert_false(th_sync(&t));
	assert_true(th_cmdq_error(&t, &err));
	assert_int_equal(err, CMDQ_ERR_ILL);
	assert_int_equal(cmdq_cons_ptr(&t), bad_ptr); /* CONS stays at the failing command */
	/* GERROR MSI went out. */
	assert_int_equal(t.n_msi, 1);
	assert_int_equal(t.msi[0].data, 0x32);
	/* While the error is active, kicks consume nothing. */
	th_kick(&t);
	assert_int_equal(cmdq_cons_ptr(&t), bad_ptr);
	recover_linux(&t, slot);
	if (rekick)
		th_kick(&t);
	assert_false(th_cmdq_error(&t, &err));
	assert_int_equal(cmdq_cons_ptr(&t), t.cmdq_prod);
	assert_int_equal(th_ram_ld32(&t, TH_CMDQ_GPA + ((t.cmdq_prod - 1) & 15) * 16), 0);
	/* The queue works again. */
	assert_true(th_sync(&t));
	th_fini(&t);
}

static void test_cerror_ill_and_recovery(void **state)
{
	const uint64_t bad[][2] = {
	    {th_op(0x7F, 0), 0},
	    {th_op(0x00, 0), 0},
	    {th_op(CMD_CFGI_STE, 0x10) | FSET(0, CMD0_SSEC, 1), 0},
	    {th_op(CMD_CFGI_CD, 0x10) | FSET(0, CMD0_SSEC, 1), 0},
	    {th_op(CMD_TLBI_S12_VMALL, 0), 0},
	    {th_op(CMD_TLBI_S2_IPA, 0), 0x1000},
	    {th_op(0x20, 0), 0}, /* TLBI_EL2_ALL: no HYP */
	    {th_op(CMD_PRI_RESP, 0x10), 0},
	    {FSET(th_op(CMD_SYNC, 0), CMD0_SYNC_CS, 3), 0},
	    {FSET(th_op(CMD_RESUME, 0x10), CMD0_RESUME_RESP, 3), 0},
	};

	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		check_illegal(bad[i][0], bad[i][1], false);
		check_illegal(bad[i][0], bad[i][1], true);
	}
}

static void test_stall_commands_need_stall_model(void **state)
{
	struct vsmmu_config c;
	struct th t;
	unsigned err;

	vsmmu_config_default(&c);
	c.stall = false;
	c.ssid_bits = 4;
	th_init(&t, &c, false);
	th_driver_probe(&t, false, 8, 4, 4);
	th_cmd(&t, th_op(CMD_CFGI_CD, 1) | FSET(0, CMD0_SSID, 15), 0); /* in range */
	th_cmd(&t, th_op(CMD_STALL_TERM, 1), 0);
	assert_false(th_sync(&t));
	assert_true(th_cmdq_error(&t, &err));
	assert_int_equal(err, CMDQ_ERR_ILL);
	assert_int_equal(th_rd32(&t, SMMU_CMDQ_CONS) & 0x1F, (t.cmdq_prod - 2) & 0x1F);
	/* Skip it; then an SSID beyond SSIDSIZE (4 bits) is malformed too. */
	th_ram_st64(&t, TH_CMDQ_GPA + ((t.cmdq_prod - 2) & 0xF) * 16ull, th_op(CMD_SYNC, 0));
	th_wr32(&t, SMMU_GERRORN, th_rd32(&t, SMMU_GERROR));
	assert_false(th_cmdq_error(&t, &err));
	th_cmd(&t, th_op(CMD_CFGI_CD, 1) | FSET(0, CMD0_SSID, 16), 0);
	assert_false(th_sync(&t));
	assert_true(th_cmdq_error(&t, &err));
	assert_int_equal(err, CMDQ_ERR_ILL);
	th_fini(&t);
}

static void test_cerror_abt_outside_ram(void **state)
{
	struct th t;
	unsigned err;

	setup_probe(&t, false, 8);
	th_cr0_set(&t, (uint32_t)(FMASK(CR0_EVENTQEN) | FMASK(CR0_SMMUEN)));
	th_wr64(&t, SMMU_CMDQ_BASE, 0x7FFF0000ull | 8);
	th_wr32(&t, SMMU_CMDQ_PROD, 0);
	th_wr32(&t, SMMU_CMDQ_CONS, 0);
	th_cr0_set(&t, (uint32_t)(FMASK(CR0_CMDQEN) | FMASK(CR0_EVENTQEN) | FMASK(CR0_SMMUEN)));
	th_wr32(&t, SMMU_CMDQ_PROD, 3);
	assert_true(th_cmdq_error(&t, &err));
	assert_int_equal(err, CMDQ_ERR_ABT);
	assert_int_equal(th_rd32(&t, SMMU_CMDQ_CONS) & 0x1FF, 0);
	assert_true(t.n_ram_faults > 0);
	th_fini(&t);
}

static void test_cmdq_wraparound(void **state)
{
	struct th t;
	uint32_t seen_wrap = 0;

	setup_probe(&t, false, 2); /* 4 entries */
	for (unsigned i = 0; i < 41; i++) {
		th_cmd(&t, th_op(CMD_TLBI_NH_ALL, 0), 0);
		assert_true(th_sync(&t));
		assert_int_equal(th_rd32(&t, SMMU_CMDQ_CONS), t.cmdq_prod);
		seen_wrap |= 1u << ((t.cmdq_prod >> 2) & 1);
	}
	assert_int_equal(seen_wrap, 3); /* both wrap-bit values seen */
	/* A full queue (index equal, wrap different) is consumed in one kick. */
	for (unsigned i = 0; i < 3; i++)
		th_cmd(&t, th_op(CMD_TLBI_NH_ALL, 0), 0);
	assert_true(th_sync(&t));
	assert_int_equal(th_rd32(&t, SMMU_CMDQ_CONS), t.cmdq_prod);
	th_fini(&t);
}

static void test_whole_batch_per_kick(void **state)
{
	struct th t;
	struct vsmmu_stats a, b;

	setup_probe(&t, true, 8);
	vsmmu_get_stats(t.vs, &a);
	for (unsigned i = 0; i < 255; i++)
		th_cmd(&t, FSET(th_op(CMD_TLBI_NH_VA, 0), CMD0_ASID, 1), 0x1000ull * i);
	assert_true(th_sync(&t));
	vsmmu_get_stats(t.vs, &b);
	assert_int_equal(b.kicks - a.kicks, 1);
	assert_int_equal(b.cmds - a.cmds, 256);
	assert_int_equal(t.n_inv, 255);
	assert_int_equal(t.n_inv_calls, 2); /* batches of 128 */
	th_fini(&t);
}

static void test_cmdq_disabled_then_enabled(void **state)
{
	struct th t;

	setup_probe(&t, false, 8);
	th_cr0_set(&t, (uint32_t)(FMASK(CR0_EVENTQEN) | FMASK(CR0_SMMUEN)));
	th_cmd(&t, th_op(CMD_TLBI_NH_ALL, 0), 0);
	th_kick(&t);
	assert_int_not_equal(th_rd32(&t, SMMU_CMDQ_CONS), t.cmdq_prod);
	/* Enabling the queue kicks processing. */
	th_cr0_set(&t, (uint32_t)(FMASK(CR0_CMDQEN) | FMASK(CR0_EVENTQEN) | FMASK(CR0_SMMUEN)));
	assert_int_equal(th_rd32(&t, SMMU_CMDQ_CONS), t.cmdq_prod);
	th_fini(&t);
}

static void test_gerror_msi_and_aborts(void **state)
{
	struct th t;
	uint32_t gerror;
	uint64_t w0 = FSET(th_op(CMD_SYNC, 0), CMD0_SYNC_CS, CMD_SYNC_CS_IRQ);

	setup_probe(&t, false, 8);
	/* CMD_SYNC MSI to nowhere: MSI_CMDQ_ABT, reported by a GERROR MSI. */
	th_cmd(&t, w0, FSET(0, CMD1_SYNC_MSIADDR, 0x90000000ull >> 2));
	th_kick(&t);
	gerror = th_rd32(&t, SMMU_GERROR);
	assert_true(gerror & (1u << GERROR_MSI_CMDQ_ABT));
	assert_int_equal(t.n_msi, 1);
	assert_int_equal(t.msi[0].data, 0x32);
	/* Still active: a second abort does not toggle it back or re-signal. */
	th_cmd(&t, w0, FSET(0, CMD1_SYNC_MSIADDR, 0x90000000ull >> 2));
	th_kick(&t);
	assert_int_equal(th_rd32(&t, SMMU_GERROR), gerror);
	assert_int_equal(t.n_msi, 1);
	th_wr32(&t, SMMU_GERRORN, gerror);
	/* The GERROR MSI itself aborting: MSI_GERROR_ABT, with no further MSI. */
	th_wr64(&t, SMMU_GERROR_IRQ_CFG0, 0x90000000ull);
	th_cmd(&t, th_op(0x7F, 0), 0);
	th_kick(&t);
	gerror = th_rd32(&t, SMMU_GERROR) ^ th_rd32(&t, SMMU_GERRORN);
	assert_int_equal(gerror, (1u << GERROR_CMDQ_ERR) | (1u << GERROR_MSI_GERROR_ABT));
	/* IRQ_CFG0 address 0: no MSI at all, no abort. The ack restarts the queue, which
	 * fails again on the bad command still at CONS. */
	th_wr64(&t, SMMU_GERROR_IRQ_CFG0, 0);
	t.n_msi = 0;
	th_wr32(&t, SMMU_GERRORN, th_rd32(&t, SMMU_GERROR));
	assert_int_equal(th_rd32(&t, SMMU_GERROR) ^ th_rd32(&t, SMMU_GERRORN),
			 1u << GERROR_CMDQ_ERR);
	assert_int_equal(t.n_msi, 0);
	th_fini(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sync_irq_writes_msi_word),
	    cmocka_unit_test(test_sync_sev_and_none),
	    cmocka_unit_test(test_every_command_accepted),
	    cmocka_unit_test(test_cerror_ill_and_recovery),
	    cmocka_unit_test(test_stall_commands_need_stall_model),
	    cmocka_unit_test(test_cerror_abt_outside_ram),
	    cmocka_unit_test(test_cmdq_wraparound),
	    cmocka_unit_test(test_whole_batch_per_kick),
	    cmocka_unit_test(test_cmdq_disabled_then_enabled),
	    cmocka_unit_test(test_gerror_msi_and_aborts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
