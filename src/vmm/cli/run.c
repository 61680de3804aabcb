// SPDX-License-Identifier: Apache-2.0
/* vmig run: boot a guest and run it until it writes its exit port. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/trace.h"
#include "vmig/guest_abi.h"
#include "vmig/host_platform.h"
#include "vmm/cli/cli.h"
#include "vmm/control/control.h"
#include "vmm/devices.h"
#include "vmm/machine.h"
#include "vmm/migration/migration.h"

struct run_opts {
	uint64_t mem;
	bool mem_prealloc;
	uint64_t vcpus;
	const char *guest_args;
	const char *kernel;
	enum vm_dirty_mode dirty;
	uint64_t timeout_s;
	const char *save;
	bool save_at_mark;
	uint64_t mark;
	uint64_t save_after_ms;
	bool no_devices;
	enum device_dirty_strategy device_dirty;
	bool host_no_s2_dirty;
	bool host_no_dma_log;
	bool host_no_precopy;
	const char *qmp; /* --qmp unix:PATH */
	bool qmp_wait;
	const char *incoming; /* --incoming URI or "defer" */
	struct cli_tls_dest tls;
};

/* What the built-in firmware runs when no --guest-args are given (docs/guest.md). */
#define RUN_DEFAULT_GUEST_ARGS "workload=dma,sva"
/* Without devices (--no-devices, --save) the device workloads could only fail. */
#define RUN_DEFAULT_GUEST_ARGS_NO_DEVICES "workload=dirty,verify secs=3 ws=64M"

