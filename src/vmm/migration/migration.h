/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The live-migration engine (docs/migration.md, ../shared/design/MIGRATION.md).
 *
 * One `struct migration` per machine serves both directions: a source migrates out with
 * migration_start(), a destination loads with migration_incoming(). Both run on a thread
 * of their own; the caller (the control socket, the CLI) only starts, cancels and queries.
 * Every state change is reported through the hooks as QEMU's events (MIGRATION {status},
 * MIGRATION_PASS {pass}), so a QMP client written for QEMU drives vmig unchanged.
 *
 * URIs: tcp:HOST:PORT, unix:PATH, file:PATH (one format for all three).
 */
#ifndef VMIG_VMM_MIGRATION_MIGRATION_H
#define VMIG_VMM_MIGRATION_MIGRATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/migration/tls.h"

struct machine;
struct migration;

/* QEMU's MigrationStatus values, in its spelling (migration_status_name()). */
enum mig_status {
	MIG_STATUS_NONE,
	MIG_STATUS_SETUP,
	MIG_STATUS_ACTIVE,
	MIG_STATUS_DEVICE, /* vCPUs stopped, final state being sent */
	MIG_STATUS_COMPLETED,
	MIG_STATUS_FAILED,
	MIG_STATUS_CANCELLING,
	MIG_STATUS_CANCELLED,
	/* The guest runs on the destination; pages not yet there follow (post-copy). */
	MIG_STATUS_POSTCOPY_ACTIVE,
};
const char *migration_status_name(enum mig_status s);

/* Tunables, QEMU's names (migrate-set-parameters). */
struct mig_params {
	uint64_t downtime_limit_ms;	 /* "downtime-limit", default 300 */
	uint64_t max_bandwidth;		 /* "max-bandwidth" bytes/s; 0 = unlimited (default) */
	uint64_t multifd_channels;	 /* "multifd-channels", 1..16, default 2 */
	uint64_t cpu_throttle_initial;	 /* "cpu-throttle-initial" %, default 20 */
	uint64_t cpu_throttle_increment; /* "cpu-throttle-increment" %, default 10 */
	uint64_t max_cpu_throttle;	 /* "max-cpu-throttle" %, default 99 */
	uint64_t x_vmig_max_passes;	 /* "x-vmig-max-passes": 0 = no cap (default) */
	/* "x-vmig-device-dirty": the device-dirty strategy (device_dirty.h); 0 = auto */
	uint64_t x_vmig_device_dirty;
	uint64_t x_vmig_drain_limit_ms; /* "x-vmig-drain-limit": the device drain's bound */
	/* "x-vmig-postcopy-after": with postcopy-ram, N passes in a row over the downtime
	 * limit switch to post-copy by themselves; 0 = only migrate-start-postcopy (default) */
	uint64_t x_vmig_postcopy_after;
	/* TLS, QEMU's names: "" is off. Objects come from migration_object_add_*(). */
	char tls_creds[64];	/* "tls-creds": a tls-creds-x509 object's id */
	char tls_hostname[256]; /* "tls-hostname": the name the destination's certificate has */
	char tls_authz[64];	/* "tls-authz": an authz-simple/authz-list object's id */
};

/* Capabilities (migrate-set-capabilities): QEMU's names. */
enum mig_cap {
	MIG_CAP_MULTIFD,       /* "multifd": RAM on multifd-channels extra connections */
	MIG_CAP_AUTO_CONVERGE, /* "auto-converge": throttle vCPUs that dirty too fast */
	MIG_CAP_EVENTS,	       /* "events": MIGRATION events (vmig always sends them) */
	/*
	 * "x-vmig-keep-listening": a destination that refuses a connection before its stream
	 * began (TLS refused, not a vmig stream) goes on waiting for the right source.
	 */
	MIG_CAP_X_VMIG_KEEP_LISTENING,
	/* "postcopy-ram": migrate-start-postcopy may switch this migration to post-copy. */
	MIG_CAP_POSTCOPY_RAM,
	MIG_CAP__COUNT,
};
const char *migration_cap_name(enum mig_cap c);

