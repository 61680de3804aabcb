// SPDX-License-Identifier: Apache-2.0
/* vmig restore FILE: continue a guest saved by 'vmig run --save FILE' in this process. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <unistd.h>

#include "common/log.h"
#include "vmm/cli/cli.h"
#include "vmm/control/control.h"
#include "vmm/machine.h"
#include "vmm/snapshot.h"

static void restore_usage(void)
{
	printf("usage: vmig restore [OPTIONS] FILE\n"
	       "\n"
	       "Creates a fresh VM sized as the snapshot FILE says (RAM, vCPUs), loads its RAM,\n"
	       "irqchip, KVM clock and every vCPU's full state, and lets the guest continue.\n"
	       "Console and exit status as for 'vmig run'.\n"
	       "\n"
	       "  --trace PATTERNS    trace points to print (as for run)\n"
	       "  --dirty-log MODE    auto, bitmap or ring (as for run)\n"
	       "  --timeout SECONDS   stop the guest after this long; exit status 124\n"
	       "  --qmp unix:PATH     a QMP-compatible control socket (as for run)\n"
	       "  --qmp-wait          with --qmp: start paused until a client sends 'cont'\n"
	       "  -h, --help          this text\n");
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

int cli_restore(int argc, char **argv)
{
	struct machine_config cfg = {.dirty_mode = VM_DIRTY_AUTO};
	struct machine *m;
	uint64_t timeout = 0;
	const char *file = NULL;
	struct restore_qmp q = {NULL, false};
	struct control *ctl = NULL;
	int ret = restore_parse(argc, argv, &cfg, &timeout, &file, &q);

	if (ret != 0)
		return ret > 0 ? 0 : VMIG_EXIT_USAGE;
	if (access(file, R_OK) != 0) {
		log_error("restore: %s: cannot read it", file);
		return VMIG_EXIT_NOINPUT;
	}
	ret = snapshot_restore(file, &cfg, &m);
	if (ret < 0)
		return ret == -EINVAL || ret == -EPROTO ? 1 : cli_machine_exit_code(ret);
	int code = cli_control_start(m, q.spec, q.wait, NULL, NULL, &ctl);
	if (code == 0)
		code =
		    machine_start(m) == 0 ? machine_wait(m, timeout ? (int)timeout * 1000 : -1) : 1;
	control_stop(ctl, code);
	machine_destroy(m);
	return code;
}