static void run_usage(void)
{
	printf("usage: vmig run [OPTIONS]\n"
	       "\n"
	       "Boots the guest firmware (built into vmig, or --kernel) on KVM and runs it. The\n"
	       "guest console (port 0xE9) is printed line by line as 'guest: ...'; the value the\n"
	       "guest writes to its exit port (0xF4) becomes vmig's exit status.\n"
	       "\n"
	       "  --mem SIZE          guest RAM, e.g. 512M, 6G (default 256M). RAM above %lluM\n"
	       "                      continues at 4 GiB (the MMIO hole is in between)\n"
	       "  --mem-prealloc      allocate all guest RAM before the guest starts: costs\n"
	       "                      it all up front, makes a guest that touches most of\n"
	       "                      its RAM much faster (first touches are host faults)\n"
	       "  --vcpus N           number of vCPUs, 1..%d (default 1)\n"
	       "  --guest-args STR    the guest command line (workload selection; see\n"
	       "                      docs/guest.md), passed in the Multiboot information;\n"
	       "                      for the built-in firmware vmig adds cpus=N (default\n"
	       "                      '" RUN_DEFAULT_GUEST_ARGS "': DMA through the vSMMUv3;\n"
	       "                      without devices '" RUN_DEFAULT_GUEST_ARGS_NO_DEVICES "')\n"
	       "  --no-devices        no vSMMUv3 and no sdma device (implied by --save)\n"
	       "  --device-dirty MODE how a migration finds the pages the device wrote:\n"
	       "                      auto (default: the best this host allows; query-migrate\n"
	       "                      says which and why), stage2 (the host IOMMU's dirty\n"
	       "                      bits on the device's stage 2), device-log (the device's\n"
	       "                      DMA log, translated through the guest's stage 1) or\n"
	       "                      perpetual (every page the device can reach, once, in\n"
	       "                      the downtime)\n"
	       "  --host-no-s2-dirty  model a host IOMMU without dirty bits on the device's\n"
	       "                      stage 2 (device dirty tracking then falls back)\n"
	       "  --host-no-dma-log   model an sdma device without DMA logging\n"
	       "  --host-no-precopy   model an sdma device whose migration has no PRE_COPY\n"
	       "                      (all its state goes in the stop-copy)\n"
	       "  --kernel IMAGE      boot this Multiboot image instead of the built-in one\n"
	       "  --trace PATTERNS    trace points to print, comma-separated globs, '-' excludes\n"
	       "                      (e.g. 'kvm_exit_*,bus_unclaimed'); as VMIG_TRACE\n"
	       "  --dirty-log MODE    dirty tracking: auto (ring if KVM has it), bitmap, ring\n"
	       "  --timeout SECONDS   stop the guest after this long; exit status 124\n"
	       "  --save FILE         migrate the running guest into FILE (a migration to\n"
	       "                      file:FILE) and stop with status 0, at the moment given\n"
	       "                      by one of:\n"
	       "  --save-at-mark V      when the guest writes V to the checkpoint port (0xF8)\n"
	       "  --save-after MS       MS milliseconds after start\n"
	       "                      'vmig restore FILE' continues the guest in a new process\n"
	       "  --incoming URI      be a migration destination (docs/migration.md): no guest\n"
	       "                      is loaded; the guest's state comes from URI, one of\n"
	       "                      tcp:HOST:PORT, unix:PATH (listen there), file:PATH, or\n"
	       "                      'defer' (wait for QMP migrate-incoming; needs --qmp).\n"
	       "                      --mem, --vcpus, --dirty-log, --no-devices must match\n"
	       "                      the source's. The guest (and its device) runs once\n"
	       "                      the migration completes; exit status as for a normal\n"
	       "                      run, 1 if the migration failed (the guest never ran)\n"
	       "  --tls-creds DIR     with --incoming: accept only a source that connects with\n"
	       "                      TLS 1.3 and a certificate from DIR's CA (QEMU's\n"
	       "                      tls-creds-x509 files: ca-cert.pem, server-cert.pem,\n"
	       "                      server-key.pem; docs/migration.md, \"TLS\")\n"
	       "  --tls-authz DN      with --tls-creds: and only a source whose certificate's\n"
	       "                      DN is this one (e.g. 'O=Example,CN=src1'); repeatable\n"
	       "  --keep-listening    with --incoming: a refused connection (TLS refused, not a\n"
	       "                      vmig stream) is logged and the destination waits on\n"
	       "                      for the right source (x-vmig-keep-listening)\n"
	       "  --qmp unix:PATH     a QMP-compatible control socket at PATH (docs/control.md):\n"
	       "                      query-status, stop, cont, quit, query-cpus-fast,\n"
	       "                      vmig-trace, query-vmig-devices, the migration commands\n"
	       "                      (migrate, query-migrate, ...; 'vmig migrate' drives\n"
	       "                      them); events STOP, RESUME, SHUTDOWN, MIGRATION,\n"
	       "                      MIGRATION_PASS. 'quit' ends vmig with status 0\n"
	       "  --qmp-wait          with --qmp: start paused until a client sends 'cont'\n"
	       "  -h, --help          this text\n"
	       "\n"
	       "Exit status: the guest's (0-255; larger values give 255), %d bad command line,\n"
	       "%d missing file, %d KVM unavailable or lacking a capability, %d guest crash\n"
	       "(triple fault, KVM internal error; registers are printed), %d timeout,\n"
	       "1 other VMM errors.\n",
	       VMIG_MMIO_HOLE_START >> 20, VMIG_MAX_VCPUS, VMIG_EXIT_USAGE, VMIG_EXIT_NOINPUT,
	       VMIG_EXIT_NOKVM, VMIG_EXIT_CRASH, VMIG_EXIT_TIMEOUT);
}

enum {
	OPT_MEM = 256,
	OPT_MEM_PREALLOC,
	OPT_VCPUS,
	OPT_ARGS,
	OPT_KERNEL,
	OPT_TRACE,
	OPT_DIRTY,
	OPT_TIMEOUT,
	OPT_SAVE,
	OPT_SAVE_MARK,
	OPT_SAVE_AFTER,
	OPT_NO_DEVICES,
	OPT_DEVICE_DIRTY,
	OPT_HOST_NO_S2_DIRTY,
	OPT_HOST_NO_DMA_LOG,
	OPT_HOST_NO_PRECOPY,
	OPT_QMP,
	OPT_QMP_WAIT,
	OPT_INCOMING,
	OPT_TLS_CREDS,
	OPT_TLS_AUTHZ,
	OPT_KEEP_LISTENING
};

