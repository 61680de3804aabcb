// SPDX-License-Identifier: Apache-2.0
/*
 * QMP message handling: the envelope checks ({"execute", "arguments", "id"}), capability
 * negotiation, argument checking against a small per-command schema, and the commands.
 * Error texts follow QEMU's where a client might match on them.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/trace.h"
#include "vmig/host_platform.h"
#include "vmm/control/internal.h"
#include "vmm/devices.h"
#include "vmm/machine.h"
#include "vmm/migration/migration.h"

#ifndef VMIG_VERSION
#define VMIG_VERSION "0.0.0"
#endif

void control_error_set(struct control_error *e, const char *cls, const char *fmt, ...)
{
	va_list ap;

	e->cls = cls;
	va_start(ap, fmt);
	vsnprintf(e->desc, sizeof(e->desc), fmt, ap);
	va_end(ap);
}

static const struct cmd *cmd_find(const char *name);

/* Commands ---------------------------------------------------------------------------- */

static int cmd_empty_return(struct json_writer *w)
{
	json_write_begin_object(w);
	json_write_end_object(w);
	return 0;
}

static int cmd_query_version(struct control *c, const struct json_value *args,
			     struct json_writer *w, struct control_error *e)
{
	unsigned major = 0, minor = 0, micro = 0;

	sscanf(VMIG_VERSION, "%u.%u.%u", &major, &minor, &micro);
	json_write_begin_object(w);
	json_write_key(w, "qemu");
	json_write_begin_object(w);
	json_write_key(w, "major");
	json_write_uint(w, major);
	json_write_key(w, "minor");
	json_write_uint(w, minor);
	json_write_key(w, "micro");
	json_write_uint(w, micro);
	json_write_end_object(w);
	json_write_key(w, "package");
	json_write_string(w, "vmig " VMIG_VERSION);
	json_write_end_object(w);
	return 0;
}

static const struct cmd cmd_table[];

static int cmd_query_commands(struct control *c, const struct json_value *args,
			      struct json_writer *w, struct control_error *e)
{
	json_write_begin_array(w);
	for (const struct cmd *k = cmd_table; k->name; k++) {
		json_write_begin_object(w);
		json_write_key(w, "name");
		json_write_string(w, k->name);
		json_write_end_object(w);
	}
	json_write_end_array(w);
	return 0;
}

/* The migration's run states, QEMU's names; NULL when no migration has a say. */
static const char *cmd_migration_state(struct control *c)
{
	struct mig_info i;

	if (control_incoming_pending(c))
		return "inmigrate";
	if (!c->cfg.mig)
		return NULL;
	migration_query(c->cfg.mig, &i);
	if (i.status == MIG_STATUS_DEVICE)
		return "finish-migrate";
	if (migration_source_done(c->cfg.mig) &&
	    (i.status == MIG_STATUS_COMPLETED || i.status == MIG_STATUS_FAILED))
		return "postmigrate";
	return NULL;
}

/* The VM's status as QMP names run states. */
static const char *cmd_status_name(struct control *c, bool *running)
{
	struct vm *vm = c->cfg.m->vm;
	enum vm_stop_reason reason;
	const char *mig;
	bool stopped;

	pthread_mutex_lock(&vm->lock);
	stopped = vm->stop;
	reason = vm->reason;
	pthread_mutex_unlock(&vm->lock);
	*running = false;
	if (stopped)
		return reason == VM_STOP_CRASH ? "internal-error" : "shutdown";
	mig = cmd_migration_state(c);
	if (mig)
		return mig;
	if (c->state == CONTROL_PRELAUNCH)
		return "prelaunch";
	if (c->state == CONTROL_PAUSED)
		return "paused";
	*running = true;
	return "running";
}

static int cmd_query_status(struct control *c, const struct json_value *args, struct json_writer *w,
			    struct control_error *e)
{
	bool running;
	const char *status = cmd_status_name(c, &running);

	json_write_begin_object(w);
	json_write_key(w, "running");
	json_write_bool(w, running);
	json_write_key(w, "status");
	json_write_string(w, status);
	json_write_end_object(w);
	return 0;
}

