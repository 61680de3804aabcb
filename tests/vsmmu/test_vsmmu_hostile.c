// SPDX-License-Identifier: Apache-2.0
/*
 * A hostile guest: absurd queue sizes, pointers outside RAM, junk commands in bulk, random
 * register writes. Only architectural errors may result: no crash, bounded work, and no
 * write outside guest RAM (the platform refuses those) or outside the areas the guest gave
 * the vSMMU to write (its event queue and MSI targets).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tests/vsmmu/harness.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void test_huge_log2size_and_prod(void **state)
{
	struct th t;
	struct vsmmu_stats a, b;
	unsigned err;

	th_init(&t, NULL, false);
	th_driver_probe(&t, false, 8, 8, 8);
	th_cr0_set(&t, (uint32_t)FMASK(CR0_SMMUEN));
	/* LOG2SIZE 31 acts as IDR1.CMDQS (12): at most 4096 commands per kick. */
	th_wr64(&t, SMMU_CMDQ_BASE, TH_CMDQ_GPA | 31);
	th_wr32(&t, SMMU_CMDQ_CONS, 0);
	th_wr32(&t, SMMU_CMDQ_PROD, 0);
	th_cr0_set(&t, (uint32_t)(FMASK(CR0_SMMUEN) | FMASK(CR0_CMDQEN)));
	memset(t.ram + TH_CMDQ_GPA, 0, 4096 * 16);
	for (unsigned i = 0; i < 4096; i++)
		t.ram[TH_CMDQ_GPA + i * 16] = CMD_TLBI_NH_ALL;
	vsmmu_get_stats(t.vs, &a);
	th_wr32(&t, SMMU_CMDQ_PROD, 0xFFFFFFFF); /* index 4095, wrap 1: 8191 "entries" */
	vsmmu_get_stats(t.vs, &b);
	assert_int_equal(b.cmds - a.cmds, 4096);
	assert_false(th_cmdq_error(&t, &err));
	assert_int_equal(th_rd32(&t, SMMU_CMDQ_PROD), 0x1FFF);
	/* The 4096-entry queue near the end of RAM: the slots past it abort. */
	th_cr0_set(&t, (uint32_t)FMASK(CR0_SMMUEN));
	th_wr64(&t, SMMU_CMDQ_BASE, (TH_RAM_SIZE - 32 * 16) | 31);
	th_wr32(&t, SMMU_CMDQ_CONS, 0);
	th_wr32(&t, SMMU_CMDQ_PROD, 0);
	memset(t.ram + TH_RAM_SIZE - 32 * 16, 0, 32 * 16);
	for (unsigned i = 0; i < 32; i++)
		t.ram[TH_RAM_SIZE - 32 * 16 + i * 16] = CMD_TLBI_NH_ALL;
	th_cr0_set(&t, (uint32_t)(FMASK(CR0_SMMUEN) | FMASK(CR0_CMDQEN)));
	th_wr32(&t, SMMU_CMDQ_PROD, 100);
	assert_true(th_cmdq_error(&t, &err));
	assert_int_equal(err, CMDQ_ERR_ABT);
	assert_int_equal(th_rd32(&t, SMMU_CMDQ_CONS) & 0xFFFF, 32);
	th_fini(&t);
}

