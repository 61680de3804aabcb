// SPDX-License-Identifier: Apache-2.0
/*
 * The command line's side of a migration: the engine's hooks (events to the control
 * socket, the destination's "the guest runs"), and the main thread's waits for a
 * destination (--incoming, restore) and for a save to a file (--save).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/util.h"
#include "vmm/cli/cli.h"
#include "vmm/control/control.h"
#include "vmm/machine.h"
#include "vmm/migration/migration.h"

#define CLI_MIG_POLL_MS 20 /* how often the waits look at the VM and the engine */

int64_t cli_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cli_timeout_left(int64_t deadline_ms)
{
	int64_t left = deadline_ms - cli_now_ms();

	if (deadline_ms < 0)
		return -1;
	return left > 0 ? (int)left : 0;
}

/* On the engine's thread: the lock keeps the control socket alive while we use it. */
static void cli_mig_on_event(void *opaque, const char *name, const char *data_json)
{
	struct cli_mig *cm = opaque;

	pthread_mutex_lock(&cm->lock);
	if (cm->ctl)
		control_migration_event(cm->ctl, name, data_json);
	pthread_mutex_unlock(&cm->lock);
}

static void cli_mig_on_incoming_done(void *opaque, bool ok)
{
	struct cli_mig *cm = opaque;

	pthread_mutex_lock(&cm->lock);
	cm->incoming_done = true;
	cm->incoming_ok = ok;
	if (cm->ctl)
		control_incoming_done(cm->ctl, ok);
	pthread_cond_broadcast(&cm->cond);
	pthread_mutex_unlock(&cm->lock);
}

int cli_mig_create(struct machine *m, struct cli_mig *cm)
{
	struct mig_hooks hooks = {
	    .event = cli_mig_on_event, .incoming_done = cli_mig_on_incoming_done, .opaque = cm};
	int ret;

	*cm = (struct cli_mig){.mig = NULL};
	pthread_mutex_init(&cm->lock, NULL);
	pthread_cond_init(&cm->cond, NULL);
	ret = migration_create(m, &hooks, &cm->mig);
	if (ret < 0) {
		log_error("cannot set up migration: %s", strerror(-ret));
		pthread_cond_destroy(&cm->cond);
		pthread_mutex_destroy(&cm->lock);
		return 1;
	}
	return 0;
}

void cli_mig_attach(struct cli_mig *cm, struct control *ctl)
{
	pthread_mutex_lock(&cm->lock);
	cm->ctl = ctl;
	pthread_mutex_unlock(&cm->lock);
}

void cli_mig_destroy(struct cli_mig *cm)
{
	if (!cm->mig)
		return;
	cli_mig_attach(cm, NULL);
	migration_destroy(cm->mig);
	cm->mig = NULL;
	pthread_cond_destroy(&cm->cond);
	pthread_mutex_destroy(&cm->lock);
}

/* Waits up to CLI_MIG_POLL_MS for incoming_done; true once it came. */
static bool cli_mig_wait_done(struct cli_mig *cm)
{
	struct timespec ts = realtime_after_ms(CLI_MIG_POLL_MS);
	bool done;

	pthread_mutex_lock(&cm->lock);
	if (!cm->incoming_done)
		pthread_cond_timedwait(&cm->cond, &cm->lock, &ts);
	done = cm->incoming_done;
	pthread_mutex_unlock(&cm->lock);
	return done;
}

/* The engine's reason, or a pointer to where it was logged. */
static void cli_mig_log_failure(struct cli_mig *cm, const char *what)
{
	struct mig_info i;

	migration_query(cm->mig, &i);
	log_error("%s failed: %s", what, i.error_desc[0] ? i.error_desc : "see the error above");
}

/*
 * The VM stopped while the engine finishes: if its vCPUs were started (COMMIT came, the guest
 * ran and ended at once, e.g. a crash), RUNNING is about to go out: let the engine tell the
 * source before anything is torn down (up to 5 s). True when it finished.
 */
static bool cli_mig_ran_and_done(struct cli_mig *cm, struct machine *m)
{
	pthread_mutex_lock(&m->vm->lock);
	bool started = m->vm->started;
	pthread_mutex_unlock(&m->vm->lock);
	for (int i = 0; started && i < 250; i++) {
		if (cli_mig_wait_done(cm))
			return true;
	}
	return false;
}

int cli_mig_wait_incoming(struct cli_mig *cm, struct machine *m, int64_t deadline_ms)
{
	/* The VM can also end while we wait: a QMP quit, or a --timeout. */
	while (!cli_mig_wait_done(cm)) {
		if (__atomic_load_n(&m->vm->stop, __ATOMIC_ACQUIRE) && !cli_mig_ran_and_done(cm, m))
			return -ESRCH;
		if (deadline_ms >= 0 && cli_now_ms() >= deadline_ms) {
			log_error("the incoming migration did not complete in time; the guest "
				  "never ran");
			return VMIG_EXIT_TIMEOUT;
		}
	}
	if (cm->incoming_ok)
		return 0;
	cli_mig_log_failure(cm, "the incoming migration");
	return 1;
}

static bool cli_mig_finished(enum mig_status s)
{
	return s == MIG_STATUS_COMPLETED || s == MIG_STATUS_FAILED || s == MIG_STATUS_CANCELLED;
}

int cli_mig_save(struct cli_mig *cm, const char *path)
{
	char uri[4096 + 8], err[256] = "";
	struct mig_info i;
	struct timespec tick = {0, CLI_MIG_POLL_MS * 1000000L};
	int n = snprintf(uri, sizeof(uri), "file:%s", path);
	int ret = n < (int)sizeof(uri) ? migration_start(cm->mig, uri, err, sizeof(err)) : -1;

	if (ret < 0) {
		log_error("--save %s: %s", path, err[0] ? err : "path too long");
		return 1;
	}
	for (migration_query(cm->mig, &i); !cli_mig_finished(i.status);
	     migration_query(cm->mig, &i))
		nanosleep(&tick, NULL);
	if (i.status == MIG_STATUS_COMPLETED)
		return 0;
	log_error("--save %s: %s", path, i.error_desc[0] ? i.error_desc : "cancelled");
	return 1;
}
