// SPDX-License-Identifier: Apache-2.0
/*
 * Stall bookkeeping: each stalled host fault the guest sees holds a slot mapping its
 * (virtual SID, STAG) to the bridge's page-response cookie until the guest answers with
 * RESUME or STALL_TERM.
 */
#include <errno.h>

#include "common/trace.h"
#include "vmm/smmuv3/internal.h"

static struct vsmmu_stall_slot *vsmmu_stall_alloc(struct vsmmu *vs)
{
	struct vsmmu_stall_slot *free_slot = NULL;
	unsigned used = 0;

	for (unsigned i = 0; i < vs->cfg.stall_max; i++) {
		if (vs->r.stalls[i].used)
			used++;
		else if (!free_slot)
			free_slot = &vs->r.stalls[i];
	}
	return used < vs->cfg.stall_max ? free_slot : NULL;
}

static bool vsmmu_stag_in_use(const struct vsmmu *vs, uint16_t stag)
{
	for (unsigned i = 0; i < vs->cfg.stall_max; i++)
		if (vs->r.stalls[i].used && vs->r.stalls[i].stag == stag)
			return true;
	return false;
}

/* STAGs are unique among held stalls (at most stall_max < 65536 of them). */
static uint16_t vsmmu_stag_next(struct vsmmu *vs)
{
	while (vsmmu_stag_in_use(vs, vs->r.next_stag))
		vs->r.next_stag++;
	return vs->r.next_stag++;
}

static void vsmmu_stall_event(const struct vsmmu_stall *st, uint16_t stag, uint64_t evt[4])
{
	evt[0] = FSET(0, EVT0_ID, st->event_id ? st->event_id : EVT_F_TRANSLATION);
	evt[0] = FSET(evt[0], EVT0_SID, st->vsid);
	if (st->ssv) {
		evt[0] = FSET(evt[0], EVT0_SSV, 1);
		evt[0] = FSET(evt[0], EVT0_SSID, st->ssid);
	}
	evt[1] = FSET(0, EVT1_STAG, stag);
	evt[1] = FSET(evt[1], EVT1_STALL, 1);
	evt[1] = FSET(evt[1], EVT1_PNU, st->priv);
	evt[1] = FSET(evt[1], EVT1_IND, st->exec);
	evt[1] = FSET(evt[1], EVT1_RNW, !st->write);
	evt[1] = FSET(evt[1], EVT1_CLASS, EVT_CLASS_IN);
	evt[2] = st->addr;
	evt[3] = 0;
}

int vsmmu_stall_inject(struct vsmmu *vs, const struct vsmmu_stall *st)
{
	struct vsmmu_stall_slot *slot;
	uint64_t evt[EVT_DWORDS];
	int ret = 0;

	vsmmu_lock(vs);
	slot = vsmmu_stall_alloc(vs);
	if (!slot) {
		ret = -EBUSY;
		goto out;
	}
	*slot = (struct vsmmu_stall_slot){
	    .used = true, .ssv = st->ssv, .vsid = st->vsid, .ssid = st->ssid, .cookie = st->cookie};
	slot->stag = vsmmu_stag_next(vs);
	vsmmu_stall_event(st, slot->stag, evt);
	/* A stall the guest never hears of would hold the device forever: refuse it. */
	if (!vsmmu_evtq_write(vs, evt)) {
		slot->used = false;
		ret = -EBUSY;
	} else {
		vs->stats.stalls++;
	}
	TRACE(vsmmu_stall, "sid=%#x stag=%#x cookie=%#x addr=%#llx ret=%d", st->vsid, slot->stag,
	      st->cookie, (unsigned long long)st->addr, ret);
out:
	vsmmu_op_finish(vs);
	vsmmu_unlock(vs);
	return ret;
}

static void vsmmu_stall_answer(struct vsmmu *vs, struct vsmmu_stall_slot *slot,
			       enum vsmmu_resume resp)
{
	int ret = 0;

	if (vs->bridge && vs->bridge->page_response)
		ret = vs->bridge->page_response(vs->bridge_opaque, slot->vsid, slot->cookie, resp);
	TRACE(vsmmu_stall_answer, "sid=%#x stag=%#x cookie=%#x resp=%d ret=%d", slot->vsid,
	      slot->stag, slot->cookie, resp, ret);
	slot->used = false;
}

void vsmmu_stall_resume(struct vsmmu *vs, uint32_t sid, uint16_t stag, enum vsmmu_resume resp)
{
	for (unsigned i = 0; i < vs->cfg.stall_max; i++) {
		struct vsmmu_stall_slot *s = &vs->r.stalls[i];

		if (s->used && s->vsid == sid && s->stag == stag) {
			vsmmu_stall_answer(vs, s, resp);
			return;
		}
	}
	/* RESUME of a transaction that is not stalled has no effect. */
	TRACE(vsmmu_stall_stale, "sid=%#x stag=%#x", sid, stag);
}

void vsmmu_stall_terminate(struct vsmmu *vs, uint32_t sid)
{
	for (unsigned i = 0; i < vs->cfg.stall_max; i++)
		if (vs->r.stalls[i].used && vs->r.stalls[i].vsid == sid)
			vsmmu_stall_answer(vs, &vs->r.stalls[i], VSMMU_RESUME_FAIL);
}

void vsmmu_stall_drop_all(struct vsmmu *vs)
{
	for (unsigned i = 0; i < vs->cfg.stall_max; i++)
		if (vs->r.stalls[i].used)
			vsmmu_stall_answer(vs, &vs->r.stalls[i], VSMMU_RESUME_FAIL);
}

unsigned vsmmu_stall_count(struct vsmmu *vs)
{
	unsigned n = 0;

	vsmmu_lock(vs);
	for (unsigned i = 0; i < vs->cfg.stall_max; i++)
		n += vs->r.stalls[i].used;
	vsmmu_unlock(vs);
	return n;
}
