// SPDX-License-Identifier: Apache-2.0
/* Walks: every level and block size at stage 1 and 2, concatenated stage-2 start tables,
 * nested walks (including a stage-2 fault while walking stage 1), DMA data paths. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rig.h"

static const struct smmu_dma_txn txn0 = {.sid = 1};

static void s1_stream(struct rig *r, uint32_t sid, struct pgtable *s1, unsigned cdflags)
{
	uint64_t cd[8], ste[8];
	smmu_cd_build(cd, s1, 7, cdflags | SMMU_CD_R);
	struct smmu_ste_desc d = {.config = STE_CFG_S1, .cd_ptr = rig_put_cd(r, cd)};
	smmu_ste_build(ste, &d);
	rig_set_ste(r, sid, ste);
}

static void s2_stream(struct rig *r, uint32_t sid, struct pgtable *s2, unsigned flags)
{
	uint64_t ste[8];
	struct smmu_ste_desc d = {
	    .config = STE_CFG_S2, .s2 = s2, .vmid = 3, .s2_flags = flags | SMMU_STE_S2R};
	smmu_ste_build(ste, &d);
	rig_set_ste(r, sid, ste);
}

/* Writes through the SMMU at iova, checks it landed at pa, and reads it back. */
static void check_rw(struct rig *r, const struct smmu_dma_txn *t, uint64_t iova, uint64_t pa)
{
	struct smmu_dma_result res;
	uint64_t v = iova ^ 0x5a5a5a5a12345678ull, back = 0;

	assert_int_equal(smmu_dma_write(r->smmu, t, iova, &v, 8, &res), 0);
	assert_int_equal(res.status, SMMU_DMA_OK);
	assert_int_equal(res.done, 8);
	assert_memory_equal(rig_ram(r, pa), &v, 8);
	assert_int_equal(smmu_dma_read(r->smmu, t, iova, &back, 8, &res), 0);
	assert_int_equal(res.status, SMMU_DMA_OK);
	assert_int_equal(back, v);
}

static void test_s1_levels_and_blocks(void **state)
{
	struct rig r;
	struct pgtable s1;
	unsigned level;

	rig_init(&r, NULL);
	assert_int_equal(pgtable_init(&s1, &r.mem, 1, 48, PGT_LEVEL_AUTO), 0);
	assert_int_equal(s1.start_level, 0);
	/* 4K page (levels 0-3), 2M block (level 2), 1G block (level 1) */
	assert_int_equal(pgtable_map(&s1, 0x1000, RIG_RAM_PA + 0x5000, 4096, PGT_R | PGT_W), 0);
	assert_int_equal(
	    pgtable_map(&s1, 0x7f0000200000ull, RIG_RAM_PA + 0x200000, 2 << 20, PGT_R | PGT_W), 0);
	assert_int_equal(pgtable_map(&s1, 0x80000000ull, RIG_RAM_PA, 1ull << 30, PGT_R | PGT_W), 0);
	assert_non_null(pgtable_leaf(&s1, 0x1000, &level));
	assert_int_equal(level, 3);
	assert_non_null(pgtable_leaf(&s1, 0x7f0000200000ull, &level));
	assert_int_equal(level, 2);
	assert_non_null(pgtable_leaf(&s1, 0x80000000ull, &level));
	assert_int_equal(level, 1);
	s1_stream(&r, 1, &s1, 0);
	check_rw(&r, &txn0, 0x1008, RIG_RAM_PA + 0x5008);
	check_rw(&r, &txn0, 0x7f0000200000ull + 0x12345, RIG_RAM_PA + 0x200000 + 0x12345);
	check_rw(&r, &txn0, 0x80000000ull + 0x3456789, RIG_RAM_PA + 0x3456789);
	/* unmapped neighbour faults */
	struct smmu_xlate x;
	smmu_translate(r.smmu, &txn0, 0x2000, false, &x);
	assert_int_equal(x.status, SMMU_DMA_FAULT);
	assert_int_equal(x.event_id, EVT_F_TRANSLATION);
	pgtable_fini(&s1);
	assert_int_equal(hostmem_pages_in_use(r.hm), 4 /* strtab */ + 1 /* cd */);
	rig_fini(&r);
}

