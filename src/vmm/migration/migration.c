// SPDX-License-Identifier: Apache-2.0
/*
 * The engine object: status (compare-and-set from an expected state, as QEMU's
 * migrate_set_state), parameters and capabilities, blockers, events, queries, and the
 * start of the source and destination threads (source.c, dest.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "common/log.h"
#include "common/trace.h"
#include "vmm/machine.h"
#include "vmm/migration/internal.h"

static const char *const mig_status_names[] = {
    [MIG_STATUS_NONE] = "none",
    [MIG_STATUS_SETUP] = "setup",
    [MIG_STATUS_ACTIVE] = "active",
    [MIG_STATUS_DEVICE] = "device",
    [MIG_STATUS_COMPLETED] = "completed",
    [MIG_STATUS_FAILED] = "failed",
    [MIG_STATUS_CANCELLING] = "cancelling",
    [MIG_STATUS_CANCELLED] = "cancelled",
    [MIG_STATUS_POSTCOPY_ACTIVE] = "postcopy-active",
};

const char *migration_status_name(enum mig_status s)
{
	return (unsigned)s < sizeof(mig_status_names) / sizeof(mig_status_names[0])
		   ? mig_status_names[s]
		   : "unknown";
}

static const char *const mig_cap_names[MIG_CAP__COUNT] = {
    [MIG_CAP_MULTIFD] = "multifd",
    [MIG_CAP_AUTO_CONVERGE] = "auto-converge",
    [MIG_CAP_EVENTS] = "events",
    [MIG_CAP_X_VMIG_KEEP_LISTENING] = "x-vmig-keep-listening",
    [MIG_CAP_POSTCOPY_RAM] = "postcopy-ram",
};

const char *migration_cap_name(enum mig_cap c)
{
	return (unsigned)c < MIG_CAP__COUNT ? mig_cap_names[c] : NULL;
}

uint64_t mig_drain_deadline_ns(const struct migration *mig)
{
	return mig->drain_deadline_ns;
}

uint64_t mig_now_ns(void)
{
	return monotonic_ns();
}

uint64_t mig_realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Status, errors, events ---------------------------------------------------------------- */

void mig_emit(struct migration *mig, const char *name, const char *fmt, ...)
{
	char data[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(data, sizeof(data), fmt, ap);
	va_end(ap);
	if (mig->hooks.event)
		mig->hooks.event(mig->hooks.opaque, name, data);
}

bool mig_set_status(struct migration *mig, enum mig_status from, enum mig_status to)
{
	pthread_mutex_lock(&mig->lock);
	bool ok = mig->status == from;
	if (ok)
		mig->status = to;
	pthread_cond_broadcast(&mig->cond);
	pthread_mutex_unlock(&mig->lock);
	if (ok) {
		TRACE(mig_status, "%s -> %s", migration_status_name(from),
		      migration_status_name(to));
		mig_emit(mig, "MIGRATION", "{\"status\": \"%s\"}", migration_status_name(to));
	}
	return ok;
}

enum mig_status mig_get_status(struct migration *mig)
{
	pthread_mutex_lock(&mig->lock);
	enum mig_status s = mig->status;
	pthread_mutex_unlock(&mig->lock);
	return s;
}

void mig_set_error(struct migration *mig, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&mig->lock);
	if (!mig->error[0]) {
		va_start(ap, fmt);
		vsnprintf(mig->error, sizeof(mig->error), fmt, ap);
		va_end(ap);
		TRACE(mig_error, "%s", mig->error);
	}
	pthread_mutex_unlock(&mig->lock);
}

bool mig_cancelled(const struct migration *mig)
{
	return __atomic_load_n(&mig->cancel, __ATOMIC_ACQUIRE);
}

bool mig_failing(struct migration *mig)
{
	pthread_mutex_lock(&mig->lock);
	bool failing = mig->cancel || mig->error[0];
	pthread_mutex_unlock(&mig->lock);
	return failing;
}

