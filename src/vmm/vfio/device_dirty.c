// SPDX-License-Identifier: Apache-2.0
/* Device-DMA dirty tracking of the device set (device_dirty.h). */
#include "vmm/vfio/device_dirty.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bitmap.h"
#include "common/trace.h"
#include "host/iommufd.h"
#include "vmm/guest_mem.h"
#include "vmm/migration/migration.h"
#include "vmm/migration/section.h"

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
	uint64_t dirty_pages, harvests;
};

/* Test seam for the negative control: harvest, but tell the RAM section nothing. */
static bool dd_test_blind(void)
{
	const char *v = getenv("VMIG_TEST_NO_DEVICE_DIRTY");
	return v && strcmp(v, "1") == 0;
}

/* Choice ---------------------------------------------------------------------------------- */

static int dd_choose(struct device_dirty *dd, struct migration *mig)
{
	enum device_dirty_strategy want = dd->cfg.forced;

	if (want == DEVICE_DIRTY_AUTO || want == DEVICE_DIRTY_STAGE2) {
		if (dd->cfg.s2_dirty) {
			dd->active = dd->chosen = DEVICE_DIRTY_STAGE2;
			snprintf(dd->why, sizeof(dd->why), "%s",
				 want == DEVICE_DIRTY_STAGE2
				     ? "forced"
				     : "the host IOMMU tracks dirty pages on the nesting parent "
				       "(stage 2)");
			return 0;
		}
		mig_set_error(mig,
			      "device dirty tracking: the host IOMMU has no hardware dirty "
			      "bits on the device's stage 2, and no other strategy is available "
			      "yet (device-log, stage1 and perpetual are not implemented)");
		return -EOPNOTSUPP;
	}
	mig_set_error(mig,
		      "device dirty tracking: strategy %s is not implemented yet (use "
		      "auto or stage2)",
		      device_dirty_name(want));
	return -EOPNOTSUPP;
}

/* Stage 2 --------------------------------------------------------------------------------- */

/* Enabling clears the hardware's dirty state: a write after this is in the next harvest. */
static int dd_log_start(struct mig_section *s)
{
	struct device_dirty *dd = s->state;
	int ret = dd_choose(dd, s->mig);

	dd->dirty_pages = dd->harvests = 0;
	if (ret == 0)
		ret = iommufd_hwpt_set_dirty_tracking(dd->cfg.ictx, dd->cfg.s2_hwpt_id,
						      IOMMU_HWPT_DIRTY_TRACKING_ENABLE);
	if (ret < 0 && dd->active != DEVICE_DIRTY_AUTO)
		mig_set_error(s->mig, "device dirty tracking: the host refused to start it: %s",
			      strerror(-ret));
	TRACE(device_dirty_start, "strategy=%s why=%s: %d", device_dirty_name(dd->active), dd->why,
	      ret);
	return ret;
}

static int dd_harvest_region(struct device_dirty *dd, struct migration *mig,
			     const struct guest_mem_region *r, bool blind)
{
	uint64_t pages = r->size >> GUEST_PAGE_SHIFT;
	struct iommu_hwpt_get_dirty_bitmap cmd = {.size = sizeof(cmd),
						  .hwpt_id = dd->cfg.s2_hwpt_id,
						  .iova = r->gpa,
						  .length = r->size,
						  .page_size = GUEST_PAGE_SIZE,
						  .data = (uint64_t)(uintptr_t)dd->bits};

	memset(dd->bits, 0, bitmap_words(pages) * sizeof(uint64_t));
	int ret = iommufd_hwpt_get_dirty_bitmap(dd->cfg.ictx, &cmd);
	if (ret < 0)
		return ret;
	dd->dirty_pages += bitmap_count(dd->bits, pages);
	if (!blind)
		mig_dirty_mark_bitmap(mig, r->gpa, dd->bits, pages);
	return 0;
}

static int dd_log_sync(struct mig_section *s)
{
	struct device_dirty *dd = s->state;
	const struct guest_mem *gm = dd->cfg.mem;
	bool blind = dd_test_blind();
	int ret = 0;

	for (unsigned i = 0; i < gm->nr_regions && ret == 0; i++)
		ret = dd_harvest_region(dd, s->mig, &gm->regions[i], blind);
	dd->harvests++;
	if (ret < 0) /* a harvest that failed part-way cleared what it read: never retry */
		mig_set_error(s->mig, "device dirty tracking: harvest failed: %s", strerror(-ret));
	return ret;
}

static void dd_cleanup(struct mig_section *s, bool failed)
{
	struct device_dirty *dd = s->state;

	if (dd->active == DEVICE_DIRTY_STAGE2)
		iommufd_hwpt_set_dirty_tracking(dd->cfg.ictx, dd->cfg.s2_hwpt_id, 0);
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
}

static const struct mig_section_ops dd_ops = {
    .name = "device-dirty",
    .log_start = dd_log_start,
    .log_sync = dd_log_sync,
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
	free(dd->bits);
	free(dd);
}
