/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Bitmaps of 64-bit words, bit 0 of word 0 first. Used for dirty page logs (KVM, IOMMU,
 * device), so the layout is the one the Linux dirty-bitmap interfaces use: bit i of the
 * map lives in word i / 64 at position i % 64.
 */
#ifndef VMIG_COMMON_BITMAP_H
#define VMIG_COMMON_BITMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BITMAP_WORD_BITS 64u

static inline size_t bitmap_words(size_t nbits)
{
	return (nbits + BITMAP_WORD_BITS - 1) / BITMAP_WORD_BITS;
}

static inline size_t bitmap_bytes(size_t nbits)
{
	return bitmap_words(nbits) * sizeof(uint64_t);
}

static inline bool bitmap_test(const uint64_t *map, size_t bit)
{
	return (map[bit / BITMAP_WORD_BITS] >> (bit % BITMAP_WORD_BITS)) & 1u;
}

static inline void bitmap_set(uint64_t *map, size_t bit)
{
	map[bit / BITMAP_WORD_BITS] |= 1ull << (bit % BITMAP_WORD_BITS);
}

static inline void bitmap_clear(uint64_t *map, size_t bit)
{
	map[bit / BITMAP_WORD_BITS] &= ~(1ull << (bit % BITMAP_WORD_BITS));
}

/* Safe against concurrent setters and readers of the same word (DMA engines, harvesters). */
static inline void bitmap_set_atomic(uint64_t *map, size_t bit)
{
	__atomic_fetch_or(&map[bit / BITMAP_WORD_BITS], 1ull << (bit % BITMAP_WORD_BITS),
			  __ATOMIC_RELAXED);
}

/* Atomically takes a whole word: returns its bits and leaves it zero. */
static inline uint64_t bitmap_take_word_atomic(uint64_t *map, size_t word)
{
	return __atomic_exchange_n(&map[word], 0, __ATOMIC_ACQ_REL);
}

void bitmap_zero(uint64_t *map, size_t nbits);
void bitmap_set_range(uint64_t *map, size_t start, size_t count);
void bitmap_clear_range(uint64_t *map, size_t start, size_t count);
bool bitmap_test_range_any(const uint64_t *map, size_t start, size_t count);

/* Index of the first set (or clear) bit at or after start, or nbits when there is none. */
size_t bitmap_find_next_set(const uint64_t *map, size_t nbits, size_t start);
size_t bitmap_find_next_clear(const uint64_t *map, size_t nbits, size_t start);

size_t bitmap_count(const uint64_t *map, size_t nbits);
bool bitmap_empty(const uint64_t *map, size_t nbits);

/* dst |= src over nbits; returns how many bits of dst were newly set. */
size_t bitmap_or(uint64_t *dst, const uint64_t *src, size_t nbits);

/* Allocation helpers: zeroed, freed with free(). NULL on failure. */
uint64_t *bitmap_alloc(size_t nbits);

#endif
