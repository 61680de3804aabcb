/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The guest-visible virtual SMMUv3: two 64 KiB MMIO pages with the registers, command queue,
 * event queue, stream table and context-descriptor decoding, GERROR and MSIs of an SMMUv3
 * that advertises stage 1 only.
 *
 * The emulation knows nothing of KVM or the host: it reaches guest memory and interrupts
 * through a platform interface (struct vsmmu_platform) and the host IOMMU through a bridge
 * interface (struct vsmmu_bridge_ops, implemented over iommufd by nested.h). Without a
 * bridge it is a complete SMMU front end whose streams have no devices behind them.
 *
 * Locking: every public entry point takes the instance's lock, so MMIO from vCPU threads and
 * event injection from the bridge's poller may run concurrently. Platform and bridge
 * callbacks are made with the lock held and must not call back into vsmmu_*().
 */
#ifndef VMIG_VMM_SMMUV3_VSMMU_H
#define VMIG_VMM_SMMUV3_VSMMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vsmmu;

/*
 * The VMM side. All callbacks return 0 or a negative errno. ram_read/ram_write fail (-EFAULT)
 * for any range not entirely in guest RAM; the vSMMU turns that into the architectural
 * abort (F_STE_FETCH, CMDQ_ERR_ABT, GERROR.EVENTQ_ABT...). ram_write is the VMM's dirty-marking
 * write helper. msi_send delivers a 32-bit MSI write (address, data) that is not RAM, and
 * returns -ENOENT when nothing decodes that address.
 */
struct vsmmu_platform {
	int (*ram_read)(void *opaque, uint64_t gpa, void *buf, size_t len);
	int (*ram_write)(void *opaque, uint64_t gpa, const void *buf, size_t len);
	int (*msi_send)(void *opaque, uint64_t addr, uint32_t data);
	/* Optional: CMD_SYNC CS=SEV and other "send event" points (wakes WFE waiters). */
	void (*sev)(void *opaque);
	void *opaque;
};

/* A guest STE as decoded for installation (the words the host accepts, nothing else). */
enum vsmmu_ste_kind {
	VSMMU_STE_ABORT,  /* V=0, Config abort, or a configuration error: no traffic */
	VSMMU_STE_BYPASS, /* Config bypass, or SMMUEN=0 with GBPA.ABORT=0 */
	VSMMU_STE_S1,	  /* stage-1 translation: the guest's CD table and page tables */
};

struct vsmmu_ste {
	enum vsmmu_ste_kind kind;
	/* The vSTE words 0-1 to give the host (iommu_hwpt_arm_smmuv3.ste), guest fields only. */
	uint64_t words[2];
	/* Decoded for the VMM's convenience. */
	uint64_t cd_table_gpa;
	unsigned s1fmt, s1cdmax, s1dss;
	bool s1stalld;
};

enum vsmmu_resume {
	VSMMU_RESUME_RETRY, /* re-translate and continue (page response SUCCESS) */
	VSMMU_RESUME_FAIL,  /* abort/terminate the transaction (page response INVALID) */
};

/*
 * The host side of a nested vSMMU. Every op is optional; NULL means "nothing to do". The
 * vSMMU calls them with the virtual SID the guest uses. Errors are reported as negative
 * errno values; the vSMMU turns install failures into C_BAD_STE for the guest.
 */
struct vsmmu_bridge_ops {
	/* Whether a device sits behind vsid (only such streams are installed/validated). */
	bool (*sid_attached)(void *opaque, uint32_t vsid);
	/* First attached vSID >= from into *vsid; -ENOENT when none (CFGI_ALL, post_load). */
	int (*sid_next)(void *opaque, uint32_t from, uint32_t *vsid);
	/* Makes ste the nested configuration of vsid's device. */
	int (*ste_install)(void *opaque, uint32_t vsid, const struct vsmmu_ste *ste);
	/* Forwards n guest commands (TLBI_NH_*, TLBI_NSNH_ALL, CFGI_CD*, ATC_INV) in order. */
	int (*invalidate)(void *opaque, const uint64_t (*cmds)[2], size_t n);
	/* Answers a stalled transaction the bridge reported with cookie. */
	int (*page_response)(void *opaque, uint32_t vsid, uint32_t cookie, enum vsmmu_resume resp);
};

