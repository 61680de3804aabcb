// SPDX-License-Identifier: Apache-2.0
/* Migration: save -> load -> identical behaviour, strict validation, post_load re-install. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tests/vsmmu/harness.h"

#define DUMP_WORDS (SMMU_MMIO_SIZE / 4)
/* Stream layout: 16-byte header, 8 identification words, then the registers. */
#define RG (16 + 8 * 4)

static void dump_regs(struct th *t, uint32_t *out)
{
	for (unsigned i = 0; i < DUMP_WORDS; i++)
		out[i] = th_rd32(t, i * 4ull);
}

/* A source with some of everything: S1 stream, events, a held stall, a pending error. */
static void build_source(struct th *t)
{
	struct vsmmu_stall s = {.vsid = 0x10, .addr = 0x5000, .write = true, .cookie = 77};

	th_init(t, NULL, true);
	th_attach(t, 0x10);
	th_attach(t, 0x20);
	th_driver_probe(t, false, 8, 4, 3);
	th_cd_write(t, TH_CD_GPA, th_cd_w0(5, true), 0x100000);
	th_ste_write(t, 0x10, th_ste_s1(TH_CD_GPA, 0, 0), 0);
	th_cmd(t, th_op(CMD_CFGI_STE, 0x10), 0);
	assert_true(th_sync(t));
	assert_int_equal(vsmmu_stall_inject(t->vs, &s), 0);
	th_cmd(t, th_op(0x7F, 0), 0); /* leaves CMDQ_ERR active */
	th_kick(t);
}

static void *save(struct th *t, size_t *len)
{
	size_t n = vsmmu_state_size(t->vs);
	void *buf = malloc(n);
	long ret;

	assert_non_null(buf);
	assert_int_equal(vsmmu_state_save(t->vs, buf, n - 1), -ENOSPC);
	ret = vsmmu_state_save(t->vs, buf, n);
	assert_int_equal(ret, (long)n);
	*len = n;
	return buf;
}

/* A destination: same RAM contents and devices, fresh vSMMU, loaded state. */
static void build_dest(struct th *d, struct th *s, const void *buf, size_t len)
{
	th_init(d, NULL, true);
	th_attach(d, 0x10);
	th_attach(d, 0x20);
	memcpy(d->ram, s->ram, TH_RAM_SIZE);
	assert_int_equal(vsmmu_state_load(d->vs, buf, len), 0);
	d->cmdq_log2 = s->cmdq_log2;
	d->evtq_log2 = s->evtq_log2;
	d->cmdq_prod = s->cmdq_prod;
	d->evtq_cons = s->evtq_cons;
}

/* The same guest actions on both sides. */
static void drive(struct th *t)
{
	uint64_t evt[4],
	    inj[4] = {FSET(FSET(0, EVT0_ID, EVT_F_PERMISSION), EVT0_SID, 0x10), 0, 0x9000, 0};
	uint16_t stag;

	/* Linux recovery of the pending error. */
	uint32_t idx = (t->cmdq_prod - 1) & ((1u << t->cmdq_log2) - 1);
	th_ram_st64(t, TH_CMDQ_GPA + idx * 16ull, th_op(CMD_SYNC, 0));
	th_wr32(t, SMMU_GERRORN, th_rd32(t, SMMU_GERROR));
	assert_true(th_evt_pop(t, evt)); /* the stall */
	stag = (uint16_t)FGET(evt[1], EVT1_STAG);
	th_cmd(t, FSET(th_op(CMD_RESUME, 0x10), CMD0_RESUME_RESP, CMD_RESUME_RETRY),
	       FSET(0, CMD1_RESUME_STAG, stag));
	for (unsigned i = 0; i < 20; i++) {
		th_cmd(t, FSET(th_op(CMD_TLBI_NH_VA, 0), CMD0_ASID, 5), 0x1000ull * i);
		assert_true(th_sync(t));
		assert_true(vsmmu_event_inject(t->vs, inj));
		if (i % 2)
			th_evt_drain(t);
	}
}

