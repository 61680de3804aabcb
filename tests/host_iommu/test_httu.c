// SPDX-License-Identifier: Apache-2.0
/* Hardware access/dirty state (HTTU) at stage 1, stage 2 and nested, dirty harvests, and
 * the IOTLB rule that a write after a harvest dirties the page again. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rig.h"

static const struct smmu_dma_txn T1 = {.sid = 1};

static void put_ste(struct rig *r, uint32_t sid, const struct smmu_ste_desc *d)
{
	uint64_t ste[8];
	smmu_ste_build(ste, d);
	rig_set_ste(r, sid, ste);
}

static void s1_stream(struct rig *r, uint32_t sid, struct pgtable *s1, unsigned cdflags)
{
	uint64_t cd[8];
	smmu_cd_build(cd, s1, (uint16_t)sid, cdflags | SMMU_CD_R);
	put_ste(r, sid, &(struct smmu_ste_desc){.config = STE_CFG_S1, .cd_ptr = rig_put_cd(r, cd)});
}

static enum smmu_dma_status wr(struct rig *r, const struct smmu_dma_txn *t, uint64_t iova)
{
	struct smmu_dma_result res;
	uint64_t v = iova;
	assert_int_equal(smmu_dma_write(r->smmu, t, iova, &v, 8, &res), 0);
	return res.status;
}

static enum smmu_dma_status rd(struct rig *r, const struct smmu_dma_txn *t, uint64_t iova)
{
	struct smmu_dma_result res;
	uint64_t v;
	assert_int_equal(smmu_dma_read(r->smmu, t, iova, &v, 8, &res), 0);
	return res.status;
}

static uint64_t pte(struct pgtable *pt, uint64_t iova)
{
	uint64_t *p = pgtable_leaf(pt, iova, NULL);
	assert_non_null(p);
	return *p;
}

static void test_s1_httu(void **state)
{
	struct rig r;
	struct pgtable s1;
	const unsigned clean = PGT_R | PGT_W | PGT_DBM | PGT_NO_AF;
	struct smmu_dma_txn t2 = {.sid = 2}, t3 = {.sid = 3};

	rig_init(&r, NULL);
	assert_int_equal(pgtable_init(&s1, &r.mem, 1, 48, PGT_LEVEL_AUTO), 0);
	assert_int_equal(pgtable_map(&s1, 0x1000, RIG_RAM_PA, 4096, clean), 0);
	assert_int_equal(pgtable_map(&s1, 0x2000, RIG_RAM_PA, 4096, PGT_R), 0);
	assert_int_equal(pgtable_map(&s1, 0x200000, RIG_RAM_PA, 2 << 20, clean), 0);
	s1_stream(&r, 1, &s1, SMMU_CD_HA | SMMU_CD_HD);
	/* writable-clean, AF clear: a read sets AF and leaves it clean */
	assert_int_equal(pte(&s1, 0x1000) & (PTE_BIT_AF | PTE_BIT_AP2 | PTE_BIT_DBM),
			 PTE_BIT_AP2 | PTE_BIT_DBM);
	assert_int_equal(rd(&r, &T1, 0x1000), SMMU_DMA_OK);
	assert_int_equal(pte(&s1, 0x1000) & (PTE_BIT_AF | PTE_BIT_AP2), PTE_BIT_AF | PTE_BIT_AP2);
	/* a write makes it writable-dirty (AP[2] cleared) */
	assert_int_equal(wr(&r, &T1, 0x1000), SMMU_DMA_OK);
	assert_int_equal(pte(&s1, 0x1000) & PTE_BIT_AP2, 0);
	/* same on a 2 MiB block */
	assert_int_equal(wr(&r, &T1, 0x300000), SMMU_DMA_OK);
	assert_int_equal(pte(&s1, 0x200000) & (PTE_BIT_AP2 | PTE_BIT_AF), PTE_BIT_AF);
	/* read-only without DBM faults on write */
	assert_int_equal(wr(&r, &T1, 0x2000), SMMU_DMA_FAULT);
	/* HD=0: DBM is ignored, the writable-clean page is read-only */
	assert_int_equal(pgtable_map(&s1, 0x5000, RIG_RAM_PA, 4096, PGT_R | PGT_W | PGT_DBM), 0);
	s1_stream(&r, 2, &s1, SMMU_CD_HA);
	assert_int_equal(wr(&r, &t2, 0x5000), SMMU_DMA_FAULT);
	assert_int_not_equal(pte(&s1, 0x5000) & PTE_BIT_AP2, 0);
	/* HA=0 with AFFD=1: AF clear does not fault and is not set */
	assert_int_equal(pgtable_map(&s1, 0x6000, RIG_RAM_PA, 4096, PGT_R | PGT_NO_AF), 0);
	s1_stream(&r, 3, &s1, SMMU_CD_AFFD);
	assert_int_equal(rd(&r, &t3, 0x6000), SMMU_DMA_OK);
	assert_int_equal(pte(&s1, 0x6000) & PTE_BIT_AF, 0);
	pgtable_fini(&s1);
	rig_fini(&r);
}

