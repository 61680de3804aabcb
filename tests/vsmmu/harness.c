// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/trace.h"
#include "tests/vsmmu/harness.h"

/* Platform ---------------------------------------------------------------------------- */

static bool th_in_ram(uint64_t gpa, size_t len)
{
	return gpa < TH_RAM_SIZE && len <= TH_RAM_SIZE - gpa;
}

static int th_ram_read(void *opaque, uint64_t gpa, void *buf, size_t len)
{
	struct th *t = opaque;

	if (!th_in_ram(gpa, len)) {
		t->n_ram_faults++;
		return -EFAULT;
	}
	memcpy(buf, t->ram + gpa, len);
	return 0;
}

static int th_ram_write(void *opaque, uint64_t gpa, const void *buf, size_t len)
{
	struct th *t = opaque;

	if (!th_in_ram(gpa, len)) {
		t->n_ram_faults++;
		return -EFAULT;
	}
	if (t->wr_check && (gpa < t->wr_lo || gpa + len > t->wr_hi))
		t->n_wr_unexpected++;
	memcpy(t->ram + gpa, buf, len);
	return 0;
}

static int th_msi_send(void *opaque, uint64_t addr, uint32_t data)
{
	struct th *t = opaque;

	if (addr < TH_MSI_BASE || addr >= TH_MSI_BASE + 0x100000)
		return -ENOENT;
	if (t->n_msi < TH_MAX_LOG)
		t->msi[t->n_msi] = (struct th_msi){addr, data};
	t->n_msi++;
	return 0;
}

static void th_sev(void *opaque)
{
	((struct th *)opaque)->n_sev++;
}

/* Mock bridge ------------------------------------------------------------------------- */

int th_find_sid(const struct th *t, uint32_t sid)
{
	for (unsigned i = 0; i < t->n_sids; i++)
		if (t->sids[i] == sid)
			return (int)i;
	return -1;
}

static bool th_sid_attached(void *opaque, uint32_t sid)
{
	return th_find_sid(opaque, sid) >= 0;
}

static int th_sid_next(void *opaque, uint32_t from, uint32_t *sid)
{
	struct th *t = opaque;
	uint64_t best = UINT64_MAX;

	for (unsigned i = 0; i < t->n_sids; i++)
		if (t->sids[i] >= from && t->sids[i] < best)
			best = t->sids[i];
	if (best == UINT64_MAX)
		return -ENOENT;
	*sid = (uint32_t)best;
	return 0;
}

static int th_ste_install(void *opaque, uint32_t sid, const struct vsmmu_ste *ste)
{
	struct th *t = opaque;
	int i = th_find_sid(t, sid);

	assert_true(i >= 0); /* never called for a stream without a device */
	t->n_installs++;
	if (t->install_ret < 0 && ste->kind != VSMMU_STE_ABORT)
		return t->install_ret;
	t->installed[i] = *ste;
	return 0;
}

static int th_invalidate(void *opaque, const uint64_t (*cmds)[2], size_t n)
{
	struct th *t = opaque;

	t->n_inv_calls++;
	for (size_t i = 0; i < n; i++) {
		if (t->n_inv < TH_MAX_LOG) {
			t->inv[t->n_inv][0] = cmds[i][0];
			t->inv[t->n_inv][1] = cmds[i][1];
		}
		t->n_inv++;
	}
	return 0;
}

static int th_page_response(void *opaque, uint32_t sid, uint32_t cookie, enum vsmmu_resume resp)
{
	struct th *t = opaque;

	if (t->n_resp < TH_MAX_LOG)
		t->resp[t->n_resp] = (struct th_resp){sid, cookie, resp};
	t->n_resp++;
	return 0;
}

const struct vsmmu_bridge_ops th_bridge_ops = {
    .sid_attached = th_sid_attached,
    .sid_next = th_sid_next,
    .ste_install = th_ste_install,
    .invalidate = th_invalidate,
    .page_response = th_page_response,
};

static void th_init_common(struct th *t, const struct vsmmu_config *cfg, bool bridge)
{
	trace_init_from_env(); /* VMIG_TRACE=vsmmu_* to watch a test */
	t->plat = (struct vsmmu_platform){.ram_read = th_ram_read,
					  .ram_write = th_ram_write,
					  .msi_send = th_msi_send,
					  .sev = th_sev,
					  .opaque = t};
	if (cfg)
		t->cfg = *cfg;
	else
		vsmmu_config_default(&t->cfg);
	t->vs = vsmmu_create(&t->cfg, &t->plat, bridge ? &th_bridge_ops : NULL, t);
	assert_non_null(t->vs);
}

