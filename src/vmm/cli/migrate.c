// SPDX-License-Identifier: Apache-2.0
/*
 * vmig migrate --qmp unix:PATH URI: drives a running vmig's migration through its control
 * socket with QEMU's commands only (so it drives a QEMU as well), shows the progress and
 * ends with a summary. Exit status 0 only when the migration completed.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/json.h"
#include "common/log.h"
#include "vmm/cli/cli.h"
#include "vmm/cli/qmp_client.h"
#include "vmm/control/control.h"
#include "vmm/kvm/vm.h"

#define MIGRATE_MAX_BANDWIDTH  18446744073709ull /* QEMU's limit, bytes/s */
#define MIGRATE_PLAIN_EVERY_MS 1000		 /* progress lines when not on a terminal */

struct migrate_opts {
	const char *qmp_path, *uri;
	const char *tls_creds, *tls_hostname;
	const char *timeline;
	uint64_t downtime_ms, channels, max_bandwidth, max_passes, drain_ms, postcopy_after;
	bool has_downtime, has_channels, has_bandwidth, has_passes, has_drain, has_postcopy;
	bool auto_converge, then_quit;
	uint64_t interval_ms, timeout_s;
};

static void migrate_usage(void)
{
	printf("usage: vmig migrate --qmp unix:PATH [OPTIONS] URI\n"
	       "\n"
	       "Migrates the guest of the vmig (or QEMU) listening on the QMP socket PATH to\n"
	       "URI, where a destination waits ('vmig run --incoming URI' with the same --mem,\n"
	       "--vcpus and --no-devices). URI is tcp:HOST:PORT, unix:PATH or file:PATH.\n"
	       "Sets the parameters given below (the others keep the source's values), starts\n"
	       "the migration, shows its progress (one line rewritten in place on a terminal,\n"
	       "otherwise a line a second) and ends with a summary (docs/migration.md).\n"
	       "\n"
	       "  --qmp unix:PATH        the source's control socket (required)\n"
	       "  --downtime-limit MS    the longest pause allowed for the switchover\n"
	       "                         (downtime-limit; vmig's default 300)\n"
	       "  --channels N           N > 0: multifd on, N extra RAM connections\n"
	       "                         (multifd-channels, 1..16); 0: multifd off\n"
	       "  --max-bandwidth RATE   bytes/s, suffixes K, M, G (x1024); 0 = unlimited\n"
	       "  --auto-converge        throttle vCPUs that dirty memory faster than it moves\n"
	       "  --max-passes N         stop after N pre-copy passes (x-vmig-max-passes;\n"
	       "                         0 = no cap)\n"
	       "  --drain-limit MS       how long the devices may take to finish their work\n"
	       "                         while the guest answers their I/O page faults, before\n"
	       "                         the migration is cancelled (x-vmig-drain-limit,\n"
	       "                         1..600000; vmig's default 5000)\n"
	       "  --postcopy-after N     post-copy (postcopy-ram): after N pre-copy passes in a\n"
	       "                         row over the downtime limit the guest runs on the\n"
	       "                         destination and its missing pages follow, those it\n"
	       "                         touches first on demand (x-vmig-postcopy-after,\n"
	       "                         1..1000000; no devices, no --channels)\n"
	       "  --tls-creds DIR        every channel a TLS 1.3 session, with the x509\n"
	       "                         credentials in DIR (QEMU's tls-creds-x509 files:\n"
	       "                         ca-cert.pem, client-cert.pem, client-key.pem); the\n"
	       "                         destination's certificate must chain to that CA\n"
	       "  --tls-hostname NAME    the name the destination's certificate must carry\n"
	       "                         (default: the host in a tcp: URI)\n"
	       "  --timeline FILE        write the migration's timeline to FILE as JSON lines\n"
	       "                         (each pass, then the switchover; FILE '-': stdout);\n"
	       "                         scripts/plot-migration draws it\n"
	       "  --then-quit            send 'quit' to the source once the migration completed\n"
	       "  --interval MS          how often to ask for progress (default 100)\n"
	       "  --timeout SECONDS      cancel the migration if not done by then; exit %d\n"
	       "  -h, --help             this text\n"
	       "\n"
	       "Ctrl-C cancels the migration (migrate_cancel; the source guest keeps running)\n"
	       "and waits for it to end. Exit status: 0 completed, 1 failed or cancelled (the\n"
	       "reason on stderr), %d bad command line, %d timeout.\n",
	       VMIG_EXIT_TIMEOUT, VMIG_EXIT_USAGE, VMIG_EXIT_TIMEOUT);
}

