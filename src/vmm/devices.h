/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The machine's passthrough side, assembled as a VMM on real hardware would (through
 * host/iommufd.h and host/vfio.h only):
 *
 *   iommufd context, one IOAS with guest RAM mapped at IOVA = GPA (both regions around the
 *   hole) and the MSI window (VMIG_MSI_WINDOW) mapped to a host doorbell;
 *   a paging HWPT, NEST_PARENT (+ DIRTY_TRACKING when the host has it): the host's stage 2;
 *   the sdma device bound and attached to it, BAR0 at VMIG_SDMA_BAR0 (vfio_dev.h);
 *   the guest-visible vSMMUv3 at VMIG_VSMMU_BASE, its nested bridge on the parent HWPT,
 *   the device behind virtual StreamID VMIG_SDMA_SID (vIOMMU + vDEVICE, nested HWPTs
 *   from the guest's STEs);
 *   one event-loop thread for the host fds: MSI window records -> KVM_SIGNAL_MSI, the
 *   vEVENTQ and the fault queue -> the guest's event queue.
 *
 * The nested MSI path: the device writes its MSI to an IOVA; the guest's stage 1 maps it to
 * an IPA in the MSI window; the host's stage 2 maps that window to the doorbell whose
 * records this thread injects with address = IPA, data = the written value.
 */
#ifndef VMIG_VMM_DEVICES_H
#define VMIG_VMM_DEVICES_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/machine.h"
#include "vmm/smmuv3/nested.h"
#include "vmm/smmuv3/vsmmu.h"
#include "vmm/smmuv3/vsmmu_mig.h"
#include "vmm/vfio/device_dirty.h"
#include "vmm/vfio/vfio_dev.h"
#include "vmm/vfio/vfio_mig.h"

struct migration;

struct devices_config {
	const char *sdma_name;	      /* host VFIO device; NULL: "sdma0" */
	uint64_t sdma_bar0_gpa;	      /* 0: VMIG_SDMA_BAR0 */
	uint32_t sdma_vsid;	      /* 0: VMIG_SDMA_SID */
	enum vfio_doorbell_path path; /* initial doorbell path (FAST = 0) */
	bool no_dirty_tracking;	      /* do not ask for a DIRTY_TRACKING stage 2 */
};

struct devices {
	struct machine *m;
	struct iommufd_ctx *ictx;
	uint32_t ioas_id, parent_hwpt_id;
	bool dirty_tracking; /* the parent HWPT tracks dirty pages */
	int msi_fd;
	struct vfio_dev *sdma;
	uint32_t sdma_vsid;
	struct vsmmu *vsmmu;
	struct vsmmu_nested *nested;
	bool vsmmu_on_bus;
	struct vsmmu_attrs attrs; /* the vIOMMU attributes queried at start of day */

	pthread_t loop;
	bool loop_live;
	int stop_fd; /* wakes the loop to look at the flags below */
	pthread_mutex_t loop_lock;
	pthread_cond_t loop_cond;
	bool loop_park, loop_parked, loop_quit;
	/* Migration sections (devices_migration_register). */
	struct vsmmu_mig *vsmmu_mig;
	struct device_dirty *dirty;
	struct vfio_dev_mig *sdma_mig;

	uint64_t msis;	     /* injected from the MSI window */
	uint64_t msi_errors; /* records KVM refused or that were malformed */
};

/* Builds everything on m (before or after machine_start). Logs and returns -errno. */
int devices_create(struct machine *m, const struct devices_config *cfg, struct devices **out);
/*
 * Migration's hold on the event loop: quiesce parks it (returns once it injects nothing
 * more: no MSI, no vSMMU event or fault record reaches the guest), drain delivers what the
 * host queued meanwhile on the caller's thread (after the device stopped, before the
 * vSMMU and the irqchip are saved), resume lets it run again (roll-back, destination).
 */
void devices_quiesce(struct devices *d);
void devices_drain(struct devices *d);
void devices_resume(struct devices *d);

/*
 * Joins mig (devices_mig.c): the vSMMU, device dirty tracking (forced: a strategy, or
 * AUTO), the sdma device, the event loop. Logs and returns -errno.
 */
int devices_migration_register(struct devices *d, struct migration *mig,
			       enum device_dirty_strategy forced);
/* Frees the section states; after migration_destroy(). devices_destroy() calls it. */
void devices_migration_free(struct devices *d);

/* Stops the loop, takes the devices off the bus, destroys host objects, closes fds. */
void devices_destroy(struct devices *d);

struct devices_stats {
	uint64_t msis, msi_errors;
	struct vsmmu_stats vsmmu;
	struct vsmmu_nested_stats nested;
	struct vfio_dev_stats sdma;
};
void devices_get_stats(struct devices *d, struct devices_stats *st);

#endif
