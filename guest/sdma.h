/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Ring-3 driver of the sdma DMA engine (include/hw/sdma_regs.h) behind the vSMMUv3: a
 * work queue of 64-byte descriptors in IOVA space, one 32-byte completion record per ring
 * slot, completion MSIs to an IOVA that stage 1 maps onto the x86 MSI window, and the
 * shadow tail for valueless doorbells. Completions are polled in RAM (no exits); the MSI
 * only wakes a vCPU that gave up spinning. Only the boot vCPU calls it.
 */
#ifndef GUEST_SDMA_H
#define GUEST_SDMA_H

#include <stdbool.h>
#include <stdint.h>
#include "hw/sdma_regs.h"
#include "smmu.h"

/* The driver's own IOVA window, mapped in every address space the queue runs in. */
#define SDMA_IOVA_RING	 0x10000000ull /* 64 descriptors, one page */
#define SDMA_IOVA_COMPL	 0x10001000ull /* completion records, then the shadow tail */
#define SDMA_IOVA_SHADOW 0x10001800ull
#define SDMA_IOVA_MSI	 0x10010000ull /* -> the boot vCPU's MSI address (IPA) */
#define SDMA_RING_LOG2	 6
#define SDMA_RING_SIZE	 (1u << SDMA_RING_LOG2)
/* Descriptors in flight at most (one slot always stays free). */
#define SDMA_MAX_BATCH 32

struct sdma_stats {
	uint64_t submitted, completed, doorbells, irqs_requested, timeouts, resets;
	uint64_t by_status[8];
};

struct sdma {
	bool present, shadow_ok, bof_ok;
	uint64_t submitted_at_start; /* st.submitted when the device was last reset */
	uint64_t cap;
	unsigned xfer_log2_max;
	uint32_t tail;	/* descriptors written since enable (index = tail % size) */
	uint32_t pasid; /* the queue's PASID (SSID) */
	bool pasid_v;
	struct sdma_stats st;
};

extern struct sdma sdma;

/* Reads CAP; false (after printing why) when no sdma answers at VMIG_SDMA_BAR0. */
bool sdma_probe(void);
/* Give the device GPAs instead of IOVAs (its stream bypasses the SMMU). */
void sdma_use_gpas(void);
/* Maps the ring, records, shadow tail and MSI page into as (read/write, accessed, dirty). */
bool sdma_map_driver(struct smmu_as *as);
/* Resets the device and starts the queue with (pasid_v, pasid); false if it halted. */
bool sdma_start(bool pasid_v, uint32_t pasid);
void sdma_stop(void);
/* Writes a descriptor (with CRAV, record cleared) at the tail; returns its ring index. */
uint32_t sdma_queue(const struct sdma_desc *d);
/* Publishes the tail: shadow location first, then the TAIL register (the doorbell). */
void sdma_doorbell(void);
/* The completion record of ring index i. */
volatile struct sdma_compl *sdma_compl_of(uint32_t i);
/*
 * Waits until the record of index i is written, serving SMMU events (stalls) meanwhile;
 * false after timeout_ticks.
 */
bool sdma_wait(uint32_t i, uint64_t timeout_ticks);
/* STATUS and ERR (for diagnostics and the hostile tests). */
uint64_t sdma_read(uint64_t off);
void sdma_write(uint64_t off, uint64_t v);
/* Prints "SDMA status= err= err_addr= head= tail=" (diagnostics). */
void sdma_dump(const char *why);

#endif
