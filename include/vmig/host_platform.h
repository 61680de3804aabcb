/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The modelled host machine, as whoever starts vmig sees it: the host kernel's IOMMU
 * subsystem (a host SMMUv3 with its iommufd instance) and the passthrough devices it
 * exposes through VFIO. On a real host all of this exists before the VMM starts; here
 * the vmig process "boots" it first, then the VMM opens it only through
 * src/host/iommufd.h (iommufd_open) and src/host/vfio.h (vfio_device_open by name), like a
 * VMM on real hardware. This header is the seam between the two: it names no host
 * internals, so src/vmm may call it without seeing the model.
 */
#ifndef VMIG_HOST_PLATFORM_H
#define VMIG_HOST_PLATFORM_H

#include <stdbool.h>
#include <stdint.h>

#define HOST_PLATFORM_SDMA_NAME "sdma0"
#define HOST_PLATFORM_SDMA_PSID 0x100u /* the device's physical StreamID on the host SMMU */

struct host_platform;

struct host_platform_config {
	const char *sdma_name; /* NULL: HOST_PLATFORM_SDMA_NAME */
	uint32_t sdma_psid;    /* 0: HOST_PLATFORM_SDMA_PSID */
	bool no_stall;	       /* host SMMU without stall support (no I/O page faults) */
	bool no_httu;	       /* host SMMU without hardware dirty state (no DIRTY_TRACKING) */
	bool sdma_no_dma_log;  /* the sdma device without DMA logging */
	bool sdma_no_precopy;  /* the sdma device's migration without PRE_COPY */
};

/* Creates the host SMMU, makes its iommufd the default instance, creates the sdma device. */
int host_platform_boot(const struct host_platform_config *cfg, struct host_platform **out);
/* Every iommufd context and VFIO device must have been closed. */
void host_platform_shutdown(struct host_platform *hp);

/* What the host saw (tests, benchmarks, the summary line). */
struct host_platform_stats {
	uint64_t smmu_events;	 /* events the host SMMU reported */
	uint64_t vevents;	 /* forwarded to a vEVENTQ */
	uint64_t faults;	 /* stalls delivered to a fault queue */
	uint64_t stalls_aborted; /* stalls nobody could answer */
	uint64_t msis;		 /* writes that hit an MSI window */
	uint64_t msis_lost;
	uint64_t sdma_completed; /* descriptors the device completed */
	uint32_t sdma_pending;	 /* submitted, not started */
};
void host_platform_get_stats(struct host_platform *hp, struct host_platform_stats *st);

/*
 * The host administrator's view of a translation (Linux's IOMMU debugfs): what the host
 * SMMU would do with a DMA of the sdma device at iova (with PASID ssid when ssv), walking
 * its current configuration and tables, without any effect. status (of a read): 0
 * translated (ipa: the stage-1 output, pa), 1 fault (event: the event id), 2 abort; read
 * and write: whether a read and a write would succeed.
 */
struct host_platform_probe {
	unsigned status;
	uint8_t event;
	uint64_t ipa, pa;
	bool read, write;
};
int host_platform_probe_dma(struct host_platform *hp, bool ssv, uint32_t ssid, uint64_t iova,
			    struct host_platform_probe *out);

#endif
