/* SPDX-License-Identifier: Apache-2.0 */
/* The vmig command line: one function per subcommand, each returning the process exit code. */
#ifndef VMIG_VMM_CLI_CLI_H
#define VMIG_VMM_CLI_CLI_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vmm/kvm/vm.h"

struct machine;

int cli_run(int argc, char **argv);
int cli_restore(int argc, char **argv);
int cli_migrate(int argc, char **argv);

/* Shared option parsing; each logs a one-line error and returns a negative errno. */
int cli_parse_uint(const char *opt, const char *text, uint64_t max, uint64_t *out);
int cli_parse_dirty_mode(const char *text, enum vm_dirty_mode *out);
int cli_set_trace(const char *patterns);
/* Exit code for a failure to create the machine (KVM missing -> VMIG_EXIT_NOKVM). */
int cli_machine_exit_code(int err);

/*
 * --qmp SPEC [--qmp-wait]: starts the control socket for base->m (before machine_start;
 * with wait the VM is paused until a client says cont). base carries the machine, its
 * devices and the migration; spec NULL: nothing, *out NULL. 0 or the exit code (64 bad
 * SPEC, 1 cannot listen).
 */
struct control;
struct control_config;
int cli_control_start(const struct control_config *base, const char *spec, bool wait,
		      struct control **out);

/*
 * The machine's migration (cli/mig.c): the engine's hooks forward its events to the
 * control socket, and the main thread waits here for an incoming migration or a save.
 */
struct migration;
struct cli_mig {
	struct migration *mig;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct control *ctl; /* under lock: where events go (NULL: nowhere) */
	bool incoming_done, incoming_ok;
};

/* 0, or 1 with a logged error. */
int cli_mig_create(struct machine *m, struct cli_mig *cm);
/* Events go to ctl from now on (NULL: dropped, before the control socket goes away). */
void cli_mig_attach(struct cli_mig *cm, struct control *ctl);
/* Cancels whatever runs and frees; after control_stop() (QMP commands use the engine). */
void cli_mig_destroy(struct cli_mig *cm);
/*
 * Destination: waits until the guest runs (0), the migration failed (1, one error line),
 * the VM was stopped meanwhile, e.g. by quit (-ESRCH) or deadline_ms (CLOCK_MONOTONIC,
 * < 0 never) passed (VMIG_EXIT_TIMEOUT).
 */
int cli_mig_wait_incoming(struct cli_mig *cm, struct machine *m, int64_t deadline_ms);
/* Source: migrates to file:PATH and waits for the end. 0 completed, 1 (logged) otherwise. */
int cli_mig_save(struct cli_mig *cm, const char *path);
/* CLOCK_MONOTONIC in milliseconds; deadlines for the waits above. */
int64_t cli_now_ms(void);
/* What is left until deadline_ms for machine_wait(): -1 (none) forever, 0 once passed. */
int cli_timeout_left(int64_t deadline_ms);

/*
 * A destination's TLS from the command line (--tls-creds DIR, --tls-authz DN...,
 * --keep-listening): the same objects and parameters QMP would make (tls.c).
 */
#define CLI_TLS_MAX_AUTHZ 16
struct cli_tls_dest {
	const char *creds_dir;
	const char *authz[CLI_TLS_MAX_AUTHZ];
	unsigned nr_authz;
	bool keep_listening;
};
int cli_tls_dest_add_authz(struct cli_tls_dest *t, const char *dn);
/* The options against each other and --incoming (given or not). One error line. */
int cli_tls_dest_check(const struct cli_tls_dest *t, bool incoming);
/* 0, or 1 with a logged error (a credentials directory that does not load). */
int cli_tls_dest_apply(const struct cli_tls_dest *t, struct migration *mig);

/*
 * vmig migrate --timeline: the passes (query-vmig-timeline) and the outcome (info, the
 * last query-migrate) into f as JSON lines. 0, or a negative errno (logged).
 */
struct qmp_client;
struct json_value;
int cli_timeline_write(struct qmp_client *q, const struct json_value *info, FILE *f);

/* The guest image: a file, or the one built into vmig when path is NULL. */
int cli_image_get(const char *path, void **data, size_t *size, int *free_it);

#endif
