/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal to src/vmm/migration: the wire format, channels, the section registry and the
 * engine's state. docs/migration-stream.md describes the format for readers of a capture.
 */
#ifndef VMIG_VMM_MIGRATION_INTERNAL_H
#define VMIG_VMM_MIGRATION_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vmm/migration/migration.h"
#include "vmm/migration/tls.h"
#include "vmm/migration/section.h"

/* The wire ------------------------------------------------------------------------------ */

#define MIG_MAGIC	   "VMIGSTRM"
#define MIG_VERSION	   1u
#define MIG_MAX_CHANNELS   16u
#define MIG_RAM_RUN_PAGES  64u /* one dirty-bitmap word: the unit a RAM channel owns */
#define MIG_ERROR_TEXT_MAX 480u
#define MIG_HDR_F_FILE	   1u /* no return path: a file */

/* Every connection (and a file) starts with this; little endian, 64 bytes. */
struct mig_hdr {
	char magic[8];
	uint32_t version;
	uint32_t channel; /* 0: the main channel; 1..ram_channels: RAM only */
	uint8_t session[16];
	uint32_t ram_channels; /* extra RAM connections (0: RAM on the main channel) */
	uint32_t nr_vcpus;
	uint64_t mem_size;
	uint32_t flags;
	uint32_t reserved[2];
	uint32_t crc; /* crc32c of the bytes before it */
};

enum mig_stream_type {
	MIG_T_SHAPE = 1,   /* payload: the CPU shape blob (vm_shape_save) */
	MIG_T_PASS = 2,	   /* arg: pass number; also the main channel's keep-alive */
	MIG_T_END = 3,	   /* the source sent everything (main channel) */
	MIG_T_EOS = 4,	   /* a RAM channel's last record; arg: records before it */
	MIG_T_READY = 5,   /* destination -> source: loaded, nothing runs */
	MIG_T_COMMIT = 6,  /* source -> destination: run it */
	MIG_T_RUNNING = 7, /* destination -> source; arg: CLOCK_REALTIME ns of the run */
	MIG_T_ERROR = 8,   /* destination -> source; payload: the reason (text) */
	MIG_T_PING = 9,	   /* source -> destination at setup; answered by PONG */
	MIG_T_PONG = 10,
	MIG_T_POSTCOPY = 11, /* source -> destination before the DISCARDs: post-copy follows */
	MIG_T_PC_REQ = 12,   /* destination -> source: arg GPA, count pages (a fault) */
	MIG_T_PC_DONE = 13,  /* source: every page went; destination: every page is there */
};

/* RAM records (section MIG_SEC_RAM): pre-copy pages, then post-copy's. */
enum mig_ram_type {
	MIG_T_RAM_DATA = 1,
	MIG_T_RAM_ZERO = 2,
	MIG_T_RAM_DISCARD = 3, /* main channel, at the switch: pages to send again (no data) */
	MIG_T_RAM_PC_DATA = 4, /* after COMMIT, main channel: placed whole, never over a page */
	MIG_T_RAM_PC_ZERO = 5,
};

/* A record: this header, then len payload bytes. 32 bytes, little endian. */
struct mig_rec {
	uint16_t section;
	uint16_t type;
	uint32_t len;
	uint64_t arg;
	uint32_t count;
	uint32_t data_crc; /* crc32c of the payload */
	uint32_t seq;	   /* per channel and direction, from 0: a lost record is caught */
	uint32_t crc;	   /* crc32c of the 28 bytes before it */
};

/* Channels ------------------------------------------------------------------------------ */

struct mig_tls;

struct mig_chan {
	int fd;
	unsigned index;
	bool is_file;
	struct mig_tls *tls; /* records go through this TLS session (NULL: plain) */
	bool no_plain_reply; /* a TLS peer refused in its handshake: its alert said why */
	uint32_t seq_out, seq_in;
	uint64_t bytes_out, bytes_in; /* atomics: query-migrate reads them */
	struct migration *mig;
	pthread_t thread;
	bool thread_live;
	int thread_ret;
};

