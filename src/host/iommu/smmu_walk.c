// SPDX-License-Identifier: Apache-2.0
/*
 * VMSAv8-64 4 KiB-granule table walks for stage 1 and stage 2, with hardware access-flag
 * and dirty-state updates (HTTU) done by compare-and-swap on the descriptor, so that
 * concurrent walkers and a concurrent dirty harvester never lose an update.
 */
#include <errno.h>

#include "common/trace.h"
#include "host/iommu/smmu_internal.h"

static inline unsigned level_shift(unsigned level)
{
	return SMMU_GRANULE_SHIFT + 9 * (3 - level);
}

static int walk_fault(struct smmu_fault *f, uint8_t id, bool s2, uint8_t cls, uint64_t ipa)
{
	f->id = id;
	f->s2 = s2;
	f->cls = cls;
	f->ipa = ipa;
	return -EFAULT;
}

/* Where a walker finds a descriptor: its PA and host pointer. */
struct desc_ref {
	uint64_t ipa; /* for stage-1 tables of a nested walk: the descriptor's IPA */
	uint64_t pa;
	uint64_t *p;
};

/*
 * Locates the descriptor at table address tbl (a PA, or an IPA when s2 is given: nested
 * stage-1 tables). A stage-2 failure here is reported with CLASS=TT and the table's IPA.
 */
static int walk_desc_locate(struct smmu *smmu, const struct smmu_stage *s2, uint64_t addr,
			    bool write, struct desc_ref *d, struct smmu_fault *f)
{
	d->ipa = addr;
	d->pa = addr;
	if (s2) {
		struct walk_out o;
		if (smmu_walk_s2(smmu, s2, addr, write, &o, f)) {
			f->cls = EVT_CLASS_TT;
			f->ttrnw = !write;
			f->ipa = addr;
			TRACE(smmu_walk_s2_tt_fault, "ipa=%#llx id=%#x", (unsigned long long)addr,
			      f->id);
			return -EFAULT;
		}
		d->pa = o.oa;
	}
	d->p = hostmem_ptr(smmu->hm, d->pa & ~7ull, 8);
	if (!d->p)
		return walk_fault(f, EVT_F_WALK_EABT, false, EVT_CLASS_TT, d->ipa);
	return 0;
}