static bool cmd_vm_stopped(struct control *c)
{
	return __atomic_load_n(&c->cfg.m->vm->stop, __ATOMIC_ACQUIRE);
}

static int cmd_stop(struct control *c, const struct json_value *args, struct json_writer *w,
		    struct control_error *e)
{
	/*
	 * A destination (QEMU's autostart off): the guest loads and takes over at COMMIT, but
	 * its vCPUs stay paused until cont. The guest has not run: no STOP event.
	 */
	if (control_incoming_pending(c)) {
		if (c->state == CONTROL_RUNNING) {
			vm_pause(c->cfg.m->vm, VM_PAUSE_USER);
			c->state = CONTROL_PAUSED;
			/* The migration committed meanwhile and the guest ran: it stops now. */
			if (!control_incoming_pending(c))
				control_emit_event(c, "STOP", NULL);
		}
		return cmd_empty_return(w);
	}
	/* Stopping a stopped or not yet started VM changes nothing, as in QEMU: no event. */
	if (c->state == CONTROL_RUNNING && !cmd_vm_stopped(c)) {
		int ret = vm_pause(c->cfg.m->vm, VM_PAUSE_USER);
		if (ret < 0) {
			control_error_set(e, "GenericError", "cannot pause the VM: %s",
					  strerror(-ret));
			return ret;
		}
		c->state = CONTROL_PAUSED;
		/* A switchover already stopped it and said so: the hold is taken silently. */
		if (!control_migration_stopped(c))
			control_emit_event(c, "STOP", NULL);
	}
	return cmd_empty_return(w);
}

/*
 * cont on a destination: QEMU only records that the guest should run once loaded. vmig
 * runs it at COMMIT anyway; a restore under --qmp-wait drops its hold now, so that the
 * guest runs as soon as it is loaded (RESUME is sent then, by control_incoming_done()).
 */
static int cmd_cont_incoming(struct control *c, struct json_writer *w)
{
	if (c->state != CONTROL_RUNNING) {
		vm_resume(c->cfg.m->vm, VM_PAUSE_USER);
		c->state = CONTROL_RUNNING;
	}
	return cmd_empty_return(w);
}

/* postmigrate: the engine decides whether this copy may run (migration_release_source). */
static int cmd_cont_postmigrate(struct control *c, struct control_error *e)
{
	char err[256] = "";
	int ret = migration_release_source(c->cfg.mig, err, sizeof(err));

	if (ret < 0) {
		control_error_set(e, "GenericError", "%s", err[0] ? err : strerror(-ret));
		return ret;
	}
	__atomic_store_n(&c->mig_stopped, false, __ATOMIC_RELEASE);
	return 0;
}

static int cmd_cont(struct control *c, const struct json_value *args, struct json_writer *w,
		    struct control_error *e)
{
	bool resumed = false;

	if (cmd_vm_stopped(c)) {
		control_error_set(e, "GenericError", "The VM has shut down and cannot continue");
		return -ESRCH;
	}
	if (control_incoming_pending(c))
		return cmd_cont_incoming(c, w);
	if (c->cfg.mig && migration_source_done(c->cfg.mig)) {
		int ret = cmd_cont_postmigrate(c, e);
		if (ret < 0)
			return ret;
		resumed = true;
	}
	if (c->state != CONTROL_RUNNING) {
		vm_resume(c->cfg.m->vm, VM_PAUSE_USER);
		c->state = CONTROL_RUNNING;
		resumed = true;
	}
	/* While a switchover holds the vCPUs they do not run yet: its end says RESUME. */
	if (resumed && !control_migration_stopped(c))
		control_emit_event(c, "RESUME", NULL);
	return cmd_empty_return(w);
}

static int cmd_quit(struct control *c, const struct json_value *args, struct json_writer *w,
		    struct control_error *e)
{
	/*
	 * The reply goes out first; the main thread sees the stop, tears the VM down as for
	 * a guest exit and calls control_stop(), which sends SHUTDOWN. Status 0: asked for.
	 */
	c->quit = true;
	vm_request_stop(c->cfg.m->vm, VM_STOP_REQUEST, 0);
	return cmd_empty_return(w);
}

