// SPDX-License-Identifier: Apache-2.0
#include "host/dev/dma_log.h"

#include "common/bitmap.h"
#include "common/trace.h"
#include "common/util.h"

#include <errno.h>
#include <stdlib.h>

void dma_log_init(struct dma_log *log)
{
	pthread_rwlock_init(&log->lock, NULL);
	log->active = false;
	log->nranges = 0;
	log->ranges = NULL;
	log->shift = 12;
}

#define CHUNK_BITS  (1ull << DMA_LOG_CHUNK_SHIFT)
#define CHUNK_WORDS (CHUNK_BITS / 64)

static uint64_t dir_entries(uint64_t nbits)
{
	return (nbits + CHUNK_BITS - 1) >> DMA_LOG_CHUNK_SHIFT;
}

static void log_free_range(struct dma_log_range *lr)
{
	for (uint64_t c = 0; lr->chunks && c < dir_entries(lr->nbits); c++)
		free(lr->chunks[c]);
	free(lr->chunks);
}

static void log_free_ranges(struct dma_log *log)
{
	for (uint32_t i = 0; i < log->nranges; i++)
		log_free_range(&log->ranges[i]);
	free(log->ranges);
	log->ranges = NULL;
	log->nranges = 0;
}

void dma_log_destroy(struct dma_log *log)
{
	log_free_ranges(log);
	pthread_rwlock_destroy(&log->lock);
}

/* Pages of [iova, iova + len) at 1 << shift, counting partial pages at both ends. */
static uint64_t log_pages(uint64_t iova, uint64_t len, unsigned shift)
{
	uint64_t first = iova >> shift;
	uint64_t last = (iova + (len - 1)) >> shift;

	return last - first + 1;
}

/* The smallest page size >= the hint (clamped to 4K..2M) whose chunk directories fit. */
static int log_choose_shift(const struct vfio_log_range *r, uint32_t n, uint64_t hint,
			    unsigned *shift)
{
	unsigned s = (unsigned)__builtin_ctzll(hint);

	s = MAX(s, 12u);
	s = MIN(s, 21u);
	for (; s <= 21; s++) {
		uint64_t total = 0;

		for (uint32_t i = 0; i < n; i++)
			total += dir_entries(log_pages(r[i].iova, r[i].length, s));
		if (total <= DMA_LOG_MAX_DIR) {
			*shift = s;
			return 0;
		}
	}
	return -ENOSPC;
}

static int log_alloc_ranges(struct dma_log *log, const struct vfio_log_range *r, uint32_t n)
{
	log->ranges = calloc(n, sizeof(*log->ranges));
	if (!log->ranges)
		return -ENOMEM;
	log->nranges = n;
	for (uint32_t i = 0; i < n; i++) {
		struct dma_log_range *lr = &log->ranges[i];

		/* Tracked pages are aligned to the page size: widen the range to them. */
		lr->iova = ALIGN_DOWN(r[i].iova, 1ull << log->shift);
		lr->nbits = log_pages(r[i].iova, r[i].length, log->shift);
		lr->length = lr->nbits << log->shift;
		lr->chunks = calloc(dir_entries(lr->nbits), sizeof(*lr->chunks));
		if (!lr->chunks) {
			log_free_ranges(log);
			return -ENOMEM;
		}
	}
	return 0;
}

int dma_log_start(struct dma_log *log, const struct vfio_log_range *r, uint32_t n,
		  uint64_t *page_size)
{
	unsigned shift;
	int ret;

	pthread_rwlock_wrlock(&log->lock);
	ret = log->active ? -EINVAL : log_choose_shift(r, n, *page_size, &shift);
	if (!ret) {
		log->shift = shift;
		log->chunks_used = 0;
		log->broken = false;
		ret = log_alloc_ranges(log, r, n);
	}
	if (!ret) {
		*page_size = 1ull << shift;
		__atomic_store_n(&log->active, true, __ATOMIC_RELEASE);
	}
	pthread_rwlock_unlock(&log->lock);
	TRACE(dma_log_start, "ranges=%u page=%#llx: %d", n, (unsigned long long)*page_size, ret);
	return ret;
}

