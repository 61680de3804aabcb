// SPDX-License-Identifier: Apache-2.0
/*
 * sdma migration: the arcs of the VFIO migration state machine and the device-state
 * stream. The stream is a sequence of records {u32 type; u32 len; payload; u32 crc32c}:
 *
 *   HEADER  magic, stream version, source CAP   (pre-copy initial data, read first, so the
 *                                                destination refuses an incompatible
 *                                                device before the downtime)
 *   CONFIG  configuration registers              (initial data; again when they change)
 *   FINAL   all registers, ring position, engine state (STOP_COPY)
 *   END                                           (STOP_COPY; nothing may follow)
 *
 * The destination applies FINAL only; CONFIG records are checked and skipped.
 */
#include "common/crc32c.h"
#include "host/dev/sdma_internal.h"

#include "common/trace.h"
#include "common/util.h"

#include <errno.h>
#include <string.h>

#define MIG_MAGIC	   0x414d4453u /* "SDMA" */
#define MIG_STREAM_VERSION 1u

enum mig_rec_type {
	REC_HEADER = 1,
	REC_CONFIG = 2,
	REC_FINAL = 3,
	REC_END = 4,
};

struct mig_rec_hdr {
	uint32_t type;
	uint32_t len;
};

struct mig_header {
	uint32_t magic;
	uint16_t version;
	uint16_t rsvd;
	uint64_t cap;
};

struct mig_config {
	uint64_t ctrl, wq_base, wq_cfg, shadow, msi_addr, msi_data, int_ctrl;
};

#define MIG_ENGINE_KICK_PENDING (1ull << 0)

struct mig_final {
	struct sdma_regs regs;
	uint64_t engine_flags;
	uint64_t rollbacks;
};

#define REC_OVERHEAD (sizeof(struct mig_rec_hdr) + sizeof(uint32_t))

static int mig_emit_record(struct sdma *s, uint32_t type, const void *payload, uint32_t len)
{
	uint8_t buf[sizeof(struct mig_rec_hdr) + sizeof(struct mig_final) + sizeof(uint32_t)];
	struct mig_rec_hdr h = {.type = type, .len = len};
	uint32_t crc;

	if (len > sizeof(struct mig_final))
		return -EINVAL;
	memcpy(buf, &h, sizeof(h));
	if (len)
		memcpy(buf + sizeof(h), payload, len);
	crc = crc32c(0, buf, sizeof(h) + len);
	memcpy(buf + sizeof(h) + len, &crc, sizeof(crc));
	return vfio_mig_emit(&s->vdev, buf, sizeof(h) + len + sizeof(crc));
}

static void mig_snapshot_config_locked(struct sdma *s, struct mig_config *c)
{
	*c = (struct mig_config){
	    .ctrl = s->regs.ctrl,
	    .wq_base = s->regs.wq_base,
	    .wq_cfg = s->regs.wq_cfg,
	    .shadow = s->regs.shadow,
	    .msi_addr = s->regs.msi_addr,
	    .msi_data = s->regs.msi_data,
	    .int_ctrl = s->regs.int_ctrl,
	};
	s->config_gen_sent = s->config_gen;
}

/* HEADER + CONFIG: the pre-copy initial data (or the start of a STOP_COPY-only stream). */
static int mig_emit_initial(struct sdma *s)
{
	struct mig_header h = {.magic = MIG_MAGIC, .version = MIG_STREAM_VERSION, .cap = s->cap};
	struct mig_config c;
	int ret;

	pthread_mutex_lock(&s->lock);
	mig_snapshot_config_locked(s, &c);
	pthread_mutex_unlock(&s->lock);
	ret = mig_emit_record(s, REC_HEADER, &h, sizeof(h));
	if (!ret)
		ret = mig_emit_record(s, REC_CONFIG, &c, sizeof(c));
	vfio_mig_emit_mark_initial(&s->vdev);
	return ret;
}

/* FINAL + END: called with the engine quiesced, so the state cannot move under us. */
static int mig_emit_final(struct sdma *s)
{
	struct mig_final f;
	int ret;

	pthread_mutex_lock(&s->lock);
	f.regs = s->regs;
	f.engine_flags = s->kick_pending ? MIG_ENGINE_KICK_PENDING : 0;
	f.rollbacks = s->rollbacks;
	pthread_mutex_unlock(&s->lock);
	ret = mig_emit_record(s, REC_FINAL, &f, sizeof(f));
	if (!ret)
		ret = mig_emit_record(s, REC_END, NULL, 0);
	if (!ret)
		vfio_mig_emit_end(&s->vdev);
	TRACE(sdma_mig_final, "%s: head=%llu tail=%llu completed=%llu: %d", s->name,
	      (unsigned long long)f.regs.head, (unsigned long long)f.regs.tail,
	      (unsigned long long)f.regs.completed, ret);
	return ret;
}