static inline uint64_t desc_load(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* Leaf checks and updates for one stage: new descriptor value, or a fault id. */
static uint8_t leaf_eval_s1(const struct smmu_stage *st, uint64_t d, bool write, uint64_t *nd)
{
	*nd = d;
	if (!(d & PTE_BIT_AF)) {
		if (st->ha)
			*nd |= PTE_BIT_AF;
		else if (!st->affd)
			return EVT_F_ACCESS;
	}
	if (write && (d & PTE_BIT_AP2)) {
		if (!(st->hd && (d & PTE_BIT_DBM)))
			return EVT_F_PERMISSION;
		*nd &= ~PTE_BIT_AP2; /* writable-clean -> writable-dirty */
	}
	return 0;
}

static uint8_t leaf_eval_s2(const struct smmu_stage *st, uint64_t d, bool write, uint64_t *nd)
{
	*nd = d;
	if (!(d & PTE_BIT_AF)) {
		if (st->ha)
			*nd |= PTE_BIT_AF;
		else if (!st->affd)
			return EVT_F_ACCESS;
	}
	if (write && !(d & PTE_BIT_S2AP_W)) {
		if (!(st->hd && (d & PTE_BIT_DBM)))
			return EVT_F_PERMISSION;
		*nd |= PTE_BIT_S2AP_W; /* writable-clean -> dirty */
	}
	if (!write && !(d & PTE_BIT_S2AP_R))
		return EVT_F_PERMISSION;
	return 0;
}

/*
 * A probe (smmu_probe) walks this thread's tables as a DMA would but changes nothing: no
 * hardware access/dirty update, the leaf taken as the update would leave it.
 */
static __thread bool walk_probe;

void smmu_walk_set_probe(bool on)
{
	walk_probe = on;
}

bool smmu_walk_probing(void)
{
	return walk_probe;
}

struct walk_ctx {
	struct smmu *smmu;
	const struct smmu_stage *st;
	const struct smmu_stage *s2; /* non-NULL: stage-1 tables are IPAs (nested) */
	bool stage2;
	uint64_t ia;
	bool write;
	bool table_ro; /* stage 1: an APTable[1] on the way down forbids writes */
};

static bool walk_made_dirty(const struct walk_ctx *c, uint64_t d, uint64_t nd)
{
	if (c->stage2)
		return !(d & PTE_BIT_S2AP_W) && (nd & PTE_BIT_S2AP_W);
	return (d & PTE_BIT_AP2) && !(nd & PTE_BIT_AP2);
}

/*
 * Applies the leaf rules, committing an HTTU update with CAS. For a nested stage-1 leaf the
 * update is a stage-2 write to the table page (which makes that page dirty at stage 2).
 */
static int walk_leaf(struct walk_ctx *c, struct desc_ref *dr, uint64_t d, unsigned level,
		     struct walk_out *out, struct smmu_fault *f)
{
	bool made_writable_ref = false;

	for (;;) {
		uint64_t nd;
		uint8_t id = c->stage2 ? leaf_eval_s2(c->st, d, c->write, &nd)
				       : leaf_eval_s1(c->st, d, c->write && !c->table_ro, &nd);
		if (!id && c->write && c->table_ro)
			id = EVT_F_PERMISSION;
		if (id)
			return walk_fault(f, id, c->stage2, EVT_CLASS_IN, 0);
		if (walk_probe)
			d = nd;
		if (nd != d && c->s2 && !made_writable_ref) {
			if (walk_desc_locate(c->smmu, c->s2, dr->ipa, true, dr, f))
				return -EFAULT;
			made_writable_ref = true;
		}
		if (nd == d || __atomic_compare_exchange_n(dr->p, &d, nd, false, __ATOMIC_SEQ_CST,
							   __ATOMIC_ACQUIRE)) {
			if (walk_made_dirty(c, d, nd))
				hostmem_dirty_hint_set(c->smmu->hm, dr->pa);
			unsigned sh = level_shift(level);
			uint64_t base = nd & PTE_OA_MASK & ~((1ull << sh) - 1);
			out->oa = base | (c->ia & ((1ull << sh) - 1));
			out->log2sz = (uint8_t)sh;
			out->r = c->stage2 ? (nd & PTE_BIT_S2AP_R) != 0 : true;
			out->w = c->stage2 ? (nd & PTE_BIT_S2AP_W) != 0
					   : !(nd & PTE_BIT_AP2) && !c->table_ro;
			return 0;
		}
		/* Lost a race (harvester, another walker): re-evaluate the fresh value. */
		if ((d & 1) == 0)
			return walk_fault(f, EVT_F_TRANSLATION, c->stage2, EVT_CLASS_IN, 0);
	}
}

static int walk_tables(struct walk_ctx *c, struct walk_out *out, struct smmu_fault *f)
{
	const struct smmu_stage *st = c->st;
	uint64_t tbl = st->ttb;
	unsigned level = st->start_level;

	if (!st->ia_bits || c->ia >> st->ia_bits) /* ia_bits 0: EPD0 */
		return walk_fault(f, EVT_F_TRANSLATION, c->stage2, EVT_CLASS_IN, 0);
	if (tbl >> st->oa_bits)
		return walk_fault(f, EVT_F_ADDR_SIZE, c->stage2, EVT_CLASS_IN, 0);
	for (;;) {
		unsigned sh = level_shift(level);
		unsigned nbits = level == st->start_level ? st->ia_bits - sh : 9;
		uint64_t idx = (c->ia >> sh) & ((1ull << nbits) - 1);
		struct desc_ref dr;

		if (walk_desc_locate(c->smmu, c->s2, tbl + idx * 8, false, &dr, f))
			return -EFAULT;
		uint64_t d = desc_load(dr.p);
		unsigned type = (unsigned)FGET(d, PTE_TYPE);
		if (!(type & 1) || (level == 3 && type != PTE_TYPE_TABLE) ||
		    (type == PTE_TYPE_BLOCK && level == 0))
			return walk_fault(f, EVT_F_TRANSLATION, c->stage2, EVT_CLASS_IN, 0);
		if ((d & PTE_OA_MASK) >> st->oa_bits)
			return walk_fault(f, EVT_F_ADDR_SIZE, c->stage2, EVT_CLASS_IN, 0);
		if (level == 3 || type == PTE_TYPE_BLOCK)
			return walk_leaf(c, &dr, d, level, out, f);
		if (!c->stage2 && (FGET(d, PTE_APTABLE) & 2))
			c->table_ro = true;
		tbl = d & PTE_OA_MASK;
		level++;
	}
}

int smmu_walk_s2(struct smmu *smmu, const struct smmu_stage *s2, uint64_t ipa, bool write,
		 struct walk_out *out, struct smmu_fault *f)
{
	struct walk_ctx c = {.smmu = smmu, .st = s2, .stage2 = true, .ia = ipa, .write = write};

	f->s2 = true;
	f->ipa = ipa;
	f->stall_ok = s2->stall;
	f->record = s2->record;
	if (walk_tables(&c, out, f)) {
		f->s2 = true;
		f->ipa = ipa;
		f->stall_ok = s2->stall;
		f->record = s2->record;
		return -EFAULT;
	}
	return 0;
}

int smmu_walk_s1(struct smmu *smmu, const struct smmu_stage *s1, const struct smmu_stage *s2,
		 uint64_t va, bool write, struct walk_out *out, struct smmu_fault *f)
{
	struct walk_ctx c = {.smmu = smmu, .st = s1, .s2 = s2, .ia = va, .write = write};

	if (walk_tables(&c, out, f)) {
		if (!f->s2) {
			f->stall_ok = s1->stall;
			f->record = s1->record;
			f->cls = EVT_CLASS_IN;
		}
		return -EFAULT;
	}
	return 0;
}

int smmu_walk_s2_fetch(struct smmu *smmu, const struct smmu_stage *s2, uint64_t ipa, uint64_t *pa,
		       struct smmu_fault *f)
{
	struct walk_out o;

	if (smmu_walk_s2(smmu, s2, ipa, false, &o, f)) {
		f->cls = EVT_CLASS_CD;
		return -EFAULT;
	}
	*pa = o.oa;
	return 0;
}
