// SPDX-License-Identifier: Apache-2.0
#include "common/bitmap.h"

#include <stdlib.h>
#include <string.h>

/* Mask of the bits [lo, hi) inside one word, 0 <= lo < hi <= 64. */
static uint64_t word_mask(unsigned lo, unsigned hi)
{
	uint64_t upper = hi == 64 ? ~0ull : (1ull << hi) - 1;
	return upper & ~((1ull << lo) - 1);
}

/* Applies set (or clear) to [start, start + count) a word at a time. */
static void range_apply(uint64_t *map, size_t start, size_t count, bool set)
{
	size_t end = start + count;

	while (start < end) {
		size_t w = start / BITMAP_WORD_BITS;
		unsigned lo = start % BITMAP_WORD_BITS;
		size_t word_end = (w + 1) * BITMAP_WORD_BITS;
		unsigned hi = end < word_end ? end % BITMAP_WORD_BITS : 64;
		uint64_t mask = word_mask(lo, hi);

		if (set)
			map[w] |= mask;
		else
			map[w] &= ~mask;
		start = w * BITMAP_WORD_BITS + hi;
	}
}

void bitmap_zero(uint64_t *map, size_t nbits)
{
	memset(map, 0, bitmap_bytes(nbits));
}

void bitmap_set_range(uint64_t *map, size_t start, size_t count)
{
	range_apply(map, start, count, true);
}

void bitmap_clear_range(uint64_t *map, size_t start, size_t count)
{
	range_apply(map, start, count, false);
}

bool bitmap_test_range_any(const uint64_t *map, size_t start, size_t count)
{
	size_t end = start + count;
	return bitmap_find_next_set(map, end, start) < end;
}

/* Shared scan: invert turns "find set" into "find clear". */
static size_t find_next(const uint64_t *map, size_t nbits, size_t start, uint64_t invert)
{
	if (start >= nbits)
		return nbits;
	size_t w = start / BITMAP_WORD_BITS;
	uint64_t word = (map[w] ^ invert) & ~((1ull << (start % BITMAP_WORD_BITS)) - 1);
	size_t nwords = bitmap_words(nbits);

	for (;;) {
		if (word) {
			size_t bit = w * BITMAP_WORD_BITS + (size_t)__builtin_ctzll(word);
			return bit < nbits ? bit : nbits;
		}
		if (++w >= nwords)
			return nbits;
		word = map[w] ^ invert;
	}
}

size_t bitmap_find_next_set(const uint64_t *map, size_t nbits, size_t start)
{
	return find_next(map, nbits, start, 0);
}

size_t bitmap_find_next_clear(const uint64_t *map, size_t nbits, size_t start)
{
	return find_next(map, nbits, start, ~0ull);
}

size_t bitmap_count(const uint64_t *map, size_t nbits)
{
	size_t full = nbits / BITMAP_WORD_BITS, n = 0;

	for (size_t w = 0; w < full; w++)
		n += (size_t)__builtin_popcountll(map[w]);
	if (nbits % BITMAP_WORD_BITS)
		n += (size_t)__builtin_popcountll(map[full] &
						  word_mask(0, nbits % BITMAP_WORD_BITS));
	return n;
}

bool bitmap_empty(const uint64_t *map, size_t nbits)
{
	return bitmap_find_next_set(map, nbits, 0) == nbits;
}

size_t bitmap_or(uint64_t *dst, const uint64_t *src, size_t nbits)
{
	size_t nwords = bitmap_words(nbits), added = 0;

	for (size_t w = 0; w < nwords; w++) {
		uint64_t s = src[w];
		if (w == nwords - 1 && nbits % BITMAP_WORD_BITS)
			s &= word_mask(0, nbits % BITMAP_WORD_BITS);
		added += (size_t)__builtin_popcountll(s & ~dst[w]);
		dst[w] |= s;
	}
	return added;
}

uint64_t *bitmap_alloc(size_t nbits)
{
	return calloc(bitmap_words(nbits) ? bitmap_words(nbits) : 1, sizeof(uint64_t));
}