void th_init(struct th *t, const struct vsmmu_config *cfg, bool bridge)
{
	memset(t, 0, sizeof(*t));
	t->ram = calloc(1, TH_RAM_SIZE);
	assert_non_null(t->ram);
	t->own_ram = true;
	th_init_common(t, cfg, bridge);
}

void th_init_ram(struct th *t, const struct vsmmu_config *cfg, uint8_t *ram)
{
	memset(t, 0, sizeof(*t));
	t->ram = ram;
	th_init_common(t, cfg, false);
}

void th_fini(struct th *t)
{
	vsmmu_destroy(t->vs);
	if (t->own_ram)
		free(t->ram);
}

void th_attach(struct th *t, uint32_t sid)
{
	assert_true(t->n_sids < TH_MAX_SIDS);
	t->sids[t->n_sids++] = sid;
}

/* MMIO and RAM accessors ------------------------------------------------------------- */

uint32_t th_rd32(struct th *t, uint64_t off)
{
	uint64_t v;

	vsmmu_mmio_read(t->vs, off, 4, &v);
	return (uint32_t)v;
}

uint64_t th_rd64(struct th *t, uint64_t off)
{
	uint64_t v;

	vsmmu_mmio_read(t->vs, off, 8, &v);
	return v;
}

void th_wr32(struct th *t, uint64_t off, uint32_t v)
{
	vsmmu_mmio_write(t->vs, off, 4, v);
}

void th_wr64(struct th *t, uint64_t off, uint64_t v)
{
	vsmmu_mmio_write(t->vs, off, 8, v);
}

uint64_t th_ram_ld64(struct th *t, uint64_t gpa)
{
	uint64_t v;

	memcpy(&v, t->ram + gpa, 8);
	return v;
}

void th_ram_st64(struct th *t, uint64_t gpa, uint64_t v)
{
	memcpy(t->ram + gpa, &v, 8);
}

uint32_t th_ram_ld32(struct th *t, uint64_t gpa)
{
	uint32_t v;

	memcpy(&v, t->ram + gpa, 4);
	return v;
}

/* Driver ------------------------------------------------------------------------------ */

void th_cr0_set(struct th *t, uint32_t cr0)
{
	th_wr32(t, SMMU_CR0, cr0);
	/* The driver polls CR0ACK; the vSMMU acknowledges at once. */
	assert_int_equal(th_rd32(t, SMMU_CR0ACK), cr0);
}

uint64_t th_op(unsigned op, uint32_t sid)
{
	return FSET(FSET(0, CMD0_OP, op), CMD0_SID, sid);
}

uint64_t th_cmd(struct th *t, uint64_t w0, uint64_t w1)
{
	uint32_t idx = t->cmdq_prod & ((1u << t->cmdq_log2) - 1);
	uint64_t slot = TH_CMDQ_GPA + (uint64_t)idx * CMD_SIZE;

	th_ram_st64(t, slot, w0);
	th_ram_st64(t, slot + 8, w1);
	t->cmdq_prod = (t->cmdq_prod + 1) & ((2u << t->cmdq_log2) - 1);
	return slot;
}

void th_kick(struct th *t)
{
	th_wr32(t, SMMU_CMDQ_PROD, t->cmdq_prod);
}

bool th_sync(struct th *t)
{
	uint64_t w0 = FSET(FSET(0, CMD0_OP, CMD_SYNC), CMD0_SYNC_CS, CMD_SYNC_CS_IRQ);
	uint32_t idx = t->cmdq_prod & ((1u << t->cmdq_log2) - 1);
	uint64_t slot = TH_CMDQ_GPA + (uint64_t)idx * CMD_SIZE;

	th_cmd(t, w0, FSET(0, CMD1_SYNC_MSIADDR, slot >> 2));
	th_kick(t);
	return th_ram_ld32(t, slot) == 0;
}

