/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The nested bridge: a vSMMU's streams backed by host devices through iommufd (and only
 * iommufd.h). One vIOMMU on the host's nesting-parent stage 2, one vDEVICE per guest
 * StreamID, and for each stream a nested HWPT built from the guest's vSTE words.
 *
 *   guest CFGI_STE/CFGI_ALL       -> nested HWPT from the vSTE, device moved onto it
 *   guest TLBI_NH_*, NSNH_ALL,    -> IOMMU_HWPT_INVALIDATE on the vIOMMU, batched
 *         CFGI_CD(_ALL), ATC_INV
 *   host vEVENTQ records          -> guest event queue (vSID already in the record)
 *   host stall faults (fault fd)  -> guest event queue, Stall=1 with a guest STAG
 *   guest RESUME / STALL_TERM     -> page responses by cookie on the fault fd
 *
 * Host events arrive on two fds: call vsmmu_nested_poll() when either is readable (the
 * VMM's event loop), or let vsmmu_nested_start() run a small thread that does it.
 *
 * Lock order: the vSMMU's lock, then the bridge's. The poller never holds the bridge's
 * lock while it calls into the vSMMU.
 */
#ifndef VMIG_VMM_SMMUV3_NESTED_H
#define VMIG_VMM_SMMUV3_NESTED_H

#include <stdint.h>

#include "host/iommufd.h"
#include "vmm/smmuv3/vsmmu.h"

struct vsmmu_nested;

/*
 * Narrows cfg to what the host SMMU behind dev_id can do for a nested guest (its IDRs from
 * IOMMU_GET_HW_INFO): SSID bits, output (IPA) size, stall support and STALL_MAX, HTTU.
 * StreamIDs are virtual and stay as they are. Call before vsmmu_create().
 */
int vsmmu_nested_config_from_host(struct iommufd_ctx *ctx, uint32_t dev_id,
				  struct vsmmu_config *cfg);

struct vsmmu_nested_params {
	struct iommufd_ctx *ctx;
	uint32_t parent_hwpt_id; /* NEST_PARENT paging HWPT: the host's stage 2 (GPA -> host) */
	uint32_t veventq_depth;	 /* 0: 256 */
};

/*
 * Allocates the fault queue and becomes vs's bridge. The vIOMMU and its vEVENTQ are made
 * with the first device (the host needs one to allocate a vIOMMU).
 */
int vsmmu_nested_create(struct vsmmu *vs, const struct vsmmu_nested_params *p,
			struct vsmmu_nested **out);
/* Stops the thread, leaves vs without a bridge, puts devices back on the parent, frees. */
void vsmmu_nested_destroy(struct vsmmu_nested *n);

/*
 * Puts iommufd device dev_id behind guest StreamID vsid (vDEVICE) and installs the guest's
 * current configuration for it. -EEXIST vsid or device already present, -ENOSPC table
 * full, or the host's error.
 */
int vsmmu_nested_attach(struct vsmmu_nested *n, uint32_t vsid, uint32_t dev_id);
/* Back on the parent stage 2 alone; the vDEVICE and nested HWPT go. -ENOENT unknown vsid. */
int vsmmu_nested_detach(struct vsmmu_nested *n, uint32_t vsid);

/*
 * Drains the vEVENTQ and the fault queue into the guest (at most 256 records from each per
 * call). One poller at a time: the event loop or the service thread. Returns records handled.
 */
int vsmmu_nested_poll(struct vsmmu_nested *n);
/* The fds to watch (-1 while there is no vEVENTQ yet). */
void vsmmu_nested_fds(struct vsmmu_nested *n, int *veventq_fd, int *fault_fd);
/* A service thread that polls both fds. -EALREADY if running. */
int vsmmu_nested_start(struct vsmmu_nested *n);
void vsmmu_nested_stop(struct vsmmu_nested *n);

struct vsmmu_nested_stats {
	uint64_t hwpt_allocs;	 /* nested HWPTs made from guest vSTEs */
	uint64_t hwpt_reused;	 /* CFGI_STE with an unchanged vSTE: no new HWPT */
	uint64_t inv_calls;	 /* IOMMU_HWPT_INVALIDATE calls */
	uint64_t inv_cmds;	 /* commands they carried */
	uint64_t inv_errors;	 /* commands the host refused (skipped) */
	uint64_t vevents;	 /* host events given to the guest */
	uint64_t vevents_lost;	 /* LOST_EVENTS headers and sequence gaps */
	uint64_t faults;	 /* host stalls given to the guest */
	uint64_t faults_refused; /* stalls the guest could not take: answered INVALID at once */
	uint64_t responses;	 /* page responses written */
};
void vsmmu_nested_get_stats(struct vsmmu_nested *n, struct vsmmu_nested_stats *st);

#endif
