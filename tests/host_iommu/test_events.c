// SPDX-License-Identifier: Apache-2.0
/* Every event type from a crafted configuration, record gating (CD.R, STE.S2R), event
 * fields, 2-level stream tables and every CD table format. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rig.h"

#define NO_RAM_PA 0x7000000000ull /* nothing there */

static struct smmu_dma_txn txn(uint32_t sid)
{
	return (struct smmu_dma_txn){.sid = sid};
}

static struct smmu_dma_txn txn_ssid(uint32_t sid, uint32_t ssid)
{
	return (struct smmu_dma_txn){.sid = sid, .ssid = ssid, .flags = SMMU_DMA_SSV};
}

/* Issues one access; checks the outcome and the single event it produced (or none). */
static struct smmu_event expect(struct rig *r, struct smmu_dma_txn t, uint64_t iova, bool write,
				enum smmu_dma_status st, uint8_t id)
{
	struct smmu_xlate x;
	struct smmu_event ev = {{0}};

	assert_int_equal(smmu_translate(r->smmu, &t, iova, write, &x), 0);
	assert_int_equal(x.status, st);
	if (id) {
		assert_int_equal(rig_events(r, &ev), 1);
		assert_int_equal(smmu_event_id(&ev), id);
		assert_int_equal(F_GET(ev.dw[0], EVT0_SID), t.sid);
		assert_int_equal(F_GET(ev.dw[0], EVT0_SSV), !!(t.flags & SMMU_DMA_SSV));
		if (t.flags & SMMU_DMA_SSV)
			assert_int_equal(F_GET(ev.dw[0], EVT0_SSID), t.ssid);
	} else {
		assert_int_equal(rig_events(r, NULL), 0);
	}
	return ev;
}

static void put_ste(struct rig *r, uint32_t sid, const struct smmu_ste_desc *d)
{
	uint64_t ste[8];
	smmu_ste_build(ste, d);
	rig_set_ste(r, sid, ste);
}

