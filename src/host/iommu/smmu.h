/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The modelled physical SMMUv3, as the host driver (src/host/iommufd.c, tests) sees it.
 *
 * The host driver is internal to the model, so there is no MMIO register file: it hands
 * the stream table base/config over with smmu_set_strtab(), issues commands as 16-byte
 * records with smmu_cmd_exec() (the command queue's data structure, executed in order,
 * CMD_SYNC semantics = wait for in-flight DMA), and receives events through a handler
 * (the event-queue interrupt) or polls the internal event queue.
 *
 * Devices use smmu_dma.h. Everything in memory (stream table, CDs, page tables) is read
 * from host physical memory (hostmem.h) exactly as the architecture lays it out.
 */
#ifndef VMIG_HOST_IOMMU_SMMU_H
#define VMIG_HOST_IOMMU_SMMU_H

#include <stdbool.h>
#include <stdint.h>

#include "host/iommu/hostmem.h"
#include "host/iommu/smmu_dma.h"
#include "arch/smmuv3.h"
#include "common/util.h"

struct smmu_params {
	unsigned sid_bits;    /* IDR1.SIDSIZE (default 16) */
	unsigned ssid_bits;   /* IDR1.SSIDSIZE (default 16) */
	unsigned oas;	      /* IDR5.OAS encoding (default 5: 48 bits) */
	unsigned httu;	      /* IDR0.HTTU: 0 none, 1 AF, 2 AF+dirty (default 2) */
	bool no_stall;	      /* IDR0.STALL_MODEL = 1 (default: stall supported) */
	bool two_level_st;    /* IDR0.ST_LEVEL = 1 (default true) */
	unsigned stall_max;   /* IDR5.STALL_MAX: outstanding stalls (default 64) */
	unsigned tlb_entries; /* IOTLB size, power of two (default 16384) */
	unsigned evtq_log2;   /* internal event queue size (default 10) */
};

void smmu_params_default(struct smmu_params *p);
struct smmu *smmu_create(struct hostmem *hm, const struct smmu_params *p);
void smmu_destroy(struct smmu *smmu);
struct hostmem *smmu_hostmem(struct smmu *smmu);

/* IDR0..IDR5, then IIDR, AIDR (8 words), as iommufd hw_info reports them. */
void smmu_read_idr(struct smmu *smmu, uint32_t regs[8]);

/* STRTAB_BASE (ADDR[51:6]) and STRTAB_BASE_CFG. -EINVAL if the config is unsupported. */
int smmu_set_strtab(struct smmu *smmu, uint64_t base, uint32_t cfg);
/* CR0.SMMUEN; with SMMUEN=0 transactions follow GBPA (abort or bypass). */
void smmu_set_enable(struct smmu *smmu, bool en);
void smmu_set_gbpa_abort(struct smmu *smmu, bool abort);

/* ---- commands ---- */
struct smmu_cmd {
	uint64_t dw[2];
};

/*
 * Executes n commands in order. Returns how many were consumed; when that is less than n,
 * *cerror (may be NULL) says why (CMDQ_ERR_ILL) and cmds[ret] is the failing one.
 */
unsigned smmu_cmd_exec(struct smmu *smmu, const struct smmu_cmd *cmds, unsigned n,
		       unsigned *cerror);
/* One command; 0 or -EINVAL (illegal). */
int smmu_cmd_one(struct smmu *smmu, struct smmu_cmd cmd);

