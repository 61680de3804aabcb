// SPDX-License-Identifier: Apache-2.0
/* The VFIO migration section of one device (vfio_mig.h). */
#include "vmm/vfio/vfio_mig.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/trace.h"
#include "host/vfio.h"
#include "vmm/migration/migration.h"
#include "vmm/migration/section.h"
#include "vmm/vfio/vfio_dev.h"

#define VDM_CHUNK	 (256u << 10)  /* device data per record */
#define VDM_READ_WAIT_MS 5000	       /* STOP_COPY data that does not come: the device hangs */
#define VDM_MAX_STATE	 (64ull << 20) /* a device stream larger than this is refused */

enum vdm_rec_type {
	VDM_T_DATA = 1, /* payload: device bytes, in order; arg: bytes before this record */
	VDM_T_END = 2,	/* arg: total bytes; the source read the device's data to its end */
	VDM_T_HELD = 3, /* count: guest register writes held at the switchover, in order */
};

/* One held write on the wire (little endian). */
struct vdm_held_wire {
	uint32_t offset;
	uint32_t size;
	uint64_t value;
};

struct vfio_dev_mig {
	struct vfio_dev *dev;
	struct vfio_device *vdev;
	struct migration *mig;
	char name[32];
	uint64_t flags; /* VFIO_MIGRATION_* the device supports */
	uint32_t state; /* the device's migration state as last set */
	int data_fd;
	uint64_t sent, precopy_sent, stop_copy_sent;
	uint64_t initial_left; /* pre-copy initial bytes not read yet (must go first) */
	uint64_t dirty_left;
	uint64_t stop_copy_size;      /* MIG_DATA_SIZE at the last look */
	enum vfio_doorbell_path path; /* the doorbell's path before the drain held it */
	bool holding;		      /* the drain holds the guest's register writes */
	uint64_t held_sent, replayed;
	/* Destination. */
	uint8_t *buf;
	uint64_t received;
	bool got_end, got_held;
};

/* The uAPI calls ------------------------------------------------------------------------- */

static void vdm_read_state(struct vfio_dev_mig *v)
{
	struct {
		struct vfio_device_feature hdr;
		struct vfio_device_feature_mig_state s;
	} a = {.hdr = {.argsz = sizeof(a),
		       .flags = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE}};

	if (vfio_device_feature(v->vdev, &a.hdr) == 0)
		v->state = a.s.device_state;
}

static int vdm_set_state(struct vfio_dev_mig *v, uint32_t state)
{
	struct {
		struct vfio_device_feature hdr;
		struct vfio_device_feature_mig_state s;
	} a = {.hdr = {.argsz = sizeof(a),
		       .flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE},
	       .s = {.device_state = state, .data_fd = -1}};
	int ret = vfio_device_feature(v->vdev, &a.hdr);

	TRACE(vfio_mig_state, "%s: %s -> %s: %d", v->name, vfio_mig_state_name(v->state),
	      vfio_mig_state_name(state), ret);
	if (ret < 0) {
		vdm_read_state(v); /* a multi-step arc may have stopped part-way */
		return ret;
	}
	v->state = state;
	if (a.s.data_fd >= 0) {
		if (v->data_fd >= 0)
			vfio_mig_data_close(v->data_fd);
		v->data_fd = a.s.data_fd;
	}
	return 0;
}

static int vdm_get_flags(struct vfio_dev_mig *v)
{
	struct {
		struct vfio_device_feature hdr;
		struct vfio_device_feature_migration m;
	} a = {.hdr = {.argsz = sizeof(a),
		       .flags = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIGRATION}};
	int ret = vfio_device_feature(v->vdev, &a.hdr);

	v->flags = ret == 0 ? a.m.flags : 0;
	return ret;
}

static uint64_t vdm_data_size(struct vfio_dev_mig *v)
{
	struct {
		struct vfio_device_feature hdr;
		struct vfio_device_feature_mig_data_size d;
	} a = {.hdr = {.argsz = sizeof(a),
		       .flags = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE}};

	return vfio_device_feature(v->vdev, &a.hdr) == 0 ? a.d.stop_copy_length : 0;
}

static bool vdm_has_precopy(const struct vfio_dev_mig *v)
{
	return v->flags & VFIO_MIGRATION_PRE_COPY;
}

static void vdm_close_data(struct vfio_dev_mig *v)
{
	if (v->data_fd >= 0)
		vfio_mig_data_close(v->data_fd);
	v->data_fd = -1;
}

