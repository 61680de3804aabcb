// SPDX-License-Identifier: Apache-2.0
/*
 * The register file: decoding of MMIO offsets and sizes, read values, write side effects.
 * 64-bit registers take 8-byte or 4-byte (half) accesses; 32-bit registers 4-byte ones.
 * Anything else reads as zero and ignores writes.
 */
#include "common/trace.h"
#include "vmm/smmuv3/internal.h"

static bool vsmmu_reg_is64(uint64_t off)
{
	switch (off) {
	case SMMU_GERROR_IRQ_CFG0:
	case SMMU_STRTAB_BASE:
	case SMMU_CMDQ_BASE:
	case SMMU_EVENTQ_BASE:
	case SMMU_EVENTQ_IRQ_CFG0:
	case SMMU_PRIQ_BASE:
	case SMMU_PRIQ_IRQ_CFG0:
		return true;
	default:
		return false;
	}
}

/* Pointer bits a PROD/CONS register can hold for the largest queue this SMMU allows. */
static uint32_t vsmmu_ptr_wmask(unsigned max_bits)
{
	return vsmmu_queue_ptr_mask(max_bits);
}

static uint64_t vsmmu_reg_read64(struct vsmmu *vs, uint64_t off)
{
	switch (off) {
	case SMMU_GERROR_IRQ_CFG0:
		return vs->r.gerror_irq.addr;
	case SMMU_STRTAB_BASE:
		return vs->r.strtab_base;
	case SMMU_CMDQ_BASE:
		return vs->r.cmdq.base;
	case SMMU_EVENTQ_BASE:
		return vs->r.evtq.base;
	case SMMU_EVENTQ_IRQ_CFG0:
		return vs->r.evtq_irq.addr;
	default:
		return 0; /* PRIQ: no PRI */
	}
}

static uint32_t vsmmu_reg_read32(struct vsmmu *vs, uint64_t off)
{
	switch (off) {
	case SMMU_IDR0 ... SMMU_IDR5:
		return vs->idr[off / 4];
	case SMMU_AIDR:
		return 1; /* SMMUv3.1: range invalidation */
	case SMMU_CR0:
	case SMMU_CR0ACK: /* changes take effect at once */
		return vs->r.cr0;
	case SMMU_CR1:
		return vs->r.cr1;
	case SMMU_CR2:
		return vs->r.cr2;
	case SMMU_GBPA:
		return vs->r.gbpa;
	case SMMU_IRQ_CTRL:
	case SMMU_IRQ_CTRLACK:
		return vs->r.irq_ctrl;
	case SMMU_GERROR:
		return vs->r.gerror;
	case SMMU_GERRORN:
		return vs->r.gerrorn;
	case SMMU_GERROR_IRQ_CFG1:
		return vs->r.gerror_irq.data;
	case SMMU_GERROR_IRQ_CFG2:
		return vs->r.gerror_irq.attr;
	case SMMU_STRTAB_BASE_CFG:
		return vs->r.strtab_cfg;
	case SMMU_CMDQ_PROD:
		return vs->r.cmdq.prod;
	case SMMU_CMDQ_CONS:
		return vs->r.cmdq.cons;
	case SMMU_EVENTQ_PROD:
	case SMMU_EVENTQ_PROD_P0:
		return vs->r.evtq.prod;
	case SMMU_EVENTQ_CONS:
	case SMMU_EVENTQ_CONS_P0:
		return vs->r.evtq.cons;
	case SMMU_EVENTQ_IRQ_CFG1:
		return vs->r.evtq_irq.data;
	case SMMU_EVENTQ_IRQ_CFG2:
		return vs->r.evtq_irq.attr;
	default:
		return 0;
	}
}