enum {
	MOPT_QMP = 256,
	MOPT_DOWNTIME,
	MOPT_CHANNELS,
	MOPT_BANDWIDTH,
	MOPT_AUTO_CONVERGE,
	MOPT_PASSES,
	MOPT_DRAIN,
	MOPT_POSTCOPY,
	MOPT_THEN_QUIT,
	MOPT_TLS_CREDS,
	MOPT_TLS_HOSTNAME,
	MOPT_TIMELINE,
	MOPT_INTERVAL,
	MOPT_TIMEOUT,
};

static const struct option migrate_longopts[] = {
    {"qmp", required_argument, NULL, MOPT_QMP},
    {"downtime-limit", required_argument, NULL, MOPT_DOWNTIME},
    {"channels", required_argument, NULL, MOPT_CHANNELS},
    {"max-bandwidth", required_argument, NULL, MOPT_BANDWIDTH},
    {"auto-converge", no_argument, NULL, MOPT_AUTO_CONVERGE},
    {"max-passes", required_argument, NULL, MOPT_PASSES},
    {"drain-limit", required_argument, NULL, MOPT_DRAIN},
    {"postcopy-after", required_argument, NULL, MOPT_POSTCOPY},
    {"then-quit", no_argument, NULL, MOPT_THEN_QUIT},
    {"tls-creds", required_argument, NULL, MOPT_TLS_CREDS},
    {"tls-hostname", required_argument, NULL, MOPT_TLS_HOSTNAME},
    {"timeline", required_argument, NULL, MOPT_TIMELINE},
    {"interval", required_argument, NULL, MOPT_INTERVAL},
    {"timeout", required_argument, NULL, MOPT_TIMEOUT},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Command line --------------------------------------------------------------------------- */

/* A byte rate with an optional K, M or G (powers of 1024), as QEMU's size arguments. */
static int migrate_parse_rate(const char *text, uint64_t *out)
{
	static const char units[] = "KMG";
	char num[32];
	size_t len = strlen(text);
	const char *u = len ? strchr(units, text[len - 1] & ~0x20) : NULL;

	if (len == 0 || len >= sizeof(num) || (u && len == 1)) {
		log_error("--max-bandwidth: '%s' is not a rate like 100M", text);
		return -EINVAL;
	}
	memcpy(num, text, len + 1);
	if (u)
		num[len - 1] = 0;
	if (cli_parse_uint("--max-bandwidth", num, MIGRATE_MAX_BANDWIDTH, out) < 0)
		return -EINVAL;
	for (const char *k = units; u && k <= u; k++)
		*out *= 1024;
	if (*out > MIGRATE_MAX_BANDWIDTH) {
		log_error("--max-bandwidth: %s is too large (at most %llu bytes/s)", text,
			  MIGRATE_MAX_BANDWIDTH);
		return -ERANGE;
	}
	return 0;
}

static int migrate_parse_number(int c, struct migrate_opts *o)
{
	switch (c) {
	case MOPT_DOWNTIME:
		o->has_downtime = true;
		return cli_parse_uint("--downtime-limit", optarg, 2000000, &o->downtime_ms);
	case MOPT_CHANNELS:
		o->has_channels = true;
		return cli_parse_uint("--channels", optarg, 16, &o->channels);
	case MOPT_BANDWIDTH:
		o->has_bandwidth = true;
		return migrate_parse_rate(optarg, &o->max_bandwidth);
	case MOPT_PASSES:
		o->has_passes = true;
		return cli_parse_uint("--max-passes", optarg, 1000000, &o->max_passes);
	case MOPT_DRAIN:
		o->has_drain = true;
		if (cli_parse_uint("--drain-limit", optarg, 600000, &o->drain_ms) < 0)
			return -EINVAL;
		if (o->drain_ms == 0) {
			log_error("--drain-limit: must be at least 1 ms");
			return -EINVAL;
		}
		return 0;
	case MOPT_POSTCOPY:
		o->has_postcopy = true;
		if (cli_parse_uint("--postcopy-after", optarg, 1000000, &o->postcopy_after) < 0)
			return -EINVAL;
		if (o->postcopy_after == 0) {
			log_error("--postcopy-after: at least 1 pass");
			return -EINVAL;
		}
		return 0;
	case MOPT_TIMEOUT:
		return cli_parse_uint("--timeout", optarg, 86400, &o->timeout_s);
	default: /* MOPT_INTERVAL */
		if (cli_parse_uint("--interval", optarg, 60000, &o->interval_ms) < 0)
			return -EINVAL;
		if (o->interval_ms == 0) {
			log_error("--interval: at least 1 ms");
			return -EINVAL;
		}
		return 0;
	}
}

/* 0 to go on, 1 for --help, negative on a bad option. */
static int migrate_parse_one(int c, struct migrate_opts *o)
{
	switch (c) {
	case 'h':
		migrate_usage();
		return 1;
	case MOPT_QMP:
		return control_parse_address(optarg, &o->qmp_path);
	case MOPT_AUTO_CONVERGE:
		o->auto_converge = true;
		return 0;
	case MOPT_THEN_QUIT:
		o->then_quit = true;
		return 0;
	case MOPT_TLS_CREDS:
		o->tls_creds = optarg;
		return 0;
	case MOPT_TLS_HOSTNAME:
		o->tls_hostname = optarg;
		return 0;
	case MOPT_TIMELINE:
		o->timeline = optarg;
		return 0;
	default:
		return migrate_parse_number(c, o);
	}
}

static int migrate_check_args(int argc, char **argv, struct migrate_opts *o)
{
	char err[256];

	if (!o->qmp_path) {
		log_error("migrate: --qmp unix:PATH (the source's control socket) is required");
		return -EINVAL;
	}
	if (optind != argc - 1) {
		log_error(optind < argc ? "migrate: expected one URI, got more"
					: "migrate: missing the destination URI");
		return -EINVAL;
	}
	o->uri = argv[optind];
	if (o->tls_hostname && !o->tls_creds) {
		log_error("migrate: --tls-hostname needs --tls-creds DIR");
		return -EINVAL;
	}
	if (control_check_migrate_uri(o->uri, err, sizeof(err)) < 0) {
		log_error("migrate: %s: %s", o->uri, err);
		return -EINVAL;
	}
	return 0;
}

static int migrate_parse(int argc, char **argv, struct migrate_opts *o)
{
	*o = (struct migrate_opts){.interval_ms = 100};
	opterr = 0;
	optind = 1;
	for (;;) {
		int c = getopt_long(argc, argv, ":h", migrate_longopts, NULL);
		if (c == -1)
			break;
		if (c == '?' || c == ':') {
			log_error("migrate: unknown option or missing value: '%s'",
				  argv[optind - 1]);
			return -EINVAL;
		}
		int ret = migrate_parse_one(c, o);
		if (ret != 0)
			return ret;
	}
	return migrate_check_args(argc, argv, o);
}

/* Talking to the source ------------------------------------------------------------------ */

/* One command whose result is not needed; a refusal is logged with the command's name. */
static int migrate_command(struct qmp_client *q, const char *name, const char *args)
{
	struct json_value *reply = NULL;
	char err[512];
	int ret = qmp_client_execute(q, name, args, &reply, err, sizeof(err));

	if (ret < 0)
		log_error("%s: %s", name, err);
	json_free(reply);
	return ret;
}

static void migrate_add_param(char *buf, size_t size, const char *name, uint64_t v)
{
	size_t len = strlen(buf);

	snprintf(buf + len, size - len, "%s\"%s\": %llu", len > 1 ? ", " : "", name,
		 (unsigned long long)v);
}

/* migrate-set-parameters with what the command line gave; nothing given, nothing sent. */
static int migrate_set_params(struct qmp_client *q, const struct migrate_opts *o)
{
	char args[512] = "{";

	if (o->has_downtime)
		migrate_add_param(args, sizeof(args), "downtime-limit", o->downtime_ms);
	if (o->has_bandwidth)
		migrate_add_param(args, sizeof(args), "max-bandwidth", o->max_bandwidth);
	if (o->has_channels && o->channels)
		migrate_add_param(args, sizeof(args), "multifd-channels", o->channels);
	if (o->has_passes)
		migrate_add_param(args, sizeof(args), "x-vmig-max-passes", o->max_passes);
	if (o->has_drain)
		migrate_add_param(args, sizeof(args), "x-vmig-drain-limit", o->drain_ms);
	if (o->has_postcopy)
		migrate_add_param(args, sizeof(args), "x-vmig-postcopy-after", o->postcopy_after);
	if (strlen(args) == 1)
		return 0;
	strcat(args, "}");
	return migrate_command(q, "migrate-set-parameters", args);
}

static int migrate_set_caps(struct qmp_client *q, const struct migrate_opts *o)
{
	char args[256] = "{\"capabilities\": [";

	if (!o->has_channels && !o->auto_converge && !o->has_postcopy)
		return 0;
	if (o->has_channels)
		snprintf(args + strlen(args), sizeof(args) - strlen(args),
			 "{\"capability\": \"multifd\", \"state\": %s}",
			 o->channels ? "true" : "false");
	if (o->auto_converge)
		snprintf(args + strlen(args), sizeof(args) - strlen(args),
			 "%s{\"capability\": \"auto-converge\", \"state\": true}",
			 o->has_channels ? ", " : "");
	if (o->has_postcopy)
		snprintf(args + strlen(args), sizeof(args) - strlen(args),
			 "%s{\"capability\": \"postcopy-ram\", \"state\": true}",
			 o->has_channels || o->auto_converge ? ", " : "");
	strcat(args, "]}");
	return migrate_command(q, "migrate-set-capabilities", args);
}

/* A JSON object's text from key/value string pairs (NULL-ended); NULL on overflow. */
static char *migrate_json_strings(const char *const *kv)
{
	struct json_writer w;

	json_writer_init(&w, 8192);
	json_write_begin_object(&w);
	for (; kv[0]; kv += 2) {
		json_write_key(&w, kv[0]);
		json_write_string(&w, kv[1]);
	}
	json_write_end_object(&w);
	char *text = json_writer_error(&w) ? NULL : json_writer_take(&w, NULL);
	json_writer_fini(&w);
	return text;
}

static int migrate_command_kv(struct qmp_client *q, const char *name, const char *const *kv)
{
	char *args = migrate_json_strings(kv);
	int ret = args ? migrate_command(q, name, args) : -ENOMEM;

	free(args);
	return ret;
}

#define MIGRATE_TLS_ID "vmig-migrate-tls"

/*
 * --tls-creds: the source's client credentials as a QEMU client makes them (object-add
 * tls-creds-x509, endpoint=client), named by tls-creds. A previous run's object goes first.
 */
static int migrate_set_tls(struct qmp_client *q, const struct migrate_opts *o)
{
	char dir[4096];
	struct json_value *reply = NULL;
	char err[256];

	if (!o->tls_creds)
		return 0;
	if (!realpath(o->tls_creds, dir)) {
		log_error("--tls-creds %s: %s", o->tls_creds, strerror(errno));
		return -errno;
	}
	if (migrate_command_kv(q, "migrate-set-parameters",
			       (const char *[]){"tls-creds", "", NULL}) < 0)
		return -EINVAL;
	qmp_client_execute(q, "object-del", "{\"id\": \"" MIGRATE_TLS_ID "\"}", &reply, err,
			   sizeof(err)); /* absent the first time */
	json_free(reply);
	const char *add[] = {"qom-type", "tls-creds-x509", "id", MIGRATE_TLS_ID, "dir", dir,
			     "endpoint", "client",	   NULL};
	const char *set[] = {"tls-creds", MIGRATE_TLS_ID, "tls-hostname",
			     o->tls_hostname ? o->tls_hostname : "", NULL};
	if (migrate_command_kv(q, "object-add", add) < 0 ||
	    migrate_command_kv(q, "migrate-set-parameters", set) < 0)
		return -EINVAL;
	return 0;
}

static int migrate_start(struct qmp_client *q, const char *uri)
{
	struct json_writer w;
	int ret;

	json_writer_init(&w, 8192);
	json_write_begin_object(&w);
	json_write_key(&w, "uri");
	json_write_string(&w, uri);
	json_write_end_object(&w);
	ret = json_writer_error(&w) ? -ENOMEM : migrate_command(q, "migrate", w.buf);
	json_writer_fini(&w);
	return ret;
}

/* Progress -------------------------------------------------------------------------------- */

/* A member of o by path "a.b"; 0 when absent or not a number. */
static double migrate_num(const struct json_value *o, const char *key, const char *sub)
{
	const struct json_value *v = json_object_get(o, key);

	if (sub)
		v = json_object_get(v, sub);
	if (!v)
		return 0;
	return v->type == JSON_INT ? (double)v->i : v->type == JSON_DOUBLE ? v->d : 0;
}

static const char *migrate_status(const struct json_value *info)
{
	const struct json_value *s = json_object_get(info, "status");

	return s && s->type == JSON_STRING ? s->str.s : "none";
}

static bool migrate_finished(const char *status)
{
	return strcmp(status, "completed") == 0 || strcmp(status, "failed") == 0 ||
	       strcmp(status, "cancelled") == 0;
}

static void migrate_format_progress(const struct json_value *i, char *buf, size_t size)
{
	double pass = migrate_num(i, "x-vmig", "passes");
	int n = snprintf(buf, size,
			 "%-10s pass %.0f  transferred %.1f MiB  remaining %.1f MiB  %.1f MB/s  "
			 "expected downtime %.0f ms",
			 migrate_status(i), pass ? pass : migrate_num(i, "ram", "dirty-sync-count"),
			 migrate_num(i, "ram", "transferred") / 1048576.0,
			 migrate_num(i, "ram", "remaining") / 1048576.0,
			 migrate_num(i, "ram", "mbps") / 8.0,
			 migrate_num(i, "expected-downtime", NULL));

	if (json_object_get(i, "cpu-throttle-percentage") && n > 0 && (size_t)n < size)
		snprintf(buf + n, size - (size_t)n, "  throttle %.0f%%",
			 migrate_num(i, "cpu-throttle-percentage", NULL));
}

struct migrate_view {
	bool tty;
	bool line_open; /* a rewritten line is on the terminal */
	int64_t last_plain_ms;
};

static void migrate_show(struct migrate_view *v, const struct json_value *info)
{
	char line[256];

	if (!json_object_get(info, "ram"))
		return; /* setup, or over: nothing to show yet / the summary says it */
	migrate_format_progress(info, line, sizeof(line));
	if (v->tty) {
		printf("\r\033[K%s", line);
		v->line_open = true;
	} else if (cli_now_ms() - v->last_plain_ms >= MIGRATE_PLAIN_EVERY_MS) {
		printf("%s\n", line);
		v->last_plain_ms = cli_now_ms();
	}
	fflush(stdout);
}

/* Summary ------------------------------------------------------------------------------------ */

static void migrate_summary_phases(const struct json_value *info)
{
	static const char *const phases[] = {"drain",	   "quiesce",  "vcpu-stop", "device-stop",
					     "final-sync", "last-ram", "state",	    "dest-load",
					     "post-load",  "resume"};
	const struct json_value *p =
	    json_object_get(json_object_get(info, "x-vmig"), "switchover-us");

	if (!p)
		return;
	printf("  switchover (us) ");
	for (size_t k = 0; k < sizeof(phases) / sizeof(phases[0]); k++)
		printf("%s %s %.0f", k ? "," : "", phases[k], migrate_num(p, phases[k], NULL));
	printf("\n");
}

static void migrate_summary_ram(const struct json_value *info)
{
	double bytes = migrate_num(info, "ram", "transferred");
	double ms = migrate_num(info, "total-time", NULL);

	printf("  transferred      %.0f bytes (%.1f MiB)\n", bytes, bytes / 1048576.0);
	printf("  passes           %.0f\n", migrate_num(info, "x-vmig", "passes"));
	printf("  throughput       %.1f MB/s\n", ms > 0 ? bytes / ms / 1000.0 : 0.0);
	printf("  zero pages       %.0f\n", migrate_num(info, "ram", "duplicate"));
	printf("  skipped pages    %.0f (never written, not sent)\n",
	       migrate_num(info, "x-vmig", "skipped-pages"));
	printf("  channels         %.0f\n", migrate_num(info, "x-vmig", "channels"));
}

static void migrate_summary_device(const struct json_value *info)
{
	const struct json_value *d = json_object_get(json_object_get(info, "x-vmig"), "device");
	const struct json_value *how = json_object_get(d, "dirty-strategy");
	const struct json_value *why = json_object_get(d, "dirty-why");

	if (!d)
		return;
	printf("  devices          %.0f, device state %.0f bytes pre-copy + %.0f in stop-copy\n",
	       migrate_num(d, "devices", NULL), migrate_num(d, "precopy-bytes", NULL),
	       migrate_num(d, "stop-copy-bytes", NULL));
	printf("  device dirty     %s (%s): %.0f pages in %.0f harvests\n",
	       how && how->type == JSON_STRING ? how->str.s : "?",
	       why && why->type == JSON_STRING ? why->str.s : "?",
	       migrate_num(d, "dirty-pages", NULL), migrate_num(d, "harvests", NULL));
	d = json_object_get(json_object_get(info, "x-vmig"), "switchover");
	if (!d)
		return;
	printf("  faults in flight %.0f I/O page faults drained (%.0f outstanding), %.0f held "
	       "submissions (%.0f replayed), %.0f STEs re-installed\n",
	       migrate_num(d, "faults-drained", NULL), migrate_num(d, "faults-outstanding", NULL),
	       migrate_num(d, "held-submissions", NULL), migrate_num(d, "held-replayed", NULL),
	       migrate_num(d, "stes-reinstalled", NULL));
}

static void migrate_summary_tls(const struct json_value *info)
{
	const struct json_value *t = json_object_get(json_object_get(info, "x-vmig"), "tls");
	const struct json_value *peer = json_object_get(t, "peer");

	if (!t)
		return;
	printf("  TLS              destination '%s', %.0f handshakes (mean %.1f ms, "
	       "slowest %.1f ms)\n",
	       peer && peer->type == JSON_STRING ? peer->str.s : "?",
	       migrate_num(t, "handshakes", NULL), migrate_num(t, "handshake-us-mean", NULL) / 1000,
	       migrate_num(t, "handshake-us-max", NULL) / 1000);
}

static void migrate_summary_postcopy(const struct json_value *info)
{
	const struct json_value *p = json_object_get(json_object_get(info, "x-vmig"), "postcopy");

	if (!p)
		return;
	printf("  post-copy        %.0f pages after the switch, %.0f asked for by the "
	       "destination\n",
	       migrate_num(p, "discarded-pages", NULL), migrate_num(p, "requests", NULL));
}

static void migrate_summary(const struct json_value *info)
{
	printf("migration %s\n", migrate_status(info));
	if (json_object_get(info, "total-time")) {
		printf("  total time       %.0f ms\n", migrate_num(info, "total-time", NULL));
		printf("  setup time       %.0f ms\n", migrate_num(info, "setup-time", NULL));
	}
	if (json_object_get(info, "downtime"))
		printf("  downtime         %.0f ms (%.0f us)\n",
		       migrate_num(info, "downtime", NULL),
		       migrate_num(info, "x-vmig", "downtime-us"));
	if (json_object_get(info, "ram"))
		migrate_summary_ram(info);
	migrate_summary_phases(info);
	migrate_summary_device(info);
	migrate_summary_tls(info);
	migrate_summary_postcopy(info);
	fflush(stdout);
}

/* The poll loop ------------------------------------------------------------------------------ */

static volatile sig_atomic_t migrate_interrupted;

static void migrate_on_sigint(int sig)
{
	migrate_interrupted = 1;
}

/* Ctrl-C must interrupt the waits, not kill us: we still have to cancel and report. */
static void migrate_catch_sigint(void)
{
	struct sigaction sa = {.sa_handler = migrate_on_sigint};

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
}

struct migrate_run {
	struct qmp_client *q;
	const struct migrate_opts *o;
	struct migrate_view view;
	int64_t deadline_ms;
	bool cancel_sent, timed_out;
};

/* Sends migrate_cancel once, for Ctrl-C or the timeout. */
static void migrate_maybe_cancel(struct migrate_run *r)
{
	bool timeout = r->deadline_ms >= 0 && cli_now_ms() >= r->deadline_ms;

	if (r->cancel_sent || (!migrate_interrupted && !timeout))
		return;
	r->timed_out = !migrate_interrupted;
	if (r->view.line_open)
		printf("\n");
	r->view.line_open = false;
	printf("%s: cancelling the migration\n", r->timed_out ? "timeout" : "interrupted");
	fflush(stdout);
	r->cancel_sent = migrate_command(r->q, "migrate_cancel", NULL) == 0;
}

/* Polls query-migrate until the migration ends. 0 and *info, or a negative errno (logged). */
static int migrate_poll(struct migrate_run *r, struct json_value **info)
{
	struct timespec tick = {(time_t)(r->o->interval_ms / 1000),
				(long)(r->o->interval_ms % 1000) * 1000000L};
	char err[512];

	for (;;) {
		struct json_value *reply = NULL;
		int ret = qmp_client_execute(r->q, "query-migrate", NULL, &reply, err, sizeof(err));
		if (ret < 0) {
			log_error("query-migrate: %s", err);
			return ret;
		}
		const struct json_value *i = json_object_get(reply, "return");
		migrate_show(&r->view, i);
		if (migrate_finished(migrate_status(i))) {
			*info = reply;
			return 0;
		}
		json_free(reply);
		migrate_maybe_cancel(r);
		nanosleep(&tick, NULL); /* cut short by Ctrl-C: we look again at once */
	}
}

/* The exit status from the final query-migrate, with the reason on stderr. */
static int migrate_outcome(const struct migrate_run *r, const struct json_value *i)
{
	const char *status = migrate_status(i);
	const struct json_value *desc = json_object_get(i, "error-desc");

	if (strcmp(status, "completed") == 0)
		return 0;
	if (strcmp(status, "failed") == 0)
		log_error("migration failed: %s",
			  desc && desc->type == JSON_STRING ? desc->str.s : "no reason given");
	else
		log_error("migration cancelled%s", r->timed_out ? " after the --timeout" : "");
	return r->timed_out ? VMIG_EXIT_TIMEOUT : 1;
}

/* --timeline FILE, opened before the migration starts: a bad path fails first. */
static FILE *migrate_open_timeline(const char *path)
{
	FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");

	if (!f)
		log_error("--timeline %s: %s", path, strerror(errno));
	return f;
}

static int migrate_drive(struct qmp_client *q, const struct migrate_opts *o, FILE *tl)
{
	struct migrate_run r = {.q = q, .o = o, .view = {.tty = isatty(STDOUT_FILENO)}};
	struct json_value *final = NULL;

	r.deadline_ms = o->timeout_s ? cli_now_ms() + (int64_t)o->timeout_s * 1000 : -1;
	if (migrate_set_params(q, o) < 0 || migrate_set_caps(q, o) < 0 ||
	    migrate_set_tls(q, o) < 0 || migrate_start(q, o->uri))
		return 1;
	if (migrate_poll(&r, &final) < 0)
		return 1;
	if (r.view.line_open)
		printf("\n");
	const struct json_value *i = json_object_get(final, "return");
	migrate_summary(i);
	int code = migrate_outcome(&r, i);
	if (tl && cli_timeline_write(q, i, tl) < 0)
		code = code ? code : 1;
	json_free(final);
	if (code == 0 && o->then_quit && migrate_command(q, "quit", NULL) < 0)
		code = 1;
	return code;
}

int cli_migrate(int argc, char **argv)
{
	struct migrate_opts o;
	struct qmp_client q;
	char err[512];
	int ret = migrate_parse(argc, argv, &o);

	if (ret != 0)
		return ret > 0 ? 0 : VMIG_EXIT_USAGE;
	migrate_catch_sigint();
	if (qmp_client_connect(&q, o.qmp_path, err, sizeof(err)) < 0) {
		log_error("migrate: %s", err);
		return 1;
	}
	FILE *tl = o.timeline ? migrate_open_timeline(o.timeline) : NULL;
	if (o.timeline && !tl) {
		qmp_client_close(&q);
		return 1;
	}
	ret = migrate_drive(&q, &o, tl);
	if (tl && tl != stdout && fclose(tl) != 0) {
		log_error("--timeline %s: %s", o.timeline, strerror(errno));
		ret = ret ? ret : 1;
	}
	qmp_client_close(&q);
	return ret;
}
