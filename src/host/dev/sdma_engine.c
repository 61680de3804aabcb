// SPDX-License-Identifier: Apache-2.0
/*
 * The sdma engine: one thread that sleeps in poll() on the doorbell eventfd and a wake
 * eventfd, and runs descriptors in ring order while it may start them. All memory accesses
 * are DMA through the host SMMU with the device's StreamID (and the WQ PASID); every DMA
 * write is logged by its IOVA when DMA logging is on. The device lock is never held across
 * DMA, so a descriptor blocked on a stalled translation leaves registers and migration
 * control responsive; it stays "in flight" until the stall is answered.
 */
#include "common/crc32c.h"
#include "host/dev/sdma_internal.h"
#include "host/iommu/smmu.h"

#include "common/trace.h"
#include "common/util.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define ENGINE_BOUNCE (64u * 1024u) /* read chunk for COMPARE and CRC32C */

void sdma_engine_wake(struct sdma *s)
{
	eventfd_write(s->wake_fd, 1);
}

static bool engine_can_start_locked(struct sdma *s)
{
	return (s->regs.ctrl & 1) && !s->regs.halted && s->run_allowed && !s->exiting;
}

/* Transaction attributes for the work queue: StreamID, PASID if valid, blocking. */
static struct smmu_dma_txn engine_txn_locked(struct sdma *s, bool block)
{
	struct smmu_dma_txn t = {.sid = s->cfg.sid};

	if (FIELD_GET(s->regs.wq_cfg, SDMA_WQ_CFG_PASID_V_SHIFT, SDMA_WQ_CFG_PASID_V_WIDTH)) {
		t.ssid = (uint32_t)FIELD_GET(s->regs.wq_cfg, SDMA_WQ_CFG_PASID_SHIFT,
					     SDMA_WQ_CFG_PASID_WIDTH);
		t.flags |= SMMU_DMA_SSV;
	}
	if (block)
		t.flags |= SMMU_DMA_BLOCK_ON_STALL;
	return t;
}

/* DMA writes, logged by the IOVA the device emitted for the bytes actually written. */
static void engine_write(struct sdma *s, const struct smmu_dma_txn *t, uint64_t iova,
			 const void *buf, size_t len, struct smmu_dma_result *r)
{
	if (smmu_dma_write(s->cfg.smmu, t, iova, buf, len, r) < 0)
		*r = (struct smmu_dma_result){.status = SMMU_DMA_ABORTED, .fault_iova = iova};
	dma_log_mark(&s->log, iova, r->status == SMMU_DMA_OK ? len : r->done);
}

static void engine_read(struct sdma *s, const struct smmu_dma_txn *t, uint64_t iova, void *buf,
			size_t len, struct smmu_dma_result *r)
{
	if (smmu_dma_read(s->cfg.smmu, t, iova, buf, len, r) < 0)
		*r = (struct smmu_dma_result){.status = SMMU_DMA_ABORTED, .fault_iova = iova};
}

/* Fills c from a failed transfer that had already done `base` bytes of the operation. */
static void compl_from_fault(struct sdma_compl *c, const struct smmu_dma_result *r, uint64_t base,
			     bool write)
{
	TRACE(sdma_fault, "[%u] iova=%#llx status=%d event=%#x done=%#llx write=%d", c->index,
	      (unsigned long long)r->fault_iova, r->status, r->event_id,
	      (unsigned long long)(base + r->done), write);
	c->bytes_completed = base + r->done;
	c->fault_addr = r->fault_iova;
	c->fault_info = write ? SDMA_FAULT_INFO_WRITE : 0;
	switch (r->status) {
	case SMMU_DMA_ABORTED:
		c->status = SDMA_STATUS_ABORTED;
		break;
	case SMMU_DMA_BUS_ERROR:
		c->fault_info |= SDMA_FAULT_INFO_BUS;
		c->status = SDMA_STATUS_PAGE_FAULT;
		break;
	default:
		c->status = SDMA_STATUS_PAGE_FAULT;
		break;
	}
}

/* A stall the caller chose not to wait for: give it back to the SMMU, report a fault. */
static void engine_drop_stall(struct sdma *s, struct smmu_dma_result *r)
{
	if (r->status == SMMU_DMA_STALLED) {
		smmu_dma_terminate_stalls(s->cfg.smmu, s->cfg.sid);
		r->status = SMMU_DMA_FAULT;
	}
}

