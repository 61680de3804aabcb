// SPDX-License-Identifier: Apache-2.0
/* Global errors (GERROR/GERRORN) and the vSMMU's MSIs (GERROR, event queue, CMD_SYNC). */
#include <errno.h>
#include <string.h>

#include "common/trace.h"
#include "vmm/smmuv3/internal.h"

bool vsmmu_gerror_active(const struct vsmmu *vs, unsigned bit)
{
	return ((vs->r.gerror ^ vs->r.gerrorn) >> bit) & 1u;
}

int vsmmu_msi_write(struct vsmmu *vs, uint64_t addr, uint32_t data)
{
	uint8_t le[4] = {(uint8_t)data, (uint8_t)(data >> 8), (uint8_t)(data >> 16),
			 (uint8_t)(data >> 24)};
	int ret;

	/* A write into RAM (Linux's CMD_SYNC polls its own queue slot) or else a real MSI. */
	ret = vs->plat.ram_write(vs->plat.opaque, addr, le, sizeof(le));
	if (ret < 0 && vs->plat.msi_send)
		ret = vs->plat.msi_send(vs->plat.opaque, addr, data);
	if (ret < 0) {
		TRACE(vsmmu_msi_abort, "addr=%#llx data=%#x ret=%d", (unsigned long long)addr, data,
		      ret);
		return ret;
	}
	vs->stats.msis++;
	TRACE(vsmmu_msi, "addr=%#llx data=%#x", (unsigned long long)addr, data);
	return 0;
}

/* An IRQ_CFG-programmed MSI; address 0 means the source has no MSI configured. */
static int vsmmu_irq_send(struct vsmmu *vs, const struct vsmmu_irq_cfg *cfg)
{
	if (cfg->addr == 0)
		return 0;
	return vsmmu_msi_write(vs, cfg->addr, cfg->data);
}

static void vsmmu_gerror_toggle(struct vsmmu *vs, unsigned bit)
{
	vs->r.gerror ^= 1u << bit;
	TRACE(vsmmu_gerror, "bit=%u gerror=%#x gerrorn=%#x", bit, vs->r.gerror, vs->r.gerrorn);
}

/* Only an inactive error toggles (an active one is already being reported). */
void vsmmu_gerror_raise(struct vsmmu *vs, unsigned bit)
{
	if (vsmmu_gerror_active(vs, bit))
		return;
	vsmmu_gerror_toggle(vs, bit);
	if (!FGET(vs->r.irq_ctrl, IRQ_CTRL_GERROR_IRQEN))
		return;
	if (vsmmu_irq_send(vs, &vs->r.gerror_irq) < 0 &&
	    !vsmmu_gerror_active(vs, GERROR_MSI_GERROR_ABT))
		vsmmu_gerror_toggle(vs, GERROR_MSI_GERROR_ABT); /* no IRQ for this one */
}

void vsmmu_irq_evtq(struct vsmmu *vs)
{
	if (!FGET(vs->r.irq_ctrl, IRQ_CTRL_EVENTQ_IRQEN))
		return;
	if (vsmmu_irq_send(vs, &vs->r.evtq_irq) < 0)
		vsmmu_gerror_raise(vs, GERROR_MSI_EVENTQ_ABT);
}
