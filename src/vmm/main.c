// SPDX-License-Identifier: Apache-2.0
/* vmig: a small KVM VMM. Subcommands: run, restore, migrate (later: demo). */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/trace.h"
#include "vmm/cli/cli.h"

static void main_usage(FILE *out)
{
	fputs("usage: vmig COMMAND [OPTIONS]\n"
	      "\n"
	      "Commands:\n"
	      "  run       boot a guest (the built-in firmware or --kernel IMAGE) and run it\n"
	      "  restore   continue a guest saved with 'vmig run --save FILE'\n"
	      "  migrate   drive a live migration of a running vmig through its --qmp socket\n"
	      "            to a destination started with 'vmig run --incoming URI'\n"
	      "  help      this text; 'vmig COMMAND --help' describes a command's options\n"
	      "\n"
	      "Environment: VMIG_TRACE=PATTERNS (as --trace), VMIG_TRACE_FILE=PATH.\n",
	      out);
}

int main(int argc, char **argv)
{
	if (trace_init_from_env() < 0) {
		log_error("VMIG_TRACE/VMIG_TRACE_FILE: invalid value");
		return VMIG_EXIT_USAGE;
	}
	if (argc < 2) {
		log_error("missing command (try 'vmig help')");
		return VMIG_EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "run") == 0)
		return cli_run(argc - 1, argv + 1);
	if (strcmp(cmd, "restore") == 0)
		return cli_restore(argc - 1, argv + 1);
	if (strcmp(cmd, "migrate") == 0)
		return cli_migrate(argc - 1, argv + 1);
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
		main_usage(stdout);
		return 0;
	}
	log_error("unknown command '%s' (try 'vmig help')", cmd);
	return VMIG_EXIT_USAGE;
}