void mig_unblock_all(struct migration *mig)
{
	/* Under the lock: the fds are closed under it too, and a number may be reused. */
	pthread_mutex_lock(&mig->lock);
	for (unsigned i = 0; i < mig->nr_chans; i++) {
		int how = !mig->is_source ? SHUT_RD : i == 0 ? SHUT_WR : SHUT_RDWR;
		mig_chan_shutdown(&mig->chans[i], how);
	}
	pthread_mutex_unlock(&mig->lock);
}

void mig_unblock_hard(struct migration *mig)
{
	pthread_mutex_lock(&mig->lock);
	for (unsigned i = 0; i < mig->nr_chans; i++)
		mig_chan_shutdown(&mig->chans[i], SHUT_RDWR);
	pthread_mutex_unlock(&mig->lock);
}

/* Sections ------------------------------------------------------------------------------ */

static int mig_add_section(struct migration *mig, const struct mig_section_ops *ops, uint16_t id,
			   void *state, bool owns)
{
	if (!id || id >= MIG_SEC__MAX || id == MIG_SEC_STREAM)
		return -EINVAL;
	if (mig_section_find(mig, id))
		return -EEXIST;
	if (mig->nr_sections == MIG_MAX_SECTIONS)
		return -ENOSPC;
	mig->sections[mig->nr_sections++] = (struct mig_section){
	    .ops = ops, .id = id, .mig = mig, .state = state, .owns_state = owns};
	return 0;
}

int mig_register(struct migration *mig, const struct mig_section_ops *ops, uint16_t id, void *state)
{
	return mig_add_section(mig, ops, id, state, true);
}

int migration_register_section(struct migration *mig, const struct mig_section_ops *ops,
			       uint16_t id, void *state)
{
	pthread_mutex_lock(&mig->lock);
	bool idle = !mig->thread_live;
	pthread_mutex_unlock(&mig->lock);
	return idle ? mig_add_section(mig, ops, id, state, false) : -EBUSY;
}

struct mig_section *mig_section_find(struct migration *mig, uint16_t id)
{
	for (unsigned i = 0; i < mig->nr_sections; i++) {
		if (mig->sections[i].id == id)
			return &mig->sections[i];
	}
	return NULL;
}

/* Life cycle ------------------------------------------------------------------------------ */

static const struct mig_params mig_default_params = {
    .downtime_limit_ms = 300,
    .max_bandwidth = 0,
    .multifd_channels = 2,
    .cpu_throttle_initial = 20,
    .cpu_throttle_increment = 10,
    .max_cpu_throttle = 99,
    .x_vmig_max_passes = 0,
    .x_vmig_drain_limit_ms = 5000,
};

int migration_create(struct machine *m, const struct mig_hooks *hooks, struct migration **out)
{
	struct migration *mig = calloc(1, sizeof(*mig));
	int ret;

	if (!mig)
		return -ENOMEM;
	mig->m = m;
	if (hooks)
		mig->hooks = *hooks;
	mig->params = mig_default_params;
	mig->caps[MIG_CAP_EVENTS] = true;
	mig->listen_fd = -1;
	for (unsigned i = 0; i <= MIG_MAX_CHANNELS; i++)
		mig->chans[i].fd = -1;
	pthread_mutex_init(&mig->lock, NULL);
	pthread_cond_init(&mig->cond, NULL);
	if ((ret = mig_ram_register(mig)) < 0 || (ret = mig_cpu_register(mig)) < 0) {
		migration_destroy(mig);
		return ret;
	}
	*out = mig;
	return 0;
}

static void mig_join(struct migration *mig)
{
	if (mig->thread_live)
		pthread_join(mig->thread, NULL);
	mig->thread_live = false;
}

