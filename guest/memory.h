/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Which guest pages the workloads own, and what each must hold. The working set is a list
 * of extents (it may straddle the MMIO hole); a generation number per working-set page, in
 * guest RAM, says which pseudo-random content the page holds. With fillram, every other
 * free page holds generation 0 content.
 */
#ifndef GUEST_MEMORY_H
#define GUEST_MEMORY_H

#include <stdbool.h>
#include <stdint.h>

#define MAX_EXTENTS 64

struct extent {
	uint64_t start; /* physical address */
	uint64_t pages;
	uint64_t first; /* index of its first page within the set */
};

struct page_set {
	struct extent ext[MAX_EXTENTS];
	uint32_t n;
	uint64_t pages;
};

extern struct page_set ws_set;	 /* the working set */
extern struct page_set fill_set; /* free RAM outside the working set (fillram) */
extern uint32_t *ws_gen;	 /* generation of each working-set page */
extern uint64_t ws_gen_addr;	 /* where that table lives */

/* Allocates the generation table, the working set and the fill set (boot vCPU only). */
void memory_setup(bool need_ws);
uint64_t page_set_addr(const struct page_set *s, uint64_t index);
/* Is [addr, addr + 4K) RAM that nothing else (image, working set, table) uses? */
bool memory_page_is_free(uint64_t addr);
/* The share [*lo, *hi) of `total` items that vCPU `cpu` owns. */
void slice_of(uint64_t total, uint32_t cpu, uint64_t *lo, uint64_t *hi);

/* Writes the content of generation `gen` into the page at addr. */
void page_fill(uint64_t addr, uint32_t gen);
/* Index of the first word that differs from generation `gen`, or -1 when all match. */
int page_check(uint64_t addr, uint32_t gen, uint64_t *expected, uint64_t *found);

#endif
