// SPDX-License-Identifier: Apache-2.0
/*
 * The migration commands (docs/control.md, docs/migration.md): QEMU's names, arguments,
 * error classes and MigrationInfo fields, so that a client written for QEMU drives a vmig
 * migration unchanged. Everything here checks its input and then calls the engine
 * (src/vmm/migration/migration.h); the engine owns the migration's state.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "vmm/control/internal.h"
#include "vmm/machine.h"
#include "vmm/migration/migration.h"
#include "vmm/vfio/device_dirty.h"

/* QEMU's text when a migration is already running (QERR_MIGRATION_ACTIVE). */
#define MIG_ERR_ACTIVE "There's a migration process in progress"

/* URIs ----------------------------------------------------------------------------------- */

static int mig_uri_fail(char *err, size_t errlen, const char *why)
{
	snprintf(err, errlen, "Parameter 'uri' expects %s", why);
	return -EINVAL;
}

/* The engine's parser decides (one parser); QMP words its answer as QEMU does. */
int control_check_migrate_uri(const char *uri, char *err, size_t errlen)
{
	char expect[128];

	if (migration_check_uri(uri, expect, sizeof(expect)) == 0)
		return 0;
	return mig_uri_fail(err, errlen, expect);
}

/* Shared checks ---------------------------------------------------------------------------- */

static struct migration *mig_get(struct control *c, struct control_error *e)
{
	if (!c->cfg.mig)
		control_error_set(e, "GenericError", "Migration is not available in this vmig");
	return c->cfg.mig;
}

static bool mig_active(struct migration *mig)
{
	struct mig_info i;

	migration_query(mig, &i);
	return i.status == MIG_STATUS_SETUP || i.status == MIG_STATUS_ACTIVE ||
	       i.status == MIG_STATUS_DEVICE || i.status == MIG_STATUS_CANCELLING ||
	       i.status == MIG_STATUS_POSTCOPY_ACTIVE;
}

bool control_incoming_pending(struct control *c)
{
	struct vm *vm = c->cfg.m->vm;
	bool started;

	if (!c->cfg.incoming)
		return false;
	/* Before migrate-incoming the engine does not know it is a destination: ask the VM. */
	pthread_mutex_lock(&vm->lock);
	started = vm->started;
	pthread_mutex_unlock(&vm->lock);
	return !started || (c->cfg.mig && migration_incoming_pending(c->cfg.mig));
}

bool control_migration_stopped(struct control *c)
{
	return __atomic_load_n(&c->mig_stopped, __ATOMIC_ACQUIRE);
}

/* Options QEMU has and vmig does not: refused only when asked for (true). */
static int mig_refuse_flags(const struct json_value *args, struct control_error *e)
{
	static const char *const why[][2] = {
	    {"blk", "vmig has no block migration (guest RAM and machine state only)"},
	    {"inc", "vmig has no block migration (guest RAM and machine state only)"},
	    {"resume", "post-copy recovery (resume, migrate-recover) is not built yet"},
	};

	for (size_t i = 0; i < sizeof(why) / sizeof(why[0]); i++) {
		const struct json_value *v = json_object_get(args, why[i][0]);
		if (v && v->b) {
			control_error_set(e, "GenericError", "Parameter '%s' is not supported: %s",
					  why[i][0], why[i][1]);
			return -ENOTSUP;
		}
	}
	return 0;
}

/* migrate, migrate-incoming, migrate_cancel ----------------------------------------------- */

static int mig_check_source(struct control *c, struct control_error *e)
{
	if (control_incoming_pending(c)) {
		control_error_set(e, "GenericError", "Guest is waiting for an incoming migration");
		return -EBUSY;
	}
	if (mig_active(c->cfg.mig)) {
		control_error_set(e, "GenericError", MIG_ERR_ACTIVE);
		return -EBUSY;
	}
	return 0;
}

int cmd_migrate(struct control *c, const struct json_value *args, struct json_writer *w,
		struct control_error *e)
{
	const char *uri = json_object_get(args, "uri")->str.s;
	char err[256] = "";
	int ret;

