// SPDX-License-Identifier: Apache-2.0
/* Stream table and CD decoding (linear and 2-level), configuration events, installation. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tests/vsmmu/harness.h"

static void setup(struct th *t, bool two_level, unsigned st_log2)
{
	th_init(t, NULL, true);
	th_attach(t, 0x10);
	th_driver_probe(t, two_level, st_log2, 8, 6);
	t->n_installs = 0;
	t->n_msi = 0;
}

static void cfgi_ste(struct th *t, uint32_t sid)
{
	th_cmd(t, th_op(CMD_CFGI_STE, sid), 1);
	assert_true(th_sync(t));
}

static void expect_event(struct th *t, uint8_t id, uint32_t sid)
{
	uint64_t evt[4];

	assert_true(th_evt_pop(t, evt));
	assert_int_equal(FGET(evt[0], EVT0_ID), id);
	assert_int_equal(FGET(evt[0], EVT0_SID), sid);
}

static void test_ste_linear_decode_install(void **state)
{
	struct th t;
	struct vsmmu_cd cd;
	struct vsmmu_ste ste;
	uint64_t a;

	setup(&t, false, 8);
	th_cd_write(&t, TH_CD_GPA, th_cd_w0(42, false), 0x123000);
	th_ste_write(&t, 0x10, th_ste_s1(TH_CD_GPA, 0, 0),
		     FSET(FSET(0, STE1_S1CIR, 1), STE1_S1STALLD, 1) | (3ull << 44) /* SHCFG */);
	a = th_ste_addr(&t, 0x10);
	th_ram_st64(&t, a + 16, ~0ull); /* stage-2 words: not the guest's to give */
	cfgi_ste(&t, 0x10);
	assert_int_equal(t.n_installs, 1);
	assert_int_equal(t.installed[0].kind, VSMMU_STE_S1);
	assert_int_equal(t.installed[0].words[0], th_ste_s1(TH_CD_GPA, 0, 0));
	assert_int_equal(t.installed[0].words[1],
			 FSET(FSET(0, STE1_S1CIR, 1), STE1_S1STALLD, 1)); /* SHCFG dropped */
	assert_int_equal(t.installed[0].cd_table_gpa, TH_CD_GPA);
	assert_true(t.installed[0].s1stalld);
	assert_int_equal(th_evt_drain(&t), 0);
	assert_true(vsmmu_sid_translating(t.vs, 0x10));
	assert_int_equal(vsmmu_cd_lookup(t.vs, 0x10, false, 0, &cd), 0);
	assert_true(cd.valid && cd.ha && cd.hd && cd.record && !cd.stall);
	assert_int_equal(cd.asid, 42);
	assert_int_equal(cd.ttb0, 0x123000);
	assert_int_equal(cd.t0sz, 16);
	/* A single-CD table has no substreams. */
	assert_int_equal(vsmmu_cd_lookup(t.vs, 0x10, true, 1, &cd), EVT_C_BAD_SUBSTREAMID);
	/* Bypass and abort STEs. */
	th_ste_write(&t, 0x10, FSET(FSET(0, STE0_V, 1), STE0_CONFIG, STE_CFG_BYPASS), 0);
	cfgi_ste(&t, 0x10);
	assert_int_equal(t.installed[0].kind, VSMMU_STE_BYPASS);
	assert_false(vsmmu_sid_translating(t.vs, 0x10));
	assert_int_equal(vsmmu_cd_lookup(t.vs, 0x10, false, 0, &cd), -ENOENT);
	th_ste_write(&t, 0x10, FSET(0, STE0_V, 1), 0);
	cfgi_ste(&t, 0x10);
	assert_int_equal(t.installed[0].kind, VSMMU_STE_ABORT);
	assert_int_equal(vsmmu_ste_lookup(t.vs, 0x10, &ste), 0);
	assert_int_equal(ste.kind, VSMMU_STE_ABORT);
	th_fini(&t);
}

