/* SPDX-License-Identifier: Apache-2.0 */
/* Internals of the iommufd model (iommufd_*.c). */
#ifndef VMIG_HOST_IOMMU_IOMMUFD_INTERNAL_H
#define VMIG_HOST_IOMMU_IOMMUFD_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "host/iommu/iommufd_host.h"
#include "host/iommu/pgtable.h"

enum ifd_type {
	IFD_IOAS = 1,
	IFD_HWPT_PAGING,
	IFD_HWPT_NESTED,
	IFD_VIOMMU,
	IFD_VDEVICE,
	IFD_VEVENTQ,
	IFD_FAULT,
	IFD_DEVICE,
};

struct ifd_obj {
	enum ifd_type type;
	uint32_t id;
	int users; /* other objects or devices referring to this one */
	struct iommufd_ctx *ctx;
};

struct ifd_msi {
	struct iommufd_host *host;
	int rfd, wfd;
	uint64_t iova, len, pa;
};

struct ifd_area {
	uint64_t iova, len;
	uint64_t pa;   /* host PA: a file region or a doorbell */
	unsigned prot; /* PGT_R / PGT_W */
	struct ifd_msi *msi;
};

struct ifd_ioas {
	struct ifd_obj obj;
	struct ifd_area *areas; /* sorted by iova */
	unsigned n, cap;
};

struct ifd_hwpt_paging {
	struct ifd_obj obj;
	struct ifd_ioas *ioas;
	uint32_t flags;
	bool auto_domain, dirty_enabled;
	uint16_t vmid;
	struct pgtable pt;
};

struct ifd_veventq;
struct ifd_viommu {
	struct ifd_obj obj;
	struct ifd_hwpt_paging *parent;
	struct ifd_veventq *veventq;
};

struct ifd_device;
struct ifd_vdevice {
	struct ifd_obj obj;
	struct ifd_viommu *viommu;
	struct ifd_device *dev;
	uint64_t virt_id;
};

struct ifd_fault;
struct ifd_hwpt_nested {
	struct ifd_obj obj;
	struct ifd_viommu *viommu;
	uint64_t vste[2];
	struct ifd_fault *fault;
};

struct ifd_veventq {
	struct ifd_obj obj;
	struct ifd_viommu *viommu;
	int rfd, wfd;
	uint32_t depth, seq;
	bool lost;
};

struct ifd_pending {
	uint32_t cookie, sid, dev_id;
	uint16_t stag;
	bool used;
};

#define IFD_FAULT_MAX 256
struct ifd_fault {
	struct ifd_obj obj;
	int rfd, wfd;
	pthread_mutex_t lock;
	struct ifd_pending pend[IFD_FAULT_MAX];
	uint32_t next_cookie;
	struct ifd_fault *next_global; /* registry for iommufd_fault_write(fd) */
};

struct ifd_device {
	struct ifd_obj obj;
	uint32_t sid;
	struct ifd_obj *attached; /* HWPT paging or nested */
	struct ifd_vdevice *vdev;
	struct ifd_device *route_next; /* host route list (by sid) */
};

struct iommufd_ctx {
	struct iommufd_host *host;
	pthread_mutex_t lock;
	struct ifd_obj **objs; /* index = id - 1 */
	uint32_t nobjs;
};

struct iommufd_host {
	struct smmu *smmu;
	struct hostmem *hm;
	pthread_mutex_t lock; /* stream table, VMIDs */
	uint64_t l1_pa;
	uint64_t *l2_pa; /* per L1 index, 0 = none */
	unsigned sid_bits, split;
	uint64_t *vmids;
	/* Event routing: taken by the SMMU's event handler; never held across smmu_sync. */
	pthread_mutex_t route_lock;
	struct ifd_device *routes;
	struct iommufd_host_stats stats;
	/* Fault-queue service thread: reads page responses written on fault fds. */
	int svc_epfd, svc_stopfd;
	bool svc_on;
	pthread_t svc;
};

#define IFD_SPLIT 8

/* iommufd_main.c */
int ifd_obj_add(struct iommufd_ctx *ctx, struct ifd_obj *obj, enum ifd_type type);
struct ifd_obj *ifd_obj_get(struct iommufd_ctx *ctx, uint32_t id, enum ifd_type type);
void ifd_obj_remove(struct iommufd_ctx *ctx, struct ifd_obj *obj);

/* iommufd_hostdrv.c: the host SMMU driver */
int ifd_ste_write(struct iommufd_host *host, uint32_t sid, const uint64_t ste[8]);
void ifd_ste_clear(struct iommufd_host *host, uint32_t sid);
void ifd_cmd(struct iommufd_host *host, struct smmu_cmd cmd);
/* The SMMU keeps hardware dirty state (IDR0.HTTU = 2): dirty tracking is possible. */
bool ifd_host_dirty(struct iommufd_ctx *ctx);
void ifd_sync(struct iommufd_host *host);
int ifd_vmid_alloc(struct iommufd_host *host, uint16_t *vmid);
void ifd_vmid_free(struct iommufd_host *host, uint16_t vmid);
void ifd_route_add(struct iommufd_host *host, struct ifd_device *dev);
void ifd_route_del(struct iommufd_host *host, struct ifd_device *dev);

/* iommufd_ioas.c */
int ifd_hwpt_paging_new(struct iommufd_ctx *ctx, struct ifd_ioas *ioas, uint32_t flags,
			bool auto_domain, struct ifd_hwpt_paging **out);
void ifd_ioas_destroy(struct iommufd_ctx *ctx, struct ifd_ioas *ioas);
void ifd_hwpt_paging_destroy(struct iommufd_ctx *ctx, struct ifd_hwpt_paging *hp);
void ifd_ste_for_paging(const struct ifd_hwpt_paging *hp, uint64_t ste[8]);

/* iommufd_nest.c */
int ifd_hwpt_nested_alloc(struct iommufd_ctx *ctx, struct iommu_hwpt_alloc *cmd);
void ifd_ste_for_nested(const struct ifd_hwpt_nested *hn, uint64_t ste[8]);
void ifd_viommu_destroy(struct iommufd_ctx *ctx, struct ifd_viommu *v);
void ifd_vdevice_destroy(struct iommufd_ctx *ctx, struct ifd_vdevice *vd);
void ifd_hwpt_nested_destroy(struct iommufd_ctx *ctx, struct ifd_hwpt_nested *hn);
void ifd_veventq_destroy(struct iommufd_ctx *ctx, struct ifd_veventq *q);
/* Event routing helpers, called with route_lock held. */
void ifd_veventq_push(struct iommufd_host *host, struct ifd_veventq *q, uint64_t vsid,
		      const struct smmu_event *ev);

/* iommufd_fault.c */
void ifd_fault_destroy(struct iommufd_ctx *ctx, struct ifd_fault *f);
/* Queues a stall as a fault group; false if it could not (caller aborts the stall). */
bool ifd_fault_deliver(struct iommufd_host *host, struct ifd_fault *f, struct ifd_device *dev,
		       const struct smmu_event *ev);
int ifd_svc_start(struct iommufd_host *host);
/* Stops the fault-queue service thread (host destroy). */
void ifd_svc_stop(struct iommufd_host *host);
void ifd_msi_doorbell(void *opaque, uint64_t offset, const void *data, size_t len, uint32_t sid);
void ifd_msi_free(struct ifd_msi *m);

/* iommufd_device.c */
int ifd_device_destroy(struct iommufd_ctx *ctx, struct ifd_device *dev);

#endif