enum mig_uri_kind { MIG_URI_TCP = 1, MIG_URI_UNIX, MIG_URI_FILE };

struct mig_uri {
	enum mig_uri_kind kind;
	char host[256];
	char port[16];
	char path[108];
};

int mig_uri_parse(const char *text, struct mig_uri *u, char *err, size_t errlen);
/*
 * Source side: one connection (or the file created), given up after 10 s or when *cancel
 * turns true. Returns the fd or -errno.
 */
int mig_uri_connect(const struct mig_uri *u, const bool *cancel, char *err, size_t errlen);
/* Source, file: only: PATH.partial becomes PATH (ok) or goes away. */
int mig_uri_file_finish(const struct mig_uri *u, bool ok);
/* Destination: the listening socket (or the opened file). */
int mig_uri_listen(const struct mig_uri *u, char *err, size_t errlen);
/* Waits for one connection, bounded; *cancel polled. -ETIMEDOUT, -ECANCELED. */
int mig_uri_accept(int listen_fd, int timeout_ms, const bool *cancel);

void mig_chan_init(struct mig_chan *c, struct migration *mig, int fd, unsigned index);
/*
 * shutdown(2) for a socket (SHUT_RD, SHUT_WR, SHUT_RDWR): unblocks a thread stuck in I/O on
 * that side. Idempotent; files are left alone.
 */
void mig_chan_shutdown(struct mig_chan *c, int how);
void mig_chan_close(struct mig_chan *c);
/*
 * Post-copy: neither side may give the other up after a short stall (without recovery, that
 * loses the guest), so the channel's send and receive bounds go, and TCP gives unacknowledged
 * data MIG_PATIENT_TCP_MS before it declares the link dead.
 */
#define MIG_PATIENT_TCP_MS (10 * 60 * 1000)
void mig_chan_patient(struct mig_chan *c);

int mig_chan_write_all(struct mig_chan *c, struct iovec *iov, int n);
int mig_chan_read_all(struct mig_chan *c, void *buf, size_t len);
/* Fills hdr for a record whose payload the caller sends itself in the same writev. */
void mig_rec_fill(struct mig_chan *c, struct mig_rec *r, uint16_t section, uint16_t type,
		  uint64_t arg, uint32_t count, uint32_t len, uint32_t data_crc);
/* A channel I/O error in words: a timeout names a dead link or stalled peer. */
const char *mig_io_strerror(int err);
/* The next record's header, checked (crc, sequence, length bound). -EBADMSG with a reason. */
int mig_chan_recv(struct mig_chan *c, struct mig_rec *r, char *err, size_t errlen);

void mig_hdr_fill(struct mig_hdr *h, const struct migration *mig, unsigned channel, uint32_t flags);
int mig_hdr_check(const struct mig_hdr *h, char *err, size_t errlen);

/* Sections ------------------------------------------------------------------------------ */

#define MIG_MAX_SECTIONS 16u

/* TLS (tls_config.c) ------------------------------------------------------------------- */

#define MIG_TLS_MAX_OBJECTS 8u
#define MIG_TLS_MAX_RULES   16u
/*
 * Handshake bounds: a destination gives a connection little time to start its handshake,
 * so a silent peer queued ahead of the real source cannot make the source's own (longer)
 * wait run out.
 */
#define MIG_TLS_CLIENT_MS 20000
#define MIG_TLS_SERVER_MS 5000

/* One object-add'ed object: x509 credentials, or an authorization list. */
struct mig_tls_obj {
	char id[64];
	bool used;
	bool retired; /* object-del'ed while a run held it: freed when the run ends */
	bool is_authz;
	struct mig_tls_creds *creds; /* credentials */
	bool server;
	char dir[256];
	struct mig_tls_rule rules[MIG_TLS_MAX_RULES]; /* authorization; matches are owned */
	struct mig_tls_authz authz;
};

