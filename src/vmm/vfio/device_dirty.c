// SPDX-License-Identifier: Apache-2.0
/* Device-DMA dirty tracking of the device set (device_dirty.h). */
#include "vmm/vfio/device_dirty.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/bitmap.h"
#include "common/util.h"
#include "common/trace.h"
#include "host/iommufd.h"
#include "vmm/guest_mem.h"
#include "vmm/migration/migration.h"
#include "vmm/migration/section.h"
#include "vmm/smmuv3/vsmmu.h"
#include "vmm/vfio/device_log.h"

static const char *const dd_names[DEVICE_DIRTY__COUNT] = {
    [DEVICE_DIRTY_AUTO] = "auto",
    [DEVICE_DIRTY_STAGE2] = "stage2",
    [DEVICE_DIRTY_DEVICE_LOG] = "device-log",
    [DEVICE_DIRTY_STAGE1] = "stage1",
    [DEVICE_DIRTY_PERPETUAL] = "perpetual",
};

const char *device_dirty_name(enum device_dirty_strategy s)
{
	return (unsigned)s < DEVICE_DIRTY__COUNT ? dd_names[s] : NULL;
}

int device_dirty_parse(const char *name, enum device_dirty_strategy *out)
{
	for (unsigned i = 0; i < DEVICE_DIRTY__COUNT; i++) {
		if (strcmp(name, dd_names[i]) == 0) {
			*out = (enum device_dirty_strategy)i;
			return 0;
		}
	}
	return -EINVAL;
}

struct device_dirty {
	struct device_dirty_config cfg;
	enum device_dirty_strategy active; /* AUTO: none running */
	enum device_dirty_strategy chosen; /* the last migration's, for query-migrate */
	char why[160];
	uint64_t *bits; /* one region's harvest */
	uint64_t dirty_pages, harvests, harvest_ns;
	bool stopped; /* the devices stopped: the next log_sync is the final one */
	struct migration *mig;
	/* device-log: harvested from the migration thread and before forwards (vCPUs). */
	pthread_mutex_t mu;
	struct device_log *log;
	int log_err;	   /* a failed harvest breaks the log for the rest of the migration */
	bool reference;	   /* stage 2 read alongside device-log (benchmark) */
	bool reference_on; /* its stage-2 tracking is enabled (cleanup turns it off) */
	uint64_t reference_pages; /* what it saw, harvest by harvest */
};

/* Test seam for the negative control: harvest, but tell the RAM section nothing. */
static bool dd_test_blind(void)
{
	const char *v = getenv("VMIG_TEST_NO_DEVICE_DIRTY");
	return v && strcmp(v, "1") == 0;
}

/* Choice ---------------------------------------------------------------------------------- */

static void dd_pick(struct device_dirty *dd, enum device_dirty_strategy how, const char *why)
{
	dd->active = dd->chosen = how;
	snprintf(dd->why, sizeof(dd->why), "%s", why);
}

static bool dd_can_log(const struct device_dirty *dd)
{
	return dd->cfg.vdev && dd->cfg.vs && device_log_supported(dd->cfg.vdev);
}

/* A forced strategy this host and device set cannot do: why, or NULL when it can. */
static const char *dd_cannot(const struct device_dirty *dd, enum device_dirty_strategy want)
{
	if (want == DEVICE_DIRTY_STAGE2 && !dd->cfg.s2_dirty)
		return "the host IOMMU has no hardware dirty bits on the device's stage 2";
	if (want == DEVICE_DIRTY_DEVICE_LOG && !dd_can_log(dd))
		return "the device has no DMA logging";
	if (want == DEVICE_DIRTY_STAGE1)
		return "it is not implemented yet (auto, stage2, device-log and perpetual are)";
	return NULL;
}

/*
 * The best the host and the device set allow, in MIGRATION.md's order: stage-2 hardware
 * dirty bits (exact, by GPA), the device's DMA log (by IOVA, translated), else perpetual
 * (always possible, paid for in the downtime).
 */