	if (!mig_get(c, e))
		return -ENOTSUP;
	ret = mig_refuse_flags(args, e);
	if (ret == 0)
		ret = mig_check_source(c, e);
	if (ret == 0 && control_check_migrate_uri(uri, err, sizeof(err)) < 0) {
		control_error_set(e, "GenericError", "%s", err);
		return -EINVAL;
	}
	if (ret < 0)
		return ret;
	ret = migration_start(c->cfg.mig, uri, err, sizeof(err));
	if (ret < 0) {
		control_error_set(e, "GenericError", "%s", err[0] ? err : strerror(-ret));
		return ret;
	}
	json_write_begin_object(w);
	json_write_end_object(w);
	return 0;
}

int cmd_migrate_incoming(struct control *c, const struct json_value *args, struct json_writer *w,
			 struct control_error *e)
{
	const char *uri = json_object_get(args, "uri")->str.s;
	char err[256] = "";
	int ret;

	if (!mig_get(c, e))
		return -ENOTSUP;
	if (!c->cfg.incoming) {
		control_error_set(e, "GenericError",
				  "'-incoming' was not specified on the command line");
		return -EINVAL;
	}
	/* Only a deferred destination takes its URI here, and only once (as QEMU). */
	if (!c->cfg.incoming_defer || c->incoming_started) {
		control_error_set(e, "GenericError",
				  "The incoming migration has already been started");
		return -EBUSY;
	}
	ret = control_check_migrate_uri(uri, err, sizeof(err));
	if (ret == 0)
		ret = migration_incoming(c->cfg.mig, uri, err, sizeof(err));
	if (ret < 0) {
		control_error_set(e, "GenericError", "%s", err[0] ? err : strerror(-ret));
		return ret;
	}
	c->incoming_started = true;
	json_write_begin_object(w);
	json_write_end_object(w);
	return 0;
}

int cmd_migrate_cancel(struct control *c, const struct json_value *args, struct json_writer *w,
		       struct control_error *e)
{
	if (!mig_get(c, e))
		return -ENOTSUP;
	/* Nothing to cancel is not an error in QEMU either. */
	/*
	 * Past COMMIT (-EALREADY) the engine refuses: the destination may run the guest
	 * already. QEMU's migrate_cancel never fails either: the migration just ends as it
	 * ends (query-migrate tells).
	 */
	int ret = migration_cancel(c->cfg.mig);
	if (ret < 0 && ret != -ENOENT && ret != -EALREADY) {
		control_error_set(e, "GenericError", "cannot cancel the migration: %s",
				  strerror(-ret));
		return ret;
	}
	json_write_begin_object(w);
	json_write_end_object(w);
	return 0;
}

int cmd_migrate_start_postcopy(struct control *c, const struct json_value *args,
			       struct json_writer *w, struct control_error *e)
{
	char err[256];

	if (!mig_get(c, e))
		return -ENOTSUP;
	int ret = migration_start_postcopy(c->cfg.mig, err, sizeof(err));
	if (ret < 0) {
		control_error_set(e, "GenericError", "%s", err);
		return ret;
	}
	json_write_begin_object(w);
	json_write_end_object(w);
	return 0;
}

/* query-migrate ---------------------------------------------------------------------------- */

static void mig_write_u64(struct json_writer *w, const char *key, uint64_t v)
{
	json_write_key(w, key);
	json_write_uint(w, v);
}

/* QEMU reports figures from the first pass on: not in setup, not after a failure. */
static bool mig_has_stats(enum mig_status s)
{
	return s == MIG_STATUS_ACTIVE || s == MIG_STATUS_DEVICE || s == MIG_STATUS_CANCELLING ||
	       s == MIG_STATUS_COMPLETED || s == MIG_STATUS_POSTCOPY_ACTIVE;
}

static void mig_write_times(struct json_writer *w, const struct mig_info *i)
{
	mig_write_u64(w, "setup-time", i->setup_time_ms);
	mig_write_u64(w, "total-time", i->total_time_ms);
	/* A measured downtime exists only once done; before that, the estimate. */
	if (i->status == MIG_STATUS_COMPLETED)
		mig_write_u64(w, "downtime", i->downtime_ms);
	else
		mig_write_u64(w, "expected-downtime", i->expected_downtime_ms);
}