int dma_log_stop(struct dma_log *log)
{
	pthread_rwlock_wrlock(&log->lock);
	__atomic_store_n(&log->active, false, __ATOMIC_RELEASE);
	log_free_ranges(log);
	pthread_rwlock_unlock(&log->lock);
	TRACE(dma_log_stop, "stopped");
	return 0;
}

/* Sets bits [first, first + count) with atomic word ORs (markers race with reporters). */
static void log_set_bits(uint64_t *map, uint64_t first, uint64_t count)
{
	uint64_t end = first + count;

	while (first < end) {
		uint64_t w = first / 64, lo = first % 64;
		uint64_t hi = MIN(end - w * 64, 64);
		uint64_t mask = (hi == 64 ? ~0ull : (1ull << hi) - 1) & ~((1ull << lo) - 1);

		/*
		 * Always the atomic OR, with release: skipping it when a plain load sees the bits
		 * set lets a report clear them in between, and the release keeps the DMA's data
		 * ahead of the bit for the reader that clears it (MIGRATION.md, known gaps).
		 */
		__atomic_fetch_or(&map[w], mask, __ATOMIC_RELEASE);
		first = w * 64 + hi;
	}
}

/* Chunk c of lr, allocated on first use; NULL (and the log broken) past the budget. */
static uint64_t *log_chunk(struct dma_log *log, struct dma_log_range *lr, uint64_t c)
{
	uint64_t *bits = __atomic_load_n(&lr->chunks[c], __ATOMIC_ACQUIRE), *none = NULL;

	if (bits)
		return bits;
	if (__atomic_add_fetch(&log->chunks_used, 1, __ATOMIC_RELAXED) * CHUNK_BITS >
		DMA_LOG_MAX_BITS ||
	    !(bits = calloc(CHUNK_WORDS, sizeof(*bits)))) {
		__atomic_sub_fetch(&log->chunks_used, 1, __ATOMIC_RELAXED);
		/* Another DMA may have taken the last of the budget for this very chunk. */
		if ((bits = __atomic_load_n(&lr->chunks[c], __ATOMIC_ACQUIRE)))
			return bits;
		__atomic_store_n(&log->broken, true, __ATOMIC_RELEASE);
		TRACE(dma_log_broken, "no memory for chunk %llu", (unsigned long long)c);
		return NULL;
	}
	if (__atomic_compare_exchange_n(&lr->chunks[c], &none, bits, false, __ATOMIC_ACQ_REL,
					__ATOMIC_ACQUIRE))
		return bits;
	free(bits); /* another DMA allocated it first */
	__atomic_sub_fetch(&log->chunks_used, 1, __ATOMIC_RELAXED);
	return none;
}

static void log_mark_range(struct dma_log *log, struct dma_log_range *lr, uint64_t iova,
			   uint64_t end)
{
	uint64_t lo = MAX(iova, lr->iova);
	uint64_t hi = MIN(end, lr->iova + lr->length);
	uint64_t first = (lo - lr->iova) >> log->shift,
		 stop = ((hi - 1 - lr->iova) >> log->shift) + 1;

	while (lo < hi && first < stop) {
		uint64_t c = first >> DMA_LOG_CHUNK_SHIFT;
		uint64_t next = MIN(stop, (c + 1) << DMA_LOG_CHUNK_SHIFT);
		uint64_t *bits = log_chunk(log, lr, c);

		if (!bits)
			return;
		log_set_bits(bits, first - (c << DMA_LOG_CHUNK_SHIFT), next - first);
		first = next;
	}
}

void dma_log_mark(struct dma_log *log, uint64_t iova, uint64_t len)
{
	uint64_t end;

	if (!len || !__atomic_load_n(&log->active, __ATOMIC_ACQUIRE))
		return;
	if (__builtin_add_overflow(iova, len, &end))
		end = UINT64_MAX;
	pthread_rwlock_rdlock(&log->lock);
	for (uint32_t i = 0; log->active && i < log->nranges; i++)
		log_mark_range(log, &log->ranges[i], iova, end);
	pthread_rwlock_unlock(&log->lock);
}

