// SPDX-License-Identifier: Apache-2.0
/* sdma BAR0: register reads and writes, their side effects, and the error record. */
#include "host/dev/sdma_internal.h"

#include "common/trace.h"
#include "common/util.h"

#include <errno.h>
#include <string.h>

uint32_t sdma_wq_size(const struct sdma *s)
{
	return 1u << FIELD_GET(s->regs.wq_cfg, SDMA_WQ_CFG_LOG2_SIZE_SHIFT,
			       SDMA_WQ_CFG_LOG2_SIZE_WIDTH);
}

void sdma_regs_reset(struct sdma *s)
{
	memset(&s->regs, 0, sizeof(s->regs));
	s->kick_pending = false;
	s->config_gen++;
}

void sdma_record_error_locked(struct sdma *s, unsigned code, uint32_t index, uint64_t addr,
			      bool halt)
{
	TRACE(sdma_error, "%s: code=%u index=%u addr=%#llx halt=%d", s->name, code, index,
	      (unsigned long long)addr, halt);
	if (!FIELD_GET(s->regs.err, SDMA_ERR_VALID_SHIFT, SDMA_ERR_VALID_WIDTH)) {
		uint64_t e = FIELD_SET(0, SDMA_ERR_CODE_SHIFT, SDMA_ERR_CODE_WIDTH, code);

		e = FIELD_SET(e, SDMA_ERR_VALID_SHIFT, SDMA_ERR_VALID_WIDTH, 1);
		s->regs.err = FIELD_SET(e, SDMA_ERR_INDEX_SHIFT, SDMA_ERR_INDEX_WIDTH, index);
		s->regs.err_addr = addr;
	}
	if (halt)
		s->regs.halted = 1;
}

static uint64_t reg_status_locked(struct sdma *s)
{
	bool en = s->regs.ctrl & 1;
	/*
	 * Nothing in flight and nothing the device would start by itself: no DMA under way
	 * (a shadow-tail read included), no doorbell it has yet to read, and an empty ring or
	 * a queue that cannot run. A VMM draining the device before migration waits for this.
	 */
	bool stuck = !en || s->regs.halted;
	bool idle = !s->busy && !s->inflight &&
		    (stuck || (s->regs.head == s->regs.tail && !s->kick_pending));
	uint64_t v = FIELD_SET(0, SDMA_STATUS_EN_SHIFT, SDMA_STATUS_EN_WIDTH, en);

	v = FIELD_SET(v, SDMA_STATUS_HALTED_SHIFT, SDMA_STATUS_HALTED_WIDTH, s->regs.halted);
	return FIELD_SET(v, SDMA_STATUS_IDLE_SHIFT, SDMA_STATUS_IDLE_WIDTH, idle);
}

uint64_t sdma_reg_read_locked(struct sdma *s, uint64_t off)
{
	switch (off) {
	case SDMA_REG_CAP:
		return s->cap;
	case SDMA_REG_CTRL:
		return s->regs.ctrl;
	case SDMA_REG_STATUS:
		return reg_status_locked(s);
	case SDMA_REG_ERR:
		return s->regs.err;
	case SDMA_REG_ERR_ADDR:
		return s->regs.err_addr;
	case SDMA_REG_WQ_BASE:
		return s->regs.wq_base;
	case SDMA_REG_WQ_CFG:
		return s->regs.wq_cfg;
	case SDMA_REG_WQ_HEAD:
		return s->regs.head;
	case SDMA_REG_WQ_TAIL:
		return s->regs.tail;
	case SDMA_REG_WQ_SHADOW:
		return s->regs.shadow;
	case SDMA_REG_MSI_ADDR:
		return s->regs.msi_addr;
	case SDMA_REG_MSI_DATA:
		return s->regs.msi_data;
	case SDMA_REG_INT_CTRL:
		return s->regs.int_ctrl;
	case SDMA_REG_COMPLETED:
		return s->regs.completed;
	default:
		return 0;
	}
}

/* EN 0 -> 1 checks the work-queue config; a bad one halts instead of enabling. */
static void reg_enable_locked(struct sdma *s)
{
	unsigned log2 = (unsigned)FIELD_GET(s->regs.wq_cfg, SDMA_WQ_CFG_LOG2_SIZE_SHIFT,
					    SDMA_WQ_CFG_LOG2_SIZE_WIDTH);
	unsigned max =
	    (unsigned)FIELD_GET(s->cap, SDMA_CAP_WQ_LOG2_MAX_SHIFT, SDMA_CAP_WQ_LOG2_MAX_WIDTH);

	s->regs.head = 0;
	s->regs.tail = 0;
	s->kick_pending = false;
	if (!IS_ALIGNED(s->regs.wq_base, sizeof(struct sdma_desc))) {
		sdma_record_error_locked(s, SDMA_ERR_WQ_BASE_ALIGN, 0, s->regs.wq_base, true);
		return;
	}
	if (log2 > max) {
		sdma_record_error_locked(s, SDMA_ERR_WQ_SIZE, 0, s->regs.wq_base, true);
		return;
	}
	s->regs.halted = 0;
	s->regs.ctrl = 1;
	TRACE(sdma_enable, "%s: base=%#llx size=%u", s->name, (unsigned long long)s->regs.wq_base,
	      1u << log2);
}

