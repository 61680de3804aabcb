// SPDX-License-Identifier: Apache-2.0
/*
 * The modelled VFIO core: device registry, uAPI argument checks, feature dispatch, the
 * migration state machine (the kernel's combination rule, stepped one arc at a time) and
 * DMA-logging argument checks. Data sessions (data_fd) live in vfio_mig_data.c.
 */
#include "host/iommufd.h"
#include "host/vfio_drv.h"
#include "host/vfio_session.h"

#include "common/trace.h"
#include "common/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void vfio_unbind_locked(struct vfio_device *dev);

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vfio_device *registry;

/* Registry ------------------------------------------------------------------------------- */

static struct vfio_device *registry_find_locked(const char *name)
{
	for (struct vfio_device *d = registry; d; d = d->next)
		if (!strcmp(d->name, name))
			return d;
	return NULL;
}

int vfio_device_register(struct vfio_device *dev)
{
	int ret = 0;

	pthread_mutex_init(&dev->lock, NULL);
	dev->mig_state = VFIO_DEVICE_STATE_RUNNING;
	dev->session = NULL;
	dev->open = false;
	dev->ictx = NULL;
	dev->attached = false;
	pthread_mutex_lock(&registry_lock);
	if (registry_find_locked(dev->name)) {
		ret = -EEXIST;
	} else {
		dev->next = registry;
		registry = dev;
	}
	pthread_mutex_unlock(&registry_lock);
	if (ret)
		pthread_mutex_destroy(&dev->lock);
	return ret;
}

void vfio_device_unregister(struct vfio_device *dev)
{
	pthread_mutex_lock(&registry_lock);
	for (struct vfio_device **p = &registry; *p; p = &(*p)->next) {
		if (*p == dev) {
			*p = dev->next;
			break;
		}
	}
	pthread_mutex_lock(&dev->lock);
	vfio_session_end(dev);
	vfio_unbind_locked(dev);
	pthread_mutex_unlock(&dev->lock);
	pthread_mutex_unlock(&registry_lock);
	pthread_mutex_destroy(&dev->lock);
	if (dev->ops->release)
		dev->ops->release(dev);
}

/* Finds the device whose current session hands out fd; returns it locked, or NULL. */
struct vfio_device *vfio_registry_lock_session(int fd)
{
	pthread_mutex_lock(&registry_lock);
	for (struct vfio_device *d = registry; d; d = d->next) {
		pthread_mutex_lock(&d->lock);
		if (vfio_session_owns_fd(d, fd)) {
			pthread_mutex_unlock(&registry_lock);
			return d;
		}
		pthread_mutex_unlock(&d->lock);
	}
	pthread_mutex_unlock(&registry_lock);
	return NULL;
}

int vfio_device_open(const char *name, struct vfio_device **out)
{
	struct vfio_device *d;
	int ret = 0;

	pthread_mutex_lock(&registry_lock);
	d = registry_find_locked(name);
	if (!d)
		ret = -ENODEV;
	else if (d->open)
		ret = -EBUSY;
	else
		d->open = true;
	pthread_mutex_unlock(&registry_lock);
	*out = ret ? NULL : d;
	return ret;
}

void vfio_device_close(struct vfio_device *dev)
{
	pthread_mutex_lock(&registry_lock);
	pthread_mutex_lock(&dev->lock);
	vfio_session_end(dev);
	vfio_unbind_locked(dev);
	dev->open = false;
	pthread_mutex_unlock(&dev->lock);
	pthread_mutex_unlock(&registry_lock);
}

/* Info and regions -------------------------------------------------------------------------- */

int vfio_device_get_info(struct vfio_device *dev, struct vfio_device_info *info)
{
	size_t minsz = offsetof(struct vfio_device_info, num_irqs) + sizeof(info->num_irqs);

	if (info->argsz < minsz)
		return -EINVAL;
	info->flags = VFIO_DEVICE_FLAGS_RESET;
	info->num_regions = dev->num_regions;
	info->num_irqs = 0;
	return 0;
}

int vfio_device_get_region_info(struct vfio_device *dev, struct vfio_region_info *info)
{
	size_t minsz = offsetof(struct vfio_region_info, offset) + sizeof(info->offset);
	const struct vfio_region_info *r;

	if (info->argsz < minsz)
		return -EINVAL;
	if (info->index >= dev->num_regions)
		return -EINVAL;
	r = &dev->regions[info->index];
	info->flags = r->flags;
	info->cap_offset = 0;
	info->size = r->size;
	/* The region's offset in the device fd, as vfio-pci lays them out. */
	info->offset = (uint64_t)info->index << 40;
	return 0;
}

