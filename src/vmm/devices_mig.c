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
#include <time.h>

#include "common/log.h"
#include "vmm/devices.h"
#include "vmm/migration/migration.h"
#include "vmm/migration/section.h"

/* What the host queued reaches the guest now: no fault record stays in a host queue. */
static unsigned devices_mig_flush_faults(struct devices *d)
{
	devices_quiesce(d);
	devices_drain(d);
	devices_resume(d);
	return vsmmu_stall_count(d->vsmmu);
}

/*
 * The devices are drained and take no new work (P2P), the vCPUs still run: a fault their
 * last accesses raised may still sit in a host queue or wait for the guest's answer (a
 * stall the device itself already gave up). Every one of them is delivered and answered
 * before the vCPUs stop: a stall would otherwise travel to a host that knows nothing of it.
 */
static int devices_mig_quiesce(struct mig_section *s)
{
	struct devices *d = s->state;
	struct timespec pause = {0, 500000};
	unsigned stalls;

	while ((stalls = devices_mig_flush_faults(d)) > 0) {
		if (mig_failing(s->mig))
			return -ECANCELED;
		if (mig_now_ns() >= mig_drain_deadline_ns(s->mig)) {
			mig_set_error(s->mig,
				      "the guest did not answer %u I/O page faults of the device's "
				      "last accesses within the drain limit (x-vmig-drain-limit); "
				      "the guest goes on here",
				      stalls);
			return -ETIMEDOUT;
		}
		nanosleep(&pause, NULL);
	}
	return 0;
}

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
    .quiesce = devices_mig_quiesce,
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
