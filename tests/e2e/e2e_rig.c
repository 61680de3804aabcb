// SPDX-License-Identifier: Apache-2.0
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/trace.h"
#include "tests/e2e/e2e_rig.h"
#include "vmig/guest_abi.h"
#include "arch/smmuv3.h"

void e2e_require_kvm(void)
{
	sys_require_kvm();
}

double e2e_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

void e2e_boot(struct e2e *e, const char *image, const char *cmdline,
	      const struct devices_config *dc)
{
	e2e_boot_mem(e, image, E2E_MEM, cmdline, dc);
}

void e2e_boot_mem(struct e2e *e, const char *image, uint64_t mem, const char *cmdline,
		  const struct devices_config *dc)
{
	static unsigned boots;
	struct devices_config c = dc ? *dc : (struct devices_config){0};

	memset(e, 0, sizeof(*e));
	trace_init_from_env();
	/* A fresh device name per boot: a failed test's leftovers do not fail the next one. */
	snprintf(e->sdma_name, sizeof(e->sdma_name), "sdma-e2e%u", boots++);
	struct host_platform_config hc = {.sdma_name = e->sdma_name};
	assert_int_equal(host_platform_boot(&hc, &e->hp), 0);
	sys_vm_create(&e->vm, image, mem, 1, VM_DIRTY_AUTO, cmdline);
	e->m = e->vm.m;
	e->ram = guest_mem_ptr(e->m->mem, 0, E2E_MEM);
	assert_non_null(e->ram);
	c.sdma_name = e->sdma_name;
	assert_int_equal(devices_create(e->m, &c, &e->dev), 0);
	e->bar = dc && dc->sdma_bar0_gpa ? dc->sdma_bar0_gpa : VMIG_SDMA_BAR0;
	e->s1 = e2e_s1_create(e->ram + E2E_PT_POOL, E2E_PT_POOL, 2u << 20);
	assert_non_null(e->s1);
}

void e2e_start(struct e2e *e)
{
	assert_int_equal(machine_start(e->m), 0);
}

void e2e_fini(struct e2e *e)
{
	vm_request_stop(e->m->vm, VM_STOP_REQUEST, 0);
	vm_wait_stop(e->m->vm, -1, NULL, NULL);
	devices_destroy(e->dev);
	e2e_s1_destroy(e->s1); /* its tables are in guest RAM: before the machine goes */
	sys_vm_destroy(&e->vm);
	host_platform_shutdown(e->hp);
}

/* MMIO through the VMM's bus: the dispatch a vCPU's exit takes. */
uint64_t e2e_rd(struct e2e *e, uint64_t gpa, unsigned size)
{
	uint64_t v = 0;

	assert_true(bus_access(e->m->bus, BUS_MMIO, gpa, size, false, &v));
	return v;
}

void e2e_wr(struct e2e *e, uint64_t gpa, unsigned size, uint64_t val)
{
	assert_true(bus_access(e->m->bus, BUS_MMIO, gpa, size, true, &val));
}

void *e2e_ptr(struct e2e *e, uint64_t gpa)
{
	return e->ram + gpa;
}

static uint64_t e2e_ld64(struct e2e *e, uint64_t gpa)
{
	uint64_t v;

	memcpy(&v, e->ram + gpa, 8);
	return v;
}

static void e2e_st64(struct e2e *e, uint64_t gpa, uint64_t v)
{
	memcpy(e->ram + gpa, &v, 8);
}

/* vSMMU driver ----------------------------------------------------------------------------- */

static uint32_t smmu_rd32(struct e2e *e, uint32_t off)
{
	return (uint32_t)e2e_rd(e, VMIG_VSMMU_BASE + off, 4);
}

static void smmu_wr32(struct e2e *e, uint32_t off, uint32_t v)
{
	e2e_wr(e, VMIG_VSMMU_BASE + off, 4, v);
}

static void smmu_wr64(struct e2e *e, uint32_t off, uint64_t v)
{
	e2e_wr(e, VMIG_VSMMU_BASE + off, 8, v);
}

static void smmu_cr0(struct e2e *e, uint32_t v)
{
	smmu_wr32(e, SMMU_CR0, v);
	assert_int_equal(smmu_rd32(e, SMMU_CR0ACK), v);
}

uint64_t e2e_cmd_op(unsigned op, uint32_t sid)
{
	return FSET(FSET(0, CMD0_OP, op), CMD0_SID, sid);
}

void e2e_smmu_cmd(struct e2e *e, uint64_t w0, uint64_t w1)
{
	uint32_t idx = e->cmdq_prod & ((1u << E2E_CMDQ_LOG2) - 1);
	uint64_t slot = E2E_CMDQ + (uint64_t)idx * CMD_SIZE;

	e2e_st64(e, slot, w0);
	e2e_st64(e, slot + 8, w1);
	e->cmdq_prod = (e->cmdq_prod + 1) & ((2u << E2E_CMDQ_LOG2) - 1);
}