static void mig_write_ram(struct json_writer *w, const struct mig_info *i)
{
	json_write_key(w, "ram");
	json_write_begin_object(w);
	mig_write_u64(w, "transferred", i->ram.transferred);
	mig_write_u64(w, "remaining", i->ram.remaining);
	mig_write_u64(w, "total", i->ram.total);
	mig_write_u64(w, "duplicate", i->ram.duplicate);
	mig_write_u64(w, "normal", i->ram.normal);
	mig_write_u64(w, "normal-bytes", i->ram.normal_bytes);
	mig_write_u64(w, "dirty-sync-count", i->ram.dirty_sync_count);
	mig_write_u64(w, "dirty-pages-rate", i->ram.dirty_pages_rate);
	json_write_key(w, "mbps");
	json_write_double(w, i->ram.mbps);
	mig_write_u64(w, "page-size", 4096);
	mig_write_u64(w, "precopy-bytes", i->ram.precopy_bytes);
	mig_write_u64(w, "downtime-bytes", i->ram.downtime_bytes);
	mig_write_u64(w, "postcopy-bytes", i->postcopy.bytes);
	json_write_end_object(w);
}

static void mig_write_phases(struct json_writer *w, const struct mig_downtime_phases *p)
{
	json_write_key(w, "switchover-us");
	json_write_begin_object(w);
	mig_write_u64(w, "drain", p->drain_us);
	mig_write_u64(w, "quiesce", p->quiesce_us);
	mig_write_u64(w, "vcpu-stop", p->vcpu_stop_us);
	mig_write_u64(w, "device-stop", p->device_stop_us);
	mig_write_u64(w, "final-sync", p->final_sync_us);
	mig_write_u64(w, "last-ram", p->last_ram_us);
	mig_write_u64(w, "state", p->state_us);
	mig_write_u64(w, "dest-load", p->dest_load_us);
	mig_write_u64(w, "resume", p->resume_us);
	mig_write_u64(w, "post-load", p->post_load_us);
	json_write_end_object(w);
}

static bool mig_phases_reached(const struct mig_downtime_phases *p)
{
	return p->drain_us || p->quiesce_us || p->vcpu_stop_us || p->final_sync_us ||
	       p->last_ram_us || p->state_us || p->dest_load_us || p->resume_us;
}

/* The devices' part: dirty-tracking strategy (and why), their state's bytes. */
static void mig_write_device(struct json_writer *w, const struct mig_info *i)
{
	json_write_key(w, "device");
	json_write_begin_object(w);
	mig_write_u64(w, "devices", i->device.devices);
	json_write_key(w, "dirty-strategy");
	json_write_string(w, i->device.dirty_strategy);
	json_write_key(w, "dirty-why");
	json_write_string(w, i->device.dirty_why);
	mig_write_u64(w, "dirty-pages", i->device.dirty_pages);
	if (i->device.reference_pages)
		mig_write_u64(w, "x-reference-pages", i->device.reference_pages);
	mig_write_u64(w, "harvests", i->device.harvests);
	mig_write_u64(w, "harvest-us", i->device.harvest_us);
	mig_write_u64(w, "precopy-bytes", i->device.precopy_bytes);
	mig_write_u64(w, "stop-copy-bytes", i->device.stop_copy_bytes);
	json_write_end_object(w);
}

/* Faults in flight and held submissions at the switchover. */
static void mig_write_switchover(struct json_writer *w, const struct mig_info *i)
{
	json_write_key(w, "switchover");
	json_write_begin_object(w);
	mig_write_u64(w, "faults-drained", i->switchover.faults_drained);
	mig_write_u64(w, "faults-outstanding", i->switchover.faults_outstanding);
	mig_write_u64(w, "held-submissions", i->switchover.held);
	mig_write_u64(w, "held-replayed", i->switchover.held_replayed);
	mig_write_u64(w, "stes-reinstalled", i->switchover.stes_reinstalled);
	json_write_end_object(w);
}