/* The switchover breakdown, microseconds (0 for a phase not reached). */
struct mig_downtime_phases {
	uint64_t drain_us;     /* devices held and drained, vCPUs answering faults (not downtime) */
	uint64_t quiesce_us;   /* devices quiesced, vCPUs still running (not downtime) */
	uint64_t vcpu_stop_us; /* pausing every vCPU */
	uint64_t device_stop_us; /* devices stopped (STOP_COPY), host queues drained */
	uint64_t final_sync_us;	 /* the last dirty harvest */
	uint64_t last_ram_us;	 /* sending the last dirty pages */
	uint64_t state_us;	 /* CPU, irqchip, clock (and later devices) saved and sent */
	uint64_t dest_load_us;	 /* END sent -> READY received (destination apply + post-load) */
	uint64_t resume_us;	 /* COMMIT sent -> RUNNING received */
	uint64_t post_load_us;	 /* the destination's post-load (part of dest-load) */
};

/* What query-migrate reports (QEMU's MigrationInfo, plus vmig's). */
struct mig_info {
	enum mig_status status;
	bool is_source;
	char error_desc[512];
	uint64_t total_time_ms, setup_time_ms;
	uint64_t downtime_ms;	       /* measured, completed migrations only */
	uint64_t downtime_us;	       /* the same, finer */
	uint64_t expected_downtime_ms; /* current estimate while active */
	uint64_t passes;	       /* pre-copy passes started (MIGRATION_PASS) */
	uint64_t cpu_throttle_percentage;
	struct {
		uint64_t transferred; /* bytes on every channel, headers included */
		uint64_t remaining;   /* dirty bytes not yet sent */
		uint64_t total;	      /* guest RAM bytes */
		uint64_t duplicate;   /* zero pages (sent as zero runs) */
		uint64_t normal;      /* pages sent with data */
		uint64_t normal_bytes;
		uint64_t dirty_sync_count;
		uint64_t dirty_pages_rate; /* pages/s dirtied during the last pass */
		uint64_t precopy_bytes;	   /* sent while the vCPUs ran */
		uint64_t downtime_bytes;   /* sent while they were stopped */
		uint64_t skipped_pages;	   /* never-written pages not sent at all */
		double mbps;		   /* last pass's throughput, megabits/s */
	} ram;
	unsigned channels; /* connections in use (1 + multifd channels) */
	struct mig_downtime_phases phases;
	struct {
		bool present;		  /* a device-dirty section took part */
		char dirty_strategy[16];  /* stage2, device-log, stage1, perpetual */
		char dirty_why[160];	  /* why that strategy was chosen */
		uint64_t dirty_pages;	  /* pages device dirty tracking reported, all harvests */
		uint64_t reference_pages; /* benchmark reference (stage 2 alongside), or 0 */
		uint64_t harvests;
		uint64_t harvest_us;	  /* time spent harvesting, all harvests */
		uint64_t precopy_bytes;	  /* device state sent while the vCPUs ran */
		uint64_t stop_copy_bytes; /* device state sent in the downtime */
		unsigned devices;
	} device;
	/* Faults in flight and held submissions at the switchover (devices only). */
	struct {
		uint64_t faults_drained;     /* I/O page faults the guest answered in the drain */
		uint64_t faults_outstanding; /* waiting for the guest now */
		uint64_t held;		     /* guest register writes held, carried in the stream */
		uint64_t held_replayed;	   /* replayed by the destination (or here, rolled back) */
		uint64_t stes_reinstalled; /* the destination's post-load */
	} switchover;
	struct {
		bool enabled;
		char peer[256];		   /* the peer certificate's DN (main channel) */
		uint64_t handshakes;	   /* one per channel */
		uint64_t handshake_us_max; /* the slowest, and the mean */
		uint64_t handshake_us_mean;
	} tls;
	uint64_t refused; /* destination: connections refused before a stream began */
	char last_refusal[256];
	/* Post-copy: pages sent after the switch, and the destination's page faults. */
	struct {
		bool active;	       /* this migration switched to post-copy */
		uint64_t bytes;	       /* sent (source) or received (destination) after it */
		uint64_t discarded;    /* pages dirty at the switch: sent again after it */
		uint64_t requests;     /* pages asked for by a fault (destination: sent) */
		uint64_t faults;       /* destination: faults read */
		uint64_t duplicates;   /* destination: arrivals for a page already there */
		uint64_t fault_us_p50; /* destination: fault read -> page placed */
		uint64_t fault_us_p99;
		uint64_t fault_us_max;
	} postcopy;
};

