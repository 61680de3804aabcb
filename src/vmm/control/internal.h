/* SPDX-License-Identifier: Apache-2.0 */
/* Internal to src/vmm/control: the server's state and the command table. */
#ifndef VMIG_VMM_CONTROL_INTERNAL_H
#define VMIG_VMM_CONTROL_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/json.h"
#include "vmm/control/control.h"
#include "vmm/control/frame.h"

#define CONTROL_MAX_CLIENTS 4		 /* connected at once; more are refused */
#define CONTROL_MSG_MAX	    (64 * 1024)	 /* one input message */
#define CONTROL_REPLY_MAX   (256 * 1024) /* one reply or event */
#define CONTROL_OUT_MAX	    (512 * 1024) /* unread output kept per client, then dropped */
#define CONTROL_MAX_EVENTS  64		 /* queued between two turns of the thread */

enum control_run_state {
	CONTROL_PRELAUNCH, /* --qmp-wait: vCPUs not yet let go */
	CONTROL_RUNNING,
	CONTROL_PAUSED,
};

struct control_client {
	int fd;
	unsigned id;	 /* connection number, for log lines */
	bool negotiated; /* qmp_capabilities done: commands and events */
	bool dead;	 /* to be closed by the thread loop (never inside a frame callback) */
	struct frame in;
	char *out;
	size_t out_off, out_len, out_cap;
};

struct control {
	struct control_config cfg;
	int listen_fd;
	int wake_fd; /* eventfd: an event was queued or a stop was requested */
	pthread_t thread;
	bool thread_live;
	struct control_client *clients[CONTROL_MAX_CLIENTS];
	unsigned next_id;
	enum control_run_state state; /* control thread only */
	bool quit;		      /* a client said quit (SHUTDOWN reason) */
	bool incoming_started;	      /* --incoming defer: migrate-incoming was accepted */
	bool mig_stopped; /* atomic: STOP sent for a switchover, RESUME not yet (migrate.c) */

	pthread_mutex_t lock; /* the fields below */
	char *events[CONTROL_MAX_EVENTS];
	unsigned nr_events;
	bool stop_req;
	int exit_code;	 /* with stop_req: for SHUTDOWN */
	bool mig_settle; /* a migration failed or was cancelled: did the guest resume? */
};

/* An error reply: class is a QMP error class ("GenericError", "CommandNotFound"). */
struct control_error {
	const char *cls;
	char desc[256];
};

void control_error_set(struct control_error *e, const char *cls, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A command's argument schema: the dispatcher checks names, types and presence. */
struct cmd_arg {
	const char *name;
	enum json_type type;
	bool required;
};

/* migrate-set-parameters has twelve optional arguments, the most of any command. */
#define CMD_MAX_ARGS 16

typedef int cmd_fn(struct control *c, const struct json_value *args, struct json_writer *w,
		   struct control_error *e);

struct cmd {
	const char *name;
	struct cmd_arg args[CMD_MAX_ARGS]; /* name NULL ends the list (or CMD_MAX_ARGS) */
	cmd_fn *fn;
};

/* The migration commands (migrate.c). */
cmd_fn cmd_migrate, cmd_migrate_incoming, cmd_migrate_cancel, cmd_query_migrate,
    cmd_migrate_set_parameters, cmd_query_migrate_parameters, cmd_migrate_set_capabilities,
    cmd_query_migrate_capabilities, cmd_migrate_start_postcopy;
/* object-add / object-del for TLS credentials and authorization lists (objects.c). */
cmd_fn cmd_object_add, cmd_object_del;
/* query-vmig-timeline (migrate.c): the passes of the last migration. */
cmd_fn cmd_query_vmig_timeline;
/* The host's view of the device's translations (host_view.c). */
cmd_fn cmd_query_vmig_host_translation;

/* True while the guest waits for its state from an incoming migration (run state inmigrate). */
bool control_incoming_pending(struct control *c);
/* True once we told the clients STOP for a migration's switchover (and no RESUME since). */
bool control_migration_stopped(struct control *c);
/* Control thread: RESUME if a failed or cancelled migration rolled back (migrate.c). */
void control_migration_settle(struct control *c);
/* Wakes the control thread (any thread). */
void control_wake(struct control *c);

/*
 * Runs one parsed message from cl and writes its reply (return or error, with the id).
 * False if the client must go (its output overflowed).
 */
bool control_dispatch(struct control *c, struct control_client *cl, const struct json_value *msg);

/*
 * Sends the queued events to every negotiated client now (control thread). The
 * dispatcher calls it before a reply, so that an event a command caused (STOP for stop)
 * precedes the command's return, as in QEMU.
 */
void control_send_events(struct control *c);

/* Queues text (one complete JSON object, "\r\n" added) to cl; false if cl was dropped. */
bool control_client_send(struct control_client *cl, const char *text, size_t len);

#endif