static bool desc_valid(const struct sdma *s, const struct sdma_desc *d)
{
	uint64_t max =
	    1ull << FIELD_GET(s->cap, SDMA_CAP_XFER_LOG2_MAX_SHIFT, SDMA_CAP_XFER_LOG2_MAX_WIDTH);

	if (d->opcode >= SDMA_OP_COUNT || (d->flags & ~SDMA_FLAGS_ALL))
		return false;
	if ((d->flags & SDMA_FLAG_BOF) &&
	    !FIELD_GET(s->cap, SDMA_CAP_BOF_SHIFT, SDMA_CAP_BOF_WIDTH))
		return false;
	if (d->rsvd0 || d->rsvd1 || d->rsvd2[0] || d->rsvd2[1])
		return false;
	if ((d->flags & SDMA_FLAG_CRAV) && !IS_ALIGNED(d->compl_addr, sizeof(struct sdma_compl)))
		return false;
	if (d->opcode == SDMA_OP_NOOP)
		return true;
	return d->size != 0 && d->size <= max;
}

static void op_memmove(struct sdma *s, const struct smmu_dma_txn *t, const struct sdma_desc *d,
		       struct sdma_compl *c)
{
	struct smmu_dma_result r = {0};

	if (smmu_dma_copy(s->cfg.smmu, t, d->dst, d->src, d->size, &r) < 0)
		r = (struct smmu_dma_result){.status = SMMU_DMA_ABORTED, .fault_iova = d->src};
	engine_drop_stall(s, &r);
	/* An overlapping move that stopped part-way wrote its tail: log all it may have. */
	bool backward = d->dst > d->src && d->dst - d->src < d->size;
	dma_log_mark(&s->log, d->dst, r.status == SMMU_DMA_OK || backward ? d->size : r.done);
	if (r.status != SMMU_DMA_OK) {
		bool wr = r.fault_iova - d->dst < d->size;

		compl_from_fault(c, &r, 0, wr);
		return;
	}
	c->bytes_completed = d->size;
}

static void op_fill(struct sdma *s, const struct smmu_dma_txn *t, const struct sdma_desc *d,
		    struct sdma_compl *c)
{
	struct smmu_dma_result r = {0};

	if (smmu_dma_fill(s->cfg.smmu, t, d->dst, d->pattern, d->size, &r) < 0)
		r = (struct smmu_dma_result){.status = SMMU_DMA_ABORTED, .fault_iova = d->dst};
	engine_drop_stall(s, &r);
	dma_log_mark(&s->log, d->dst, r.status == SMMU_DMA_OK ? d->size : r.done);
	if (r.status != SMMU_DMA_OK) {
		compl_from_fault(c, &r, 0, true);
		return;
	}
	c->bytes_completed = d->size;
}

/* Reads one chunk of an operand; false (and c filled) on a fault. */
static bool op_read_chunk(struct sdma *s, const struct smmu_dma_txn *t, uint64_t iova, void *buf,
			  size_t len, uint64_t base, struct sdma_compl *c)
{
	struct smmu_dma_result r = {0};

	engine_read(s, t, iova, buf, len, &r);
	engine_drop_stall(s, &r);
	if (r.status == SMMU_DMA_OK)
		return true;
	compl_from_fault(c, &r, base, false);
	return false;
}

static uint64_t first_difference(const uint8_t *a, const uint8_t *b, size_t len)
{
	size_t i = 0;

	while (i < len && a[i] == b[i])
		i++;
	return i;
}

static void op_compare(struct sdma *s, const struct smmu_dma_txn *t, const struct sdma_desc *d,
		       struct sdma_compl *c, uint8_t *bounce)
{
	uint8_t *a = bounce, *b = bounce + ENGINE_BOUNCE;

	for (uint64_t off = 0; off < d->size; off += ENGINE_BOUNCE) {
		size_t n = (size_t)MIN((uint64_t)ENGINE_BOUNCE, d->size - off);
		uint64_t diff;

		if (!op_read_chunk(s, t, d->src + off, a, n, off, c) ||
		    !op_read_chunk(s, t, d->dst + off, b, n, off, c))
			return;
		diff = first_difference(a, b, n);
		if (diff < n) {
			c->result = 1;
			c->bytes_completed = off + diff;
			return;
		}
	}
	c->bytes_completed = d->size;
}

static void op_crc32c(struct sdma *s, const struct smmu_dma_txn *t, const struct sdma_desc *d,
		      struct sdma_compl *c, uint8_t *bounce)
{
	uint32_t crc = (uint32_t)d->pattern;

