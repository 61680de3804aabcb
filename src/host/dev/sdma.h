/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sdma device on the modelled host: creation by the host model (which owns the SMMU
 * and chooses the StreamID), and a few introspection calls for tests and benchmarks. The
 * VMM never includes this: it opens the device by name through host/vfio.h.
 */
#ifndef VMIG_HOST_DEV_SDMA_H
#define VMIG_HOST_DEV_SDMA_H

#include <stdbool.h>
#include <stdint.h>

struct smmu;
struct sdma;
struct vfio_device;

struct sdma_config {
	const char *name;	 /* VFIO registry name, e.g. "sdma0" (required, unique) */
	struct smmu *smmu;	 /* the DMA path */
	uint32_t sid;		 /* the device's StreamID on that SMMU */
	uint64_t mig_flags;	 /* VFIO_MIGRATION_*; 0 = STOP_COPY | P2P | PRE_COPY */
	bool no_dma_log;	 /* hide DMA logging (CAP bit clear, LOGGING features ENOTTY) */
	bool no_bof;		 /* hide block-on-fault (descriptors with BOF are invalid) */
	uint32_t log_max_ranges; /* device range limit for DMA logging; 0 = 4 */
	unsigned wq_log2_max;	 /* 0 = 12 (4096 descriptors) */
	unsigned xfer_log2_max;	 /* 0 = 26 (64 MiB per descriptor) */
	unsigned quiesce_ms;	 /* how long STOP waits for a blocked descriptor; 0 = 1000 */
};

int sdma_create(const struct sdma_config *cfg, struct sdma **out);
/* Unregisters, stops and joins the engine, frees. */
void sdma_destroy(struct sdma *s);

struct sdma_stats {
	unsigned inflight;  /* descriptors started and not yet completed (0 or 1) */
	uint32_t pending;   /* TAIL - HEAD: submitted, not started */
	uint64_t completed; /* since reset */
	uint64_t rollbacks; /* in-flight descriptors put back by a STOP (rerun later) */
};
void sdma_get_stats(struct sdma *s, struct sdma_stats *st);
/* Waits until nothing is pending or in flight (or the engine cannot progress). 0/-ETIMEDOUT. */
int sdma_wait_idle(struct sdma *s, unsigned timeout_ms);

#endif
