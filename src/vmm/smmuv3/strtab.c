// SPDX-License-Identifier: Apache-2.0
/*
 * Guest configuration structures: stream table (linear and 2-level), STE decoding, CD
 * tables (linear and 2-level) and CD decoding. Every fetch goes through the platform's
 * bounds-checked ram_read, so a pointer outside guest RAM is an architectural fetch abort.
 */
#include <errno.h>
#include <string.h>

#include "common/trace.h"
#include "vmm/smmuv3/internal.h"

static int vsmmu_read_dwords(struct vsmmu *vs, uint64_t gpa, uint64_t *w, unsigned n)
{
	uint8_t buf[64];

	if (n * 8 > sizeof(buf) || vs->plat.ram_read(vs->plat.opaque, gpa, buf, n * 8) < 0)
		return -EFAULT;
	for (unsigned i = 0; i < n; i++) {
		w[i] = 0;
		for (unsigned b = 0; b < 8; b++)
			w[i] |= (uint64_t)buf[i * 8 + b] << (8 * b);
	}
	return 0;
}

/* Finds the STE address of sid in a 2-level table: 0 or an event id. */
static int vsmmu_ste_addr_2lvl(struct vsmmu *vs, uint64_t base, unsigned split, uint32_t sid,
			       uint64_t *addr)
{
	uint64_t desc, l2idx = sid & ((1ull << split) - 1);
	uint64_t l1addr = base + ((uint64_t)sid >> split) * STRTAB_L1_DESC_SIZE;
	unsigned span;

	if (vsmmu_read_dwords(vs, l1addr, &desc, 1) < 0) {
		*addr = l1addr;
		return EVT_F_STE_FETCH;
	}
	span = (unsigned)FGET(desc, STRTAB_L1_SPAN);
	/* Span 0 is an invalid L2 pointer; the L2 table holds 2^(Span-1) STEs. */
	if (span == 0 || span > split + 1 || l2idx >= (1ull << (span - 1)))
		return EVT_C_BAD_STREAMID;
	*addr = (FGET(desc, STRTAB_L1_L2PTR) << 6) + l2idx * STE_SIZE;
	return 0;
}

int vsmmu_ste_fetch(struct vsmmu *vs, uint32_t sid, struct vsmmu_ste_raw *raw, uint64_t *fault_addr)
{
	uint32_t cfg = vs->r.strtab_cfg;
	unsigned log2 = MIN((unsigned)FGET(cfg, STRTAB_CFG_LOG2SIZE), vs->cfg.sid_bits);
	unsigned split = MIN((unsigned)FGET(cfg, STRTAB_CFG_SPLIT), log2);
	uint64_t base = FGET(vs->r.strtab_base, STRTAB_BASE_ADDR) << 6;
	int ret;

	if ((uint64_t)sid >= (1ull << log2))
		return EVT_C_BAD_STREAMID;
	if (FGET(cfg, STRTAB_CFG_FMT) == STRTAB_FMT_2LVL) {
		ret = vsmmu_ste_addr_2lvl(vs, base, split, sid, &raw->addr);
		if (ret) {
			*fault_addr = raw->addr;
			return ret;
		}
	} else {
		raw->addr = base + (uint64_t)sid * STE_SIZE;
	}
	if (vsmmu_read_dwords(vs, raw->addr, raw->w, STE_DWORDS) < 0) {
		*fault_addr = raw->addr;
		return EVT_F_STE_FETCH;
	}
	return 0;
}

static void vsmmu_ste_canonical(struct vsmmu_ste *ste, enum vsmmu_ste_kind kind)
{
	memset(ste, 0, sizeof(*ste));
	ste->kind = kind;
	ste->words[0] = FSET(0, STE0_V, 1);
	ste->words[0] = FSET(ste->words[0], STE0_CONFIG,
			     kind == VSMMU_STE_BYPASS ? STE_CFG_BYPASS : STE_CFG_ABORT);
}

