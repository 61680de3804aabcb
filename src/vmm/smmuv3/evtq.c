// SPDX-License-Identifier: Apache-2.0
/* The event queue: record writes, overflow signalling, event construction and injection. */
#include <string.h>

#include "common/trace.h"
#include "vmm/smmuv3/internal.h"

static unsigned vsmmu_evtq_log2(const struct vsmmu *vs)
{
	return vsmmu_queue_log2size(vs->r.evtq.base, vs->cfg.evtq_bits);
}

/* Overflow is signalled by making PROD.OVFLG differ from CONS.OVACKFLG, once per episode. */
void vsmmu_evtq_overflow(struct vsmmu *vs)
{
	uint32_t ovf = (uint32_t)FGET(vs->r.evtq.prod, Q_PROD_OVFLG);
	uint32_t ack = (uint32_t)FGET(vs->r.evtq.cons, Q_CONS_OVACKFLG);

	vs->stats.events_lost++;
	if (ovf != ack)
		return;
	vs->r.evtq.prod = (uint32_t)FSET(vs->r.evtq.prod, Q_PROD_OVFLG, !ovf);
	vs->evtq_irq_pending = true;
	TRACE(vsmmu_evtq_overflow, "prod=%#x cons=%#x", vs->r.evtq.prod, vs->r.evtq.cons);
}

static int vsmmu_evtq_store(struct vsmmu *vs, uint64_t addr, const uint64_t evt[4])
{
	uint8_t buf[EVT_SIZE];

	for (unsigned i = 0; i < EVT_SIZE; i++)
		buf[i] = (uint8_t)(evt[i / 8] >> (8 * (i % 8)));
	return vs->plat.ram_write(vs->plat.opaque, addr, buf, sizeof(buf));
}

bool vsmmu_evtq_write(struct vsmmu *vs, const uint64_t evt[4])
{
	unsigned l2 = vsmmu_evtq_log2(vs);
	uint32_t prod = vs->r.evtq.prod, mask = vsmmu_queue_ptr_mask(l2);

	if (!FGET(vs->r.cr0, CR0_EVENTQEN)) {
		vs->stats.events_lost++; /* architecturally discarded */
		return false;
	}
	if (vsmmu_queue_full(prod, vs->r.evtq.cons, l2)) {
		vsmmu_evtq_overflow(vs);
		return false;
	}
	if (vsmmu_evtq_store(vs, vsmmu_queue_slot(vs->r.evtq.base, prod, l2, EVT_SIZE), evt) < 0) {
		vs->stats.events_lost++;
		vsmmu_gerror_raise(vs, GERROR_EVENTQ_ABT);
		return false;
	}
	vs->r.evtq.prod = (prod & ~mask) | vsmmu_queue_inc(prod & mask, l2);
	vs->stats.events++;
	vs->evtq_irq_pending = true;
	TRACE(vsmmu_event, "id=%#x sid=%#x prod=%#x", (unsigned)FGET(evt[0], EVT0_ID),
	      (unsigned)FGET(evt[0], EVT0_SID), vs->r.evtq.prod);
	return true;
}

/* Configuration errors carry only SID, SSV/SSID and, for fetch aborts, the address. */
void vsmmu_event_config(struct vsmmu *vs, uint8_t id, uint32_t sid, bool ssv, uint32_t ssid,
			uint64_t fetch_addr)
{
	uint64_t evt[EVT_DWORDS] = {0};

	evt[0] = FSET(evt[0], EVT0_ID, id);
	evt[0] = FSET(evt[0], EVT0_SID, sid);
	if (ssv) {
		evt[0] = FSET(evt[0], EVT0_SSV, 1);
		evt[0] = FSET(evt[0], EVT0_SSID, ssid);
	}
	if (id == EVT_F_STE_FETCH || id == EVT_F_CD_FETCH)
		evt[3] = FSET(0, EVT3_FETCH_ADDR, fetch_addr >> 3);
	TRACE(vsmmu_event_config, "id=%#x sid=%#x ssid=%#x", id, sid, ssid);
	vsmmu_evtq_write(vs, evt);
}

bool vsmmu_event_inject(struct vsmmu *vs, const uint64_t evt[4])
{
	bool ok;

	vsmmu_lock(vs);
	ok = vsmmu_evtq_write(vs, evt);
	vsmmu_op_finish(vs);
	vsmmu_unlock(vs);
	return ok;
}

void vsmmu_event_lost(struct vsmmu *vs)
{
	vsmmu_lock(vs);
	if (FGET(vs->r.cr0, CR0_EVENTQEN))
		vsmmu_evtq_overflow(vs);
	vsmmu_op_finish(vs);
	vsmmu_unlock(vs);
}
