/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test harness for the vSMMUv3: a RAM buffer as guest memory, a recording platform and a
 * mock bridge, and a small "driver" that programs the vSMMU the way Linux's arm-smmu-v3
 * driver does (queues, stream table, commands, event consumption).
 */
#ifndef VMIG_TESTS_VSMMU_HARNESS_H
#define VMIG_TESTS_VSMMU_HARNESS_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/smmuv3/arch.h"
#include "vmm/smmuv3/vsmmu.h"

#define TH_RAM_SIZE   (4ull << 20)
#define TH_MSI_BASE   0xFEE00000ull /* msi_send accepts [base, base + 1 MiB) */
#define TH_STRTAB_GPA 0x100000ull
#define TH_CMDQ_GPA   0x200000ull
#define TH_EVTQ_GPA   0x280000ull
#define TH_CD_GPA     0x300000ull
#define TH_SCRATCH    0x380000ull
#define TH_MAX_LOG    4096
#define TH_MAX_SIDS   8

struct th_msi {
	uint64_t addr;
	uint32_t data;
};

struct th_resp {
	uint32_t sid, cookie;
	enum vsmmu_resume resp;
};

struct th {
	uint8_t *ram;
	bool own_ram;
	struct vsmmu *vs;
	struct vsmmu_platform plat;
	struct vsmmu_config cfg;

	/* Platform records. */
	unsigned n_msi, n_sev, n_ram_faults;
	/* When wr_check: RAM writes outside [wr_lo, wr_hi) are counted as unexpected. */
	bool wr_check;
	uint64_t wr_lo, wr_hi;
	unsigned n_wr_unexpected;
	struct th_msi msi[TH_MAX_LOG];

	/* Mock bridge. */
	uint32_t sids[TH_MAX_SIDS];
	unsigned n_sids;
	struct vsmmu_ste installed[TH_MAX_SIDS];
	unsigned n_installs;
	int install_ret;
	uint64_t inv[TH_MAX_LOG][2];
	unsigned n_inv, n_inv_calls;
	struct th_resp resp[TH_MAX_LOG];
	unsigned n_resp;

	/* Driver state. */
	unsigned cmdq_log2, evtq_log2;
	uint32_t cmdq_prod, evtq_cons;
	bool two_level;
	unsigned st_log2, st_split;
};

extern const struct vsmmu_bridge_ops th_bridge_ops;

/* Creates the instance (cfg NULL: defaults; bridge false: no bridge). */
void th_init(struct th *t, const struct vsmmu_config *cfg, bool bridge);
/* The same over caller-owned guest RAM of TH_RAM_SIZE bytes (a memfd mapping, say). */
void th_init_ram(struct th *t, const struct vsmmu_config *cfg, uint8_t *ram);
void th_fini(struct th *t);
void th_attach(struct th *t, uint32_t sid);
int th_find_sid(const struct th *t, uint32_t sid);

uint32_t th_rd32(struct th *t, uint64_t off);
uint64_t th_rd64(struct th *t, uint64_t off);
void th_wr32(struct th *t, uint64_t off, uint32_t v);
void th_wr64(struct th *t, uint64_t off, uint64_t v);

uint64_t th_ram_ld64(struct th *t, uint64_t gpa);
void th_ram_st64(struct th *t, uint64_t gpa, uint64_t v);
uint32_t th_ram_ld32(struct th *t, uint64_t gpa);

/* Linux-style bring-up: queues, stream table (linear or 2-level), IRQs, SMMUEN. */
void th_driver_probe(struct th *t, bool two_level, unsigned st_log2, unsigned cmdq_log2,
		     unsigned evtq_log2);
void th_cr0_set(struct th *t, uint32_t cr0);

/* Queues a command in the next slot (no kick); returns its slot address. */
uint64_t th_cmd(struct th *t, uint64_t w0, uint64_t w1);
void th_kick(struct th *t);
/* Queues CMD_SYNC CS=IRQ pointing at its own slot with data 0, kicks, returns true if the
 * vSMMU cleared the slot's first word (how Linux knows the sync completed). */
bool th_sync(struct th *t);
bool th_cmdq_error(struct th *t, unsigned *err);

/* Stream table: writes an STE (8 dwords, rest 0), allocating 2-level L2 tables as needed. */
uint64_t th_ste_addr(struct th *t, uint32_t sid);
void th_ste_write(struct th *t, uint32_t sid, uint64_t w0, uint64_t w1);
uint64_t th_ste_s1(uint64_t cd_gpa, unsigned s1fmt, unsigned cdmax);
uint64_t th_cd_w0(uint16_t asid, bool stall);
void th_cd_write(struct th *t, uint64_t gpa, uint64_t w0, uint64_t ttb0);

/* Event queue consumption, as the driver's IRQ thread does: false when empty. */
bool th_evt_pop(struct th *t, uint64_t evt[4]);
unsigned th_evt_drain(struct th *t);

/* Command builders. */
uint64_t th_op(unsigned op, uint32_t sid);

#endif