void sdma_mig_precopy_refresh(struct vfio_device *vdev)
{
	struct sdma *s = sdma_from_vdev(vdev);
	struct mig_config c;
	bool dirty;

	pthread_mutex_lock(&s->lock);
	dirty = s->config_gen != s->config_gen_sent;
	if (dirty)
		mig_snapshot_config_locked(s, &c);
	pthread_mutex_unlock(&s->lock);
	if (dirty)
		mig_emit_record(s, REC_CONFIG, &c, sizeof(c));
}

int sdma_mig_data_size(struct vfio_device *vdev, uint64_t *len)
{
	uint64_t final = 2 * REC_OVERHEAD + sizeof(struct mig_final);
	uint64_t initial = 2 * REC_OVERHEAD + sizeof(struct mig_header) + sizeof(struct mig_config);
	uint32_t st = vdev->mig_state;

	*len = final;
	if (st != VFIO_DEVICE_STATE_PRE_COPY && st != VFIO_DEVICE_STATE_PRE_COPY_P2P)
		*len += initial;
	return 0;
}

/* Stream parsing ------------------------------------------------------------------------- */

struct mig_parse {
	bool have_header, have_final, have_end;
	struct mig_final final;
	size_t consumed; /* bytes of whole records */
};

/* The destination must implement all the source could have been asked to do. */
static int mig_check_header(const struct sdma *s, const struct mig_header *h)
{
#define CAPF(v, f) FIELD_GET(v, SDMA_CAP_##f##_SHIFT, SDMA_CAP_##f##_WIDTH)
	if (h->magic != MIG_MAGIC || h->version != MIG_STREAM_VERSION || h->rsvd)
		return -EINVAL;
	if (CAPF(h->cap, VERSION) != CAPF(s->cap, VERSION))
		return -EINVAL;
	if (CAPF(h->cap, OPS) & ~CAPF(s->cap, OPS))
		return -EINVAL;
	if (CAPF(h->cap, WQ_LOG2_MAX) > CAPF(s->cap, WQ_LOG2_MAX) ||
	    CAPF(h->cap, XFER_LOG2_MAX) > CAPF(s->cap, XFER_LOG2_MAX))
		return -EINVAL;
	if (CAPF(h->cap, BOF) && !CAPF(s->cap, BOF))
		return -EINVAL;
	return 0;
#undef CAPF
}

/* Every register holds only what a write through BAR0 (or the device itself) can put there. */
static bool mig_regs_reachable(const struct sdma_regs *r)
{
	uint64_t cfg_ok = FIELD_MASK(SDMA_WQ_CFG_LOG2_SIZE_SHIFT, SDMA_WQ_CFG_LOG2_SIZE_WIDTH) |
			  FIELD_MASK(SDMA_WQ_CFG_PASID_SHIFT, SDMA_WQ_CFG_PASID_WIDTH) |
			  FIELD_MASK(SDMA_WQ_CFG_PASID_V_SHIFT, SDMA_WQ_CFG_PASID_V_WIDTH);
	uint64_t err_ok = FIELD_MASK(SDMA_ERR_CODE_SHIFT, SDMA_ERR_CODE_WIDTH) |
			  FIELD_MASK(SDMA_ERR_VALID_SHIFT, SDMA_ERR_VALID_WIDTH) |
			  FIELD_MASK(SDMA_ERR_INDEX_SHIFT, SDMA_ERR_INDEX_WIDTH);

	return !(r->wq_cfg & ~cfg_ok) && !(r->err & ~err_ok) &&
	       !(r->shadow & ~(SDMA_WQ_SHADOW_ADDR_MASK | 1u)) && !(r->msi_addr & 3) &&
	       !(r->msi_data >> 32) && r->int_ctrl <= 1;
}

static int mig_check_final(const struct sdma *s, const struct mig_final *f)
{
	unsigned log2 = (unsigned)FIELD_GET(f->regs.wq_cfg, SDMA_WQ_CFG_LOG2_SIZE_SHIFT,
					    SDMA_WQ_CFG_LOG2_SIZE_WIDTH);
	uint64_t size = 1ull << log2;

	if (log2 > FIELD_GET(s->cap, SDMA_CAP_WQ_LOG2_MAX_SHIFT, SDMA_CAP_WQ_LOG2_MAX_WIDTH))
		return -EINVAL;
	if (f->regs.ctrl > 1 || f->regs.halted > 1 || f->regs.head >= size || f->regs.tail >= size)
		return -EINVAL;
	if ((f->regs.ctrl & 1) && !IS_ALIGNED(f->regs.wq_base, sizeof(struct sdma_desc)))
		return -EINVAL;
	if (f->engine_flags & ~MIG_ENGINE_KICK_PENDING)
		return -EINVAL;
	return mig_regs_reachable(&f->regs) ? 0 : -EINVAL;
}