/* Under lock, at a run's start: the credentials, name and list this run uses. */
int mig_tls_resolve(struct migration *mig, bool source, char *err, size_t errlen);
/* The run's thread, its sessions all freed: the objects are free for object-del again. */
void mig_tls_run_end(struct migration *mig);
/* The same under lock, for a run that never started its thread (frees retired objects). */
void mig_tls_forget(struct migration *mig);
/* The source's and the destination's handshake on a connected channel (no-op without TLS). */
int mig_tls_connect(struct migration *mig, struct mig_chan *c, char *err, size_t errlen);
int mig_tls_accept(struct migration *mig, struct mig_chan *c, int timeout_ms, char *err,
		   size_t errlen);
int mig_tls_params_check(struct migration *mig, const struct mig_params *p, unsigned which,
			 char *err, size_t errlen);
void mig_tls_objects_free(struct migration *mig);

/* The engine ---------------------------------------------------------------------------- */

struct mig_ram;

struct migration {
	struct machine *m;
	struct mig_hooks hooks;
	pthread_mutex_t lock; /* status, params, caps, error, blockers */
	pthread_cond_t cond;
	struct mig_params params;
	bool caps[MIG_CAP__COUNT];
	enum mig_status status;
	bool is_source;
	bool cancel; /* atomic */
	char error[MIG_ERROR_TEXT_MAX + 32];
	char *blockers[4];
	unsigned nr_blockers;
	pthread_t thread;
	bool thread_live;
	struct mig_uri uri;
	uint8_t session[16];

	struct mig_section sections[MIG_MAX_SECTIONS];
	unsigned nr_sections;
	struct mig_ram *ram;

	struct mig_chan chans[1 + MIG_MAX_CHANNELS];
	unsigned nr_chans; /* 1 + RAM channels */
	int listen_fd;

	/* Source progress (atomics where other threads read them). */
	uint64_t start_ns, setup_ns, end_ns, stop_ns;
	uint64_t passes, expected_downtime_ms, throttle_pct;
	uint64_t dirty_pages_rate;
	uint64_t precopy_bytes, downtime_bytes;
	double mbps;
	uint64_t rtt_us, last_sync_us;
	uint64_t stop_probe_us; /* pausing and resuming the vCPUs once, at setup */
	uint64_t dest_probe_us; /* the destination's cost to apply the CPU state (PONG) */
	uint64_t downtime_us;
	struct mig_downtime_phases phases;
	bool postmigrate, committed;
	pthread_t rp_thread; /* the return path reader */
	bool rp_live;
	int rp_msg;   /* last READY/RUNNING seen, under lock */
	bool rp_done; /* the return path ended (under lock) */
	uint64_t rp_running_ns;
	uint64_t rp_ready_ns, end_sent_ns; /* the destination's load: READY - END */
	bool end_sent;			   /* under lock: READY may come from now on */
	uint64_t drain_deadline_ns;	   /* mig_now_ns() the device drain must end by */
	bool error_is_cause; /* this side gave up first: the destination's EOF is no reason */
	/* The destination's figures: READY and RUNNING carry them (here on its own side). */
	uint64_t stes_reinstalled, held_replayed;
	/* RAM channel workers: a pass is crew_gen; each worker counts itself in crew_done. */
	uint64_t crew_gen;
	unsigned crew_done;
	bool crew_stop;
	int crew_err;

	/* The timeline (source): one record per pass, under lock; NULL until the first. */
	struct mig_pass_record *timeline;
	size_t timeline_n;
	uint64_t tl_vcpu0, tl_vmm0, tl_dev0; /* dirty page counts at the previous record */

	/* Post-copy (postcopy.c). */
	bool postcopy_asked; /* atomic: migrate-start-postcopy, taken at the end of a pass */
	bool precopy_over;   /* under lock (atomic reads): the switchover is decided */
	bool postcopy;	     /* this run switched (source) or was told so (destination) */
	bool incoming_told;  /* destination: incoming_done was called */
	struct mig_pc *pc;

