// SPDX-License-Identifier: Apache-2.0
/* vSMMUv3 instance: creation, identification registers, reset, attributes, entry points. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/trace.h"
#include "vmm/smmuv3/internal.h"

/* IDR5.OAS encodings 0..5 in bits. */
static const unsigned vsmmu_oas_bits[] = {32, 36, 40, 42, 44, 48};

void vsmmu_config_default(struct vsmmu_config *cfg)
{
	cfg->sid_bits = 16;
	cfg->ssid_bits = 20;
	cfg->cmdq_bits = 12;
	cfg->evtq_bits = 12;
	cfg->oas_bits = 48;
	cfg->stall_max = 64;
	cfg->httu = 2;
	cfg->stall = true;
}

static int vsmmu_oas_encode(unsigned bits)
{
	for (unsigned i = 0; i < ARRAY_SIZE(vsmmu_oas_bits); i++)
		if (vsmmu_oas_bits[i] == bits)
			return (int)i;
	return -EINVAL;
}

static bool vsmmu_config_valid(const struct vsmmu_config *c)
{
	return c->sid_bits >= 1 && c->sid_bits <= 32 && c->ssid_bits <= 20 && c->cmdq_bits >= 1 &&
	       c->cmdq_bits <= 19 && c->evtq_bits >= 1 && c->evtq_bits <= 19 && c->stall_max >= 1 &&
	       c->httu <= 2 && c->stall_max <= VSMMU_STALL_MAX &&
	       vsmmu_oas_encode(c->oas_bits) >= 0;
}

/*
 * What the guest is told: stage 1 only (the host's stage 2 stays invisible), AArch64 tables,
 * coherent walks, HTTU AF+dirty, ATS (so ATC_INV is legal), 16-bit ASIDs, MSIs, SEV,
 * 2-level CD and stream tables, little-endian tables, stall+terminate, range invalidation.
 */
static void vsmmu_idr_build(struct vsmmu *vs)
{
	uint64_t v = 0;

	v = FSET(v, IDR0_S1P, 1);
	v = FSET(v, IDR0_TTF, 2);
	v = FSET(v, IDR0_COHACC, 1);
	v = FSET(v, IDR0_HTTU, vs->cfg.httu);
	v = FSET(v, IDR0_ATS, 1);
	v = FSET(v, IDR0_ASID16, 1);
	v = FSET(v, IDR0_MSI, 1);
	v = FSET(v, IDR0_SEV, 1);
	v = FSET(v, IDR0_CD2L, 1);
	v = FSET(v, IDR0_TTENDIAN, 2);
	v = FSET(v, IDR0_STALL_MODEL, vs->cfg.stall ? 0 : 1);
	v = FSET(v, IDR0_ST_LEVEL, 1);
	vs->idr[0] = (uint32_t)v;

	v = FSET(0, IDR1_SIDSIZE, vs->cfg.sid_bits);
	v = FSET(v, IDR1_SSIDSIZE, vs->cfg.ssid_bits);
	v = FSET(v, IDR1_EVENTQS, vs->cfg.evtq_bits);
	v = FSET(v, IDR1_CMDQS, vs->cfg.cmdq_bits);
	vs->idr[1] = (uint32_t)v;
	vs->idr[2] = 0;
	vs->idr[3] = (uint32_t)FSET(0, IDR3_RIL, 1);
	vs->idr[4] = 0;

	v = FSET(0, IDR5_OAS, (unsigned)vsmmu_oas_encode(vs->cfg.oas_bits));
	v = FSET(v, IDR5_GRAN4K, 1);
	v = FSET(v, IDR5_STALL_MAX, vs->cfg.stall_max);
	vs->idr[5] = (uint32_t)v;
}

void vsmmu_regs_reset(struct vsmmu *vs)
{
	memset(&vs->r, 0, sizeof(vs->r));
	/* GBPA resets to "bypass, use incoming shareability" (SHCFG=1), not abort. */
	vs->r.gbpa = (uint32_t)FSET(0, GBPA_SHCFG, 1);
	vs->r.next_stag = 1;
	vs->evtq_irq_pending = false;
	vs->fwd_n = 0;
}