/*
 * A probe (the host's debug view) walks as a DMA would and changes nothing: an access flag
 * and a dirty state HTTU would set stay clear, a fault records no event, and it tells a
 * writable-clean page from a read-only one.
 */
static void test_probe_changes_nothing(void **state)
{
	struct rig r;
	struct pgtable s1;
	struct smmu_probe_out p;
	struct smmu_event ev;

	rig_init(&r, NULL);
	assert_int_equal(pgtable_init(&s1, &r.mem, 1, 48, PGT_LEVEL_AUTO), 0);
	assert_int_equal(
	    pgtable_map(&s1, 0x1000, RIG_RAM_PA, 4096, PGT_R | PGT_W | PGT_DBM | PGT_NO_AF), 0);
	assert_int_equal(pgtable_map(&s1, 0x2000, RIG_RAM_PA, 4096, PGT_R), 0);
	s1_stream(&r, 1, &s1, SMMU_CD_HA | SMMU_CD_HD);
	uint64_t before = pte(&s1, 0x1000);
	assert_int_equal(smmu_probe(r.smmu, &T1, 0x1010, true, &p), 0);
	assert_int_equal(p.status, SMMU_DMA_OK);
	assert_int_equal(p.ipa, RIG_RAM_PA + 0x10);
	assert_true(p.read && p.write);
	assert_int_equal(pte(&s1, 0x1000), before); /* no AF, still clean */
	assert_int_equal(smmu_probe(r.smmu, &T1, 0x2000, true, &p), 0);
	assert_int_equal(p.status, SMMU_DMA_FAULT);
	assert_int_equal(p.event_id, EVT_F_PERMISSION);
	assert_int_equal(smmu_probe(r.smmu, &T1, 0x9000, false, &p), 0);
	assert_int_equal(p.status, SMMU_DMA_FAULT);
	assert_int_equal(p.event_id, EVT_F_TRANSLATION);
	assert_false(smmu_event_pop(r.smmu, &ev)); /* no event for either fault */
	/* The same read as a DMA does set the access flag. */
	assert_int_equal(rd(&r, &T1, 0x1000), SMMU_DMA_OK);
	assert_int_not_equal(pte(&s1, 0x1000), before);
	pgtable_fini(&s1);
	rig_fini(&r);
}

static void test_s2_httu(void **state)
{
	struct rig r;
	struct pgtable s2;

	rig_init(&r, NULL);
	assert_int_equal(pgtable_init(&s2, &r.mem, 2, 40, PGT_LEVEL_AUTO), 0);
	assert_int_equal(
	    pgtable_map(&s2, 0x1000, RIG_RAM_PA, 4096, PGT_R | PGT_W | PGT_DBM | PGT_NO_AF), 0);
	assert_int_equal(pgtable_map(&s2, 0x2000, RIG_RAM_PA, 4096, PGT_R | PGT_DBM), 0);
	put_ste(&r, 1,
		&(struct smmu_ste_desc){.config = STE_CFG_S2,
					.s2 = &s2,
					.vmid = 1,
					.s2_flags = SMMU_STE_S2HA | SMMU_STE_S2HD});
	assert_int_equal(pte(&s2, 0x1000) & (PTE_BIT_AF | PTE_BIT_S2AP_W | PTE_BIT_DBM),
			 PTE_BIT_DBM);
	assert_int_equal(rd(&r, &T1, 0x1000), SMMU_DMA_OK);
	assert_int_equal(pte(&s2, 0x1000) & (PTE_BIT_AF | PTE_BIT_S2AP_W), PTE_BIT_AF);
	assert_int_equal(wr(&r, &T1, 0x1000), SMMU_DMA_OK);
	assert_int_equal(pte(&s2, 0x1000) & PTE_BIT_S2AP_W, PTE_BIT_S2AP_W);
	/* DBM without W in the mapping is still read-only (no DBM bit was set for it) */
	assert_int_equal(wr(&r, &T1, 0x2000), SMMU_DMA_FAULT);
	/* S2HD=0: a writable-clean page faults on write */
	assert_int_equal(pgtable_map(&s2, 0x3000, RIG_RAM_PA, 4096, PGT_R | PGT_W | PGT_DBM), 0);
	struct smmu_dma_txn t2 = {.sid = 2};
	put_ste(&r, 2, &(struct smmu_ste_desc){.config = STE_CFG_S2, .s2 = &s2, .vmid = 2});
	assert_int_equal(wr(&r, &t2, 0x3000), SMMU_DMA_FAULT);
	pgtable_fini(&s2);
	rig_fini(&r);
}