static int dd_choose(struct device_dirty *dd, struct migration *mig)
{
	struct mig_params p;

	migration_get_params(mig, &p);
	enum device_dirty_strategy want = (enum device_dirty_strategy)p.x_vmig_device_dirty;
	const char *no = want == DEVICE_DIRTY_AUTO ? NULL : dd_cannot(dd, want);

	if (no) {
		mig_set_error(mig, "device dirty tracking: %s was asked for, but %s",
			      device_dirty_name(want), no);
		return -EOPNOTSUPP;
	}
	if (want != DEVICE_DIRTY_AUTO)
		dd_pick(dd, want, "forced");
	else if (dd->cfg.s2_dirty)
		dd_pick(dd, DEVICE_DIRTY_STAGE2,
			"the host IOMMU tracks dirty pages on the nesting parent (stage 2)");
	else if (dd_can_log(dd))
		dd_pick(dd, DEVICE_DIRTY_DEVICE_LOG,
			"the host IOMMU has no dirty bits on stage 2; the device logs its DMA, "
			"translated through the guest's stage 1");
	else
		dd_pick(dd, DEVICE_DIRTY_PERPETUAL,
			"the host IOMMU has no dirty bits on stage 2 and the device no DMA log: "
			"every page the device can reach goes in the stop-copy");
	return 0;
}

/* Perpetual --------------------------------------------------------------------------------- */

/*
 * "Every page the device may write": behind a translating vIOMMU the guest can map a page,
 * let the device write it and unmap it between any two looks the VMM takes at its tables,
 * so only what stage 2 lets the device reach is safe: all guest RAM that holds data (a
 * never-written page is zeros on both sides). It is not resent every pass: it goes once,
 * at the final sync (the device has stopped), and the expected downtime counts it.
 */
/*
 * Calls fn for each extent of region r that holds data: a never-written extent of the memfd
 * is zeros here and on the fresh destination alike, whoever could have written it. Returns
 * the bytes in those extents.
 */
static uint64_t dd_data_extents(const struct guest_mem *gm, const struct guest_mem_region *r,
				void (*fn)(struct migration *, uint64_t, uint64_t),
				struct migration *mig)
{
	uint64_t off = 0, bytes = 0;

	while (off < r->size) {
		off_t data = lseek(gm->fd, (off_t)(r->offset + off), SEEK_DATA);
		if (data < 0 || (uint64_t)data >= r->offset + r->size)
			break;
		off_t hole = lseek(gm->fd, data, SEEK_HOLE);
		uint64_t start = ALIGN_DOWN((uint64_t)data - r->offset, GUEST_PAGE_SIZE);
		uint64_t end =
		    hole < 0 ? r->size
			     : MIN(r->size, ALIGN_UP((uint64_t)hole - r->offset, GUEST_PAGE_SIZE));
		if (fn)
			fn(mig, r->gpa + start, (end - start) >> GUEST_PAGE_SHIFT);
		bytes += end - start;
		off = end;
	}
	return bytes;
}

static uint64_t dd_ram_bytes(const struct device_dirty *dd)
{
	uint64_t bytes = 0;

	for (unsigned i = 0; i < dd->cfg.mem->nr_regions; i++)
		bytes += dd_data_extents(dd->cfg.mem, &dd->cfg.mem->regions[i], NULL, NULL);
	return bytes;
}

static void dd_mark_all(struct device_dirty *dd, struct migration *mig, bool blind)
{
	const struct guest_mem *gm = dd->cfg.mem;
	uint64_t bytes = 0;

	for (unsigned i = 0; i < gm->nr_regions; i++)
		bytes += dd_data_extents(gm, &gm->regions[i], blind ? NULL : mig_dirty_mark, mig);
	dd->dirty_pages += bytes >> GUEST_PAGE_SHIFT;
}

static uint64_t dd_pending(struct mig_section *s, uint64_t *must_precopy)
{
	struct device_dirty *dd = s->state;

	*must_precopy = 0;
	return dd->active == DEVICE_DIRTY_PERPETUAL && !dd->stopped ? dd_ram_bytes(dd) : 0;
}