static const struct option run_longopts[] = {
    {"mem", required_argument, NULL, OPT_MEM},
    {"mem-prealloc", no_argument, NULL, OPT_MEM_PREALLOC},
    {"vcpus", required_argument, NULL, OPT_VCPUS},
    {"guest-args", required_argument, NULL, OPT_ARGS},
    {"kernel", required_argument, NULL, OPT_KERNEL},
    {"trace", required_argument, NULL, OPT_TRACE},
    {"dirty-log", required_argument, NULL, OPT_DIRTY},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"save", required_argument, NULL, OPT_SAVE},
    {"save-at-mark", required_argument, NULL, OPT_SAVE_MARK},
    {"save-after", required_argument, NULL, OPT_SAVE_AFTER},
    {"no-devices", no_argument, NULL, OPT_NO_DEVICES},
    {"device-dirty", required_argument, NULL, OPT_DEVICE_DIRTY},
    {"host-no-s2-dirty", no_argument, NULL, OPT_HOST_NO_S2_DIRTY},
    {"host-no-dma-log", no_argument, NULL, OPT_HOST_NO_DMA_LOG},
    {"host-no-precopy", no_argument, NULL, OPT_HOST_NO_PRECOPY},
    {"qmp", required_argument, NULL, OPT_QMP},
    {"qmp-wait", no_argument, NULL, OPT_QMP_WAIT},
    {"incoming", required_argument, NULL, OPT_INCOMING},
    {"tls-creds", required_argument, NULL, OPT_TLS_CREDS},
    {"tls-authz", required_argument, NULL, OPT_TLS_AUTHZ},
    {"keep-listening", no_argument, NULL, OPT_KEEP_LISTENING},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int run_parse_device_dirty(const char *arg, struct run_opts *o)
{
	if (device_dirty_parse(arg, &o->device_dirty) < 0) {
		log_error("--device-dirty: '%s' is not a strategy (auto, stage2, device-log, "
			  "perpetual)",
			  arg);
		return -EINVAL;
	}
	if (o->device_dirty == DEVICE_DIRTY_STAGE1) {
		log_error("--device-dirty %s: not implemented yet; auto, stage2, device-log and "
			  "perpetual are",
			  arg);
		return -EINVAL;
	}
	return 0;
}

/* 0 to go on, 1 for --help, negative on a bad option. */
static int run_parse_one(int c, struct run_opts *o)
{
	switch (c) {
	case OPT_MEM:
		if (guest_mem_parse_size(optarg, &o->mem) < 0) {
			log_error("--mem: '%s' is not a size like 512M or 6G (non-zero, 4 KiB "
				  "multiple, at most 1T)",
				  optarg);
			return -EINVAL;
		}
		return 0;
	case OPT_MEM_PREALLOC:
		o->mem_prealloc = true;
		return 0;
	case OPT_VCPUS:
		if (cli_parse_uint("--vcpus", optarg, VMIG_MAX_VCPUS, &o->vcpus) < 0)
			return -EINVAL;
		if (o->vcpus == 0) {
			log_error("--vcpus: at least 1");
			return -EINVAL;
		}
		return 0;
	case OPT_ARGS:
		o->guest_args = optarg;
		return 0;
	case OPT_KERNEL:
		o->kernel = optarg;
		return 0;
	case OPT_TRACE:
		return cli_set_trace(optarg);
	case OPT_DIRTY:
		return cli_parse_dirty_mode(optarg, &o->dirty);
	case OPT_TIMEOUT:
		return cli_parse_uint("--timeout", optarg, 86400, &o->timeout_s);
	case OPT_SAVE:
		o->save = optarg;
		return 0;
	case OPT_SAVE_MARK:
		o->save_at_mark = true;
		return cli_parse_uint("--save-at-mark", optarg, UINT32_MAX, &o->mark);
	case OPT_SAVE_AFTER:
		return cli_parse_uint("--save-after", optarg, 86400000, &o->save_after_ms);
	case OPT_DEVICE_DIRTY:
		return run_parse_device_dirty(optarg, o);
	case OPT_HOST_NO_S2_DIRTY:
		o->host_no_s2_dirty = true;
		return 0;
	case OPT_HOST_NO_DMA_LOG:
		o->host_no_dma_log = true;
		return 0;
	case OPT_HOST_NO_PRECOPY:
		o->host_no_precopy = true;
		return 0;
	case OPT_NO_DEVICES:
		o->no_devices = true;
		return 0;
	case OPT_QMP:
		o->qmp = optarg;
		return control_parse_address(optarg, &(const char *){NULL});
	case OPT_QMP_WAIT:
		o->qmp_wait = true;
		return 0;
	case OPT_INCOMING:
		o->incoming = optarg;
		return 0;
	case OPT_TLS_CREDS:
		o->tls.creds_dir = optarg;
		return 0;
	case OPT_TLS_AUTHZ:
		return cli_tls_dest_add_authz(&o->tls, optarg);
	case OPT_KEEP_LISTENING:
		o->tls.keep_listening = true;
		return 0;
	case 'h':
		run_usage();
		return 1;
	default:
		return -EINVAL; /* getopt printed nothing: opterr is 0 */
	}
}