/* vmig's own figures, under one key so that nothing collides with QEMU's. */
static void mig_write_tls(struct json_writer *w, const struct mig_info *i)
{
	json_write_key(w, "tls");
	json_write_begin_object(w);
	json_write_key(w, "peer");
	json_write_string(w, i->tls.peer);
	mig_write_u64(w, "handshakes", i->tls.handshakes);
	mig_write_u64(w, "handshake-us-max", i->tls.handshake_us_max);
	mig_write_u64(w, "handshake-us-mean", i->tls.handshake_us_mean);
	json_write_end_object(w);
}

static void mig_write_postcopy(struct json_writer *w, const struct mig_info *i)
{
	json_write_key(w, "postcopy");
	json_write_begin_object(w);
	mig_write_u64(w, "bytes", i->postcopy.bytes);
	mig_write_u64(w, "discarded-pages", i->postcopy.discarded);
	mig_write_u64(w, "requests", i->postcopy.requests);
	if (!i->is_source) {
		mig_write_u64(w, "faults", i->postcopy.faults);
		mig_write_u64(w, "duplicates", i->postcopy.duplicates);
		mig_write_u64(w, "fault-us-p50", i->postcopy.fault_us_p50);
		mig_write_u64(w, "fault-us-p99", i->postcopy.fault_us_p99);
		mig_write_u64(w, "fault-us-max", i->postcopy.fault_us_max);
	}
	json_write_end_object(w);
}

static void mig_write_vmig(struct json_writer *w, const struct mig_info *i)
{
	json_write_key(w, "x-vmig");
	json_write_begin_object(w);
	json_write_key(w, "role");
	json_write_string(w, i->is_source ? "source" : "destination");
	mig_write_u64(w, "passes", i->passes);
	mig_write_u64(w, "channels", i->channels);
	mig_write_u64(w, "skipped-pages", i->ram.skipped_pages);
	if (i->status == MIG_STATUS_COMPLETED)
		mig_write_u64(w, "downtime-us", i->downtime_us);
	if (mig_phases_reached(&i->phases))
		mig_write_phases(w, &i->phases);
	if (i->device.present) {
		mig_write_device(w, i);
		mig_write_switchover(w, i);
	}
	if (i->tls.enabled)
		mig_write_tls(w, i);
	if (i->postcopy.active)
		mig_write_postcopy(w, i);
	if (i->refused) {
		mig_write_u64(w, "refused-connections", i->refused);
		json_write_key(w, "last-refusal");
		json_write_string(w, i->last_refusal);
	}
	json_write_end_object(w);
}

static bool mig_throttling(const struct mig_info *i)
{
	return i->cpu_throttle_percentage &&
	       (i->status == MIG_STATUS_ACTIVE || i->status == MIG_STATUS_DEVICE);
}

int cmd_query_migrate(struct control *c, const struct json_value *args, struct json_writer *w,
		      struct control_error *e)
{
	struct mig_info i;

	if (!mig_get(c, e))
		return -ENOTSUP;
	migration_query(c->cfg.mig, &i);
	json_write_begin_object(w);
	if (i.status != MIG_STATUS_NONE) { /* never migrated: {} as QEMU */
		json_write_key(w, "status");
		json_write_string(w, migration_status_name(i.status));
		if (mig_has_stats(i.status)) {
			mig_write_times(w, &i);
			mig_write_ram(w, &i);
		}
		if (mig_throttling(&i))
			mig_write_u64(w, "cpu-throttle-percentage", i.cpu_throttle_percentage);
		if (i.status == MIG_STATUS_FAILED && i.error_desc[0]) {
			json_write_key(w, "error-desc");
			json_write_string(w, i.error_desc);
		}
		mig_write_vmig(w, &i);
	}
	json_write_end_object(w);
	return 0;
}

/* Parameters ------------------------------------------------------------------------------ */

struct mig_param_desc {
	const char *name;
	unsigned bit;  /* MIG_PARAM_* */
	size_t offset; /* in struct mig_params */
	uint64_t min, max;
	const char *range; /* QEMU's wording of what is accepted */
};

#define MIG_PARAM(name, bit, field, min, max, range)                                               \
	{                                                                                          \
		name, bit, offsetof(struct mig_params, field), min, max, range                     \
	}