static void test_ste_cd_2level_decode(void **state)
{
	struct th t;
	struct vsmmu_cd cd;
	const uint64_t l1cd = TH_CD_GPA, leaf0 = TH_CD_GPA + 0x10000, leaf3 = TH_CD_GPA + 0x20000;

	setup(&t, true, 16);
	th_attach(&t, 0x1234);
	memset(t.ram + l1cd, 0, 0x30000);
	th_ram_st64(&t, l1cd + 0 * 8, FSET(FSET(0, CD_L1_V, 1), CD_L1_L2PTR, leaf0 >> 12));
	th_ram_st64(&t, l1cd + 3 * 8, FSET(FSET(0, CD_L1_V, 1), CD_L1_L2PTR, leaf3 >> 12));
	th_cd_write(&t, leaf0, th_cd_w0(1, false), 0x100000);
	th_cd_write(&t, leaf3 + 5 * CD_SIZE, th_cd_w0(77, true), 0x200000);
	th_ste_write(&t, 0x1234, th_ste_s1(l1cd, STE_S1FMT_64K_L2, 16),
		     FSET(0, STE1_S1DSS, STE_S1DSS_SSID0));
	cfgi_ste(&t, 0x1234);
	assert_int_equal(t.installed[1].kind, VSMMU_STE_S1);
	assert_int_equal(t.installed[1].s1fmt, STE_S1FMT_64K_L2);
	assert_int_equal(t.installed[1].s1cdmax, 16);
	assert_int_equal(th_evt_drain(&t), 0);
	assert_int_equal(vsmmu_cd_lookup(t.vs, 0x1234, true, 3 * 1024 + 5, &cd), 0);
	assert_int_equal(cd.asid, 77);
	assert_true(cd.stall);
	assert_int_equal(cd.ttb0, 0x200000);
	assert_int_equal(vsmmu_cd_lookup(t.vs, 0x1234, false, 0, &cd), 0); /* S1DSS=SSID0 */
	assert_int_equal(cd.asid, 1);
	/* SSID 0 is the non-PASID CD under S1DSS=SSID0; L1 hole; beyond S1CDMax; V=0 CD. */
	assert_int_equal(vsmmu_cd_lookup(t.vs, 0x1234, true, 0, &cd), EVT_C_BAD_SUBSTREAMID);
	assert_int_equal(vsmmu_cd_lookup(t.vs, 0x1234, true, 1024, &cd), EVT_C_BAD_SUBSTREAMID);
	assert_int_equal(vsmmu_cd_lookup(t.vs, 0x1234, true, 1u << 16, &cd), EVT_C_BAD_SUBSTREAMID);
	assert_int_equal(vsmmu_cd_lookup(t.vs, 0x1234, true, 6, &cd), EVT_C_BAD_CD);
	/* The other stream is still V=0 in a different L2 table. */
	assert_false(vsmmu_sid_translating(t.vs, 0x10));
	assert_true(vsmmu_sid_translating(t.vs, 0x1234));
	/* S1DSS terminate and bypass for non-PASID traffic. */
	th_ste_write(&t, 0x1234, th_ste_s1(l1cd, STE_S1FMT_64K_L2, 16), 0);
	assert_int_equal(vsmmu_cd_lookup(t.vs, 0x1234, false, 0, &cd), EVT_F_STREAM_DISABLED);
	th_ste_write(&t, 0x1234, th_ste_s1(l1cd, STE_S1FMT_64K_L2, 16),
		     FSET(0, STE1_S1DSS, STE_S1DSS_BYPASS));
	assert_int_equal(vsmmu_cd_lookup(t.vs, 0x1234, false, 0, &cd), -ENOENT);
	/* A linear multi-CD table. */
	th_cd_write(&t, TH_CD_GPA + 0x40000 + 9 * CD_SIZE, th_cd_w0(9, false), 0x300000);
	th_ste_write(&t, 0x10, th_ste_s1(TH_CD_GPA + 0x40000, STE_S1FMT_LINEAR, 4), 0);
	assert_int_equal(vsmmu_cd_lookup(t.vs, 0x10, true, 9, &cd), 0);
	assert_int_equal(cd.asid, 9);
	th_fini(&t);
}

