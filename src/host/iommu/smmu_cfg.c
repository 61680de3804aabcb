// SPDX-License-Identifier: Apache-2.0
/*
 * Configuration: stream table lookup (linear, 2-level), STE and CD decoding and validation
 * (C_BAD_STREAMID, C_BAD_STE, C_BAD_CD, C_BAD_SUBSTREAMID), CD tables (single, linear,
 * 2-level), nested CD fetch through stage 2, and a cache of decoded configurations that
 * CFGI_* commands invalidate (software must issue them after changing an STE or CD).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/trace.h"
#include "host/iommu/smmu_internal.h"

/* ---- configuration cache: seqlock slots, generation check against invalidations ---- */

int smmu_cfg_init(struct smmu_cfgc *c, unsigned entries)
{
	c->s = calloc(entries, sizeof(*c->s));
	c->mask = entries - 1;
	c->gen = 0;
	return c->s ? 0 : -ENOMEM;
}

void smmu_cfg_fini(struct smmu_cfgc *c)
{
	free(c->s);
	c->s = NULL;
}

static uint32_t cfgc_hash(const struct smmu_cfgc *c, uint32_t sid, uint32_t ssid)
{
	return ((sid * 0x9e3779b1u) ^ (ssid * 0x85ebca77u)) & c->mask;
}

static bool cfgc_lookup(struct smmu_cfgc *c, uint32_t sid, uint32_t ssid, bool ssv,
			struct smmu_cfg *out)
{
	struct cfg_slot *s = &c->s[cfgc_hash(c, sid, ssid)];
	uint32_t seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);

	if (seq & 1)
		return false;
	bool valid = s->valid;
	memcpy(out, &s->cfg, sizeof(*out));
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	if (__atomic_load_n(&s->seq, __ATOMIC_RELAXED) != seq || !valid)
		return false;
	return out->sid == sid && out->ssid == ssid && out->ssv == ssv;
}

static bool cfgc_slot_lock(struct cfg_slot *s)
{
	uint32_t seq = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
	while (true) {
		if (seq & 1) {
			seq = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
			continue;
		}
		if (__atomic_compare_exchange_n(&s->seq, &seq, seq + 1, false, __ATOMIC_SEQ_CST,
						__ATOMIC_RELAXED))
			return true;
	}
}

static void cfgc_slot_unlock(struct cfg_slot *s)
{
	__atomic_fetch_add(&s->seq, 1, __ATOMIC_RELEASE);
}

static void cfgc_insert(struct smmu_cfgc *c, uint64_t gen, const struct smmu_cfg *cfg)
{
	struct cfg_slot *s = &c->s[cfgc_hash(c, cfg->sid, cfg->ssid)];

	cfgc_slot_lock(s);
	if (__atomic_load_n(&c->gen, __ATOMIC_SEQ_CST) == gen) {
		s->cfg = *cfg;
		s->valid = true;
	}
	cfgc_slot_unlock(s);
}

void smmu_cfg_invalidate(struct smmu *smmu, uint32_t sid_lo, uint32_t sid_hi)
{
	struct smmu_cfgc *c = &smmu->cfgc;

	__atomic_fetch_add(&c->gen, 1, __ATOMIC_SEQ_CST);
	for (uint32_t i = 0; i <= c->mask; i++) {
		struct cfg_slot *s = &c->s[i];
		cfgc_slot_lock(s);
		if (s->valid && s->cfg.sid >= sid_lo && s->cfg.sid <= sid_hi)
			s->valid = false;
		cfgc_slot_unlock(s);
	}
	TRACE(smmu_cfgi, "sid=[%#x,%#x]", sid_lo, sid_hi);
}

/* ---- stream table ---- */

static int cfg_fault(struct smmu_fault *f, uint8_t id)
{
	f->id = id;
	f->record = true;
	return -EFAULT;
}

static int ste_locate(struct smmu *smmu, uint32_t sid, uint64_t *pa, struct smmu_fault *f)
{
	unsigned log2size = (unsigned)FGET(smmu->strtab_cfg, STRTAB_CFG_LOG2SIZE);
	uint64_t base = smmu->strtab_base & FMASK(STE0_S1CTXPTR);

	if ((smmu->p.sid_bits < 32 && (sid >> smmu->p.sid_bits)) ||
	    (log2size < 32 && (sid >> log2size)))
		return cfg_fault(f, EVT_C_BAD_STREAMID);
	if (FGET(smmu->strtab_cfg, STRTAB_CFG_FMT) == STRTAB_FMT_LINEAR) {
		*pa = base + (uint64_t)sid * 64;
		return 0;
	}
	unsigned split = (unsigned)FGET(smmu->strtab_cfg, STRTAB_CFG_SPLIT);
	uint64_t l1;
	if (hostmem_read(smmu->hm, base + (uint64_t)(sid >> split) * 8, &l1, 8))
		return cfg_fault(f, EVT_F_STE_FETCH);
	unsigned span = (unsigned)FGET(l1, STRTAB_L1_SPAN);
	uint32_t idx = sid & ((1u << split) - 1);
	if (span == 0 || span > split + 1 || (idx >> (span - 1)))
		return cfg_fault(f, EVT_C_BAD_STREAMID);
	*pa = (l1 & FMASK(STRTAB_L1_L2PTR)) + (uint64_t)idx * 64;
	return 0;
}