struct report_win {
	uint64_t iova, end, page_size;
	uint64_t *bitmap;
};

/* Sets the report bits covering [lo, hi) (inside the window). */
static void report_set(const struct report_win *w, uint64_t lo, uint64_t hi)
{
	uint64_t first = (lo - w->iova) / w->page_size;
	uint64_t last = (hi - 1 - w->iova) / w->page_size;

	for (uint64_t b = first; b <= last; b++)
		w->bitmap[b / 64] |= 1ull << (b % 64);
}

/* Takes one word of a range's bitmap: reports its pages, clears those inside the window. */
static void report_word(const struct report_win *w, const struct dma_log_range *lr, unsigned shift,
			uint64_t word, uint64_t mask, uint64_t clear)
{
	uint64_t *chunk = __atomic_load_n(&lr->chunks[word / CHUNK_WORDS], __ATOMIC_ACQUIRE);
	uint64_t v =
	    __atomic_fetch_and(&chunk[word % CHUNK_WORDS], ~clear, __ATOMIC_ACQ_REL) & mask;

	while (v) {
		unsigned bit = (unsigned)__builtin_ctzll(v);
		uint64_t page = lr->iova + ((word * 64 + bit) << shift);
		uint64_t lo = MAX(page, w->iova);
		uint64_t hi = MIN(page + (1ull << shift), w->end);

		report_set(w, lo, hi);
		v &= v - 1;
	}
}

static uint64_t bits_mask(uint64_t word, uint64_t first, uint64_t end)
{
	uint64_t lo = first > word * 64 ? first - word * 64 : 0;
	uint64_t hi = end < word * 64 + 64 ? end - word * 64 : 64;

	if (first >= word * 64 + 64 || end <= word * 64 || lo >= hi)
		return 0;
	return (hi == 64 ? ~0ull : (1ull << hi) - 1) & ~((1ull << lo) - 1);
}

static void report_range(const struct report_win *w, struct dma_log_range *lr, unsigned shift)
{
	uint64_t ps = 1ull << shift;
	uint64_t lo = MAX(w->iova, lr->iova), hi = MIN(w->end, lr->iova + lr->length);
	uint64_t b0, b1, c0, c1;

	if (lo >= hi)
		return;
	b0 = (lo - lr->iova) >> shift;
	b1 = ((hi - 1 - lr->iova) >> shift) + 1;
	/* Pages entirely inside the window are the only ones cleared. */
	c0 = (ALIGN_UP(lo - lr->iova, ps)) >> shift;
	c1 = (hi - lr->iova) >> shift;
	for (uint64_t word = b0 / 64; word <= (b1 - 1) / 64; word++) {
		if (!__atomic_load_n(&lr->chunks[word / CHUNK_WORDS], __ATOMIC_ACQUIRE)) {
			word = ALIGN_DOWN(word, CHUNK_WORDS) + CHUNK_WORDS - 1; /* never written */
			continue;
		}
		report_word(w, lr, shift, word, bits_mask(word, b0, b1), bits_mask(word, c0, c1));
	}
}

int dma_log_report(struct dma_log *log, uint64_t iova, uint64_t length, uint64_t page_size,
		   uint64_t *bitmap)
{
	struct report_win w = {
	    .iova = iova, .end = iova + length, .page_size = page_size, .bitmap = bitmap};
	int ret = 0;

	pthread_rwlock_rdlock(&log->lock);
	if (!log->active)
		ret = -EINVAL;
	else if (__atomic_load_n(&log->broken, __ATOMIC_ACQUIRE))
		ret = -EIO;
	for (uint32_t i = 0; !ret && i < log->nranges; i++)
		report_range(&w, &log->ranges[i], log->shift);
	pthread_rwlock_unlock(&log->lock);
	TRACE(dma_log_report, "iova=%#llx len=%#llx page=%#llx: %d", (unsigned long long)iova,
	      (unsigned long long)length, (unsigned long long)page_size, ret);
	return ret;
}
