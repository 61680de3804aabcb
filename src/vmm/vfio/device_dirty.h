/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Device-DMA dirty tracking for the machine's device set (MIGRATION.md, "Device-DMA dirty
 * tracking"): one migration section that picks a strategy at setup, starts it before any
 * section plans its first pass, and folds what it harvests into the RAM section's dirty
 * bitmap at every log sync (the last one after the devices stopped).
 *
 * Strategies (enum device_dirty_strategy); the one this host and device set allow is
 * chosen with the reason kept for query-migrate, or forced (--device-dirty, x-vmig-device-
 * dirty). Implemented: stage2 (the host IOMMU's hardware dirty bits on the nesting parent:
 * indexed by GPA, immune to guest remaps, and it sees the SMMU's own access/dirty updates
 * of the guest's stage-1 descriptors, which are stage-2 writes too), device-log
 * (device_log.h) and perpetual. stage1 needs a host stage-1 paging domain (not yet).
 */
#ifndef VMIG_VMM_VFIO_DEVICE_DIRTY_H
#define VMIG_VMM_VFIO_DEVICE_DIRTY_H

#include <stdbool.h>
#include <stdint.h>

struct migration;
struct vfio_device;
struct vsmmu;
struct guest_mem;
struct iommufd_ctx;

enum device_dirty_strategy {
	DEVICE_DIRTY_AUTO = 0,
	DEVICE_DIRTY_STAGE2,
	DEVICE_DIRTY_DEVICE_LOG,
	DEVICE_DIRTY_STAGE1,
	DEVICE_DIRTY_PERPETUAL,
	DEVICE_DIRTY__COUNT,
};

/* "auto", "stage2", ...; NULL out of range. */
const char *device_dirty_name(enum device_dirty_strategy s);
/* -EINVAL for an unknown name. */
int device_dirty_parse(const char *name, enum device_dirty_strategy *out);

struct device_dirty_config {
	struct iommufd_ctx *ictx;
	const struct guest_mem *mem; /* RAM regions: stage 2 maps them at IOVA = GPA */
	uint32_t s2_hwpt_id;	     /* the nesting parent */
	bool s2_dirty;		     /* it was allocated with DIRTY_TRACKING */
	/* device-log: the device, and the vIOMMU that translates its IOVAs (NULL: none). */
	struct vfio_device *vdev;
	struct vsmmu *vs;
	uint32_t vsid;
	unsigned aperture_bits; /* the vIOMMU's input size at start of day */
};

struct device_dirty;
int device_dirty_register(struct migration *mig, const struct device_dirty_config *cfg,
			  struct device_dirty **out);
void device_dirty_free(struct device_dirty *dd);

#endif
