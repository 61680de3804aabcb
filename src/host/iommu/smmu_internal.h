/* SPDX-License-Identifier: Apache-2.0 */
/* Internals shared by the smmu_*.c files; nothing outside src/host/iommu includes this. */
#ifndef VMIG_HOST_IOMMU_SMMU_INTERNAL_H
#define VMIG_HOST_IOMMU_SMMU_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "host/iommu/smmu.h"

#define SMMU_GRANULE_SHIFT 12
#define SMMU_GRANULE_SIZE  (1ull << SMMU_GRANULE_SHIFT)

/* ---- decoded configuration (STE + CD) ---- */
enum smmu_kind { KIND_ABORT, KIND_BYPASS, KIND_S1, KIND_S2, KIND_NESTED };

/* One translation stage, decoded from a CD (stage 1) or STE (stage 2). */
struct smmu_stage {
	uint64_t ttb;
	uint8_t ia_bits; /* input address size */
	uint8_t oa_bits; /* output address size (IPS / S2PS, capped at OAS) */
	uint8_t start_level;
	bool affd, ha, hd, stall, record;
	uint16_t id; /* ASID (stage 1) or VMID (stage 2) */
};

struct smmu_cfg {
	uint32_t sid, ssid; /* key: ssid only meaningful with ssv */
	bool ssv;
	uint8_t kind;
	struct smmu_stage s1, s2;
};

/* ---- faults ---- */
struct smmu_fault {
	uint8_t id;
	bool s2, stall_ok, record, ttrnw, rnw_read;
	uint8_t cls;
	uint64_t input, ipa;
};

/* ---- IOTLB of combined translations ---- */
#define TLB_PERM_R 1u
#define TLB_PERM_W 2u /* only when a write needs no HTTU update (writable and dirty) */

struct tlb_entry {
	uint32_t seq; /* odd while being written */
	uint8_t perm;
	uint8_t log2sz; /* size of the combined mapping (block/page) */
	uint64_t tag;	/* see tlb_tag(); 0 = invalid */
	uint64_t vpn;	/* input page number */
	uint64_t pa;	/* output page address */
	uint8_t *hva;	/* host pointer of the output page, NULL when not RAM */
	uint64_t ipa;	/* intermediate page address (stage 2 and nested) */
	uint64_t pad;
};

struct smmu_tlb {
	struct tlb_entry *e;
	uint64_t *used; /* one bit per entry that may be valid: invalidations scan only these */
	uint64_t mask;
	uint64_t gen; /* bumped by every invalidation: walks racing one do not fill */
};

static inline uint64_t tlb_tag(uint8_t kind, uint16_t vmid, uint16_t asid)
{
	return (1ull << 63) | ((uint64_t)kind << 32) | ((uint64_t)vmid << 16) | asid;
}

struct tlb_fill {
	uint64_t vpn, pa, ipa;
	uint8_t *hva;
	uint8_t perm, log2sz;
};

/* Invalidation selector: every field with its match flag. */
struct tlb_inval {
	bool by_vmid, by_asid, by_va, by_ipa, s1_only, s2_only;
	uint16_t vmid, asid;
	uint64_t addr, len;
};

int smmu_tlb_init(struct smmu_tlb *t, unsigned entries);
void smmu_tlb_fini(struct smmu_tlb *t);
bool smmu_tlb_lookup(struct smmu_tlb *t, uint64_t tag, uint64_t vpn, unsigned need,
		     struct tlb_fill *out);
void smmu_tlb_insert(struct smmu_tlb *t, uint64_t tag, uint64_t gen, const struct tlb_fill *f);
/* Removes every entry matching any of the n selectors (one pass). */
void smmu_tlb_invalidate(struct smmu_tlb *t, const struct tlb_inval *sel, unsigned n);
static inline uint64_t smmu_tlb_gen(struct smmu_tlb *t)
{
	return __atomic_load_n(&t->gen, __ATOMIC_SEQ_CST);
}

