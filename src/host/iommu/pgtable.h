/* SPDX-License-Identifier: Apache-2.0 */
/*
 * VMSAv8-64 4 KiB-granule page tables for stage 1 or stage 2, built into any memory that
 * can hand out zeroed, aligned 4 KiB pages by physical (or intermediate physical) address.
 *
 * Used by the host driver (iommufd: stage-2 tables of IOAS-backed HWPTs, in host pages) and
 * by tests of every layer (stage-1 tables in guest RAM, stage-2 tables in a buffer): see
 * pgtable_build.h for the test conveniences (buffer memory, STE/CD builders).
 *
 * Descriptors are written with atomic stores and updated with atomic read-modify-write, so
 * mapping, unmapping and harvesting are safe against a concurrent hardware walker (the SMMU
 * model sets access/dirty state with compare-and-swap). Callers serialise map/unmap on one
 * table among themselves, and invalidate the IOTLB after unmap/harvest.
 *
 *   struct pgtable pt;
 *   pgtable_init(&pt, &mem, 2, 40, PGT_LEVEL_AUTO);   // stage 2, 40-bit IPA
 *   pgtable_map(&pt, 0x40000000, pa, 2 << 20, PGT_R | PGT_W | PGT_DBM);
 *   ... STE.S2TTB = pt.root, S2SL0 = pgtable_s2_sl0(&pt), S2T0SZ = 64 - pt.ia_bits ...
 *   pgtable_harvest(&pt, 0, 1ull << 40, 0, on_dirty, ctx);
 *   pgtable_fini(&pt);
 */
#ifndef VMIG_HOST_IOMMU_PGTABLE_H
#define VMIG_HOST_IOMMU_PGTABLE_H

#include <stdbool.h>
#include <stdint.h>

struct hostmem;

/* Where table pages come from. */
struct pgt_mem {
	/* npages (power of two) zeroed pages aligned to npages*4K; 0 or -ENOMEM. */
	int (*alloc)(void *opaque, unsigned npages, uint64_t *pa);
	void (*free)(void *opaque, uint64_t pa, unsigned npages);
	/* Host pointer to the table page at pa. */
	void *(*ptr)(void *opaque, uint64_t pa);
	/*
	 * Optional dirty hints of table pages (see hostmem_dirty_hint_take): PGT_HINT_TEST
	 * may the table at pa hold dirty descriptors; PGT_HINT_TAKE the same and clear it;
	 * PGT_HINT_SET mark it. NULL: every table is scanned.
	 */
	bool (*dirty_hint)(void *opaque, uint64_t pa, int op);
	void *opaque;
};

enum { PGT_HINT_TEST, PGT_HINT_TAKE, PGT_HINT_SET };

/* Table pages from the host page pool (hostmem_pages_alloc), with dirty hints. */
struct pgt_mem pgt_mem_hostmem(struct hostmem *hm);

#define PGT_LEVEL_AUTO (-1)

struct pgtable {
	struct pgt_mem mem;
	int stage;	      /* 1 or 2 */
	unsigned ia_bits;     /* input address size (64 - TxSZ) */
	unsigned start_level; /* 0..3 */
	unsigned root_pages;  /* concatenated start tables (stage 2), else 1 */
	uint64_t root;	      /* TTB0 / S2TTB */
	uint64_t tables;      /* table pages in use (root included) */
	uint64_t *retired;    /* emptied tables unlinked by unmap, freed by pgtable_reclaim */
	unsigned nretired, cap_retired;
};

/* Leaf permissions and state for pgtable_map. */
#define PGT_R	   (1u << 0)
#define PGT_W	   (1u << 1)
#define PGT_DBM	   (1u << 2) /* writable pages start writable-clean (HTTU dirty tracking) */
#define PGT_NO_AF  (1u << 3) /* leave the access flag clear */
#define PGT_PAGES  (1u << 4) /* 4 KiB pages only, no 2 MiB / 1 GiB blocks */
#define PGT_DIRTY  (1u << 5) /* with PGT_DBM: start writable-dirty */
#define PGT_BAD_OA (1u << 6) /* tests: leave the OA as given even if odd (no masking) */

/*
 * Stage 1: start level follows T0SZ (ia_bits 25..48). Stage 2: PGT_LEVEL_AUTO takes the
 * fewest levels using up to 16 concatenated start tables; an explicit level is checked.
 * -EINVAL on a bad geometry, -ENOMEM.
 */
int pgtable_init(struct pgtable *pt, const struct pgt_mem *mem, int stage, unsigned ia_bits,
		 int start_level);
/* Frees every table page. */
void pgtable_fini(struct pgtable *pt);

/*
 * Maps [iova, iova+size) to [pa, pa+size) (4 KiB aligned), with blocks where alignment
 * allows (unless PGT_PAGES). -EEXIST if something is mapped there, -ERANGE beyond ia_bits.
 */
int pgtable_map(struct pgtable *pt, uint64_t iova, uint64_t pa, uint64_t size, unsigned prot);
/*
 * Unmaps [iova, iova+size); a block only partly inside the range is refused (-EINVAL)
 * before anything changes. Returns the bytes that were mapped, or a negative errno.
 * Tables left empty are unlinked but not freed yet (a walker may still be reading them):
 * call pgtable_reclaim() once the IOTLB is invalidated and in-flight DMA has drained
 * (TLBI + CMD_SYNC). pgtable_fini() frees them too.
 */
int64_t pgtable_unmap(struct pgtable *pt, uint64_t iova, uint64_t size);
void pgtable_reclaim(struct pgtable *pt);

/* Address of the leaf descriptor for iova (NULL if unmapped) and its level (tests). */
uint64_t *pgtable_leaf(struct pgtable *pt, uint64_t iova, unsigned *level);
/* Address of the descriptor at exactly 'level' on the path of iova, or NULL (tests). */
uint64_t *pgtable_desc(struct pgtable *pt, uint64_t iova, unsigned level);

/* Dirty leaves: stage 1 (AP[2]|DBM) == DBM, stage 2 DBM && S2AP[1]. */
#define PGT_HARVEST_NO_CLEAR (1u << 0)
typedef void (*pgt_dirty_fn)(void *opaque, uint64_t iova, uint64_t size);
/*
 * Reports every dirty leaf overlapping [iova, iova+size) (whole leaf ranges) and, unless
 * NO_CLEAR, makes it writable-clean again with an atomic test-and-clear, so a write that
 * races the harvest is either reported now or leaves the leaf dirty for the next one.
 * Returns the number of dirty leaves. The caller must then invalidate the IOTLB entries
 * of the range (they may hold write permission). With dirty hints (pgt_mem.dirty_hint,
 * the host pool has them), leaf tables nobody dirtied since the last harvest are skipped
 * without reading them.
 */
int64_t pgtable_harvest(struct pgtable *pt, uint64_t iova, uint64_t size, unsigned flags,
			pgt_dirty_fn fn, void *opaque);
/* Sets the initial dirty state: every writable DBM leaf in range made writable-clean. */
void pgtable_clean_all(struct pgtable *pt, uint64_t iova, uint64_t size);

/* STE/CD fields for this table. */
static inline unsigned pgtable_s2_sl0(const struct pgtable *pt)
{
	return 2 - pt->start_level;
}
static inline unsigned pgtable_txsz(const struct pgtable *pt)
{
	return 64 - pt->ia_bits;
}

#endif