void migration_destroy(struct migration *mig)
{
	if (!mig)
		return;
	__atomic_store_n(&mig->cancel, true, __ATOMIC_RELEASE);
	mig_unblock_hard(mig);
	mig_join(mig);
	for (unsigned i = 0; i < mig->nr_sections; i++) {
		if (mig->sections[i].owns_state)
			free(mig->sections[i].state);
	}
	for (unsigned i = 0; i < mig->nr_blockers; i++)
		free(mig->blockers[i]);
	mig_tls_objects_free(mig);
	mig_pc_free(mig, true);
	free(mig->timeline);
	if (mig->listen_fd >= 0)
		close(mig->listen_fd);
	pthread_mutex_destroy(&mig->lock);
	pthread_cond_destroy(&mig->cond);
	free(mig);
}

int migration_add_blocker(struct migration *mig, const char *reason)
{
	char *copy = strdup(reason);

	if (!copy)
		return -ENOMEM;
	pthread_mutex_lock(&mig->lock);
	bool full = mig->nr_blockers == sizeof(mig->blockers) / sizeof(mig->blockers[0]);
	if (!full)
		mig->blockers[mig->nr_blockers++] = copy;
	pthread_mutex_unlock(&mig->lock);
	if (full)
		free(copy);
	return full ? -ENOSPC : 0;
}

static bool mig_status_active(enum mig_status s)
{
	return s == MIG_STATUS_SETUP || s == MIG_STATUS_ACTIVE || s == MIG_STATUS_DEVICE ||
	       s == MIG_STATUS_CANCELLING || s == MIG_STATUS_POSTCOPY_ACTIVE;
}

/* Under lock: may a new migration (either direction) start? */
static int mig_check_idle(struct migration *mig, char *err, size_t errlen)
{
	if (mig_status_active(mig->status) || (mig->thread_live && !mig->is_source)) {
		snprintf(err, errlen, "There's a migration process in progress");
		return -EBUSY;
	}
	if (mig->nr_blockers) {
		snprintf(err, errlen, "%s", mig->blockers[0]);
		return -EPERM;
	}
	if (mig->postmigrate) {
		snprintf(err, errlen,
			 "this VM already migrated away (postmigrate): nothing to send");
		return -EPERM;
	}
	return 0;
}

static void mig_reset_run(struct migration *mig)
{
	mig->cancel = false;
	mig->error[0] = 0;
	mig->error_is_cause = false;
	mig->stes_reinstalled = mig->held_replayed = 0;
	mig->passes = mig->expected_downtime_ms = mig->throttle_pct = 0;
	mig->dirty_pages_rate = mig->precopy_bytes = mig->downtime_bytes = 0;
	mig->mbps = 0;
	mig->rtt_us = mig->last_sync_us = mig->downtime_us = 0;
	mig->stop_probe_us = mig->dest_probe_us = 0;
	mig->start_ns = mig_now_ns();
	mig->setup_ns = mig->end_ns = mig->stop_ns = 0;
	mig->phases = (struct mig_downtime_phases){0};
	mig->committed = false;
	mig->end_sent = false;
	mig->postcopy = mig->postcopy_asked = mig->incoming_told = mig->precopy_over = false;
	mig_pc_free(mig, false);
	mig->rp_msg = 0;
	mig->rp_done = false;
	mig->crew_done = 0;
	mig->refused = 0;
	mig->last_refusal[0] = 0;
	mig_timeline_reset(mig);
	for (unsigned i = 0; i <= MIG_MAX_CHANNELS; i++)
		mig_chan_init(&mig->chans[i], mig, -1, i);
	if (getrandom(mig->session, sizeof(mig->session), 0) != sizeof(mig->session))
		memset(mig->session, 0x5a, sizeof(mig->session));
}

static int mig_check_uri_kind(struct migration *mig, const char *uri, char *err, size_t errlen)
{
	char expect[128];
	int ret = mig_uri_parse(uri, &mig->uri, expect, sizeof(expect));

	if (ret < 0)
		snprintf(err, errlen, "'%.64s' is not a migration URI: expected %s", uri, expect);
	return ret;
}