bool th_cmdq_error(struct th *t, unsigned *err)
{
	uint32_t gerror = th_rd32(t, SMMU_GERROR), gerrorn = th_rd32(t, SMMU_GERRORN);

	*err = (unsigned)FGET(th_rd32(t, SMMU_CMDQ_CONS), Q_CONS_ERR);
	return ((gerror ^ gerrorn) >> GERROR_CMDQ_ERR) & 1;
}

static void th_probe_tables(struct th *t)
{
	uint32_t cfg = (uint32_t)FSET(0, STRTAB_CFG_LOG2SIZE, t->st_log2);

	if (t->two_level) {
		cfg = (uint32_t)FSET(cfg, STRTAB_CFG_FMT, STRTAB_FMT_2LVL);
		cfg = (uint32_t)FSET(cfg, STRTAB_CFG_SPLIT, t->st_split);
	}
	th_wr64(t, SMMU_STRTAB_BASE, TH_STRTAB_GPA | FMASK(STRTAB_BASE_RA));
	th_wr32(t, SMMU_STRTAB_BASE_CFG, cfg);
}

void th_driver_probe(struct th *t, bool two_level, unsigned st_log2, unsigned cmdq_log2,
		     unsigned evtq_log2)
{
	t->two_level = two_level;
	t->st_log2 = st_log2;
	t->st_split = 8;
	t->cmdq_log2 = cmdq_log2;
	t->evtq_log2 = evtq_log2;
	t->cmdq_prod = t->evtq_cons = 0;

	th_cr0_set(t, 0);
	th_wr32(t, SMMU_CR1, 0x5 | (0x5 << 2) | (3 << 4) | (1 << 6) | (1 << 8) | (3 << 10));
	th_wr32(t, SMMU_CR2, (uint32_t)FMASK(CR2_RECINVSID));
	th_probe_tables(t);
	th_wr64(t, SMMU_CMDQ_BASE, TH_CMDQ_GPA | cmdq_log2 | FMASK(Q_BASE_RA));
	th_wr32(t, SMMU_CMDQ_PROD, 0);
	th_wr32(t, SMMU_CMDQ_CONS, 0);
	th_cr0_set(t, (uint32_t)FMASK(CR0_CMDQEN));
	th_cmd(t, th_op(CMD_CFGI_STE_RANGE, 0), 31);
	assert_true(th_sync(t));
	th_cmd(t, th_op(CMD_TLBI_NSNH_ALL, 0), 0);
	assert_true(th_sync(t));
	th_wr64(t, SMMU_EVENTQ_BASE, TH_EVTQ_GPA | evtq_log2 | FMASK(Q_BASE_WA));
	th_wr32(t, SMMU_EVENTQ_PROD, 0);
	th_wr32(t, SMMU_EVENTQ_CONS, 0);
	th_cr0_set(t, (uint32_t)(FMASK(CR0_CMDQEN) | FMASK(CR0_EVENTQEN)));
	th_wr64(t, SMMU_GERROR_IRQ_CFG0, TH_MSI_BASE);
	th_wr32(t, SMMU_GERROR_IRQ_CFG1, 0x32);
	th_wr64(t, SMMU_EVENTQ_IRQ_CFG0, TH_MSI_BASE);
	th_wr32(t, SMMU_EVENTQ_IRQ_CFG1, 0x31);
	th_wr32(t, SMMU_IRQ_CTRL,
		(uint32_t)(FMASK(IRQ_CTRL_GERROR_IRQEN) | FMASK(IRQ_CTRL_EVENTQ_IRQEN)));
	assert_int_equal(th_rd32(t, SMMU_IRQ_CTRLACK), th_rd32(t, SMMU_IRQ_CTRL));
	th_cr0_set(t, (uint32_t)(FMASK(CR0_CMDQEN) | FMASK(CR0_EVENTQEN) | FMASK(CR0_SMMUEN)));
}

/* Stream table and CDs ------------------------------------------------------------------ */