uint64_t vsmmu_reg_read(struct vsmmu *vs, uint64_t off, unsigned size)
{
	uint64_t v = 0;

	if (off >= SMMU_MMIO_SIZE || (size != 4 && size != 8) || !IS_ALIGNED(off, size))
		v = 0;
	else if (size == 8)
		v = vsmmu_reg_is64(off) ? vsmmu_reg_read64(vs, off) : 0;
	else if (vsmmu_reg_is64(off))
		v = (uint32_t)vsmmu_reg_read64(vs, off);
	else if (off >= 4 && vsmmu_reg_is64(off - 4))
		v = vsmmu_reg_read64(vs, off - 4) >> 32;
	else
		v = vsmmu_reg_read32(vs, off);
	TRACE(vsmmu_mmio_read, "off=%#llx size=%u val=%#llx", (unsigned long long)off, size,
	      (unsigned long long)v);
	return v;
}

static void vsmmu_reg_write64(struct vsmmu *vs, uint64_t off, uint64_t v)
{
	switch (off) {
	case SMMU_GERROR_IRQ_CFG0:
		vs->r.gerror_irq.addr = v & FMASK(IRQ_CFG0_ADDR);
		break;
	case SMMU_STRTAB_BASE:
		/* Table registers are fixed while the SMMU is enabled. */
		if (!FGET(vs->r.cr0, CR0_SMMUEN))
			vs->r.strtab_base = v & STRTAB_BASE_WMASK;
		break;
	case SMMU_CMDQ_BASE:
		if (!FGET(vs->r.cr0, CR0_CMDQEN))
			vs->r.cmdq.base = v & Q_BASE_WMASK;
		break;
	case SMMU_EVENTQ_BASE:
		if (!FGET(vs->r.cr0, CR0_EVENTQEN))
			vs->r.evtq.base = v & Q_BASE_WMASK;
		break;
	case SMMU_EVENTQ_IRQ_CFG0:
		vs->r.evtq_irq.addr = v & FMASK(IRQ_CFG0_ADDR);
		break;
	default:
		break;
	}
}

static void vsmmu_write_cr0(struct vsmmu *vs, uint32_t v)
{
	uint32_t old = vs->r.cr0;

	vs->r.cr0 = v & CR0_WMASK;
	TRACE(vsmmu_cr0, "old=%#x new=%#x", old, vs->r.cr0);
	/*
	 * SMMUEN switches every stream between GBPA and its STE. No events: a driver enables
	 * the SMMU before it has configured its devices' streams.
	 */
	if ((old ^ vs->r.cr0) & FMASK(CR0_SMMUEN))
		vsmmu_config_install_all(vs, false);
	vsmmu_cmdq_process(vs);
}

static void vsmmu_write_gbpa(struct vsmmu *vs, uint32_t v)
{
	uint32_t old = vs->r.gbpa;

	/* Only a write with UPDATE=1 changes GBPA; the update completes at once. */
	if (!FGET(v, GBPA_UPDATE))
		return;
	vs->r.gbpa = v & GBPA_WMASK;
	if (!FGET(vs->r.cr0, CR0_SMMUEN) && ((old ^ vs->r.gbpa) & FMASK(GBPA_ABORT)))
		vsmmu_config_install_all(vs, false);
}

static void vsmmu_write_gerrorn(struct vsmmu *vs, uint32_t v)
{
	bool cmdq_err = vsmmu_gerror_active(vs, GERROR_CMDQ_ERR);

	vs->r.gerrorn = v & GERROR_WMASK;
	TRACE(vsmmu_gerrorn, "gerror=%#x gerrorn=%#x", vs->r.gerror, vs->r.gerrorn);
	/* Acknowledging CMDQ_ERR restarts consumption at CONS (the fixed-up command). */
	if (cmdq_err && !vsmmu_gerror_active(vs, GERROR_CMDQ_ERR))
		vsmmu_cmdq_process(vs);
}

