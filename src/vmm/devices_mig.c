// SPDX-License-Identifier: Apache-2.0
/*
 * The passthrough side joins a migration: the vSMMU's section, device-DMA dirty tracking
 * of the device set, each device's VFIO section, and the event loop's own part: once the
 * devices stopped (STOP_COPY), the loop is parked and what the host queued (MSIs, vEVENTQ
 * records, faults) is delivered into the guest-visible state on the migration thread,
 * before the final harvest and before the vSMMU, the irqchip and the vCPUs are saved.
 * Anything delivered after its component was saved would be lost.
 */
#include <errno.h>
#include <string.h>

#include "common/log.h"
#include "vmm/devices.h"
#include "vmm/migration/migration.h"
#include "vmm/migration/section.h"

static int devices_mig_stop(struct mig_section *s)
{
	struct devices *d = s->state;

	devices_quiesce(d);
	devices_drain(d);
	return 0;
}

/* Roll-back or not, the loop runs again: a stopped device queues nothing more. */
static void devices_mig_cleanup(struct mig_section *s, bool failed)
{
	devices_resume(s->state);
}

static const struct mig_section_ops devices_loop_ops = {
    .name = "devices",
    .stop = devices_mig_stop,
    .cleanup = devices_mig_cleanup,
};

/* The loop section goes last: its stop runs after every device's. */
#define DEVICES_MIG_LOOP_ID (MIG_SEC_VFIO + MIG_SEC_VFIO_MAX - 1)

int devices_migration_register(struct devices *d, struct migration *mig,
			       enum device_dirty_strategy forced)
{
	struct device_dirty_config dc = {.ictx = d->ictx,
					 .mem = d->m->mem,
					 .s2_hwpt_id = d->parent_hwpt_id,
					 .s2_dirty = d->dirty_tracking,
					 .vdev = vfio_dev_vfio(d->sdma),
					 .vs = d->vsmmu,
					 .vsid = d->sdma_vsid,
					 .aperture_bits = d->attrs.input_bits};
	int ret = vsmmu_mig_register(mig, d->vsmmu, &d->vsmmu_mig);

	if (ret == 0)
		ret = device_dirty_register(mig, &dc, &d->dirty);
	/* --device-dirty is the parameter's starting value; QMP may change it. */
	struct mig_params p = {.x_vmig_device_dirty = forced};
	if (ret == 0)
		ret = migration_set_params(mig, &p, MIG_PARAM_X_VMIG_DEVICE_DIRTY, NULL, 0);
	if (ret == 0)
		ret = vfio_dev_mig_register(mig, d->sdma, 0, &d->sdma_mig);
	if (ret == 0)
		ret = migration_register_section(mig, &devices_loop_ops, DEVICES_MIG_LOOP_ID, d);
	if (ret < 0)
		log_error("devices: cannot join migration: %s", strerror(-ret));
	return ret;
}

void devices_migration_free(struct devices *d)
{
	vsmmu_mig_free(d->vsmmu_mig);
	device_dirty_free(d->dirty);
	vfio_dev_mig_free(d->sdma_mig);
	d->vsmmu_mig = NULL;
	d->dirty = NULL;
	d->sdma_mig = NULL;
}
