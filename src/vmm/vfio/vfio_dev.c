// SPDX-License-Identifier: Apache-2.0
/* Device binding: BAR0 trapped and forwarded, the doorbell on its fast or slow path. */
#include "vmm/vfio/vfio_dev.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>

#include "common/log.h"
#include "common/trace.h"
#include "common/util.h"
#include "hw/sdma_regs.h"
#include "host/vfio.h"
#include "vmm/bus.h"
#include "vmm/kvm/vm.h"

struct vfio_dev {
	struct vfio_device *vdev;
	char name[32];
	struct vm *vm;
	struct bus *bus;
	uint64_t bar0_gpa, bar0_size;
	uint32_t dev_id;
	bool bus_registered;

	/* The device's valueless doorbell. */
	uint32_t db_region, db_width;
	uint64_t db_offset;
	int db_fd;

	pthread_mutex_t lock; /* everything below */
	enum vfio_doorbell_path path;
	bool shadow_en; /* the guest has enabled the shadow tail (last value written) */
	bool armed;	/* the ioeventfd is registered */
	struct vfio_doorbell_write *held;
	size_t nr_held, cap_held;
	bool hold_broken; /* the list overflowed during a hold and was flushed */
	struct vfio_dev_stats st;
};

/*
 * Any access size (len 0): the register takes 4- and 8-byte writes and a driver may use
 * either; the eventfd carries no value anyway, the device reads the shadow tail.
 */
static struct vm_ioeventfd vfio_dev_ioeventfd(const struct vfio_dev *d)
{
	return (struct vm_ioeventfd){.addr = d->bar0_gpa + d->db_offset, .len = 0, .fd = d->db_fd};
}

/* Arms or disarms the ioeventfd to match the requested path and the shadow state. */
static int vfio_dev_sync_fast_locked(struct vfio_dev *d)
{
	/* No VM (unit tests, tools): nothing can take the write in-kernel, it always traps. */
	bool want = d->path == VFIO_DOORBELL_FAST && d->shadow_en && d->db_fd >= 0 && d->vm;
	struct vm_ioeventfd io = vfio_dev_ioeventfd(d);
	int ret;

	if (want == d->armed)
		return 0;
	ret = want ? vm_ioeventfd_add(d->vm, &io) : vm_ioeventfd_del(d->vm, &io);
	if (ret < 0)
		return ret;
	d->armed = want;
	if (want)
		d->st.fast_arms++;
	else
		d->st.fast_disarms++;
	TRACE(vfio_doorbell_fast, "%s ioeventfd at 0x%llx", want ? "armed" : "disarmed",
	      (unsigned long long)io.addr);
	return 0;
}

static bool vfio_dev_is_doorbell(const struct vfio_dev *d, uint64_t offset)
{
	return d->db_fd >= 0 && offset == d->db_offset;
}

static int vfio_dev_forward(struct vfio_dev *d, uint64_t offset, unsigned size, uint64_t val)
{
	ssize_t n = vfio_region_write(d->vdev, VFIO_PCI_BAR0_REGION_INDEX, offset, &val, size);

	if (n == (ssize_t)size)
		return 0;
	return n < 0 ? (int)n : -EIO;
}

/* Room for n more writes (within the bound); -ENOMEM and nothing changed otherwise. */
static int vfio_dev_hold_reserve_locked(struct vfio_dev *d, size_t n)
{
	size_t want = d->nr_held + n, cap = d->cap_held ? d->cap_held : 64;
	void *p;

	if (want > VFIO_DEV_HELD_MAX)
		want = VFIO_DEV_HELD_MAX;
	if (want <= d->cap_held)
		return 0;
	while (cap < want)
		cap *= 2;
	p = realloc(d->held, cap * sizeof(*d->held));
	if (!p)
		return -ENOMEM;
	d->held = p;
	d->cap_held = cap;
	return 0;
}

static bool vfio_dev_changes_shadow(uint64_t offset)
{
	return (offset & ~7ull) == SDMA_REG_WQ_SHADOW || (offset & ~7ull) == SDMA_REG_CTRL;
}

/*
 * Whether the guest has the shadow tail on, from the device itself: after forwarded writes
 * that may change it, and whenever the path is set (on a migration destination the device
 * state arrives through VFIO, not through guest writes the VMM would see).
 */