	for (uint64_t off = 0; off < d->size; off += ENGINE_BOUNCE) {
		size_t n = (size_t)MIN((uint64_t)ENGINE_BOUNCE, d->size - off);

		if (!op_read_chunk(s, t, d->src + off, bounce, n, off, c)) {
			c->result = crc; /* the CRC of the bytes before the fault */
			return;
		}
		crc = crc32c(crc, bounce, n);
	}
	c->result = crc;
	c->bytes_completed = d->size;
}

static void desc_execute(struct sdma *s, const struct smmu_dma_txn *t, const struct sdma_desc *d,
			 struct sdma_compl *c, uint8_t *bounce)
{
	c->status = SDMA_STATUS_SUCCESS;
	switch (d->opcode) {
	case SDMA_OP_NOOP:
		break;
	case SDMA_OP_MEMMOVE:
		op_memmove(s, t, d, c);
		break;
	case SDMA_OP_FILL:
		op_fill(s, t, d, c);
		break;
	case SDMA_OP_COMPARE:
		op_compare(s, t, d, c, bounce);
		break;
	case SDMA_OP_CRC32C:
		op_crc32c(s, t, d, c, bounce);
		break;
	}
}

/* Completion record and interrupt (both DMA writes); failures go to the error record. */
static void desc_complete(struct sdma *s, const struct smmu_dma_txn *t, const struct sdma_desc *d,
			  const struct sdma_compl *c)
{
	struct smmu_dma_result r = {0};
	uint32_t data;
	uint64_t msi;
	bool irq;

	if (d->flags & SDMA_FLAG_CRAV) {
		engine_write(s, t, d->compl_addr, c, sizeof(*c), &r);
		engine_drop_stall(s, &r);
		if (r.status != SMMU_DMA_OK) {
			pthread_mutex_lock(&s->lock);
			sdma_record_error_locked(s, SDMA_ERR_COMPL_WRITE, c->index, r.fault_iova,
						 false);
			pthread_mutex_unlock(&s->lock);
		}
	}
	pthread_mutex_lock(&s->lock);
	irq = (d->flags & SDMA_FLAG_RCI) && (s->regs.int_ctrl & 1);
	msi = s->regs.msi_addr;
	data = (uint32_t)s->regs.msi_data;
	pthread_mutex_unlock(&s->lock);
	if (!irq)
		return;
	engine_write(s, t, msi, &data, sizeof(data), &r);
	engine_drop_stall(s, &r);
	TRACE(sdma_msi, "%s: msi iova=%#llx data=%#x status=%d", s->name, (unsigned long long)msi,
	      data, r.status);
	if (r.status != SMMU_DMA_OK) {
		pthread_mutex_lock(&s->lock);
		sdma_record_error_locked(s, SDMA_ERR_MSI_WRITE, c->index, r.fault_iova, false);
		pthread_mutex_unlock(&s->lock);
	}
}

/* Ends a busy period: the quiescers and idle waiters look at busy/inflight. */
static void engine_unbusy_locked(struct sdma *s)
{
	s->busy = false;
	s->inflight = false;
	pthread_cond_broadcast(&s->cond);
}

/* Serves a valueless doorbell: the tail comes from the shadow location. */
static void engine_fetch_shadow_locked(struct sdma *s)
{
	struct smmu_dma_txn t = engine_txn_locked(s, false);
	uint64_t addr = s->regs.shadow & SDMA_WQ_SHADOW_ADDR_MASK;
	struct smmu_dma_result r = {0};
	uint32_t tail = 0;

	s->kick_pending = false;
	TRACE(sdma_doorbell, "%s: valueless kick, shadow=%#llx", s->name,
	      (unsigned long long)s->regs.shadow);
	if (!(s->regs.shadow & 1))
		return;
	s->busy = true;
	pthread_mutex_unlock(&s->lock);
	engine_read(s, &t, addr, &tail, sizeof(tail), &r);
	engine_drop_stall(s, &r);
	pthread_mutex_lock(&s->lock);
	engine_unbusy_locked(s);
	if (r.status != SMMU_DMA_OK)
		sdma_record_error_locked(s, SDMA_ERR_SHADOW_READ, 0, addr, true);
	else if (tail >= sdma_wq_size(s))
		sdma_record_error_locked(s, SDMA_ERR_TAIL_RANGE, tail, addr, true);
	else
		s->regs.tail = tail;
}

/* Reads ring slot idx (lock not held); a failed fetch halts the queue and returns false
 * with the lock held, as the caller expects on every return. */
static bool engine_fetch(struct sdma *s, const struct smmu_dma_txn *t, uint32_t idx, uint64_t addr,
			 struct sdma_desc *d)
{
	struct smmu_dma_result r = {0};

