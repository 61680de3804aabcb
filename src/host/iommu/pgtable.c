// SPDX-License-Identifier: Apache-2.0
/* Building, tearing down and harvesting VMSAv8-64 4 KiB-granule tables (either stage). */
#include "host/iommu/pgtable.h"

#include <errno.h>
#include <stdlib.h>

#include "host/iommu/hostmem.h"
#include "arch/smmuv3.h"
#include "common/util.h"

#define PGT_SHIFT 12
#define PGT_PAGE  (1ull << PGT_SHIFT)

/* ---- memory from the host page pool ---- */

static int pgt_hm_alloc(void *opaque, unsigned npages, uint64_t *pa)
{
	return hostmem_pages_alloc(opaque, npages, pa);
}

static void pgt_hm_free(void *opaque, uint64_t pa, unsigned npages)
{
	hostmem_pages_free(opaque, pa, npages);
}

static void *pgt_hm_ptr(void *opaque, uint64_t pa)
{
	return hostmem_ptr(opaque, pa, PGT_PAGE);
}

static bool pgt_hm_dirty_hint(void *opaque, uint64_t pa, int op)
{
	if (op == PGT_HINT_SET) {
		hostmem_dirty_hint_set(opaque, pa);
		return true;
	}
	return op == PGT_HINT_TAKE ? hostmem_dirty_hint_take(opaque, pa)
				   : hostmem_dirty_hint_test(opaque, pa);
}

struct pgt_mem pgt_mem_hostmem(struct hostmem *hm)
{
	return (struct pgt_mem){.alloc = pgt_hm_alloc,
				.free = pgt_hm_free,
				.ptr = pgt_hm_ptr,
				.dirty_hint = pgt_hm_dirty_hint,
				.opaque = hm};
}

/* ---- geometry ---- */

static inline unsigned lvl_shift(unsigned level)
{
	return PGT_SHIFT + 9 * (3 - level);
}

/* Index bits resolved at 'level' (more at the start level with concatenation). */
static inline unsigned lvl_bits(const struct pgtable *pt, unsigned level)
{
	return level == pt->start_level ? pt->ia_bits - lvl_shift(level) : 9;
}

static inline uint64_t *tbl_ptr(const struct pgtable *pt, uint64_t pa)
{
	return pt->mem.ptr(pt->mem.opaque, pa);
}

static inline uint64_t *entry_ptr(const struct pgtable *pt, uint64_t tbl, unsigned level,
				  uint64_t iova)
{
	uint64_t idx = (iova >> lvl_shift(level)) & ((1ull << lvl_bits(pt, level)) - 1);
	return tbl_ptr(pt, tbl) + idx;
}