/* What post-copy cannot do yet, said at migrate rather than at the switch. */
static int mig_check_postcopy(struct migration *mig, char *err, size_t errlen)
{
	const char *no = NULL;

	if (!mig->caps[MIG_CAP_POSTCOPY_RAM])
		return 0;
	if (mig->uri.kind == MIG_URI_FILE)
		no = "a file: stream has no destination to run the guest";
	else if (mig->caps[MIG_CAP_MULTIFD])
		no = "its pages travel on the main channel only so far: turn multifd off";
	else if (mig_section_find(mig, MIG_SEC_VFIO) || mig_section_find(mig, MIG_SEC_VSMMU))
		no = "the device's DMA to pages not yet arrived is not built yet (issue 12): "
		     "run the VM with --no-devices, or turn postcopy-ram off";
	if (!no)
		return 0;
	snprintf(err, errlen, "postcopy-ram: %s", no);
	return -EINVAL;
}

static int mig_check_uri(struct migration *mig, const char *uri, char *err, size_t errlen)
{
	int ret = mig_check_uri_kind(mig, uri, err, errlen);

	if (ret == 0)
		ret = mig_check_postcopy(mig, err, errlen);

	if (ret == 0 && mig->uri.kind == MIG_URI_FILE && mig->caps[MIG_CAP_MULTIFD]) {
		snprintf(err, errlen,
			 "multifd needs a tcp: or unix: URI (a file: stream is one "
			 "channel): turn the capability off");
		return -EINVAL;
	}
	return ret;
}

int migration_start(struct migration *mig, const char *uri, char *err, size_t errlen)
{
	int ret;

	if (__atomic_load_n(&mig->m->vm->stop, __ATOMIC_ACQUIRE) || !mig->m->vm->started) {
		snprintf(err, errlen, "the VM is not running: nothing to migrate");
		return -ESRCH;
	}
	mig_join(mig);
	pthread_mutex_lock(&mig->lock);
	ret = mig_check_idle(mig, err, errlen);
	if (ret == 0)
		ret = mig_check_uri(mig, uri, err, errlen);
	if (ret == 0)
		ret = mig_tls_resolve(mig, true, err, errlen);
	if (ret == 0) {
		mig->is_source = true;
		mig_reset_run(mig);
		mig->nr_chans =
		    1 + (mig->caps[MIG_CAP_MULTIFD] ? (unsigned)mig->params.multifd_channels : 0);
		/* setup at once: a migrate_cancel right after migrate must find it running. */
		mig->status = MIG_STATUS_SETUP;
		ret = -pthread_create(&mig->thread, NULL, mig_source_thread, mig);
		mig->thread_live = ret == 0;
		if (ret < 0) {
			snprintf(err, errlen, "cannot start the migration thread: %s",
				 strerror(-ret));
			mig_tls_forget(mig);
		}
	}
	pthread_mutex_unlock(&mig->lock);
	TRACE(mig_start, "uri=%s -> %d", uri, ret);
	return ret;
}