	engine_read(s, t, addr, d, sizeof(*d), &r);
	engine_drop_stall(s, &r);
	if (r.status == SMMU_DMA_OK)
		return true;
	pthread_mutex_lock(&s->lock);
	sdma_record_error_locked(s, SDMA_ERR_WQ_FETCH, idx, r.fault_iova, true);
	engine_unbusy_locked(s);
	return false;
}

/*
 * Whether a descriptor a STOP terminated may simply run again later. Not an overlapping
 * MEMMOVE: part of its source may already be overwritten, and a rerun would copy that. It
 * completes ABORTED instead (the guest sees the terminated transfer).
 */
static bool desc_rerunnable(const struct sdma_desc *d)
{
	bool overlap = d->dst > d->src ? d->dst - d->src < d->size : d->src - d->dst < d->size;

	return d->opcode != SDMA_OP_MEMMOVE || !overlap || d->dst == d->src;
}

/* Runs the descriptor at HEAD: fetch, execute, complete; the lock is dropped meanwhile. */
static void engine_run_one_locked(struct sdma *s, uint8_t *bounce)
{
	uint32_t idx = (uint32_t)s->regs.head;
	uint64_t addr = s->regs.wq_base + (uint64_t)idx * sizeof(struct sdma_desc);
	struct smmu_dma_txn fetch = engine_txn_locked(s, false), t;
	struct sdma_compl c = {.index = idx};
	struct sdma_desc d;

	s->busy = s->inflight = true;
	pthread_mutex_unlock(&s->lock);
	if (!engine_fetch(s, &fetch, idx, addr, &d))
		return;
	pthread_mutex_lock(&s->lock);
	t = engine_txn_locked(s, d.flags & SDMA_FLAG_BOF);
	pthread_mutex_unlock(&s->lock);
	if (desc_valid(s, &d))
		desc_execute(s, &t, &d, &c, bounce);
	else
		c.status = SDMA_STATUS_INVALID;
	TRACE(sdma_desc, "%s: [%u] op=%u size=%#llx status=%u done=%#llx", s->name, idx, d.opcode,
	      (unsigned long long)d.size, c.status, (unsigned long long)c.bytes_completed);
	pthread_mutex_lock(&s->lock);
	if (s->rollback_req && c.status == SDMA_STATUS_ABORTED && desc_rerunnable(&d)) {
		/* Terminated by a STOP: no completion; HEAD stays so it runs again later. */
		s->rollbacks++;
		TRACE(sdma_rollback, "%s: [%u] put back", s->name, idx);
		engine_unbusy_locked(s);
		return;
	}
	pthread_mutex_unlock(&s->lock);
	desc_complete(s, &t, &d, &c);
	pthread_mutex_lock(&s->lock);
	s->regs.head = (idx + 1) & (sdma_wq_size(s) - 1);
	s->regs.completed++;
	engine_unbusy_locked(s);
}

static void engine_run_locked(struct sdma *s, uint8_t *bounce)
{
	while (engine_can_start_locked(s)) {
		if (s->kick_pending) {
			engine_fetch_shadow_locked(s);
			continue;
		}
		if (s->regs.head == s->regs.tail)
			break;
		engine_run_one_locked(s, bounce);
	}
	pthread_cond_broadcast(&s->cond);
}

static void *engine_main(void *arg)
{
	struct sdma *s = arg;
	uint8_t *bounce = s->bounce;
	struct pollfd pfd[2] = {{.fd = s->doorbell_fd, .events = POLLIN},
				{.fd = s->wake_fd, .events = POLLIN}};

	for (;;) {
		eventfd_t v;

		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		pthread_mutex_lock(&s->lock);
		if ((pfd[0].revents & POLLIN) && eventfd_read(s->doorbell_fd, &v) == 0)
			s->kick_pending = true;
		if (pfd[1].revents & POLLIN)
			eventfd_read(s->wake_fd, &v);
		if (s->exiting) {
			pthread_mutex_unlock(&s->lock);
			break;
		}
		engine_run_locked(s, bounce);
		pthread_mutex_unlock(&s->lock);
	}
	return NULL;
}

/*
 * The bounce buffer is allocated here, not by the thread: a thread that failed to get it
 * would leave a device that accepts work and never runs it; here it fails creation.
 */