/* --incoming against the rest of the command line; one error line each. */
static int run_check_incoming(const struct run_opts *o)
{
	char err[256];
	bool defer = strcmp(o->incoming, "defer") == 0;

	if (o->save) {
		log_error("--incoming and --save exclude each other");
		return -EINVAL;
	}
	if (defer && !o->qmp) {
		log_error("--incoming defer needs --qmp unix:PATH (the URI comes with QMP "
			  "migrate-incoming)");
		return -EINVAL;
	}
	if (o->qmp_wait) {
		log_error("--qmp-wait does not apply to --incoming: the guest runs when the "
			  "migration completes");
		return -EINVAL;
	}
	if (!defer && control_check_migrate_uri(o->incoming, err, sizeof(err)) < 0) {
		log_error("--incoming: %s", err);
		return -EINVAL;
	}
	return 0;
}

static int run_parse(int argc, char **argv, struct run_opts *o)
{
	*o = (struct run_opts){.mem = 256ull << 20, .vcpus = 1, .guest_args = NULL};
	opterr = 0;
	optind = 1;
	for (;;) {
		int c = getopt_long(argc, argv, "h", run_longopts, NULL);
		if (c == -1)
			break;
		if (c == '?' || c == ':') {
			log_error("run: unknown option or missing value: '%s'", argv[optind - 1]);
			return -EINVAL;
		}
		int ret = run_parse_one(c, o);
		if (ret != 0)
			return ret;
	}
	if (optind < argc) {
		log_error("run: unexpected argument '%s'", argv[optind]);
		return -EINVAL;
	}
	if ((o->save_at_mark || o->save_after_ms) && !o->save) {
		log_error("--save-at-mark/--save-after need --save FILE");
		return -EINVAL;
	}
	if (o->save && o->save_at_mark == (o->save_after_ms != 0)) {
		log_error("--save needs exactly one of --save-at-mark V or --save-after MS");
		return -EINVAL;
	}
	if (o->qmp_wait && !o->qmp) {
		log_error("--qmp-wait needs --qmp unix:PATH");
		return -EINVAL;
	}
	if (o->incoming && run_check_incoming(o) < 0)
		return -EINVAL;
	if (cli_tls_dest_check(&o->tls, o->incoming != NULL) < 0)
		return -EINVAL;
	if (o->save)
		o->no_devices = true;
	if (!o->guest_args)
		o->guest_args = o->kernel	? ""
				: o->no_devices ? RUN_DEFAULT_GUEST_ARGS_NO_DEVICES
						: RUN_DEFAULT_GUEST_ARGS;
	return 0;
}

