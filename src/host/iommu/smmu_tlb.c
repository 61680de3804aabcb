// SPDX-License-Identifier: Apache-2.0
/*
 * IOTLB of combined translations, keyed by (kind, VMID, ASID, input page). Direct-mapped;
 * each entry is a seqlock so lookups take no lock. Entries are 4 KiB fragments that
 * remember the size of the mapping they came from, so an invalidation of any address in a
 * block removes every fragment of it.
 *
 * Write permission is cached only when a write needs no HTTU update (the descriptors were
 * already writable-dirty): a write through an entry without it re-walks, which is how a
 * write after a dirty harvest (which cleans descriptors and invalidates) dirties the page
 * again. Invalidations bump a generation; a walk that started before one does not fill.
 */
#include <errno.h>
#include <stdlib.h>

#include "common/bitmap.h"
#include "common/trace.h"
#include "host/iommu/smmu_internal.h"

int smmu_tlb_init(struct smmu_tlb *t, unsigned entries)
{
	t->e = aligned_alloc(64, entries * sizeof(*t->e));
	t->used = bitmap_alloc(entries);
	if (!t->e || !t->used) {
		smmu_tlb_fini(t);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < entries; i++)
		t->e[i] = (struct tlb_entry){0};
	t->mask = entries - 1;
	t->gen = 0;
	return 0;
}

void smmu_tlb_fini(struct smmu_tlb *t)
{
	free(t->e);
	free(t->used);
	t->e = NULL;
	t->used = NULL;
}

static inline uint64_t tlb_index(const struct smmu_tlb *t, uint64_t tag, uint64_t vpn)
{
	uint64_t h = vpn ^ ((tag & 0xffffffffull) * 0x9e3779b97f4a7c15ull >> 40);
	return (h ^ (h >> 14)) & t->mask;
}

bool smmu_tlb_lookup(struct smmu_tlb *t, uint64_t tag, uint64_t vpn, unsigned need,
		     struct tlb_fill *out)
{
	const struct tlb_entry *e = &t->e[tlb_index(t, tag, vpn)];
	uint32_t seq = __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE);

	if (seq & 1)
		return false;
	uint64_t etag = e->tag, evpn = e->vpn;
	uint8_t perm = e->perm;
	out->pa = e->pa;
	out->hva = e->hva;
	out->ipa = e->ipa;
	out->log2sz = e->log2sz;
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	if (__atomic_load_n(&e->seq, __ATOMIC_RELAXED) != seq)
		return false;
	out->perm = perm;
	out->vpn = evpn;
	return etag == tag && evpn == vpn && (perm & need) == need;
}

static void tlb_entry_lock(struct tlb_entry *e)
{
	uint32_t seq = __atomic_load_n(&e->seq, __ATOMIC_RELAXED);
	for (;;) {
		if (seq & 1) {
			seq = __atomic_load_n(&e->seq, __ATOMIC_RELAXED);
			continue;
		}
		if (__atomic_compare_exchange_n(&e->seq, &seq, seq + 1, false, __ATOMIC_SEQ_CST,
						__ATOMIC_RELAXED))
			return;
	}
}

static void tlb_entry_unlock(struct tlb_entry *e)
{
	__atomic_fetch_add(&e->seq, 1, __ATOMIC_RELEASE);
}

void smmu_tlb_insert(struct smmu_tlb *t, uint64_t tag, uint64_t gen, const struct tlb_fill *f)
{
	uint64_t idx = tlb_index(t, tag, f->vpn);
	struct tlb_entry *e = &t->e[idx];
	uint64_t bit = 1ull << (idx % 64);

	tlb_entry_lock(e);
	/*
	 * Mark the entry used, then check the generation: against the invalidator's
	 * bump-generation-then-read-marks, either we see its bump (and do not fill) or it
	 * sees our mark (and looks at this entry, waiting for our lock).
	 */
	if (!(__atomic_load_n(&t->used[idx / 64], __ATOMIC_RELAXED) & bit))
		__atomic_fetch_or(&t->used[idx / 64], bit, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&t->gen, __ATOMIC_SEQ_CST) == gen) {
		e->tag = tag;
		e->vpn = f->vpn;
		e->pa = f->pa;
		e->hva = f->hva;
		e->ipa = f->ipa;
		e->perm = f->perm;
		e->log2sz = f->log2sz;
	}
	tlb_entry_unlock(e);
}

