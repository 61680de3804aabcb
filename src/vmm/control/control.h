/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The QMP-compatible control socket (docs/control.md). `vmig run --qmp unix:PATH` listens
 * on a UNIX stream socket; each client is greeted, negotiates capabilities, and sends
 * commands ({"execute": ..., "arguments": ..., "id": ...}); replies and asynchronous
 * events (STOP, RESUME, SHUTDOWN) are JSON objects, one per line.
 *
 * One control thread services the listening socket and every client with poll(); it never
 * runs on a vCPU thread and vCPUs never wait for it (stop/cont call vm_pause/vm_resume
 * from the control thread). Input is bounded per message, output per client: a client
 * that floods or never reads is dropped, the VM is unaffected.
 */
#ifndef VMIG_VMM_CONTROL_CONTROL_H
#define VMIG_VMM_CONTROL_CONTROL_H

#include <stdbool.h>
#include <stddef.h>

struct machine;
struct migration;
struct devices;
struct host_platform;
struct control;

struct control_config {
	const char *path;	  /* UNIX socket path */
	struct machine *m;	  /* started by the caller after control_start() */
	struct devices *dev;	  /* NULL: no passthrough devices */
	struct host_platform *hp; /* with dev */
	bool start_paused;	  /* the caller paused the VM before starting it (--qmp-wait) */
	struct migration *mig;	  /* the migration commands act on it; NULL: refused */
	bool incoming;		  /* a destination: the guest comes from a migration */
	bool incoming_defer;	  /* --incoming defer: migrate-incoming gives the URI */
};

/* "unix:PATH" -> PATH (pointing into spec). -EINVAL with a logged error otherwise. */
int control_parse_address(const char *spec, const char **path);

/* Binds and listens (a stale socket file at path is replaced), starts the thread. */
int control_start(const struct control_config *cfg, struct control **out);

/*
 * Queues an asynchronous event for every negotiated client (any thread). data_json is
 * the text of a JSON object for "data", or NULL for none.
 */
void control_emit_event(struct control *c, const char *name, const char *data_json);

/*
 * A migration URI as the engine accepts it (tcp:HOST:PORT, unix:PATH, file:PATH). 0, or
 * -EINVAL with QEMU's wording of the reason in err (for QMP and the command line alike).
 */
int control_check_migrate_uri(const char *uri, char *err, size_t errlen);

/*
 * The engine's event hook (any thread): forwards MIGRATION / MIGRATION_PASS, and sends
 * STOP when a switchover stops a running guest and RESUME when a roll-back restarts it,
 * as QEMU does, so a client sees every run-state change.
 */
void control_migration_event(struct control *c, const char *name, const char *data_json);
/* The destination's guest runs (the engine's incoming_done, ok): RESUME unless held. */
void control_incoming_done(struct control *c, bool ok);

/*
 * After the VM has stopped (exit_code: what vmig will exit with): sends SHUTDOWN to the
 * negotiated clients, flushes their output for at most a second, closes every connection,
 * removes the socket file, joins the thread and frees c. NULL is a no-op.
 */
void control_stop(struct control *c, int exit_code);

#endif