/* Ranges as QEMU checks them (migrate_params_check), multifd-channels as the engine does. */
static const struct mig_param_desc mig_param_descs[] = {
    MIG_PARAM("downtime-limit", MIG_PARAM_DOWNTIME_LIMIT, downtime_limit_ms, 0, 2000000,
	      "an integer in the range of 0 to 2000 seconds"),
    MIG_PARAM("max-bandwidth", MIG_PARAM_MAX_BANDWIDTH, max_bandwidth, 0, 18446744073709ull,
	      "an integer in the range of 0 to 18446744073709 bytes/second"),
    MIG_PARAM("multifd-channels", MIG_PARAM_MULTIFD_CHANNELS, multifd_channels, 1, 16,
	      "a value between 1 and 16"),
    MIG_PARAM("cpu-throttle-initial", MIG_PARAM_CPU_THROTTLE_INITIAL, cpu_throttle_initial, 1, 99,
	      "an integer in the range of 1 to 99"),
    MIG_PARAM("cpu-throttle-increment", MIG_PARAM_CPU_THROTTLE_INCREMENT, cpu_throttle_increment, 1,
	      99, "an integer in the range of 1 to 99"),
    MIG_PARAM("max-cpu-throttle", MIG_PARAM_MAX_CPU_THROTTLE, max_cpu_throttle, 1, 99,
	      "an integer in the range of 1 to 99"),
    MIG_PARAM("x-vmig-max-passes", MIG_PARAM_X_VMIG_MAX_PASSES, x_vmig_max_passes, 0, 1000000,
	      "an integer in the range of 0 to 1000000"),
    MIG_PARAM("x-vmig-drain-limit", MIG_PARAM_X_VMIG_DRAIN_LIMIT, x_vmig_drain_limit_ms, 1, 600000,
	      "an integer in the range of 1 to 600000 (ms)"),
    MIG_PARAM("x-vmig-postcopy-after", MIG_PARAM_X_VMIG_POSTCOPY_AFTER, x_vmig_postcopy_after, 0,
	      1000000, "an integer in the range of 0 to 1000000 (passes)"),
};

#define MIG_NR_PARAMS (sizeof(mig_param_descs) / sizeof(mig_param_descs[0]))

static uint64_t *mig_param_field(struct mig_params *p, const struct mig_param_desc *d)
{
	return (uint64_t *)((char *)p + d->offset);
}

/* One argument into p; a value out of range names the parameter as QEMU does. */
static int mig_param_take(const struct mig_param_desc *d, const struct json_value *v,
			  struct mig_params *p, struct control_error *e)
{
	if (v->i < 0 || (uint64_t)v->i < d->min || (uint64_t)v->i > d->max) {
		control_error_set(e, "GenericError", "Parameter '%s' expects %s", d->name,
				  d->range);
		return -EINVAL;
	}
	*mig_param_field(p, d) = (uint64_t)v->i;
	return 0;
}

/* x-vmig-device-dirty: a strategy's name (device_dirty.h), the engine keeps its number. */
static int mig_param_device_dirty(const struct json_value *v, struct mig_params *p,
				  struct control_error *e)
{
	enum device_dirty_strategy how;

	if (device_dirty_parse(v->str.s, &how) < 0) {
		control_error_set(e, "GenericError",
				  "Parameter 'x-vmig-device-dirty' expects one of auto, stage2, "
				  "device-log, stage1, perpetual");
		return -EINVAL;
	}
	p->x_vmig_device_dirty = how;
	return 0;
}

/* The string parameters: TLS objects' ids and the name to check (QEMU's). */
struct mig_str_param {
	const char *name;
	unsigned bit;
	size_t offset, size;
};

#define MIG_STR_PARAM(name, bit, field)                                                            \
	{                                                                                          \
		name, bit, offsetof(struct mig_params, field),                                     \
		    sizeof(((struct mig_params *)0)->field)                                        \
	}

static const struct mig_str_param mig_str_params[] = {
    MIG_STR_PARAM("tls-creds", MIG_PARAM_TLS_CREDS, tls_creds),
    MIG_STR_PARAM("tls-hostname", MIG_PARAM_TLS_HOSTNAME, tls_hostname),
    MIG_STR_PARAM("tls-authz", MIG_PARAM_TLS_AUTHZ, tls_authz),
};