static void test_config_events(void **state)
{
	struct rig r;
	struct pgtable s1;
	uint64_t cd[8], ste[8];

	rig_init(&r, NULL);
	assert_int_equal(pgtable_init(&s1, &r.mem, 1, 48, PGT_LEVEL_AUTO), 0);
	/* C_BAD_STREAMID: beyond the table */
	expect(&r, txn(1u << RIG_ST_LOG2), 0, false, SMMU_DMA_FAULT, EVT_C_BAD_STREAMID);
	/* C_BAD_STE: V=0 (the table starts zeroed) */
	expect(&r, txn(2), 0, false, SMMU_DMA_FAULT, EVT_C_BAD_STE);
	/* C_BAD_STE: stage 2 with an invalid S2SL0/T0SZ pair */
	struct pgtable s2;
	assert_int_equal(pgtable_init(&s2, &r.mem, 2, 40, PGT_LEVEL_AUTO), 0);
	put_ste(&r, 3, &(struct smmu_ste_desc){.config = STE_CFG_S2, .s2 = &s2});
	assert_int_equal(hostmem_read(r.hm, r.strtab + 3 * 64, ste, 64), 0);
	ste[2] = F_SET(ste[2], STE2_S2SL0, 0); /* level 2 start with 40 bits: 19 bits */
	rig_set_ste(&r, 3, ste);
	expect(&r, txn(3), 0, false, SMMU_DMA_FAULT, EVT_C_BAD_STE);
	ste[2] = F_SET(ste[2], STE2_S2SL0, 3);
	rig_set_ste(&r, 3, ste);
	expect(&r, txn(3), 0, false, SMMU_DMA_FAULT, EVT_C_BAD_STE);
	/* C_BAD_STE: S1Fmt 3 */
	put_ste(&r, 4, &(struct smmu_ste_desc){.config = STE_CFG_S1, .s1fmt = 3, .s1cdmax = 2});
	expect(&r, txn(4), 0, false, SMMU_DMA_FAULT, EVT_C_BAD_STE);
	/* F_CD_FETCH: CD pointer to nothing */
	put_ste(&r, 5, &(struct smmu_ste_desc){.config = STE_CFG_S1, .cd_ptr = NO_RAM_PA});
	expect(&r, txn(5), 0, false, SMMU_DMA_FAULT, EVT_F_CD_FETCH);
	/* C_BAD_CD: V=0, then T0SZ out of range, then S=1 with S1STALLD */
	smmu_cd_build(cd, &s1, 1, SMMU_CD_R);
	cd[0] = F_SET(cd[0], CD0_V, 0);
	uint64_t cdpa = rig_put_cd(&r, cd);
	put_ste(&r, 6, &(struct smmu_ste_desc){.config = STE_CFG_S1, .cd_ptr = cdpa});
	expect(&r, txn(6), 0, false, SMMU_DMA_FAULT, EVT_C_BAD_CD);
	smmu_cd_build(cd, &s1, 1, SMMU_CD_R);
	cd[0] = F_SET(cd[0], CD0_T0SZ, 12);
	hostmem_write(r.hm, cdpa, cd, 64);
	rig_cmd(&r, smmu_cmd_cfgi_cd(6, 0));
	expect(&r, txn(6), 0, false, SMMU_DMA_FAULT, EVT_C_BAD_CD);
	smmu_cd_build(cd, &s1, 1, SMMU_CD_R | SMMU_CD_S);
	hostmem_write(r.hm, cdpa, cd, 64);
	put_ste(&r, 6,
		&(struct smmu_ste_desc){.config = STE_CFG_S1, .cd_ptr = cdpa, .s1stalld = true});
	expect(&r, txn(6), 0, false, SMMU_DMA_FAULT, EVT_C_BAD_CD);
	/* C_BAD_SUBSTREAMID: SSV with a single CD; SSID beyond S1CDMax */
	smmu_cd_build(cd, &s1, 1, SMMU_CD_R);
	hostmem_write(r.hm, cdpa, cd, 64);
	put_ste(&r, 7, &(struct smmu_ste_desc){.config = STE_CFG_S1, .cd_ptr = cdpa});
	expect(&r, txn_ssid(7, 1), 0, false, SMMU_DMA_FAULT, EVT_C_BAD_SUBSTREAMID);
	put_ste(&r, 8, &(struct smmu_ste_desc){.config = STE_CFG_S1, .cd_ptr = cdpa, .s1cdmax = 1});
	expect(&r, txn_ssid(8, 2), 0, false, SMMU_DMA_FAULT, EVT_C_BAD_SUBSTREAMID);
	/* SSV traffic on a stage-2-only stream */
	put_ste(&r, 9, &(struct smmu_ste_desc){.config = STE_CFG_S2, .s2 = &s2});
	expect(&r, txn_ssid(9, 1), 0, false, SMMU_DMA_FAULT, EVT_C_BAD_SUBSTREAMID);
	/* F_STREAM_DISABLED: untagged traffic with S1DSS=terminate and several CDs */
	put_ste(
	    &r, 10,
	    &(struct smmu_ste_desc){
		.config = STE_CFG_S1, .cd_ptr = cdpa, .s1cdmax = 1, .s1dss = STE_S1DSS_TERMINATE});
	expect(&r, txn(10), 0, false, SMMU_DMA_FAULT, EVT_F_STREAM_DISABLED);
	/* S1DSS=bypass: untagged traffic bypasses stage 1 */
	put_ste(&r, 11,
		&(struct smmu_ste_desc){
		    .config = STE_CFG_S1, .cd_ptr = cdpa, .s1cdmax = 1, .s1dss = STE_S1DSS_BYPASS});
	expect(&r, txn(11), RIG_RAM_PA, true, SMMU_DMA_OK, 0);
	/* Config abort: silent */
	put_ste(&r, 12, &(struct smmu_ste_desc){.config = STE_CFG_ABORT});
	expect(&r, txn(12), 0, false, SMMU_DMA_ABORTED, 0);
	pgtable_fini(&s2);
	pgtable_fini(&s1);
	rig_fini(&r);
}