static const uint8_t ps_bits[8] = {32, 36, 40, 42, 44, 48, 52, 52};

/* Stage-2 fields of an STE; false when they are invalid (C_BAD_STE). */
static bool ste_decode_s2(struct smmu *smmu, const uint64_t *ste, struct smmu_stage *s2)
{
	uint64_t w2 = ste[2];
	unsigned t0sz = (unsigned)FGET(w2, STE2_S2T0SZ), sl0 = (unsigned)FGET(w2, STE2_S2SL0);
	unsigned ia = 64 - t0sz;

	if (!FGET(smmu->idr[0], IDR0_S2P) || !FGET(w2, STE2_S2AA64) || FGET(w2, STE2_S2TG) ||
	    sl0 == 3 || ia < 24 || ia > 48)
		return false;
	s2->start_level = (uint8_t)(2 - sl0);
	int nbits = (int)ia - (int)(SMMU_GRANULE_SHIFT + 9 * (3 - s2->start_level));
	if (nbits < 1 || nbits > 13)
		return false;
	s2->ia_bits = (uint8_t)ia;
	s2->oa_bits = (uint8_t)MIN(ps_bits[FGET(w2, STE2_S2PS)], smmu->oa_bits);
	s2->ttb = ste[3] & FMASK(STE3_S2TTB);
	if (s2->ttb & ((1ull << MAX(nbits + 3, 12)) - 1))
		return false;
	s2->affd = FGET(w2, STE2_S2AFFD);
	s2->ha = FGET(w2, STE2_S2HA) && smmu->p.httu >= 1;
	s2->hd = FGET(w2, STE2_S2HD) && smmu->p.httu >= 2;
	s2->stall = FGET(w2, STE2_S2S);
	s2->record = FGET(w2, STE2_S2R);
	s2->id = (uint16_t)FGET(w2, STE2_S2VMID);
	if (s2->stall && smmu->p.no_stall)
		return false;
	return true;
}

static bool ste_decode_s1(struct smmu *smmu, const uint64_t *ste)
{
	unsigned fmt = (unsigned)FGET(ste[0], STE0_S1FMT);
	unsigned cdmax = (unsigned)FGET(ste[0], STE0_S1CDMAX);

	if (!FGET(smmu->idr[0], IDR0_S1P) || fmt == 3 || cdmax > smmu->p.ssid_bits)
		return false;
	if (fmt != STE_S1FMT_LINEAR && !FGET(smmu->idr[0], IDR0_CD2L))
		return false;
	return true;
}

static int ste_decode(struct smmu *smmu, const uint64_t *ste, struct smmu_cfg *cfg,
		      struct smmu_fault *f)
{
	unsigned conf = (unsigned)FGET(ste[0], STE0_CONFIG);

	if (!FGET(ste[0], STE0_V))
		return cfg_fault(f, EVT_C_BAD_STE);
	if (!(conf & 4)) {
		cfg->kind = KIND_ABORT;
		return 0;
	}
	cfg->kind = conf == STE_CFG_BYPASS ? KIND_BYPASS
		    : conf == STE_CFG_S1   ? KIND_S1
		    : conf == STE_CFG_S2   ? KIND_S2
					   : KIND_NESTED;
	if ((conf & 2) && !ste_decode_s2(smmu, ste, &cfg->s2))
		return cfg_fault(f, EVT_C_BAD_STE);
	if ((conf & 1) && !ste_decode_s1(smmu, ste))
		return cfg_fault(f, EVT_C_BAD_STE);
	/* Stage-1-only traffic is still tagged with S2VMID (stage 2 is implemented). */
	if (!(conf & 2))
		cfg->s2.id = (uint16_t)FGET(ste[2], STE2_S2VMID);
	return 0;
}

/* ---- context descriptors ---- */

static const uint8_t ips_bits[8] = {32, 36, 40, 42, 44, 48, 52, 52};