static inline uint64_t d_load(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void d_store(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static bool d_is_table(uint64_t d, unsigned level)
{
	return level < 3 && (d & 3) == PTE_TYPE_TABLE;
}

static int pgt_pick_s2_level(unsigned ia_bits)
{
	for (int l = 2; l >= 0; l--) {
		int nbits = (int)ia_bits - (int)lvl_shift((unsigned)l);
		if (nbits >= 1 && nbits <= 13)
			return l;
	}
	return -1;
}

static int pgt_geometry(struct pgtable *pt, int stage, unsigned ia_bits, int start_level)
{
	if (stage == 1) {
		if (ia_bits < 25 || ia_bits > 48)
			return -EINVAL;
		pt->start_level = 4 - (ia_bits - 4) / 9;
		return 0;
	}
	if (stage != 2 || ia_bits < 24 || ia_bits > 48)
		return -EINVAL;
	if (start_level == PGT_LEVEL_AUTO)
		start_level = pgt_pick_s2_level(ia_bits);
	if (start_level < 0 || start_level > 2)
		return -EINVAL;
	int nbits = (int)ia_bits - (int)lvl_shift((unsigned)start_level);
	if (nbits < 1 || nbits > 13)
		return -EINVAL;
	pt->start_level = (unsigned)start_level;
	return 0;
}

int pgtable_init(struct pgtable *pt, const struct pgt_mem *mem, int stage, unsigned ia_bits,
		 int start_level)
{
	*pt = (struct pgtable){.mem = *mem, .stage = stage, .ia_bits = ia_bits};
	if (pgt_geometry(pt, stage, ia_bits, start_level))
		return -EINVAL;
	unsigned nbits = lvl_bits(pt, pt->start_level);
	unsigned pages = nbits > 9 ? 1u << (nbits - 9) : 1;
	int rc = mem->alloc(mem->opaque, pages, &pt->root);
	if (rc)
		return rc;
	/* Only now: fini frees the root whenever root_pages says there is one. */
	pt->root_pages = pages;
	pt->tables = pt->root_pages;
	return 0;
}

static void pgt_free_level(struct pgtable *pt, uint64_t tbl, unsigned level, unsigned n)
{
	uint64_t *t = tbl_ptr(pt, tbl);

	for (unsigned i = 0; i < n; i++) {
		uint64_t d = d_load(&t[i]);
		if (d_is_table(d, level)) {
			pgt_free_level(pt, d & PTE_OA_MASK, level + 1, 512);
			pt->mem.free(pt->mem.opaque, d & PTE_OA_MASK, 1);
			pt->tables--;
		}
	}
}

void pgtable_fini(struct pgtable *pt)
{
	pgtable_reclaim(pt);
	free(pt->retired);
	pt->retired = NULL;
	pt->cap_retired = 0;
	if (!pt->root_pages)
		return;
	pgt_free_level(pt, pt->root, pt->start_level, 1u << lvl_bits(pt, pt->start_level));
	pt->mem.free(pt->mem.opaque, pt->root, pt->root_pages);
	pt->root_pages = 0;
	pt->tables = 0;
}

/* ---- map ---- */

static uint64_t pgt_leaf_bits(const struct pgtable *pt, unsigned prot, unsigned level)
{
	uint64_t d = level == 3 ? PTE_TYPE_TABLE : PTE_TYPE_BLOCK;
	bool w = prot & PGT_W, clean = (prot & PGT_DBM) && !(prot & PGT_DIRTY);

	d |= FVAL(PTE_SH, 3);
	if (!(prot & PGT_NO_AF))
		d |= PTE_BIT_AF;
	if (w && (prot & PGT_DBM))
		d |= PTE_BIT_DBM;
	if (pt->stage == 1) {
		d |= FVAL(PTE_AP1, 1);
		if (!w || clean)
			d |= PTE_BIT_AP2;
		return d;
	}
	d |= 0xfull << 2; /* MemAttr: normal, write-back */
	if (prot & PGT_R)
		d |= PTE_BIT_S2AP_R;
	if (w && !clean)
		d |= PTE_BIT_S2AP_W;
	return d;
}

static int pgt_map_level(struct pgtable *pt, uint64_t tbl, unsigned level, uint64_t iova,
			 uint64_t pa, uint64_t size, unsigned prot);

/* One entry of the walk: a leaf, or descend (allocating the next table). */
static int pgt_map_entry(struct pgtable *pt, uint64_t tbl, uint64_t *p, unsigned level,
			 uint64_t iova, uint64_t pa, uint64_t chunk, unsigned prot)
{
	uint64_t esz = 1ull << lvl_shift(level);
	uint64_t d = d_load(p);
	bool block_ok = level >= 1 && !(prot & PGT_PAGES) && chunk == esz && !(pa & (esz - 1));

	if (level == 3 || (block_ok && !(d & 1))) {
		if (d & 1)
			return -EEXIST;
		uint64_t oa = (prot & PGT_BAD_OA) ? pa : pa & PTE_OA_MASK;
		d_store(p, oa | pgt_leaf_bits(pt, prot, level));
		if ((prot & PGT_DIRTY) && pt->mem.dirty_hint)
			pt->mem.dirty_hint(pt->mem.opaque, tbl, PGT_HINT_SET);
		return 0;
	}
	if ((d & 1) && !d_is_table(d, level))
		return -EEXIST;
	if (!(d & 1)) {
		uint64_t next;
		int rc = pt->mem.alloc(pt->mem.opaque, 1, &next);
		if (rc)
			return rc;
		pt->tables++;
		d = next | PTE_TYPE_TABLE;
		d_store(p, d);
	}
	return pgt_map_level(pt, d & PTE_OA_MASK, level + 1, iova, pa, chunk, prot);
}

static int pgt_map_level(struct pgtable *pt, uint64_t tbl, unsigned level, uint64_t iova,
			 uint64_t pa, uint64_t size, unsigned prot)
{
	uint64_t esz = 1ull << lvl_shift(level);

	while (size) {
		uint64_t chunk = MIN(size, esz - (iova & (esz - 1)));
		int rc = pgt_map_entry(pt, tbl, entry_ptr(pt, tbl, level, iova), level, iova, pa,
				       chunk, prot);
		if (rc)
			return rc;
		iova += chunk;
		pa += chunk;
		size -= chunk;
	}
	return 0;
}

static bool pgt_range_ok(const struct pgtable *pt, uint64_t iova, uint64_t size)
{
	return size && !(iova & (PGT_PAGE - 1)) && !(size & (PGT_PAGE - 1)) && iova + size > iova &&
	       !((iova + size - 1) >> pt->ia_bits);
}

int pgtable_map(struct pgtable *pt, uint64_t iova, uint64_t pa, uint64_t size, unsigned prot)
{
	if (!pgt_range_ok(pt, iova, size))
		return (iova + size - 1) >> pt->ia_bits ? -ERANGE : -EINVAL;
	if ((pa & (PGT_PAGE - 1)) && !(prot & PGT_BAD_OA))
		return -EINVAL;
	return pgt_map_level(pt, pt->root, pt->start_level, iova, pa, size, prot);
}

/* ---- unmap ---- */

static bool pgt_table_empty(const struct pgtable *pt, uint64_t tbl)
{
	const uint64_t *t = tbl_ptr(pt, tbl);
	for (unsigned i = 0; i < 512; i++)
		if (d_load(&t[i]) & 1)
			return false;
	return true;
}

/* Unlinks an emptied table; its page waits on the retired list for pgtable_reclaim. */
static void pgt_retire(struct pgtable *pt, uint64_t *parent, uint64_t tbl)
{
	if (pt->nretired == pt->cap_retired) {
		unsigned cap = pt->cap_retired ? pt->cap_retired * 2 : 16;
		uint64_t *n = realloc(pt->retired, cap * sizeof(*n));
		if (!n)
			return; /* keep it linked: harmless, just not reclaimed */
		pt->retired = n;
		pt->cap_retired = cap;
	}
	d_store(parent, 0);
	pt->retired[pt->nretired++] = tbl;
}

/* Walks [iova, iova+size): dry run refuses partial blocks, the real run clears leaves. */
static int64_t pgt_unmap_level(struct pgtable *pt, uint64_t tbl, unsigned level, uint64_t iova,
			       uint64_t size, bool dry)
{
	uint64_t esz = 1ull << lvl_shift(level);
	int64_t done = 0;

	while (size) {
		uint64_t chunk = MIN(size, esz - (iova & (esz - 1)));
		uint64_t *p = entry_ptr(pt, tbl, level, iova);
		uint64_t d = d_load(p);
		if (d_is_table(d, level)) {
			int64_t n =
			    pgt_unmap_level(pt, d & PTE_OA_MASK, level + 1, iova, chunk, dry);
			if (n < 0)
				return n;
			if (!dry && pgt_table_empty(pt, d & PTE_OA_MASK))
				pgt_retire(pt, p, d & PTE_OA_MASK);
			done += n;
		} else if (d & 1) {
			if (chunk != esz)
				return -EINVAL;
			if (!dry)
				d_store(p, 0);
			done += (int64_t)esz;
		}
		iova += chunk;
		size -= chunk;
	}
	return done;
}

int64_t pgtable_unmap(struct pgtable *pt, uint64_t iova, uint64_t size)
{
	if (!pgt_range_ok(pt, iova, size))
		return -EINVAL;
	int64_t rc = pgt_unmap_level(pt, pt->root, pt->start_level, iova, size, true);
	if (rc < 0)
		return rc;
	return pgt_unmap_level(pt, pt->root, pt->start_level, iova, size, false);
}

void pgtable_reclaim(struct pgtable *pt)
{
	for (unsigned i = 0; i < pt->nretired; i++) {
		pt->mem.free(pt->mem.opaque, pt->retired[i], 1);
		pt->tables--;
	}
	pt->nretired = 0;
}

/* ---- lookups for tests ---- */

uint64_t *pgtable_desc(struct pgtable *pt, uint64_t iova, unsigned level)
{
	uint64_t tbl = pt->root;

	if (iova >> pt->ia_bits || level < pt->start_level || level > 3)
		return NULL;
	for (unsigned l = pt->start_level;; l++) {
		uint64_t *p = entry_ptr(pt, tbl, l, iova);
		if (l == level)
			return p;
		uint64_t d = d_load(p);
		if (!d_is_table(d, l))
			return NULL;
		tbl = d & PTE_OA_MASK;
	}
}

uint64_t *pgtable_leaf(struct pgtable *pt, uint64_t iova, unsigned *level)
{
	uint64_t tbl = pt->root;

	if (iova >> pt->ia_bits)
		return NULL;
	for (unsigned l = pt->start_level; l <= 3; l++) {
		uint64_t *p = entry_ptr(pt, tbl, l, iova);
		uint64_t d = d_load(p);
		if (!(d & 1))
			return NULL;
		if (!d_is_table(d, l)) {
			if (level)
				*level = l;
			return p;
		}
		tbl = d & PTE_OA_MASK;
	}
	return NULL;
}

/* ---- dirty harvest ---- */

struct harvest {
	struct pgtable *pt;
	uint64_t mask, val; /* dirty when (d & mask) == val */
	bool clear;
	pgt_dirty_fn fn;
	void *opaque;
	int64_t count;
};

/* Atomically makes a leaf writable-clean; true if it was dirty at that instant. */
static bool harvest_clear(const struct harvest *h, uint64_t *p)
{
	uint64_t old;

	if (h->pt->stage == 1)
		old = __atomic_fetch_or(p, PTE_BIT_AP2, __ATOMIC_ACQ_REL);
	else
		old = __atomic_fetch_and(p, ~PTE_BIT_S2AP_W, __ATOMIC_ACQ_REL);
	return (old & h->mask) == h->val;
}

static void harvest_leaf(struct harvest *h, uint64_t *p, uint64_t iova, uint64_t esz)
{
	if (h->clear && !harvest_clear(h, p))
		return;
	h->count++;
	if (h->fn)
		h->fn(h->opaque, iova, esz);
}

/* The hot loop: one leaf table, entries [first, last]. */
static void harvest_l3(struct harvest *h, uint64_t *t, unsigned first, unsigned last, uint64_t base)
{
	const uint64_t mask = h->mask, val = h->val | PTE_TYPE_TABLE;

	for (unsigned i = first; i <= last; i++) {
		if (LIKELY((__atomic_load_n(&t[i], __ATOMIC_RELAXED) & (mask | 3)) != val))
			continue;
		harvest_leaf(h, &t[i], base + ((uint64_t)i << PGT_SHIFT), PGT_PAGE);
	}
}

static void harvest_level(struct harvest *h, uint64_t tbl, unsigned level, uint64_t iova,
			  uint64_t size)
{
	struct pgtable *pt = h->pt;
	uint64_t esz = 1ull << lvl_shift(level);

	if (level == 3) {
		unsigned first = (unsigned)((iova >> PGT_SHIFT) & 511);
		unsigned n = (unsigned)(size >> PGT_SHIFT);
		/* Skip a table with no hint; clear the hint only when the whole table is
		 * scanned and cleaned, else dirty entries outside the range would lose it. */
		int op = h->clear && n == 512 ? PGT_HINT_TAKE : PGT_HINT_TEST;
		if (pt->mem.dirty_hint && !pt->mem.dirty_hint(pt->mem.opaque, tbl, op))
			return;
		harvest_l3(h, tbl_ptr(pt, tbl), first, first + n - 1,
			   iova & ~((512ull << PGT_SHIFT) - 1));
		return;
	}
	while (size) {
		uint64_t chunk = MIN(size, esz - (iova & (esz - 1)));
		uint64_t *p = entry_ptr(pt, tbl, level, iova);
		uint64_t d = d_load(p);
		if (d_is_table(d, level))
			harvest_level(h, d & PTE_OA_MASK, level + 1, iova, chunk);
		else if ((d & 1) && (d & h->mask) == h->val)
			harvest_leaf(h, p, iova & ~(esz - 1), esz);
		iova += chunk;
		size -= chunk;
	}
}

int64_t pgtable_harvest(struct pgtable *pt, uint64_t iova, uint64_t size, unsigned flags,
			pgt_dirty_fn fn, void *opaque)
{
	struct harvest h = {
	    .pt = pt, .clear = !(flags & PGT_HARVEST_NO_CLEAR), .fn = fn, .opaque = opaque};

	if (!pgt_range_ok(pt, iova, size))
		return -EINVAL;
	if (pt->stage == 1) {
		h.mask = PTE_BIT_AP2 | PTE_BIT_DBM;
		h.val = PTE_BIT_DBM;
	} else {
		h.mask = h.val = PTE_BIT_S2AP_W | PTE_BIT_DBM;
	}
	harvest_level(&h, pt->root, pt->start_level, iova, size);
	return h.count;
}

void pgtable_clean_all(struct pgtable *pt, uint64_t iova, uint64_t size)
{
	pgtable_harvest(pt, iova, size, 0, NULL, NULL);
}
