// SPDX-License-Identifier: Apache-2.0
/*
 * vmig restore FILE: continue a guest saved by 'vmig run --save FILE' in this process. A
 * restore is a migration destination reading file:FILE, sized as the file's header says.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "vmm/cli/cli.h"
#include "vmm/control/control.h"
#include "vmm/machine.h"
#include "vmm/migration/migration.h"

static void restore_usage(void)
{
	printf("usage: vmig restore [OPTIONS] FILE\n"
	       "\n"
	       "Creates a fresh VM sized as the saved FILE says (RAM, vCPUs) and loads the\n"
	       "guest's state from it, as a migration destination reading file:FILE (the same\n"
	       "as 'vmig run --incoming file:FILE' with the matching --mem and --vcpus), then\n"
	       "lets the guest continue. Console and exit status as for 'vmig run'; a missing\n"
	       "FILE is exit status %d, a corrupt one 1 (the guest never runs).\n"
	       "\n"
	       "  --trace PATTERNS    trace points to print (as for run)\n"
	       "  --dirty-log MODE    auto, bitmap or ring (as for run)\n"
	       "  --timeout SECONDS   stop the guest after this long; exit status 124\n"
	       "  --qmp unix:PATH     a QMP-compatible control socket (as for run)\n"
	       "  --qmp-wait          with --qmp: start paused until a client sends 'cont'\n"
	       "  -h, --help          this text\n",
	       VMIG_EXIT_NOINPUT);
}

static const struct option restore_longopts[] = {
    {"trace", required_argument, NULL, 't'},
    {"dirty-log", required_argument, NULL, 'd'},
    {"timeout", required_argument, NULL, 'T'},
    {"qmp", required_argument, NULL, 'q'},
    {"qmp-wait", no_argument, NULL, 'w'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

struct restore_qmp {
	const char *spec;
	bool wait;
};

static int restore_parse(int argc, char **argv, struct machine_config *cfg, uint64_t *timeout,
			 const char **file, struct restore_qmp *q)
{
	opterr = 0;
	optind = 1;
	for (;;) {
		int c = getopt_long(argc, argv, "h", restore_longopts, NULL), ret = 0;
		if (c == -1)
			break;
		if (c == 'h') {
			restore_usage();
			return 1;
		} else if (c == 't') {
			ret = cli_set_trace(optarg);
		} else if (c == 'd') {
			ret = cli_parse_dirty_mode(optarg, &cfg->dirty_mode);
		} else if (c == 'T') {
			ret = cli_parse_uint("--timeout", optarg, 86400, timeout);
		} else if (c == 'q') {
			q->spec = optarg;
			ret = control_parse_address(optarg, &(const char *){NULL});
		} else if (c == 'w') {
			q->wait = true;
		} else {
			log_error("restore: unknown option or missing value: '%s'",
				  argv[optind - 1]);
			ret = -EINVAL;
		}
		if (ret < 0)
			return ret;
	}
	if (optind != argc - 1) {
		log_error("restore: expected exactly one snapshot FILE");
		return -EINVAL;
	}
	if (q->wait && !q->spec) {
		log_error("--qmp-wait needs --qmp unix:PATH");
		return -EINVAL;
	}
	*file = argv[optind];
	return 0;
}

/* The machine as the file's header describes it. 0, or the exit code (one error line). */
static int restore_create(const char *file, struct machine_config *cfg, struct machine **m)
{
	char err[256] = "";
	uint64_t mem = 0;
	unsigned vcpus = 0;
	int ret = migration_peek_shape(file, &mem, &vcpus, err, sizeof(err));

	if (ret < 0) {
		log_error("restore: %s", err[0] ? err : strerror(-ret));
		return ret == -ENOENT || ret == -EACCES ? VMIG_EXIT_NOINPUT : 1;
	}
	cfg->mem_size = mem;
	cfg->nr_vcpus = vcpus;
	ret = machine_create(cfg, m);
	return ret < 0 ? cli_machine_exit_code(ret) : 0;
}

/* Loads file into m (started by the engine once loaded). The exit code. */
static int restore_load_and_run(struct machine *m, struct cli_mig *cm, const char *file,
				uint64_t timeout)
{
	int64_t deadline = timeout ? cli_now_ms() + (int64_t)timeout * 1000 : -1;
	char uri[4096 + 8], err[256] = "";
	int ret = -ENAMETOOLONG;

	if (snprintf(uri, sizeof(uri), "file:%s", file) < (int)sizeof(uri))
		ret = migration_incoming(cm->mig, uri, err, sizeof(err));
	if (ret < 0) {
		log_error("restore: %s: %s", file, err[0] ? err : strerror(-ret));
		return 1;
	}
	ret = cli_mig_wait_incoming(cm, m, deadline);
	if (ret > 0)
		return ret;
	/* Running (0), or stopped while loading (quit: as for a running guest). */
	return machine_wait(m, ret == 0 ? cli_timeout_left(deadline) : 0);
}

int cli_restore(int argc, char **argv)
{
	struct machine_config cfg = {.dirty_mode = VM_DIRTY_AUTO};
	struct machine *m = NULL;
	uint64_t timeout = 0;
	const char *file = NULL;
	struct restore_qmp q = {NULL, false};
	struct control *ctl = NULL;
	struct cli_mig cm = {.mig = NULL};
	int ret = restore_parse(argc, argv, &cfg, &timeout, &file, &q);

	if (ret != 0)
		return ret > 0 ? 0 : VMIG_EXIT_USAGE;
	if (access(file, R_OK) != 0) {
		log_error("restore: %s: cannot read it", file);
		return VMIG_EXIT_NOINPUT;
	}
	int code = restore_create(file, &cfg, &m);
	if (code != 0)
		return code;
	code = cli_mig_create(m, &cm);
	struct control_config base = {.m = m, .mig = cm.mig, .incoming = true};
	if (code == 0)
		code = cli_control_start(&base, q.spec, q.wait, &ctl);
	cli_mig_attach(&cm, ctl);
	if (code == 0)
		code = restore_load_and_run(m, &cm, file, timeout);
	cli_mig_attach(&cm, NULL);
	control_stop(ctl, code);
	cli_mig_destroy(&cm);
	machine_destroy(m);
	return code;
}