static int dd_stop(struct mig_section *s)
{
	struct device_dirty *dd = s->state;

	dd->stopped = true;
	return 0;
}

/* Device log ------------------------------------------------------------------------------- */

/* Test seam for the negative control of translation under remap: today's tables only. */
static bool dd_test_current_only(void)
{
	const char *v = getenv("VMIG_TEST_DEVICE_LOG_CURRENT_ONLY");
	return v && strcmp(v, "1") == 0;
}

/*
 * Benchmark seam (bench/migration/bench_devices.py): VMIG_BENCH_DIRTY_REFERENCE=1 runs
 * stage 2's exact dirty bits alongside device-log, read and cleared at each of its harvests
 * and only counted, so the pages device-log marks compare with the pages the device wrote in
 * the same intervals of the same run. Unset in production.
 */
static bool dd_bench_reference(void)
{
	const char *v = getenv("VMIG_BENCH_DIRTY_REFERENCE");
	return v && strcmp(v, "1") == 0;
}

static int dd_s2_read(struct device_dirty *dd, const struct guest_mem_region *r);

static int dd_reference_region(struct device_dirty *dd, const struct guest_mem_region *r)
{
	int ret = dd_s2_read(dd, r);

	if (ret == 0)
		dd->reference_pages += bitmap_count(dd->bits, r->size >> GUEST_PAGE_SHIFT);
	return ret;
}

/* With dd->mu held, inside a device-log harvest right after the log was read. */
static void dd_reference_harvest(void *opaque)
{
	struct device_dirty *dd = opaque;

	for (unsigned i = 0; dd->reference && i < dd->cfg.mem->nr_regions; i++) {
		if (dd_reference_region(dd, &dd->cfg.mem->regions[i]) < 0) {
			dd->reference = false; /* the figure is then missing, not wrong */
			dd->reference_pages = 0;
		}
	}
}