bool e2e_smmu_sync(struct e2e *e)
{
	e2e_smmu_cmd(e, FSET(e2e_cmd_op(CMD_SYNC, 0), CMD0_SYNC_CS, CMD_SYNC_CS_SEV), 0);
	smmu_wr32(e, SMMU_CMDQ_PROD, e->cmdq_prod);
	/* Commands run inside the PROD write: CONS must have caught up when it returns. */
	uint32_t cons = smmu_rd32(e, SMMU_CMDQ_CONS) & ((2u << E2E_CMDQ_LOG2) - 1);
	return cons == e->cmdq_prod;
}

void e2e_smmu_probe(struct e2e *e)
{
	uint32_t idr0 = smmu_rd32(e, SMMU_IDR0);

	assert_true(FGET(idr0, IDR0_S1P)); /* stage 1 for the guest ... */
	assert_false(idr0 & 1);		   /* ... and the host's stage 2 invisible */
	smmu_cr0(e, 0);
	smmu_wr32(e, SMMU_CR1, 0x5 | (0x5 << 2) | (3 << 4) | (1 << 6) | (1 << 8) | (3 << 10));
	smmu_wr64(e, SMMU_STRTAB_BASE, E2E_STRTAB);
	smmu_wr32(e, SMMU_STRTAB_BASE_CFG, (uint32_t)FSET(0, STRTAB_CFG_LOG2SIZE, E2E_ST_LOG2));
	smmu_wr64(e, SMMU_CMDQ_BASE, E2E_CMDQ | E2E_CMDQ_LOG2);
	smmu_wr32(e, SMMU_CMDQ_PROD, 0);
	smmu_wr32(e, SMMU_CMDQ_CONS, 0);
	smmu_wr64(e, SMMU_EVENTQ_BASE, E2E_EVTQ | E2E_EVTQ_LOG2);
	smmu_wr32(e, SMMU_EVENTQ_PROD, 0);
	smmu_wr32(e, SMMU_EVENTQ_CONS, 0);
	e->cmdq_prod = e->evtq_cons = 0;
	smmu_cr0(e, (uint32_t)(FMASK(CR0_CMDQEN) | FMASK(CR0_EVENTQEN)));
	e2e_smmu_cmd(e, e2e_cmd_op(CMD_CFGI_STE_RANGE, 0), 31);
	e2e_smmu_cmd(e, e2e_cmd_op(CMD_TLBI_NSNH_ALL, 0), 0);
	assert_true(e2e_smmu_sync(e));
	smmu_cr0(e, (uint32_t)(FMASK(CR0_CMDQEN) | FMASK(CR0_EVENTQEN) | FMASK(CR0_SMMUEN)));
}

void e2e_smmu_ste_raw(struct e2e *e, uint32_t sid, uint64_t w0, uint64_t w1)
{
	uint64_t a = E2E_STRTAB + (uint64_t)sid * STE_SIZE;

	memset(e->ram + a, 0, STE_SIZE);
	e2e_st64(e, a + 8, w1);
	e2e_st64(e, a, w0);
	e2e_smmu_cmd(e, e2e_cmd_op(CMD_CFGI_STE, sid), 1);
	assert_true(e2e_smmu_sync(e));
}

void e2e_smmu_ste_s1(struct e2e *e, uint32_t sid, bool stall)
{
	uint64_t cd[8], w0, w1;

	if (!e->cd_gpa)
		e->cd_gpa = e2e_s1_alloc(e->s1, CD_SIZE, 64);
	assert_true(e->cd_gpa != 0);
	e2e_s1_cd(e->s1, 1, stall, cd);
	memcpy(e->ram + e->cd_gpa, cd, sizeof(cd));
	w0 = FSET(FSET(FSET(0, STE0_V, 1), STE0_CONFIG, STE_CFG_S1), STE0_S1CTXPTR, e->cd_gpa >> 6);
	w1 = FSET(FSET(FSET(0, STE1_S1CIR, 1), STE1_S1COR, 1), STE1_S1CSH, 3);
	w1 = FSET(w1, STE1_S1STALLD, !stall);
	e2e_smmu_ste_raw(e, sid, w0, w1);
}

bool e2e_smmu_evt_pop(struct e2e *e, uint64_t evt[4])
{
	uint32_t mask = (2u << E2E_EVTQ_LOG2) - 1;
	uint32_t prod = smmu_rd32(e, SMMU_EVENTQ_PROD);
	uint32_t cons = e->evtq_cons & mask;

	if (((prod ^ cons) & mask) == 0)
		return false;
	uint64_t slot = E2E_EVTQ + (uint64_t)(cons & ((1u << E2E_EVTQ_LOG2) - 1)) * EVT_SIZE;
	for (unsigned i = 0; i < 4; i++)
		evt[i] = e2e_ld64(e, slot + 8 * i);
	e->evtq_cons = ((cons + 1) & mask) | (prod & (uint32_t)FMASK(Q_PROD_OVFLG));
	smmu_wr32(e, SMMU_EVENTQ_CONS, e->evtq_cons);
	return true;
}