/* 2-level: L1 at TH_STRTAB_GPA, L2 tables carved from the rest of the 1 MiB window. */
uint64_t th_ste_addr(struct th *t, uint32_t sid)
{
	uint64_t l1, desc, l2;
	unsigned l2_bytes = (1u << t->st_split) * STE_SIZE;

	if (!t->two_level)
		return TH_STRTAB_GPA + (uint64_t)sid * STE_SIZE;
	l1 = TH_STRTAB_GPA + (uint64_t)(sid >> t->st_split) * 8;
	desc = th_ram_ld64(t, l1);
	if (!FGET(desc, STRTAB_L1_SPAN)) {
		static unsigned next; /* per process is enough: tests reuse the same window */
		l2 = TH_STRTAB_GPA + 0x10000 + (uint64_t)(next++ % 48) * l2_bytes;
		memset(t->ram + l2, 0, l2_bytes);
		desc = FSET(FSET(0, STRTAB_L1_SPAN, t->st_split + 1), STRTAB_L1_L2PTR, l2 >> 6);
		th_ram_st64(t, l1, desc);
	}
	return (FGET(desc, STRTAB_L1_L2PTR) << 6) +
	       (uint64_t)(sid & ((1u << t->st_split) - 1)) * STE_SIZE;
}

void th_ste_write(struct th *t, uint32_t sid, uint64_t w0, uint64_t w1)
{
	uint64_t a = th_ste_addr(t, sid);

	memset(t->ram + a, 0, STE_SIZE);
	th_ram_st64(t, a, w0);
	th_ram_st64(t, a + 8, w1);
}

uint64_t th_ste_s1(uint64_t cd_gpa, unsigned s1fmt, unsigned cdmax)
{
	uint64_t w0 = FSET(0, STE0_V, 1);

	w0 = FSET(w0, STE0_CONFIG, STE_CFG_S1);
	w0 = FSET(w0, STE0_S1FMT, s1fmt);
	w0 = FSET(w0, STE0_S1CTXPTR, cd_gpa >> 6);
	return FSET(w0, STE0_S1CDMAX, cdmax);
}

/* A CD as Linux builds it for a 48-bit, 4 KiB-granule, HA/HD stage-1 domain. */
uint64_t th_cd_w0(uint16_t asid, bool stall)
{
	uint64_t w0 = FSET(0, CD0_T0SZ, 16);

	w0 = FSET(w0, CD0_TG0, 0);
	w0 = FSET(w0, CD0_IR0, 1);
	w0 = FSET(w0, CD0_OR0, 1);
	w0 = FSET(w0, CD0_SH0, 3);
	w0 = FSET(w0, CD0_EPD1, 1);
	w0 = FSET(w0, CD0_V, 1);
	w0 = FSET(w0, CD0_IPS, 5);
	w0 = FSET(w0, CD0_AA64, 1);
	w0 = FSET(w0, CD0_HD, 1);
	w0 = FSET(w0, CD0_HA, 1);
	w0 = FSET(w0, CD0_S, stall);
	w0 = FSET(w0, CD0_R, 1);
	w0 = FSET(w0, CD0_A, 1);
	w0 = FSET(w0, CD0_ASET, 1);
	return FSET(w0, CD0_ASID, asid);
}

void th_cd_write(struct th *t, uint64_t gpa, uint64_t w0, uint64_t ttb0)
{
	memset(t->ram + gpa, 0, CD_SIZE);
	th_ram_st64(t, gpa, w0);
	th_ram_st64(t, gpa + 8, FSET(0, CD1_TTB0, ttb0 >> 4));
	th_ram_st64(t, gpa + 24, 0x0000000000FF04ull);
}

/* Events ------------------------------------------------------------------------------- */

bool th_evt_pop(struct th *t, uint64_t evt[4])
{
	uint32_t prod = th_rd32(t, SMMU_EVENTQ_PROD);
	uint32_t mask = (2u << t->evtq_log2) - 1, cons = t->evtq_cons & mask;
	uint64_t slot;

	if (((prod ^ cons) & mask) == 0)
		return false;
	slot = TH_EVTQ_GPA + (uint64_t)(cons & ((1u << t->evtq_log2) - 1)) * EVT_SIZE;
	for (unsigned i = 0; i < 4; i++)
		evt[i] = th_ram_ld64(t, slot + 8 * i);
	cons = (cons + 1) & mask;
	/* Linux copies PROD.OVFLG into CONS.OVACKFLG as it consumes. */
	t->evtq_cons = cons | (prod & (uint32_t)FMASK(Q_PROD_OVFLG));
	th_wr32(t, SMMU_EVENTQ_CONS, t->evtq_cons);
	return true;
}

unsigned th_evt_drain(struct th *t)
{
	uint64_t evt[4];
	unsigned n = 0;

	while (th_evt_pop(t, evt))
		n++;
	return n;
}
