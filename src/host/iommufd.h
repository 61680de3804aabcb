/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host's iommufd, as the VMM sees it: the operations, structures and error codes of
 * Linux's <linux/iommufd.h> (6.13+), under their Linux names where a structure is passed
 * and as iommufd_<object>_<verb>() functions where Linux has an ioctl. A backend issuing
 * the real ioctls would implement this header unchanged. Everything returns 0 or a
 * negative errno; object ids are u32, never 0.
 *
 * Model specifics (all behind this interface):
 *  - paging HWPTs are stage-2 domains of the host SMMU (VMID each); dirty tracking uses
 *    stage-2 hardware dirty state (DBM + S2AP[1]), so a NEST_PARENT can also be
 *    DIRTY_TRACKING (Linux refuses that on SMMUv3; the hardware here supports it); a
 *    DIRTY_TRACKING HWPT maps with 4 KiB pages only (other HWPTs use 2 MiB/1 GiB blocks
 *    where aligned), so the dirty log has page granularity;
 *  - memory is mapped with iommufd_ioas_map_file() from a memfd (IOMMU_IOAS_MAP_FILE);
 *  - iommufd_ioas_map_msi_window() maps an MSI doorbell window into an IOAS and returns
 *    an fd of struct iommufd_msi_record: the VMM injects them (KVM_SIGNAL_MSI);
 *  - the fault queue fd is a packet socket: read() returns one struct iommu_hwpt_pgfault
 *    per call; write() takes struct iommu_hwpt_page_response records (a host thread
 *    applies them; bad ones are dropped), and iommufd_fault_write(fd, ...) does the same
 *    synchronously and reports errors as the kernel's write() would;
 *  - the fds handed out (vEVENTQ, fault queue, MSI window) belong to the caller, who
 *    closes them; destroying the object (or unmapping the window) ends the stream;
 *  - events: stage-1 faults and C_BAD_* of a device attached to a nested HWPT go to its
 *    vIOMMU's vEVENTQ with the vSID (needs a vDEVICE); stalls (CD.S) go to the nested
 *    HWPT's fault queue, or are aborted at once if it has none (and reported to the
 *    vEVENTQ as a plain fault); stage-2 faults stay in
 *    the host (trace point iommufd_event).
 */
#ifndef VMIG_HOST_IOMMUFD_H
#define VMIG_HOST_IOMMUFD_H

#include <stdint.h>
#include <sys/types.h>

struct iommufd_ctx;
struct iommufd_host; /* the host kernel's iommu subsystem instance (host side creates it) */

/* Opens a context on the host's default iommu instance (-ENODEV if there is none). */
int iommufd_open(struct iommufd_ctx **out);
/* Opens a context on a given instance (host-side code and tests). */
int iommufd_open_host(struct iommufd_host *host, struct iommufd_ctx **out);
/* Destroys every object (detaching devices first) and frees the context. */
void iommufd_close(struct iommufd_ctx *ctx);

/* IOMMU_DESTROY: -ENOENT unknown id, -EBUSY while other objects or devices use it. */
int iommufd_destroy(struct iommufd_ctx *ctx, uint32_t id);

/* ---- IOAS ---- */
#define IOMMU_IOAS_MAP_FIXED_IOVA (1u << 0)
#define IOMMU_IOAS_MAP_WRITEABLE  (1u << 1)
#define IOMMU_IOAS_MAP_READABLE	  (1u << 2)

int iommufd_ioas_alloc(struct iommufd_ctx *ctx, uint32_t *ioas_id);
/*
 * IOMMU_IOAS_MAP_FILE: maps [offset, offset+length) of memfd at *iova (FIXED_IOVA) or at an
 * IOVA the kernel picks (returned in *iova). Errors: -ENOENT bad ioas, -EOPNOTSUPP unknown
 * flags, -EINVAL unaligned/zero length/no permission/beyond the file, -EOVERFLOW wrap,
 * -EEXIST overlap, -EBADF bad fd.
 */
int iommufd_ioas_map_file(struct iommufd_ctx *ctx, uint32_t ioas_id, int memfd, uint64_t offset,
			  uint64_t length, uint64_t *iova, uint32_t flags);
/*
 * IOMMU_IOAS_UNMAP: removes every mapping inside [iova, iova+length) (0, UINT64_MAX: all);
 * a mapping only partly inside is -ENOENT, as is nothing mapped. *unmapped gets the bytes.
 */
int iommufd_ioas_unmap(struct iommufd_ctx *ctx, uint32_t ioas_id, uint64_t iova, uint64_t length,
		       uint64_t *unmapped);

/* MSI window: a DMA write into [iova, iova+length) of the IOAS becomes one record on *fd. */
struct iommufd_msi_record {
	uint64_t iova; /* address written (the IPA / IOVA inside the window) */
	uint32_t data; /* the 32-bit value written */
	uint32_t sid;  /* physical StreamID of the writer */
};
int iommufd_ioas_map_msi_window(struct iommufd_ctx *ctx, uint32_t ioas_id, uint64_t iova,
				uint64_t length, int *fd);