static int cmd_query_kvm(struct control *c, const struct json_value *args, struct json_writer *w,
			 struct control_error *e)
{
	json_write_begin_object(w);
	json_write_key(w, "enabled");
	json_write_bool(w, true);
	json_write_key(w, "present");
	json_write_bool(w, true);
	json_write_end_object(w);
	return 0;
}

static void cmd_write_cpu(struct json_writer *w, struct vcpu *v)
{
	char path[48];

	snprintf(path, sizeof(path), "/machine/vcpu[%u]", v->index);
	json_write_begin_object(w);
	json_write_key(w, "cpu-index");
	json_write_uint(w, v->index);
	json_write_key(w, "qom-path");
	json_write_string(w, path);
	json_write_key(w, "thread-id");
	json_write_int(w, __atomic_load_n(&v->tid, __ATOMIC_RELAXED));
	json_write_key(w, "target");
	json_write_string(w, "x86_64");
	/* Userspace exits so far: a cheap "is this vCPU doing anything" for tools. */
	json_write_key(w, "vmig-exits");
	json_write_uint(w, __atomic_load_n(&v->exits, __ATOMIC_RELAXED));
	json_write_end_object(w);
}

/*
 * "running" is reported from the moment the control socket is up, which can be just before
 * the main thread starts the vCPU threads: give them up to a second to exist (and have a
 * thread id) rather than answer 0. Prelaunch/paused VMs answer at once.
 */
static bool cmd_vcpu_threads_known(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		if (!__atomic_load_n(&vm->vcpus[i].tid, __ATOMIC_RELAXED))
			return false;
	}
	return true;
}

static void cmd_wait_vcpu_threads(struct control *c)
{
	bool running;

	cmd_status_name(c, &running);
	for (int t = 0; running && t < 1000 && !cmd_vcpu_threads_known(c->cfg.m->vm); t++)
		usleep(1000);
}

static int cmd_query_cpus_fast(struct control *c, const struct json_value *args,
			       struct json_writer *w, struct control_error *e)
{
	struct vm *vm = c->cfg.m->vm;

	cmd_wait_vcpu_threads(c);
	json_write_begin_array(w);
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		cmd_write_cpu(w, &vm->vcpus[i]);
	json_write_end_array(w);
	return 0;
}

static int cmd_vmig_trace(struct control *c, const struct json_value *args, struct json_writer *w,
			  struct control_error *e)
{
	const struct json_value *p = json_object_get(args, "patterns");

	if (p && trace_enable(p->str.s) < 0) {
		control_error_set(e, "GenericError",
				  "Parameter 'patterns' is not a comma-separated list of globs");
		return -EINVAL;
	}
	json_write_begin_object(w);
	json_write_key(w, "patterns");
	json_write_string(w, trace_patterns());
	json_write_end_object(w);
	return 0;
}

static void cmd_write_counter(struct json_writer *w, const char *key, uint64_t v)
{
	json_write_key(w, key);
	json_write_uint(w, v);
}

static const char *cmd_doorbell_path_name(enum vfio_doorbell_path p)
{
	switch (p) {
	case VFIO_DOORBELL_FAST:
		return "fast";
	case VFIO_DOORBELL_SLOW_FORWARD:
		return "slow-forward";
	case VFIO_DOORBELL_SLOW_HOLD:
		return "slow-hold";
	}
	return "unknown";
}

static void cmd_write_device_stats(struct json_writer *w, const struct devices_stats *st,
				   const struct host_platform_stats *hs)
{
	cmd_write_counter(w, "vsmmu-cmds", st->vsmmu.cmds);
	cmd_write_counter(w, "vsmmu-cmd-errors", st->vsmmu.cmd_errors);
	cmd_write_counter(w, "vsmmu-events", st->vsmmu.events);
	cmd_write_counter(w, "vsmmu-events-lost", st->vsmmu.events_lost);
	cmd_write_counter(w, "vsmmu-fwd-cmds", st->vsmmu.fwd_cmds);
	cmd_write_counter(w, "nested-hwpts", st->nested.hwpt_allocs);
	cmd_write_counter(w, "invalidations", st->nested.inv_cmds);
	cmd_write_counter(w, "faults", st->nested.faults);
	cmd_write_counter(w, "page-responses", st->nested.responses);
	cmd_write_counter(w, "msis", st->msis);
	cmd_write_counter(w, "msi-errors", st->msi_errors);
	cmd_write_counter(w, "doorbells-trapped", st->sdma.doorbells_trapped);
	cmd_write_counter(w, "doorbells-held", st->sdma.doorbells_held);
	cmd_write_counter(w, "host-smmu-events", hs->smmu_events);
	cmd_write_counter(w, "sdma-completed", hs->sdma_completed);
}