static void check_bad_ste(uint64_t w0, uint64_t w1)
{
	struct th t;
	uint64_t evt[4];

	setup(&t, false, 8);
	th_ste_write(&t, 0x10, w0, w1);
	cfgi_ste(&t, 0x10);
	assert_true(th_evt_pop(&t, evt));
	assert_int_equal(FGET(evt[0], EVT0_ID), EVT_C_BAD_STE);
	assert_int_equal(FGET(evt[0], EVT0_SID), 0x10);
	assert_int_equal(t.installed[0].kind, VSMMU_STE_ABORT);
	assert_false(vsmmu_sid_translating(t.vs, 0x10));
	th_fini(&t);
}

static void test_bad_ste_events(void **state)
{
	uint64_t s1 = th_ste_s1(TH_CD_GPA, 0, 0);

	check_bad_ste(FSET(s1, STE0_CONFIG, STE_CFG_S2), 0); /* stage 2 not advertised */
	check_bad_ste(FSET(s1, STE0_CONFIG, STE_CFG_NESTED), 0);
	check_bad_ste(FSET(s1, STE0_S1CDMAX, 21), 0); /* > SSIDSIZE */
	check_bad_ste(FSET(FSET(s1, STE0_S1CDMAX, 4), STE0_S1FMT, 3), 0);
	check_bad_ste(FSET(s1, STE0_S1CDMAX, 4), FSET(0, STE1_S1DSS, 3));
	check_bad_ste(s1, FSET(0, STE1_EATS, 2));
}

static void test_ste_fetch_and_streamid_events(void **state)
{
	struct th t;
	uint64_t evt[4];

	/* Linear table whose STE for 0x10 lies past the end of RAM. */
	setup(&t, false, 8);
	th_cr0_set(&t, (uint32_t)(FMASK(CR0_CMDQEN) | FMASK(CR0_EVENTQEN)));
	th_wr64(&t, SMMU_STRTAB_BASE, TH_RAM_SIZE - 0x200);
	th_cr0_set(&t, (uint32_t)(FMASK(CR0_CMDQEN) | FMASK(CR0_EVENTQEN) | FMASK(CR0_SMMUEN)));
	t.n_installs = 0;
	th_evt_drain(&t);
	cfgi_ste(&t, 0x10);
	assert_true(th_evt_pop(&t, evt));
	assert_int_equal(FGET(evt[0], EVT0_ID), EVT_F_STE_FETCH);
	assert_int_equal(FGET(evt[0], EVT0_SID), 0x10);
	assert_int_equal(FGET(evt[3], EVT3_FETCH_ADDR) << 3, TH_RAM_SIZE - 0x200 + 0x10 * 64);
	assert_int_equal(t.installed[0].kind, VSMMU_STE_ABORT);
	th_fini(&t);

	/* SID beyond the table. */
	setup(&t, false, 4);
	cfgi_ste(&t, 0x10);
	expect_event(&t, EVT_C_BAD_STREAMID, 0x10);
	th_fini(&t);

	/* 2-level: Span 0, L2 index beyond Span, L1 descriptor and L2 pointer outside RAM. */
	setup(&t, true, 16);
	th_ram_st64(&t, TH_STRTAB_GPA, 0);
	cfgi_ste(&t, 0x10);
	expect_event(&t, EVT_C_BAD_STREAMID, 0x10);
	th_ram_st64(
	    &t, TH_STRTAB_GPA,
	    FSET(FSET(0, STRTAB_L1_SPAN, 4), STRTAB_L1_L2PTR, (TH_STRTAB_GPA + 0x10000) >> 6));
	cfgi_ste(&t, 0x10); /* Span 4 holds 8 STEs: index 16 is outside */
	expect_event(&t, EVT_C_BAD_STREAMID, 0x10);
	th_ram_st64(&t, TH_STRTAB_GPA,
		    FSET(FSET(0, STRTAB_L1_SPAN, 9), STRTAB_L1_L2PTR, (1ull << 40) >> 6));
	cfgi_ste(&t, 0x10);
	expect_event(&t, EVT_F_STE_FETCH, 0x10);
	th_fini(&t);
}

