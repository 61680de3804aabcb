// SPDX-License-Identifier: Apache-2.0
/* IOTLB and configuration cache: each invalidation command removes exactly what it names
 * (plus nothing a cached translation would still need), range encodings, CMD_SYNC MSI
 * write, illegal commands. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rig.h"

#define OLD_PA RIG_RAM_PA
#define NEW_PA (RIG_RAM_PA + (16 << 20))

static uint64_t xlate(struct rig *r, uint32_t sid, uint64_t iova)
{
	struct smmu_dma_txn t = {.sid = sid};
	struct smmu_xlate x;
	assert_int_equal(smmu_translate(r->smmu, &t, iova, false, &x), 0);
	assert_int_equal(x.status, SMMU_DMA_OK);
	return x.pa;
}

/* Re-points the leaf of iova (page or block) at pa, behind the IOTLB's back. */
static void repoint(struct pgtable *pt, uint64_t iova, uint64_t pa)
{
	unsigned level;
	uint64_t *p = pgtable_leaf(pt, iova, &level);
	assert_non_null(p);
	*p = (*p & ~PTE_OA_MASK) | (pa & PTE_OA_MASK);
}

static void put_ste(struct rig *r, uint32_t sid, const struct smmu_ste_desc *d)
{
	uint64_t ste[8];
	smmu_ste_build(ste, d);
	rig_set_ste(r, sid, ste);
}

struct s1fx {
	struct rig r;
	struct pgtable s1;
};

static void s1fx_init(struct s1fx *f)
{
	uint64_t cd[8];
	rig_init(&f->r, NULL);
	assert_int_equal(pgtable_init(&f->s1, &f->r.mem, 1, 48, PGT_LEVEL_AUTO), 0);
	assert_int_equal(pgtable_map(&f->s1, 0x100000, OLD_PA, 8 * 4096, PGT_R | PGT_W), 0);
	assert_int_equal(pgtable_map(&f->s1, 0x40000000, OLD_PA, 2 << 20, PGT_R | PGT_W), 0);
	smmu_cd_build(cd, &f->s1, 5, SMMU_CD_R);
	put_ste(&f->r, 1,
		&(struct smmu_ste_desc){.config = STE_CFG_S1, .cd_ptr = rig_put_cd(&f->r, cd)});
}

static void s1fx_fini(struct s1fx *f)
{
	pgtable_fini(&f->s1);
	rig_fini(&f->r);
}

static uint64_t orig_pa(uint64_t iova)
{
	return iova >= 0x40000000 ? OLD_PA + (iova - 0x40000000) : OLD_PA + (iova - 0x100000);
}

static uint64_t leaf_mask(uint64_t iova)
{
	return iova >= 0x40000000 ? 0x1fffff : 0xfff;
}

/* Caches iova, re-points it, applies 'miss' (must not drop it) then 'hit' (must). */
static void check_inval(struct s1fx *f, uint64_t iova, struct smmu_cmd miss, struct smmu_cmd hit)
{
	assert_int_equal(xlate(&f->r, 1, iova), orig_pa(iova));
	repoint(&f->s1, iova, NEW_PA);
	assert_int_equal(xlate(&f->r, 1, iova), orig_pa(iova)); /* cached */
	rig_cmd(&f->r, miss);
	assert_int_equal(xlate(&f->r, 1, iova), orig_pa(iova));
	rig_cmd(&f->r, hit);
	assert_int_equal(xlate(&f->r, 1, iova), NEW_PA + (iova & leaf_mask(iova)));
	repoint(&f->s1, iova, orig_pa(iova) & ~leaf_mask(iova));
	rig_cmd(&f->r, smmu_cmd_tlbi_nsnh_all());
}

static void test_stage1_invalidations(void **state)
{
	struct s1fx f;

	s1fx_init(&f);
	check_inval(&f, 0x101008, smmu_cmd_tlbi_nh_va(0, 6, 0x101000, 0),
		    smmu_cmd_tlbi_nh_va(0, 5, 0x101000, 0));
	check_inval(&f, 0x102010, smmu_cmd_tlbi_nh_vaa(0, 0x103000, 0),
		    smmu_cmd_tlbi_nh_vaa(0, 0x102000, 0));
	check_inval(&f, 0x103000, smmu_cmd_tlbi_nh_asid(0, 4), smmu_cmd_tlbi_nh_asid(0, 5));
	check_inval(&f, 0x104000, smmu_cmd_tlbi_nh_all(1), smmu_cmd_tlbi_nh_all(0));
	check_inval(&f, 0x105000, smmu_cmd_tlbi_s2_ipa(0, 0x105000, 0), smmu_cmd_tlbi_nsnh_all());
	/* a block: invalidating any address inside it drops the cached fragment */
	check_inval(&f, 0x40012345, smmu_cmd_tlbi_nh_va(0, 5, 0x40200000, 0),
		    smmu_cmd_tlbi_nh_va(0, 5, 0x401ff000, 0));
	s1fx_fini(&f);
}

