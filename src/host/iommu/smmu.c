// SPDX-License-Identifier: Apache-2.0
/* The SMMU object: identification registers, stream table registers, events, CMD_SYNC. */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "common/trace.h"
#include "host/iommu/smmu_internal.h"

#define CFG_CACHE_ENTRIES 1024u

static const uint8_t oas_bits[8] = {32, 36, 40, 42, 44, 48, 52, 52};

void smmu_params_default(struct smmu_params *p)
{
	*p = (struct smmu_params){
	    .sid_bits = 16,
	    .ssid_bits = 16,
	    .oas = 5,
	    .httu = 2,
	    .two_level_st = true,
	    .stall_max = 64,
	    .tlb_entries = 16384,
	    .evtq_log2 = 10,
	};
}

static void smmu_init_idr(struct smmu *s)
{
	const struct smmu_params *p = &s->p;
	uint64_t idr0 = 0, idr1 = 0, idr3 = 0, idr5 = 0;

	idr0 = F_SET(idr0, IDR0_S2P, 1);
	idr0 = F_SET(idr0, IDR0_S1P, 1);
	idr0 = F_SET(idr0, IDR0_TTF, 2);
	idr0 = F_SET(idr0, IDR0_COHACC, 1);
	idr0 = F_SET(idr0, IDR0_HTTU, p->httu);
	idr0 = F_SET(idr0, IDR0_ASID16, 1);
	idr0 = F_SET(idr0, IDR0_MSI, 1);
	idr0 = F_SET(idr0, IDR0_VMID16, 1);
	idr0 = F_SET(idr0, IDR0_CD2L, 1);
	idr0 = F_SET(idr0, IDR0_TTENDIAN, 2);
	idr0 = F_SET(idr0, IDR0_STALL_MODEL, p->no_stall ? 1 : 0);
	idr0 = F_SET(idr0, IDR0_ST_LEVEL, p->two_level_st ? 1 : 0);
	idr1 = F_SET(idr1, IDR1_SIDSIZE, p->sid_bits);
	idr1 = F_SET(idr1, IDR1_SSIDSIZE, p->ssid_bits);
	idr1 = F_SET(idr1, IDR1_EVENTQS, p->evtq_log2);
	idr1 = F_SET(idr1, IDR1_CMDQS, 10);
	idr3 = F_SET(idr3, IDR3_RIL, 1);
	idr5 = F_SET(idr5, IDR5_OAS, p->oas);
	idr5 = F_SET(idr5, IDR5_GRAN4K, 1);
	idr5 = F_SET(idr5, IDR5_STALL_MAX, p->no_stall ? 0 : p->stall_max);
	s->idr[0] = (uint32_t)idr0;
	s->idr[1] = (uint32_t)idr1;
	s->idr[3] = (uint32_t)idr3;
	s->idr[5] = (uint32_t)idr5;
	s->idr[6] = 0x0000043b; /* IIDR: implementer 0x43b, the model's product 0 */
	s->idr[7] = 0x00000002; /* AIDR: SMMUv3.2 */
	s->oa_bits = oas_bits[p->oas & 7];
}

static bool smmu_params_ok(const struct smmu_params *p)
{
	return p->sid_bits >= 1 && p->sid_bits <= 32 && p->ssid_bits <= 20 && p->oas <= 6 &&
	       p->httu <= 3 && IS_POW2(p->tlb_entries) && p->evtq_log2 >= 1 && p->evtq_log2 <= 19 &&
	       p->stall_max >= 1 && p->stall_max <= 65535;
}

