/* SPDX-License-Identifier: Apache-2.0 */
/* The vmig command line: one function per subcommand, each returning the process exit code. */
#ifndef VMIG_VMM_CLI_CLI_H
#define VMIG_VMM_CLI_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/kvm/vm.h"

struct machine;

int cli_run(int argc, char **argv);
int cli_restore(int argc, char **argv);

/* Shared option parsing; each logs a one-line error and returns a negative errno. */
int cli_parse_uint(const char *opt, const char *text, uint64_t max, uint64_t *out);
int cli_parse_dirty_mode(const char *text, enum vm_dirty_mode *out);
int cli_set_trace(const char *patterns);
/* Exit code for a failure to create the machine (KVM missing -> VMIG_EXIT_NOKVM). */
int cli_machine_exit_code(int err);

/*
 * --qmp SPEC [--qmp-wait]: starts the control socket for m (before machine_start; with
 * wait the VM is paused until a client says cont). spec NULL: nothing, *out NULL.
 * 0 or the exit code (64 bad SPEC, 1 cannot listen).
 */
struct control;
struct devices;
struct host_platform;
int cli_control_start(struct machine *m, const char *spec, bool wait, struct devices *dev,
		      struct host_platform *hp, struct control **out);

/* The guest image: a file, or the one built into vmig when path is NULL. */
int cli_image_get(const char *path, void **data, size_t *size, int *free_it);

#endif