static void test_range_invalidation(void **state)
{
	struct s1fx f;

	s1fx_init(&f);
	/* cache 8 pages, invalidate [0x102000, 0x105000) with TG=4K NUM=2 SCALE=0 */
	for (unsigned i = 0; i < 8; i++)
		xlate(&f.r, 1, 0x100000 + i * 4096ull);
	for (unsigned i = 0; i < 8; i++)
		repoint(&f.s1, 0x100000 + i * 4096ull, NEW_PA + i * 4096ull);
	rig_cmd(&f.r, smmu_cmd_tlbi_nh_va(0, 5, 0x102000, 3));
	for (unsigned i = 0; i < 8; i++) {
		bool in = i >= 2 && i < 5;
		assert_int_equal(xlate(&f.r, 1, 0x100000 + i * 4096ull),
				 (in ? NEW_PA : OLD_PA) + i * 4096ull);
	}
	/* an explicit SCALE: NUM=0 SCALE=2 is 4 pages */
	struct smmu_cmd c = smmu_cmd_tlbi_nh_va(0, 5, 0x104000, 0);
	c.dw[0] |= F_VAL(CMD0_SCALE, 2);
	c.dw[1] |= F_VAL(CMD1_TG, 1);
	rig_cmd(&f.r, c);
	for (unsigned i = 5; i < 8; i++)
		assert_int_equal(xlate(&f.r, 1, 0x100000 + i * 4096ull), NEW_PA + i * 4096ull);
	assert_int_equal(xlate(&f.r, 1, 0x100000), OLD_PA);
	/* a batch: two TLBIs, then an illegal command; the TLBIs before it took effect */
	repoint(&f.s1, 0x100000, NEW_PA);
	repoint(&f.s1, 0x101000, NEW_PA + 0x1000);
	struct smmu_cmd batch[3] = {smmu_cmd_tlbi_nh_va(0, 5, 0x100000, 0),
				    smmu_cmd_tlbi_nh_va(0, 5, 0x101000, 0),
				    {{0x7e, 0}}};
	unsigned err;
	assert_int_equal(smmu_cmd_exec(f.r.smmu, batch, 3, &err), 2);
	assert_int_equal(err, CERROR_ILL);
	assert_int_equal(xlate(&f.r, 1, 0x100000), NEW_PA);
	assert_int_equal(xlate(&f.r, 1, 0x101000), NEW_PA + 0x1000);
	s1fx_fini(&f);
}

static void test_stage2_invalidations(void **state)
{
	struct rig r;
	struct pgtable s2;

	rig_init(&r, NULL);
	assert_int_equal(pgtable_init(&s2, &r.mem, 2, 40, PGT_LEVEL_AUTO), 0);
	assert_int_equal(pgtable_map(&s2, 0x10000, OLD_PA, 4096, PGT_R | PGT_W), 0);
	put_ste(&r, 2, &(struct smmu_ste_desc){.config = STE_CFG_S2, .s2 = &s2, .vmid = 7});
	static const struct {
		int miss_kind, hit_kind;
	} cases[] = {{0, 1}, {2, 3}, {4, 3}};
	for (unsigned i = 0; i < ARRAY_SIZE(cases); i++) {
		struct smmu_cmd cmds[5] = {smmu_cmd_tlbi_s2_ipa(8, 0x10000, 0),
					   smmu_cmd_tlbi_s2_ipa(7, 0x10000, 0),
					   smmu_cmd_tlbi_nh_all(7), smmu_cmd_tlbi_s12_vmall(7),
					   smmu_cmd_tlbi_s12_vmall(6)};
		assert_int_equal(xlate(&r, 2, 0x10000), OLD_PA);
		repoint(&s2, 0x10000, NEW_PA);
		rig_cmd(&r, cmds[cases[i].miss_kind]);
		assert_int_equal(xlate(&r, 2, 0x10000), OLD_PA);
		rig_cmd(&r, cmds[cases[i].hit_kind]);
		assert_int_equal(xlate(&r, 2, 0x10000), NEW_PA);
		repoint(&s2, 0x10000, OLD_PA);
		rig_cmd(&r, smmu_cmd_tlbi_nsnh_all());
	}
	pgtable_fini(&s2);
	rig_fini(&r);
}