/*
 * One pre-copy pass as the timeline keeps it (query-vmig-timeline, vmig migrate
 * --timeline): when, what it sent, how fast, what was dirtied meanwhile and by whom, and
 * what the convergence decided. At most MIG_TIMELINE_MAX per migration (one QMP reply):
 * past that the last record is replaced by the newest, so the end always shows.
 */
#define MIG_TIMELINE_MAX 512
struct mig_pass_record {
	uint64_t t_ms; /* the pass's start, since migrate */
	uint64_t pass;
	uint64_t duration_us; /* sending it and the harvest after it */
	uint64_t bytes;	      /* sent during the pass, every channel */
	uint64_t bandwidth;   /* bytes/s, the estimate the decision used */
	uint64_t remaining;   /* dirty bytes left after the harvest */
	uint64_t dirty_rate;  /* bytes/s dirtied during the pass */
	uint64_t dirty_vcpu_pages, dirty_vmm_pages, dirty_device_pages; /* newly marked */
	uint64_t expected_downtime_us;
	uint64_t throttle_pct;
	char decision[16]; /* "iterate", "switch", "throttle" */
	char why[112];
};
/* Copies up to max records (the oldest first); returns how many there are in all. */
size_t migration_timeline(struct migration *mig, struct mig_pass_record *out, size_t max);

/* Called on the migration thread (or the caller's): must not block for long. */
struct mig_hooks {
	/* A QMP event: name "MIGRATION" or "MIGRATION_PASS", data a JSON object's text. */
	void (*event)(void *opaque, const char *name, const char *data_json);
	/* Destination only: the guest runs now (after COMMIT). */
	void (*incoming_done)(void *opaque, bool ok);
	void *opaque;
};

int migration_create(struct machine *m, const struct mig_hooks *hooks, struct migration **out);
/* Cancels whatever runs, joins its threads, frees. NULL is a no-op. */
void migration_destroy(struct migration *mig);

/*
 * Source: starts migrating to uri on the migration thread and returns at once. Errors
 * (bad URI, a migration already active, a component that cannot migrate, a VM that does
 * not run): negative errno and a one-line reason in err.
 */
int migration_start(struct migration *mig, const char *uri, char *err, size_t errlen);
/* Source: migrate_cancel. Unblocks every channel; the guest resumes. -ENOENT if idle. */
int migration_cancel(struct migration *mig);
/*
 * migrate-start-postcopy: the running migration (postcopy-ram on) switches to post-copy at
 * the end of its current pass. -EINVAL with err saying why it cannot.
 */
int migration_start_postcopy(struct migration *mig, char *err, size_t errlen);

/*
 * Destination: listens on (or opens) uri and loads on the migration thread; on success
 * the vCPUs are started (machine_start) after COMMIT and hooks->incoming_done(true) runs.
 * The machine must be created and never started.
 */
int migration_incoming(struct migration *mig, const char *uri, char *err, size_t errlen);

void migration_query(struct migration *mig, struct mig_info *out);

/*
 * The one URI parser's verdict: 0, or -EINVAL with what was expected in `expect` (e.g.
 * "tcp:HOST:PORT", "a port number from 0 to 65535 in tcp:HOST:PORT").
 */
int migration_check_uri(const char *uri, char *expect, size_t len);

