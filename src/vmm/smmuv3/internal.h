/* SPDX-License-Identifier: Apache-2.0 */
/* vSMMUv3 internals shared by the files of src/vmm/smmuv3 (not for other modules). */
#ifndef VMIG_VMM_SMMUV3_INTERNAL_H
#define VMIG_VMM_SMMUV3_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "arch/smmuv3.h"
#include "common/util.h"
#include "vmm/smmuv3/vsmmu.h"

/* Writable bits of each register (also what a migration stream may hold). */
#define CR0_WMASK (FMASK(CR0_SMMUEN) | FMASK(CR0_EVENTQEN) | FMASK(CR0_CMDQEN) | FMASK(CR0_ATSCHK))
#define CR1_WMASK 0xFFFu
#define CR2_WMASK (FMASK(CR2_RECINVSID) | FMASK(CR2_PTM))
#define GBPA_WMASK                                                                                 \
	(FMASK(GBPA_MEMATTR) | FMASK(GBPA_MTCFG) | FMASK(GBPA_ALLOCCFG) | FMASK(GBPA_SHCFG) |      \
	 FMASK(GBPA_PRIVCFG) | FMASK(GBPA_INSTCFG) | FMASK(GBPA_ABORT))
#define IRQ_CTRL_WMASK (FMASK(IRQ_CTRL_GERROR_IRQEN) | FMASK(IRQ_CTRL_EVENTQ_IRQEN))
#define GERROR_WMASK                                                                               \
	((1u << GERROR_CMDQ_ERR) | (1u << GERROR_EVENTQ_ABT) | (1u << GERROR_MSI_CMDQ_ABT) |       \
	 (1u << GERROR_MSI_EVENTQ_ABT) | (1u << GERROR_MSI_GERROR_ABT))
#define IRQ_CFG2_WMASK	  (FMASK(IRQ_CFG2_MEMATTR) | FMASK(IRQ_CFG2_SH))
#define STRTAB_BASE_WMASK (FMASK(STRTAB_BASE_ADDR) | FMASK(STRTAB_BASE_RA))
#define STRTAB_CFG_WMASK                                                                           \
	(FMASK(STRTAB_CFG_LOG2SIZE) | FMASK(STRTAB_CFG_SPLIT) | FMASK(STRTAB_CFG_FMT))
#define Q_BASE_WMASK (FMASK(Q_BASE_ADDR) | FMASK(Q_BASE_RA) | FMASK(Q_BASE_LOG2SIZE))

/* Forwarded commands are gathered and handed to the host in batches of this size. */
#define VSMMU_FWD_BATCH 128

/* An MSI source: IRQ_CFG0 (address), CFG1 (data), CFG2 (attributes). */
struct vsmmu_irq_cfg {
	uint64_t addr;
	uint32_t data;
	uint32_t attr;
};

/* A queue as software programs it: BASE, PROD, CONS. */
struct vsmmu_queue {
	uint64_t base;
	uint32_t prod;
	uint32_t cons;
};

struct vsmmu_stall_slot {
	bool used;
	bool ssv;
	uint16_t stag;
	uint32_t vsid;
	uint32_t ssid;
	uint32_t cookie;
};

/* Everything that migrates (see state.c): the registers plus stall bookkeeping. */
struct vsmmu_regs {
	uint32_t cr0, cr1, cr2;
	uint32_t gbpa;
	uint32_t irq_ctrl;
	uint32_t gerror, gerrorn;
	struct vsmmu_irq_cfg gerror_irq, evtq_irq;
	uint64_t strtab_base;
	uint32_t strtab_cfg;
	struct vsmmu_queue cmdq, evtq;
	uint16_t next_stag;
	struct vsmmu_stall_slot stalls[VSMMU_STALL_MAX];
};

#define VSMMU_INST_TRACK 64 /* at least the bridge's devices */

struct vsmmu {
	pthread_mutex_t lock;
	struct vsmmu_config cfg;
	uint32_t idr[6];
	struct vsmmu_platform plat;
	const struct vsmmu_bridge_ops *bridge;
	void *bridge_opaque;
	vsmmu_pre_forward_fn pre_fwd; /* migration: before anything reaches the host */
	void *pre_fwd_opaque;

	struct vsmmu_regs r;

	/* Per operation: an event-queue MSI is due once the operation ends. */
	bool evtq_irq_pending;
	/* Pending forwarded commands (flushed at CMD_SYNC, when full, at batch end). */
	uint64_t fwd[VSMMU_FWD_BATCH][2];
	unsigned fwd_n;

	/* First host resource error (-ENOMEM, -ENOSPC) of an install since post_load started:
	 * not the guest's doing, so post_load fails instead of leaving the stream aborted. */
	int install_resource_err;

	/*
	 * Streams whose last install the host refused (their device aborts): a migration
	 * carries which attached streams were in force, and a destination host that refuses
	 * one of those fails the migration. Bounded like the bridge's device table.
	 */
	struct {
		uint32_t vsid;
		bool used, refused;
	} inst[VSMMU_INST_TRACK];

