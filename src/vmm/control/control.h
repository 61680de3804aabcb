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

struct machine;
struct devices;
struct host_platform;
struct control;

struct control_config {
	const char *path;	  /* UNIX socket path */
	struct machine *m;	  /* started by the caller after control_start() */
	struct devices *dev;	  /* NULL: no passthrough devices */
	struct host_platform *hp; /* with dev */
	bool start_paused;	  /* the caller paused the VM before starting it (--qmp-wait) */
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
 * After the VM has stopped (exit_code: what vmig will exit with): sends SHUTDOWN to the
 * negotiated clients, flushes their output for at most a second, closes every connection,
 * removes the socket file, joins the thread and frees c. NULL is a no-op.
 */
void control_stop(struct control *c, int exit_code);

#endif
