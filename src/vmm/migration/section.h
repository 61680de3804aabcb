/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What a component needs to join a migration (MIGRATION.md, "Sections"): one ops table,
 * registered once; the engine walks every table in registration order (RAM, CPU, then the
 * components in the order they registered: the vSMMU before the devices behind it) and
 * knows none by name. A component's section lives next to the component
 * (src/vmm/smmuv3/vsmmu_mig.c, src/vmm/vfio/vfio_mig.c, ...).
 *
 * Source order of the hooks, for one migration:
 *   log_start (all)  setup (all)  { save_pass (all)  log_sync (all) }*   -- vCPUs run
 *   drain (all)   quiesce (all)                                          -- vCPUs run
 *   vCPUs stop   stop (all)   log_sync (all)   last RAM   save_complete (all)   END
 *   cleanup (all, reverse order; failed = roll back, the guest goes on here)
 * Destination: load_setup, load per record, then after END load_check (all), apply (all),
 * post_load (all); resume (all) on COMMIT, before the vCPUs run; load_cleanup at the end.
 */
#ifndef VMIG_VMM_MIGRATION_SECTION_H
#define VMIG_VMM_MIGRATION_SECTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct migration;
struct mig_chan;
struct mig_info;
struct mig_rec;

/* Section ids on the wire (every enum on the wire keeps 0 invalid). */
enum mig_section_id {
	MIG_SEC_STREAM = 1, /* the engine's own: shape, markers, handshake */
	MIG_SEC_RAM = 2,
	MIG_SEC_CPU = 3,
	MIG_SEC_VSMMU = 4,
	MIG_SEC_DEVICE_DIRTY = 5, /* device-DMA dirty tracking of the device set */
	MIG_SEC_VFIO = 8,	  /* VFIO device i is MIG_SEC_VFIO + i */
	MIG_SEC_VFIO_MAX = 8,
	MIG_SEC__MAX = MIG_SEC_VFIO + MIG_SEC_VFIO_MAX,
};

struct mig_section;

/* Every hook is optional. A hook that fails may say why with mig_set_error() first. */
struct mig_section_ops {
	const char *name;
	/* Source. */
	int (*log_start)(struct mig_section *s); /* before any section's setup */
	int (*setup)(struct mig_section *s);
	int (*log_sync)(struct mig_section *s);
	/* Bytes still to send; *must_precopy: of those, what must go before switchover. */
	uint64_t (*pending)(struct mig_section *s, uint64_t *must_precopy);
	int (*save_pass)(struct mig_section *s, struct mig_chan *main); /* vCPUs running */
	/*
	 * Devices stop taking new work and finish what they have, while the vCPUs run and
	 * answer I/O page faults; by mig_drain_deadline_ns() or -ETIMEDOUT (the engine then
	 * cancels, saying how many faults were outstanding).
	 */
	int (*drain)(struct mig_section *s);
	int (*quiesce)(struct mig_section *s); /* before the vCPUs stop (devices) */
	int (*stop)(struct mig_section *s);    /* vCPUs stopped, before the final log_sync */
	int (*save_complete)(struct mig_section *s, struct mig_chan *main);
	/* Source end: failed says whether to roll back (the guest continues here). */
	void (*cleanup)(struct mig_section *s, bool failed);
	/*
	 * Source, after a migration that did not roll back (completed to a file, or failed
	 * after COMMIT): the operator's cont runs the guest here after all, so the component
	 * runs again; an error refuses the cont.
	 */
	int (*release)(struct mig_section *s);
	/* Both sides: adds this section's figures to query-migrate. */
	void (*query)(struct mig_section *s, struct mig_info *out);
	/* Destination. */
	int (*load_setup)(struct mig_section *s);
	/* One record of this section; reads its payload from ch. -EBADMSG with err set. */
	int (*load)(struct mig_section *s, struct mig_chan *ch, const struct mig_rec *r, char *err,
		    size_t errlen);
	/* After END: is everything there? Then apply, then post_load. */
	int (*load_check)(struct mig_section *s, char *err, size_t errlen);
	int (*apply)(struct mig_section *s, char *err, size_t errlen);
	int (*post_load)(struct mig_section *s, char *err, size_t errlen);
	int (*resume)(struct mig_section *s); /* on COMMIT, before the vCPUs run */
	void (*load_cleanup)(struct mig_section *s);
};

struct mig_section {
	const struct mig_section_ops *ops;
	uint16_t id; /* enum mig_section_id */
	struct migration *mig;
	void *state;
	bool owns_state; /* the engine frees state (its own sections) */
};

/*
 * A component's section: state stays the component's (it must outlive the migration
 * object). -ENOSPC when the table is full, -EEXIST for an id already taken, -EBUSY while
 * a migration runs.
 */
int migration_register_section(struct migration *mig, const struct mig_section_ops *ops,
			       uint16_t id, void *state);

/* The record a section's load hook was given (a view of the engine's header). */
struct mig_rec_view {
	uint16_t type;
	uint32_t len;
	uint64_t arg;
	uint32_t count;
};
void mig_rec_get(const struct mig_rec *r, struct mig_rec_view *v);

/* One record on ch: payload from iov (n may be 0). 0 or -errno. */
int mig_chan_send(struct mig_chan *c, uint16_t section, uint16_t type, uint64_t arg, uint32_t count,
		  const struct iovec *iov, int n);
/* Reads r's payload into buf (r->len bytes) and checks its crc. -EBADMSG on a mismatch. */
int mig_chan_recv_payload(struct mig_chan *c, const struct mig_rec *r, void *buf);
/* The largest payload a record may carry. */
#define MIG_MAX_PAYLOAD (8u << 20)

/* Records the first error of a migration (later ones are usually its consequences). */
void mig_set_error(struct migration *mig, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
bool mig_cancelled(const struct migration *mig);
/* Cancelled, or an error already recorded (the destination gave up, a channel broke). */
bool mig_failing(struct migration *mig);
/* The device drain's deadline, on the clock of mig_now_ns() (CLOCK_MONOTONIC, ns). */
uint64_t mig_drain_deadline_ns(const struct migration *mig);
uint64_t mig_now_ns(void);

/*
 * Source: pages [gpa, gpa + pages * 4 KiB) are dirty (a writer the vCPUs' log does not
 * see: device DMA, the SMMU's own writes). Safe from any thread; outside RAM is ignored.
 */
void mig_dirty_mark(struct migration *mig, uint64_t gpa, uint64_t pages);
/* The same for a bitmap of npages bits, bit i = page gpa / 4 KiB + i. */
void mig_dirty_mark_bitmap(struct migration *mig, uint64_t gpa, const uint64_t *bits,
			   uint64_t npages);

#endif