	struct vsmmu_stats stats;
};

/* vsmmu.c */
void vsmmu_lock(struct vsmmu *vs);
void vsmmu_unlock(struct vsmmu *vs);
/* Ends an operation: flushes forwarded commands and sends a due event-queue MSI. */
void vsmmu_op_finish(struct vsmmu *vs);
void vsmmu_regs_reset(struct vsmmu *vs);

/* queue.c: PROD/CONS arithmetic with the wrap bit at [log2size]. */
unsigned vsmmu_queue_log2size(uint64_t base, unsigned max_bits);
uint32_t vsmmu_queue_ptr_mask(unsigned log2size);
bool vsmmu_queue_empty(uint32_t prod, uint32_t cons, unsigned log2size);
bool vsmmu_queue_full(uint32_t prod, uint32_t cons, unsigned log2size);
uint32_t vsmmu_queue_inc(uint32_t ptr, unsigned log2size);
uint64_t vsmmu_queue_slot(uint64_t base, uint32_t ptr, unsigned log2size, unsigned entry);

/* irq.c */
bool vsmmu_gerror_active(const struct vsmmu *vs, unsigned bit);
void vsmmu_gerror_raise(struct vsmmu *vs, unsigned bit);
/* The 32-bit write of data to addr: guest RAM if it is RAM, else an MSI. */
int vsmmu_msi_write(struct vsmmu *vs, uint64_t addr, uint32_t data);
void vsmmu_irq_evtq(struct vsmmu *vs);

/* evtq.c */
bool vsmmu_evtq_write(struct vsmmu *vs, const uint64_t evt[4]);
void vsmmu_evtq_overflow(struct vsmmu *vs);
void vsmmu_event_config(struct vsmmu *vs, uint8_t id, uint32_t sid, bool ssv, uint32_t ssid,
			uint64_t fetch_addr);

/* strtab.c */
struct vsmmu_ste_raw {
	uint64_t w[STE_DWORDS];
	uint64_t addr; /* where it was read */
};
/* 0, or the event id of the failure (C_BAD_STREAMID, F_STE_FETCH); *fault_addr on fetch. */
int vsmmu_ste_fetch(struct vsmmu *vs, uint32_t sid, struct vsmmu_ste_raw *raw,
		    uint64_t *fault_addr);
/* 0 or C_BAD_STE. */
int vsmmu_ste_decode(struct vsmmu *vs, const struct vsmmu_ste_raw *raw, struct vsmmu_ste *ste);
int vsmmu_cd_fetch(struct vsmmu *vs, const struct vsmmu_ste *ste, uint32_t ssid,
		   uint64_t cd[CD_DWORDS], uint64_t *fault_addr);
int vsmmu_cd_decode(struct vsmmu *vs, const uint64_t w[CD_DWORDS], struct vsmmu_cd *cd);
/* The configuration vsid's device must have now (SMMUEN, GBPA, STE), events on error. */
void vsmmu_config_resolve(struct vsmmu *vs, uint32_t sid, bool report, struct vsmmu_ste *ste);

/* config.c: pushing configurations and invalidations to the bridge. */
/* report: configuration errors become guest events (not when re-installing after load). */
void vsmmu_config_install(struct vsmmu *vs, uint32_t sid, bool report);
unsigned vsmmu_config_install_range(struct vsmmu *vs, uint32_t first, uint64_t count, bool report);
unsigned vsmmu_config_install_all(struct vsmmu *vs, bool report);
void vsmmu_config_check_cd(struct vsmmu *vs, uint32_t sid, bool all, uint32_t ssid);
bool vsmmu_bridge_attached(struct vsmmu *vs, uint32_t sid);
void vsmmu_fwd_queue(struct vsmmu *vs, const uint64_t cmd[2]);
void vsmmu_fwd_flush(struct vsmmu *vs);
/* The migration's pre-forward callback, if any (lock held). */
void vsmmu_pre_forward(struct vsmmu *vs, const uint64_t (*cmds)[2], size_t n, uint32_t ste_sid);
int vsmmu_ste_get(struct vsmmu *vs, uint32_t sid, struct vsmmu_ste *ste, uint64_t *fault_addr);
int vsmmu_cd_lookup_locked(struct vsmmu *vs, uint32_t vsid, bool ssv, uint32_t ssid,
			   struct vsmmu_cd *cd);

/* cmdq.c */
void vsmmu_cmdq_process(struct vsmmu *vs);

/* stall.c */
void vsmmu_stall_resume(struct vsmmu *vs, uint32_t sid, uint16_t stag, enum vsmmu_resume resp);
void vsmmu_stall_terminate(struct vsmmu *vs, uint32_t sid);
void vsmmu_stall_drop_all(struct vsmmu *vs);

/* regs.c */
uint64_t vsmmu_reg_read(struct vsmmu *vs, uint64_t off, unsigned size);
void vsmmu_reg_write(struct vsmmu *vs, uint64_t off, unsigned size, uint64_t val);

#endif