static int cmd_query_vmig_devices(struct control *c, const struct json_value *args,
				  struct json_writer *w, struct control_error *e)
{
	struct devices *d = c->cfg.dev;
	struct devices_stats st;
	struct host_platform_stats hs = {0};

	if (!d) {
		control_error_set(e, "GenericError", "This VM has no passthrough devices");
		return -ENODEV;
	}
	devices_get_stats(d, &st);
	if (c->cfg.hp)
		host_platform_get_stats(c->cfg.hp, &hs);
	json_write_begin_object(w);
	json_write_key(w, "sdma-vsid");
	json_write_uint(w, d->sdma_vsid);
	json_write_key(w, "dirty-tracking");
	json_write_bool(w, d->dirty_tracking);
	json_write_key(w, "doorbell-path");
	json_write_string(w, cmd_doorbell_path_name(vfio_dev_doorbell_get_path(d->sdma)));
	json_write_key(w, "doorbell-fast-armed");
	json_write_bool(w, vfio_dev_doorbell_fast_armed(d->sdma));
	cmd_write_device_stats(w, &st, &hs);
	json_write_end_object(w);
	return 0;
}

/* qmp_capabilities outside negotiation mode is refused before this is reached. */
static int cmd_qmp_capabilities(struct control *c, const struct json_value *args,
				struct json_writer *w, struct control_error *e)
{
	const struct json_value *en = json_object_get(args, "enable");

	/* We offer no capability (no "oob"): any name asked for is one we do not have. */
	for (size_t i = 0; en && i < en->arr.n; i++) {
		const struct json_value *v = &en->arr.items[i];
		if (v->type != JSON_STRING) {
			control_error_set(e, "GenericError",
					  "Invalid parameter type for 'enable[%zu]', expected: "
					  "string",
					  i);
			return -EINVAL;
		}
		control_error_set(e, "GenericError", "Capability '%s' not available", v->str.s);
		return -EINVAL;
	}
	return cmd_empty_return(w);
}