struct smmu *smmu_create(struct hostmem *hm, const struct smmu_params *p)
{
	struct smmu_params def;
	if (!p) {
		smmu_params_default(&def);
		p = &def;
	}
	if (!hm || !smmu_params_ok(p))
		return NULL;
	struct smmu *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	static uint64_t instances;
	s->instance = __atomic_add_fetch(&instances, 1, __ATOMIC_RELAXED);
	s->hm = hm;
	s->p = *p;
	smmu_init_idr(s);
	pthread_mutex_init(&s->sync_lock, NULL);
	pthread_mutex_init(&s->evt_lock, NULL);
	pthread_mutex_init(&s->stall_lock, NULL);
	pthread_cond_init(&s->stall_cond, NULL);
	s->evtq = calloc(1u << p->evtq_log2, sizeof(*s->evtq));
	s->stalls = calloc(p->stall_max, sizeof(*s->stalls));
	if (!s->evtq || !s->stalls || smmu_tlb_init(&s->tlb, p->tlb_entries) ||
	    smmu_cfg_init(&s->cfgc, CFG_CACHE_ENTRIES)) {
		smmu_destroy(s);
		return NULL;
	}
	s->strtab_cfg = F_VAL(STRTAB_CFG_LOG2SIZE, 0);
	return s;
}

void smmu_destroy(struct smmu *s)
{
	if (!s)
		return;
	smmu_tlb_fini(&s->tlb);
	smmu_cfg_fini(&s->cfgc);
	free(s->evtq);
	free(s->stalls);
	pthread_cond_destroy(&s->stall_cond);
	pthread_mutex_destroy(&s->stall_lock);
	pthread_mutex_destroy(&s->evt_lock);
	pthread_mutex_destroy(&s->sync_lock);
	free(s);
}

struct hostmem *smmu_hostmem(struct smmu *s)
{
	return s->hm;
}

void smmu_read_idr(struct smmu *s, uint32_t regs[8])
{
	memcpy(regs, s->idr, sizeof(s->idr));
}

int smmu_set_strtab(struct smmu *s, uint64_t base, uint32_t cfg)
{
	unsigned fmt = (unsigned)F_GET(cfg, STRTAB_CFG_FMT);
	unsigned log2size = (unsigned)F_GET(cfg, STRTAB_CFG_LOG2SIZE);
	unsigned split = (unsigned)F_GET(cfg, STRTAB_CFG_SPLIT);

	if (fmt > STRTAB_FMT_2LVL || (fmt == STRTAB_FMT_2LVL && !s->p.two_level_st))
		return -EINVAL;
	if (log2size > s->p.sid_bits || (fmt == STRTAB_FMT_2LVL && (split < 6 || split > 12)))
		return -EINVAL;
	s->strtab_base = base;
	s->strtab_cfg = cfg;
	smmu_cfg_invalidate(s, 0, UINT32_MAX);
	return 0;
}

void smmu_set_enable(struct smmu *s, bool en)
{
	__atomic_store_n(&s->enabled, en, __ATOMIC_RELEASE);
	smmu_cfg_invalidate(s, 0, UINT32_MAX);
}

void smmu_set_gbpa_abort(struct smmu *s, bool abort)
{
	__atomic_store_n(&s->gbpa_abort, abort, __ATOMIC_RELEASE);
}

/* ---- events ---- */

static void smmu_event_build(const struct smmu_dma_txn *txn, const struct smmu_fault *f,
			     bool stalled, uint16_t stag, struct smmu_event *ev)
{
	bool ssv = txn->flags & SMMU_DMA_SSV;
	uint64_t w0 = F_VAL(EVT0_ID, f->id) | F_VAL(EVT0_SSV, ssv) |
		      F_VAL(EVT0_SSID, ssv ? txn->ssid : 0) | F_VAL(EVT0_SID, txn->sid);
	uint64_t w1 = 0;

	memset(ev, 0, sizeof(*ev));
	ev->dw[0] = w0;
	if (f->id < EVT_F_WALK_EABT && f->id != EVT_F_CD_FETCH)
		return; /* C_BAD_* and friends carry only SID/SSV/SSID */
	w1 = F_VAL(EVT1_STAG, stalled ? stag : 0) | F_VAL(EVT1_STALL, stalled) |
	     F_VAL(EVT1_RNW, f->rnw_read) | F_VAL(EVT1_S2, f->s2) | F_VAL(EVT1_CLASS, f->cls) |
	     F_VAL(EVT1_TTRNW, f->ttrnw);
	ev->dw[1] = w1;
	ev->dw[2] = f->input;
	ev->dw[3] = f->s2 ? (f->ipa & F_MASK(EVT3_IPA)) : 0;
}

