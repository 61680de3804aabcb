/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A device-side DMA write log (the tracker behind VFIO DMA logging): a bitmap per tracked
 * IOVA range at one page size, in chunks allocated on the first write into them, so a
 * vIOMMU's whole 48-bit aperture is tracked at 4 KiB pages for the memory the device really
 * writes. Marking is lock-free against reporting (atomic word ops); start/stop exclude
 * markers with a rwlock, so a stop never frees a bitmap under a DMA. A write the tracker
 * has no memory left to record breaks the log: every report fails until the next START
 * (a real device reports a tracker error the same way), never a silently lost page.
 */
#ifndef VMIG_HOST_DEV_DMA_LOG_H
#define VMIG_HOST_DEV_DMA_LOG_H

#include "host/vfio_drv.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define DMA_LOG_MIN_PAGE (4ull << 10)
#define DMA_LOG_MAX_PAGE (2ull << 20)
/* Bits per chunk: 32 KiB of bitmap, 1 GiB of IOVA at 4 KiB pages. */
#define DMA_LOG_CHUNK_SHIFT 18
/* Chunk directory entries of one START; the page size grows until the ranges fit. */
#define DMA_LOG_MAX_DIR (1ull << 20)
/* Bitmap memory of one START (chunks in use): 16 MiB. */
#define DMA_LOG_MAX_BITS (1ull << 27)

struct dma_log_range {
	uint64_t iova;
	uint64_t length;
	uint64_t **chunks; /* NULL: nothing written there since START */
	uint64_t nbits;
};

struct dma_log {
	pthread_rwlock_t lock;
	bool active;
	unsigned shift;
	uint32_t nranges;
	struct dma_log_range *ranges;
	uint64_t chunks_used;
	bool broken; /* a write went unrecorded: reports fail until the next START */
};

void dma_log_init(struct dma_log *log);
void dma_log_destroy(struct dma_log *log);
/* -EINVAL if already started; *page_size: the hint in, the chosen size out. */
int dma_log_start(struct dma_log *log, const struct vfio_log_range *ranges, uint32_t n,
		  uint64_t *page_size);
/* Stopping a stopped log is not an error (as in the kernel drivers). */
int dma_log_stop(struct dma_log *log);
/* Records a DMA write of len bytes at iova (device-emitted, untranslated). */
void dma_log_mark(struct dma_log *log, uint64_t iova, uint64_t len);
/*
 * Read-and-clear for [iova, iova + length) at page_size into bitmap (bits only set).
 * Tracked pages straddling the window's edges are reported but not cleared, so nothing
 * outside the window is lost. -EINVAL if logging is off, -EIO if the log is broken.
 */
int dma_log_report(struct dma_log *log, uint64_t iova, uint64_t length, uint64_t page_size,
		   uint64_t *bitmap);

#endif