/* Stage-1 fields the architecture rejects with C_BAD_STE for this SMMU. */
static bool vsmmu_ste_s1_valid(struct vsmmu *vs, const uint64_t *w)
{
	unsigned fmt = (unsigned)FGET(w[0], STE0_S1FMT);
	unsigned cdmax = (unsigned)FGET(w[0], STE0_S1CDMAX);

	if (cdmax > vs->cfg.ssid_bits)
		return false;
	if (cdmax != 0 && (fmt == 3 || FGET(w[1], STE1_S1DSS) == 3))
		return false;
	/* EATS 0b10/0b11 need stage 2 or are reserved. */
	return FGET(w[1], STE1_EATS) < 2;
}

int vsmmu_ste_decode(struct vsmmu *vs, const struct vsmmu_ste_raw *raw, struct vsmmu_ste *ste)
{
	const uint64_t *w = raw->w;
	unsigned config = (unsigned)FGET(w[0], STE0_CONFIG);

	/* V=0 aborts without an event, as does Config 0b0xx. */
	if (!FGET(w[0], STE0_V) || config < STE_CFG_BYPASS) {
		vsmmu_ste_canonical(ste, VSMMU_STE_ABORT);
		return 0;
	}
	if (config == STE_CFG_BYPASS) {
		vsmmu_ste_canonical(ste, VSMMU_STE_BYPASS);
		return 0;
	}
	/* Stage 2 is not advertised: S2-only and nested configurations are illegal. */
	if (config != STE_CFG_S1 || !vsmmu_ste_s1_valid(vs, w)) {
		vsmmu_ste_canonical(ste, VSMMU_STE_ABORT);
		return EVT_C_BAD_STE;
	}
	memset(ste, 0, sizeof(*ste));
	ste->kind = VSMMU_STE_S1;
	ste->words[0] = w[0] & STE0_GUEST_MASK;
	ste->words[1] = w[1] & STE1_GUEST_MASK;
	ste->cd_table_gpa = FGET(w[0], STE0_S1CTXPTR) << 6;
	ste->s1fmt = (unsigned)FGET(w[0], STE0_S1FMT);
	ste->s1cdmax = (unsigned)FGET(w[0], STE0_S1CDMAX);
	ste->s1dss = (unsigned)FGET(w[1], STE1_S1DSS);
	ste->s1stalld = FGET(w[1], STE1_S1STALLD);
	return 0;
}

/* The guest STE of sid, ignoring SMMUEN: 0 or an event id (*fault_addr for fetch aborts). */
int vsmmu_ste_get(struct vsmmu *vs, uint32_t sid, struct vsmmu_ste *ste, uint64_t *fault_addr)
{
	struct vsmmu_ste_raw raw;
	int ev;

	*fault_addr = 0;
	ev = vsmmu_ste_fetch(vs, sid, &raw, fault_addr);
	if (ev) {
		vsmmu_ste_canonical(ste, VSMMU_STE_ABORT);
		return ev;
	}
	return vsmmu_ste_decode(vs, &raw, ste);
}

void vsmmu_config_resolve(struct vsmmu *vs, uint32_t sid, bool report, struct vsmmu_ste *ste)
{
	uint64_t fault_addr;
	int ev;

	if (!FGET(vs->r.cr0, CR0_SMMUEN)) {
		/* SMMU disabled: GBPA decides for every stream, with no event. */
		vsmmu_ste_canonical(ste, FGET(vs->r.gbpa, GBPA_ABORT) ? VSMMU_STE_ABORT
								      : VSMMU_STE_BYPASS);
		return;
	}
	ev = vsmmu_ste_get(vs, sid, ste, &fault_addr);
	if (ev && report)
		vsmmu_event_config(vs, (uint8_t)ev, sid, false, 0, fault_addr);
}

int vsmmu_ste_lookup(struct vsmmu *vs, uint32_t vsid, struct vsmmu_ste *ste)
{
	uint64_t fault_addr;
	int ev;

	vsmmu_lock(vs);
	ev = vsmmu_ste_get(vs, vsid, ste, &fault_addr);
	vsmmu_unlock(vs);
	return ev;
}

/* CD tables ------------------------------------------------------------------------------ */