static void test_host_refusal_is_bad_ste(void **state)
{
	struct th t;

	setup(&t, false, 8);
	th_cd_write(&t, TH_CD_GPA, th_cd_w0(1, false), 0x100000);
	th_ste_write(&t, 0x10, th_ste_s1(TH_CD_GPA, 0, 0), 0);
	t.install_ret = -EIO;
	cfgi_ste(&t, 0x10);
	expect_event(&t, EVT_C_BAD_STE, 0x10);
	assert_int_equal(t.installed[0].kind, VSMMU_STE_ABORT);
	th_fini(&t);
}

static void test_cd_events(void **state)
{
	struct th t;
	uint64_t evt[4];

	setup(&t, false, 8);
	/* CD table outside RAM: F_CD_FETCH when the STE is installed. */
	th_ste_write(&t, 0x10, th_ste_s1(1ull << 40, 0, 0), 0);
	cfgi_ste(&t, 0x10);
	assert_true(th_evt_pop(&t, evt));
	assert_int_equal(FGET(evt[0], EVT0_ID), EVT_F_CD_FETCH);
	assert_int_equal(FGET(evt[3], EVT3_FETCH_ADDR) << 3, 1ull << 40);
	/* Malformed CDs (V=1): C_BAD_CD on CFGI_CD with the SSID. */
	th_ste_write(&t, 0x10, th_ste_s1(TH_CD_GPA, 0, 4), FSET(0, STE1_S1DSS, STE_S1DSS_SSID0));
	th_cd_write(&t, TH_CD_GPA, th_cd_w0(1, false), 0x100000);
	cfgi_ste(&t, 0x10);
	assert_int_equal(th_evt_drain(&t), 0);
	const uint64_t bad[] = {
	    FSET(th_cd_w0(2, false), CD0_AA64, 0),
	    FSET(th_cd_w0(2, false), CD0_TG0, 1),
	    FSET(th_cd_w0(2, false), CD0_T0SZ, 40),
	    FSET(th_cd_w0(2, false), CD0_ENDI, 1),
	};
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		th_cd_write(&t, TH_CD_GPA + 3 * CD_SIZE, bad[i], 0x100000);
		th_cmd(&t, th_op(CMD_CFGI_CD, 0x10) | FSET(0, CMD0_SSID, 3), 1);
		assert_true(th_sync(&t));
		assert_true(th_evt_pop(&t, evt));
		assert_int_equal(FGET(evt[0], EVT0_ID), EVT_C_BAD_CD);
		assert_int_equal(FGET(evt[0], EVT0_SSV), 1);
		assert_int_equal(FGET(evt[0], EVT0_SSID), 3);
	}
	/* A stage-1 table base outside RAM: the walk abort the host would not report. */
	th_cd_write(&t, TH_CD_GPA + 5 * CD_SIZE, th_cd_w0(5, false), 1ull << 40);
	th_cmd(&t, th_op(CMD_CFGI_CD, 0x10) | FSET(0, CMD0_SSID, 5), 1);
	assert_true(th_sync(&t));
	assert_true(th_evt_pop(&t, evt));
	assert_int_equal(FGET(evt[0], EVT0_ID), EVT_F_WALK_EABT);
	assert_int_equal(FGET(evt[0], EVT0_SSID), 5);
	assert_int_equal(FGET(evt[1], EVT1_CLASS), EVT_CLASS_TT);
	assert_int_equal(FGET(evt[3], EVT3_FETCH_ADDR) << 3, 1ull << 40);
	/* ... unless the CD does not record faults. */
	th_cd_write(&t, TH_CD_GPA + 5 * CD_SIZE, FSET(th_cd_w0(5, false), CD0_R, 0), 1ull << 40);
	th_cmd(&t, th_op(CMD_CFGI_CD, 0x10) | FSET(0, CMD0_SSID, 5), 1);
	assert_true(th_sync(&t));
	assert_int_equal(th_evt_drain(&t), 0);
	/* V=0 is a normal (torn-down) CD: no event; a good CD: none either. */
	th_cd_write(&t, TH_CD_GPA + 3 * CD_SIZE, 0, 0);
	th_cmd(&t, th_op(CMD_CFGI_CD, 0x10) | FSET(0, CMD0_SSID, 3), 1);
	th_cd_write(&t, TH_CD_GPA + 4 * CD_SIZE, th_cd_w0(4, true), 0x100000);
	th_cmd(&t, th_op(CMD_CFGI_CD, 0x10) | FSET(0, CMD0_SSID, 4), 1);
	assert_true(th_sync(&t));
	assert_int_equal(th_evt_drain(&t), 0);
	th_fini(&t);
}