/* Waits for the save point, migrates into the file and stops the VM. The exit code. */
static int run_save(struct machine *m, const struct run_opts *o, struct cli_mig *cm)
{
	int timeout = o->timeout_s ? (int)o->timeout_s * 1000 : -1;
	int ret;

	if (o->save_at_mark)
		ret = machine_wait_mark(m, (uint32_t)o->mark, timeout);
	else
		ret = vm_wait_stop(m->vm, (int)o->save_after_ms, NULL, NULL) == -ETIMEDOUT ? 0
											   : -ESRCH;
	if (ret < 0) {
		log_error("the guest %s before the save point",
			  ret == -ETIMEDOUT ? "timed out" : "stopped");
		int code = machine_wait(m, 0);
		return code ? code : 1;
	}
	/* Live, as any migration: the engine stops the vCPUs for the switchover only. */
	int code = cli_mig_save(cm, o->save);
	vm_request_stop(m->vm, VM_STOP_REQUEST, 0);
	if (code == 0)
		TRACE(cli_saved, "%s", o->save);
	return code;
}

int cli_machine_exit_code(int err)
{
	if (err == -ENOENT || err == -EACCES || err == -EPERM || err == -ENOTSUP)
		return VMIG_EXIT_NOKVM;
	return 1;
}

/*
 * The built-in firmware waits 250 ms for vCPUs it was not told about (docs/guest.md):
 * tell it, unless the user did. Other images get their command line untouched.
 */
static char *run_guest_cmdline(const struct run_opts *o)
{
	char *cmd = NULL;

	if (o->kernel || strstr(o->guest_args, "cpus="))
		return strdup(o->guest_args);
	if (asprintf(&cmd, "cpus=%u%s%s", (unsigned)o->vcpus, *o->guest_args ? " " : "",
		     o->guest_args) < 0)
		return NULL;
	return cmd;
}

/* One line on stdout after the run: what the passthrough side did. */
static void run_print_summary(struct devices *dev, struct host_platform *hp)
{
	struct devices_stats st;
	struct host_platform_stats hs;

	devices_get_stats(dev, &st);
	host_platform_get_stats(hp, &hs);
	printf("SUMMARY devices vsmmu_cmds=%llu vsmmu_events=%llu nested_hwpts=%llu "
	       "invalidations=%llu faults=%llu responses=%llu msis=%llu doorbells_trapped=%llu "
	       "doorbells_held=%llu host_events=%llu\n",
	       (unsigned long long)st.vsmmu.cmds, (unsigned long long)st.vsmmu.events,
	       (unsigned long long)st.nested.hwpt_allocs, (unsigned long long)st.nested.inv_cmds,
	       (unsigned long long)st.nested.faults, (unsigned long long)st.nested.responses,
	       (unsigned long long)st.msis, (unsigned long long)st.sdma.doorbells_trapped,
	       (unsigned long long)st.sdma.doorbells_held, (unsigned long long)hs.smmu_events);
	fflush(stdout);
}

/* The host machine, then the vSMMU and the device on m. 0, or the exit code. */
static int run_devices_create(struct machine *m, const struct run_opts *o,
			      struct host_platform **hp, struct devices **dev)
{
	struct devices_config dc = {.no_dirty_tracking = o->host_no_s2_dirty};
	struct host_platform_config hc = {.sdma_no_dma_log = o->host_no_dma_log,
					  .sdma_no_precopy = o->host_no_precopy};
	int ret = host_platform_boot(&hc, hp);

	if (ret < 0) {
		log_error("cannot create the host platform: %s", strerror(-ret));
		return 1;
	}
	ret = devices_create(m, &dc, dev);
	if (ret < 0) {
		host_platform_shutdown(*hp);
		*hp = NULL;
		return 1;
	}
	return 0;
}

/* A destination: the guest runs only once its state has arrived. The exit code. */
static int run_incoming(struct machine *m, const struct run_opts *o, struct cli_mig *cm,
			int64_t deadline)
{
	char err[256] = "";
	int ret = 0;

	if (strcmp(o->incoming, "defer") != 0)
		ret = migration_incoming(cm->mig, o->incoming, err, sizeof(err));
	if (ret < 0) {
		log_error("--incoming %s: %s", o->incoming, err[0] ? err : strerror(-ret));
		return 1;
	}
	ret = cli_mig_wait_incoming(cm, m, deadline);
	if (ret > 0)
		return ret;
	/* Running (0), or stopped while waiting (quit: as for a running guest). */
	return machine_wait(m, ret == 0 ? cli_timeout_left(deadline) : 0);
}