static void vfio_dev_read_shadow_locked(struct vfio_dev *d)
{
	uint64_t v = 0;
	ssize_t n =
	    vfio_region_read(d->vdev, VFIO_PCI_BAR0_REGION_INDEX, SDMA_REG_WQ_SHADOW, &v, 8);

	d->shadow_en = n == 8 && (v & (1ull << SDMA_WQ_SHADOW_EN_SHIFT));
}

static bool vfio_dev_eventfd_unread(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* How long one replay waits, in all, for the device to take its kicks. */
#define VFIO_DEV_KICK_BUDGET_NS (100ull * 1000 * 1000)

/*
 * A valueless kick, as the fast path delivers it. With a deadline, waits until the device
 * took it (read its eventfd) or the deadline passed: a trapped, synchronous register write
 * replayed next must not overtake it. A device busy with its queue reads the eventfd only
 * between runs; the bound keeps a replay from holding the lock for long.
 */
static int vfio_dev_kick(struct vfio_dev *d, uint64_t deadline_ns)
{
	struct timespec pause = {0, 100000};

	if (eventfd_write(d->db_fd, 1) < 0)
		return -errno;
	while (deadline_ns && vfio_dev_eventfd_unread(d->db_fd) && monotonic_ns() < deadline_ns)
		nanosleep(&pause, NULL);
	return 0;
}

/*
 * A doorbell write the guest meant as a kick: with the shadow tail on, the device reads the
 * guest's newest tail, which is what the fast path gives it, whereas an old value written
 * to TAIL could move TAIL back behind HEAD (the device may have read a newer shadow tail).
 */
static bool vfio_dev_is_kick(const struct vfio_dev *d, const struct vfio_doorbell_write *w)
{
	return vfio_dev_is_doorbell(d, w->offset) && d->shadow_en;
}

static int vfio_dev_forward_held(struct vfio_dev *d, const struct vfio_doorbell_write *w)
{
	int ret = vfio_dev_forward(d, w->offset, w->size, w->value);

	if (ret == 0 && vfio_dev_changes_shadow(w->offset))
		vfio_dev_read_shadow_locked(d);
	return ret;
}

/* One write, delivered as the guest meant it (a kick, or the write itself). */
static int vfio_dev_replay_one_locked(struct vfio_dev *d, const struct vfio_doorbell_write *w)
{
	return vfio_dev_is_kick(d, w) ? vfio_dev_kick(d, 0) : vfio_dev_forward_held(d, w);
}

/*
 * Replays the held list in order; what could not be replayed stays, in order. Consecutive
 * kicks are one (a kick only says "read the shadow tail"), and a kick is waited for only
 * when a register write follows it (then_write: one follows the list).
 */
static int vfio_dev_replay_locked(struct vfio_dev *d, bool then_write)
{
	uint64_t deadline = monotonic_ns() + VFIO_DEV_KICK_BUDGET_NS;
	size_t i, kick_from = SIZE_MAX;
	int ret = 0;

	for (i = 0; i < d->nr_held && ret == 0; i++) {
		if (vfio_dev_is_kick(d, &d->held[i])) {
			kick_from = kick_from == SIZE_MAX ? i : kick_from;
			continue;
		}
		if (kick_from != SIZE_MAX && (ret = vfio_dev_kick(d, deadline)) == 0)
			kick_from = SIZE_MAX;
		if (ret == 0 && (ret = vfio_dev_forward_held(d, &d->held[i])) < 0)
			break;
	}
	if (ret == 0 && kick_from != SIZE_MAX &&
	    (ret = vfio_dev_kick(d, then_write ? deadline : 0)) == 0)
		kick_from = SIZE_MAX;
	if (ret < 0)
		i = MIN(i, kick_from);
	if (i) /* (held is NULL until a first hold) */
		memmove(d->held, d->held + i, (d->nr_held - i) * sizeof(*d->held));
	d->nr_held -= i;
	d->st.doorbells_released += i;
	return ret < 0 ? ret : (int)i;
}

/*
 * Appends to the held list. A driver writes the device's registers a handful of times per
 * submission, so a well-behaved guest stays far below the bound during a drain; a guest
 * that writes in a loop while the device is held must not grow VMM memory nor lose a
 * write: at the bound, everything held goes to the device in order, the new write after
 * it, and the hold is marked broken (the drain fails and the migration rolls back).
 * Entering SLOW_HOLD reserves room, so a trapped write always has a place.
 */
static int vfio_dev_append_locked(struct vfio_dev *d, const struct vfio_doorbell_write *w)
{
	int ret = d->nr_held >= VFIO_DEV_HELD_MAX ? -ENOSPC : vfio_dev_hold_reserve_locked(d, 1);

	if (ret == 0) {
		d->held[d->nr_held++] = *w;
		d->st.doorbells_held += vfio_dev_is_doorbell(d, w->offset);
		d->st.writes_held++;
	}
	return ret;
}

static void vfio_dev_hold_locked(struct vfio_dev *d, const struct vfio_doorbell_write *w)
{
	if (vfio_dev_append_locked(d, w) == 0)
		return;
	d->hold_broken = true;
	d->st.hold_overflows++;
	if (vfio_dev_replay_locked(d, !vfio_dev_is_kick(d, w)) >= 0 &&
	    vfio_dev_replay_one_locked(d, w) == 0)
		return;
	/* The device refused a write: what it did not take stays held, this one with it. */
	__atomic_add_fetch(&d->st.bar_errors, 1, __ATOMIC_RELAXED);
	if (vfio_dev_append_locked(d, w) < 0)
		log_error("vfio: %s: a guest register write lost (the device refuses writes and "
			  "the held list is full)",
			  d->name);
}

static void vfio_dev_refresh_shadow_locked(struct vfio_dev *d)
{
	vfio_dev_read_shadow_locked(d);
	if (vfio_dev_sync_fast_locked(d) < 0)
		__atomic_add_fetch(&d->st.bar_errors, 1, __ATOMIC_RELAXED);
}

/*
 * Every trapped write goes through the lock: while the device is held, every register
 * write is kept (a reset or a configuration change forwarded ahead of held doorbells would
 * run them against the wrong queue), and a concurrent replay cannot be overtaken.
 */
static void vfio_dev_bar_write(void *opaque, uint64_t offset, unsigned size, uint64_t val)
{
	struct vfio_dev *d = opaque;
	struct vfio_doorbell_write w = {(uint32_t)offset, size, val};
	bool doorbell = vfio_dev_is_doorbell(d, offset);

	pthread_mutex_lock(&d->lock);
	d->st.doorbells_trapped += doorbell;
	d->st.bar_writes += !doorbell;
	if (d->path == VFIO_DOORBELL_SLOW_HOLD) {
		vfio_dev_hold_locked(d, &w);
		TRACE(vfio_doorbell_hold, "off=%#llx val=%#llx", (unsigned long long)offset,
		      (unsigned long long)val);
	} else if (d->path == VFIO_DOORBELL_FAST && d->vm && vfio_dev_is_kick(d, &w)) {
		/* Trapped around a path switch: the fast path would have made it a kick. */
		if (vfio_dev_kick(d, 0) < 0)
			__atomic_add_fetch(&d->st.bar_errors, 1, __ATOMIC_RELAXED);
	} else if (vfio_dev_forward(d, offset, size, val) < 0) {
		__atomic_add_fetch(&d->st.bar_errors, 1, __ATOMIC_RELAXED);
	} else if (vfio_dev_changes_shadow(offset)) {
		vfio_dev_refresh_shadow_locked(d);
	}
	pthread_mutex_unlock(&d->lock);
}

static void vfio_dev_bar_read(void *opaque, uint64_t offset, unsigned size, uint64_t *val)
{
	struct vfio_dev *d = opaque;
	uint64_t v = 0;

	if (vfio_region_read(d->vdev, VFIO_PCI_BAR0_REGION_INDEX, offset, &v, size) != size) {
		__atomic_add_fetch(&d->st.bar_errors, 1, __ATOMIC_RELAXED);
		v = ~0ull; /* what a PCI read that nobody completes returns */
	}
	__atomic_add_fetch(&d->st.bar_reads, 1, __ATOMIC_RELAXED);
	*val = size == 8 ? v : (v & 0xFFFFFFFFull);
}

static const struct bus_device_ops vfio_dev_bar_ops = {
    .read = vfio_dev_bar_read,
    .write = vfio_dev_bar_write,
};

static int vfio_dev_probe(struct vfio_dev *d)
{
	struct vfio_region_info ri = {.argsz = sizeof(ri), .index = VFIO_PCI_BAR0_REGION_INDEX};
	int ret = vfio_device_get_region_info(d->vdev, &ri);

	if (ret < 0)
		return ret;
	if (!ri.size || !(ri.flags & VFIO_REGION_INFO_FLAG_READ) ||
	    !(ri.flags & VFIO_REGION_INFO_FLAG_WRITE))
		return -ENODEV;
	d->bar0_size = ri.size;
	ret = vfio_device_get_doorbell(d->vdev, &d->db_region, &d->db_offset, &d->db_width,
				       &d->db_fd);
	if (ret == -ENOTTY || (ret == 0 && d->db_region != VFIO_PCI_BAR0_REGION_INDEX))
		d->db_fd = -1; /* no doorbell we can serve: every path is the trapped one */
	else if (ret < 0)
		return ret;
	return 0;
}

static int vfio_dev_register_bar(struct vfio_dev *d)
{
	struct bus_region r = {"vfio-bar0",
			       BUS_MMIO,
			       d->bar0_gpa,
			       d->bar0_size,
			       BUS_SIZE(4) | BUS_SIZE(8),
			       false,
			       &vfio_dev_bar_ops,
			       d};
	int ret = bus_register(d->bus, &r);

	d->bus_registered = ret == 0;
	return ret;
}

int vfio_dev_create(const struct vfio_dev_config *cfg, struct vfio_dev **out)
{
	struct vfio_dev *d = calloc(1, sizeof(*d));
	int ret;

	if (!d)
		return -ENOMEM;
	pthread_mutex_init(&d->lock, NULL);
	d->vm = cfg->vm;
	d->bus = cfg->bus;
	d->bar0_gpa = cfg->bar0_gpa;
	d->path = cfg->path;
	d->db_fd = -1;
	snprintf(d->name, sizeof(d->name), "%s", cfg->name);
	ret = vfio_device_open(cfg->name, &d->vdev);
	if (ret == 0)
		ret = vfio_dev_probe(d);
	if (ret == 0)
		ret = vfio_device_bind_iommufd(d->vdev, cfg->ictx, &d->dev_id);
	if (ret == 0)
		ret = vfio_dev_register_bar(d);
	if (ret < 0) {
		log_error("vfio: device %s: %s", cfg->name, strerror(-ret));
		vfio_dev_destroy(d);
		return ret;
	}
	*out = d;
	return 0;
}

const char *vfio_dev_name(const struct vfio_dev *d)
{
	return d->name;
}

void vfio_dev_destroy(struct vfio_dev *d)
{
	if (!d)
		return;
	if (d->bus_registered)
		bus_unregister(d->bus, BUS_MMIO, d->bar0_gpa);
	pthread_mutex_lock(&d->lock);
	d->path = VFIO_DOORBELL_SLOW_FORWARD;
	vfio_dev_sync_fast_locked(d);
	pthread_mutex_unlock(&d->lock);
	if (d->vdev)
		vfio_device_close(d->vdev);
	pthread_mutex_destroy(&d->lock);
	free(d->held);
	free(d);
}

uint32_t vfio_dev_iommufd_id(const struct vfio_dev *d)
{
	return d->dev_id;
}

int vfio_dev_attach(struct vfio_dev *d, uint32_t *pt_id)
{
	return vfio_device_attach_pt(d->vdev, pt_id);
}

struct vfio_device *vfio_dev_vfio(struct vfio_dev *d)
{
	return d->vdev;
}

int vfio_dev_doorbell_set_path(struct vfio_dev *d, enum vfio_doorbell_path path)
{
	enum vfio_doorbell_path old;
	int ret;

	if (path > VFIO_DOORBELL_SLOW_HOLD)
		return -EINVAL;
	pthread_mutex_lock(&d->lock);
	/* Room for the first held write now: a trapped write has nowhere to report -ENOMEM. */
	if (path == VFIO_DOORBELL_SLOW_HOLD && vfio_dev_hold_reserve_locked(d, 1) < 0) {
		pthread_mutex_unlock(&d->lock);
		return -ENOMEM;
	}
	old = d->path;
	if (path == VFIO_DOORBELL_SLOW_HOLD && old != path)
		d->hold_broken = false;
	d->path = path;
	vfio_dev_read_shadow_locked(d);
	ret = vfio_dev_sync_fast_locked(d);
	if (ret < 0)
		d->path = old;
	pthread_mutex_unlock(&d->lock);
	TRACE(vfio_doorbell_path, "%d -> %d: %d", old, path, ret);
	return ret;
}

enum vfio_doorbell_path vfio_dev_doorbell_get_path(struct vfio_dev *d)
{
	pthread_mutex_lock(&d->lock);
	enum vfio_doorbell_path p = d->path;
	pthread_mutex_unlock(&d->lock);
	return p;
}

bool vfio_dev_doorbell_fast_armed(struct vfio_dev *d)
{
	pthread_mutex_lock(&d->lock);
	bool armed = d->armed;
	pthread_mutex_unlock(&d->lock);
	return armed;
}

int vfio_dev_doorbell_release_held(struct vfio_dev *d)
{
	pthread_mutex_lock(&d->lock);
	int ret = vfio_dev_replay_locked(d, false);
	pthread_mutex_unlock(&d->lock);
	return ret;
}

int vfio_dev_doorbell_unhold(struct vfio_dev *d, enum vfio_doorbell_path path)
{
	int ret;

	if (path == VFIO_DOORBELL_SLOW_HOLD)
		return -EINVAL;
	pthread_mutex_lock(&d->lock);
	/* A destination loaded the device's state through VFIO: its shadow-tail enable too. */
	vfio_dev_read_shadow_locked(d);
	ret = vfio_dev_replay_locked(d, false);
	if (ret >= 0) {
		/* A write trapped meanwhile waits on the lock and finds the new path. */
		d->path = path;
		int armed = vfio_dev_sync_fast_locked(d);
		ret = armed < 0 ? armed : ret;
	}
	pthread_mutex_unlock(&d->lock);
	TRACE(vfio_doorbell_path, "unhold -> %d: %d", path, ret);
	return ret;
}

size_t vfio_dev_doorbell_copy_held(struct vfio_dev *d, struct vfio_doorbell_write *out, size_t max)
{
	pthread_mutex_lock(&d->lock);
	size_t n = d->nr_held < max ? d->nr_held : max;

	if (n)
		memcpy(out, d->held, n * sizeof(*out));
	pthread_mutex_unlock(&d->lock);
	return n;
}

void vfio_dev_doorbell_drop_held(struct vfio_dev *d)
{
	pthread_mutex_lock(&d->lock);
	d->nr_held = 0;
	pthread_mutex_unlock(&d->lock);
}

/* A register write the device could have been given: inside BAR0, 4 or 8 bytes, aligned. */
static bool vfio_dev_write_valid(const struct vfio_dev *d, const struct vfio_doorbell_write *w)
{
	return (w->size == 4 || w->size == 8) && !(w->offset % w->size) &&
	       (uint64_t)w->offset + w->size <= d->bar0_size;
}

int vfio_dev_doorbell_push_held(struct vfio_dev *d, const struct vfio_doorbell_write *w, size_t n)
{
	int ret;

	for (size_t i = 0; i < n; i++)
		if (!vfio_dev_write_valid(d, &w[i]))
			return -EINVAL;
	pthread_mutex_lock(&d->lock);
	/* All or nothing: the room first, then appends that cannot fail. */
	ret = d->nr_held + n > VFIO_DEV_HELD_MAX ? -ENOSPC : vfio_dev_hold_reserve_locked(d, n);
	if (ret == 0) {
		if (n)
			memcpy(d->held + d->nr_held, w, n * sizeof(*w));
		d->nr_held += n;
	}
	pthread_mutex_unlock(&d->lock);
	return ret;
}

bool vfio_dev_doorbell_hold_broken(struct vfio_dev *d)
{
	pthread_mutex_lock(&d->lock);
	bool broken = d->hold_broken;
	pthread_mutex_unlock(&d->lock);
	return broken;
}

int vfio_dev_quiet(struct vfio_dev *d)
{
	uint64_t st = 0;

	/* A kick the device has not read yet is work it will start. */
	if (d->db_fd >= 0 && vfio_dev_eventfd_unread(d->db_fd))
		return 0;
	if (vfio_region_read(d->vdev, VFIO_PCI_BAR0_REGION_INDEX, SDMA_REG_STATUS, &st, 8) != 8)
		return -EIO;
	return (st >> SDMA_STATUS_IDLE_SHIFT) & 1;
}

size_t vfio_dev_doorbell_held_count(struct vfio_dev *d)
{
	pthread_mutex_lock(&d->lock);
	size_t n = d->nr_held;
	pthread_mutex_unlock(&d->lock);
	return n;
}

void vfio_dev_get_stats(struct vfio_dev *d, struct vfio_dev_stats *st)
{
	pthread_mutex_lock(&d->lock);
	*st = d->st;
	st->bar_reads = __atomic_load_n(&d->st.bar_reads, __ATOMIC_RELAXED);
	st->bar_writes = __atomic_load_n(&d->st.bar_writes, __ATOMIC_RELAXED);
	st->bar_errors = __atomic_load_n(&d->st.bar_errors, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&d->lock);
}