/* ---- configuration cache ---- */
struct cfg_slot {
	uint32_t seq;
	bool valid;
	struct smmu_cfg cfg;
};

struct smmu_cfgc {
	struct cfg_slot *s;
	uint32_t mask;
	uint64_t gen;
};

/* ---- stalls ---- */
enum stall_state { STALL_FREE, STALL_WAITING, STALL_RETRY, STALL_ABORT };
struct stall_slot {
	enum stall_state state;
	bool blocking; /* a caller sleeps on it; else reclaimable once answered */
	uint32_t sid;
	uint16_t stag;
};

struct smmu {
	uint64_t instance; /* unique per smmu_create: keys thread-local caches */
	struct hostmem *hm;
	struct smmu_params p;
	uint32_t idr[8];
	unsigned oa_bits;

	/* stream table registers; changed only by smmu_set_strtab */
	uint64_t strtab_base;
	uint32_t strtab_cfg;
	bool enabled, gbpa_abort;

	struct smmu_tlb tlb;
	struct smmu_cfgc cfgc;

	/* in-flight DMA accounting for CMD_SYNC (two-slot grace period) */
	uint64_t epoch;
	long inflight[2];
	pthread_mutex_t sync_lock;

	/* events */
	pthread_mutex_t evt_lock;
	smmu_event_fn evt_fn;
	void *evt_opaque;
	struct smmu_event *evtq;
	unsigned evt_head, evt_tail;
	bool evt_overflow;

	/* stalls */
	pthread_mutex_t stall_lock;
	pthread_cond_t stall_cond;
	struct stall_slot *stalls;
	uint16_t next_stag;

	uint64_t st_tlb_misses, st_cfg_fetches, st_stalls;
};

/* smmu_cfg.c */
int smmu_cfg_init(struct smmu_cfgc *c, unsigned entries);
void smmu_cfg_fini(struct smmu_cfgc *c);
/*
 * The configuration of a transaction, or NULL with a fault (C_BAD_*, F_*_FETCH, stage-2
 * faults on the CD fetch). The result lives in thread-local storage: valid until this
 * thread's next call.
 */
const struct smmu_cfg *smmu_cfg_get(struct smmu *smmu, const struct smmu_dma_txn *txn,
				    struct smmu_fault *f);
void smmu_cfg_invalidate(struct smmu *smmu, uint32_t sid_lo, uint32_t sid_hi);

/* smmu_walk.c */
struct walk_out {
	uint64_t oa;	/* output address of the input address */
	uint8_t log2sz; /* leaf mapping size */
	bool r, w;	/* w: writable with no HTTU update pending */
};
int smmu_walk_s2(struct smmu *smmu, const struct smmu_stage *s2, uint64_t ipa, bool write,
		 struct walk_out *out, struct smmu_fault *f);
/* This thread's walks change nothing while on (smmu_probe). */
void smmu_walk_set_probe(bool on);
bool smmu_walk_probing(void);
int smmu_walk_s1(struct smmu *smmu, const struct smmu_stage *s1, const struct smmu_stage *s2,
		 uint64_t va, bool write, struct walk_out *out, struct smmu_fault *f);
/* Translates an IPA used to fetch a structure (CD) through stage 2: CLASS=CD on failure. */
int smmu_walk_s2_fetch(struct smmu *smmu, const struct smmu_stage *s2, uint64_t ipa, uint64_t *pa,
		       struct smmu_fault *f);

/* smmu.c */
void smmu_event_record(struct smmu *smmu, const struct smmu_dma_txn *txn,
		       const struct smmu_fault *f, bool stalled, uint16_t stag);
unsigned smmu_inflight_enter(struct smmu *smmu);
void smmu_inflight_exit(struct smmu *smmu, unsigned slot);

/* smmu_dma.c */
int smmu_stall_answer(struct smmu *smmu, uint32_t sid, uint16_t stag, unsigned resp);
int smmu_stall_term_sid(struct smmu *smmu, uint32_t sid);

#endif