static bool cd_decode(struct smmu *smmu, const uint64_t *cd, bool s1stalld, struct smmu_stage *s1)
{
	uint64_t w0 = cd[0];
	unsigned t0sz = (unsigned)FGET(w0, CD0_T0SZ);

	if (!FGET(w0, CD0_V) || !FGET(w0, CD0_AA64) || t0sz < 16 || t0sz > 39 ||
	    FGET(w0, CD0_TG0) != 0)
		return false;
	if (FGET(w0, CD0_S) && (smmu->p.no_stall || s1stalld))
		return false;
	s1->ia_bits = FGET(w0, CD0_EPD0) ? 0 : (uint8_t)(64 - t0sz);
	s1->start_level = (uint8_t)(4 - ((64 - t0sz) - 4) / 9);
	s1->oa_bits = (uint8_t)MIN(ips_bits[FGET(w0, CD0_IPS)], smmu->oa_bits);
	s1->ttb = cd[1] & FMASK(CD1_TTB0);
	s1->affd = FGET(w0, CD0_AFFD);
	s1->ha = FGET(w0, CD0_HA) && smmu->p.httu >= 1;
	s1->hd = FGET(w0, CD0_HD) && smmu->p.httu >= 2;
	s1->stall = FGET(w0, CD0_S);
	s1->record = FGET(w0, CD0_R);
	s1->id = (uint16_t)FGET(w0, CD0_ASID);
	return true;
}

/* Reads 'len' bytes of a CD structure at addr (an IPA when nested). */
static int cd_fetch(struct smmu *smmu, const struct smmu_cfg *cfg, uint64_t addr, void *buf,
		    size_t len, struct smmu_fault *f)
{
	uint64_t pa = addr;

	if (cfg->kind == KIND_NESTED && smmu_walk_s2_fetch(smmu, &cfg->s2, addr, &pa, f))
		return -EFAULT;
	if (hostmem_read(smmu->hm, pa, buf, len))
		return cfg_fault(f, EVT_F_CD_FETCH);
	return 0;
}

/* Address of the CD for ssid, per S1Fmt/S1CDMax. */
static int cd_locate(struct smmu *smmu, const struct smmu_cfg *cfg, const uint64_t *ste,
		     uint32_t ssid, uint64_t *addr, struct smmu_fault *f)
{
	uint64_t ptr = ste[0] & FMASK(STE0_S1CTXPTR);
	unsigned fmt = (unsigned)FGET(ste[0], STE0_S1FMT);
	unsigned cdmax = (unsigned)FGET(ste[0], STE0_S1CDMAX);

	if (cdmax == 0) {
		*addr = ptr;
		return 0;
	}
	if (ssid >> cdmax)
		return cfg_fault(f, EVT_C_BAD_SUBSTREAMID);
	if (fmt == STE_S1FMT_LINEAR) {
		*addr = ptr + (uint64_t)ssid * 64;
		return 0;
	}
	unsigned leaf_bits = fmt == STE_S1FMT_4K_L2 ? 6 : 10;
	uint64_t l1;
	if (cd_fetch(smmu, cfg, ptr + (uint64_t)(ssid >> leaf_bits) * 8, &l1, 8, f))
		return -EFAULT;
	if (!FGET(l1, CD_L1_V))
		return cfg_fault(f, EVT_C_BAD_SUBSTREAMID);
	*addr = (l1 & FMASK(CD_L1_L2PTR)) + (uint64_t)(ssid & ((1u << leaf_bits) - 1)) * 64;
	return 0;
}

/*
 * Which CD a transaction uses: -EFAULT with a fault, 1 when stage 1 is bypassed
 * (S1DSS=bypass for untagged traffic), 0 with *ssid_out otherwise.
 */
static int cd_select(const uint64_t *ste, const struct smmu_dma_txn *txn, uint32_t *ssid_out,
		     struct smmu_fault *f)
{
	unsigned cdmax = (unsigned)FGET(ste[0], STE0_S1CDMAX);
	bool ssv = txn->flags & SMMU_DMA_SSV;

	*ssid_out = ssv ? txn->ssid : 0;
	if (ssv && cdmax == 0)
		return cfg_fault(f, EVT_C_BAD_SUBSTREAMID);
	if (ssv || cdmax == 0)
		return 0;
	switch (FGET(ste[1], STE1_S1DSS)) {
	case STE_S1DSS_TERMINATE:
		return cfg_fault(f, EVT_F_STREAM_DISABLED);
	case STE_S1DSS_BYPASS:
		return 1;
	default:
		return 0;
	}
}

static int cfg_load_s1(struct smmu *smmu, const uint64_t *ste, const struct smmu_dma_txn *txn,
		       struct smmu_cfg *cfg, struct smmu_fault *f)
{
	uint32_t ssid;
	uint64_t addr, cd[8];
	int rc = cd_select(ste, txn, &ssid, f);