/* Source ---------------------------------------------------------------------------------- */

static int vdm_setup(struct mig_section *s)
{
	struct vfio_dev_mig *v = s->state;
	int ret = vdm_get_flags(v);

	if (ret < 0 || !(v->flags & VFIO_MIGRATION_STOP_COPY)) {
		mig_set_error(s->mig, "device %s does not support migration (VFIO migration v2)",
			      v->name);
		return ret < 0 ? ret : -EOPNOTSUPP;
	}
	v->sent = v->precopy_sent = v->stop_copy_sent = 0;
	v->initial_left = v->dirty_left = 0;
	v->holding = false;
	v->held_sent = v->replayed = 0;
	v->state = VFIO_DEVICE_STATE_RUNNING;
	if (vdm_has_precopy(v) && (ret = vdm_set_state(v, VFIO_DEVICE_STATE_PRE_COPY)) < 0)
		mig_set_error(s->mig, "device %s refused PRE_COPY: %s", v->name, strerror(-ret));
	return ret;
}

static void vdm_precopy_info(struct vfio_dev_mig *v)
{
	struct vfio_precopy_info info = {.argsz = sizeof(info)};

	/* No answer: nothing can be said to be owed before the switchover (it must not hang). */
	if (v->data_fd < 0 || vfio_mig_get_precopy_info(v->data_fd, &info) < 0)
		info.initial_bytes = info.dirty_bytes = 0;
	v->initial_left = info.initial_bytes;
	v->dirty_left = info.dirty_bytes;
}

/* What is left: pre-copy bytes, plus the stop-copy size the downtime will have to carry. */
static uint64_t vdm_pending(struct mig_section *s, uint64_t *must_precopy)
{
	struct vfio_dev_mig *v = s->state;

	if (vdm_has_precopy(v))
		vdm_precopy_info(v);
	v->stop_copy_size = vdm_data_size(v);
	*must_precopy = v->initial_left;
	return v->initial_left + v->dirty_left + v->stop_copy_size;
}

/* Reads what the data fd has now and sends it; stop_at_enomsg: pre-copy's temporary end. */
static int vdm_pump(struct vfio_dev_mig *v, struct mig_section *s, struct mig_chan *ch,
		    bool precopy)
{
	uint8_t *buf = malloc(VDM_CHUNK);
	int ret = buf ? 0 : -ENOMEM;

	while (ret == 0) {
		ssize_t n = vfio_mig_data_read(v->data_fd, buf, VDM_CHUNK);
		if (n == 0 || (precopy && n == -ENOMSG))
			break;
		if (n == -EAGAIN && !precopy) {
			struct pollfd p = {.fd = v->data_fd, .events = POLLIN};
			ret = poll(&p, 1, VDM_READ_WAIT_MS) == 1 ? 0 : -ETIMEDOUT;
			continue;
		}
		if (n < 0)
			ret = (int)n;
		else if (v->sent + (uint64_t)n > VDM_MAX_STATE)
			ret = -EFBIG;
		else
			ret = mig_chan_send(ch, s->id, VDM_T_DATA, v->sent, 0,
					    &(struct iovec){.iov_base = buf, .iov_len = (size_t)n},
					    1);
		if (ret == 0)
			v->sent += (uint64_t)n;
	}
	free(buf);
	return ret;
}

/* While held: a guest that wrote more than the held list takes cancels the migration. */
static int vdm_check_hold(struct vfio_dev_mig *v, struct mig_section *s)
{
	if (!v->holding || !vfio_dev_doorbell_hold_broken(v->dev))
		return 0;
	mig_set_error(s->mig,
		      "device %s: the guest wrote its registers more than %u times at the "
		      "switchover; its writes went through and the migration is cancelled",
		      v->name, VFIO_DEV_HELD_MAX);
	return -EOVERFLOW;
}

static int vdm_save_pass(struct mig_section *s, struct mig_chan *main)
{
	struct vfio_dev_mig *v = s->state;
	uint64_t before = v->sent;

	/* The catch-up passes after the drain: a guest that broke the hold ends them. */
	if (vdm_check_hold(v, s) < 0)
		return -EOVERFLOW;

	if (!vdm_has_precopy(v) || v->data_fd < 0)
		return 0;
	int ret = vdm_pump(v, s, main, true);
	__atomic_add_fetch(&v->precopy_sent, v->sent - before, __ATOMIC_RELAXED);
	if (ret < 0)
		mig_set_error(s->mig, "device %s: reading its pre-copy data: %s", v->name,
			      strerror(-ret));
	return ret;
}