int sdma_engine_start(struct sdma *s)
{
	s->bounce = malloc(2 * ENGINE_BOUNCE);
	s->doorbell_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (!s->bounce || s->doorbell_fd < 0 || s->wake_fd < 0)
		goto fail;
	if (pthread_create(&s->thread, NULL, engine_main, s) != 0)
		goto fail;
	return 0;
fail:
	if (s->doorbell_fd >= 0)
		close(s->doorbell_fd);
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	free(s->bounce);
	s->bounce = NULL;
	return -ENOMEM;
}

void sdma_engine_stop(struct sdma *s)
{
	sdma_engine_quiesce(s, true);
	pthread_mutex_lock(&s->lock);
	s->exiting = true;
	pthread_mutex_unlock(&s->lock);
	sdma_engine_wake(s);
	pthread_join(s->thread, NULL);
	close(s->doorbell_fd);
	close(s->wake_fd);
	free(s->bounce);
	s->bounce = NULL;
}

void sdma_engine_set_run(struct sdma *s, bool allowed)
{
	TRACE(sdma_engine_run, "%s: %s", s->name, allowed ? "starts allowed" : "no new starts");
	pthread_mutex_lock(&s->lock);
	s->run_allowed = allowed;
	pthread_mutex_unlock(&s->lock);
	if (allowed)
		sdma_engine_wake(s);
}

/* Waits for !busy until deadline; false on timeout. */
static bool engine_wait_unbusy_locked(struct sdma *s, const struct timespec *deadline)
{
	while (s->busy) {
		if (!deadline)
			pthread_cond_wait(&s->cond, &s->lock);
		else if (pthread_cond_timedwait(&s->cond, &s->lock, deadline) == ETIMEDOUT)
			return !s->busy;
	}
	return true;
}

/*
 * Blocked on a stall, the descriptor does no DMA until the fault is answered: that is the
 * VMM's to drain before it asks for P2P (MIGRATION.md), and waiting here cannot help.
 */
static bool engine_blocked_on_fault(struct sdma *s)
{
	return smmu_stalls_outstanding(s->cfg.smmu) > 0;
}

int sdma_engine_hold(struct sdma *s)
{
	struct timespec dl = realtime_after_ms(s->cfg.quiesce_ms), step;
	bool timed_out = false;

	pthread_mutex_lock(&s->lock);
	s->run_allowed = false;
	while (s->busy && !engine_blocked_on_fault(s) && !timed_out) {
		step = realtime_after_ms(1);
		pthread_cond_timedwait(&s->cond, &s->lock, &step);
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		timed_out = now.tv_sec > dl.tv_sec ||
			    (now.tv_sec == dl.tv_sec && now.tv_nsec >= dl.tv_nsec);
	}
	bool idle = !s->busy;
	pthread_mutex_unlock(&s->lock);
	TRACE(sdma_engine_run, "%s: no new starts, %s", s->name,
	      idle	  ? "nothing in flight"
	      : timed_out ? "DMA still in flight"
			  : "blocked on a fault");
	return timed_out && !idle ? -ETIMEDOUT : 0;
}

void sdma_engine_quiesce(struct sdma *s, bool hard)
{
	struct timespec dl = realtime_after_ms(hard ? 0 : s->cfg.quiesce_ms);

	pthread_mutex_lock(&s->lock);
	s->run_allowed = false;
	while (!engine_wait_unbusy_locked(s, &dl)) {
		/* Blocked (most likely on a stall nobody answers): terminate and put it back. */
		s->rollback_req = true;
		pthread_mutex_unlock(&s->lock);
		smmu_dma_terminate_stalls(s->cfg.smmu, s->cfg.sid);
		pthread_mutex_lock(&s->lock);
		dl = realtime_after_ms(10);
	}
	s->rollback_req = false;
	pthread_mutex_unlock(&s->lock);
	TRACE(sdma_quiesced, "%s: hard=%d", s->name, hard);
}

void sdma_get_stats(struct sdma *s, struct sdma_stats *st)
{
	pthread_mutex_lock(&s->lock);
	st->inflight = s->inflight ? 1 : 0;
	st->pending = (uint32_t)((s->regs.tail - s->regs.head) & (sdma_wq_size(s) - 1));
	st->completed = s->regs.completed;
	st->rollbacks = s->rollbacks;
	pthread_mutex_unlock(&s->lock);
}

int sdma_wait_idle(struct sdma *s, unsigned timeout_ms)
{
	struct timespec dl = realtime_after_ms(timeout_ms);
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	while (s->busy || s->kick_pending ||
	       (engine_can_start_locked(s) && s->regs.head != s->regs.tail)) {
		if (pthread_cond_timedwait(&s->cond, &s->lock, &dl) == ETIMEDOUT) {
			ret = -ETIMEDOUT;
			break;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}