/* Checks one whole record (type order, length, content). */
static int mig_parse_record(const struct sdma *s, struct mig_parse *p, uint32_t type,
			    const uint8_t *payload, uint32_t len)
{
	if (p->have_end || (type != REC_HEADER && !p->have_header))
		return -EINVAL;
	switch (type) {
	case REC_HEADER: {
		struct mig_header h;

		if (p->have_header || len != sizeof(h))
			return -EINVAL;
		memcpy(&h, payload, sizeof(h));
		p->have_header = true;
		return mig_check_header(s, &h);
	}
	case REC_CONFIG:
		return len == sizeof(struct mig_config) && !p->have_final ? 0 : -EINVAL;
	case REC_FINAL:
		if (p->have_final || len != sizeof(struct mig_final))
			return -EINVAL;
		p->have_final = true;
		memcpy(&p->final, payload, sizeof(p->final));
		return mig_check_final(s, &p->final);
	case REC_END:
		if (!p->have_final || len)
			return -EINVAL;
		p->have_end = true;
		return 0;
	default:
		return -EINVAL;
	}
}

/* Parses whole records of data; stops at an incomplete one (p->consumed says where). */
static int mig_parse(const struct sdma *s, const uint8_t *data, size_t len, struct mig_parse *p)
{
	memset(p, 0, sizeof(*p));
	while (len - p->consumed >= sizeof(struct mig_rec_hdr)) {
		const uint8_t *rec = data + p->consumed;
		struct mig_rec_hdr h;
		uint32_t crc;
		int ret;

		memcpy(&h, rec, sizeof(h));
		if (h.len > sizeof(struct mig_final))
			return -EINVAL;
		if (len - p->consumed < REC_OVERHEAD + h.len)
			break;
		memcpy(&crc, rec + sizeof(h) + h.len, sizeof(crc));
		if (crc != crc32c(0, rec, sizeof(h) + h.len))
			return -EINVAL;
		ret = mig_parse_record(s, p, h.type, rec + sizeof(h), h.len);
		if (ret)
			return ret;
		p->consumed += REC_OVERHEAD + h.len;
	}
	return 0;
}

int sdma_mig_resume_check(struct vfio_device *vdev, const uint8_t *data, size_t len)
{
	struct sdma *s = sdma_from_vdev(vdev);
	struct mig_parse p;
	int ret = mig_parse(s, data, len, &p);

	/* Bytes after END are refused as soon as they arrive. */
	if (!ret && p.have_end && p.consumed != len)
		ret = -EINVAL;
	return ret;
}

/* RESUMING -> STOP: all or nothing; a refused stream leaves the registers untouched. */
static int mig_load(struct sdma *s)
{
	const uint8_t *data;
	struct mig_parse p;
	size_t len;
	int ret = vfio_mig_resume_data(&s->vdev, &data, &len);

	if (!ret)
		ret = mig_parse(s, data, len, &p);
	if (!ret && (!p.have_end || p.consumed != len))
		ret = -EINVAL;
	TRACE(sdma_mig_load, "%s: %zu bytes: %d", s->name, ret ? (size_t)0 : len, ret);
	if (ret)
		return ret;
	pthread_mutex_lock(&s->lock);
	s->regs = p.final.regs;
	/*
	 * A valueless doorbell may have been rung on the source after its last look at the
	 * eventfd: with a shadow tail, one extra read of it on the destination is harmless
	 * and closes that window.
	 */
	s->kick_pending = (p.final.engine_flags & MIG_ENGINE_KICK_PENDING) || (s->regs.shadow & 1);
	s->run_allowed = false;
	s->config_gen++;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static bool state_is_saving(uint32_t st)
{
	return st == VFIO_DEVICE_STATE_PRE_COPY || st == VFIO_DEVICE_STATE_PRE_COPY_P2P ||
	       st == VFIO_DEVICE_STATE_STOP_COPY;
}

int sdma_mig_arc(struct vfio_device *vdev, uint32_t cur, uint32_t next)
{
	struct sdma *s = sdma_from_vdev(vdev);
	int ret = 0;

	switch (next) {
	case VFIO_DEVICE_STATE_RUNNING:
	case VFIO_DEVICE_STATE_PRE_COPY:
		if (next == VFIO_DEVICE_STATE_PRE_COPY && !state_is_saving(cur))
			ret = mig_emit_initial(s);
		if (!ret)
			sdma_engine_set_run(s, true);
		return ret;
	case VFIO_DEVICE_STATE_RUNNING_P2P:
	case VFIO_DEVICE_STATE_PRE_COPY_P2P:
		/* No new descriptor starts, and the one in flight finished its DMA (uAPI). */
		ret = sdma_engine_hold(s);
		if (!ret && next == VFIO_DEVICE_STATE_PRE_COPY_P2P && !state_is_saving(cur))
			ret = mig_emit_initial(s);
		return ret;
	case VFIO_DEVICE_STATE_STOP:
		if (cur == VFIO_DEVICE_STATE_RESUMING)
			return mig_load(s);
		sdma_engine_quiesce(s, false);
		return 0;
	case VFIO_DEVICE_STATE_STOP_COPY:
		sdma_engine_quiesce(s, false);
		if (cur == VFIO_DEVICE_STATE_STOP)
			ret = mig_emit_initial(s);
		return ret ? ret : mig_emit_final(s);
	case VFIO_DEVICE_STATE_RESUMING:
		return 0;
	default:
		return -EINVAL;
	}
}