static const struct cmd cmd_table[] = {
    {"qmp_capabilities", {{"enable", JSON_ARRAY, false}}, cmd_qmp_capabilities},
    {"query-version", {{NULL}}, cmd_query_version},
    {"query-commands", {{NULL}}, cmd_query_commands},
    {"query-status", {{NULL}}, cmd_query_status},
    {"query-kvm", {{NULL}}, cmd_query_kvm},
    {"query-cpus-fast", {{NULL}}, cmd_query_cpus_fast},
    {"stop", {{NULL}}, cmd_stop},
    {"cont", {{NULL}}, cmd_cont},
    {"quit", {{NULL}}, cmd_quit},
    {"vmig-trace", {{"patterns", JSON_STRING, false}}, cmd_vmig_trace},
    {"query-vmig-devices", {{NULL}}, cmd_query_vmig_devices},
    {"query-vmig-host-translation",
     {{"iova", JSON_INT, true},
      {"ssid", JSON_INT, false},
      {"count", JSON_INT, false},
      {"step", JSON_INT, false}},
     cmd_query_vmig_host_translation},
    {"migrate",
     {{"uri", JSON_STRING, true},
      {"detach", JSON_BOOL, false},
      {"blk", JSON_BOOL, false},
      {"inc", JSON_BOOL, false},
      {"resume", JSON_BOOL, false}},
     cmd_migrate},
    {"migrate-incoming", {{"uri", JSON_STRING, true}}, cmd_migrate_incoming},
    {"migrate_cancel", {{NULL}}, cmd_migrate_cancel},
    {"migrate-start-postcopy", {{NULL}}, cmd_migrate_start_postcopy},
    {"query-migrate", {{NULL}}, cmd_query_migrate},
    {"migrate-set-parameters",
     {{"downtime-limit", JSON_INT, false},
      {"max-bandwidth", JSON_INT, false},
      {"multifd-channels", JSON_INT, false},
      {"cpu-throttle-initial", JSON_INT, false},
      {"cpu-throttle-increment", JSON_INT, false},
      {"max-cpu-throttle", JSON_INT, false},
      {"x-vmig-max-passes", JSON_INT, false},
      {"x-vmig-device-dirty", JSON_STRING, false},
      {"x-vmig-drain-limit", JSON_INT, false},
      {"x-vmig-postcopy-after", JSON_INT, false},
      {"tls-creds", JSON_STRING, false},
      {"tls-hostname", JSON_STRING, false},
      {"tls-authz", JSON_STRING, false}},
     cmd_migrate_set_parameters},
    {"query-migrate-parameters", {{NULL}}, cmd_query_migrate_parameters},
    {"object-add",
     {{"qom-type", JSON_STRING, true},
      {"id", JSON_STRING, true},
      {"dir", JSON_STRING, false},
      {"endpoint", JSON_STRING, false},
      {"verify-peer", JSON_BOOL, false},
      {"sanity-check", JSON_BOOL, false},
      {"identity", JSON_STRING, false},
      {"policy", JSON_STRING, false},
      {"rules", JSON_ARRAY, false}},
     cmd_object_add},
    {"object-del", {{"id", JSON_STRING, true}}, cmd_object_del},
    {"query-vmig-timeline", {{NULL}}, cmd_query_vmig_timeline},
    {"migrate-set-capabilities",
     {{"capabilities", JSON_ARRAY, true}},
     cmd_migrate_set_capabilities},
    {"query-migrate-capabilities", {{NULL}}, cmd_query_migrate_capabilities},
    {NULL, {{NULL}}, NULL},
};

static const struct cmd *cmd_find(const char *name)
{
	for (const struct cmd *k = cmd_table; k->name; k++) {
		if (strcmp(k->name, name) == 0)
			return k;
	}
	return NULL;
}

/* Arguments against the command's schema: nothing unknown, nothing missing, types. */
static int cmd_check_args(const struct cmd *k, const struct json_value *args,
			  struct control_error *e)
{
	for (size_t i = 0; args && i < args->obj.n; i++) {
		const struct json_member *m = &args->obj.members[i];
		const struct cmd_arg *a = k->args;
		while (a < k->args + CMD_MAX_ARGS && a->name && strcmp(a->name, m->key) != 0)
			a++;
		if (a == k->args + CMD_MAX_ARGS || !a->name) {
			control_error_set(e, "GenericError", "Parameter '%.64s' is unexpected",
					  m->key);
			return -EINVAL;
		}
		if (m->value.type != a->type) {
			control_error_set(e, "GenericError",
					  "Invalid parameter type for '%s', expected: %s", a->name,
					  json_type_name(a->type));
			return -EINVAL;
		}
	}
	for (const struct cmd_arg *a = k->args; a < k->args + CMD_MAX_ARGS && a->name; a++) {
		if (a->required && !json_object_get(args, a->name)) {
			control_error_set(e, "GenericError", "Parameter '%s' is missing", a->name);
			return -EINVAL;
		}
	}
	return 0;
}

/* Envelope ---------------------------------------------------------------------------- */

struct envelope {
	const char *execute;
	const struct json_value *args, *id;
};

static int envelope_member(const struct json_member *m, struct envelope *env,
			   struct control_error *e)
{
	if (strcmp(m->key, "id") == 0) {
		env->id = &m->value;
	} else if (strcmp(m->key, "execute") == 0) {
		if (m->value.type != JSON_STRING) {
			control_error_set(e, "GenericError",
					  "QMP input member 'execute' must be a string");
			return -EINVAL;
		}
		env->execute = m->value.str.s;
	} else if (strcmp(m->key, "arguments") == 0) {
		if (m->value.type != JSON_OBJECT) {
			control_error_set(e, "GenericError",
					  "QMP input member 'arguments' must be an object");
			return -EINVAL;
		}
		env->args = &m->value;
	} else {
		control_error_set(e, "GenericError", "QMP input member '%.64s' is unexpected",
				  m->key);
		return -EINVAL;
	}
	return 0;
}

