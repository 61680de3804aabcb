/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The driver side of the modelled VFIO core (host-internal; src/vmm must not include it).
 * A driver embeds struct vfio_device, fills in its ops and registers it; the core does
 * the uAPI part: argument checks, feature dispatch, the migration state machine with the
 * kernel's combination rule (one arc at a time into ops->mig_arc), the data_fd sessions
 * and the DMA-logging argument checks and range combining.
 */
#ifndef VMIG_HOST_VFIO_DRV_H
#define VMIG_HOST_VFIO_DRV_H

#include "host/vfio.h"

#include <pthread.h>
#include <stdbool.h>

struct vfio_log_range {
	uint64_t iova;
	uint64_t length;
};

struct vfio_device_ops {
	/* Region access; offset + len already checked against the region's size. */
	ssize_t (*region_rw)(struct vfio_device *dev, uint32_t index, uint64_t offset, void *buf,
			     size_t len, bool write);
	/* Function-level reset (the core resets the migration state to RUNNING). */
	int (*reset)(struct vfio_device *dev);
	/*
	 * One base arc cur -> next. Saving arcs append data with vfio_mig_emit(); RESUMING ->
	 * STOP reads vfio_mig_resume_data(). A failure leaves the state at cur, except a failed
	 * RESUMING -> STOP, which the core turns into ERROR.
	 */
	int (*mig_arc)(struct vfio_device *dev, uint32_t cur, uint32_t next);
	/* Bytes STOP_COPY would still produce. */
	int (*mig_data_size)(struct vfio_device *dev, uint64_t *len);
	/* PRE_COPY: append data that became dirty since the last call (may append nothing). */
	void (*mig_precopy_refresh)(struct vfio_device *dev);
	/* RESUMING: check what was received so far; -errno rejects the write that added it. */
	int (*mig_resume_check)(struct vfio_device *dev, const uint8_t *data, size_t len);
	/* DMA logging; NULL log_start means the device has no DMA logging (ENOTTY). */
	int (*log_start)(struct vfio_device *dev, const struct vfio_log_range *ranges,
			 uint32_t nranges, uint64_t *page_size);
	int (*log_stop)(struct vfio_device *dev);
	int (*log_report)(struct vfio_device *dev, uint64_t iova, uint64_t length,
			  uint64_t page_size, uint64_t *bitmap);
	int (*get_doorbell)(struct vfio_device *dev, uint32_t *region, uint64_t *offset,
			    uint32_t *width, int *eventfd);
	/* Called by vfio_device_unregister() after the core let go of the device. */
	void (*release)(struct vfio_device *dev);
};

#define VFIO_MAX_REGIONS 4

struct vfio_mig_session;

struct vfio_device {
	const struct vfio_device_ops *ops;
	char name[32];
	uint32_t num_regions;
	struct vfio_region_info regions[VFIO_MAX_REGIONS]; /* index, size, flags */
	uint64_t mig_flags;				   /* 0: no migration support (ENOTTY) */
	uint32_t log_max_ranges; /* device range limit; the core combines down to it */
	uint32_t sid;		 /* the physical StreamID, for iommufd binding */

	/* iommufd binding (VFIO_DEVICE_BIND_IOMMUFD / ATTACH_IOMMUFD_PT). */
	struct iommufd_ctx *ictx;
	uint32_t iommufd_dev_id;
	bool attached;

	/* Core-owned from here on. */
	pthread_mutex_t lock; /* serialises uAPI calls, as the kernel's state mutex does */
	uint32_t mig_state;
	struct vfio_mig_session *session;
	bool open;
	struct vfio_device *next;
};

/* Registration: the name must be unique; -EEXIST otherwise. */
int vfio_device_register(struct vfio_device *dev);
/* Ends any session and removes the device from the registry; then ops->release. */
void vfio_device_unregister(struct vfio_device *dev);

/* Saving data (callable from mig_arc and mig_precopy_refresh). */
int vfio_mig_emit(struct vfio_device *dev, const void *data, size_t len);
/* Marks what was emitted so far as the pre-copy initial data. */
void vfio_mig_emit_mark_initial(struct vfio_device *dev);
/* Marks the end of the saving stream: STOP_COPY reads return 0 once drained. */
void vfio_mig_emit_end(struct vfio_device *dev);
/* RESUMING: everything received so far (drains the fd first). */
int vfio_mig_resume_data(struct vfio_device *dev, const uint8_t **data, size_t *len);

/* The kernel's vfio_mig_get_next_state(): next arc towards new, or -EINVAL. */
int vfio_mig_next_state(uint64_t mig_flags, uint32_t cur, uint32_t new_state, uint32_t *next);

/*
 * Fits ranges (sorted, non-overlapping) into max by merging the adjacent pair with the
 * smallest gap, repeatedly. In place; returns the new count.
 */
uint32_t vfio_log_combine_ranges(struct vfio_log_range *ranges, uint32_t n, uint32_t max);

#endif