int migration_start_postcopy(struct migration *mig, char *err, size_t errlen)
{
	int ret = 0;

	pthread_mutex_lock(&mig->lock);
	if (!mig->is_source || !mig_status_active(mig->status) ||
	    mig->status == MIG_STATUS_CANCELLING) {
		snprintf(err, errlen, "no outgoing migration is running: start one with migrate");
		ret = -EINVAL;
	} else if (!mig->caps[MIG_CAP_POSTCOPY_RAM]) {
		snprintf(err, errlen,
			 "postcopy-ram was off when this migration started: set the capability "
			 "before migrate");
		ret = -EINVAL;
	} else if (mig->precopy_over) {
		snprintf(err, errlen, "%s",
			 mig->postcopy ? "post-copy is already under way"
				       : "too late: the switchover has begun and the migration "
					 "ends in pre-copy");
		ret = -EINVAL;
	} else {
		__atomic_store_n(&mig->postcopy_asked, true, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&mig->lock);
	TRACE(mig_start_postcopy, "-> %d", ret);
	return ret;
}

int migration_cancel(struct migration *mig)
{
	pthread_mutex_lock(&mig->lock);
	enum mig_status s = mig->status;
	bool live = mig->is_source &&
		    (s == MIG_STATUS_SETUP || s == MIG_STATUS_ACTIVE || s == MIG_STATUS_DEVICE);
	/* Past COMMIT the destination may already run: a cancel could make two copies. */
	bool committed = mig->committed;
	if (live && !committed)
		__atomic_store_n(&mig->cancel, true, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&mig->lock);
	if (!live)
		return -ENOENT;
	if (committed) {
		TRACE(mig_cancel, "ignored: COMMIT was sent");
		return -EALREADY;
	}
	/* If the thread moved on meanwhile, it still sees the cancel flag. */
	mig_set_status(mig, s, MIG_STATUS_CANCELLING);
	mig_unblock_hard(mig);
	TRACE(mig_cancel, "in %s", migration_status_name(s));
	return 0;
}

int migration_incoming(struct migration *mig, const char *uri, char *err, size_t errlen)
{
	int ret;

	pthread_mutex_lock(&mig->lock);
	ret =
	    mig->status != MIG_STATUS_NONE || mig->thread_live || mig->m->vm->started ? -EBUSY : 0;
	if (ret < 0)
		snprintf(err, errlen, "The incoming migration has already been started");
	if (ret == 0 && mig->nr_blockers) {
		snprintf(err, errlen, "%s", mig->blockers[0]);
		ret = -EPERM;
	}
	if (ret == 0)
		ret = mig_check_uri_kind(mig, uri, err, errlen);
	if (ret == 0)
		ret = mig_tls_resolve(mig, false, err, errlen);
	if (ret == 0) {
		mig->is_source = false;
		mig_reset_run(mig);
		ret = mig->listen_fd = mig_uri_listen(&mig->uri, err, errlen);
	}
	if (ret >= 0) {
		mig->incoming_pending = true;
		ret = -pthread_create(&mig->thread, NULL, mig_dest_thread, mig);
		mig->thread_live = ret == 0;
	}
	if (ret < 0 && !mig->thread_live && mig->status == MIG_STATUS_NONE)
		mig_tls_forget(mig); /* nothing of this run uses the objects */
	pthread_mutex_unlock(&mig->lock);
	TRACE(mig_incoming, "uri=%s -> %d", uri, ret);
	return ret < 0 ? ret : 0;
}

/* Queries ------------------------------------------------------------------------------- */

static uint64_t mig_bytes(struct migration *mig)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < mig->nr_chans; i++) {
		sum += __atomic_load_n(&mig->chans[i].bytes_out, __ATOMIC_RELAXED);
		sum += __atomic_load_n(&mig->chans[i].bytes_in, __ATOMIC_RELAXED);
	}
	return sum;
}

static void mig_query_times(struct migration *mig, struct mig_info *o)
{
	uint64_t end = mig->end_ns ? mig->end_ns : mig_now_ns();

	o->total_time_ms = mig->start_ns ? (end - mig->start_ns) / 1000000 : 0;
	o->setup_time_ms = mig->setup_ns / 1000000;
	o->downtime_us = mig->downtime_us;
	o->downtime_ms = (mig->downtime_us + 500) / 1000;
	o->expected_downtime_ms = __atomic_load_n(&mig->expected_downtime_ms, __ATOMIC_RELAXED);
}

/* Under lock. */
static void mig_query_tls(struct migration *mig, struct mig_info *o)
{
	uint64_t n = __atomic_load_n(&mig->tls_handshakes, __ATOMIC_RELAXED);

	o->tls.enabled = mig->tls_enabled;
	snprintf(o->tls.peer, sizeof(o->tls.peer), "%s", mig->tls_peer);
	o->tls.handshakes = n;
	o->tls.handshake_us_max = __atomic_load_n(&mig->tls_handshake_us_max, __ATOMIC_RELAXED);
	o->tls.handshake_us_mean =
	    n ? __atomic_load_n(&mig->tls_handshake_us_sum, __ATOMIC_RELAXED) / n : 0;
}

