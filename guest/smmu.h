/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Ring-3 driver of the guest-visible SMMUv3 (VMIG_VSMMU_BASE): probe, stream table (linear
 * or 2-level), 2-level CD tables with one stage-1 address space per SubstreamID, AArch64
 * 4K stage-1 page tables in guest RAM (HA/HD when HTTU allows), a command queue completed
 * by CMD_SYNC writing an MSI word the driver polls, an event queue with its MSI, GERROR
 * handling and stall faults answered by RESUME.
 *
 * Everything the SMMU reads lives in guest RAM (the driver arena in the image's bss) and is
 * addressed by its guest-physical address, which equals its virtual address here. The
 * driver is single-threaded: only the boot vCPU calls it.
 *
 * The field encodings here are deliberately the driver's own, not include/arch/smmuv3.h
 * (which the host SMMU model and the VMM's vSMMU share): the guest plays the part of an
 * independently written OS driver, so a bit position the emulation got wrong shows up as
 * a failing workload instead of being wrong the same way on both sides.
 */
#ifndef GUEST_SMMU_H
#define GUEST_SMMU_H

#include <stdbool.h>
#include <stdint.h>

/* Events (smmuv3 reference §5). */
#define EVT_F_UUT	      0x01
#define EVT_C_BAD_STREAMID    0x02
#define EVT_F_STE_FETCH	      0x03
#define EVT_C_BAD_STE	      0x04
#define EVT_F_STREAM_DISABLED 0x06
#define EVT_C_BAD_SUBSTREAMID 0x08
#define EVT_F_CD_FETCH	      0x09
#define EVT_C_BAD_CD	      0x0A
#define EVT_F_WALK_EABT	      0x0B
#define EVT_F_TRANSLATION     0x10
#define EVT_F_ADDR_SIZE	      0x11
#define EVT_F_ACCESS	      0x12
#define EVT_F_PERMISSION      0x13
#define EVT_ID_MAX	      0x40

/* Command opcodes (smmuv3 reference §4) and RESUME responses. */
#define CMD_CFGI_STE	   0x03
#define CMD_CFGI_STE_RANGE 0x04
#define CMD_CFGI_CD	   0x05
#define CMD_CFGI_CD_ALL	   0x06
#define CMD_TLBI_NH_ASID   0x11
#define CMD_TLBI_NH_VA	   0x12
#define CMD_TLBI_S2_IPA	   0x2A
#define CMD_TLBI_NSNH_ALL  0x30
#define CMD_RESUME	   0x44
#define CMD_SYNC	   0x46
#define CMD_SSEC	   (1ull << 10)
#define CMD_SID(sid)	   ((uint64_t)(sid) << 32)
#define CMD_ASID(asid)	   ((uint64_t)(asid) << 48)
#define CMD_RESP(r)	   ((uint64_t)(r) << 12) /* RESUME RESP, CMD_SYNC CS */
#define RESUME_RETRY	   1ull
#define RESUME_ABORT	   2ull

/* Registers the hostile tests touch directly. */
#define SMMU_R_GERROR	 0x60
#define SMMU_R_CMDQ_PROD 0x98
#define SMMU_R_CMDQ_CONS 0x9C

/* GERROR bits. */
#define GERROR_CMDQ_ERR	      (1u << 0)
#define GERROR_EVTQ_ABT	      (1u << 2)
#define GERROR_MSI_CMDQ_ABT   (1u << 4)
#define GERROR_MSI_EVTQ_ABT   (1u << 5)
#define GERROR_MSI_GERROR_ABT (1u << 7)
#define GERROR_SFM_ERR	      (1u << 8)

/* CMDQ_CONS.ERR codes. */
#define CERROR_NONE 0
#define CERROR_ILL  1
#define CERROR_ABT  2

/* Mapping permissions. */
#define SMMU_PROT_READ	1u
#define SMMU_PROT_WRITE 2u
#define SMMU_PROT_MSI	4u /* device memory (the MSI doorbell page) */
#define SMMU_PROT_TRACK 8u /* start with AF=0 and writable-clean: the SMMU sets AF, dirty */

enum smmu_strtab_fmt {
	SMMU_STRTAB_LINEAR,
	SMMU_STRTAB_2LVL,
};

/* A decoded event record. */
struct smmu_event {
	uint8_t id;
	bool ssv, stall, write, s2;
	uint32_t sid, ssid;
	uint16_t stag;
	uint8_t class_;
	uint64_t iova, ipa;
};

/*
 * Called for every stalled fault: maps the page and returns true (RESUME retry) or
 * returns false (RESUME abort).
 */
typedef bool (*smmu_stall_fn)(const struct smmu_event *ev);

struct smmu_stats {
	uint64_t events, stalls, retries, aborts, overflows, gerrors;
	uint64_t cmds, syncs, batches, sync_timeouts;
	uint64_t tlbi_cmds, cfgi_cmds;
	uint64_t by_id[EVT_ID_MAX];
	uint32_t gerror_seen;	/* OR of every GERROR bit that became active */
	uint32_t last_cerror;	/* CMDQ_CONS.ERR of the last command error */
	struct smmu_event last; /* the last event */
};

/* A stage-1 address space: one context descriptor and its page tables. */
struct smmu_as {
	uint32_t ssid;
	uint16_t asid;
	bool stall;   /* CD.S: translation faults stall */
	bool record;  /* CD.R: faults are recorded */
	uint64_t ttb; /* level-1 table (39-bit IOVAs, start level 1) */
	uint64_t mapped_pages;
};

struct smmu {
	bool present;
	uint32_t idr[6];
	bool ril, httu_dirty, stall_ok, msi_ok, two_level_st;
	unsigned oas_enc, sid_bits, ssid_bits;
	enum smmu_strtab_fmt st_fmt;
	uint32_t cmdq_prod, evtq_cons; /* with their wrap bits */
	uint32_t evtq_cons_published;  /* the last value written to EVTQ_CONS */
	unsigned cmdq_log2, evtq_log2;
	uint32_t sync_seq;
	uint32_t batch; /* commands since the last CMDQ_PROD write */
	uint64_t evtq_irqs_seen, gerror_irqs_seen;
	uint32_t gerrorn;
	smmu_stall_fn on_stall;
	bool hold_events; /* leave events in the queue (overflow test) */
	bool verbose;	  /* print EVENT lines for events that are not stalls */
	bool skip_tlbi;	  /* unmap without TLBI (a negative control for remap) */
	struct smmu_stats st;
};

extern struct smmu smmu;

/* Reads the IDRs; false (after printing why) when no usable vSMMUv3 answers. */
bool smmu_probe(void);
/* Tables, queues, interrupts, SMMUEN; the device's STE stays abort until smmu_attach. */
bool smmu_init(enum smmu_strtab_fmt fmt);
/* The device's STE: stage-1 translate through the CD table (S1DSS: untagged -> SSID 0). */
void smmu_attach(uint32_t sid);
/* The STE's untagged DMA (S1DSS): bypass, or through SSID 0 (CFGI_STE and sync after). */
void smmu_ste_untagged(uint32_t sid, bool bypass);
/* sid's STE in bypass: the SMMU (still on, for MSIs and other streams) does not translate. */
void smmu_attach_bypass(uint32_t sid);
/* Points sid's STE at an arbitrary raw STE (hostile tests); CFGI_STE + sync. */
void smmu_ste_write_raw(uint32_t sid, const uint64_t ste[8]);
void smmu_ste_read(uint32_t sid, uint64_t ste[8]);

/* Creates the CD of as->ssid with a fresh empty page table; CFGI_CD + sync. */
void smmu_as_init(struct smmu_as *as, uint32_t sid, uint32_t ssid, uint16_t asid, bool stall);
/* Rewrites a CD word by word (hostile tests); CFGI_CD + sync. */
void smmu_cd_write_raw(uint32_t sid, uint32_t ssid, const uint64_t cd[8]);
void smmu_cd_read(uint32_t ssid, uint64_t cd[8]);

/* Maps [iova, iova+size) to [pa, ...) page by page; false if out of page-table pages. */
bool smmu_map(struct smmu_as *as, uint64_t iova, uint64_t pa, uint64_t size, unsigned prot);
/* Unmaps and queues the TLB invalidation (range when RIL); the caller syncs. */
void smmu_unmap(struct smmu_as *as, uint64_t iova, uint64_t size);
/* The leaf entry of iova (0 when unmapped). */
uint64_t smmu_pte(const struct smmu_as *as, uint64_t iova);
/* Tracked pages of [iova, +size) back to not accessed, writable-clean; TLBI (sync later). */
void smmu_pte_clean(struct smmu_as *as, uint64_t iova, uint64_t size);
/* Whether a leaf was written by the device (HD cleared AP[2]) / accessed (AF set). */
bool smmu_pte_dirty(uint64_t pte);
bool smmu_pte_young(uint64_t pte);

/* Commands: queued; smmu_sync() appends CMD_SYNC, writes CMDQ_PROD once, waits. */
void smmu_cmd(uint64_t w0, uint64_t w1);
void smmu_tlbi_range(const struct smmu_as *as, uint64_t iova, uint64_t size);
void smmu_cfgi_ste(uint32_t sid);
void smmu_cfgi_cd(uint32_t sid, uint32_t ssid);
/* true when the sync completed; false on timeout or a command error (recovered). */
bool smmu_sync(void);

/* Handles every pending event (stalls through on_stall) and GERRORs; returns how many. */
unsigned smmu_poll(void);
/* Active GERROR bits (GERROR ^ GERRORN), acknowledging them; recovers the CMDQ. */
uint32_t smmu_gerror_handle(void);

/* Event-queue geometry for the overflow test: re-creates the queue with 2^log2 entries. */
void smmu_evtq_resize(unsigned log2);

/* Hostile tests: queues and stream table at another base (0 restores the driver's own). */
void smmu_cmdq_rebase(uint64_t base);
void smmu_evtq_rebase(uint64_t base);
void smmu_strtab_rebase(uint64_t base);

/* Raw register access for the hostile tests. */
uint32_t smmu_read32(uint64_t off);
void smmu_write32(uint64_t off, uint32_t v);
void smmu_write64(uint64_t off, uint64_t v);

#endif
