/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host SMMU as a device's DMA path: what a bus master on the modelled host sees.
 * Every memory access a device (src/host/dev) makes goes through these calls with its
 * StreamID (and SubstreamID/PASID when it has one); the SMMU translates through the
 * stream's configuration (bypass, stage 1, stage 2, nested), updates hardware
 * access/dirty state, records events, and either completes, fails or stalls.
 *
 * Contract shared by the host SMMU model and the devices; extend it, don't break it.
 */
#ifndef VMIG_HOST_IOMMU_SMMU_DMA_H
#define VMIG_HOST_IOMMU_SMMU_DMA_H

#include <stddef.h>
#include <stdint.h>

struct smmu;

/* Transaction attributes. */
#define SMMU_DMA_SSV		(1u << 0) /* ssid is valid (PASID-tagged transaction) */
#define SMMU_DMA_BLOCK_ON_STALL (1u << 1) /* a stalled fault blocks the caller until answered */

struct smmu_dma_txn {
	uint32_t sid;
	uint32_t ssid;
	unsigned flags;
};

enum smmu_dma_status {
	SMMU_DMA_OK = 0,
	SMMU_DMA_FAULT,	  /* translation fault, transaction failed (event recorded per CD.R/S2R) */
	SMMU_DMA_ABORTED, /* config/GBPA abort, or a stall answered with abort/terminate */
	SMMU_DMA_BUS_ERROR, /* translated to a physical address with nothing behind it */
	SMMU_DMA_STALLED,   /* stalled and the caller did not ask to block (see smmu_dma_wait) */
};

struct smmu_dma_result {
	enum smmu_dma_status status;
	size_t done;	     /* bytes transferred before the failure (all of them on OK) */
	uint64_t fault_iova; /* first address that failed */
	uint8_t event_id;    /* architectural event id (F_TRANSLATION, ...), 0 if none */
	uint16_t stag;	     /* when STALLED: the stall tag the answer will carry */
};

/*
 * Read or write len bytes at iova. Return 0 when the call itself was well formed (the
 * outcome is in *res), or -EINVAL for a bad argument (unknown SID is *not* that: it is an
 * architectural C_BAD_STREAMID outcome). Writes that land in a doorbell region (an MSI
 * window) are delivered to it rather than to RAM.
 */
int smmu_dma_read(struct smmu *smmu, const struct smmu_dma_txn *txn, uint64_t iova, void *buf,
		  size_t len, struct smmu_dma_result *res);
int smmu_dma_write(struct smmu *smmu, const struct smmu_dma_txn *txn, uint64_t iova,
		   const void *buf, size_t len, struct smmu_dma_result *res);

/* Device-internal copy and fill without a bounce through the caller (fast paths). */
int smmu_dma_copy(struct smmu *smmu, const struct smmu_dma_txn *txn, uint64_t dst_iova,
		  uint64_t src_iova, size_t len, struct smmu_dma_result *res);
int smmu_dma_fill(struct smmu *smmu, const struct smmu_dma_txn *txn, uint64_t dst_iova,
		  uint64_t pattern, size_t len, struct smmu_dma_result *res);

/*
 * Terminates every stalled transaction of a stream, as a device reset or the host driver
 * would: blocked callers return ABORTED. Returns how many were terminated.
 */
int smmu_dma_terminate_stalls(struct smmu *smmu, uint32_t sid);

/*
 * For a transaction that returned SMMU_DMA_STALLED (no SMMU_DMA_BLOCK_ON_STALL): sleeps
 * until the stall (sid, stag) is answered. 0 when resumed with retry: the caller re-issues
 * the rest of its transfer (from res->done), which re-translates; -ECANCELED when it was
 * aborted/terminated; -ENOENT for an unknown (or already collected) stall.
 */
int smmu_dma_wait(struct smmu *smmu, uint32_t sid, uint16_t stag);

#endif