void migration_query(struct migration *mig, struct mig_info *o)
{
	*o = (struct mig_info){0};
	pthread_mutex_lock(&mig->lock);
	o->status = mig->status;
	o->is_source = mig->is_source;
	snprintf(o->error_desc, sizeof(o->error_desc), "%s", mig->error);
	mig_query_times(mig, o);
	o->passes = __atomic_load_n(&mig->passes, __ATOMIC_RELAXED);
	o->cpu_throttle_percentage = __atomic_load_n(&mig->throttle_pct, __ATOMIC_RELAXED);
	o->ram.transferred = mig_bytes(mig);
	o->ram.dirty_sync_count = o->passes;
	o->ram.dirty_pages_rate = __atomic_load_n(&mig->dirty_pages_rate, __ATOMIC_RELAXED);
	o->ram.precopy_bytes = __atomic_load_n(&mig->precopy_bytes, __ATOMIC_RELAXED);
	o->ram.downtime_bytes = __atomic_load_n(&mig->downtime_bytes, __ATOMIC_RELAXED);
	o->ram.mbps = mig->mbps;
	o->channels = mig->nr_chans;
	o->phases = mig->phases;
	o->switchover.held_replayed = mig->held_replayed;
	o->switchover.stes_reinstalled = mig->stes_reinstalled;
	o->refused = mig->refused;
	snprintf(o->last_refusal, sizeof(o->last_refusal), "%s", mig->last_refusal);
	mig_query_tls(mig, o);
	mig_pc_query(mig, o); /* under the lock: a new run frees the post-copy state */
	pthread_mutex_unlock(&mig->lock);
	if (o->status == MIG_STATUS_NONE)
		return;
	mig_ram_stats(mig->ram, o);
	mig_query_sections(mig, o);
}

void mig_query_sections(struct migration *mig, struct mig_info *o)
{
	for (unsigned i = 0; i < mig->nr_sections; i++) {
		struct mig_section *s = &mig->sections[i];
		if (s->ops->query)
			s->ops->query(s, o);
	}
}

void migration_get_params(struct migration *mig, struct mig_params *out)
{
	pthread_mutex_lock(&mig->lock);
	*out = mig->params;
	pthread_mutex_unlock(&mig->lock);
}

static int mig_param_range(const char *name, uint64_t v, uint64_t lo, uint64_t hi, char *err,
			   size_t errlen)
{
	if (v >= lo && v <= hi)
		return 0;
	snprintf(err, errlen, "Parameter '%s' expects a value between %llu and %llu", name,
		 (unsigned long long)lo, (unsigned long long)hi);
	return -EINVAL;
}