#define VDM_DRAIN_POLL_NS 500000

static int vdm_drain_wait(struct vfio_dev_mig *v, struct mig_section *s)
{
	struct timespec pause = {0, VDM_DRAIN_POLL_NS};
	int quiet;

	while ((quiet = vfio_dev_quiet(v->dev)) == 0) {
		if (vfio_dev_doorbell_hold_broken(v->dev))
			break;
		if (mig_failing(s->mig)) /* cancelled, or the destination gave up */
			return -ECANCELED;
		if (mig_now_ns() >= mig_drain_deadline_ns(s->mig))
			return -ETIMEDOUT; /* the engine says how many faults were owed */
		nanosleep(&pause, NULL);
	}
	if (quiet < 0)
		mig_set_error(s->mig, "device %s stopped answering during the drain", v->name);
	return quiet < 0 ? quiet : 0;
}

/*
 * Test seam (tests/migration/test_mig_sva.py, held submissions): VMIG_TEST_DRAIN_HOLD_MS=N
 * keeps holding N ms (at most 10 s) after the device went quiet, so that the guest surely
 * writes the device during the drain. Unset in production.
 */
static void vdm_test_hold_longer(void)
{
	const char *v = getenv("VMIG_TEST_DRAIN_HOLD_MS");
	unsigned long ms = v ? strtoul(v, NULL, 10) : 0;

	if (ms)
		usleep((useconds_t)(ms < 10000 ? ms : 10000) * 1000);
}

/*
 * Device first: every register write of the guest is held from here (nothing new reaches
 * the device), and the device finishes what it has while the vCPUs still run and answer
 * its I/O page faults. The held writes travel in the stream; a roll-back replays them here.
 */
static int vdm_drain(struct mig_section *s)
{
	struct vfio_dev_mig *v = s->state;
	int ret;

	v->path = vfio_dev_doorbell_get_path(v->dev);
	if (v->path == VFIO_DOORBELL_SLOW_HOLD) /* never the path to return to */
		v->path = VFIO_DOORBELL_FAST;
	ret = vfio_dev_doorbell_set_path(v->dev, VFIO_DOORBELL_SLOW_HOLD);
	if (ret < 0) {
		mig_set_error(s->mig, "device %s: cannot hold the guest's submissions: %s", v->name,
			      strerror(-ret));
		return ret;
	}
	v->holding = true;
	ret = vdm_drain_wait(v, s);
	if (ret == 0)
		vdm_test_hold_longer();
	if (ret == 0)
		ret = vdm_check_hold(v, s);
	return ret;
}

/* vCPUs still run: the device finishes the DMA in flight and starts none (P2P). */
static int vdm_quiesce(struct mig_section *s)
{
	struct vfio_dev_mig *v = s->state;
	uint32_t p2p =
	    vdm_has_precopy(v) ? VFIO_DEVICE_STATE_PRE_COPY_P2P : VFIO_DEVICE_STATE_RUNNING_P2P;
	/* A guest that overflowed the hold after the drain: its writes reached the device. */
	int ret = vdm_check_hold(v, s);

	if (ret == 0 && (v->flags & VFIO_MIGRATION_P2P) && (ret = vdm_set_state(v, p2p)) < 0)
		mig_set_error(s->mig, "device %s refused %s: %s", v->name, vfio_mig_state_name(p2p),
			      strerror(-ret));
	return ret;
}

static int vdm_stop(struct mig_section *s)
{
	struct vfio_dev_mig *v = s->state;
	int ret = vdm_set_state(v, VFIO_DEVICE_STATE_STOP_COPY);

	if (ret < 0)
		mig_set_error(s->mig, "device %s refused STOP_COPY: %s", v->name, strerror(-ret));
	return ret;
}