static void test_s1_start_levels(void **state)
{
	static const unsigned ia[] = {39, 30, 25};
	static const unsigned want[] = {1, 2, 2};

	for (unsigned i = 0; i < 3; i++) {
		struct rig r;
		struct pgtable s1;
		rig_init(&r, NULL);
		assert_int_equal(pgtable_init(&s1, &r.mem, 1, ia[i], PGT_LEVEL_AUTO), 0);
		assert_int_equal(s1.start_level, want[i]);
		uint64_t top = (1ull << ia[i]) - 4096;
		assert_int_equal(pgtable_map(&s1, top, RIG_RAM_PA + 0x9000, 4096, PGT_R | PGT_W),
				 0);
		s1_stream(&r, 1, &s1, 0);
		check_rw(&r, &txn0, top + 0x10, RIG_RAM_PA + 0x9010);
		/* beyond the input size: translation fault */
		struct smmu_xlate x;
		smmu_translate(r.smmu, &txn0, 1ull << ia[i], false, &x);
		assert_int_equal(x.status, SMMU_DMA_FAULT);
		assert_int_equal(x.event_id, EVT_F_TRANSLATION);
		pgtable_fini(&s1);
		rig_fini(&r);
	}
}

static void test_s2_levels_and_concat(void **state)
{
	/* ia bits, explicit start level (or auto), expected root pages */
	static const struct {
		unsigned ia;
		int level;
		unsigned root_pages;
	} g[] = {{48, 0, 1},  {40, 1, 2}, {39, 1, 1},
		 {34, 2, 16}, {30, 2, 1}, {42, PGT_LEVEL_AUTO, 8}};

	for (unsigned i = 0; i < ARRAY_SIZE(g); i++) {
		struct rig r;
		struct pgtable s2;
		rig_init(&r, NULL);
		assert_int_equal(pgtable_init(&s2, &r.mem, 2, g[i].ia, g[i].level), 0);
		assert_int_equal(s2.root_pages, g[i].root_pages);
		uint64_t top = (1ull << g[i].ia) - (4ull << 20);
		assert_int_equal(
		    pgtable_map(&s2, top, RIG_RAM_PA + (2 << 20), 2 << 20, PGT_R | PGT_W), 0);
		assert_int_equal(
		    pgtable_map(&s2, top + (2 << 20), RIG_RAM_PA + 0x7000, 4096, PGT_R | PGT_W), 0);
		assert_int_equal(pgtable_map(&s2, 0, RIG_RAM_PA, 64 << 20, PGT_R | PGT_W), 0);
		s2_stream(&r, 1, &s2, 0);
		check_rw(&r, &txn0, top + 0x1234, RIG_RAM_PA + (2 << 20) + 0x1234);
		check_rw(&r, &txn0, top + (2 << 20) + 8, RIG_RAM_PA + 0x7008);
		check_rw(&r, &txn0, 0x3000000 + 16, RIG_RAM_PA + 0x3000010);
		pgtable_fini(&s2);
		rig_fini(&r);
	}
}

static void test_s2_bad_geometry(void **state)
{
	struct rig r;
	struct pgtable s2;
	rig_init(&r, NULL);
	assert_int_equal(pgtable_init(&s2, &r.mem, 2, 48, 1), -EINVAL); /* 18 bits at L1 */
	assert_int_equal(pgtable_init(&s2, &r.mem, 2, 30, 0), -EINVAL); /* no bits at L0 */
	assert_int_equal(pgtable_init(&s2, &r.mem, 1, 20, PGT_LEVEL_AUTO), -EINVAL);
	rig_fini(&r);
}

/* Guest RAM: IPA [0, 256M) -> PA RIG_RAM_PA; stage-1 tables live in it at IPA 0x100000. */
struct nest {
	struct pgtable s1, s2;
	struct pgt_buf gbuf;
	struct pgt_mem gmem;
};

