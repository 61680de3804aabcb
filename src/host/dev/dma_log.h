/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A device-side DMA write log (the tracker behind VFIO DMA logging): a bitmap per tracked
 * IOVA range at one page size. Marking is lock-free against reporting (atomic word ops);
 * start/stop exclude markers with a rwlock, so a stop never frees a bitmap under a DMA.
 */
#ifndef VMIG_HOST_DEV_DMA_LOG_H
#define VMIG_HOST_DEV_DMA_LOG_H

#include "host/vfio_drv.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define DMA_LOG_MIN_PAGE (4ull << 10)
#define DMA_LOG_MAX_PAGE (2ull << 20)
/* Bitmap budget of one START; the page size grows until the ranges fit. */
#define DMA_LOG_MAX_BITS (1ull << 27)

struct dma_log_range {
	uint64_t iova;
	uint64_t length;
	uint64_t *bits;
	uint64_t nbits;
};

struct dma_log {
	pthread_rwlock_t lock;
	bool active;
	unsigned shift;
	uint32_t nranges;
	struct dma_log_range *ranges;
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
 * outside the window is lost. -EINVAL if logging is off.
 */
int dma_log_report(struct dma_log *log, uint64_t iova, uint64_t length, uint64_t page_size,
		   uint64_t *bitmap);

#endif