static int mig_params_check(const struct mig_params *p, unsigned which, char *err, size_t errlen)
{
	struct {
		unsigned bit;
		const char *name;
		uint64_t v, lo, hi;
	} t[] = {
	    {MIG_PARAM_DOWNTIME_LIMIT, "downtime-limit", p->downtime_limit_ms, 0, 2000000},
	    {MIG_PARAM_MAX_BANDWIDTH, "max-bandwidth", p->max_bandwidth, 0, INT64_MAX},
	    {MIG_PARAM_MULTIFD_CHANNELS, "multifd-channels", p->multifd_channels, 1,
	     MIG_MAX_CHANNELS},
	    {MIG_PARAM_CPU_THROTTLE_INITIAL, "cpu-throttle-initial", p->cpu_throttle_initial, 1,
	     99},
	    {MIG_PARAM_CPU_THROTTLE_INCREMENT, "cpu-throttle-increment", p->cpu_throttle_increment,
	     1, 99},
	    {MIG_PARAM_MAX_CPU_THROTTLE, "max-cpu-throttle", p->max_cpu_throttle, 1, 99},
	    {MIG_PARAM_X_VMIG_MAX_PASSES, "x-vmig-max-passes", p->x_vmig_max_passes, 0, 1000000},
	    {MIG_PARAM_X_VMIG_DEVICE_DIRTY, "x-vmig-device-dirty", p->x_vmig_device_dirty, 0, 15},
	    {MIG_PARAM_X_VMIG_DRAIN_LIMIT, "x-vmig-drain-limit", p->x_vmig_drain_limit_ms, 1,
	     600000},
	    {MIG_PARAM_X_VMIG_POSTCOPY_AFTER, "x-vmig-postcopy-after", p->x_vmig_postcopy_after, 0,
	     1000000},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if ((which & t[i].bit) &&
		    mig_param_range(t[i].name, t[i].v, t[i].lo, t[i].hi, err, errlen) < 0)
			return -EINVAL;
	}
	return 0;
}

#define MIG_PARAM_SET(which, bit, dst, src, field)                                                 \
	do {                                                                                       \
		if ((which) & (bit))                                                               \
			__atomic_store_n(&(dst)->field, (src)->field, __ATOMIC_RELAXED);           \
	} while (0)
#define MIG_PARAM_SET_STR(which, bit, dst, src, field)                                             \
	do {                                                                                       \
		if ((which) & (bit))                                                               \
			snprintf((dst)->field, sizeof((dst)->field), "%s", (src)->field);          \
	} while (0)

int migration_set_params(struct migration *mig, const struct mig_params *p, unsigned which,
			 char *err, size_t errlen)
{
	int ret = mig_params_check(p, which, err, errlen);

	if (ret < 0)
		return ret;
	pthread_mutex_lock(&mig->lock);
	ret = mig_tls_params_check(mig, p, which, err, errlen);
	if (ret < 0) {
		pthread_mutex_unlock(&mig->lock);
		return ret;
	}
	struct mig_params *d = &mig->params;
	MIG_PARAM_SET(which, MIG_PARAM_DOWNTIME_LIMIT, d, p, downtime_limit_ms);
	MIG_PARAM_SET(which, MIG_PARAM_MAX_BANDWIDTH, d, p, max_bandwidth);
	MIG_PARAM_SET(which, MIG_PARAM_MULTIFD_CHANNELS, d, p, multifd_channels);
	MIG_PARAM_SET(which, MIG_PARAM_CPU_THROTTLE_INITIAL, d, p, cpu_throttle_initial);
	MIG_PARAM_SET(which, MIG_PARAM_CPU_THROTTLE_INCREMENT, d, p, cpu_throttle_increment);
	MIG_PARAM_SET(which, MIG_PARAM_MAX_CPU_THROTTLE, d, p, max_cpu_throttle);
	MIG_PARAM_SET(which, MIG_PARAM_X_VMIG_MAX_PASSES, d, p, x_vmig_max_passes);
	MIG_PARAM_SET(which, MIG_PARAM_X_VMIG_DEVICE_DIRTY, d, p, x_vmig_device_dirty);
	MIG_PARAM_SET(which, MIG_PARAM_X_VMIG_DRAIN_LIMIT, d, p, x_vmig_drain_limit_ms);
	MIG_PARAM_SET(which, MIG_PARAM_X_VMIG_POSTCOPY_AFTER, d, p, x_vmig_postcopy_after);
	MIG_PARAM_SET_STR(which, MIG_PARAM_TLS_CREDS, d, p, tls_creds);
	MIG_PARAM_SET_STR(which, MIG_PARAM_TLS_HOSTNAME, d, p, tls_hostname);
	MIG_PARAM_SET_STR(which, MIG_PARAM_TLS_AUTHZ, d, p, tls_authz);
	pthread_mutex_unlock(&mig->lock);
	return 0;
}