/* Identification the VMM may override before creation (defaults: vsmmu_config_default). */
struct vsmmu_config {
	unsigned sid_bits;  /* IDR1.SIDSIZE, <= 32 */
	unsigned ssid_bits; /* IDR1.SSIDSIZE, <= 20 */
	unsigned cmdq_bits; /* IDR1.CMDQS, <= 19 */
	unsigned evtq_bits; /* IDR1.EVENTQS, <= 19 */
	unsigned oas_bits;  /* IDR5.OAS: 32, 36, 40, 42, 44, 48 */
	unsigned stall_max; /* IDR5.STALL_MAX: stalls held at once, 1..VSMMU_STALL_MAX */
	unsigned httu;	    /* IDR0.HTTU: 0 none, 1 access flag, 2 access flag + dirty */
	bool stall;	    /* IDR0.STALL_MODEL 0 (stall and terminate) rather than 1 */
};

#define VSMMU_STALL_MAX 256u

void vsmmu_config_default(struct vsmmu_config *cfg);

/* cfg may be NULL (defaults). bridge may be NULL (no devices). Returns NULL on bad input. */
struct vsmmu *vsmmu_create(const struct vsmmu_config *cfg, const struct vsmmu_platform *plat,
			   const struct vsmmu_bridge_ops *bridge, void *bridge_opaque);
void vsmmu_destroy(struct vsmmu *vs);
/* Sets or replaces the bridge (the VFIO layer attaches devices after creation). */
void vsmmu_set_bridge(struct vsmmu *vs, const struct vsmmu_bridge_ops *bridge, void *opaque);
/*
 * Re-installs vsid's configuration through the bridge (no guest events): for the VFIO
 * layer right after it puts a device behind vsid.
 */
void vsmmu_sid_refresh(struct vsmmu *vs, uint32_t vsid);
/* Architectural reset: registers to their reset values, queues disabled, stalls dropped. */
void vsmmu_reset(struct vsmmu *vs);

/*
 * MMIO at offset from the vSMMU base (0 .. 0x1FFFF). size 4 or 8. Accesses the architecture
 * does not define (bad size or alignment, reserved offsets) read as zero and ignore writes.
 * A write to CMDQ_PROD processes every command up to PROD before it returns.
 */
void vsmmu_mmio_read(struct vsmmu *vs, uint64_t offset, unsigned size, uint64_t *val);
void vsmmu_mmio_write(struct vsmmu *vs, uint64_t offset, unsigned size, uint64_t val);

/* The same, with the instance as an untyped pointer: fits struct bus_device_ops directly. */
void vsmmu_bus_read(void *vs, uint64_t offset, unsigned size, uint64_t *val);
void vsmmu_bus_write(void *vs, uint64_t offset, unsigned size, uint64_t val);

/* Start-of-day attributes for the VFIO layer. */
struct vsmmu_attrs {
	unsigned input_bits;  /* stage-1 input (IOVA) size */
	unsigned output_bits; /* stage-1 output (IPA) size: IDR5.OAS */
	unsigned ssid_bits;
	bool nesting;	 /* stage 1 is the guest's; a host stage 2 sits under it */
	bool stall;	 /* stall faults supported */
	bool httu_dirty; /* the guest may use CD.HA/HD */
};
void vsmmu_get_attrs(struct vsmmu *vs, struct vsmmu_attrs *attrs);
/* Whether the guest currently translates vsid's traffic (SMMUEN and an S1 STE). */
bool vsmmu_sid_translating(struct vsmmu *vs, uint32_t vsid);
/*
 * Decodes the guest STE of vsid (SMMUEN and GBPA aside). 0, or the event id (> 0) the
 * fetch or decode would record (C_BAD_STREAMID, F_STE_FETCH, C_BAD_STE; *ste is then an
 * abort).
 */