static void nest_setup(struct rig *r, struct nest *n, unsigned s2flags, unsigned cdflags)
{
	uint64_t cd[8], cd_ipa, ste[8];

	assert_int_equal(pgtable_init(&n->s2, &r->mem, 2, 40, PGT_LEVEL_AUTO), 0);
	assert_int_equal(pgtable_map(&n->s2, 0, RIG_RAM_PA, 256 << 20, PGT_R | PGT_W | PGT_PAGES),
			 0);
	pgt_buf_init(&n->gbuf, rig_ram(r, RIG_RAM_PA + 0x100000), 0x100000, 1 << 20);
	n->gmem = pgt_buf_mem(&n->gbuf);
	assert_int_equal(pgt_buf_alloc(&n->gbuf, 64, 4096, &cd_ipa), 0);
	assert_int_equal(pgtable_init(&n->s1, &n->gmem, 1, 48, PGT_LEVEL_AUTO), 0);
	smmu_cd_build(cd, &n->s1, 9, cdflags | SMMU_CD_R);
	memcpy(pgt_buf_ptr(&n->gbuf, cd_ipa), cd, 64);
	struct smmu_ste_desc d = {.config = STE_CFG_NESTED,
				  .s2 = &n->s2,
				  .vmid = 5,
				  .s2_flags = s2flags | SMMU_STE_S2R,
				  .cd_ptr = cd_ipa};
	smmu_ste_build(ste, &d);
	rig_set_ste(r, 1, ste);
}

static void nest_teardown(struct nest *n)
{
	pgtable_fini(&n->s2);
}

static void test_nested_walk(void **state)
{
	struct rig r;
	struct nest n;

	rig_init(&r, NULL);
	nest_setup(&r, &n, 0, 0);
	assert_int_equal(pgtable_map(&n.s1, 0xdead000, 0x4000000, 4096, PGT_R | PGT_W), 0);
	assert_int_equal(pgtable_map(&n.s1, 0x40000000, 0x8000000, 2 << 20, PGT_R | PGT_W), 0);
	check_rw(&r, &txn0, 0xdead010, RIG_RAM_PA + 0x4000010);
	check_rw(&r, &txn0, 0x40000000 + 0x10000, RIG_RAM_PA + 0x8010000);
	/* S1 output beyond the IPA space of stage 2: stage-2 translation fault, CLASS=IN */
	assert_int_equal(pgtable_map(&n.s1, 0x70000000, 1ull << 41, 4096, PGT_R | PGT_W), 0);
	struct smmu_xlate x;
	struct smmu_event ev;
	smmu_translate(r.smmu, &txn0, 0x70000000, false, &x);
	assert_int_equal(x.status, SMMU_DMA_FAULT);
	assert_int_equal(rig_events(&r, &ev), 1);
	assert_int_equal(smmu_event_id(&ev), EVT_F_TRANSLATION);
	assert_int_equal(F_GET(ev.dw[1], EVT1_S2), 1);
	assert_int_equal(F_GET(ev.dw[1], EVT1_CLASS), EVT_CLASS_IN);
	assert_int_equal(ev.dw[3], (1ull << 41) & F_MASK(EVT3_IPA));
	nest_teardown(&n);
	rig_fini(&r);
}