/* The held writes, in order; the list stays with the device until the migration ends. */
static int vdm_send_held(struct vfio_dev_mig *v, struct mig_section *s, struct mig_chan *main)
{
	struct vfio_doorbell_write *w = v->holding ? calloc(VFIO_DEV_HELD_MAX, sizeof(*w)) : NULL;
	struct vdm_held_wire *wire = w ? calloc(VFIO_DEV_HELD_MAX, sizeof(*wire)) : NULL;
	size_t n = wire ? vfio_dev_doorbell_copy_held(v->dev, w, VFIO_DEV_HELD_MAX) : 0;
	int ret = v->holding && !wire ? -ENOMEM : 0;

	for (size_t i = 0; i < n; i++)
		wire[i] = (struct vdm_held_wire){w[i].offset, w[i].size, w[i].value};
	if (n)
		ret = mig_chan_send(main, s->id, VDM_T_HELD, 0, (uint32_t)n,
				    &(struct iovec){.iov_base = wire, .iov_len = n * sizeof(*wire)},
				    1);
	if (ret == 0)
		__atomic_store_n(&v->held_sent, n, __ATOMIC_RELAXED);
	free(wire);
	free(w);
	return ret;
}

static int vdm_save_complete(struct mig_section *s, struct mig_chan *main)
{
	struct vfio_dev_mig *v = s->state;
	uint64_t before = v->sent;
	int ret = v->data_fd >= 0 ? vdm_pump(v, s, main, false) : -EBADF;

	__atomic_add_fetch(&v->stop_copy_sent, v->sent - before, __ATOMIC_RELAXED);
	if (ret < 0) {
		mig_set_error(s->mig, "device %s: reading its state: %s", v->name, strerror(-ret));
		return ret;
	}
	ret = vdm_send_held(v, s, main);
	return ret < 0 ? ret : mig_chan_send(main, s->id, VDM_T_END, v->sent, 0, NULL, 0);
}

static int vdm_set_running(struct vfio_dev_mig *v)
{
	return v->state == VFIO_DEVICE_STATE_RUNNING ? 0
						     : vdm_set_state(v, VFIO_DEVICE_STATE_RUNNING);
}

/*
 * Held writes replayed while the device takes register writes but starts nothing
 * (RUNNING_P2P, on both sides), so a kick it carried is served with the configuration the
 * guest wrote last; the doorbell's path restored in the same step. Returns how many.
 */
static int vdm_replay_held(struct vfio_dev_mig *v, enum vfio_doorbell_path path)
{
	bool p2p = v->flags & VFIO_MIGRATION_P2P;
	int ret = p2p && v->state != VFIO_DEVICE_STATE_RUNNING_P2P
		      ? vdm_set_state(v, VFIO_DEVICE_STATE_RUNNING_P2P)
		      : 0;

	/* Without P2P (or refused: a descriptor that would not finish), replay it running. */
	if (!p2p || ret < 0)
		ret = vdm_set_running(v);
	if (ret == 0)
		ret = vfio_dev_doorbell_unhold(v->dev, path);
	if (ret >= 0)
		__atomic_add_fetch(&v->replayed, (uint64_t)ret, __ATOMIC_RELAXED);
	return ret;
}

/* A device that cannot take its held writes is unheld anyway: the guest's reset must reach it. */
static void vdm_unhold_failed(struct vfio_dev_mig *v, int err)
{
	size_t n = vfio_dev_doorbell_held_count(v->dev);

	if (n)
		log_error("device %s: %zu guest register writes held at the switchover could not "
			  "be replayed (%s) and are dropped",
			  v->name, n, strerror(-err));
	vfio_dev_doorbell_drop_held(v->dev);
	if (vfio_dev_doorbell_set_path(v->dev, v->path) < 0)
		vfio_dev_doorbell_set_path(v->dev, VFIO_DOORBELL_SLOW_FORWARD);
}

/* The device runs here again with what the guest wrote while it was held, in order. */
static int vdm_run_here(struct vfio_dev_mig *v)
{
	bool held = v->holding;
	int ret = held ? vdm_replay_held(v, v->path) : 0;

	if (ret < 0 && held)
		vdm_unhold_failed(v, ret);
	v->holding = false;
	if (ret >= 0)
		ret = vdm_set_running(v);
	/* Not held: the fast path re-armed from the device's state (unhold does it otherwise). */
	if (ret >= 0 && !held)
		ret = vfio_dev_doorbell_set_path(v->dev, vfio_dev_doorbell_get_path(v->dev));
	return ret < 0 ? ret : 0;
}

/*
 * Roll-back: RUNNING again and the held writes replayed, the guest's DMA goes on here.
 * Success: the device stays put, its held writes with it (a later cont replays them).
 */