static void test_pointers_outside_ram(void **state)
{
	struct th t;
	uint64_t evt[4] = {FSET(0, EVT0_ID, EVT_F_TRANSLATION), 0, 0, 0};
	const uint64_t far = FMASK(Q_BASE_ADDR); /* top of the 52-bit space */

	th_init(&t, NULL, true);
	th_attach(&t, 0x10);
	th_attach(&t, 0xFFFF);
	th_driver_probe(&t, false, 16, 8, 8);
	t.wr_check = true;
	t.wr_lo = TH_CMDQ_GPA;
	t.wr_hi = TH_CMDQ_GPA + 256 * 16; /* CMD_SYNC's own slots */
	th_cr0_set(&t, (uint32_t)FMASK(CR0_CMDQEN));
	th_wr64(&t, SMMU_STRTAB_BASE, ~0ull);
	th_wr32(&t, SMMU_STRTAB_BASE_CFG, 0xFFFFFFFF); /* 2-level, LOG2SIZE 63 */
	th_wr64(&t, SMMU_EVENTQ_BASE, far | 31);
	th_wr64(&t, SMMU_GERROR_IRQ_CFG0, ~0ull);
	th_wr64(&t, SMMU_EVENTQ_IRQ_CFG0, ~0ull);
	th_cr0_set(&t, (uint32_t)(FMASK(CR0_CMDQEN) | FMASK(CR0_EVENTQEN) | FMASK(CR0_SMMUEN)));
	th_cmd(&t, th_op(CMD_CFGI_STE_RANGE, 0), 31);
	th_cmd(&t, th_op(CMD_CFGI_STE, 0xFFFF), 0);
	th_cmd(&t, th_op(CMD_CFGI_CD_ALL, 0x10), 0);
	assert_true(th_sync(&t));
	assert_false(vsmmu_event_inject(t.vs, evt));
	/* Event queue writes aborted, and the GERROR MSI too. */
	uint32_t active = th_rd32(&t, SMMU_GERROR) ^ th_rd32(&t, SMMU_GERRORN);
	assert_true(active & (1u << GERROR_EVENTQ_ABT));
	assert_true(active & (1u << GERROR_MSI_GERROR_ABT));
	assert_int_equal(t.installed[0].kind, VSMMU_STE_ABORT);
	assert_int_equal(t.installed[1].kind, VSMMU_STE_ABORT);
	assert_int_equal(t.n_wr_unexpected, 0);
	/* CMD_SYNC MSI to the last word of the address space. */
	th_cmd(&t, FSET(th_op(CMD_SYNC, 0), CMD0_SYNC_CS, CMD_SYNC_CS_IRQ), ~0ull);
	th_kick(&t);
	assert_true(th_rd32(&t, SMMU_GERROR) & (1u << GERROR_MSI_CMDQ_ABT));
	assert_int_equal(t.n_wr_unexpected, 0);
	th_fini(&t);
}

/* Junk commands in bulk, with Linux's recovery after each error, for a few queue-fulls. */
static void test_cmdq_flood(void **state)
{
	static const uint8_t ops[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x10, 0x11, 0x12,
				      0x13, 0x30, 0x40, 0x44, 0x45, 0x46, 0x28, 0x7F, 0x41};
	struct th t;
	struct vsmmu_stats st;
	unsigned err, errors = 0;

	th_init(&t, NULL, true);
	th_attach(&t, 0x10);
	th_driver_probe(&t, true, 16, 12, 4);
	t.wr_check = true;
	t.wr_lo = TH_CMDQ_GPA;
	t.wr_hi = TH_EVTQ_GPA + 16 * 32;
	for (unsigned round = 0; round < 40; round++) {
		for (unsigned i = 0; i < 4000; i++) {
			uint64_t w0 = rnd(), w1 = rnd();
			w0 = FSET(w0, CMD0_OP, ops[rnd() % sizeof(ops)]);
			if (FGET(w0, CMD0_OP) == CMD_SYNC)
				w1 = FSET(0, CMD1_SYNC_MSIADDR,
					  (TH_CMDQ_GPA + (rnd() % 4096) * 16) >> 2);
			th_cmd(&t, w0, w1);
		}
		th_kick(&t);
		while (th_cmdq_error(&t, &err)) {
			uint32_t cons = th_rd32(&t, SMMU_CMDQ_CONS) & 0xFFF;
			th_ram_st64(&t, TH_CMDQ_GPA + cons * 16ull, th_op(CMD_SYNC, 0));
			th_wr32(&t, SMMU_GERRORN, th_rd32(&t, SMMU_GERROR));
			errors++;
		}
		assert_int_equal(th_rd32(&t, SMMU_CMDQ_CONS) & 0x1FFF, t.cmdq_prod);
		th_evt_drain(&t);
	}
	vsmmu_get_stats(t.vs, &st);
	assert_true(st.cmds >= 40 * 4000);
	assert_true(errors > 100);
	assert_int_equal(t.n_wr_unexpected, 0);
	th_fini(&t);
}