/* Fills env; env->id is set whenever the message is an object with an id. */
static int envelope_parse(const struct json_value *msg, struct envelope *env,
			  struct control_error *e)
{
	int ret = 0;

	*env = (struct envelope){0};
	if (msg->type != JSON_OBJECT) {
		control_error_set(e, "GenericError", "QMP input must be a JSON object");
		return -EINVAL;
	}
	env->id = json_object_get(msg, "id");
	for (size_t i = 0; i < msg->obj.n && ret == 0; i++)
		ret = envelope_member(&msg->obj.members[i], env, e);
	if (ret == 0 && !env->execute) {
		control_error_set(e, "GenericError", "QMP input lacks member 'execute'");
		ret = -EINVAL;
	}
	return ret;
}

/* Finds and checks the command; handles negotiation mode. */
static const struct cmd *dispatch_lookup(struct control_client *cl, const struct envelope *env,
					 struct control_error *e)
{
	bool caps = strcmp(env->execute, "qmp_capabilities") == 0;
	const struct cmd *k;

	if (!cl->negotiated && !caps) {
		control_error_set(e, "CommandNotFound",
				  "Expecting capabilities negotiation with 'qmp_capabilities'");
		return NULL;
	}
	if (cl->negotiated && caps) {
		control_error_set(e, "CommandNotFound",
				  "Capabilities negotiation is already complete, command "
				  "ignored");
		return NULL;
	}
	k = cmd_find(env->execute);
	if (!k)
		control_error_set(e, "CommandNotFound", "The command %.64s has not been found",
				  env->execute);
	return k;
}

static int dispatch_run(struct control *c, struct control_client *cl, const struct envelope *env,
			struct json_writer *ret_w, struct control_error *e)
{
	const struct cmd *k = dispatch_lookup(cl, env, e);
	int ret;

	if (!k)
		return -ENOENT;
	ret = cmd_check_args(k, env->args, e);
	if (ret == 0)
		ret = k->fn(c, env->args, ret_w, e);
	if (ret == 0 && json_writer_error(ret_w) < 0) {
		control_error_set(e, "GenericError", "reply too large or out of memory");
		ret = -E2BIG;
	}
	if (ret == 0 && k->fn == cmd_qmp_capabilities)
		cl->negotiated = true;
	return ret;
}

bool control_dispatch(struct control *c, struct control_client *cl, const struct json_value *msg)
{
	struct control_error e = {.cls = NULL};
	struct json_writer ret_w, w;
	struct envelope env;
	int ret = envelope_parse(msg, &env, &e);
	bool ok;

	json_writer_init(&ret_w, CONTROL_REPLY_MAX);
	json_writer_init(&w, CONTROL_REPLY_MAX);
	if (ret == 0)
		ret = dispatch_run(c, cl, &env, &ret_w, &e);
	control_send_events(c);
	json_write_begin_object(&w);
	if (ret == 0) {
		json_write_key(&w, "return");
		json_write_raw(&w, ret_w.buf, ret_w.len);
	} else {
		json_write_key(&w, "error");
		json_write_begin_object(&w);
		json_write_key(&w, "class");
		json_write_string(&w, e.cls ? e.cls : "GenericError");
		json_write_key(&w, "desc");
		json_write_string(&w, e.desc);
		json_write_end_object(&w);
	}
	if (env.id) {
		json_write_key(&w, "id");
		json_write_value(&w, env.id);
	}
	json_write_end_object(&w);
	if (json_writer_error(&w) == 0) {
		ok = control_client_send(cl, w.buf, w.len);
	} else {
		static const char too_big[] =
		    "{\"error\": {\"class\": \"GenericError\", \"desc\": \"reply too large\"}}";
		ok = control_client_send(cl, too_big, sizeof(too_big) - 1);
	}
	json_writer_fini(&ret_w);
	json_writer_fini(&w);
	return ok;
}