void smmu_event_record(struct smmu *s, const struct smmu_dma_txn *txn, const struct smmu_fault *f,
		       bool stalled, uint16_t stag)
{
	struct smmu_event ev;

	smmu_event_build(txn, f, stalled, stag, &ev);
	TRACE(smmu_event, "id=%#x sid=%#x iova=%#llx s2=%d class=%u stall=%d stag=%u", f->id,
	      txn->sid, (unsigned long long)f->input, f->s2, f->cls, stalled, stag);
	pthread_mutex_lock(&s->evt_lock);
	smmu_event_fn fn = s->evt_fn;
	void *opaque = s->evt_opaque;
	if (!fn) {
		unsigned size = 1u << s->p.evtq_log2;
		if (s->evt_tail - s->evt_head < size)
			s->evtq[s->evt_tail++ & (size - 1)] = ev;
		else
			s->evt_overflow = true;
	}
	pthread_mutex_unlock(&s->evt_lock);
	if (fn)
		fn(opaque, &ev);
}

void smmu_set_event_handler(struct smmu *s, smmu_event_fn fn, void *opaque)
{
	pthread_mutex_lock(&s->evt_lock);
	s->evt_fn = fn;
	s->evt_opaque = opaque;
	pthread_mutex_unlock(&s->evt_lock);
}

bool smmu_event_pop(struct smmu *s, struct smmu_event *ev)
{
	bool got = false;

	pthread_mutex_lock(&s->evt_lock);
	if (s->evt_head != s->evt_tail) {
		*ev = s->evtq[s->evt_head++ & ((1u << s->p.evtq_log2) - 1)];
		got = true;
	}
	pthread_mutex_unlock(&s->evt_lock);
	return got;
}

bool smmu_event_overflow_take(struct smmu *s)
{
	pthread_mutex_lock(&s->evt_lock);
	bool o = s->evt_overflow;
	s->evt_overflow = false;
	pthread_mutex_unlock(&s->evt_lock);
	return o;
}

/* ---- in-flight DMA and CMD_SYNC: a two-slot grace period ---- */

unsigned smmu_inflight_enter(struct smmu *s)
{
	for (;;) {
		uint64_t e = __atomic_load_n(&s->epoch, __ATOMIC_SEQ_CST);
		__atomic_fetch_add(&s->inflight[e & 1], 1, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&s->epoch, __ATOMIC_SEQ_CST) == e)
			return (unsigned)(e & 1);
		__atomic_fetch_sub(&s->inflight[e & 1], 1, __ATOMIC_SEQ_CST);
	}
}

void smmu_inflight_exit(struct smmu *s, unsigned slot)
{
	__atomic_fetch_sub(&s->inflight[slot], 1, __ATOMIC_RELEASE);
}

void smmu_sync(struct smmu *s)
{
	pthread_mutex_lock(&s->sync_lock);
	uint64_t e = __atomic_fetch_add(&s->epoch, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&s->inflight[e & 1], __ATOMIC_ACQUIRE) != 0)
		sched_yield();
	pthread_mutex_unlock(&s->sync_lock);
}

void smmu_get_stats(struct smmu *s, struct smmu_stats *st)
{
	st->tlb_misses = __atomic_load_n(&s->st_tlb_misses, __ATOMIC_RELAXED);
	st->cfg_fetches = __atomic_load_n(&s->st_cfg_fetches, __ATOMIC_RELAXED);
	st->stalls = __atomic_load_n(&s->st_stalls, __ATOMIC_RELAXED);
}