static void test_random_mmio_fuzz(void **state)
{
	struct th t;
	uint64_t v, evt[4];
	struct vsmmu_stall s = {.vsid = 0x10};
	struct vsmmu_stats st;

	th_init(&t, NULL, true);
	th_attach(&t, 0x10);
	static const uint8_t legal[] = {0x01, 0x03, 0x04, 0x05, 0x10, 0x11, 0x12, 0x30, 0x44, 0x46};
	for (size_t i = 0; i < TH_RAM_SIZE; i += 8)
		th_ram_st64(&t, i, rnd());
	/* Mostly legal opcodes (SSEC clear) wherever a command queue may land. */
	for (size_t i = 0; i < TH_RAM_SIZE; i += 16) {
		if (rnd() % 8) {
			t.ram[i] = legal[rnd() % sizeof(legal)];
			t.ram[i + 1] &= ~0x04;
		}
	}
	for (unsigned i = 0; i < 200000; i++) {
		unsigned size = (rnd() & 1) ? 4 : 8;
		uint64_t off = rnd() % 0x100;

		if (rnd() % 16 == 0)
			off = rnd() % 0x20010;
		else if (rnd() % 8 == 0)
			off = SMMU_EVENTQ_PROD + (rnd() % 8);
		if (rnd() % 4 == 0) {
			vsmmu_mmio_read(t.vs, off, size, &v);
		} else {
			v = rnd();
			/* Keep the queues in RAM often enough that real work happens. */
			if (off == SMMU_CMDQ_BASE || off == SMMU_EVENTQ_BASE)
				v = (v % TH_RAM_SIZE) | (v & 0x1F);
			vsmmu_mmio_write(t.vs, off, size, v);
		}
		if (i % 64 == 0) {
			evt[0] = rnd(), evt[1] = rnd(), evt[2] = rnd(), evt[3] = rnd();
			vsmmu_event_inject(t.vs, evt);
			s.cookie = i;
			vsmmu_stall_inject(t.vs, &s);
		}
	}
	assert_int_equal(th_rd32(&t, SMMU_CR0), th_rd32(&t, SMMU_CR0ACK));
	assert_true(vsmmu_stall_count(t.vs) <= 64);
	vsmmu_get_stats(t.vs, &st);
	print_message("fuzz: cmds=%llu errors=%llu events=%llu lost=%llu msis=%llu installs=%llu\n",
		      (unsigned long long)st.cmds, (unsigned long long)st.cmd_errors,
		      (unsigned long long)st.events, (unsigned long long)st.events_lost,
		      (unsigned long long)st.msis, (unsigned long long)st.installs);
	/* The fuzz reached the machinery, not just the register decode. */
	assert_true(st.cmds > 0 && st.cmd_errors > 0 && st.events > 0);
	th_fini(&t);
}

static void test_cfgi_all_without_enumeration(void **state)
{
	struct th t;
	struct vsmmu_bridge_ops ops = th_bridge_ops;

	ops.sid_next = NULL; /* the vSMMU must scan, but only so far */
	th_init(&t, NULL, false);
	vsmmu_set_bridge(t.vs, &ops, &t);
	th_attach(&t, 0x10);
	th_attach(&t, 0x7FFFFFFF);
	th_driver_probe(&t, false, 8, 8, 8);
	t.n_installs = 0;
	th_cmd(&t, th_op(CMD_CFGI_STE_RANGE, 0), 31);
	assert_true(th_sync(&t));
	assert_int_equal(t.n_installs, 1);
	th_fini(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_huge_log2size_and_prod),
	    cmocka_unit_test(test_pointers_outside_ram),
	    cmocka_unit_test(test_cmdq_flood),
	    cmocka_unit_test(test_random_mmio_fuzz),
	    cmocka_unit_test(test_cfgi_all_without_enumeration),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