struct vsmmu *vsmmu_create(const struct vsmmu_config *cfg, const struct vsmmu_platform *plat,
			   const struct vsmmu_bridge_ops *bridge, void *bridge_opaque)
{
	struct vsmmu_config def;
	struct vsmmu *vs;

	if (!cfg) {
		vsmmu_config_default(&def);
		cfg = &def;
	}
	if (!plat || !plat->ram_read || !plat->ram_write || !vsmmu_config_valid(cfg))
		return NULL;
	vs = calloc(1, sizeof(*vs));
	if (!vs)
		return NULL;
	pthread_mutex_init(&vs->lock, NULL);
	vs->cfg = *cfg;
	vs->plat = *plat;
	vs->bridge = bridge;
	vs->bridge_opaque = bridge_opaque;
	vsmmu_idr_build(vs);
	vsmmu_regs_reset(vs);
	TRACE(vsmmu_create, "sid_bits=%u ssid_bits=%u cmdq=%u evtq=%u", cfg->sid_bits,
	      cfg->ssid_bits, cfg->cmdq_bits, cfg->evtq_bits);
	return vs;
}

void vsmmu_destroy(struct vsmmu *vs)
{
	if (!vs)
		return;
	pthread_mutex_destroy(&vs->lock);
	free(vs);
}

void vsmmu_set_bridge(struct vsmmu *vs, const struct vsmmu_bridge_ops *bridge, void *opaque)
{
	vsmmu_lock(vs);
	vsmmu_fwd_flush(vs); /* what was gathered belongs to the old bridge */
	vs->bridge = bridge;
	vs->bridge_opaque = opaque;
	vsmmu_unlock(vs);
}

void vsmmu_sid_refresh(struct vsmmu *vs, uint32_t vsid)
{
	vsmmu_lock(vs);
	vsmmu_config_install(vs, vsid, false);
	vsmmu_op_finish(vs);
	vsmmu_unlock(vs);
}

void vsmmu_reset(struct vsmmu *vs)
{
	vsmmu_lock(vs);
	/* Held transactions must not outlive the configuration that stalled them. */
	vsmmu_stall_drop_all(vs);
	vsmmu_regs_reset(vs);
	vsmmu_config_install_all(vs, false);
	vsmmu_op_finish(vs);
	vsmmu_unlock(vs);
	TRACE(vsmmu_reset, "done");
}

void vsmmu_lock(struct vsmmu *vs)
{
	pthread_mutex_lock(&vs->lock);
}

void vsmmu_unlock(struct vsmmu *vs)
{
	pthread_mutex_unlock(&vs->lock);
}

void vsmmu_op_finish(struct vsmmu *vs)
{
	vsmmu_fwd_flush(vs);
	if (vs->evtq_irq_pending) {
		vs->evtq_irq_pending = false;
		vsmmu_irq_evtq(vs);
	}
}

void vsmmu_mmio_read(struct vsmmu *vs, uint64_t offset, unsigned size, uint64_t *val)
{
	vsmmu_lock(vs);
	*val = vsmmu_reg_read(vs, offset, size);
	vsmmu_unlock(vs);
}

void vsmmu_mmio_write(struct vsmmu *vs, uint64_t offset, unsigned size, uint64_t val)
{
	vsmmu_lock(vs);
	vsmmu_reg_write(vs, offset, size, val);
	vsmmu_op_finish(vs);
	vsmmu_unlock(vs);
}

void vsmmu_bus_read(void *vs, uint64_t offset, unsigned size, uint64_t *val)
{
	vsmmu_mmio_read(vs, offset, size, val);
}

void vsmmu_bus_write(void *vs, uint64_t offset, unsigned size, uint64_t val)
{
	vsmmu_mmio_write(vs, offset, size, val);
}

void vsmmu_get_attrs(struct vsmmu *vs, struct vsmmu_attrs *a)
{
	memset(a, 0, sizeof(*a));
	a->input_bits = 48; /* IDR5.VAX = 0: 48-bit stage-1 input */
	a->output_bits = vs->cfg.oas_bits;
	a->ssid_bits = vs->cfg.ssid_bits;
	a->nesting = true;
	a->stall = vs->cfg.stall;
	a->httu_dirty = FGET(vs->idr[0], IDR0_HTTU) >= 2;
}

bool vsmmu_sid_translating(struct vsmmu *vs, uint32_t vsid)
{
	struct vsmmu_ste ste;

	vsmmu_lock(vs);
	vsmmu_config_resolve(vs, vsid, false, &ste);
	vsmmu_unlock(vs);
	return ste.kind == VSMMU_STE_S1;
}

void vsmmu_get_stats(struct vsmmu *vs, struct vsmmu_stats *st)
{
	vsmmu_lock(vs);
	*st = vs->stats;
	vsmmu_unlock(vs);
}
