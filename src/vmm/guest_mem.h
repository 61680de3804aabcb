/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Guest RAM: one memfd, mapped once by the VMM. The guest-physical layout has the 32-bit
 * MMIO hole of guest_abi.h: the first MIN(size, VMIG_MMIO_HOLE_START) bytes of the memfd
 * appear at GPA 0, the rest at GPA 4 GiB. So memfd offset = GPA below the hole and
 * GPA - (4 GiB - hole start) above it.
 *
 * Dirty pages are always named by guest page frame number (GPA >> 12): bitmaps cover
 * guest_mem_gpa_pages() bits, and bits inside the hole are never set.
 *
 * Every write the VMM makes into guest RAM goes through guest_mem_write() (or, for writes
 * made through a pointer, is followed by guest_mem_mark_dirty()): KVM's dirty log only sees
 * vCPU writes, so the VMM keeps its own bitmap that the dirty harvest merges.
 */
#ifndef VMIG_VMM_GUEST_MEM_H
#define VMIG_VMM_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUEST_PAGE_SHIFT 12
#define GUEST_PAGE_SIZE	 (1ull << GUEST_PAGE_SHIFT)
#define GUEST_MEM_MAX	 (1ull << 40) /* 1 TiB: a sanity limit for --mem */

struct guest_mem_region {
	uint64_t gpa;	 /* guest-physical start */
	uint64_t size;	 /* bytes */
	uint64_t offset; /* offset in the memfd */
	uint8_t *host;	 /* VMM mapping of the region */
};

struct guest_mem {
	int fd;	       /* the memfd; other layers (the host model) may map it */
	uint8_t *host; /* mapping of the whole memfd */
	uint64_t size; /* total RAM bytes */
	unsigned nr_regions;
	struct guest_mem_region regions[2];
	uint64_t gpa_pages;	  /* pages from GPA 0 to the end of RAM (bits in a dirty bitmap) */
	uint64_t *vmm_dirty;	  /* pages the VMM wrote, taken by guest_mem_take_dirty() */
	uint64_t vmm_dirty_taken; /* atomic: pages newly reported by every take so far */
};

/* size must be a non-zero multiple of 4 KiB, at most GUEST_MEM_MAX. */
int guest_mem_create(uint64_t size, struct guest_mem **out);
void guest_mem_destroy(struct guest_mem *gm);
/*
 * Allocates and maps every page of guest RAM now (the --mem-prealloc option). On this
 * project's hosts the first guest touch of a page otherwise costs a host page fault in
 * the VMM's mapping on top of KVM's own: a guest that writes all its RAM runs about 4x
 * faster preallocated. Costs all of RAM up front, so it is opt-in.
 */
int guest_mem_prealloc(struct guest_mem *gm);

/* Host pointer for [gpa, gpa + len) if it lies wholly in one RAM region, else NULL. */
void *guest_mem_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len);
bool guest_mem_is_ram(const struct guest_mem *gm, uint64_t gpa);

/* Copies out of guest RAM. -EFAULT if any byte is outside RAM. */
int guest_mem_read(const struct guest_mem *gm, uint64_t gpa, void *buf, size_t len);
/*
 * THE way the VMM writes guest RAM: copies and marks the pages dirty for migration.
 * -EFAULT (nothing written) if any byte is outside RAM. Safe from any thread.
 */
int guest_mem_write(struct guest_mem *gm, uint64_t gpa, const void *buf, size_t len);
/* For a write already made through guest_mem_ptr(): marks [gpa, gpa + len) dirty. */
void guest_mem_mark_dirty(struct guest_mem *gm, uint64_t gpa, uint64_t len);
/* ORs the VMM's dirty pages into dst (gpa_pages bits) and clears them; returns the count. */
size_t guest_mem_take_dirty(struct guest_mem *gm, uint64_t *dst);

/* Parses "512M", "4G", "65536K", "1048576" (bytes). -EINVAL on junk, 0 or misalignment. */
int guest_mem_parse_size(const char *text, uint64_t *out);

#endif