	if (rc < 0)
		return rc;
	if (rc == 1) {
		cfg->kind = cfg->kind == KIND_NESTED ? KIND_S2 : KIND_BYPASS;
		return 0;
	}
	if (cd_locate(smmu, cfg, ste, ssid, &addr, f) || cd_fetch(smmu, cfg, addr, cd, 64, f))
		return -EFAULT;
	if (!cd_decode(smmu, cd, FGET(ste[1], STE1_S1STALLD), &cfg->s1))
		return cfg_fault(f, EVT_C_BAD_CD);
	return 0;
}

/*
 * Reads an STE until two reads agree: software updates a live STE word by word, and a
 * fetch racing that must not decode a mix of old and new words.
 */
static int ste_fetch(struct smmu *smmu, uint64_t pa, uint64_t ste[8])
{
	uint64_t again[8];

	if (hostmem_read(smmu->hm, pa, ste, 64))
		return -EFAULT;
	for (int i = 0; i < 16; i++) {
		hostmem_read(smmu->hm, pa, again, 64);
		if (!memcmp(ste, again, 64))
			return 0;
		memcpy(ste, again, 64);
	}
	return 0;
}

static int cfg_load(struct smmu *smmu, const struct smmu_dma_txn *txn, struct smmu_cfg *cfg,
		    struct smmu_fault *f)
{
	uint64_t pa, ste[8];

	if (ste_locate(smmu, txn->sid, &pa, f))
		return -EFAULT;
	if (ste_fetch(smmu, pa, ste))
		return cfg_fault(f, EVT_F_STE_FETCH);
	if (ste_decode(smmu, ste, cfg, f))
		return -EFAULT;
	if (cfg->kind == KIND_S1 || cfg->kind == KIND_NESTED)
		return cfg_load_s1(smmu, ste, txn, cfg, f);
	if ((txn->flags & SMMU_DMA_SSV) && cfg->kind != KIND_ABORT)
		return cfg_fault(f, EVT_C_BAD_SUBSTREAMID);
	return 0;
}

/* Per-thread last configuration: a hit costs a generation check and a key compare. */
static __thread struct {
	uint64_t instance, gen;
	struct smmu_cfg cfg;
} tl_cfg;

static bool cfg_tl_hit(struct smmu *smmu, uint64_t gen, uint32_t sid, uint32_t ssid, bool ssv)
{
	return tl_cfg.instance == smmu->instance && tl_cfg.gen == gen && tl_cfg.cfg.sid == sid &&
	       tl_cfg.cfg.ssid == ssid && tl_cfg.cfg.ssv == ssv;
}

const struct smmu_cfg *smmu_cfg_get(struct smmu *smmu, const struct smmu_dma_txn *txn,
				    struct smmu_fault *f)
{
	bool ssv = txn->flags & SMMU_DMA_SSV;
	uint32_t ssid = ssv ? txn->ssid : 0;
	uint64_t gen = __atomic_load_n(&smmu->cfgc.gen, __ATOMIC_SEQ_CST);
	struct smmu_cfg *cfg = &tl_cfg.cfg;

	if (LIKELY(cfg_tl_hit(smmu, gen, txn->sid, ssid, ssv)))
		return cfg;
	tl_cfg.instance = 0;
	if (cfgc_lookup(&smmu->cfgc, txn->sid, ssid, ssv, cfg))
		goto done;
	__atomic_fetch_add(&smmu->st_cfg_fetches, 1, __ATOMIC_RELAXED);
	memset(cfg, 0, sizeof(*cfg));
	cfg->sid = txn->sid;
	cfg->ssid = ssid;
	cfg->ssv = ssv;
	if (cfg_load(smmu, txn, cfg, f)) {
		TRACE(smmu_cfg_fault, "sid=%#x ssid=%#x id=%#x", txn->sid, ssid, f->id);
		return NULL;
	}
	TRACE(smmu_cfg_load,
	      "sid=%#x ssid=%#x ssv=%d kind=%u vmid=%u asid=%u s1ttb=%#llx s2ttb=%#llx", cfg->sid,
	      cfg->ssid, cfg->ssv, cfg->kind, cfg->s2.id, cfg->s1.id,
	      (unsigned long long)cfg->s1.ttb, (unsigned long long)cfg->s2.ttb);
	if (!smmu_walk_probing()) /* a probe leaves the configuration cache as it was */
		cfgc_insert(&smmu->cfgc, gen, cfg);
done:
	/* Only trust it while no CFGI happened since 'gen' was read. */
	tl_cfg.gen = gen;
	tl_cfg.instance = smmu->instance;
	return cfg;
}