#define MIG_NR_STR_PARAMS (sizeof(mig_str_params) / sizeof(mig_str_params[0]))

static char *mig_str_field(struct mig_params *p, const struct mig_str_param *d)
{
	return (char *)p + d->offset;
}

static int mig_str_param_take(const struct mig_str_param *d, const struct json_value *v,
			      struct mig_params *p, struct control_error *e)
{
	if (v->str.len >= d->size) {
		control_error_set(e, "GenericError", "Parameter '%s' is at most %zu characters",
				  d->name, d->size - 1);
		return -EINVAL;
	}
	memcpy(mig_str_field(p, d), v->str.s, v->str.len + 1);
	return 0;
}

/* The string parameters given in args into p; their bits into *which. */
static int mig_str_params_take(const struct json_value *args, struct mig_params *p, unsigned *which,
			       struct control_error *e)
{
	for (size_t k = 0; k < MIG_NR_STR_PARAMS; k++) {
		const struct json_value *v = json_object_get(args, mig_str_params[k].name);
		if (v && mig_str_param_take(&mig_str_params[k], v, p, e) < 0)
			return -EINVAL;
		*which |= v ? mig_str_params[k].bit : 0;
	}
	return 0;
}

int cmd_migrate_set_parameters(struct control *c, const struct json_value *args,
			       struct json_writer *w, struct control_error *e)
{
	struct mig_params p;
	unsigned which = 0;
	char err[256] = "";

	if (!mig_get(c, e))
		return -ENOTSUP;
	migration_get_params(c->cfg.mig, &p);
	/* Every argument is checked before any is applied: all or nothing. */
	for (size_t k = 0; k < MIG_NR_PARAMS; k++) {
		const struct json_value *v = json_object_get(args, mig_param_descs[k].name);
		if (v && mig_param_take(&mig_param_descs[k], v, &p, e) < 0)
			return -EINVAL;
		which |= v ? mig_param_descs[k].bit : 0;
	}
	const struct json_value *dd = json_object_get(args, "x-vmig-device-dirty");
	if (dd && mig_param_device_dirty(dd, &p, e) < 0)
		return -EINVAL;
	which |= dd ? MIG_PARAM_X_VMIG_DEVICE_DIRTY : 0;
	if (mig_str_params_take(args, &p, &which, e) < 0)
		return -EINVAL;
	int ret = which ? migration_set_params(c->cfg.mig, &p, which, err, sizeof(err)) : 0;
	if (ret < 0) {
		control_error_set(e, "GenericError", "%s", err[0] ? err : strerror(-ret));
		return ret;
	}
	json_write_begin_object(w);
	json_write_end_object(w);
	return 0;
}

int cmd_query_migrate_parameters(struct control *c, const struct json_value *args,
				 struct json_writer *w, struct control_error *e)
{
	struct mig_params p;

	if (!mig_get(c, e))
		return -ENOTSUP;
	migration_get_params(c->cfg.mig, &p);
	json_write_begin_object(w);
	for (size_t k = 0; k < MIG_NR_PARAMS; k++)
		mig_write_u64(w, mig_param_descs[k].name,
			      *mig_param_field(&p, &mig_param_descs[k]));
	const char *dd = device_dirty_name((enum device_dirty_strategy)p.x_vmig_device_dirty);
	json_write_key(w, "x-vmig-device-dirty");
	json_write_string(w, dd ? dd : "auto");
	for (size_t k = 0; k < MIG_NR_STR_PARAMS; k++) {
		json_write_key(w, mig_str_params[k].name);
		json_write_string(w, mig_str_field(&p, &mig_str_params[k]));
	}
	json_write_end_object(w);
	return 0;
}

/* Capabilities ------------------------------------------------------------------------- */

static int mig_cap_find(const char *name)
{
	for (int k = 0; k < MIG_CAP__COUNT; k++) {
		if (strcmp(migration_cap_name((enum mig_cap)k), name) == 0)
			return k;
	}
	return -1;
}