static void test_save_load_identical_behaviour(void **state)
{
	struct th s, d;
	size_t len;
	void *buf;
	uint32_t *rs = calloc(DUMP_WORDS, 4), *rd = calloc(DUMP_WORDS, 4);

	build_source(&s);
	buf = save(&s, &len);
	build_dest(&d, &s, buf, len);
	dump_regs(&s, rs);
	dump_regs(&d, rd);
	assert_memory_equal(rs, rd, DUMP_WORDS * 4);
	assert_int_equal(vsmmu_stall_count(d.vs), 1);
	s.n_resp = d.n_resp = s.n_inv = d.n_inv = 0;
	drive(&s);
	drive(&d);
	dump_regs(&s, rs);
	dump_regs(&d, rd);
	assert_memory_equal(rs, rd, DUMP_WORDS * 4);
	assert_memory_equal(s.ram, d.ram, TH_RAM_SIZE);
	assert_int_equal(s.n_resp, 1);
	assert_int_equal(d.n_resp, 1);
	assert_int_equal(d.resp[0].cookie, 77); /* the stall bookkeeping travelled */
	assert_int_equal(s.n_inv, d.n_inv);
	assert_memory_equal(s.inv, d.inv, sizeof(s.inv[0]) * s.n_inv);
	free(buf);
	free(rs);
	free(rd);
	th_fini(&s);
	th_fini(&d);
}

static void test_post_load_reinstalls(void **state)
{
	struct th s, d;
	size_t len;
	void *buf;

	build_source(&s);
	buf = save(&s, &len);
	build_dest(&d, &s, buf, len);
	assert_int_equal(d.n_installs, 0);
	assert_int_equal(vsmmu_post_load(d.vs), 2);
	assert_int_equal(d.n_installs, 2);
	assert_int_equal(d.installed[0].kind, VSMMU_STE_S1);
	assert_int_equal(d.installed[0].words[0], s.installed[0].words[0]);
	assert_int_equal(d.installed[1].kind, VSMMU_STE_ABORT);
	/* Host caches invalidated: the S1 stream's CDs, then all stage-1 TLB entries. */
	assert_int_equal(d.n_inv, 2);
	assert_int_equal(FGET(d.inv[0][0], CMD0_OP), CMD_CFGI_CD_ALL);
	assert_int_equal(FGET(d.inv[0][0], CMD0_SID), 0x10);
	assert_int_equal(FGET(d.inv[1][0], CMD0_OP), CMD_TLBI_NSNH_ALL);
	/* No duplicate events for the guest. */
	uint64_t evt[4];
	assert_true(th_evt_pop(&d, evt)); /* the stall's, saved in guest RAM */
	assert_false(th_evt_pop(&d, evt));
	free(buf);
	th_fini(&s);
	th_fini(&d);
}

static void expect_rejected(struct th *d, const uint8_t *buf, size_t len, int err)
{
	uint32_t *before = calloc(DUMP_WORDS, 4), *after = calloc(DUMP_WORDS, 4);
	unsigned stalls = vsmmu_stall_count(d->vs);

	dump_regs(d, before);
	assert_int_equal(vsmmu_state_load(d->vs, buf, len), err);
	dump_regs(d, after);
	assert_memory_equal(before, after, DUMP_WORDS * 4);
	assert_int_equal(vsmmu_stall_count(d->vs), stalls);
	free(before);
	free(after);
}

static void patch32(uint8_t *b, size_t off, uint32_t v)
{
	memcpy(b + off, &v, 4);
}