/* ---- HWPT ---- */
#define IOMMU_HWPT_ALLOC_NEST_PARENT	(1u << 0)
#define IOMMU_HWPT_ALLOC_DIRTY_TRACKING (1u << 1)
#define IOMMU_HWPT_FAULT_ID_VALID	(1u << 2)

enum iommu_hwpt_data_type {
	IOMMU_HWPT_DATA_NONE = 0,
	IOMMU_HWPT_DATA_VTD_S1 = 1,
	IOMMU_HWPT_DATA_ARM_SMMUV3 = 2,
};

/* The guest's vSTE words 0-1. */
struct iommu_hwpt_arm_smmuv3 {
	uint64_t ste[2];
};

struct iommu_hwpt_alloc {
	uint32_t size;
	uint32_t flags;
	uint32_t dev_id;
	uint32_t pt_id; /* IOAS (paging) or vIOMMU (nested) */
	uint32_t out_hwpt_id;
	uint32_t __reserved;
	uint32_t data_type;
	uint32_t data_len;
	uint64_t data_uptr;
	uint32_t fault_id;
	uint32_t __reserved2;
};

/*
 * Paging (pt_id = IOAS, data NONE): flags NEST_PARENT, DIRTY_TRACKING. Nested (pt_id =
 * vIOMMU, data ARM_SMMUV3): the vSTE is validated as Linux does: disallowed fields -EIO,
 * Config other than abort/bypass/S1 -EIO, V=0 is an abort STE. FAULT_ID_VALID only for
 * nested. -ENOENT unknown ids, -EOPNOTSUPP unknown flags/type, -EINVAL bad data length.
 */
int iommufd_hwpt_alloc(struct iommufd_ctx *ctx, struct iommu_hwpt_alloc *cmd);

#define IOMMU_HWPT_DIRTY_TRACKING_ENABLE 1u
/* Enabling clears the dirty state first (so a harvest sees only later writes). */
int iommufd_hwpt_set_dirty_tracking(struct iommufd_ctx *ctx, uint32_t hwpt_id, uint32_t flags);

#define IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR 1u
struct iommu_hwpt_get_dirty_bitmap {
	uint32_t size;
	uint32_t hwpt_id;
	uint32_t flags;
	uint32_t __reserved;
	uint64_t iova;
	uint64_t length;
	uint64_t page_size;
	uint64_t data; /* uint64_t bitmap address; bit i = [iova + i*page_size, +page_size) */
};
/*
 * Sets (never clears) the bits of pages written since the last harvest; clears their
 * dirty state unless NO_CLEAR. -EINVAL: page_size not a power of two >= 4 KiB, iova or
 * length unaligned or zero, tracking not enabled; -EOVERFLOW: iova+length wraps;
 * -EOPNOTSUPP: HWPT without DIRTY_TRACKING or unknown flags; -ENOENT: not a paging HWPT.
 */
int iommufd_hwpt_get_dirty_bitmap(struct iommufd_ctx *ctx,
				  const struct iommu_hwpt_get_dirty_bitmap *cmd);

#define IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3 1u
struct iommu_viommu_arm_smmuv3_invalidate {
	uint64_t cmd[2];
};
struct iommu_hwpt_invalidate {
	uint32_t size;
	uint32_t hwpt_id; /* the vIOMMU */
	uint64_t data_uptr;
	uint32_t data_type;
	uint32_t entry_len;
	uint32_t entry_num; /* in: entries; out: how many were handled */
	uint32_t __reserved;
};
/*
 * Forwards guest commands: TLBI_NH_VA/VAA/ALL/ASID (VMID forced), TLBI_NSNH_ALL (as
 * NH_ALL with the VMID), ATC_INV, CFGI_CD, CFGI_CD_ALL (vSID -> physical SID); anything
 * else, or an unknown vSID, stops with -EIO. entry_num returns the handled count.
 */
int iommufd_hwpt_invalidate(struct iommufd_ctx *ctx, struct iommu_hwpt_invalidate *cmd);

/* ---- vIOMMU, vDEVICE, vEVENTQ ---- */
#define IOMMU_VIOMMU_TYPE_ARM_SMMUV3 1u
struct iommu_viommu_alloc {
	uint32_t size;
	uint32_t flags;
	uint32_t type;
	uint32_t dev_id;
	uint32_t hwpt_id; /* a NEST_PARENT paging HWPT */
	uint32_t out_viommu_id;
};
int iommufd_viommu_alloc(struct iommufd_ctx *ctx, struct iommu_viommu_alloc *cmd);