int vsmmu_ste_lookup(struct vsmmu *vs, uint32_t vsid, struct vsmmu_ste *ste);

/* Decoded context descriptor (the guest's stage-1 configuration for one SSID). */
struct vsmmu_cd {
	bool valid;
	uint16_t asid;
	uint64_t ttb0;
	unsigned t0sz, tg0, ips;
	bool epd0, aa64, ha, hd, stall, record;
	uint64_t mair;
};
/*
 * Walks vsid's STE and CD table to the CD of ssid (ssv=false: the non-PASID CD per
 * S1DSS). Returns 0, or the architectural event id (> 0) the walk would record, -ENOENT
 * when no CD applies (abort or bypass STE, S1DSS bypass), -EINVAL for bad arguments.
 */
int vsmmu_cd_lookup(struct vsmmu *vs, uint32_t vsid, bool ssv, uint32_t ssid, struct vsmmu_cd *cd);

/* One writable stage-1 leaf (or, table = true, a table page the SMMU may update). */
struct vsmmu_s1_leaf {
	uint64_t iova, gpa, size;
	uint16_t asid;
	uint32_t ssid;
	bool table;
};
/* A nonzero return stops the walk and becomes its result. */
typedef int (*vsmmu_s1_fn)(void *opaque, const struct vsmmu_s1_leaf *leaf);

/*
 * Every writable stage-1 mapping vsid's traffic could use (s1walk.c, reading guest RAM):
 * the non-PASID CD and every valid CD of SSIDs 1 .. 2^S1CDMax - 1 (a DMA log carries no
 * PASID), and the table pages of CDs with HA/HD (the SMMU writes those itself). Call with
 * the vSMMU lock held (from a pre-forward callback or vsmmu_with_lock). A 2-level CD table
 * is walked under its valid level-1 descriptors only. Returns 0; VSMMU_S1_IDENTITY when
 * (some of) the stream's traffic bypasses stage 1 (IOVA = GPA: the caller adds all of RAM);
 * -E2BIG past VSMMU_S1_MAX_TABLES table pages, 65536 CDs, or a linear CD table above
 * 2^VSMMU_S1_MAX_SSIDS_LOG2 (a guest cannot make a look unbounded); or fn's nonzero result.
 */
#define VSMMU_S1_MAX_SSIDS_LOG2 11
#define VSMMU_S1_MAX_TABLES	65536u
#define VSMMU_S1_IDENTITY	1
int vsmmu_sid_s1_writable_locked(struct vsmmu *vs, uint32_t vsid, vsmmu_s1_fn fn, void *opaque);

/*
 * Migration with device DMA logging: fn runs, with the vSMMU lock held, before any guest
 * invalidation, CD change or STE is forwarded to the host (the log must be read while the
 * old translations are still the device's), with what is about to go: n commands, or
 * (cmds NULL) a new STE for ste_sid. NULL removes it.
 */
typedef void (*vsmmu_pre_forward_fn)(void *opaque, const uint64_t (*cmds)[2], size_t n,
				     uint32_t ste_sid);
void vsmmu_set_pre_forward(struct vsmmu *vs, vsmmu_pre_forward_fn fn, void *opaque);
/* The same with the lock held (a tracker that starts and hooks in one step). */
void vsmmu_set_pre_forward_locked(struct vsmmu *vs, vsmmu_pre_forward_fn fn, void *opaque);
/*
 * Forwards a TLBI_NH_ALL of the VMM's own to the host (lock held): no translation the guest
 * removed earlier stays usable from the host's TLB (a dirty tracker starting). Invisible to
 * the guest.
 */