/* One {"capability": NAME, "state": BOOL}, the way QEMU's visitor reports mistakes. */
static int mig_cap_parse(const struct json_value *item, size_t idx, int *cap, bool *state,
			 struct control_error *e)
{
	const struct json_value *n = json_object_get(item, "capability");
	const struct json_value *s = json_object_get(item, "state");

	if (item->type != JSON_OBJECT || !n || !s || item->obj.n != 2) {
		control_error_set(e, "GenericError",
				  "Parameter 'capabilities[%zu]' expects an object with exactly "
				  "'capability' and 'state'",
				  idx);
		return -EINVAL;
	}
	if (n->type != JSON_STRING || s->type != JSON_BOOL) {
		control_error_set(e, "GenericError",
				  "Invalid parameter type for 'capabilities[%zu]', expected: "
				  "capability string and state boolean",
				  idx);
		return -EINVAL;
	}
	*cap = mig_cap_find(n->str.s);
	*state = s->b;
	if (*cap < 0) {
		control_error_set(e, "GenericError", "Invalid parameter '%.64s'", n->str.s);
		return -EINVAL;
	}
	return 0;
}

int cmd_migrate_set_capabilities(struct control *c, const struct json_value *args,
				 struct json_writer *w, struct control_error *e)
{
	const struct json_value *list = json_object_get(args, "capabilities");
	bool want[MIG_CAP__COUNT], given[MIG_CAP__COUNT] = {false};
	char err[256] = "";

	if (!mig_get(c, e))
		return -ENOTSUP;
	for (size_t i = 0; i < list->arr.n; i++) {
		int cap;
		bool on;
		if (mig_cap_parse(&list->arr.items[i], i, &cap, &on, e) < 0)
			return -EINVAL;
		want[cap] = on;
		given[cap] = true;
	}
	/* Checked up front so that the engine's own -EBUSY cannot leave half of them set. */
	if (mig_active(c->cfg.mig)) {
		control_error_set(e, "GenericError", MIG_ERR_ACTIVE);
		return -EBUSY;
	}
	for (int k = 0; k < MIG_CAP__COUNT; k++) {
		int ret =
		    given[k] ? migration_set_cap(c->cfg.mig, k, want[k], err, sizeof(err)) : 0;
		if (ret < 0) {
			control_error_set(e, "GenericError", "%s", err[0] ? err : strerror(-ret));
			return ret;
		}
	}
	json_write_begin_object(w);
	json_write_end_object(w);
	return 0;
}

int cmd_query_migrate_capabilities(struct control *c, const struct json_value *args,
				   struct json_writer *w, struct control_error *e)
{
	if (!mig_get(c, e))
		return -ENOTSUP;
	json_write_begin_array(w);
	for (int k = 0; k < MIG_CAP__COUNT; k++) {
		json_write_begin_object(w);
		json_write_key(w, "capability");
		json_write_string(w, migration_cap_name(k));
		json_write_key(w, "state");
		json_write_bool(w, migration_get_cap(c->cfg.mig, k));
		json_write_end_object(w);
	}
	json_write_end_array(w);
	return 0;
}

/* Events --------------------------------------------------------------------------------- */

/* The "status" of a MIGRATION event's data, into buf ("" when absent). */
static void mig_event_status(const char *data_json, char *buf, size_t size)
{
	struct json_value *v = NULL;
	struct json_error jerr;
	const struct json_value *s;

	buf[0] = 0;
	if (!data_json || json_parse(data_json, strlen(data_json), NULL, &v, &jerr) < 0)
		return;
	s = json_object_get(v, "status");
	if (s && s->type == JSON_STRING)
		snprintf(buf, size, "%s", s->str.s);
	json_free(v);
}

static bool mig_user_holds(struct control *c)
{
	return vm_pause_owners(c->cfg.m->vm) & VM_PAUSE_USER;
}

/*
 * Source only, on the engine's thread, which may hold its own locks: nothing here calls
 * the engine. "device": the engine stopped the vCPUs; tell the clients unless a user's
 * stop already did. failed/cancelled: whether that was a roll-back (the guest runs again)
 * or a failure past COMMIT (postmigrate) is the engine's to say, so the control thread
 * asks it (control_migration_settle).
 */