/* Nested: an S1 dirty update is a stage-2 write to the S1 table page, which gets dirty. */
static void test_nested_httu(void **state)
{
	struct rig r;
	struct pgtable s1, s2;
	struct pgt_buf gbuf;
	uint64_t cd[8], cd_ipa, ste[8];

	rig_init(&r, NULL);
	assert_int_equal(pgtable_init(&s2, &r.mem, 2, 40, PGT_LEVEL_AUTO), 0);
	assert_int_equal(
	    pgtable_map(&s2, 0, RIG_RAM_PA, 64 << 20, PGT_R | PGT_W | PGT_DBM | PGT_PAGES), 0);
	pgt_buf_init(&gbuf, rig_ram(&r, RIG_RAM_PA + 0x100000), 0x100000, 1 << 20);
	struct pgt_mem gmem = pgt_buf_mem(&gbuf);
	assert_int_equal(pgt_buf_alloc(&gbuf, 64, 4096, &cd_ipa), 0);
	assert_int_equal(pgtable_init(&s1, &gmem, 1, 48, PGT_LEVEL_AUTO), 0);
	assert_int_equal(pgtable_map(&s1, 0xabc000, 0x2000000, 4096, PGT_R | PGT_W | PGT_DBM), 0);
	smmu_cd_build(cd, &s1, 3, SMMU_CD_R | SMMU_CD_HA | SMMU_CD_HD);
	memcpy(pgt_buf_ptr(&gbuf, cd_ipa), cd, 64);
	smmu_ste_build(
	    ste, &(struct smmu_ste_desc){.config = STE_CFG_NESTED,
					 .s2 = &s2,
					 .vmid = 4,
					 .s2_flags = SMMU_STE_S2HA | SMMU_STE_S2HD | SMMU_STE_S2R,
					 .cd_ptr = cd_ipa});
	rig_set_ste(&r, 1, ste);
	uint64_t *leaf = pgtable_leaf(&s1, 0xabc000, NULL);
	uint64_t leaf_ipa = 0x100000 + (uint64_t)((uint8_t *)leaf - gbuf.base);
	assert_int_equal(pte(&s2, leaf_ipa) & PTE_BIT_S2AP_W, 0);
	assert_int_equal(wr(&r, &T1, 0xabc008), SMMU_DMA_OK);
	assert_int_equal(*leaf & PTE_BIT_AP2, 0);				/* S1 dirty */
	assert_int_equal(pte(&s2, 0x2000000) & PTE_BIT_S2AP_W, PTE_BIT_S2AP_W); /* data */
	assert_int_equal(pte(&s2, leaf_ipa & ~0xfffull) & PTE_BIT_S2AP_W, PTE_BIT_S2AP_W);
	pgtable_fini(&s2);
	rig_fini(&r);
}

/* Nested HTTU needs stage-2 write access to the S1 table page: a read-only one faults with
 * S2=1, CLASS=TT, TTRnW=0 (the descriptor write). */