void vsmmu_host_tlbi_all_locked(struct vsmmu *vs);
/* Runs fn with the vSMMU lock held (the lock order for callers of the _locked calls). */
void vsmmu_with_lock(struct vsmmu *vs, void (*fn)(void *opaque), void *opaque);

/* Event injection by the bridge ------------------------------------------------------------ */

/* Writes one 32-byte event record (SID already virtual). false if it was discarded/lost. */
bool vsmmu_event_inject(struct vsmmu *vs, const uint64_t evt[4]);
/* The host lost events for this guest: signal an event-queue overflow. */
void vsmmu_event_lost(struct vsmmu *vs);

/* A stalled host fault the guest must answer with RESUME/STALL_TERM. */
struct vsmmu_stall {
	uint32_t vsid;
	bool ssv;
	uint32_t ssid;
	uint64_t addr;
	bool read, write, exec, priv;
	uint8_t event_id; /* F_TRANSLATION if unknown */
	uint32_t cookie;  /* the bridge's id for the page response */
};
/*
 * Records the stall (allocating a STAG) and writes its Stall=1 event. Returns 0, or -EBUSY
 * when STALL_MAX stalls are held or the event could not be written: the caller then fails
 * the transaction itself.
 */
int vsmmu_stall_inject(struct vsmmu *vs, const struct vsmmu_stall *stall);
/* How many stalls are waiting for the guest. */
unsigned vsmmu_stall_count(struct vsmmu *vs);

/* Migration ---------------------------------------------------------------------------- */

#define VSMMU_STATE_VERSION 1

/*
 * Serialises the whole guest-visible state (registers, queue indexes, error state, stall
 * bookkeeping) into buf. Returns the size written, or -ENOSPC with buf NULL/too small
 * (vsmmu_state_size() gives the size).
 */
size_t vsmmu_state_size(struct vsmmu *vs);
long vsmmu_state_save(struct vsmmu *vs, void *buf, size_t len);
/* Validates everything, then replaces the state. -EINVAL/-EPROTO: nothing changed. */
int vsmmu_state_load(struct vsmmu *vs, const void *buf, size_t len);
/* An attached stream, and whether the host took the guest's configuration of it. */
struct vsmmu_stream {
	uint32_t vsid;
	bool in_force; /* false: the host refused it, the device's DMA aborts */
};
/* The attached streams (bridge order, at most max filled); returns how many there are. */
unsigned vsmmu_streams(struct vsmmu *vs, struct vsmmu_stream *out, unsigned max);
/* vsmmu_state_load's checks without the load; *stalls: how many stalls the state holds. */
int vsmmu_state_check(struct vsmmu *vs, const void *buf, size_t len, unsigned *stalls);
/*
 * After load (and the guest RAM): re-installs every attached stream's configuration and
 * invalidates host caches through the bridge. Returns how many streams were installed, or
 * the host's -ENOMEM/-ENOSPC when it could not install one: the source's guest had a
 * working configuration, so the migration must fail rather than leave its device aborted.
 * (A configuration the host refuses as bad stays aborted, as it was on the source.)
 */
int vsmmu_post_load(struct vsmmu *vs);

/* Counters, for tests, benchmarks and the control socket. */
struct vsmmu_stats {
	uint64_t cmds;	/* commands consumed */
	uint64_t kicks; /* CMDQ_PROD writes that processed work */
	uint64_t syncs;
	uint64_t cmd_errors;
	uint64_t events;      /* records written */
	uint64_t events_lost; /* discarded (disabled, overflow, abort) */
	uint64_t msis;
	uint64_t fwd_cmds; /* commands forwarded to the host */
	uint64_t fwd_batches;
	uint64_t fwd_errors;
	uint64_t installs;
	uint64_t install_errors;
	uint64_t stalls; /* stalled faults delivered to the guest */
};
void vsmmu_get_stats(struct vsmmu *vs, struct vsmmu_stats *st);

#endif