static void test_ste_fetch_and_2level(void **state)
{
	struct rig r;
	uint64_t l1, l2, desc;

	rig_init(&r, NULL);
	/* F_STE_FETCH: a linear table somewhere without memory */
	assert_int_equal(
	    smmu_set_strtab(r.smmu, NO_RAM_PA, (uint32_t)F_VAL(STRTAB_CFG_LOG2SIZE, 4)), 0);
	expect(&r, txn(1), 0, false, SMMU_DMA_FAULT, EVT_F_STE_FETCH);
	/* 2-level: SPLIT 6, L1 entry 1 -> L2 of 2^(Span-1) = 8 STEs; entry 0 has Span 0 */
	assert_int_equal(hostmem_page_alloc(r.hm, &l1), 0);
	assert_int_equal(hostmem_page_alloc(r.hm, &l2), 0);
	desc = F_VAL(L1STD_SPAN, 4) | l2;
	hostmem_write(r.hm, l1 + 8, &desc, 8);
	assert_int_equal(
	    smmu_set_strtab(r.smmu, l1,
			    (uint32_t)(F_VAL(STRTAB_CFG_LOG2SIZE, 8) | F_VAL(STRTAB_CFG_SPLIT, 6) |
				       F_VAL(STRTAB_CFG_FMT, STRTAB_FMT_2LVL))),
	    0);
	uint64_t ste[8];
	smmu_ste_build(ste, &(struct smmu_ste_desc){.config = STE_CFG_BYPASS});
	hostmem_write(r.hm, l2 + 3 * 64, ste, 64);
	expect(&r, txn(64 + 3), RIG_RAM_PA, true, SMMU_DMA_OK, 0);
	expect(&r, txn(64 + 9), 0, false, SMMU_DMA_FAULT, EVT_C_BAD_STREAMID); /* beyond span */
	expect(&r, txn(5), 0, false, SMMU_DMA_FAULT, EVT_C_BAD_STREAMID);      /* span 0 */
	expect(&r, txn(256), 0, false, SMMU_DMA_FAULT, EVT_C_BAD_STREAMID);    /* log2size */
	expect(&r, txn(64 + 4), 0, false, SMMU_DMA_FAULT, EVT_C_BAD_STE);
	/* unsupported stream table configs are refused */
	assert_int_equal(smmu_set_strtab(r.smmu, l1, (uint32_t)F_VAL(STRTAB_CFG_FMT, 2)), -EINVAL);
	hostmem_page_free(r.hm, l1);
	hostmem_page_free(r.hm, l2);
	rig_fini(&r);
}

/* Builds CD tables of each format and checks the right CD is used per SSID. */
static void test_cd_tables(void **state)
{
	struct rig r;
	struct pgtable s1[3];
	uint64_t cd[8], lin, l1, leaf4k, leaf64k, desc;

	rig_init(&r, NULL);
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(pgtable_init(&s1[i], &r.mem, 1, 39, PGT_LEVEL_AUTO), 0);
		assert_int_equal(
		    pgtable_map(&s1[i], 0x1000, RIG_RAM_PA + (i + 1) * 0x1000, 4096, PGT_R | PGT_W),
		    0);
	}
	/* linear, 4 CDs: SSID 3 uses s1[2]; SSID 0 (untagged, S1DSS=SSID0) s1[0] */
	assert_int_equal(hostmem_page_alloc(r.hm, &lin), 0);
	smmu_cd_build(cd, &s1[2], 3, SMMU_CD_R);
	hostmem_write(r.hm, lin + 3 * 64, cd, 64);
	smmu_cd_build(cd, &s1[0], 4, SMMU_CD_R);
	hostmem_write(r.hm, lin, cd, 64);
	put_ste(&r, 1,
		&(struct smmu_ste_desc){
		    .config = STE_CFG_S1, .cd_ptr = lin, .s1cdmax = 2, .s1dss = STE_S1DSS_SSID0});
	struct smmu_xlate x;
	struct smmu_dma_txn t = txn_ssid(1, 3);
	smmu_translate(r.smmu, &t, 0x1000, false, &x);
	assert_int_equal(x.status, SMMU_DMA_OK);
	assert_int_equal(x.pa, RIG_RAM_PA + 0x3000);
	t = txn(1);
	smmu_translate(r.smmu, &t, 0x1000, false, &x);
	assert_int_equal(x.pa, RIG_RAM_PA + 0x1000);
	expect(&r, txn_ssid(1, 1), 0x1000, false, SMMU_DMA_FAULT, EVT_C_BAD_CD); /* V=0 CD */
	/* 2-level with 4K leaves (64 CDs each): SSID 64*2+5 */
	assert_int_equal(hostmem_page_alloc(r.hm, &l1), 0);
	assert_int_equal(hostmem_page_alloc(r.hm, &leaf4k), 0);
	desc = F_VAL(L1CD_V, 1) | leaf4k;
	hostmem_write(r.hm, l1 + 2 * 8, &desc, 8);
	smmu_cd_build(cd, &s1[1], 5, SMMU_CD_R);
	hostmem_write(r.hm, leaf4k + 5 * 64, cd, 64);
	put_ste(&r, 2,
		&(struct smmu_ste_desc){
		    .config = STE_CFG_S1, .cd_ptr = l1, .s1cdmax = 10, .s1fmt = STE_S1FMT_2L4K});
	t = txn_ssid(2, 64 * 2 + 5);
	smmu_translate(r.smmu, &t, 0x1000, false, &x);
	assert_int_equal(x.status, SMMU_DMA_OK);
	assert_int_equal(x.pa, RIG_RAM_PA + 0x2000);
	expect(&r, txn_ssid(2, 64 * 3), 0x1000, false, SMMU_DMA_FAULT, EVT_C_BAD_SUBSTREAMID);
	/* 2-level with 64K leaves (1024 CDs each): SSID 1024+700 */
	assert_int_equal(hostmem_pages_alloc(r.hm, 16, &leaf64k), 0);
	desc = F_VAL(L1CD_V, 1) | leaf64k;
	hostmem_write(r.hm, l1 + 8, &desc, 8);
	smmu_cd_build(cd, &s1[2], 6, SMMU_CD_R);
	hostmem_write(r.hm, leaf64k + 700 * 64, cd, 64);
	put_ste(&r, 3,
		&(struct smmu_ste_desc){
		    .config = STE_CFG_S1, .cd_ptr = l1, .s1cdmax = 12, .s1fmt = STE_S1FMT_2L64K});
	t = txn_ssid(3, 1024 + 700);
	smmu_translate(r.smmu, &t, 0x1000, false, &x);
	assert_int_equal(x.status, SMMU_DMA_OK);
	assert_int_equal(x.pa, RIG_RAM_PA + 0x3000);
	for (unsigned i = 0; i < 3; i++)
		pgtable_fini(&s1[i]);
	rig_fini(&r);
}

