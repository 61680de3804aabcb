/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The device workloads: dma, remap, sva (iommu_workloads.c) and hostile (hostile.c). The
 * boot vCPU runs them; each returns whether the step passed and leaves its counts in
 * dev_result for the RESULT line.
 */
#ifndef GUEST_IOMMU_WORKLOADS_H
#define GUEST_IOMMU_WORKLOADS_H

#include <stdbool.h>
#include <stdint.h>
#include "smmu.h"

struct dev_result {
	uint64_t jobs, bytes, faults, mismatches;
	uint64_t lost; /* dma with secs=: checked pages that later did not hold what was checked */
	uint64_t pte_lost; /* httucheck=1: pages the device wrote whose PTE is not accessed+dirty */
	uint64_t descs, device_descs; /* dma: descriptors submitted since the device's reset, and
					 what its COMPLETED register counts (equal: none lost, none
					 run twice) */
	uint64_t dirty_pages, young_pages;	/* dma: HTTU state of the destination PTEs */
	uint64_t remaps, remapped_pages, stale; /* remap */
	uint64_t mapped_on_demand, aborted;	/* sva */
	uint64_t ste_toggles;			/* sva stetoggle=1 */
	uint64_t cases, passed;			/* hostile */
	uint64_t irqs; /* completion MSIs received (one per batch is asked for) */
};

extern struct dev_result dev_result;

/* Probes and brings up both drivers once per boot; false (message printed) without them. */
bool devices_up(void);
/* SSID 0's address space (untagged traffic, no stall). */
struct smmu_as *dev_as0(void);

bool step_dma_run(void);
bool step_remap_run(void);
bool step_sva_run(void);
bool step_hostile_run(void);

#endif