static void test_load_rejects_corrupt(void **state)
{
	struct th s, d;
	size_t len;
	uint8_t *buf, *bad;
	struct vsmmu_config c;

	build_source(&s);
	buf = save(&s, &len);
	bad = malloc(len + 8);
	th_init(&d, NULL, true);
	th_driver_probe(&d, true, 10, 5, 5);

	expect_rejected(&d, buf, len - 1, -EINVAL);
	expect_rejected(&d, buf, 3, -EINVAL);
	expect_rejected(&d, NULL, len, -EINVAL);
	memcpy(bad, buf, len);
	bad[len] = 0;
	expect_rejected(&d, bad, len + 1, -EINVAL); /* trailing garbage */
	const struct {
		size_t off;
		uint32_t v;
		int err;
	} cases[] = {
	    {0, 0x12345678, -EINVAL},			    /* magic */
	    {4, 2, -EPROTO},				    /* version */
	    {8, 1000, -EINVAL},				    /* length */
	    {12, 1, -EINVAL},				    /* reserved flags */
	    {16 + 6 * 4, 1, -EPROTO},			    /* HTTU differs */
	    {16 + 7 * 4, 0, -EPROTO},			    /* stall model differs */
	    {16, 8, -EPROTO},				    /* SIDSIZE differs */
	    {RG + 0 * 4, 0x2, -EINVAL},			    /* CR0.PRIQEN */
	    {RG + 3 * 4, 0x80000000, -EINVAL},		    /* GBPA with UPDATE */
	    {RG + 5 * 4, 1u << 9, -EINVAL},		    /* GERROR unknown bit */
	    {RG + 12 * 4, 1u << 20, -EINVAL},		    /* CMDQ_PROD beyond the largest queue */
	    {RG + 13 * 4 + 6 * 8 - 8, 0x40000000, -EINVAL}, /* EVTQ_PROD bit 30 */
	    {RG + 13 * 4 + 6 * 8 - 4, 5u << 24, -EINVAL},   /* CONS.ERR = 5 */
	    {RG + 13 * 4 + 6 * 8 + 4, 0x10000, -EINVAL},    /* STAG > 16 bits */
	    {RG + 13 * 4 + 6 * 8 + 8, 999, -EINVAL},	    /* stall count > STALL_MAX */
	    {RG + 13 * 4 + 6 * 8 + 12, 2, -EINVAL},	    /* stall SSV not 0/1 */
	};
	for (unsigned i = 0; i < ARRAY_SIZE(cases); i++) {
		memcpy(bad, buf, len);
		patch32(bad, cases[i].off, cases[i].v);
		expect_rejected(&d, bad, len, cases[i].err);
	}
	/* Every single-bit flip: either a clean rejection or a valid state; never a crash. */
	for (size_t i = 0; i < len * 8; i++) {
		memcpy(bad, buf, len);
		bad[i / 8] ^= (uint8_t)(1u << (i % 8));
		if (vsmmu_state_load(d.vs, bad, len) == 0)
			vsmmu_post_load(d.vs);
	}
	/* A stream from a differently sized SMMU. */
	th_fini(&d);
	vsmmu_config_default(&c);
	c.evtq_bits = 10;
	th_init(&d, &c, false);
	expect_rejected(&d, buf, len, -EPROTO);
	free(bad);
	free(buf);
	th_fini(&s);
	th_fini(&d);
}

/*
 * What a migration destination checks before applying: the state's stalls are counted (a
 * stall's cookie belongs to the source's host; the vSMMU section refuses such a state),
 * and nothing is applied by the check.
 */
static void test_check_counts_stalls(void **state)
{
	struct th s, d;
	unsigned stalls = 99;
	size_t len;
	void *buf;

	build_source(&s);
	buf = save(&s, &len);
	th_init(&d, NULL, true);
	assert_int_equal(vsmmu_state_check(d.vs, buf, len, &stalls), 0);
	assert_int_equal(stalls, 1);
	assert_int_equal(vsmmu_stall_count(d.vs), 0); /* nothing applied */
	assert_int_equal(vsmmu_state_check(d.vs, buf, len - 4, &stalls), -EINVAL);
	free(buf);
	drive(&s); /* the guest answers the stall */
	buf = save(&s, &len);
	assert_int_equal(vsmmu_state_check(d.vs, buf, len, &stalls), 0);
	assert_int_equal(stalls, 0);
	free(buf);
	th_fini(&s);
	th_fini(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_save_load_identical_behaviour),
	    cmocka_unit_test(test_check_counts_stalls),
	    cmocka_unit_test(test_post_load_reinstalls),
	    cmocka_unit_test(test_load_rejects_corrupt),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