	/* Destination. */
	bool incoming_pending;
	uint64_t refused;	/* connections refused before a stream began (keep-listening) */
	char last_refusal[256]; /* under lock */

	/* TLS: the objects, and what this run uses (mig_tls_resolve). */
	struct mig_tls_obj tls_objs[MIG_TLS_MAX_OBJECTS];
	const struct mig_tls_creds *tls_creds; /* NULL: plain channels */
	const struct mig_tls_authz *tls_authz; /* destination; NULL: any trusted source */
	bool tls_enabled;		       /* this run (or the last) used TLS */
	char tls_hostname[256];		       /* source; "" for no name check */
	char tls_peer[256];		       /* the main channel's peer DN (under lock) */
	uint64_t tls_handshakes, tls_handshake_us_sum, tls_handshake_us_max; /* atomics */
};

/* Sets the status if it is `from` (compare-and-set, QEMU's rule); emits MIGRATION. */
bool mig_set_status(struct migration *mig, enum mig_status from, enum mig_status to);
enum mig_status mig_get_status(struct migration *mig);
void mig_emit(struct migration *mig, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
uint64_t mig_now_ns(void);
/* Adds every section's figures to o (their query hooks). */
void mig_query_sections(struct migration *mig, struct mig_info *o);
uint64_t mig_realtime_ns(void);
/*
 * Unblocks every thread stuck in channel I/O after a failure. Each side keeps the one
 * direction that still carries the destination's reason: the destination its main
 * channel's write side, the source its main channel's read side (the return path).
 */
void mig_unblock_all(struct migration *mig);
/* Everything, both directions (cancel, teardown, a return path that had its time). */
void mig_unblock_hard(struct migration *mig);

int mig_register(struct migration *mig, const struct mig_section_ops *ops, uint16_t id,
		 void *state);
struct mig_section *mig_section_find(struct migration *mig, uint16_t id);

/* The sections this engine has (ram.c, cpu.c). */
int mig_ram_register(struct migration *mig);
int mig_cpu_register(struct migration *mig);

/* Destination: times getting and setting every vCPU's state of the never-run VM. */
uint64_t mig_cpu_apply_probe_us(struct migration *mig);

/* RAM: the channel threads' work (ram.c). */
int mig_ram_send_share(struct mig_ram *r, struct mig_chan *ch, unsigned share, unsigned shares);
uint64_t mig_ram_dirty_pages(struct mig_ram *r);
/* A pass starts: max-bandwidth is measured from here. */
void mig_ram_pace_reset(struct mig_ram *r);
void mig_ram_stats(struct mig_ram *r, struct mig_info *out);
/* The timeline (timeline.c): a pass's record (its dirty pages by writer filled here). */
void mig_timeline_note(struct migration *mig, struct mig_pass_record *r);
void mig_timeline_reset(struct migration *mig);
/* Pages harvests marked so far, by who wrote them: the vCPUs (KVM's log), the VMM. */
void mig_ram_dirty_sources(struct mig_ram *r, uint64_t *vcpus, uint64_t *vmm);
/* The record arrived on ch: a RAM record, or EOS. */
int mig_ram_load_rec(struct mig_ram *r, struct mig_chan *ch, const struct mig_rec *rec, char *err,
		     size_t errlen);

/* Post-copy, the RAM side (ram.c). */
/* Source, at the switch: a DISCARD record for every run of pages still dirty. */
int mig_ram_send_discards(struct mig_ram *r, struct mig_chan *ch);
/* Source: sends pages [pfn, pfn + n) (one bitmap word) as post-copy records, clears them. */
int mig_ram_pc_send(struct mig_ram *r, struct mig_chan *ch, uint64_t pfn, uint64_t n);
/* Source: sends the next dirty word at or after *w; 1 if it sent one, 0 when none is left. */
int mig_ram_pc_send_next(struct mig_ram *r, struct mig_chan *ch, uint64_t *w);
/* Destination, once every pre-copy page landed: the pages still to come (DISCARDed or
 * arrived corrupt), in a bitmap of its own; the RAM section forgets them. */
uint64_t *mig_ram_pc_needed(struct mig_ram *r);
/* Checks a post-copy page record (type, bounds, length); -EBADMSG with a reason. */
int mig_ram_pc_check(struct mig_ram *r, const struct mig_rec *rec, char *err, size_t errlen);
uint64_t mig_ram_pages(const struct mig_ram *r);

/* Post-copy (postcopy.c). */
/* Source, after RUNNING: pages asked for first, the rest in address order, until the
 * destination has every page. */
int mig_pc_source_run(struct migration *mig);
/* Source's return path: a page request (false: a request no destination sends). */
bool mig_pc_source_request(struct migration *mig, uint64_t gpa, uint32_t count);
/* Source, under mig->lock: the guest ran on the destination in post-copy (RUNNING came,
 * or a page request, which only a running vCPU makes). */
bool mig_pc_guest_ran(struct migration *mig);
/* Destination: some page of the guest is still absent (the registration stays). */
bool mig_pc_has_holes(struct migration *mig);
/* Source's return path: the destination has every page. */
void mig_pc_source_dest_done(struct migration *mig);
/* Source, at the switch (vCPUs and devices stopped, last harvest done): POSTCOPY and the
 * DISCARDs, in place of the last dirty pages. */
int mig_pc_source_switch(struct migration *mig);
/* A record on the main channel from any destination thread (faults vs the main thread). */
int mig_pc_send(struct migration *mig, uint16_t type, uint64_t arg, uint32_t count);
/* Destination, every pre-copy page landed: the pages still to come (DISCARDed, corrupt),
 * taken from the RAM section before its checks (a corrupt one is asked for, not fatal). */
int mig_pc_dest_collect(struct migration *mig, char *err, size_t errlen);
/* Destination, loaded: pages to come made absent, faults caught (before the vCPUs run). */
int mig_pc_dest_prepare(struct migration *mig, char *err, size_t errlen);
/* Destination, after COMMIT: faults turn into requests from here. */
int mig_pc_dest_start(struct migration *mig);
/* Destination: no more requests (the main channel is about to close). */
void mig_pc_dest_stop(struct migration *mig);
/* Destination, running: places pages as they come until every one is there. */
int mig_pc_dest_run(struct migration *mig, char *err, size_t errlen);
/* Frees the post-copy state; one whose registration still has holes the guest needs
 * stays, unless the VM goes (destroying). */
void mig_pc_free(struct migration *mig, bool destroying);
void mig_pc_query(struct migration *mig, struct mig_info *o);

/* Source and destination threads (source.c, dest.c). */
void *mig_source_thread(void *arg);
void *mig_dest_thread(void *arg);

/* The switch-over decision: a pure function of measured figures (converge.c). */
struct mig_converge_in {
	uint64_t remaining_bytes;    /* dirty now, would go in stop-copy */
	uint64_t must_precopy_bytes; /* of those, what may not wait for the switchover */
	uint64_t bandwidth;	     /* bytes/s measured over the last pass */
	uint64_t dirty_rate;	     /* bytes/s dirtied during the last pass */
	uint64_t overhead_us;	     /* switchover's fixed costs, measured */
	uint64_t pass_sync_us;	     /* a pass's own fixed cost: its harvest, measured */
	uint64_t limit_us;	     /* downtime-limit */
	uint64_t pass;		     /* passes completed */
	uint64_t max_passes;	     /* 0: no cap */
	bool auto_converge;
	uint64_t throttle_pct, max_throttle_pct;
};
enum mig_decision {
	MIG_DECIDE_NEXT_PASS = 1,
	MIG_DECIDE_SWITCH,
	MIG_DECIDE_THROTTLE, /* another pass, with the vCPUs throttled harder */
};
struct mig_converge_out {
	enum mig_decision decision;
	uint64_t expected_us; /* what stopping now would cost */
	const char *why;
};
void mig_converge_decide(const struct mig_converge_in *in, struct mig_converge_out *out);

#endif