/* Address of the CD of ssid: 0 or an event id. */
static int vsmmu_cd_addr(struct vsmmu *vs, const struct vsmmu_ste *ste, uint32_t ssid,
			 uint64_t *addr)
{
	uint64_t base = ste->cd_table_gpa, desc;
	unsigned split;

	if (ste->s1cdmax == 0 || ste->s1fmt == STE_S1FMT_LINEAR) {
		*addr = base + (uint64_t)ssid * CD_SIZE;
		return 0;
	}
	split = ste->s1fmt == STE_S1FMT_64K_L2 ? CD_L2_SPLIT : 6;
	*addr = base + (uint64_t)(ssid >> split) * CD_L1_DESC_SIZE;
	if (vsmmu_read_dwords(vs, *addr, &desc, 1) < 0)
		return EVT_F_CD_FETCH;
	if (!FGET(desc, CD_L1_V))
		return EVT_C_BAD_SUBSTREAMID;
	*addr = (FGET(desc, CD_L1_L2PTR) << 12) + (uint64_t)(ssid & ((1u << split) - 1)) * CD_SIZE;
	return 0;
}

int vsmmu_cd_fetch(struct vsmmu *vs, const struct vsmmu_ste *ste, uint32_t ssid,
		   uint64_t cd[CD_DWORDS], uint64_t *fault_addr)
{
	int ev;

	if ((uint64_t)ssid >= (1ull << ste->s1cdmax))
		return EVT_C_BAD_SUBSTREAMID;
	ev = vsmmu_cd_addr(vs, ste, ssid, fault_addr);
	if (ev)
		return ev;
	if (vsmmu_read_dwords(vs, *fault_addr, cd, CD_DWORDS) < 0)
		return EVT_F_CD_FETCH;
	return 0;
}

int vsmmu_cd_decode(struct vsmmu *vs, const uint64_t w[CD_DWORDS], struct vsmmu_cd *cd)
{
	unsigned t0sz = (unsigned)FGET(w[0], CD0_T0SZ);

	memset(cd, 0, sizeof(*cd));
	if (!FGET(w[0], CD0_V))
		return EVT_C_BAD_CD;
	/* AArch64 tables, 4 KiB granule, little-endian, and a T0SZ the walker can start. */
	if (!FGET(w[0], CD0_AA64) || FGET(w[0], CD0_ENDI) ||
	    (FGET(w[0], CD0_S) && !vs->cfg.stall) ||
	    (!FGET(w[0], CD0_EPD0) && (FGET(w[0], CD0_TG0) != 0 || t0sz < 16 || t0sz > 39)))
		return EVT_C_BAD_CD;
	cd->valid = true;
	cd->asid = (uint16_t)FGET(w[0], CD0_ASID);
	cd->ttb0 = FGET(w[1], CD1_TTB0) << 4;
	cd->t0sz = t0sz;
	cd->tg0 = (unsigned)FGET(w[0], CD0_TG0);
	cd->ips = (unsigned)FGET(w[0], CD0_IPS);
	cd->epd0 = FGET(w[0], CD0_EPD0);
	cd->aa64 = true;
	cd->ha = FGET(w[0], CD0_HA);
	cd->hd = FGET(w[0], CD0_HD);
	cd->stall = FGET(w[0], CD0_S);
	cd->record = FGET(w[0], CD0_R);
	cd->mair = w[3];
	return 0;
}

/* Which CD non-PASID traffic uses: 0 (into *ssid) or an event id, -ENOENT for bypass. */
static int vsmmu_cd_default(const struct vsmmu_ste *ste, uint32_t *ssid)
{
	*ssid = 0;
	if (ste->s1cdmax == 0 || ste->s1dss == STE_S1DSS_SSID0)
		return 0;
	return ste->s1dss == STE_S1DSS_BYPASS ? -ENOENT : EVT_F_STREAM_DISABLED;
}

int vsmmu_cd_lookup_locked(struct vsmmu *vs, uint32_t vsid, bool ssv, uint32_t ssid,
			   struct vsmmu_cd *cd)
{
	struct vsmmu_ste ste;
	uint64_t w[CD_DWORDS], addr;
	int ev;