static void vdm_cleanup(struct mig_section *s, bool failed)
{
	struct vfio_dev_mig *v = s->state;

	vdm_close_data(v);
	if (!failed)
		return;
	int ret = vdm_run_here(v);
	if (ret < 0) /* ERROR: only a reset leaves it, and that loses the guest's queue */
		log_error("device %s did not return to RUNNING after the failed migration (%s): "
			  "its DMA is stopped; the guest must reset it",
			  v->name, strerror(-ret));
}

/* The guest goes on here after a migration that kept its device stopped. */
static int vdm_release(struct mig_section *s)
{
	return vdm_run_here(s->state);
}

static void vdm_query(struct mig_section *s, struct mig_info *out)
{
	struct vfio_dev_mig *v = s->state;

	out->device.devices++;
	out->device.precopy_bytes += __atomic_load_n(&v->precopy_sent, __ATOMIC_RELAXED);
	out->device.stop_copy_bytes += __atomic_load_n(&v->stop_copy_sent, __ATOMIC_RELAXED);
	out->switchover.held += __atomic_load_n(&v->held_sent, __ATOMIC_RELAXED);
	out->switchover.held_replayed += __atomic_load_n(&v->replayed, __ATOMIC_RELAXED);
}

/* Destination ----------------------------------------------------------------------------- */

static int vdm_load_setup(struct mig_section *s)
{
	struct vfio_dev_mig *v = s->state;

	v->received = v->replayed = 0;
	v->got_end = v->got_held = false;
	v->state = VFIO_DEVICE_STATE_RUNNING;
	vdm_get_flags(v);
	return vdm_set_state(v, VFIO_DEVICE_STATE_RESUMING);
}