static int run_machine(struct machine *m, const struct run_opts *o, struct cli_mig *cm)
{
	int64_t deadline = o->timeout_s ? cli_now_ms() + (int64_t)o->timeout_s * 1000 : -1;

	if (o->incoming)
		return run_incoming(m, o, cm, deadline);
	if (machine_start(m) < 0)
		return 1;
	if (o->save)
		return run_save(m, o, cm);
	return machine_wait(m, cli_timeout_left(deadline));
}

static int run_load(struct machine *m, const struct run_opts *o)
{
	void *image = NULL;
	size_t image_size = 0;
	int free_image = 0;

	if (cli_image_get(o->kernel, &image, &image_size, &free_image) < 0)
		return VMIG_EXIT_NOINPUT;
	char *cmdline = run_guest_cmdline(o);
	int ret = cmdline ? machine_load_kernel(m, image, image_size, cmdline) : -ENOMEM;
	free(cmdline);
	if (free_image)
		free(image);
	return ret < 0 ? 1 : 0;
}

/* The control socket on m, sharing the migration with the command line. */
static int run_control_start(struct machine *m, const struct run_opts *o, struct devices *dev,
			     struct host_platform *hp, struct cli_mig *cm, struct control **ctl)
{
	struct control_config base = {
	    .m = m,
	    .dev = dev,
	    .hp = hp,
	    .mig = cm->mig,
	    .incoming = o->incoming != NULL,
	    .incoming_defer = o->incoming && strcmp(o->incoming, "defer") == 0,
	};
	int code = cli_control_start(&base, o->qmp, o->qmp_wait, ctl);

	cli_mig_attach(cm, *ctl);
	return code;
}

int cli_run(int argc, char **argv)
{
	struct run_opts o;
	struct machine *m = NULL;
	struct host_platform *hp = NULL;
	struct devices *dev = NULL;
	struct control *ctl = NULL;
	struct cli_mig cm = {.mig = NULL};
	int ret = run_parse(argc, argv, &o);

	if (ret != 0)
		return ret > 0 ? 0 : VMIG_EXIT_USAGE;
	/* A destination loads no image: its --kernel is the source's, for a matching command. */
	if (o.kernel && !o.incoming && access(o.kernel, R_OK) < 0) {
		log_error("cannot read %s: %s", o.kernel, strerror(errno));
		return VMIG_EXIT_NOINPUT;
	}
	struct machine_config cfg = {.mem_size = o.mem,
				     .nr_vcpus = (unsigned)o.vcpus,
				     .dirty_mode = o.dirty,
				     .mem_prealloc = o.mem_prealloc};
	ret = machine_create(&cfg, &m);
	if (ret < 0)
		return cli_machine_exit_code(ret);
	int code = o.incoming ? 0 : run_load(m, &o);
	if (code == 0 && !o.no_devices)
		code = run_devices_create(m, &o, &hp, &dev);
	if (code == 0)
		code = cli_mig_create(m, &cm);
	if (code == 0 && dev && devices_migration_register(dev, cm.mig, o.device_dirty) < 0)
		code = 1;
	if (code == 0 && o.incoming)
		code = cli_tls_dest_apply(&o.tls, cm.mig);
	if (code == 0)
		code = run_control_start(m, &o, dev, hp, &cm, &ctl);
	if (code == 0)
		code = run_machine(m, &o, &cm);
	cli_mig_attach(&cm, NULL); /* no event may reach a control socket being freed */
	control_stop(ctl, code);   /* SHUTDOWN to clients; before the devices it reports on go */
	cli_mig_destroy(&cm);	   /* after the socket: its commands call the engine */
	/* vCPUs first (no guest access to the devices), then the devices, then the host. */
	if (dev) {
		vm_request_stop(m->vm, VM_STOP_REQUEST, 0);
		vm_wait_stop(m->vm, -1, NULL, NULL);
		run_print_summary(dev, hp);
		devices_destroy(dev);
	}
	machine_destroy(m);
	host_platform_shutdown(hp);
	return code;
}