static ssize_t region_access(struct vfio_device *dev, uint32_t index, uint64_t offset, void *buf,
			     size_t len, bool write)
{
	const struct vfio_region_info *r;
	uint32_t need = write ? VFIO_REGION_INFO_FLAG_WRITE : VFIO_REGION_INFO_FLAG_READ;

	if (index >= dev->num_regions || !buf)
		return -EINVAL;
	r = &dev->regions[index];
	if (!(r->flags & need))
		return -EINVAL;
	if (len == 0 || offset >= r->size || len > r->size - offset)
		return -EINVAL;
	return dev->ops->region_rw(dev, index, offset, buf, len, write);
}

ssize_t vfio_region_read(struct vfio_device *dev, uint32_t index, uint64_t offset, void *buf,
			 size_t len)
{
	return region_access(dev, index, offset, buf, len, false);
}

ssize_t vfio_region_write(struct vfio_device *dev, uint32_t index, uint64_t offset, const void *buf,
			  size_t len)
{
	return region_access(dev, index, offset, (void *)buf, len, true);
}

int vfio_device_get_doorbell(struct vfio_device *dev, uint32_t *region, uint64_t *offset,
			     uint32_t *width, int *eventfd)
{
	if (!dev->ops->get_doorbell)
		return -ENOTTY;
	return dev->ops->get_doorbell(dev, region, offset, width, eventfd);
}

/*
 * Binding as vfio's iommufd "physical device" glue does it: bind once per open, attach
 * (or replace when already attached), detach; closing the device unbinds it.
 */
int vfio_device_bind_iommufd(struct vfio_device *dev, struct iommufd_ctx *ictx, uint32_t *dev_id)
{
	int ret = 0;

	if (!ictx || !dev_id)
		return -EINVAL;
	pthread_mutex_lock(&dev->lock);
	if (dev->ictx)
		ret = -EBUSY;
	else
		ret = iommufd_device_bind(ictx, dev->sid, &dev->iommufd_dev_id);
	if (!ret) {
		dev->ictx = ictx;
		*dev_id = dev->iommufd_dev_id;
	}
	TRACE(vfio_bind_iommufd, "%s: sid=%#x dev_id=%u: %d", dev->name, dev->sid,
	      dev->iommufd_dev_id, ret);
	pthread_mutex_unlock(&dev->lock);
	return ret;
}

int vfio_device_attach_pt(struct vfio_device *dev, uint32_t *pt_id)
{
	int ret;

	pthread_mutex_lock(&dev->lock);
	if (!dev->ictx)
		ret = -EINVAL;
	else if (dev->attached)
		ret = iommufd_device_replace(dev->ictx, dev->iommufd_dev_id, pt_id);
	else
		ret = iommufd_device_attach(dev->ictx, dev->iommufd_dev_id, pt_id);
	if (!ret)
		dev->attached = true;
	TRACE(vfio_attach_pt, "%s: pt=%u: %d", dev->name, *pt_id, ret);
	pthread_mutex_unlock(&dev->lock);
	return ret;
}

int vfio_device_detach_pt(struct vfio_device *dev)
{
	int ret;

	pthread_mutex_lock(&dev->lock);
	if (!dev->ictx || !dev->attached)
		ret = -EINVAL;
	else
		ret = iommufd_device_detach(dev->ictx, dev->iommufd_dev_id);
	if (!ret)
		dev->attached = false;
	pthread_mutex_unlock(&dev->lock);
	return ret;
}

/* Drops the iommufd binding (device close and unregister). Device lock held. */
static void vfio_unbind_locked(struct vfio_device *dev)
{
	if (!dev->ictx)
		return;
	iommufd_device_unbind(dev->ictx, dev->iommufd_dev_id);
	dev->ictx = NULL;
	dev->attached = false;
}

/* Migration state machine ------------------------------------------------------------------ */

#define S_ERR	VFIO_DEVICE_STATE_ERROR
#define S_STOP	VFIO_DEVICE_STATE_STOP
#define S_RUN	VFIO_DEVICE_STATE_RUNNING
#define S_SCOPY VFIO_DEVICE_STATE_STOP_COPY
#define S_RES	VFIO_DEVICE_STATE_RESUMING
#define S_P2P	VFIO_DEVICE_STATE_RUNNING_P2P
#define S_PRE	VFIO_DEVICE_STATE_PRE_COPY
#define S_PREP	VFIO_DEVICE_STATE_PRE_COPY_P2P

