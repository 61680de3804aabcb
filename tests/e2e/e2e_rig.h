/* SPDX-License-Identifier: Apache-2.0 */
/*
 * End-to-end rig: the modelled host booted (host_platform.h), a KVM machine running a test
 * guest, the devices of src/vmm/devices.h on it, and a small driver that plays the guest's
 * vSMMUv3 and sdma drivers from the test thread: every register access goes through the
 * VMM's bus exactly as a vCPU's MMIO exit would, and every table lives in guest RAM.
 */
#ifndef VMIG_TESTS_E2E_RIG_H
#define VMIG_TESTS_E2E_RIG_H

#include <stdbool.h>
#include <stdint.h>

#include "hw/sdma_regs.h"
#include "tests/e2e/e2e_s1.h"
#include "tests/vmm/sys_util.h"
#include "vmig/host_platform.h"
#include "vmm/devices.h"

#define E2E_MEM	      (64ull << 20)
#define E2E_FLAG      0x200000ull /* the test guest's FLAG dword */
#define E2E_STRTAB    0x2000000ull
#define E2E_ST_LOG2   6
#define E2E_CMDQ      0x2010000ull
#define E2E_CMDQ_LOG2 8
#define E2E_EVTQ      0x2020000ull
#define E2E_EVTQ_LOG2 7
#define E2E_PT_POOL   0x2100000ull /* stage-1 tables and CDs, 2 MiB */
#define E2E_RING      0x2400000ull
#define E2E_RING_LOG2 6
#define E2E_COMPL     0x2410000ull /* 32-byte records, one per ring slot */
#define E2E_SRC	      0x2500000ull
#define E2E_DST	      0x2800000ull
#define E2E_BUF_MAX   (3ull << 20)
#define E2E_IOVA_OFF  0x10000000000ull /* stage 1: IOVA = GPA + this */
#define E2E_MSI_IOVA  0x20000000000ull /* stage 1 maps it to the MSI window */
#define E2E_MSI_DATA  0x30u	       /* the test guest counts vector 0x30 */

struct e2e {
	struct host_platform *hp;
	struct sys_vm vm;
	struct machine *m;
	struct devices *dev;
	uint8_t *ram; /* guest RAM below the hole, VMM view */
	struct e2e_s1 *s1;
	uint64_t cd_gpa;
	uint32_t cmdq_prod, evtq_cons;
	uint32_t tail; /* next sdma ring slot */
	uint64_t bar;  /* where BAR0 is */
	char sdma_name[32];
};

void e2e_require_kvm(void);
/* Host, machine (not started) and devices. dc may be NULL. */
void e2e_boot(struct e2e *e, const char *image, const char *cmdline,
	      const struct devices_config *dc);
/* The same with mem bytes of RAM (at least E2E_MEM). */
void e2e_boot_mem(struct e2e *e, const char *image, uint64_t mem, const char *cmdline,
		  const struct devices_config *dc);
void e2e_start(struct e2e *e);
/* Stops the guest, tears everything down; asserts the host saw no stray MSIs. */
void e2e_fini(struct e2e *e);

uint64_t e2e_rd(struct e2e *e, uint64_t gpa, unsigned size);
void e2e_wr(struct e2e *e, uint64_t gpa, unsigned size, uint64_t val);
void *e2e_ptr(struct e2e *e, uint64_t gpa);
double e2e_now_us(void);

/* vSMMU driver (no interrupts: the test guest has handlers for vector 0x30 only). */
void e2e_smmu_probe(struct e2e *e);
void e2e_smmu_cmd(struct e2e *e, uint64_t w0, uint64_t w1);
/* CMD_SYNC CS=SEV and kick: true if it completed (CONS moved past it). */
bool e2e_smmu_sync(struct e2e *e);
uint64_t e2e_cmd_op(unsigned op, uint32_t sid);
/* Stage-1 translation for sid: one CD (ASID 1) over e->s1; CFGI_STE + SYNC. */
void e2e_smmu_ste_s1(struct e2e *e, uint32_t sid, bool stall);
void e2e_smmu_ste_raw(struct e2e *e, uint32_t sid, uint64_t w0, uint64_t w1);
bool e2e_smmu_evt_pop(struct e2e *e, uint64_t evt[4]);
/* Waits up to timeout_ms for an event; its id (EVT0_ID), or -1. */
int e2e_smmu_evt_wait(struct e2e *e, uint64_t evt[4], int timeout_ms);
/* GERROR ^ GERRORN. */
uint32_t e2e_smmu_gerror_active(struct e2e *e);

/* Stage 1 for the sdma buffers: ring, records, src, dst at +E2E_IOVA_OFF, MSI IOVA. */
void e2e_s1_map_all(struct e2e *e);
static inline uint64_t e2e_iova(uint64_t gpa)
{
	return gpa + E2E_IOVA_OFF;
}

/* sdma driver: ring at iova(E2E_RING), completion MSIs to msi_iova (0: none). */
void e2e_sdma_setup(struct e2e *e, uint64_t ring_iova, uint64_t msi_iova);
/* Writes the descriptor at the tail with a completion record; does not ring. Its slot. */
uint32_t e2e_sdma_queue(struct e2e *e, struct sdma_desc d, uint64_t compl_base_iova);
/* Writes TAIL through the bus (the trapped path). */
void e2e_sdma_ring(struct e2e *e);
/* Status of slot's completion record once non-zero (timeout: 0). */
unsigned e2e_sdma_wait(struct e2e *e, uint32_t slot, int timeout_ms);
struct sdma_compl e2e_sdma_compl(struct e2e *e, uint32_t slot);

/* Probe, stage 1 (asserting a nested HWPT appears), sdma with MSIs to E2E_MSI_IOVA. */
void e2e_setup_nested(struct e2e *e);

#endif