static void test_config_cache(void **state)
{
	struct s1fx f;
	uint64_t ste[8];

	s1fx_init(&f);
	assert_int_equal(xlate(&f.r, 1, 0x100000), OLD_PA);
	/* rewrite the STE to bypass without CFGI: still the cached S1 config */
	smmu_ste_build(ste, &(struct smmu_ste_desc){.config = STE_CFG_BYPASS});
	hostmem_write(f.r.hm, f.r.strtab + 64, ste, 64);
	assert_int_equal(xlate(&f.r, 1, 0x100000), OLD_PA);
	rig_cmd(&f.r, smmu_cmd_cfgi_ste(2));
	assert_int_equal(xlate(&f.r, 1, 0x100000), OLD_PA);
	rig_cmd(&f.r, smmu_cmd_cfgi_ste_range(2, 0)); /* SIDs 2-3 */
	assert_int_equal(xlate(&f.r, 1, 0x100000), OLD_PA);
	rig_cmd(&f.r, smmu_cmd_cfgi_ste_range(2, 1)); /* SIDs 0-3 */
	assert_int_equal(xlate(&f.r, 1, 0x100000), 0x100000);
	/* CFGI_ALL; CFGI_CD after a CD change (ASID 5 -> 9 and a new table) */
	struct pgtable other;
	uint64_t cd[8];
	assert_int_equal(pgtable_init(&other, &f.r.mem, 1, 48, PGT_LEVEL_AUTO), 0);
	assert_int_equal(pgtable_map(&other, 0x100000, NEW_PA, 4096, PGT_R), 0);
	smmu_cd_build(cd, &f.s1, 5, 0);
	uint64_t cdpa = rig_put_cd(&f.r, cd);
	smmu_ste_build(ste, &(struct smmu_ste_desc){.config = STE_CFG_S1, .cd_ptr = cdpa});
	hostmem_write(f.r.hm, f.r.strtab + 64, ste, 64);
	rig_cmd(&f.r, smmu_cmd_cfgi_all());
	assert_int_equal(xlate(&f.r, 1, 0x100000), OLD_PA);
	smmu_cd_build(cd, &other, 9, 0);
	hostmem_write(f.r.hm, cdpa, cd, 64);
	assert_int_equal(xlate(&f.r, 1, 0x100000), OLD_PA);
	rig_cmd(&f.r, smmu_cmd_cfgi_cd(1, 0));
	assert_int_equal(xlate(&f.r, 1, 0x100000), NEW_PA);
	smmu_cd_build(cd, &f.s1, 5, 0);
	hostmem_write(f.r.hm, cdpa, cd, 64);
	rig_cmd(&f.r, smmu_cmd_cfgi_cd_all(1));
	assert_int_equal(xlate(&f.r, 1, 0x100000), OLD_PA);
	pgtable_fini(&other);
	s1fx_fini(&f);
}

static void test_commands_misc(void **state)
{
	struct rig r;
	unsigned err;

	rig_init(&r, NULL);
	/* CMD_SYNC with CS=1 writes MSIData to MSIAddr */
	struct smmu_cmd sync = smmu_cmd_sync();
	sync.dw[0] |= F_VAL(CMD0_SYNC_CS, 1) | F_VAL(CMD0_MSIDATA, 0xcafe);
	sync.dw[1] = RIG_RAM_PA + 0x100;
	rig_cmd(&r, sync);
	assert_int_equal(*(uint32_t *)rig_ram(&r, RIG_RAM_PA + 0x100), 0xcafe);
	/* an unknown opcode stops the queue at its index with CERROR_ILL */
	struct smmu_cmd q[3] = {smmu_cmd_tlbi_nsnh_all(), {{0x7f, 0}}, smmu_cmd_sync()};
	assert_int_equal(smmu_cmd_exec(r.smmu, q, 3, &err), 1);
	assert_int_equal(err, CERROR_ILL);
	struct smmu_cmd cfgi = smmu_cmd_cfgi_ste(1);
	cfgi.dw[0] |= F_VAL(CMD0_SSEC, 1);
	assert_int_equal(smmu_cmd_one(r.smmu, cfgi), -EINVAL);
	assert_int_equal(smmu_cmd_exec(r.smmu, q, 1, &err), 1);
	assert_int_equal(err, CERROR_NONE);
	rig_fini(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stage1_invalidations), cmocka_unit_test(test_range_invalidation),
	    cmocka_unit_test(test_stage2_invalidations), cmocka_unit_test(test_config_cache),
	    cmocka_unit_test(test_commands_misc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