static void test_nested_httu_table_readonly_at_s2(void **state)
{
	struct rig r;
	struct pgtable s1, s2;
	struct pgt_buf gbuf;
	uint64_t cd[8], cd_ipa, ste[8];
	struct smmu_event ev;

	rig_init(&r, NULL);
	assert_int_equal(pgtable_init(&s2, &r.mem, 2, 40, PGT_LEVEL_AUTO), 0);
	assert_int_equal(pgtable_map(&s2, 0, RIG_RAM_PA, 0x100000, PGT_R | PGT_W | PGT_PAGES), 0);
	assert_int_equal(
	    pgtable_map(&s2, 0x100000, RIG_RAM_PA + 0x100000, 0x100000, PGT_R | PGT_PAGES),
	    0); /* the guest's tables: read-only at stage 2 */
	pgt_buf_init(&gbuf, rig_ram(&r, RIG_RAM_PA + 0x100000), 0x100000, 1 << 20);
	struct pgt_mem gmem = pgt_buf_mem(&gbuf);
	assert_int_equal(pgt_buf_alloc(&gbuf, 64, 4096, &cd_ipa), 0);
	assert_int_equal(pgtable_init(&s1, &gmem, 1, 48, PGT_LEVEL_AUTO), 0);
	assert_int_equal(pgtable_map(&s1, 0x5000, 0x8000, 4096, PGT_R | PGT_W | PGT_NO_AF), 0);
	smmu_cd_build(cd, &s1, 3, SMMU_CD_R | SMMU_CD_HA);
	memcpy(pgt_buf_ptr(&gbuf, cd_ipa), cd, 64);
	smmu_ste_build(ste, &(struct smmu_ste_desc){.config = STE_CFG_NESTED,
						    .s2 = &s2,
						    .vmid = 4,
						    .s2_flags = SMMU_STE_S2R,
						    .cd_ptr = cd_ipa});
	rig_set_ste(&r, 1, ste);
	assert_int_equal(rd(&r, &T1, 0x5000), SMMU_DMA_FAULT);
	assert_int_equal(rig_events(&r, &ev), 1);
	assert_int_equal(smmu_event_id(&ev), EVT_F_PERMISSION);
	assert_int_equal(FGET(ev.dw[1], EVT1_S2), 1);
	assert_int_equal(FGET(ev.dw[1], EVT1_CLASS), EVT_CLASS_TT);
	assert_int_equal(FGET(ev.dw[1], EVT1_TTRNW), 0);
	uint64_t *leaf = pgtable_leaf(&s1, 0x5000, NULL);
	uint64_t leaf_ipa = 0x100000 + (uint64_t)((uint8_t *)leaf - gbuf.base);
	assert_int_equal(ev.dw[3], leaf_ipa & ~0xfffull);
	assert_int_equal(*leaf & PTE_BIT_AF, 0); /* not updated */
	pgtable_fini(&s2);
	rig_fini(&r);
}

struct collect {
	uint64_t addr[64];
	uint64_t size[64];
	unsigned n;
};

static void collect_fn(void *opaque, uint64_t iova, uint64_t size)
{
	struct collect *c = opaque;
	assert_true(c->n < 64);
	c->addr[c->n] = iova;
	c->size[c->n++] = size;
}

static void check_harvest(struct pgtable *pt, unsigned flags, const uint64_t *want,
			  const uint64_t *wsize, unsigned n)
{
	struct collect c = {0};
	assert_int_equal(pgtable_harvest(pt, 0, 1ull << pt->ia_bits, flags, collect_fn, &c), n);
	assert_int_equal(c.n, n);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(c.addr[i], want[i]);
		assert_int_equal(c.size[i], wsize[i]);
	}
}

/* Harvest, then invalidate as a driver must (cached write permission goes). */
static void harvest_and_flush(struct rig *r, struct pgtable *pt, uint16_t vmid,
			      const uint64_t *want, const uint64_t *wsize, unsigned n)
{
	check_harvest(pt, 0, want, wsize, n);
	rig_cmd(r, pt->stage == 2 ? smmu_cmd_tlbi_s12_vmall(vmid) : smmu_cmd_tlbi_nh_all(0));
	rig_cmd(r, smmu_cmd_sync());
}