	ev = vsmmu_ste_get(vs, vsid, &ste, &addr);
	if (ev)
		return ev;
	if (ste.kind != VSMMU_STE_S1)
		return -ENOENT;
	if (ssv && (ste.s1cdmax == 0 || (ssid == 0 && ste.s1dss == STE_S1DSS_SSID0)))
		return EVT_C_BAD_SUBSTREAMID;
	if (!ssv) {
		ev = vsmmu_cd_default(&ste, &ssid);
		if (ev)
			return ev;
	}
	ev = vsmmu_cd_fetch(vs, &ste, ssid, w, &addr);
	return ev ? ev : vsmmu_cd_decode(vs, w, cd);
}

int vsmmu_cd_lookup(struct vsmmu *vs, uint32_t vsid, bool ssv, uint32_t ssid, struct vsmmu_cd *cd)
{
	int ret;

	if (!cd)
		return -EINVAL;
	memset(cd, 0, sizeof(*cd));
	vsmmu_lock(vs);
	ret = vsmmu_cd_lookup_locked(vs, vsid, ssv, ssid, cd);
	vsmmu_unlock(vs);
	return ret;
}

/*
 * A stage-1 table base outside guest RAM: the host's walk would take a stage-2 fault, which
 * the host never reports to a guest, so the walk abort is reported here instead, once, when
 * the CD is configured (and only if the CD asks for stage-1 faults to be recorded).
 */
static void vsmmu_config_check_ttb(struct vsmmu *vs, uint32_t sid, uint32_t ssid,
				   const struct vsmmu_cd *cd)
{
	uint64_t evt[EVT_DWORDS] = {0}, desc;

	if (cd->epd0 || !cd->record || vsmmu_read_dwords(vs, cd->ttb0, &desc, 1) == 0)
		return;
	evt[0] = FSET(FSET(0, EVT0_ID, EVT_F_WALK_EABT), EVT0_SID, sid);
	if (ssid) {
		evt[0] = FSET(evt[0], EVT0_SSV, 1);
		evt[0] = FSET(evt[0], EVT0_SSID, ssid);
	}
	evt[1] = FSET(0, EVT1_CLASS, EVT_CLASS_TT);
	evt[3] = FSET(0, EVT3_FETCH_ADDR, cd->ttb0 >> 3);
	TRACE(vsmmu_event_ttb, "sid=%#x ssid=%#x ttb0=%#llx", sid, ssid,
	      (unsigned long long)cd->ttb0);
	vsmmu_evtq_write(vs, evt);
}

/*
 * Validation of a CD the guest just (re)configured on a stream with a device: the host walks
 * CDs through stage 2 and does not report stage-2 fetch faults to the guest, so the vSMMU
 * reports unreadable and malformed CDs itself. A CD with V=0 is a normal state.
 */
void vsmmu_config_check_cd(struct vsmmu *vs, uint32_t sid, bool dflt, uint32_t ssid)
{
	struct vsmmu_ste ste;
	struct vsmmu_cd cd;
	uint64_t w[CD_DWORDS], addr = 0;
	int ev;

	if (!vsmmu_bridge_attached(vs, sid))
		return;
	vsmmu_config_resolve(vs, sid, false, &ste);
	if (ste.kind != VSMMU_STE_S1 || (dflt && vsmmu_cd_default(&ste, &ssid) != 0))
		return;
	ev = vsmmu_cd_fetch(vs, &ste, ssid, w, &addr);
	if (ev == EVT_F_CD_FETCH) {
		vsmmu_event_config(vs, EVT_F_CD_FETCH, sid, ssid != 0, ssid, addr);
		return;
	}
	if (ev || !FGET(w[0], CD0_V))
		return;
	if (vsmmu_cd_decode(vs, w, &cd) != 0) {
		vsmmu_event_config(vs, EVT_C_BAD_CD, sid, ssid != 0, ssid, 0);
		return;
	}
	vsmmu_config_check_ttb(vs, sid, ssid, &cd);
}