static void test_nested_s2_fault_on_table(void **state)
{
	struct rig r;
	struct nest n;
	unsigned level;

	rig_init(&r, NULL);
	nest_setup(&r, &n, 0, 0);
	assert_int_equal(pgtable_map(&n.s1, 0xdead000, 0x4000000, 4096, PGT_R | PGT_W), 0);
	/* the level-2 table of that walk: find its IPA through the level-1 descriptor */
	uint64_t *l1 = pgtable_desc(&n.s1, 0xdead000, 1);
	assert_non_null(l1);
	uint64_t l2_ipa = *l1 & PTE_OA_MASK;
	assert_int_equal(pgtable_unmap(&n.s2, l2_ipa, 4096), 4096);
	struct smmu_dma_result res;
	uint32_t v = 1;
	assert_int_equal(smmu_dma_write(r.smmu, &txn0, 0xdead000, &v, 4, &res), 0);
	assert_int_equal(res.status, SMMU_DMA_FAULT);
	assert_int_equal(res.event_id, EVT_F_TRANSLATION);
	struct smmu_event ev;
	assert_int_equal(rig_events(&r, &ev), 1);
	assert_int_equal(smmu_event_id(&ev), EVT_F_TRANSLATION);
	assert_int_equal(F_GET(ev.dw[1], EVT1_S2), 1);
	assert_int_equal(F_GET(ev.dw[1], EVT1_CLASS), EVT_CLASS_TT);
	assert_int_equal(F_GET(ev.dw[1], EVT1_RNW), 0);
	assert_int_equal(ev.dw[2], 0xdead000);
	assert_int_equal(ev.dw[3], l2_ipa);
	assert_non_null(pgtable_leaf(&n.s1, 0xdead000, &level));
	nest_teardown(&n);
	rig_fini(&r);
}

static void test_nested_cd_fetch_fault(void **state)
{
	struct rig r;
	struct nest n;

	rig_init(&r, NULL);
	nest_setup(&r, &n, 0, 0);
	/* unmap the CD's page at stage 2: the CD fetch faults with S2=1, CLASS=CD */
	assert_int_equal(pgtable_unmap(&n.s2, 0x100000, 4096), 4096);
	rig_cmd(&r, smmu_cmd_tlbi_s12_vmall(5));
	struct smmu_xlate x;
	struct smmu_event ev;
	smmu_translate(r.smmu, &txn0, 0x1000, false, &x);
	assert_int_equal(x.status, SMMU_DMA_FAULT);
	assert_int_equal(rig_events(&r, &ev), 1);
	assert_int_equal(F_GET(ev.dw[1], EVT1_S2), 1);
	assert_int_equal(F_GET(ev.dw[1], EVT1_CLASS), EVT_CLASS_CD);
	assert_int_equal(ev.dw[3], 0x100000);
	nest_teardown(&n);
	rig_fini(&r);
}

static void test_dma_copy_fill_cross_pages(void **state)
{
	struct rig r;
	struct pgtable s2;
	struct smmu_dma_result res;

	rig_init(&r, NULL);
	assert_int_equal(pgtable_init(&s2, &r.mem, 2, 40, PGT_LEVEL_AUTO), 0);
	/* scattered: iova page i -> pa page (7 - i) */
	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(pgtable_map(&s2, 0x10000 + i * 4096ull,
					     RIG_RAM_PA + (7 - i) * 4096ull, 4096, PGT_R | PGT_W),
				 0);
	s2_stream(&r, 1, &s2, 0);
	assert_int_equal(
	    smmu_dma_fill(r.smmu, &txn0, 0x10000 + 100, 0x0807060504030201ull, 3 * 4096, &res), 0);
	assert_int_equal(res.status, SMMU_DMA_OK);
	uint8_t *p7 = rig_ram(&r, RIG_RAM_PA + 7 * 4096);
	assert_int_equal(p7[100], 1);
	assert_int_equal(p7[107], 8);
	uint8_t buf[3 * 4096];
	assert_int_equal(smmu_dma_read(r.smmu, &txn0, 0x10000 + 100, buf, sizeof(buf), &res), 0);
	for (unsigned i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], (i & 7) + 1);
	assert_int_equal(smmu_dma_copy(r.smmu, &txn0, 0x14000, 0x10000 + 100, 3 * 4096, &res), 0);
	assert_int_equal(res.status, SMMU_DMA_OK);
	assert_int_equal(((uint8_t *)rig_ram(&r, RIG_RAM_PA + 3 * 4096))[9], 2);
	/* copy running off the end: done counts what landed, fault_iova the first failure */
	assert_int_equal(smmu_dma_copy(r.smmu, &txn0, 0x16000, 0x10000, 3 * 4096, &res), 0);
	assert_int_equal(res.status, SMMU_DMA_FAULT);
	assert_int_equal(res.done, 2 * 4096);
	assert_int_equal(res.fault_iova, 0x18000);
	pgtable_fini(&s2);
	rig_fini(&r);
}