static void vsmmu_write_queue_ptr(struct vsmmu *vs, uint64_t off, uint32_t v)
{
	uint32_t cmask = vsmmu_ptr_wmask(vs->cfg.cmdq_bits);
	uint32_t emask = vsmmu_ptr_wmask(vs->cfg.evtq_bits);

	switch (off) {
	case SMMU_CMDQ_PROD:
		vs->r.cmdq.prod = v & cmask;
		vsmmu_cmdq_process(vs);
		break;
	case SMMU_CMDQ_CONS:
		/* The SMMU owns CONS; software may set it only while the queue is off. */
		if (!FGET(vs->r.cr0, CR0_CMDQEN))
			vs->r.cmdq.cons =
			    (v & cmask) | (uint32_t)(vs->r.cmdq.cons & FMASK(Q_CONS_ERR));
		break;
	case SMMU_EVENTQ_PROD:
	case SMMU_EVENTQ_PROD_P0:
		if (!FGET(vs->r.cr0, CR0_EVENTQEN))
			vs->r.evtq.prod = v & (emask | (uint32_t)FMASK(Q_PROD_OVFLG));
		break;
	case SMMU_EVENTQ_CONS:
	case SMMU_EVENTQ_CONS_P0:
		vs->r.evtq.cons = v & (emask | (uint32_t)FMASK(Q_CONS_OVACKFLG));
		break;
	default:
		break;
	}
}

static void vsmmu_reg_write32(struct vsmmu *vs, uint64_t off, uint32_t v)
{
	switch (off) {
	case SMMU_CR0:
		vsmmu_write_cr0(vs, v);
		break;
	case SMMU_CR1:
		vs->r.cr1 = v & CR1_WMASK;
		break;
	case SMMU_CR2:
		vs->r.cr2 = v & (uint32_t)CR2_WMASK;
		break;
	case SMMU_GBPA:
		vsmmu_write_gbpa(vs, v);
		break;
	case SMMU_IRQ_CTRL:
		vs->r.irq_ctrl = v & (uint32_t)IRQ_CTRL_WMASK;
		break;
	case SMMU_GERRORN:
		vsmmu_write_gerrorn(vs, v);
		break;
	case SMMU_GERROR_IRQ_CFG1:
		vs->r.gerror_irq.data = v;
		break;
	case SMMU_GERROR_IRQ_CFG2:
		vs->r.gerror_irq.attr = v & (uint32_t)IRQ_CFG2_WMASK;
		break;
	case SMMU_STRTAB_BASE_CFG:
		if (!FGET(vs->r.cr0, CR0_SMMUEN))
			vs->r.strtab_cfg = v & (uint32_t)STRTAB_CFG_WMASK;
		break;
	case SMMU_EVENTQ_IRQ_CFG1:
		vs->r.evtq_irq.data = v;
		break;
	case SMMU_EVENTQ_IRQ_CFG2:
		vs->r.evtq_irq.attr = v & (uint32_t)IRQ_CFG2_WMASK;
		break;
	default:
		vsmmu_write_queue_ptr(vs, off, v);
		break;
	}
}

void vsmmu_reg_write(struct vsmmu *vs, uint64_t off, unsigned size, uint64_t v)
{
	TRACE(vsmmu_mmio_write, "off=%#llx size=%u val=%#llx", (unsigned long long)off, size,
	      (unsigned long long)v);
	if (off >= SMMU_MMIO_SIZE || (size != 4 && size != 8) || !IS_ALIGNED(off, size))
		return;
	if (size == 8) {
		if (vsmmu_reg_is64(off))
			vsmmu_reg_write64(vs, off, v);
	} else if (vsmmu_reg_is64(off)) {
		vsmmu_reg_write64(vs, off,
				  (vsmmu_reg_read64(vs, off) & ~0xFFFFFFFFull) | (uint32_t)v);
	} else if (off >= 4 && vsmmu_reg_is64(off - 4)) {
		vsmmu_reg_write64(vs, off - 4,
				  (vsmmu_reg_read64(vs, off - 4) & 0xFFFFFFFFull) | (v << 32));
	} else {
		vsmmu_reg_write32(vs, off, (uint32_t)v);
	}
}