static int vdm_write_all(struct vfio_dev_mig *v, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = vfio_mig_data_write(v->data_fd, p, n);
		if (w <= 0)
			return w < 0 ? (int)w : -EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int vdm_load_data(struct vfio_dev_mig *v, struct mig_chan *ch, const struct mig_rec *r,
			 const struct mig_rec_view *rv, char *err, size_t errlen)
{
	if (v->got_end || rv->arg != v->received || !rv->len || rv->len > VDM_CHUNK ||
	    v->received + rv->len > VDM_MAX_STATE) {
		snprintf(err, errlen, "device %s: state record out of order or too large", v->name);
		return -EBADMSG;
	}
	int ret = mig_chan_recv_payload(ch, r, v->buf);
	if (ret == 0 && (ret = vdm_write_all(v, v->buf, rv->len)) < 0)
		snprintf(err, errlen,
			 "device %s refused its state (%s): the destination's "
			 "device cannot take what the source's saved",
			 v->name, strerror(-ret));
	v->received += rv->len;
	return ret;
}

/* Checked entry by entry and handed to the device's held list, all or nothing. */
static int vdm_push_held(struct vfio_dev_mig *v, const struct vdm_held_wire *wire, uint32_t n,
			 char *err, size_t errlen)
{
	struct vfio_doorbell_write *w = calloc(n, sizeof(*w));
	int ret = w ? 0 : -ENOMEM;

	for (uint32_t i = 0; w && i < n; i++)
		w[i] = (struct vfio_doorbell_write){wire[i].offset, wire[i].size, wire[i].value};
	if (ret == 0 && (ret = vfio_dev_doorbell_push_held(v->dev, w, n)) < 0) {
		snprintf(err, errlen,
			 "device %s: the held register writes are not writes this device "
			 "takes (%s)",
			 v->name, strerror(-ret));
		ret = -EBADMSG;
	}
	free(w);
	return ret;
}

static int vdm_load_held(struct vfio_dev_mig *v, struct mig_chan *ch, const struct mig_rec *r,
			 const struct mig_rec_view *rv, char *err, size_t errlen)
{
	struct vdm_held_wire *wire;
	int ret;

	if (v->got_end || v->got_held || !rv->count || rv->count > VFIO_DEV_HELD_MAX ||
	    rv->len != (uint64_t)rv->count * sizeof(*wire)) {
		snprintf(err, errlen,
			 "device %s: malformed held register writes (%u writes in %u bytes; "
			 "at most %u, once, before the end)",
			 v->name, rv->count, rv->len, VFIO_DEV_HELD_MAX);
		return -EBADMSG;
	}
	wire = malloc(rv->len);
	if (!wire)
		return -ENOMEM;
	ret = mig_chan_recv_payload(ch, r, wire);
	if (ret == 0)
		ret = vdm_push_held(v, wire, rv->count, err, errlen);
	v->got_held = ret == 0;
	free(wire);
	return ret;
}

static int vdm_load(struct mig_section *s, struct mig_chan *ch, const struct mig_rec *r, char *err,
		    size_t errlen)
{
	struct vfio_dev_mig *v = s->state;
	struct mig_rec_view rv;

	mig_rec_get(r, &rv);
	if (rv.type == VDM_T_DATA)
		return vdm_load_data(v, ch, r, &rv, err, errlen);
	if (rv.type == VDM_T_HELD)
		return vdm_load_held(v, ch, r, &rv, err, errlen);
	if (rv.type == VDM_T_END && !rv.len && !v->got_end && rv.arg == v->received) {
		v->got_end = true;
		return 0;
	}
	snprintf(err, errlen, "device %s: unexpected state record (type %u)", v->name, rv.type);
	return -EBADMSG;
}

/*
 * RESUMING -> STOP: the driver checks and applies the whole stream, or refuses it. Done
 * with the checks, before anything else is applied: a device that refuses fails the
 * migration while the rest of the VM is untouched.
 */
static int vdm_load_check(struct mig_section *s, char *err, size_t errlen)
{
	struct vfio_dev_mig *v = s->state;

	if (!v->got_end) {
		snprintf(err, errlen,
			 "no state arrived for device %s: the source has no such "
			 "device (start this side with --no-devices, as the source was)",
			 v->name);
		return -ENODATA;
	}
	int ret = vdm_set_state(v, VFIO_DEVICE_STATE_STOP);
	vdm_close_data(v);
	if (ret < 0)
		snprintf(err, errlen, "device %s refused its state: %s", v->name, strerror(-ret));
	return ret;
}

/*
 * On COMMIT, vCPUs still stopped: the source's held writes replayed while the device
 * accepts register writes but starts nothing (RUNNING_P2P), so a doorbell it carried is
 * served with the configuration the guest wrote last; the fast path re-armed from the
 * loaded state in the same step; then RUNNING.
 */
static int vdm_resume(struct mig_section *s)
{
	struct vfio_dev_mig *v = s->state;
	int ret = vdm_replay_held(v, vfio_dev_doorbell_get_path(v->dev));

	return ret < 0 ? ret : vdm_set_running(v);
}

/* A failed load leaves the device as a reset one: ready for the next incoming attempt. */
static void vdm_load_cleanup(struct mig_section *s)
{
	struct vfio_dev_mig *v = s->state;

	vdm_close_data(v);
	vfio_dev_doorbell_drop_held(v->dev); /* replayed already, or from a failed load */
	if (v->state != VFIO_DEVICE_STATE_RUNNING && vfio_device_reset(v->vdev) == 0)
		v->state = VFIO_DEVICE_STATE_RUNNING;
}

static const struct mig_section_ops vdm_ops = {
    .name = "vfio",
    .setup = vdm_setup,
    .pending = vdm_pending,
    .save_pass = vdm_save_pass,
    .drain = vdm_drain,
    .quiesce = vdm_quiesce,
    .stop = vdm_stop,
    .save_complete = vdm_save_complete,
    .cleanup = vdm_cleanup,
    .release = vdm_release,
    .query = vdm_query,
    .load_setup = vdm_load_setup,
    .load = vdm_load,
    .load_check = vdm_load_check,
    .resume = vdm_resume,
    .load_cleanup = vdm_load_cleanup,
};

int vfio_dev_mig_register(struct migration *mig, struct vfio_dev *d, unsigned index,
			  struct vfio_dev_mig **out)
{
	struct vfio_dev_mig *v = calloc(1, sizeof(*v));

	if (!v || index >= MIG_SEC_VFIO_MAX || !(v->buf = malloc(VDM_CHUNK))) {
		free(v);
		return index >= MIG_SEC_VFIO_MAX ? -EINVAL : -ENOMEM;
	}
	v->dev = d;
	v->vdev = vfio_dev_vfio(d);
	v->mig = mig;
	v->data_fd = -1;
	snprintf(v->name, sizeof(v->name), "%s", vfio_dev_name(d));
	int ret = migration_register_section(mig, &vdm_ops, (uint16_t)(MIG_SEC_VFIO + index), v);
	if (ret < 0) {
		vfio_dev_mig_free(v);
		return ret;
	}
	*out = v;
	return 0;
}

void vfio_dev_mig_free(struct vfio_dev_mig *v)
{
	if (!v)
		return;
	vdm_close_data(v);
	free(v->buf);
	free(v);
}