struct iommu_vdevice_alloc {
	uint32_t size;
	uint32_t viommu_id;
	uint32_t dev_id;
	uint32_t out_vdevice_id;
	uint64_t virt_id; /* the guest's virtual StreamID */
};
/* -EEXIST if the device or the virt_id already has a vDEVICE on that vIOMMU. */
int iommufd_vdevice_alloc(struct iommufd_ctx *ctx, struct iommu_vdevice_alloc *cmd);

#define IOMMU_VEVENTQ_TYPE_ARM_SMMUV3  1u
#define IOMMU_VEVENTQ_FLAG_LOST_EVENTS (1u << 0)
struct iommu_veventq_alloc {
	uint32_t size;
	uint32_t flags;
	uint32_t viommu_id;
	uint32_t type;
	uint32_t veventq_depth;
	uint32_t out_veventq_id;
	int32_t out_veventq_fd;
	uint32_t __reserved;
};
/* Records read from the fd: a header, then (unless LOST_EVENTS) the event, vSID inside. */
struct iommufd_vevent_header {
	uint32_t flags;
	uint32_t sequence;
};
struct iommu_vevent_arm_smmuv3 {
	uint64_t evt[4];
};
int iommufd_veventq_alloc(struct iommufd_ctx *ctx, struct iommu_veventq_alloc *cmd);

/* ---- I/O page faults ---- */
struct iommu_fault_alloc {
	uint32_t size;
	uint32_t flags;
	uint32_t out_fault_id;
	int32_t out_fault_fd;
};
int iommufd_fault_alloc(struct iommufd_ctx *ctx, struct iommu_fault_alloc *cmd);

#define IOMMU_PGFAULT_FLAGS_PASID_VALID (1u << 0)
#define IOMMU_PGFAULT_FLAGS_LAST_PAGE	(1u << 1)
#define IOMMU_PGFAULT_PERM_READ		(1u << 0)
#define IOMMU_PGFAULT_PERM_WRITE	(1u << 1)
#define IOMMU_PGFAULT_PERM_EXEC		(1u << 2)
#define IOMMU_PGFAULT_PERM_PRIV		(1u << 3)
struct iommu_hwpt_pgfault {
	uint32_t flags;
	uint32_t dev_id;
	uint32_t pasid;
	uint32_t grpid;
	uint32_t perm;
	uint32_t __reserved;
	uint64_t addr;
	uint32_t length;
	uint32_t cookie;
};

enum iommufd_page_response_code {
	IOMMUFD_PAGE_RESP_SUCCESS = 0,
	IOMMUFD_PAGE_RESP_INVALID = 1,
};
struct iommu_hwpt_page_response {
	uint32_t cookie;
	uint32_t code;
};
/*
 * The write() of the fault fd, with its errors: whole iommu_hwpt_page_response records. SUCCESS
 * resumes the stalled transaction (it retries its translation), INVALID aborts it. Returns bytes
 * consumed; -EINVAL for a partial record, unknown cookie or bad code; -EBADF bad fd.
 */
ssize_t iommufd_fault_write(int fault_fd, const void *buf, size_t len);

/* ---- information ---- */
#define IOMMU_HW_INFO_TYPE_ARM_SMMUV3 2u
#define IOMMU_HW_CAP_DIRTY_TRACKING   (1ull << 0)
struct iommu_hw_info_arm_smmuv3 {
	uint32_t flags;
	uint32_t __reserved;
	uint32_t idr[6];
	uint32_t iidr;
	uint32_t aidr;
};
struct iommu_hw_info {
	uint32_t size;
	uint32_t flags;
	uint32_t dev_id;
	uint32_t data_len;
	uint64_t data_uptr;
	uint32_t out_data_type;
	uint32_t __reserved;
	uint64_t out_capabilities;
};
int iommufd_get_hw_info(struct iommufd_ctx *ctx, struct iommu_hw_info *cmd);

/* ---- devices (called by the host's VFIO core; a VMM goes through vfio.h) ---- */
/* Binds the physical device with StreamID sid: -EBUSY if bound, -EINVAL bad sid. */
int iommufd_device_bind(struct iommufd_ctx *ctx, uint32_t sid, uint32_t *dev_id);
/* Detaches if needed and unbinds. */
int iommufd_device_unbind(struct iommufd_ctx *ctx, uint32_t dev_id);
/*
 * Attaches to an IOAS (an automatic paging HWPT is made or reused and returned in
 * *pt_id), a paging HWPT or a nested HWPT. -EBUSY if already attached (use replace).
 */
int iommufd_device_attach(struct iommufd_ctx *ctx, uint32_t dev_id, uint32_t *pt_id);
/* Atomically moves an attached device to another pt_id (no blocked window). */
int iommufd_device_replace(struct iommufd_ctx *ctx, uint32_t dev_id, uint32_t *pt_id);
int iommufd_device_detach(struct iommufd_ctx *ctx, uint32_t dev_id);

#endif