/*
 * A component that cannot migrate yet blocks every migration with its reason (QEMU's
 * migration blockers): migrate and --incoming then fail up front with that text, never
 * half-way. reason is copied.
 */
int migration_add_blocker(struct migration *mig, const char *reason);

/*
 * The machine shape a file: stream was saved from (vmig restore FILE sizes its VM with it).
 * -ENOENT/-EACCES for the file, -EINVAL with a reason for anything else.
 */
/*
 * TLS objects, as QMP object-add makes them (QEMU's tls-creds-x509, authz-simple and
 * authz-list): credentials are loaded at once (a bad directory fails here, with its reason);
 * an id is unique. As in QEMU, a parameter names an object by id: one deleted is missed when
 * a migration starts (its error), and a running migration keeps what it took until it ends.
 */
int migration_object_add_creds(struct migration *mig, const char *id, const char *dir, bool server,
			       char *err, size_t errlen);
int migration_object_add_authz(struct migration *mig, const char *id,
			       const struct mig_tls_rule *rules, size_t n, bool default_allow,
			       char *err, size_t errlen);
/* -ENOENT for no such object (err says). */
int migration_object_del(struct migration *mig, const char *id, char *err, size_t errlen);

int migration_peek_shape(const char *path, uint64_t *mem_size, unsigned *vcpus, char *err,
			 size_t errlen);

void migration_get_params(struct migration *mig, struct mig_params *out);
/*
 * Sets the parameters named in `which` (a bitmask of 1 << field index in the order of
 * struct mig_params) from p, all or nothing. -EINVAL with a reason naming the parameter.
 */
int migration_set_params(struct migration *mig, const struct mig_params *p, unsigned which,
			 char *err, size_t errlen);
#define MIG_PARAM_DOWNTIME_LIMIT	 (1u << 0)
#define MIG_PARAM_MAX_BANDWIDTH		 (1u << 1)
#define MIG_PARAM_MULTIFD_CHANNELS	 (1u << 2)
#define MIG_PARAM_CPU_THROTTLE_INITIAL	 (1u << 3)
#define MIG_PARAM_CPU_THROTTLE_INCREMENT (1u << 4)
#define MIG_PARAM_MAX_CPU_THROTTLE	 (1u << 5)
#define MIG_PARAM_X_VMIG_MAX_PASSES	 (1u << 6)
#define MIG_PARAM_X_VMIG_DEVICE_DIRTY	 (1u << 7)
#define MIG_PARAM_X_VMIG_DRAIN_LIMIT	 (1u << 8)
#define MIG_PARAM_TLS_CREDS		 (1u << 9)
#define MIG_PARAM_TLS_HOSTNAME		 (1u << 10)
#define MIG_PARAM_TLS_AUTHZ		 (1u << 11)
#define MIG_PARAM_X_VMIG_POSTCOPY_AFTER	 (1u << 12)

bool migration_get_cap(struct migration *mig, enum mig_cap c);
/* -EBUSY while a migration is active (as QEMU). */
int migration_set_cap(struct migration *mig, enum mig_cap c, bool on, char *err, size_t errlen);

/*
 * Source run state: true once the vCPUs stopped for a switchover that went past COMMIT
 * (QEMU's postmigrate): the engine keeps its VM_PAUSE_MIGRATION hold; a user's `cont`
 * alone cannot resume the guest.
 */
bool migration_source_done(struct migration *mig);
/*
 * The operator's `cont` in postmigrate: drops the engine's hold when the migration failed
 * after COMMIT (the destination never confirmed RUNNING: only one copy may run, the
 * operator decided it is this one), or after a completed save to a file: (the file is a
 * copy). -EPERM when a migration to tcp:/unix: completed (the guest runs on the
 * destination), -ENOENT when the source is not in postmigrate.
 */
int migration_release_source(struct migration *mig, char *err, size_t errlen);
/* True while the destination has not yet run its guest (run state inmigrate). */
bool migration_incoming_pending(struct migration *mig);

#endif
