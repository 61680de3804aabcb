/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host physical memory of the modelled machine.
 *
 * Physical addresses (PA) are backed by regions:
 *  - file regions: a memfd (typically the guest RAM memfd) mapped by the host model with its
 *    own mmap, so device DMA lands only through this mapping, never the VMM's;
 *  - the page pool: host pages the host driver allocates for stream tables, CD tables and
 *    stage-2 page tables (anonymous memory, zeroed on allocation);
 *  - doorbells: an MSI window; a DMA write landing there is delivered to a handler instead
 *    of RAM, a DMA read returns zeros.
 *
 * Lookups are lock-free (readers see an immutable snapshot of the region list); removing a
 * region is only safe once no DMA can target it any more (the iommufd layer invalidates and
 * synchronises the SMMU first).
 */
#ifndef VMIG_HOST_IOMMU_HOSTMEM_H
#define VMIG_HOST_IOMMU_HOSTMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hostmem;

/* A DMA write of len bytes at offset into a doorbell region, by stream sid. */
typedef void (*hostmem_doorbell_fn)(void *opaque, uint64_t offset, const void *data, size_t len,
				    uint32_t sid);

/* Where the page pool lives in PA space, and its size (reserved lazily, untouched = free). */
#define HOSTMEM_POOL_BASE 0x800000000000ull /* 128 TiB */
#define HOSTMEM_POOL_SIZE (1ull << 30)
/* File regions mapped with hostmem_map_file() are placed from here upwards. */
#define HOSTMEM_FILE_BASE 0x1000000000ull /* 64 GiB */
/* Doorbells allocated with hostmem_alloc_doorbell() are placed from here upwards. */
#define HOSTMEM_DOORBELL_BASE 0x7f0000000000ull

struct hostmem *hostmem_create(void);
void hostmem_destroy(struct hostmem *hm);

/* Maps len bytes of fd at offset as RAM at pa (all 4 KiB aligned). -EEXIST on overlap. */
int hostmem_add_file(struct hostmem *hm, uint64_t pa, int fd, uint64_t offset, uint64_t len);
/* As hostmem_add_file, at a free PA the model picks; returns it in *pa. */
int hostmem_map_file(struct hostmem *hm, int fd, uint64_t offset, uint64_t len, uint64_t *pa);
/* Anonymous zeroed RAM at pa (tests). */
int hostmem_add_ram(struct hostmem *hm, uint64_t pa, uint64_t len);
/* A doorbell region at pa. */
int hostmem_add_doorbell(struct hostmem *hm, uint64_t pa, uint64_t len, hostmem_doorbell_fn fn,
			 void *opaque);
/* A doorbell at a free PA the model picks. */
int hostmem_alloc_doorbell(struct hostmem *hm, uint64_t len, hostmem_doorbell_fn fn, void *opaque,
			   uint64_t *pa);
/*
 * Removes the region that starts at pa (file mappings are unmapped). -ENOENT if none; never
 * fails for lack of memory (destructors rely on it).
 */
int hostmem_remove(struct hostmem *hm, uint64_t pa);

/* Host pointer for [pa, pa+len) when it is RAM inside one region, else NULL. */
void *hostmem_ptr(struct hostmem *hm, uint64_t pa, uint64_t len);
/* Bytes of RAM contiguous in one region from pa (0 when pa is not RAM). */
uint64_t hostmem_ram_span(struct hostmem *hm, uint64_t pa);
/* Delivers a write to a doorbell; false when pa is not in a doorbell region. */
bool hostmem_doorbell_write(struct hostmem *hm, uint64_t pa, const void *data, size_t len,
			    uint32_t sid);
bool hostmem_is_doorbell(struct hostmem *hm, uint64_t pa);

/* Bulk copies through PA (host driver and tests); -EFAULT unless all RAM. */
int hostmem_read(struct hostmem *hm, uint64_t pa, void *buf, size_t len);
int hostmem_write(struct hostmem *hm, uint64_t pa, const void *buf, size_t len);

/*
 * Page pool: npages contiguous zeroed 4 KiB pages aligned to npages*4 KiB (npages a power of
 * two, at most 512). Returns 0 and the PA, or -ENOMEM.
 */
int hostmem_pages_alloc(struct hostmem *hm, unsigned npages, uint64_t *pa);
void hostmem_pages_free(struct hostmem *hm, uint64_t pa, unsigned npages);
static inline int hostmem_page_alloc(struct hostmem *hm, uint64_t *pa)
{
	return hostmem_pages_alloc(hm, 1, pa);
}
static inline void hostmem_page_free(struct hostmem *hm, uint64_t pa)
{
	hostmem_pages_free(hm, pa, 1);
}
/* Pool pages in use (leak checks in tests). */
size_t hostmem_pages_in_use(struct hostmem *hm);

/*
 * Dirty hints for page-table pages in the pool: a model-side summary, not architectural
 * state, that lets a dirty harvest skip leaf tables nobody dirtied since the last one.
 * The SMMU sets the hint of the table page holding a descriptor right after its HTTU
 * update made it dirty; a harvester takes (tests and clears) it *before* scanning the
 * table, so a dirtying write is always either seen by the scan or re-hints the table.
 * Pages outside the pool have no hints: take/test return true (scan them). A freshly
 * allocated pool page starts hinted.
 */
void hostmem_dirty_hint_set(struct hostmem *hm, uint64_t pa);
bool hostmem_dirty_hint_take(struct hostmem *hm, uint64_t pa);
bool hostmem_dirty_hint_test(struct hostmem *hm, uint64_t pa);

#endif