static void test_cfgi_all_and_range(void **state)
{
	struct th t;

	setup(&t, true, 16);
	th_attach(&t, 0x11);
	th_attach(&t, 0x200);
	th_cmd(&t, th_op(CMD_CFGI_STE_RANGE, 0), 31); /* CFGI_ALL */
	assert_true(th_sync(&t));
	assert_int_equal(t.n_installs, 3);
	t.n_installs = 0;
	th_cmd(&t, th_op(CMD_CFGI_STE_RANGE, 0x11), 0); /* 2 SIDs from 0x10 */
	assert_true(th_sync(&t));
	assert_int_equal(t.n_installs, 2);
	t.n_installs = 0;
	th_cmd(&t, th_op(CMD_CFGI_STE_RANGE, 0x1FF), 8); /* 512 SIDs from 0 */
	assert_true(th_sync(&t));
	assert_int_equal(t.n_installs, 2);
	t.n_installs = 0;
	th_cmd(&t, th_op(CMD_CFGI_STE, 0x12), 0); /* no device: nothing */
	assert_true(th_sync(&t));
	assert_int_equal(t.n_installs, 0);
	th_fini(&t);
}

static void test_smmuen_toggle_reinstalls(void **state)
{
	struct th t;

	setup(&t, false, 8);
	th_cd_write(&t, TH_CD_GPA, th_cd_w0(1, false), 0x100000);
	th_ste_write(&t, 0x10, th_ste_s1(TH_CD_GPA, 0, 0), 0);
	th_wr32(&t, SMMU_GBPA, (uint32_t)(FMASK(GBPA_ABORT) | FMASK(GBPA_UPDATE)));
	th_cr0_set(&t, (uint32_t)(FMASK(CR0_CMDQEN) | FMASK(CR0_EVENTQEN)));
	assert_int_equal(t.installed[0].kind, VSMMU_STE_ABORT);
	th_cr0_set(&t, (uint32_t)(FMASK(CR0_CMDQEN) | FMASK(CR0_EVENTQEN) | FMASK(CR0_SMMUEN)));
	assert_int_equal(t.installed[0].kind, VSMMU_STE_S1);
	assert_int_equal(t.n_installs, 2);
	th_fini(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ste_linear_decode_install),
	    cmocka_unit_test(test_ste_cd_2level_decode),
	    cmocka_unit_test(test_bad_ste_events),
	    cmocka_unit_test(test_ste_fetch_and_streamid_events),
	    cmocka_unit_test(test_host_refusal_is_bad_ste),
	    cmocka_unit_test(test_cd_events),
	    cmocka_unit_test(test_cfgi_all_and_range),
	    cmocka_unit_test(test_smmuen_toggle_reinstalls),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