/*
 * next[cur][new]: the first arc of the shortest path that keeps the saving group
 * (PRE_COPY, PRE_COPY_P2P, STOP_COPY) at the ends only. Built for a device with every
 * optional state; unsupported states are skipped by the caller.
 */
static const uint8_t fsm_next[VFIO_DEVICE_STATE_COUNT][VFIO_DEVICE_STATE_COUNT] = {
    [S_STOP] = {[S_STOP] = S_STOP,
		[S_RUN] = S_P2P,
		[S_PRE] = S_P2P,
		[S_PREP] = S_P2P,
		[S_SCOPY] = S_SCOPY,
		[S_RES] = S_RES,
		[S_P2P] = S_P2P,
		[S_ERR] = S_ERR},
    [S_RUN] = {[S_STOP] = S_P2P,
	       [S_RUN] = S_RUN,
	       [S_PRE] = S_PRE,
	       [S_PREP] = S_P2P,
	       [S_SCOPY] = S_P2P,
	       [S_RES] = S_P2P,
	       [S_P2P] = S_P2P,
	       [S_ERR] = S_ERR},
    [S_PRE] = {[S_STOP] = S_RUN,
	       [S_RUN] = S_RUN,
	       [S_PRE] = S_PRE,
	       [S_PREP] = S_PREP,
	       [S_SCOPY] = S_PREP,
	       [S_RES] = S_RUN,
	       [S_P2P] = S_RUN,
	       [S_ERR] = S_ERR},
    [S_PREP] = {[S_STOP] = S_P2P,
		[S_RUN] = S_P2P,
		[S_PRE] = S_PRE,
		[S_PREP] = S_PREP,
		[S_SCOPY] = S_SCOPY,
		[S_RES] = S_P2P,
		[S_P2P] = S_P2P,
		[S_ERR] = S_ERR},
    [S_SCOPY] = {[S_STOP] = S_STOP,
		 [S_RUN] = S_STOP,
		 [S_PRE] = S_ERR,
		 [S_PREP] = S_ERR,
		 [S_SCOPY] = S_SCOPY,
		 [S_RES] = S_STOP,
		 [S_P2P] = S_STOP,
		 [S_ERR] = S_ERR},
    [S_RES] = {[S_STOP] = S_STOP,
	       [S_RUN] = S_STOP,
	       [S_PRE] = S_STOP,
	       [S_PREP] = S_STOP,
	       [S_SCOPY] = S_STOP,
	       [S_RES] = S_RES,
	       [S_P2P] = S_STOP,
	       [S_ERR] = S_ERR},
    [S_P2P] = {[S_STOP] = S_STOP,
	       [S_RUN] = S_RUN,
	       [S_PRE] = S_RUN,
	       [S_PREP] = S_PREP,
	       [S_SCOPY] = S_STOP,
	       [S_RES] = S_STOP,
	       [S_P2P] = S_P2P,
	       [S_ERR] = S_ERR},
    [S_ERR] = {S_ERR, S_ERR, S_ERR, S_ERR, S_ERR, S_ERR, S_ERR, S_ERR},
};

/* Migration flags a state needs; ERROR needs everything so it can never be requested. */
static uint64_t fsm_state_needs(uint32_t state)
{
	switch (state) {
	case S_STOP:
	case S_RUN:
	case S_SCOPY:
	case S_RES:
		return VFIO_MIGRATION_STOP_COPY;
	case S_P2P:
		return VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P;
	case S_PRE:
		return VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_PRE_COPY;
	case S_PREP:
		return VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY;
	default:
		return ~0ull;
	}
}

static bool fsm_state_supported(uint64_t mig_flags, uint32_t state)
{
	uint64_t need = fsm_state_needs(state);

	return (mig_flags & need) == need;
}

int vfio_mig_next_state(uint64_t mig_flags, uint32_t cur, uint32_t new_state, uint32_t *next)
{
	if (cur >= VFIO_DEVICE_STATE_COUNT || !fsm_state_supported(mig_flags, cur))
		return -EINVAL;
	if (new_state >= VFIO_DEVICE_STATE_COUNT || !fsm_state_supported(mig_flags, new_state))
		return -EINVAL;
	*next = fsm_next[cur][new_state];
	while (*next != S_ERR && !fsm_state_supported(mig_flags, *next))
		*next = fsm_next[*next][new_state];
	return *next == S_ERR ? -EINVAL : 0;
}

