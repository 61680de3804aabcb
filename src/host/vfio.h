/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The VFIO device interface of the modelled host, as the VMM sees it. Each call stands for
 * one ioctl (or read/write on the device fd) of the Linux VFIO uAPI and takes the uAPI's
 * own structures from <linux/vfio.h>; it returns 0 (or a byte count) or the negative errno
 * the kernel would return. A backend on a real host would implement this header with the
 * ioctls and nothing else.
 *
 * Devices are created by the host model (e.g. sdma_create() in src/host/dev/sdma.h, which
 * registers the device under a name such as "sdma0"); the VMM opens them by name, as it
 * would open /dev/vfio/devices/vfioN.
 *
 * Migration data: the data_fd returned by VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE is a real
 * file descriptor (a stream socket, non-blocking, pollable for POLLIN). read() and write()
 * on it work for the bytes already queued; vfio_mig_data_read()/_write() add the kernel
 * semantics (PRE_COPY: -ENOMSG at a temporary end of data; STOP_COPY: 0 at the end;
 * RESUMING: any segmentation, early rejection of an incompatible stream). Close it with
 * vfio_mig_data_close().
 */
#ifndef VMIG_HOST_VFIO_H
#define VMIG_HOST_VFIO_H

#include <linux/vfio.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Parts of the migration v2 uAPI newer than the 6.1 uAPI headers (same values as Linux). */
#ifndef VFIO_MIGRATION_PRE_COPY
#define VFIO_MIGRATION_PRE_COPY	       (1 << 2)
#define VFIO_DEVICE_STATE_PRE_COPY     6
#define VFIO_DEVICE_STATE_PRE_COPY_P2P 7
struct vfio_precopy_info {
	uint32_t argsz;
	uint32_t flags;
	uint64_t initial_bytes;
	uint64_t dirty_bytes;
};
#define VFIO_MIG_GET_PRECOPY_INFO _IO(VFIO_TYPE, VFIO_BASE + 21)
#endif
#ifndef VFIO_DEVICE_FEATURE_MIG_DATA_SIZE
#define VFIO_DEVICE_FEATURE_MIG_DATA_SIZE 9
struct vfio_device_feature_mig_data_size {
	uint64_t stop_copy_length;
};
#endif
#define VFIO_DEVICE_STATE_COUNT 8

/* The kernel's bound on DMA-logging ranges per START (PAGE_SIZE / sizeof(range)). */
#define VFIO_LOG_MAX_RANGES (4096 / sizeof(struct vfio_device_feature_dma_logging_range))

struct vfio_device;
struct iommufd_ctx;

/*
 * Open a device the host model registered under name; -ENODEV if none, -EBUSY if open.
 * Closing it ends any migration session and unbinds it from iommufd, so close devices
 * before the iommufd context they are bound to.
 */
int vfio_device_open(const char *name, struct vfio_device **out);
void vfio_device_close(struct vfio_device *dev);

/* VFIO_DEVICE_GET_INFO, VFIO_DEVICE_GET_REGION_INFO (argsz checked as the kernel does). */
int vfio_device_get_info(struct vfio_device *dev, struct vfio_device_info *info);
int vfio_device_get_region_info(struct vfio_device *dev, struct vfio_region_info *info);

/* pread/pwrite on the device fd at a region's offset: returns len or -errno. */
ssize_t vfio_region_read(struct vfio_device *dev, uint32_t index, uint64_t offset, void *buf,
			 size_t len);
ssize_t vfio_region_write(struct vfio_device *dev, uint32_t index, uint64_t offset, const void *buf,
			  size_t len);

/* VFIO_DEVICE_RESET: also takes the migration state from anything (ERROR too) to RUNNING. */
int vfio_device_reset(struct vfio_device *dev);

/*
 * VFIO_DEVICE_FEATURE: arg->argsz covers the header and the data; GET/SET/PROBE in
 * arg->flags as in the uAPI. Supported: MIGRATION, MIG_DEVICE_STATE, MIG_DATA_SIZE,
 * DMA_LOGGING_START/STOP/REPORT (pointers in the structures are process addresses).
 */
int vfio_device_feature(struct vfio_device *dev, struct vfio_device_feature *arg);

/*
 * Doorbell fast path (not a Linux uAPI call: on real hardware the BAR is mapped into the
 * guest and the doorbell is a posted write). Returns an eventfd that the device's engine
 * polls; writing it (a KVM ioeventfd registered on BAR0 + *offset, length *width, without
 * datamatch) is a valueless doorbell: see hw/sdma_regs.h "Doorbell without a value". The fd
 * stays owned by the device; -ENOTTY if the device has no doorbell.
 */
int vfio_device_get_doorbell(struct vfio_device *dev, uint32_t *region, uint64_t *offset,
			     uint32_t *width, int *eventfd);

/*
 * VFIO_DEVICE_BIND_IOMMUFD: binds the device to an iommufd context and returns its
 * device id in that context; VFIO_DEVICE_ATTACH_IOMMUFD_PT / DETACH: attach to an IOAS,
 * paging HWPT or nested HWPT id (on success *pt_id is the HWPT actually attached); an
 * attached device is moved atomically (iommufd replace), as the kernel does. -EBUSY for a
 * second bind, -EINVAL to attach/detach an unbound (or detach an unattached) device.
 */
int vfio_device_bind_iommufd(struct vfio_device *dev, struct iommufd_ctx *ictx, uint32_t *dev_id);
int vfio_device_attach_pt(struct vfio_device *dev, uint32_t *pt_id);
int vfio_device_detach_pt(struct vfio_device *dev);

/* Migration data_fd operations (see the top of this file). */
ssize_t vfio_mig_data_read(int data_fd, void *buf, size_t len);
ssize_t vfio_mig_data_write(int data_fd, const void *buf, size_t len);
int vfio_mig_get_precopy_info(int data_fd, struct vfio_precopy_info *info);
int vfio_mig_data_close(int data_fd);

/* Names for traces and messages: "RUNNING", "PRE_COPY_P2P", ... ("?" when out of range). */
const char *vfio_mig_state_name(uint32_t state);

#endif