int e2e_smmu_evt_wait(struct e2e *e, uint64_t evt[4], int timeout_ms)
{
	double end = e2e_now_us() + timeout_ms * 1000.0;

	do {
		if (e2e_smmu_evt_pop(e, evt))
			return (int)FGET(evt[0], EVT0_ID);
		usleep(200);
	} while (e2e_now_us() < end);
	return -1;
}

uint32_t e2e_smmu_gerror_active(struct e2e *e)
{
	return smmu_rd32(e, SMMU_GERROR) ^ smmu_rd32(e, SMMU_GERRORN);
}

/* Stage 1 ---------------------------------------------------------------------------------- */

void e2e_s1_map_all(struct e2e *e)
{
	assert_int_equal(e2e_s1_map(e->s1, e2e_iova(E2E_RING), E2E_RING, 0x20000), 0);
	assert_int_equal(e2e_s1_map(e->s1, e2e_iova(E2E_SRC), E2E_SRC, E2E_BUF_MAX), 0);
	assert_int_equal(e2e_s1_map(e->s1, e2e_iova(E2E_DST), E2E_DST, E2E_BUF_MAX), 0);
	assert_int_equal(e2e_s1_map(e->s1, E2E_MSI_IOVA, VMIG_MSI_WINDOW, 0x1000), 0);
}

/* sdma driver -------------------------------------------------------------------------- */

static void sdma_wr(struct e2e *e, uint32_t off, uint64_t v)
{
	e2e_wr(e, e->bar + off, 8, v);
}

static uint64_t sdma_rd(struct e2e *e, uint32_t off)
{
	return e2e_rd(e, e->bar + off, 8);
}

void e2e_sdma_setup(struct e2e *e, uint64_t ring_iova, uint64_t msi_iova)
{
	uint64_t cap = sdma_rd(e, SDMA_REG_CAP);

	assert_int_equal(cap & 0xFF, SDMA_VERSION); /* BAR0 reads reach the device */
	sdma_wr(e, SDMA_REG_WQ_BASE, ring_iova);
	assert_int_equal(sdma_rd(e, SDMA_REG_WQ_BASE), ring_iova); /* and writes do */
	sdma_wr(e, SDMA_REG_WQ_CFG, E2E_RING_LOG2);
	if (msi_iova) {
		sdma_wr(e, SDMA_REG_MSI_ADDR, msi_iova);
		sdma_wr(e, SDMA_REG_MSI_DATA, E2E_MSI_DATA);
		sdma_wr(e, SDMA_REG_INT_CTRL, 1);
	}
	sdma_wr(e, SDMA_REG_CTRL, 1);
	assert_true(sdma_rd(e, SDMA_REG_STATUS) & 1);
	e->tail = 0;
}

uint32_t e2e_sdma_queue(struct e2e *e, struct sdma_desc d, uint64_t compl_base_iova)
{
	uint32_t slot = e->tail;

	d.flags |= SDMA_FLAG_CRAV;
	d.compl_addr = compl_base_iova + (uint64_t)slot * sizeof(struct sdma_compl);
	memset(e->ram + E2E_COMPL + (uint64_t)slot * sizeof(struct sdma_compl), 0,
	       sizeof(struct sdma_compl));
	memcpy(e->ram + E2E_RING + (uint64_t)slot * sizeof(d), &d, sizeof(d));
	e->tail = (e->tail + 1) & ((1u << E2E_RING_LOG2) - 1);
	return slot;
}

void e2e_sdma_ring(struct e2e *e)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	e2e_wr(e, e->bar + SDMA_REG_WQ_TAIL, 4, e->tail);
}

struct sdma_compl e2e_sdma_compl(struct e2e *e, uint32_t slot)
{
	struct sdma_compl c;

	memcpy(&c, e->ram + E2E_COMPL + (uint64_t)slot * sizeof(c), sizeof(c));
	return c;
}

unsigned e2e_sdma_wait(struct e2e *e, uint32_t slot, int timeout_ms)
{
	double end = e2e_now_us() + timeout_ms * 1000.0;
	volatile uint8_t *st = e->ram + E2E_COMPL + (uint64_t)slot * sizeof(struct sdma_compl);

	do {
		if (*st)
			return *st;
		usleep(50);
	} while (e2e_now_us() < end);
	return 0;
}

/* Probe, stage 1 for the device, sdma with its MSI to the stage-1 MSI IOVA. */
void e2e_setup_nested(struct e2e *e)
{
	struct devices_stats st0, st1;

	devices_get_stats(e->dev, &st0);
	e2e_smmu_probe(e);
	e2e_s1_map_all(e);
	assert_false(vsmmu_sid_translating(e->dev->vsmmu, VMIG_SDMA_SID));
	e2e_smmu_ste_s1(e, VMIG_SDMA_SID, false);
	devices_get_stats(e->dev, &st1);
	/* The guest's STE became a host nested HWPT for the device. */
	assert_true(st1.nested.hwpt_allocs > st0.nested.hwpt_allocs);
	assert_true(vsmmu_sid_translating(e->dev->vsmmu, VMIG_SDMA_SID));
	e2e_sdma_setup(e, e2e_iova(E2E_RING), E2E_MSI_IOVA);
}