static void test_harvest_s2_exact(void **state)
{
	struct rig r;
	struct pgtable s2;
	const unsigned prot = PGT_R | PGT_W | PGT_DBM;

	rig_init(&r, NULL);
	assert_int_equal(pgtable_init(&s2, &r.mem, 2, 40, PGT_LEVEL_AUTO), 0);
	assert_int_equal(pgtable_map(&s2, 0, RIG_RAM_PA, 32 << 20, prot | PGT_PAGES), 0);
	assert_int_equal(pgtable_map(&s2, 64 << 20, RIG_RAM_PA + (64 << 20), 4 << 20, prot), 0);
	put_ste(&r, 1,
		&(struct smmu_ste_desc){.config = STE_CFG_S2,
					.s2 = &s2,
					.vmid = 9,
					.s2_flags = SMMU_STE_S2HA | SMMU_STE_S2HD});
	check_harvest(&s2, 0, NULL, NULL, 0); /* mapped clean */
	static const uint64_t gpa[] = {0x5000, 0x1234000, 0x1ff0000, (64 << 20) + (2 << 20)};
	static const uint64_t sz[] = {4096, 4096, 4096, 2 << 20};
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(wr(&r, &T1, gpa[i] + 0x10), SMMU_DMA_OK);
		assert_int_equal(rd(&r, &T1, gpa[i] + 0x2000), SMMU_DMA_OK); /* reads don't count */
	}
	assert_int_equal(wr(&r, &T1, gpa[0] + 8), SMMU_DMA_OK); /* twice: still one */
	/* NO_CLEAR keeps them, twice over */
	check_harvest(&s2, PGT_HARVEST_NO_CLEAR, gpa, sz, 4);
	check_harvest(&s2, PGT_HARVEST_NO_CLEAR, gpa, sz, 4);
	harvest_and_flush(&r, &s2, 9, gpa, sz, 4);
	check_harvest(&s2, 0, NULL, NULL, 0); /* second harvest: empty */
	/* written again through (flushed) cached translations: dirty again */
	assert_int_equal(wr(&r, &T1, gpa[1]), SMMU_DMA_OK);
	harvest_and_flush(&r, &s2, 9, &gpa[1], &sz[1], 1);
	pgtable_fini(&s2);
	rig_fini(&r);
}

static void test_harvest_s1_exact(void **state)
{
	struct rig r;
	struct pgtable s1;
	const unsigned prot = PGT_R | PGT_W | PGT_DBM;

	rig_init(&r, NULL);
	assert_int_equal(pgtable_init(&s1, &r.mem, 1, 48, PGT_LEVEL_AUTO), 0);
	assert_int_equal(pgtable_map(&s1, 0x7f0000000000ull, RIG_RAM_PA, 8 << 20, prot | PGT_PAGES),
			 0);
	uint64_t cd[8];
	smmu_cd_build(cd, &s1, 0, SMMU_CD_HA | SMMU_CD_HD);
	put_ste(&r, 1, &(struct smmu_ste_desc){.config = STE_CFG_S1, .cd_ptr = rig_put_cd(&r, cd)});
	static const uint64_t iova[] = {0x7f0000001000ull, 0x7f0000400000ull, 0x7f00007ff000ull};
	static const uint64_t sz[] = {4096, 4096, 4096};
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(wr(&r, &T1, iova[i] + 0x100), SMMU_DMA_OK);
	check_harvest(&s1, PGT_HARVEST_NO_CLEAR, iova, sz, 3);
	harvest_and_flush(&r, &s1, 0, iova, sz, 3);
	check_harvest(&s1, 0, NULL, NULL, 0);
	assert_int_equal(wr(&r, &T1, iova[2]), SMMU_DMA_OK);
	harvest_and_flush(&r, &s1, 0, &iova[2], &sz[2], 1);
	pgtable_fini(&s1);
	rig_fini(&r);
}

/* Shows why the flush matters: the IOTLB does cache write permission for dirty pages. */
static void test_tlb_caches_dirty_write(void **state)
{
	struct rig r;
	struct pgtable s2;
	struct smmu_stats st0, st1;

	rig_init(&r, NULL);
	assert_int_equal(pgtable_init(&s2, &r.mem, 2, 40, PGT_LEVEL_AUTO), 0);
	assert_int_equal(pgtable_map(&s2, 0, RIG_RAM_PA, 1 << 20, PGT_R | PGT_W | PGT_DBM), 0);
	put_ste(&r, 1,
		&(struct smmu_ste_desc){
		    .config = STE_CFG_S2, .s2 = &s2, .vmid = 9, .s2_flags = SMMU_STE_S2HD});
	/* a read fills the IOTLB without write permission: the write after it re-walks */
	assert_int_equal(rd(&r, &T1, 0x3000), SMMU_DMA_OK);
	smmu_get_stats(r.smmu, &st0);
	assert_int_equal(wr(&r, &T1, 0x3000), SMMU_DMA_OK);
	smmu_get_stats(r.smmu, &st1);
	assert_int_equal(st1.tlb_misses, st0.tlb_misses + 1);
	/* now writable-dirty is cached: further writes hit */
	assert_int_equal(wr(&r, &T1, 0x3008), SMMU_DMA_OK);
	smmu_get_stats(r.smmu, &st0);
	assert_int_equal(st0.tlb_misses, st1.tlb_misses);
	/* harvesting without the flush leaves that permission cached (the driver's bug) */
	uint64_t one[] = {0x3000}, sz[] = {4096};
	check_harvest(&s2, 0, one, sz, 1);
	assert_int_equal(wr(&r, &T1, 0x3010), SMMU_DMA_OK);
	check_harvest(&s2, 0, NULL, NULL, 0);
	/* with the flush, the next write dirties the page again */
	rig_cmd(&r, smmu_cmd_tlbi_s2_ipa(9, 0x3000, 1));
	rig_cmd(&r, smmu_cmd_sync());
	assert_int_equal(wr(&r, &T1, 0x3010), SMMU_DMA_OK);
	check_harvest(&s2, 0, one, sz, 1);
	pgtable_fini(&s2);
	rig_fini(&r);
}