static bool range_hit(uint64_t base, unsigned log2sz, uint64_t addr, uint64_t len)
{
	uint64_t lo = base & ~((1ull << log2sz) - 1), hi = lo + (1ull << log2sz);
	return addr < hi && lo < addr + len;
}

/* Does entry (read while it was stable) match the selector? */
static bool tlb_match(const struct tlb_entry *e, const struct tlb_inval *sel)
{
	uint8_t kind = (uint8_t)(e->tag >> 32);
	uint16_t vmid = (uint16_t)(e->tag >> 16), asid = (uint16_t)e->tag;

	if (!e->tag)
		return false;
	if (sel->s1_only && kind == KIND_S2)
		return false;
	if (sel->s2_only && kind == KIND_S1)
		return false;
	if (sel->by_vmid && vmid != sel->vmid)
		return false;
	if (sel->by_asid && (kind == KIND_S2 || asid != sel->asid))
		return false;
	if (sel->by_va && !range_hit(e->vpn << SMMU_PAGE_SHIFT, e->log2sz, sel->addr, sel->len))
		return false;
	if (sel->by_ipa && !range_hit(e->ipa, e->log2sz, sel->addr, sel->len))
		return false;
	return true;
}

static bool tlb_match_any(const struct tlb_entry *e, const struct tlb_inval *sel, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (tlb_match(e, &sel[i]))
			return true;
	return false;
}

/* Unlocked check: true when the entry is stable, valid and matches no selector. */
static bool tlb_peek_skip(const struct tlb_entry *e, const struct tlb_inval *sel, unsigned n)
{
	uint32_t seq = __atomic_load_n(&e->seq, __ATOMIC_SEQ_CST);

	/* Odd: being written. Empty: take the lock path, which also drops its mark. */
	if ((seq & 1) || !__atomic_load_n(&e->tag, __ATOMIC_RELAXED))
		return false;
	struct tlb_entry copy = *e;
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return __atomic_load_n(&e->seq, __ATOMIC_RELAXED) == seq && !tlb_match_any(&copy, sel, n);
}

/* One marked entry: drop it if it matches; forget the mark if it holds nothing. */
static void tlb_invalidate_one(struct smmu_tlb *t, uint64_t i, const struct tlb_inval *sel,
			       unsigned n)
{
	struct tlb_entry *e = &t->e[i];

	if (tlb_peek_skip(e, sel, n))
		return;
	tlb_entry_lock(e);
	if (tlb_match_any(e, sel, n))
		e->tag = 0;
	if (!e->tag)
		__atomic_fetch_and(&t->used[i / 64], ~(1ull << (i % 64)), __ATOMIC_SEQ_CST);
	tlb_entry_unlock(e);
}

void smmu_tlb_invalidate(struct smmu_tlb *t, const struct tlb_inval *sel, unsigned n)
{
	/* An entry being filled now either saw the new generation or is marked used. */
	__atomic_fetch_add(&t->gen, 1, __ATOMIC_SEQ_CST);
	for (uint64_t w = 0; w <= t->mask / 64; w++) {
		uint64_t bits = __atomic_load_n(&t->used[w], __ATOMIC_SEQ_CST);
		while (bits) {
			unsigned b = (unsigned)__builtin_ctzll(bits);
			bits &= bits - 1;
			tlb_invalidate_one(t, w * 64 + b, sel, n);
		}
	}
}