/* Command builders (fields per the reference, section 4). */
struct smmu_cmd smmu_cmd_cfgi_ste(uint32_t sid);
struct smmu_cmd smmu_cmd_cfgi_ste_range(uint32_t sid, unsigned range);
struct smmu_cmd smmu_cmd_cfgi_all(void);
struct smmu_cmd smmu_cmd_cfgi_cd(uint32_t sid, uint32_t ssid);
struct smmu_cmd smmu_cmd_cfgi_cd_all(uint32_t sid);
struct smmu_cmd smmu_cmd_tlbi_nh_all(uint16_t vmid);
struct smmu_cmd smmu_cmd_tlbi_nh_asid(uint16_t vmid, uint16_t asid);
/* TG=0 single address when num_pages == 0, else a range of 4K granules (RIL encoding). */
struct smmu_cmd smmu_cmd_tlbi_nh_va(uint16_t vmid, uint16_t asid, uint64_t va, uint64_t num_pages);
struct smmu_cmd smmu_cmd_tlbi_nh_vaa(uint16_t vmid, uint64_t va, uint64_t num_pages);
struct smmu_cmd smmu_cmd_tlbi_s2_ipa(uint16_t vmid, uint64_t ipa, uint64_t num_pages);
struct smmu_cmd smmu_cmd_tlbi_s12_vmall(uint16_t vmid);
struct smmu_cmd smmu_cmd_tlbi_nsnh_all(void);
struct smmu_cmd smmu_cmd_resume(uint32_t sid, uint16_t stag, unsigned resp);
struct smmu_cmd smmu_cmd_stall_term(uint32_t sid);
struct smmu_cmd smmu_cmd_sync(void);

/* ---- events ---- */
struct smmu_event {
	uint64_t dw[4];
};
typedef void (*smmu_event_fn)(void *opaque, const struct smmu_event *ev);

/*
 * With a handler, events are delivered to it synchronously from the faulting thread (the
 * model's event-queue interrupt); it must not issue DMA itself. Without one they go to an
 * internal bounded queue read with smmu_event_pop (overflow drops and sets a flag).
 */
void smmu_set_event_handler(struct smmu *smmu, smmu_event_fn fn, void *opaque);
bool smmu_event_pop(struct smmu *smmu, struct smmu_event *ev);
/* Returns and clears the overflow flag of the internal queue. */
bool smmu_event_overflow_take(struct smmu *smmu);

static inline uint8_t smmu_event_id(const struct smmu_event *ev)
{
	return (uint8_t)FGET(ev->dw[0], EVT0_ID);
}

/* ---- translation without data movement (tests, benchmarks, tools) ---- */
struct smmu_xlate {
	enum smmu_dma_status status;
	uint64_t pa;	  /* output physical address */
	uint8_t event_id; /* on failure */
	uint16_t stag;	  /* when STALLED */
};

/*
 * Translates iova for a read or write as the DMA path does (events, HTTU updates, IOTLB
 * fill); a stalling fault is *not* held: it is reported as STALLED with its STAG still
 * outstanding (answer it with RESUME/STALL_TERM).
 */
int smmu_translate(struct smmu *smmu, const struct smmu_dma_txn *txn, uint64_t iova, bool write,
		   struct smmu_xlate *out);

/* What a DMA of txn at iova would translate to, found without any effect (smmu_probe). */
struct smmu_probe_out {
	enum smmu_dma_status status; /* OK, FAULT (event_id says which) or ABORTED */
	uint8_t event_id;
	uint64_t ipa; /* the stage-1 output (= iova without stage 1) */
	uint64_t pa;
	bool read, write; /* the permissions of the translation */
};

/*
 * The host's debug view of a translation (as Linux's IOMMU debugfs): the configuration
 * and tables walked as a DMA would walk them, but no event, no stall, no access/dirty
 * update, no TLB fill; the TLB is not consulted (the tables are the truth being asked for).
 */
int smmu_probe(struct smmu *smmu, const struct smmu_dma_txn *txn, uint64_t iova, bool write,
	       struct smmu_probe_out *out);

/* Waits until every DMA transaction in flight at the time of the call has finished. */
void smmu_sync(struct smmu *smmu);

/* Statistics (tests and benchmarks). */
struct smmu_stats {
	uint64_t tlb_misses, cfg_fetches, stalls;
};
void smmu_get_stats(struct smmu *smmu, struct smmu_stats *st);
unsigned smmu_stalls_outstanding(struct smmu *smmu);

#endif