/* With the vSMMU lock held (the lock order: vSMMU, then dd->mu). */
static void dd_log_harvest_locked(struct device_dirty *dd, const uint64_t (*cmds)[2], size_t n)
{
	uint64_t pages = 0;

	pthread_mutex_lock(&dd->mu);
	if (dd->log && !dd->log_err) {
		uint64_t t0 = monotonic_ns();
		dd->log_err = device_log_harvest(dd->log, dd->mig, dd_test_blind(),
						 dd_test_current_only(), cmds, n, &pages);
		__atomic_add_fetch(&dd->harvest_ns, monotonic_ns() - t0, __ATOMIC_RELAXED);
		__atomic_add_fetch(&dd->dirty_pages, pages, __ATOMIC_RELAXED);
		__atomic_add_fetch(&dd->harvests, 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&dd->mu);
}

/* Before the guest's invalidation or configuration change reaches the host. */
static void dd_pre_forward(void *opaque, const uint64_t (*cmds)[2], size_t n, uint32_t ste_sid)
{
	struct device_dirty *dd = opaque;

	dd_log_harvest_locked(dd, cmds, n); /* a new STE drops no host TLB entry: no cover */
}

static void dd_log_start_locked(void *opaque)
{
	struct device_dirty *dd = opaque;

	pthread_mutex_lock(&dd->mu);
	dd->log_err = device_log_start(dd->cfg.vdev, dd->cfg.vs, dd->cfg.vsid, dd->cfg.mem,
				       dd->cfg.aperture_bits, &dd->log);
	if (dd->log_err == 0 && dd->reference)
		device_log_on_read(dd->log, dd_reference_harvest, dd);
	/* In the same locked step: no invalidation reaches the host between the two. */
	if (dd->log_err == 0)
		vsmmu_set_pre_forward_locked(dd->cfg.vs, dd_pre_forward, dd);
	pthread_mutex_unlock(&dd->mu);
	/* A translation removed before the start must not stay in the host's TLB unrecorded. */
	if (dd->log_err == 0)
		vsmmu_host_tlbi_all_locked(dd->cfg.vs);
}

static int dd_log_begin(struct device_dirty *dd)
{
	vsmmu_with_lock(dd->cfg.vs, dd_log_start_locked, dd);
	return dd->log_err;
}

static void dd_log_end(struct device_dirty *dd)
{
	vsmmu_set_pre_forward(dd->cfg.vs, NULL, NULL);
	pthread_mutex_lock(&dd->mu);
	device_log_stop(dd->log);
	dd->log = NULL;
	pthread_mutex_unlock(&dd->mu);
}

static void dd_log_sync_cb(void *opaque)
{
	dd_log_harvest_locked(opaque, NULL, 0);
}

/* Stage 2 --------------------------------------------------------------------------------- */

static int dd_s2_enable(struct device_dirty *dd, bool on)
{
	return iommufd_hwpt_set_dirty_tracking(dd->cfg.ictx, dd->cfg.s2_hwpt_id,
					       on ? IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0);
}

/* Every tracker starts here, before any section plans its first pass. */
static int dd_log_start(struct mig_section *s)
{
	struct device_dirty *dd = s->state;
	int ret = dd_choose(dd, s->mig);

	dd->mig = s->mig;
	dd->dirty_pages = dd->harvests = dd->harvest_ns = 0;
	dd->stopped = false;
	dd->log_err = 0;
	/* Enabling stage-2 tracking clears the hardware's dirty state: later writes count. */
	if (ret == 0 && dd->active == DEVICE_DIRTY_STAGE2)
		ret = dd_s2_enable(dd, true);
	dd->reference_pages = 0;
	dd->reference = dd->reference_on = ret == 0 && dd->active == DEVICE_DIRTY_DEVICE_LOG &&
					   dd->cfg.s2_dirty && dd_bench_reference() &&
					   dd_s2_enable(dd, true) == 0;
	if (ret == 0 && dd->active == DEVICE_DIRTY_DEVICE_LOG)
		ret = dd_log_begin(dd);
	if (ret < 0 && dd->active != DEVICE_DIRTY_AUTO)
		mig_set_error(s->mig,
			      "device dirty tracking (%s): the host refused to start it: %s",
			      device_dirty_name(dd->active), strerror(-ret));
	TRACE(device_dirty_start, "strategy=%s why=%s: %d", device_dirty_name(dd->active), dd->why,
	      ret);
	return ret;
}

/* Reads and clears stage 2's dirty bits over region r into dd->bits. */
static int dd_s2_read(struct device_dirty *dd, const struct guest_mem_region *r)
{
	struct iommu_hwpt_get_dirty_bitmap cmd = {.size = sizeof(cmd),
						  .hwpt_id = dd->cfg.s2_hwpt_id,
						  .iova = r->gpa,
						  .length = r->size,
						  .page_size = GUEST_PAGE_SIZE,
						  .data = (uint64_t)(uintptr_t)dd->bits};

	memset(dd->bits, 0, bitmap_bytes(r->size >> GUEST_PAGE_SHIFT));
	return iommufd_hwpt_get_dirty_bitmap(dd->cfg.ictx, &cmd);
}

static int dd_harvest_region(struct device_dirty *dd, struct migration *mig,
			     const struct guest_mem_region *r, bool blind)
{
	uint64_t pages = r->size >> GUEST_PAGE_SHIFT;
	int ret = dd_s2_read(dd, r);

	if (ret < 0)
		return ret;
	dd->dirty_pages += bitmap_count(dd->bits, pages);
	if (!blind)
		mig_dirty_mark_bitmap(mig, r->gpa, dd->bits, pages);
	return 0;
}

static int dd_s2_sync(struct device_dirty *dd, struct migration *mig)
{
	const struct guest_mem *gm = dd->cfg.mem;
	int ret = 0;

	for (unsigned i = 0; i < gm->nr_regions && ret == 0; i++)
		ret = dd_harvest_region(dd, mig, &gm->regions[i], dd_test_blind());
	dd->harvests++;
	return ret;
}

static int dd_log_sync(struct mig_section *s)
{
	struct device_dirty *dd = s->state;
	int ret = 0;

	uint64_t t0 = monotonic_ns();

	switch (dd->active) {
	case DEVICE_DIRTY_STAGE2:
		ret = dd_s2_sync(dd, s->mig);
		__atomic_add_fetch(&dd->harvest_ns, monotonic_ns() - t0, __ATOMIC_RELAXED);
		break;
	case DEVICE_DIRTY_DEVICE_LOG:
		vsmmu_with_lock(dd->cfg.vs, dd_log_sync_cb, dd);
		ret = dd->log_err;
		break;
	case DEVICE_DIRTY_PERPETUAL:
		if (dd->stopped)
			dd_mark_all(dd, s->mig, dd_test_blind());
		dd->harvests++;
		__atomic_add_fetch(&dd->harvest_ns, monotonic_ns() - t0, __ATOMIC_RELAXED);
		break;
	default:
		break;
	}
	if (ret < 0) /* a harvest that failed part-way cleared what it read: never retry */
		mig_set_error(s->mig, "device dirty tracking: harvest failed: %s", strerror(-ret));
	return ret;
}

/* Before the RAM section's (sections clean up in reverse): no mark after its bitmap went. */
static void dd_cleanup(struct mig_section *s, bool failed)
{
	struct device_dirty *dd = s->state;

	if (dd->active == DEVICE_DIRTY_STAGE2 || dd->reference_on)
		dd_s2_enable(dd, false);
	dd->reference = dd->reference_on = false;
	if (dd->log)
		dd_log_end(dd);
	dd->active = DEVICE_DIRTY_AUTO;
}

static void dd_query(struct mig_section *s, struct mig_info *out)
{
	struct device_dirty *dd = s->state;

	out->device.present = true;
	snprintf(out->device.dirty_strategy, sizeof(out->device.dirty_strategy), "%s",
		 dd->why[0] ? device_dirty_name(dd->chosen) : "none");
	snprintf(out->device.dirty_why, sizeof(out->device.dirty_why), "%s", dd->why);
	out->device.dirty_pages = __atomic_load_n(&dd->dirty_pages, __ATOMIC_RELAXED);
	out->device.harvests = __atomic_load_n(&dd->harvests, __ATOMIC_RELAXED);
	pthread_mutex_lock(&dd->mu);
	out->device.reference_pages = dd->reference_pages;
	pthread_mutex_unlock(&dd->mu);
	out->device.harvest_us = __atomic_load_n(&dd->harvest_ns, __ATOMIC_RELAXED) / 1000;
}

static const struct mig_section_ops dd_ops = {
    .name = "device-dirty",
    .log_start = dd_log_start,
    .log_sync = dd_log_sync,
    .pending = dd_pending,
    .stop = dd_stop,
    .cleanup = dd_cleanup,
    .query = dd_query,
};

static uint64_t dd_largest_region(const struct guest_mem *gm)
{
	uint64_t pages = 0;

	for (unsigned i = 0; i < gm->nr_regions; i++)
		pages = gm->regions[i].size >> GUEST_PAGE_SHIFT > pages
			    ? gm->regions[i].size >> GUEST_PAGE_SHIFT
			    : pages;
	return pages;
}

int device_dirty_register(struct migration *mig, const struct device_dirty_config *cfg,
			  struct device_dirty **out)
{
	struct device_dirty *dd = calloc(1, sizeof(*dd));
	int ret = -ENOMEM;

	if (dd && (dd->bits = bitmap_alloc(dd_largest_region(cfg->mem)))) {
		dd->cfg = *cfg;
		pthread_mutex_init(&dd->mu, NULL);
		ret = migration_register_section(mig, &dd_ops, MIG_SEC_DEVICE_DIRTY, dd);
	}
	if (ret < 0) {
		device_dirty_free(dd);
		return ret;
	}
	*out = dd;
	return 0;
}

void device_dirty_free(struct device_dirty *dd)
{
	if (!dd)
		return;
	if (dd->bits) /* registered: the mutex exists */
		pthread_mutex_destroy(&dd->mu);
	free(dd->bits);
	free(dd);
}