static void s1_stream(struct rig *r, uint32_t sid, struct pgtable *s1, unsigned cdflags)
{
	uint64_t cd[8];
	smmu_cd_build(cd, s1, (uint16_t)sid, cdflags); /* ASID = SID: no shared TLB entries */
	put_ste(r, sid, &(struct smmu_ste_desc){.config = STE_CFG_S1, .cd_ptr = rig_put_cd(r, cd)});
}

static void test_translation_events(void **state)
{
	struct rig r;
	struct pgtable s1, s2;
	struct smmu_event ev;

	rig_init(&r, NULL);
	assert_int_equal(pgtable_init(&s1, &r.mem, 1, 48, PGT_LEVEL_AUTO), 0);
	assert_int_equal(pgtable_map(&s1, 0x1000, RIG_RAM_PA, 4096, PGT_R), 0);
	assert_int_equal(pgtable_map(&s1, 0x2000, RIG_RAM_PA, 4096, PGT_R | PGT_W | PGT_NO_AF), 0);
	assert_int_equal(pgtable_map(&s1, 0x3000, 1ull << 47, 4096, PGT_R), 0);
	s1_stream(&r, 1, &s1, SMMU_CD_R);
	/* F_TRANSLATION with its fields */
	ev = expect(&r, txn(1), 0x5008, true, SMMU_DMA_FAULT, EVT_F_TRANSLATION);
	assert_int_equal(ev.dw[2], 0x5008);
	assert_int_equal(F_GET(ev.dw[1], EVT1_RNW), 0);
	assert_int_equal(F_GET(ev.dw[1], EVT1_S2), 0);
	assert_int_equal(F_GET(ev.dw[1], EVT1_CLASS), EVT_CLASS_IN);
	/* F_PERMISSION: write to a read-only page (read is fine) */
	ev = expect(&r, txn(1), 0x1000, true, SMMU_DMA_FAULT, EVT_F_PERMISSION);
	expect(&r, txn(1), 0x1000, false, SMMU_DMA_OK, 0);
	/* F_ACCESS: AF=0, HA=0, AFFD=0; has priority over the permission check */
	ev = expect(&r, txn(1), 0x2000, false, SMMU_DMA_FAULT, EVT_F_ACCESS);
	assert_int_equal(F_GET(ev.dw[1], EVT1_RNW), 1);
	/* F_ADDR_SIZE: output beyond IPS (48 bits here, OA = 2^47 fits; use IPS 40 next) */
	expect(&r, txn(1), 0x3000, false, SMMU_DMA_OK, 0);
	uint64_t cd[8];
	smmu_cd_build(cd, &s1, 2, SMMU_CD_R);
	cd[0] = F_SET(cd[0], CD0_IPS, 2); /* 40 bits */
	put_ste(&r, 2, &(struct smmu_ste_desc){.config = STE_CFG_S1, .cd_ptr = rig_put_cd(&r, cd)});
	expect(&r, txn(2), 0x3000, false, SMMU_DMA_FAULT, EVT_F_ADDR_SIZE);
	/* F_WALK_EABT: TTB0 without memory behind it */
	struct pgtable fake = s1;
	fake.root = NO_RAM_PA;
	s1_stream(&r, 3, &fake, SMMU_CD_R);
	expect(&r, txn(3), 0x1000, false, SMMU_DMA_FAULT, EVT_F_WALK_EABT);
	/* CD.R=0: the fault happens but is not recorded */
	s1_stream(&r, 4, &s1, 0);
	expect(&r, txn(4), 0x5000, false, SMMU_DMA_FAULT, 0);
	/* stage 2: S2AP read permission, S2PS output size, S2R gating */
	/* tables below 2^40 (the pool is at 2^47): in RAM */
	struct pgt_buf buf;
	pgt_buf_init(&buf, rig_ram(&r, RIG_RAM_PA + (16 << 20)), RIG_RAM_PA + (16 << 20), 1 << 20);
	struct pgt_mem bmem = pgt_buf_mem(&buf);
	assert_int_equal(pgtable_init(&s2, &bmem, 2, 40, PGT_LEVEL_AUTO), 0);
	assert_int_equal(pgtable_map(&s2, 0x1000, RIG_RAM_PA, 4096, PGT_W), 0);
	assert_int_equal(pgtable_map(&s2, 0x2000, 1ull << 44, 4096, PGT_R), 0);
	put_ste(
	    &r, 5,
	    &(struct smmu_ste_desc){
		.config = STE_CFG_S2, .s2 = &s2, .vmid = 1, .s2_flags = SMMU_STE_S2R, .s2ps = 2});
	ev = expect(&r, txn(5), 0x1000, false, SMMU_DMA_FAULT, EVT_F_PERMISSION);
	assert_int_equal(F_GET(ev.dw[1], EVT1_S2), 1);
	assert_int_equal(ev.dw[3], 0x1000);
	expect(&r, txn(5), 0x1000, true, SMMU_DMA_OK, 0);
	expect(&r, txn(5), 0x2000, false, SMMU_DMA_FAULT, EVT_F_ADDR_SIZE);
	ev = expect(&r, txn(5), 1ull << 40, false, SMMU_DMA_FAULT, EVT_F_TRANSLATION);
	assert_int_equal(F_GET(ev.dw[1], EVT1_S2), 1);
	put_ste(&r, 6, &(struct smmu_ste_desc){.config = STE_CFG_S2, .s2 = &s2, .vmid = 2});
	expect(&r, txn(6), 0x9000, false, SMMU_DMA_FAULT, 0);
	/* S2TTB itself beyond S2PS: address size fault on the walk */
	struct pgtable high;
	assert_int_equal(pgtable_init(&high, &r.mem, 2, 40, PGT_LEVEL_AUTO), 0);
	put_ste(
	    &r, 7,
	    &(struct smmu_ste_desc){
		.config = STE_CFG_S2, .s2 = &high, .vmid = 3, .s2_flags = SMMU_STE_S2R, .s2ps = 2});
	expect(&r, txn(7), 0x1000, false, SMMU_DMA_FAULT, EVT_F_ADDR_SIZE);
	pgtable_fini(&high);
	pgtable_fini(&s2);
	pgtable_fini(&s1);
	rig_fini(&r);
}

static void test_event_queue_overflow(void **state)
{
	struct rig r;
	struct smmu_params p;

	smmu_params_default(&p);
	p.evtq_log2 = 2;
	rig_init(&r, &p);
	for (unsigned i = 0; i < 6; i++) {
		struct smmu_xlate x;
		struct smmu_dma_txn t = txn(2);
		smmu_translate(r.smmu, &t, 0, false, &x);
	}
	assert_true(smmu_event_overflow_take(r.smmu));
	assert_false(smmu_event_overflow_take(r.smmu));
	assert_int_equal(rig_events(&r, NULL), 4);
	rig_fini(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_config_events),
	    cmocka_unit_test(test_ste_fetch_and_2level),
	    cmocka_unit_test(test_cd_tables),
	    cmocka_unit_test(test_translation_events),
	    cmocka_unit_test(test_event_queue_overflow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