/* IDR0.HTTU gates CD.HA/HD; STALL_MODEL gates CD.S. */
static void test_httu_gated_by_idr(void **state)
{
	struct rig r;
	struct smmu_params p;
	struct pgtable s1;
	uint32_t idr[8];

	smmu_params_default(&p);
	p.httu = 1;
	p.no_stall = true;
	rig_init(&r, &p);
	smmu_read_idr(r.smmu, idr);
	assert_int_equal(FGET(idr[0], IDR0_HTTU), 1);
	assert_int_equal(FGET(idr[0], IDR0_STALL_MODEL), 1);
	assert_int_equal(pgtable_init(&s1, &r.mem, 1, 48, PGT_LEVEL_AUTO), 0);
	assert_int_equal(
	    pgtable_map(&s1, 0x1000, RIG_RAM_PA, 4096, PGT_R | PGT_W | PGT_DBM | PGT_NO_AF), 0);
	s1_stream(&r, 1, &s1, SMMU_CD_HA | SMMU_CD_HD);
	assert_int_equal(rd(&r, &T1, 0x1000), SMMU_DMA_OK); /* AF by hardware */
	assert_true(pte(&s1, 0x1000) & PTE_BIT_AF);
	assert_int_equal(wr(&r, &T1, 0x1000), SMMU_DMA_FAULT); /* no dirty-state support */
	struct smmu_dma_txn t2 = {.sid = 2};
	s1_stream(&r, 2, &s1, SMMU_CD_S);
	struct smmu_xlate x;
	smmu_translate(r.smmu, &t2, 0x1000, false, &x);
	assert_int_equal(x.event_id, EVT_C_BAD_CD);
	pgtable_fini(&s1);
	rig_fini(&r);
}

/* A harvest of part of a leaf table must not lose the table's hint for the rest. */
static void test_harvest_partial_range_keeps_hint(void **state)
{
	struct rig r;
	struct pgtable s2;
	struct collect c = {0};

	rig_init(&r, NULL);
	assert_int_equal(pgtable_init(&s2, &r.mem, 2, 40, PGT_LEVEL_AUTO), 0);
	assert_int_equal(
	    pgtable_map(&s2, 0, RIG_RAM_PA, 2 << 20, PGT_R | PGT_W | PGT_DBM | PGT_PAGES), 0);
	put_ste(&r, 1,
		&(struct smmu_ste_desc){
		    .config = STE_CFG_S2, .s2 = &s2, .vmid = 3, .s2_flags = SMMU_STE_S2HD});
	pgtable_clean_all(&s2, 0, 1ull << 40); /* consume the allocation hints */
	assert_int_equal(wr(&r, &T1, 0x1000), SMMU_DMA_OK);
	assert_int_equal(wr(&r, &T1, 0x100000), SMMU_DMA_OK);
	assert_int_equal(pgtable_harvest(&s2, 0, 0x10000, 0, collect_fn, &c), 1);
	assert_int_equal(c.addr[0], 0x1000);
	c.n = 0;
	assert_int_equal(pgtable_harvest(&s2, 0, 1ull << 40, 0, collect_fn, &c), 1);
	assert_int_equal(c.addr[0], 0x100000);
	assert_int_equal(pgtable_harvest(&s2, 0, 1ull << 40, 0, collect_fn, &c), 0);
	pgtable_fini(&s2);
	rig_fini(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_s1_httu),
	    cmocka_unit_test(test_probe_changes_nothing),
	    cmocka_unit_test(test_s2_httu),
	    cmocka_unit_test(test_nested_httu),
	    cmocka_unit_test(test_harvest_s2_exact),
	    cmocka_unit_test(test_harvest_s1_exact),
	    cmocka_unit_test(test_tlb_caches_dirty_write),
	    cmocka_unit_test(test_harvest_partial_range_keeps_hint),
	    cmocka_unit_test(test_httu_gated_by_idr),
	    cmocka_unit_test(test_nested_httu_table_readonly_at_s2),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