static void mig_track_run_state(struct control *c, const char *status)
{
	if (strcmp(status, "device") == 0) {
		if (!mig_user_holds(c) &&
		    !__atomic_exchange_n(&c->mig_stopped, true, __ATOMIC_ACQ_REL))
			control_emit_event(c, "STOP", NULL);
		return;
	}
	if (strcmp(status, "failed") != 0 && strcmp(status, "cancelled") != 0)
		return;
	pthread_mutex_lock(&c->lock);
	c->mig_settle = true;
	pthread_mutex_unlock(&c->lock);
	control_wake(c);
}

void control_migration_settle(struct control *c)
{
	bool settle;

	pthread_mutex_lock(&c->lock);
	settle = c->mig_settle;
	c->mig_settle = false;
	pthread_mutex_unlock(&c->lock);
	/* Completed, or failed past COMMIT: still stopped, and only cont clears mig_stopped. */
	if (!settle || !c->cfg.mig || migration_source_done(c->cfg.mig))
		return;
	if (__atomic_exchange_n(&c->mig_stopped, false, __ATOMIC_ACQ_REL) && !mig_user_holds(c))
		control_emit_event(c, "RESUME", NULL);
}

void control_migration_event(struct control *c, const char *name, const char *data_json)
{
	char status[32];

	struct mig_info info;

	control_emit_event(c, name, data_json);
	if (strcmp(name, "MIGRATION") != 0)
		return;
	/* Run states follow outgoing migrations only, also from a host that came in by one. */
	migration_query(c->cfg.mig, &info);
	if (!info.is_source)
		return;
	mig_event_status(data_json, status, sizeof(status));
	mig_track_run_state(c, status);
}

void control_incoming_done(struct control *c, bool ok)
{
	/* A restore under --qmp-wait stays held: its RESUME comes with the user's cont. */
	if (ok && !mig_user_holds(c))
		control_emit_event(c, "RESUME", NULL);
}

/* Timeline ------------------------------------------------------------------------------ */

static void mig_write_pass(struct json_writer *w, const struct mig_pass_record *r)
{
	json_write_begin_object(w);
	mig_write_u64(w, "t-ms", r->t_ms);
	mig_write_u64(w, "pass", r->pass);
	mig_write_u64(w, "duration-us", r->duration_us);
	mig_write_u64(w, "bytes", r->bytes);
	mig_write_u64(w, "bandwidth", r->bandwidth);
	mig_write_u64(w, "remaining", r->remaining);
	mig_write_u64(w, "dirty-rate", r->dirty_rate);
	mig_write_u64(w, "dirty-vcpu-pages", r->dirty_vcpu_pages);
	mig_write_u64(w, "dirty-vmm-pages", r->dirty_vmm_pages);
	mig_write_u64(w, "dirty-device-pages", r->dirty_device_pages);
	mig_write_u64(w, "expected-downtime-us", r->expected_downtime_us);
	mig_write_u64(w, "throttle-percentage", r->throttle_pct);
	json_write_key(w, "decision");
	json_write_string(w, r->decision);
	json_write_key(w, "why");
	json_write_string(w, r->why);
	json_write_end_object(w);
}

/* query-vmig-timeline: the last (or current) migration's passes, oldest first. */
int cmd_query_vmig_timeline(struct control *c, const struct json_value *args, struct json_writer *w,
			    struct control_error *e)
{
	if (!mig_get(c, e))
		return -ENOTSUP;
	size_t n = migration_timeline(c->cfg.mig, NULL, 0);
	struct mig_pass_record *recs = calloc(n ? n : 1, sizeof(*recs));
	if (!recs) {
		control_error_set(e, "GenericError", "out of memory");
		return -ENOMEM;
	}
	n = MIN(n, migration_timeline(c->cfg.mig, recs, n));
	json_write_begin_object(w);
	json_write_key(w, "passes");
	json_write_begin_array(w);
	for (size_t i = 0; i < n; i++)
		mig_write_pass(w, &recs[i]);
	json_write_end_array(w);
	json_write_end_object(w);
	free(recs);
	return 0;
}
