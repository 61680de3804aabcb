// SPDX-License-Identifier: Apache-2.0
/*
 * The migration's timeline: one record per pre-copy pass, kept by the source so that a
 * migration can be looked at afterwards (query-vmig-timeline, vmig migrate --timeline,
 * scripts/plot-migration). The dirty pages of each pass are split by who wrote them: the
 * vCPUs (KVM's log), the VMM (its own writes into guest RAM), the device (device-DMA
 * dirty tracking), as deltas of the running totals since the previous record.
 */
#include <stdlib.h>
#include <string.h>

#include "vmm/migration/internal.h"

static uint64_t tl_delta(uint64_t now, uint64_t *prev)
{
	uint64_t d = now > *prev ? now - *prev : 0;

	*prev = now;
	return d;
}

/* Under lock: the dirty pages since the previous record, by writer. */
static void tl_dirty(struct migration *mig, uint64_t dev_total, struct mig_pass_record *r)
{
	uint64_t vcpus, vmm;

	mig_ram_dirty_sources(mig->ram, &vcpus, &vmm);
	r->dirty_vcpu_pages = tl_delta(vcpus, &mig->tl_vcpu0);
	r->dirty_vmm_pages = tl_delta(vmm, &mig->tl_vmm0);
	r->dirty_device_pages = tl_delta(dev_total, &mig->tl_dev0);
}

void mig_timeline_note(struct migration *mig, struct mig_pass_record *r)
{
	struct mig_info info = {0};

	mig_query_sections(mig, &info); /* outside the lock: sections take their own */
	pthread_mutex_lock(&mig->lock);
	if (!mig->timeline)
		mig->timeline = calloc(MIG_TIMELINE_MAX, sizeof(*mig->timeline));
	tl_dirty(mig, info.device.dirty_pages, r);
	if (mig->timeline)
		mig->timeline[mig->timeline_n < MIG_TIMELINE_MAX ? mig->timeline_n++
								 : MIG_TIMELINE_MAX - 1] = *r;
	pthread_mutex_unlock(&mig->lock);
}

/* Under lock, at a run's start. */
void mig_timeline_reset(struct migration *mig)
{
	mig->timeline_n = 0;
	mig->tl_vcpu0 = mig->tl_vmm0 = mig->tl_dev0 = 0;
	if (mig->ram)
		mig_ram_dirty_sources(mig->ram, &mig->tl_vcpu0, &mig->tl_vmm0);
}

size_t migration_timeline(struct migration *mig, struct mig_pass_record *out, size_t max)
{
	pthread_mutex_lock(&mig->lock);
	size_t n = mig->timeline_n;
	if (out && mig->timeline)
		memcpy(out, mig->timeline, sizeof(*out) * (n < max ? n : max));
	pthread_mutex_unlock(&mig->lock);
	return n;
}
