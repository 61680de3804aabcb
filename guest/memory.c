// SPDX-License-Identifier: Apache-2.0
// Allocation of workload-owned RAM and the page content generator (see memory.h).
#include "console.h"
#include "lib.h"
#include "memory.h"
#include "user.h"

struct page_set ws_set, fill_set;
uint32_t *ws_gen;
uint64_t ws_gen_addr;

/* Free RAM: the Multiboot map minus the image, then minus what gets allocated. */
static struct range free_ram[MAX_EXTENTS];
static uint32_t nr_free;

static void free_insert(uint32_t at, uint64_t start, uint64_t end)
{
	if (nr_free == MAX_EXTENTS)
		fail_cmdline("memory map too fragmented", 0);
	for (uint32_t i = nr_free; i > at; i--)
		free_ram[i] = free_ram[i - 1];
	free_ram[at].start = start;
	free_ram[at].end = end;
	nr_free++;
}

static void free_delete(uint32_t at)
{
	for (uint32_t i = at; i + 1 < nr_free; i++)
		free_ram[i] = free_ram[i + 1];
	nr_free--;
}

/* Takes [start, end) out of the free list, splitting ranges as needed. */
static void free_remove(uint64_t start, uint64_t end)
{
	for (uint32_t i = 0; i < nr_free; i++) {
		struct range r = free_ram[i];

		if (r.end <= start || r.start >= end)
			continue;
		free_delete(i);
		if (r.end > end)
			free_insert(i, end, r.end);
		if (r.start < start)
			free_insert(i, r.start, start);
		i = (uint32_t)-1; /* the list changed: rescan */
	}
}

static void free_init(void)
{
	nr_free = 0;
	for (uint32_t i = 0; i < boot.nr_ram; i++)
		free_insert(nr_free, boot.ram[i].start, boot.ram[i].end);
	free_remove(boot.image_start, boot.image_end);
}

static void set_add(struct page_set *s, uint64_t start, uint64_t pages)
{
	if (s->n == MAX_EXTENTS)
		fail_cmdline("memory map too fragmented", 0);
	s->ext[s->n].start = start;
	s->ext[s->n].pages = pages;
	s->ext[s->n].first = s->pages;
	s->n++;
	s->pages += pages;
}

/* The generation table: contiguous, from the lowest free range that can hold it. */
static void alloc_gen_table(uint64_t pages)
{
	uint64_t bytes = ALIGN_UP(pages * sizeof(uint32_t), PAGE_SIZE);

	for (uint32_t i = 0; i < nr_free; i++) {
		if (free_ram[i].end - free_ram[i].start >= bytes) {
			ws_gen_addr = free_ram[i].start;
			ws_gen = (uint32_t *)ws_gen_addr;
			free_remove(ws_gen_addr, ws_gen_addr + bytes);
			return;
		}
	}
	fail_cmdline("no room for the generation table", 0);
}

/* The working set: the first ws pages of free RAM at or above base, across any gaps. */
static void alloc_working_set(uint64_t base, uint64_t pages)
{
	for (uint32_t i = 0; i < nr_free && pages; i++) {
		uint64_t start = MAX(free_ram[i].start, base);
		uint64_t n;

		if (start >= free_ram[i].end)
			continue;
		n = MIN((free_ram[i].end - start) / PAGE_SIZE, pages);
		set_add(&ws_set, start, n);
		pages -= n;
	}
	if (pages)
		fail_cmdline("the working set does not fit in RAM above wsbase", 0);
	for (uint32_t i = 0; i < ws_set.n; i++)
		free_remove(ws_set.ext[i].start,
			    ws_set.ext[i].start + ws_set.ext[i].pages * PAGE_SIZE);
}

void memory_setup(bool need_ws)
{
	uint64_t pages = cfg.ws_bytes / PAGE_SIZE;

	free_init();
	if (need_ws) {
		/* Low RAM for the table, unless the set was asked to start there. */
		if (!cfg.ws_base)
			alloc_gen_table(pages);
		alloc_working_set(cfg.ws_base, pages);
		if (cfg.ws_base)
			alloc_gen_table(pages);
	}
	if (cfg.fillram)
		for (uint32_t i = 0; i < nr_free; i++)
			set_add(&fill_set, free_ram[i].start,
				(free_ram[i].end - free_ram[i].start) / PAGE_SIZE);
}

uint64_t page_set_addr(const struct page_set *s, uint64_t index)
{
	for (uint32_t i = 0; i < s->n; i++)
		if (index - s->ext[i].first < s->ext[i].pages)
			return s->ext[i].start + (index - s->ext[i].first) * PAGE_SIZE;
	return 0;
}

bool memory_page_is_free(uint64_t addr)
{
	for (uint32_t i = 0; i < nr_free; i++)
		if (addr >= free_ram[i].start && addr + PAGE_SIZE <= free_ram[i].end)
			return true;
	return false;
}

void slice_of(uint64_t total, uint32_t cpu, uint64_t *lo, uint64_t *hi)
{
	*lo = total * cpu / ncpus;
	*hi = total * (cpu + 1) / ncpus;
}

/* A seed per (page, generation, run seed); never zero, so the stream never sticks at 0. */
static uint64_t pattern_seed(uint64_t addr, uint32_t gen)
{
	uint64_t x = addr * 0x9E3779B97F4A7C15ull ^ (uint64_t)gen * 0xC2B2AE3D27D4EB4Full ^
		     cfg.seed * 0x165667B19E3779F9ull;

	x ^= x >> 30;
	x *= 0xBF58476D1CE4E5B9ull;
	x ^= x >> 27;
	x *= 0x94D049BB133111EBull;
	x ^= x >> 31;
	return x | 1;
}

static inline uint64_t pattern_next(uint64_t s)
{
	s ^= s << 13;
	s ^= s >> 7;
	s ^= s << 17;
	return s;
}

void page_fill(uint64_t addr, uint32_t gen)
{
	uint64_t *p = (uint64_t *)addr, s = pattern_seed(addr, gen);

	for (int i = 0; i < 512; i++) {
		s = pattern_next(s);
		p[i] = s;
	}
}

int page_check(uint64_t addr, uint32_t gen, uint64_t *expected, uint64_t *found)
{
	const volatile uint64_t *p = (const uint64_t *)addr;
	uint64_t s = pattern_seed(addr, gen);

	for (int i = 0; i < 512; i++) {
		s = pattern_next(s);
		if (p[i] != s) {
			*expected = s;
			*found = p[i];
			return i;
		}
	}
	return -1;
}