/* CTRL: RESET wins; then EN edges. The reset path drops the lock while it quiesces. */
static void reg_write_ctrl_locked(struct sdma *s, uint64_t val)
{
	bool en = FIELD_GET(val, SDMA_CTRL_EN_SHIFT, SDMA_CTRL_EN_WIDTH);

	if (FIELD_GET(val, SDMA_CTRL_RESET_SHIFT, SDMA_CTRL_RESET_WIDTH)) {
		/* A register reset is not a migration state change: keep run_allowed. */
		bool run = s->run_allowed;

		pthread_mutex_unlock(&s->lock);
		sdma_engine_quiesce(s, true);
		pthread_mutex_lock(&s->lock);
		s->run_allowed = run;
		sdma_regs_reset(s);
		TRACE(sdma_reset, "%s: register reset", s->name);
		return;
	}
	if (en && !(s->regs.ctrl & 1))
		reg_enable_locked(s);
	else if (!en)
		s->regs.ctrl = 0;
	s->config_gen++;
}

static void reg_write_tail_locked(struct sdma *s, uint64_t val)
{
	if (!(s->regs.ctrl & 1) || s->regs.halted)
		return;
	if (val >= sdma_wq_size(s)) {
		sdma_record_error_locked(s, SDMA_ERR_TAIL_RANGE, (uint32_t)val, 0, true);
		return;
	}
	s->regs.tail = val;
	sdma_engine_wake(s);
}

void sdma_reg_write_locked(struct sdma *s, uint64_t off, uint64_t val)
{
	bool disabled = !(s->regs.ctrl & 1);

	switch (off) {
	case SDMA_REG_CTRL:
		reg_write_ctrl_locked(s, val);
		return;
	case SDMA_REG_ERR:
		if (FIELD_GET(val, SDMA_ERR_VALID_SHIFT, SDMA_ERR_VALID_WIDTH))
			s->regs.err = 0;
		return;
	case SDMA_REG_WQ_BASE:
		if (disabled)
			s->regs.wq_base = val;
		break;
	case SDMA_REG_WQ_CFG:
		if (disabled)
			s->regs.wq_cfg =
			    val &
			    (FIELD_MASK(SDMA_WQ_CFG_LOG2_SIZE_SHIFT, SDMA_WQ_CFG_LOG2_SIZE_WIDTH) |
			     FIELD_MASK(SDMA_WQ_CFG_PASID_SHIFT, SDMA_WQ_CFG_PASID_WIDTH) |
			     FIELD_MASK(SDMA_WQ_CFG_PASID_V_SHIFT, SDMA_WQ_CFG_PASID_V_WIDTH));
		break;
	case SDMA_REG_WQ_TAIL:
		reg_write_tail_locked(s, val);
		return;
	case SDMA_REG_WQ_SHADOW:
		s->regs.shadow = val & (SDMA_WQ_SHADOW_ADDR_MASK | 1u);
		break;
	case SDMA_REG_MSI_ADDR:
		s->regs.msi_addr = val & ~3ull;
		break;
	case SDMA_REG_MSI_DATA:
		s->regs.msi_data = val & 0xffffffffull;
		break;
	case SDMA_REG_INT_CTRL:
		s->regs.int_ctrl = val & 1u;
		break;
	default:
		return; /* read-only or unassigned: ignored, as hardware does */
	}
	s->config_gen++;
}

/* 4-byte accesses reach one half of a 64-bit register (little endian). */
ssize_t sdma_bar_rw(struct sdma *s, uint64_t off, void *buf, size_t len, bool write)
{
	uint64_t reg = ALIGN_DOWN(off, 8), shift = (off & 4) * 8, v;

	if ((len != 4 && len != 8) || !IS_ALIGNED(off, len))
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	if (!write) {
		v = sdma_reg_read_locked(s, reg) >> shift;
		memcpy(buf, &v, len); /* little-endian host: the low bytes come first */
	} else {
		uint64_t in = 0;

		memcpy(&in, buf, len);
		if (len == 4) {
			uint64_t mask = 0xffffffffull << shift;
			uint64_t old =
			    reg == SDMA_REG_CTRL || reg == SDMA_REG_WQ_TAIL || reg == SDMA_REG_ERR
				? 0
				: sdma_reg_read_locked(s, reg);

			in = (old & ~mask) | ((in << shift) & mask);
		}
		sdma_reg_write_locked(s, reg, in);
	}
	pthread_mutex_unlock(&s->lock);
	return (ssize_t)len;
}