const char *vfio_mig_state_name(uint32_t state)
{
	static const char *const names[VFIO_DEVICE_STATE_COUNT] = {
	    "ERROR",	"STOP",	       "RUNNING",  "STOP_COPY",
	    "RESUMING", "RUNNING_P2P", "PRE_COPY", "PRE_COPY_P2P",
	};

	return state < VFIO_DEVICE_STATE_COUNT ? names[state] : "?";
}

static bool state_is_saving(uint32_t s)
{
	return s == S_PRE || s == S_PREP || s == S_SCOPY;
}

/* Arcs that start a data session (the kernel returns a new data_fd for these). */
static bool arc_opens_session(uint32_t cur, uint32_t next)
{
	if (next == S_PRE || next == S_PREP)
		return !state_is_saving(cur);
	if (next == S_SCOPY)
		return cur == S_STOP;
	return next == S_RES;
}

static bool arc_ends_session(uint32_t cur, uint32_t next)
{
	if (cur == S_RES)
		return true;
	return state_is_saving(cur) && !state_is_saving(next);
}

/* One arc: session bookkeeping around the driver's step. Sets *fd when a session opens. */
static int mig_step_locked(struct vfio_device *dev, uint32_t next, int *fd)
{
	uint32_t cur = dev->mig_state;
	bool opens = arc_opens_session(cur, next);
	int ret;

	if (opens) {
		ret = vfio_session_begin(dev, next == S_RES, fd);
		if (ret)
			return ret;
	}
	ret = dev->ops->mig_arc(dev, cur, next);
	TRACE(vfio_mig_arc, "%s: %s -> %s: %d", dev->name, vfio_mig_state_name(cur),
	      vfio_mig_state_name(next), ret);
	if (ret) {
		if (opens) {
			/* The user never saw this fd: close both ends. */
			vfio_session_end(dev);
			close(*fd);
			*fd = -1;
		}
		if (cur == S_RES && next == S_STOP) {
			vfio_session_end(dev);
			dev->mig_state = S_ERR;
		}
		return ret;
	}
	if (arc_ends_session(cur, next))
		vfio_session_end(dev);
	dev->mig_state = next;
	return 0;
}

static int mig_set_state_locked(struct vfio_device *dev, uint32_t new_state, int *data_fd)
{
	*data_fd = -1;
	/* ERROR and unsupported states can never be requested, not even "staying" in them. */
	if (new_state >= VFIO_DEVICE_STATE_COUNT || !fsm_state_supported(dev->mig_flags, new_state))
		return -EINVAL;
	while (dev->mig_state != new_state) {
		uint32_t next;
		int ret = vfio_mig_next_state(dev->mig_flags, dev->mig_state, new_state, &next);

		if (ret)
			return ret;
		if (*data_fd >= 0) {
			/* A session-opening arc is always the last one of a combination. */
			vfio_session_end(dev);
			close(*data_fd);
			*data_fd = -1;
			return -EINVAL;
		}
		ret = mig_step_locked(dev, next, data_fd);
		if (ret)
			return ret;
	}
	return 0;
}

int vfio_device_reset(struct vfio_device *dev)
{
	int ret;

	pthread_mutex_lock(&dev->lock);
	vfio_session_end(dev);
	ret = dev->ops->reset ? dev->ops->reset(dev) : 0;
	if (!ret && dev->mig_flags)
		dev->mig_state = S_RUN;
	TRACE(vfio_device_reset, "%s: %d", dev->name, ret);
	pthread_mutex_unlock(&dev->lock);
	return ret;
}

/* Feature calls ---------------------------------------------------------------------------- */

#define FEATURE_HDR_SIZE (offsetof(struct vfio_device_feature, flags) + sizeof(uint32_t))

/* The kernel's vfio_check_feature(): 1 = go on, 0 = probe answered, <0 = error. */
static int feature_check(uint32_t flags, size_t argsz, uint32_t supported, size_t minsz)
{
	uint32_t ops = flags & (VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET);

	if (ops & ~supported)
		return -EINVAL;
	if (flags & VFIO_DEVICE_FEATURE_PROBE)
		return 0;
	if (!ops)
		return -EINVAL;
	if (argsz < minsz)
		return -EINVAL;
	return 1;
}