bool migration_get_cap(struct migration *mig, enum mig_cap c)
{
	pthread_mutex_lock(&mig->lock);
	bool on = (unsigned)c < MIG_CAP__COUNT && mig->caps[c];
	pthread_mutex_unlock(&mig->lock);
	return on;
}

int migration_set_cap(struct migration *mig, enum mig_cap c, bool on, char *err, size_t errlen)
{
	int ret = 0;

	pthread_mutex_lock(&mig->lock);
	if ((unsigned)c >= MIG_CAP__COUNT) {
		snprintf(err, errlen, "Invalid capability");
		ret = -EINVAL;
	} else if (mig_status_active(mig->status)) {
		snprintf(err, errlen, "There's a migration process in progress");
		ret = -EBUSY;
	} else {
		mig->caps[c] = on;
	}
	pthread_mutex_unlock(&mig->lock);
	return ret;
}

bool migration_source_done(struct migration *mig)
{
	pthread_mutex_lock(&mig->lock);
	bool done = mig->is_source && mig->postmigrate;
	pthread_mutex_unlock(&mig->lock);
	return done;
}

bool migration_incoming_pending(struct migration *mig)
{
	return __atomic_load_n(&mig->incoming_pending, __ATOMIC_ACQUIRE);
}

/* The guest goes on here after all: every component runs again before its vCPUs do. */
static int mig_release_sections(struct migration *mig, char *err, size_t errlen)
{
	for (unsigned i = 0; i < mig->nr_sections; i++) {
		struct mig_section *s = &mig->sections[i];
		int ret = s->ops->release ? s->ops->release(s) : 0;
		if (ret < 0) {
			snprintf(err, errlen, "%s cannot run again here: %s", s->ops->name,
				 strerror(-ret));
			return ret;
		}
	}
	return 0;
}

int migration_release_source(struct migration *mig, char *err, size_t errlen)
{
	int ret = 0;

	pthread_mutex_lock(&mig->lock);
	if (!mig->is_source || !mig->postmigrate) {
		snprintf(err, errlen, "this VM is not in postmigrate");
		ret = -ENOENT;
	} else if (mig->status == MIG_STATUS_COMPLETED && mig->uri.kind != MIG_URI_FILE) {
		snprintf(err, errlen,
			 "the migration completed: the guest runs on the destination "
			 "and resuming it here would run two copies");
		ret = -EPERM;
	} else if (mig_pc_guest_ran(mig)) {
		snprintf(err, errlen,
			 "post-copy: the guest ran on the destination, with pages only this "
			 "copy holds; resuming it here could run two copies");
		ret = -EPERM;
	}
	pthread_mutex_unlock(&mig->lock);
	if (ret == 0)
		ret = mig_release_sections(mig, err, errlen);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&mig->lock);
	mig->postmigrate = false;
	pthread_mutex_unlock(&mig->lock);
	vm_resume(mig->m->vm, VM_PAUSE_MIGRATION);
	return 0;
}

int migration_peek_shape(const char *path, uint64_t *mem_size, unsigned *vcpus, char *err,
			 size_t errlen)
{
	struct mig_hdr h;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	ssize_t n = read(fd, &h, sizeof(h));
	close(fd);
	if (n != (ssize_t)sizeof(h)) {
		snprintf(err, errlen, "%s: too short for a vmig migration stream", path);
		return -EINVAL;
	}
	int ret = mig_hdr_check(&h, err, errlen);
	if (ret == 0 && (h.nr_vcpus == 0 || h.nr_vcpus > 64 || !h.mem_size || h.mem_size % 4096 ||
			 !(h.flags & MIG_HDR_F_FILE))) {
		snprintf(err, errlen, "%s: not a saved VM (corrupt header)", path);
		ret = -EINVAL;
	}
	if (ret < 0)
		return -EINVAL;
	*mem_size = h.mem_size;
	*vcpus = h.nr_vcpus;
	return 0;
}