static void test_bypass_abort_gbpa(void **state)
{
	struct rig r;
	uint64_t ste[8];
	struct smmu_dma_result res;
	uint32_t v = 0xabcd;

	rig_init(&r, NULL);
	struct smmu_ste_desc d = {.config = STE_CFG_BYPASS};
	smmu_ste_build(ste, &d);
	rig_set_ste(&r, 1, ste);
	assert_int_equal(smmu_dma_write(r.smmu, &txn0, RIG_RAM_PA + 0x40, &v, 4, &res), 0);
	assert_int_equal(res.status, SMMU_DMA_OK);
	assert_memory_equal(rig_ram(&r, RIG_RAM_PA + 0x40), &v, 4);
	/* bypass to nothing: bus error */
	assert_int_equal(smmu_dma_write(r.smmu, &txn0, 0x10, &v, 4, &res), 0);
	assert_int_equal(res.status, SMMU_DMA_BUS_ERROR);
	d.config = STE_CFG_ABORT;
	smmu_ste_build(ste, &d);
	rig_set_ste(&r, 1, ste);
	assert_int_equal(smmu_dma_write(r.smmu, &txn0, RIG_RAM_PA, &v, 4, &res), 0);
	assert_int_equal(res.status, SMMU_DMA_ABORTED);
	assert_int_equal(rig_events(&r, NULL), 0);
	smmu_set_enable(r.smmu, false);
	assert_int_equal(smmu_dma_write(r.smmu, &txn0, RIG_RAM_PA, &v, 4, &res), 0);
	assert_int_equal(res.status, SMMU_DMA_OK);
	smmu_set_gbpa_abort(r.smmu, true);
	assert_int_equal(smmu_dma_write(r.smmu, &txn0, RIG_RAM_PA, &v, 4, &res), 0);
	assert_int_equal(res.status, SMMU_DMA_ABORTED);
	assert_int_equal(rig_events(&r, NULL), 0);
	rig_fini(&r);
}

/* APTable[1] in a stage-1 table descriptor makes everything below it read-only. */
static void test_s1_aptable(void **state)
{
	struct rig r;
	struct pgtable s1;
	struct smmu_xlate x;

	rig_init(&r, NULL);
	assert_int_equal(pgtable_init(&s1, &r.mem, 1, 48, PGT_LEVEL_AUTO), 0);
	assert_int_equal(pgtable_map(&s1, 0x1000, RIG_RAM_PA, 4096, PGT_R | PGT_W), 0);
	s1_stream(&r, 1, &s1, SMMU_CD_HA | SMMU_CD_HD);
	uint64_t *l2 = pgtable_desc(&s1, 0x1000, 2);
	*l2 |= F_VAL(PTE_APTABLE, 2);
	smmu_translate(r.smmu, &txn0, 0x1000, true, &x);
	assert_int_equal(x.status, SMMU_DMA_FAULT);
	assert_int_equal(x.event_id, EVT_F_PERMISSION);
	smmu_translate(r.smmu, &txn0, 0x1000, false, &x);
	assert_int_equal(x.status, SMMU_DMA_OK);
	*l2 &= ~F_MASK(PTE_APTABLE);
	smmu_translate(r.smmu, &txn0, 0x1000, true, &x);
	assert_int_equal(x.status, SMMU_DMA_OK);
	pgtable_fini(&s1);
	rig_fini(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_s1_levels_and_blocks),
	    cmocka_unit_test(test_s1_start_levels),
	    cmocka_unit_test(test_s2_levels_and_concat),
	    cmocka_unit_test(test_s2_bad_geometry),
	    cmocka_unit_test(test_nested_walk),
	    cmocka_unit_test(test_nested_s2_fault_on_table),
	    cmocka_unit_test(test_nested_cd_fetch_fault),
	    cmocka_unit_test(test_dma_copy_fill_cross_pages),
	    cmocka_unit_test(test_bypass_abort_gbpa),
	    cmocka_unit_test(test_s1_aptable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