static int feature_migration(struct vfio_device *dev, uint32_t flags, void *data, size_t argsz)
{
	struct vfio_device_feature_migration *mig = data;
	int ret = feature_check(flags, argsz, VFIO_DEVICE_FEATURE_GET, sizeof(*mig));

	if (ret != 1)
		return ret;
	mig->flags = dev->mig_flags;
	return 0;
}

static int feature_mig_state(struct vfio_device *dev, uint32_t flags, void *data, size_t argsz)
{
	struct vfio_device_feature_mig_state *st = data;
	int ret = feature_check(flags, argsz, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET,
				sizeof(*st));
	int fd = -1;

	if (ret != 1)
		return ret;
	pthread_mutex_lock(&dev->lock);
	if (flags & VFIO_DEVICE_FEATURE_GET) {
		st->device_state = dev->mig_state;
		pthread_mutex_unlock(&dev->lock);
		return 0;
	}
	ret = mig_set_state_locked(dev, st->device_state, &fd);
	pthread_mutex_unlock(&dev->lock);
	st->data_fd = fd;
	return ret;
}

static int feature_mig_data_size(struct vfio_device *dev, uint32_t flags, void *data, size_t argsz)
{
	struct vfio_device_feature_mig_data_size *sz = data;
	int ret = feature_check(flags, argsz, VFIO_DEVICE_FEATURE_GET, sizeof(*sz));
	uint64_t len = 0;

	if (ret != 1)
		return ret;
	pthread_mutex_lock(&dev->lock);
	ret = dev->ops->mig_data_size ? dev->ops->mig_data_size(dev, &len) : -ENOTTY;
	pthread_mutex_unlock(&dev->lock);
	if (!ret)
		sz->stop_copy_length = len;
	return ret;
}

/* Copies and checks START's ranges as the kernel core does; sorted on success. */
static int log_ranges_collect(const struct vfio_device_feature_dma_logging_control *ctl,
			      struct vfio_log_range *out)
{
	const struct vfio_device_feature_dma_logging_range *in =
	    (const void *)(uintptr_t)ctl->ranges;
	uint64_t ps = ctl->page_size;

	if (!in)
		return -EFAULT;
	for (uint32_t i = 0; i < ctl->num_ranges; i++) {
		uint64_t end;

		if (!IS_ALIGNED(in[i].iova, ps) || !IS_ALIGNED(in[i].length, ps) || !in[i].length)
			return -EINVAL;
		if (__builtin_add_overflow(in[i].iova, in[i].length, &end))
			return -EOVERFLOW;
		out[i].iova = in[i].iova;
		out[i].length = in[i].length;
	}
	return 0;
}

static int log_range_cmp(const void *a, const void *b)
{
	const struct vfio_log_range *x = a, *y = b;

	return x->iova < y->iova ? -1 : x->iova > y->iova;
}

/* Sorts, then refuses overlaps (an overlap is only possible between neighbours). */
static int log_ranges_sort_check(struct vfio_log_range *r, uint32_t n)
{
	qsort(r, n, sizeof(*r), log_range_cmp);
	for (uint32_t i = 1; i < n; i++)
		if (r[i].iova - r[i - 1].iova < r[i - 1].length)
			return -EINVAL;
	return 0;
}

uint32_t vfio_log_combine_ranges(struct vfio_log_range *r, uint32_t n, uint32_t max)
{
	if (max == 0)
		max = 1;
	while (n > max) {
		uint32_t best = 0;
		uint64_t best_gap = UINT64_MAX;

		for (uint32_t i = 0; i + 1 < n; i++) {
			uint64_t gap = r[i + 1].iova - (r[i].iova + r[i].length);

			if (gap < best_gap) {
				best_gap = gap;
				best = i;
			}
		}
		r[best].length = r[best + 1].iova + r[best + 1].length - r[best].iova;
		memmove(&r[best + 1], &r[best + 2], (n - best - 2) * sizeof(*r));
		n--;
	}
	return n;
}

static int log_start_checked(struct vfio_device *dev,
			     struct vfio_device_feature_dma_logging_control *ctl)
{
	struct vfio_log_range *r;
	uint32_t n = ctl->num_ranges;
	int ret;

