/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host-side view of the iommufd model: creating the host's iommu instance over an SMMU
 * (the host SMMU driver: it owns the stream table and the event queue), and making it the
 * one iommufd_open() finds. Not for src/vmm (it uses src/host/iommufd.h only).
 */
#ifndef VMIG_HOST_IOMMU_IOMMUFD_HOST_H
#define VMIG_HOST_IOMMU_IOMMUFD_HOST_H

#include <stdint.h>

#include "host/iommu/smmu.h"
#include "host/iommufd.h"

/*
 * Takes over the SMMU: installs a 2-level stream table (every SID starts invalid:
 * C_BAD_STREAMID until a device is bound), the event handler, and enables it.
 */
struct iommufd_host *iommufd_host_create(struct smmu *smmu);
/* All contexts must have been closed. */
void iommufd_host_destroy(struct iommufd_host *host);
/* Makes host the instance iommufd_open() uses (NULL: none). */
void iommufd_host_set_default(struct iommufd_host *host);

struct iommufd_host_stats {
	uint64_t events;	  /* events the SMMU reported */
	uint64_t vevents;	  /* forwarded to a vEVENTQ */
	uint64_t vevents_lost;	  /* dropped because a vEVENTQ was full */
	uint64_t faults;	  /* stalls delivered to a fault queue */
	uint64_t stalls_aborted;  /* stalls nobody could answer (no or full queue) */
	uint64_t msis, msis_lost; /* MSI window records */
};
void iommufd_host_get_stats(struct iommufd_host *host, struct iommufd_host_stats *st);

/*
 * The whole host IOMMU side in one call, for whoever assembles the modelled host (the
 * VMM's main, demos, system tests): host memory, an SMMU with default parameters (or
 * params), and its iommufd instance, made the default for iommufd_open(). Devices get
 * sys->smmu for their DMA (smmu_dma.h) and bind through iommufd_device_bind().
 */
struct host_iommu_system {
	struct hostmem *hm;
	struct smmu *smmu;
	struct iommufd_host *host;
};
int host_iommu_system_create(struct host_iommu_system *sys, const struct smmu_params *params);
/* All iommufd contexts must be closed first. */
void host_iommu_system_destroy(struct host_iommu_system *sys);

#endif
