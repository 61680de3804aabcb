/* SPDX-License-Identifier: Apache-2.0 */
/* The sdma device's internals, shared by its files (registers, engine, migration, VFIO). */
#ifndef VMIG_HOST_DEV_SDMA_INTERNAL_H
#define VMIG_HOST_DEV_SDMA_INTERNAL_H

#include "host/dev/dma_log.h"
#include "host/dev/sdma.h"
#include "hw/sdma_regs.h"
#include "host/iommu/smmu_dma.h"
#include "host/vfio_drv.h"

#include <pthread.h>

/* The architectural register state: what migrates. */
struct sdma_regs {
	uint64_t ctrl; /* EN only; RESET is an action */
	uint64_t halted;
	uint64_t err;
	uint64_t err_addr;
	uint64_t wq_base;
	uint64_t wq_cfg;
	uint64_t head;
	uint64_t tail;
	uint64_t shadow;
	uint64_t msi_addr;
	uint64_t msi_data;
	uint64_t int_ctrl;
	uint64_t completed;
};

struct sdma {
	struct vfio_device vdev;
	struct sdma_config cfg;
	char name[32];
	uint64_t cap;

	pthread_mutex_t lock; /* registers and engine control; never held across DMA */
	pthread_cond_t cond;  /* signalled when busy drops or progress is made */
	struct sdma_regs regs;
	bool run_allowed;  /* migration: false in P2P, STOP and the saving/resuming stops */
	bool kick_pending; /* a valueless doorbell not yet served (shadow tail to read) */
	bool busy;	   /* the engine is doing DMA with the lock dropped */
	bool inflight;	   /* ... for a descriptor (started, not completed) */
	bool rollback_req; /* a STOP/reset wants an aborted in-flight descriptor put back */
	bool exiting;
	uint64_t rollbacks;
	uint64_t config_gen;	  /* bumped by config register writes (pre-copy dirty data) */
	uint64_t config_gen_sent; /* generation last put in the migration stream */

	int doorbell_fd; /* eventfd: valueless doorbell (KVM ioeventfd) */
	int wake_fd;	 /* eventfd: register writes and control changes */
	pthread_t thread;
	uint8_t *bounce; /* the engine thread's copy buffer, allocated before it starts */
	struct dma_log log;
};

static inline struct sdma *sdma_from_vdev(struct vfio_device *vdev)
{
	return (struct sdma *)((char *)vdev - offsetof(struct sdma, vdev));
}

/* sdma_regs.c */
void sdma_regs_reset(struct sdma *s);
uint64_t sdma_reg_read_locked(struct sdma *s, uint64_t off);
void sdma_reg_write_locked(struct sdma *s, uint64_t off, uint64_t val);
ssize_t sdma_bar_rw(struct sdma *s, uint64_t off, void *buf, size_t len, bool write);
void sdma_record_error_locked(struct sdma *s, unsigned code, uint32_t index, uint64_t addr,
			      bool halt);
uint32_t sdma_wq_size(const struct sdma *s);

/* sdma_engine.c */
int sdma_engine_start(struct sdma *s);
void sdma_engine_stop(struct sdma *s);
void sdma_engine_wake(struct sdma *s);
/* Allows or forbids starting descriptors (the P2P states forbid it). */
void sdma_engine_set_run(struct sdma *s, bool allowed);
/*
 * The P2P states: no descriptor starts, and waits (up to quiesce_ms) until the one in
 * flight finished, its DMA included. One blocked on a stall is left as it is (its DMA
 * goes on once the guest answers; the VMM drains faults before P2P). -ETIMEDOUT when DMA
 * was still going at the bound.
 */
int sdma_engine_hold(struct sdma *s);
/* Forbids starts and waits for all DMA to end; a descriptor blocked past the bound (or at
 * once when hard) is terminated and put back. Called without s->lock. */
void sdma_engine_quiesce(struct sdma *s, bool hard);

/* sdma_mig.c */
int sdma_mig_arc(struct vfio_device *vdev, uint32_t cur, uint32_t next);
int sdma_mig_data_size(struct vfio_device *vdev, uint64_t *len);
void sdma_mig_precopy_refresh(struct vfio_device *vdev);
int sdma_mig_resume_check(struct vfio_device *vdev, const uint8_t *data, size_t len);

#endif