	if (!n)
		return -EINVAL;
	if (n > VFIO_LOG_MAX_RANGES)
		return -E2BIG;
	if (!IS_POW2(ctl->page_size))
		return -EINVAL;
	r = calloc(n, sizeof(*r));
	if (!r)
		return -ENOMEM;
	ret = log_ranges_collect(ctl, r);
	if (!ret)
		ret = log_ranges_sort_check(r, n);
	if (!ret) {
		uint64_t ps = ctl->page_size;

		n = vfio_log_combine_ranges(r, n, dev->log_max_ranges);
		ret = dev->ops->log_start(dev, r, n, &ps);
		if (!ret)
			ctl->page_size = ps;
	}
	TRACE(vfio_log_start, "%s: %u ranges (%u kept) page_size=%#llx: %d", dev->name,
	      ctl->num_ranges, n, (unsigned long long)ctl->page_size, ret);
	free(r);
	return ret;
}

static int feature_log_start(struct vfio_device *dev, uint32_t flags, void *data, size_t argsz)
{
	struct vfio_device_feature_dma_logging_control *ctl = data;
	int ret = feature_check(flags, argsz, VFIO_DEVICE_FEATURE_SET, sizeof(*ctl));

	if (ret != 1)
		return ret;
	pthread_mutex_lock(&dev->lock);
	ret = log_start_checked(dev, ctl);
	pthread_mutex_unlock(&dev->lock);
	return ret;
}

static int feature_log_stop(struct vfio_device *dev, uint32_t flags, void *data, size_t argsz)
{
	int ret = feature_check(flags, argsz, VFIO_DEVICE_FEATURE_SET, 0);

	if (ret != 1)
		return ret;
	pthread_mutex_lock(&dev->lock);
	ret = dev->ops->log_stop(dev);
	pthread_mutex_unlock(&dev->lock);
	TRACE(vfio_log_stop, "%s: %d", dev->name, ret);
	return ret;
}

static int feature_log_report(struct vfio_device *dev, uint32_t flags, void *data, size_t argsz)
{
	struct vfio_device_feature_dma_logging_report *rep = data;
	int ret = feature_check(flags, argsz, VFIO_DEVICE_FEATURE_GET, sizeof(*rep));
	uint64_t end;

	if (ret != 1)
		return ret;
	if (rep->page_size < 4096 || !IS_POW2(rep->page_size))
		return -EINVAL;
	if (__builtin_add_overflow(rep->iova, rep->length, &end))
		return -EOVERFLOW;
	if (!rep->length)
		return -EINVAL;
	if (!rep->bitmap)
		return -EFAULT;
	pthread_mutex_lock(&dev->lock);
	ret = dev->ops->log_report(dev, rep->iova, rep->length, rep->page_size,
				   (uint64_t *)(uintptr_t)rep->bitmap);
	pthread_mutex_unlock(&dev->lock);
	return ret;
}

typedef int (*feature_fn)(struct vfio_device *dev, uint32_t flags, void *data, size_t argsz);

/* The handler for a feature index, or NULL (ENOTTY) when this device lacks it. */
static feature_fn feature_lookup(struct vfio_device *dev, uint32_t index)
{
	bool mig = dev->mig_flags != 0;
	bool log = dev->ops->log_start != NULL;

	switch (index) {
	case VFIO_DEVICE_FEATURE_MIGRATION:
		return mig ? feature_migration : NULL;
	case VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE:
		return mig ? feature_mig_state : NULL;
	case VFIO_DEVICE_FEATURE_MIG_DATA_SIZE:
		return mig ? feature_mig_data_size : NULL;
	case VFIO_DEVICE_FEATURE_DMA_LOGGING_START:
		return log ? feature_log_start : NULL;
	case VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP:
		return log ? feature_log_stop : NULL;
	case VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT:
		return log ? feature_log_report : NULL;
	default:
		return NULL;
	}
}

int vfio_device_feature(struct vfio_device *dev, struct vfio_device_feature *arg)
{
	const uint32_t known = VFIO_DEVICE_FEATURE_MASK | VFIO_DEVICE_FEATURE_GET |
			       VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_PROBE;
	uint32_t flags;
	feature_fn fn;

	if (!arg)
		return -EFAULT;
	flags = arg->flags;
	if (arg->argsz < FEATURE_HDR_SIZE)
		return -EINVAL;
	if (flags & ~known)
		return -EINVAL;
	if (!(flags & VFIO_DEVICE_FEATURE_PROBE) && (flags & VFIO_DEVICE_FEATURE_SET) &&
	    (flags & VFIO_DEVICE_FEATURE_GET))
		return -EINVAL;
	fn = feature_lookup(dev, flags & VFIO_DEVICE_FEATURE_MASK);
	if (!fn)
		return -ENOTTY;
	return fn(dev, flags, arg->data, arg->argsz - FEATURE_HDR_SIZE);
}
