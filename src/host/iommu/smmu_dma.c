// SPDX-License-Identifier: Apache-2.0
/*
 * The DMA path: translate (IOTLB, else config + walks), then move data through the host's
 * own mapping of physical memory, page by page. Faults are recorded as events; stallable
 * faults (CD.S / STE.S2S) hold the transaction with a STAG until RESUME or STALL_TERM.
 */
#include <errno.h>
#include <string.h>
#include <sys/types.h>

#include "common/trace.h"
#include "host/iommu/smmu_internal.h"

enum xl_outcome { XL_OK, XL_FAULT, XL_ABORT };

struct xl_out {
	uint64_t pa;
	uint8_t *hva; /* host pointer of pa, NULL when pa is not RAM */
};

static void xl_tags(const struct smmu_cfg *cfg, uint64_t *tag)
{
	uint16_t vmid = cfg->s2.id;
	uint16_t asid = cfg->kind == KIND_S2 ? 0 : cfg->s1.id;
	*tag = tlb_tag(cfg->kind, vmid, asid);
}

/* Walks the stages of cfg for iova; fills *tf for the IOTLB. */
static int xl_walk(struct smmu *s, const struct smmu_cfg *cfg, uint64_t iova, bool write,
		   struct tlb_fill *tf, struct smmu_fault *f)
{
	struct walk_out o1 = {0}, o2 = {0};
	uint64_t ipa = iova;

	if (cfg->kind != KIND_S2) {
		if (smmu_walk_s1(s, &cfg->s1, cfg->kind == KIND_NESTED ? &cfg->s2 : NULL, iova,
				 write, &o1, f))
			return -EFAULT;
		ipa = o1.oa;
	}
	if (cfg->kind != KIND_S1) {
		if (smmu_walk_s2(s, &cfg->s2, ipa, write, &o2, f))
			return -EFAULT;
	}
	const struct walk_out *last = cfg->kind == KIND_S1 ? &o1 : &o2;
	bool r = last->r && (cfg->kind != KIND_NESTED || o1.r);
	bool w = last->w && (cfg->kind != KIND_NESTED || o1.w);
	tf->vpn = iova >> SMMU_GRANULE_SHIFT;
	tf->pa = last->oa & ~(SMMU_GRANULE_SIZE - 1);
	tf->ipa = ipa & ~(SMMU_GRANULE_SIZE - 1);
	tf->perm = (uint8_t)((r ? TLB_PERM_R : 0) | (w ? TLB_PERM_W : 0));
	tf->log2sz = cfg->kind == KIND_NESTED ? MIN(o1.log2sz, o2.log2sz) : last->log2sz;
	tf->hva = hostmem_ptr(s->hm, tf->pa, SMMU_GRANULE_SIZE);
	return 0;
}

/*
 * Full translation: SMMUEN/GBPA, configuration, IOTLB, walk. *tag_out gets the IOTLB tag
 * when the stream translates (0 for bypass), for the caller's fast path on later pages.
 */
static int xl_translate(struct smmu *s, const struct smmu_dma_txn *txn, uint64_t iova, bool write,
			struct xl_out *out, struct smmu_fault *f, uint64_t *tag_out)
{
	const struct smmu_cfg *cfg;
	struct tlb_fill tf;
	uint64_t tag, off = iova & (SMMU_GRANULE_SIZE - 1);

	if (UNLIKELY(!__atomic_load_n(&s->enabled, __ATOMIC_ACQUIRE))) {
		if (__atomic_load_n(&s->gbpa_abort, __ATOMIC_ACQUIRE))
			return XL_ABORT;
		goto bypass;
	}
	cfg = smmu_cfg_get(s, txn, f);
	if (!cfg)
		return XL_FAULT;
	if (cfg->kind == KIND_ABORT)
		return XL_ABORT;
	if (cfg->kind == KIND_BYPASS)
		goto bypass;
	xl_tags(cfg, &tag);
	*tag_out = tag;
	if (LIKELY(smmu_tlb_lookup(&s->tlb, tag, iova >> SMMU_GRANULE_SHIFT,
				   write ? TLB_PERM_W : TLB_PERM_R, &tf)))
		goto done;
	uint64_t gen = smmu_tlb_gen(&s->tlb);
	__atomic_fetch_add(&s->st_tlb_misses, 1, __ATOMIC_RELAXED);
	if (xl_walk(s, cfg, iova, write, &tf, f))
		return XL_FAULT;
	smmu_tlb_insert(&s->tlb, tag, gen, &tf);
done:
	out->pa = tf.pa + off;
	out->hva = tf.hva ? tf.hva + off : NULL;
	return XL_OK;
bypass:
	out->pa = iova;
	out->hva = hostmem_ptr(s->hm, iova, 1);
	return XL_OK;
}

/* ---- stalls ---- */

static bool stall_stallable(const struct smmu_fault *f)
{
	return f->stall_ok && f->id >= EVT_F_TRANSLATION && f->id <= EVT_F_PERMISSION;
}

/* Takes a free slot (reclaiming answered non-blocking ones). Caller holds stall_lock. */
static struct stall_slot *stall_alloc(struct smmu *s, uint32_t sid, bool blocking)
{
	for (unsigned i = 0; i < s->p.stall_max; i++) {
		struct stall_slot *sl = &s->stalls[i];
		if (sl->state != STALL_FREE && (sl->blocking || sl->state == STALL_WAITING))
			continue;
		sl->state = STALL_WAITING;
		sl->blocking = blocking;
		sl->sid = sid;
		sl->stag = s->next_stag++;
		return sl;
	}
	return NULL;
}

static struct stall_slot *stall_find(struct smmu *s, uint32_t sid, uint16_t stag)
{
	for (unsigned i = 0; i < s->p.stall_max; i++) {
		struct stall_slot *sl = &s->stalls[i];
		if (sl->state != STALL_FREE && sl->sid == sid && sl->stag == stag)
			return sl;
	}
	return NULL;
}

int smmu_stall_answer(struct smmu *s, uint32_t sid, uint16_t stag, unsigned resp)
{
	int rc = -ENOENT;

	pthread_mutex_lock(&s->stall_lock);
	struct stall_slot *sl = stall_find(s, sid, stag);
	if (sl && sl->state == STALL_WAITING) {
		sl->state = resp == CMD_RESUME_RETRY ? STALL_RETRY : STALL_ABORT;
		pthread_cond_broadcast(&s->stall_cond);
		rc = 0;
	}
	pthread_mutex_unlock(&s->stall_lock);
	TRACE(smmu_stall_resume, "sid=%#x stag=%u resp=%u rc=%d", sid, stag, resp, rc);
	return rc;
}

int smmu_stall_term_sid(struct smmu *s, uint32_t sid)
{
	int n = 0;

	pthread_mutex_lock(&s->stall_lock);
	for (unsigned i = 0; i < s->p.stall_max; i++) {
		struct stall_slot *sl = &s->stalls[i];
		if (sl->state == STALL_WAITING && sl->sid == sid) {
			sl->state = STALL_ABORT;
			n++;
		}
	}
	pthread_cond_broadcast(&s->stall_cond);
	pthread_mutex_unlock(&s->stall_lock);
	TRACE(smmu_stall_term, "sid=%#x n=%d", sid, n);
	return n;
}

int smmu_dma_terminate_stalls(struct smmu *s, uint32_t sid)
{
	return smmu_stall_term_sid(s, sid);
}

unsigned smmu_stalls_outstanding(struct smmu *s)
{
	unsigned n = 0;

	pthread_mutex_lock(&s->stall_lock);
	for (unsigned i = 0; i < s->p.stall_max; i++)
		n += s->stalls[i].state == STALL_WAITING;
	pthread_mutex_unlock(&s->stall_lock);
	return n;
}

/* Sleeps until the slot is answered; frees it; true for a retry. Caller holds stall_lock. */
static bool stall_wait_locked(struct smmu *s, struct stall_slot *sl)
{
	while (sl->state == STALL_WAITING)
		pthread_cond_wait(&s->stall_cond, &s->stall_lock);
	bool retry = sl->state == STALL_RETRY;
	sl->state = STALL_FREE;
	return retry;
}

int smmu_dma_wait(struct smmu *s, uint32_t sid, uint16_t stag)
{
	pthread_mutex_lock(&s->stall_lock);
	struct stall_slot *sl = stall_find(s, sid, stag);
	if (!sl) {
		pthread_mutex_unlock(&s->stall_lock);
		return -ENOENT;
	}
	sl->blocking = true;
	bool retry = stall_wait_locked(s, sl);
	pthread_mutex_unlock(&s->stall_lock);
	return retry ? 0 : -ECANCELED;
}

/*
 * A fault: record it, and stall when allowed. Returns XL_OK for "retry the translation"
 * (a blocking stall resumed), XL_FAULT or XL_ABORT to fail, or -EAGAIN with *stag for a
 * non-blocking stall.
 */
static int dma_fault(struct smmu *s, const struct smmu_dma_txn *txn, const struct smmu_fault *f,
		     unsigned *slot, uint16_t *stag)
{
	bool block = txn->flags & SMMU_DMA_BLOCK_ON_STALL;
	struct stall_slot *sl = NULL;

	if (stall_stallable(f)) {
		pthread_mutex_lock(&s->stall_lock);
		sl = stall_alloc(s, txn->sid, block);
		pthread_mutex_unlock(&s->stall_lock);
	}
	if (!sl) {
		if (f->record)
			smmu_event_record(s, txn, f, false, 0);
		return XL_FAULT;
	}
	__atomic_fetch_add(&s->st_stalls, 1, __ATOMIC_RELAXED);
	*stag = sl->stag;
	smmu_event_record(s, txn, f, true, sl->stag);
	if (!block)
		return -EAGAIN;
	/* Leave the in-flight set while asleep: a CMD_SYNC must not wait for the guest. */
	smmu_inflight_exit(s, *slot);
	pthread_mutex_lock(&s->stall_lock);
	bool retry = stall_wait_locked(s, sl);
	pthread_mutex_unlock(&s->stall_lock);
	*slot = smmu_inflight_enter(s);
	return retry ? XL_OK : XL_ABORT;
}

/* ---- data movement ---- */

struct dma_ctx {
	struct smmu *s;
	const struct smmu_dma_txn *txn;
	struct smmu_dma_result *res;
	unsigned slot;
	uint64_t tag; /* IOTLB tag of this transfer's stream once known, else 0 */
};

/*
 * Later pages of a transfer look up the IOTLB directly with the tag found for the first:
 * the configuration is the one the transaction started with (a CMD_SYNC after a CFGI waits
 * for it to finish anyway).
 */
static inline bool dma_xl_fast(struct dma_ctx *c, uint64_t iova, bool write, struct xl_out *out)
{
	struct tlb_fill tf;
	uint64_t off = iova & (SMMU_GRANULE_SIZE - 1);

	if (!c->tag || !smmu_tlb_lookup(&c->s->tlb, c->tag, iova >> SMMU_GRANULE_SHIFT,
					write ? TLB_PERM_W : TLB_PERM_R, &tf))
		return false;
	out->pa = tf.pa + off;
	out->hva = tf.hva ? tf.hva + off : NULL;
	return true;
}

/* Translates one address, handling faults and stalls; 0 or -1 with *res filled. */
static int dma_xl(struct dma_ctx *c, uint64_t iova, bool write, struct xl_out *out)
{
	if (LIKELY(dma_xl_fast(c, iova, write, out)))
		return 0;
	for (;;) {
		struct smmu_fault f = {0};
		uint64_t tag = 0;
		int rc = xl_translate(c->s, c->txn, iova, write, out, &f, &tag);
		c->tag = tag;
		if (rc == XL_OK)
			return 0;
		if (rc == XL_FAULT) {
			f.input = iova;
			f.rnw_read = !write;
			uint16_t stag = 0;
			rc = dma_fault(c->s, c->txn, &f, &c->slot, &stag);
			if (rc == XL_OK)
				continue;
			c->res->event_id = f.id;
			c->res->stag = stag;
		}
		c->res->fault_iova = iova;
		c->res->status = rc == -EAGAIN	  ? SMMU_DMA_STALLED
				 : rc == XL_ABORT ? SMMU_DMA_ABORTED
						  : SMMU_DMA_FAULT;
		return -1;
	}
}

static size_t page_left(uint64_t a)
{
	return SMMU_GRANULE_SIZE - (a & (SMMU_GRANULE_SIZE - 1));
}

/* Non-RAM target: a doorbell takes writes (reads as zero); anything else is a bus error. */
static int dma_nonram(struct dma_ctx *c, const struct xl_out *x, uint64_t iova, bool write,
		      void *data, size_t n)
{
	if (!hostmem_is_doorbell(c->s->hm, x->pa)) {
		c->res->status = SMMU_DMA_BUS_ERROR;
		c->res->fault_iova = iova;
		return -1;
	}
	if (write)
		hostmem_doorbell_write(c->s->hm, x->pa, data, n, c->txn->sid);
	else
		memset(data, 0, n);
	return 0;
}

static void dma_begin(struct dma_ctx *c, struct smmu *s, const struct smmu_dma_txn *txn,
		      struct smmu_dma_result *res)
{
	c->s = s;
	c->txn = txn;
	c->res = res;
	c->tag = 0;
	memset(res, 0, sizeof(*res));
	res->status = SMMU_DMA_OK;
	c->slot = smmu_inflight_enter(s);
}

static int dma_end(struct dma_ctx *c)
{
	smmu_inflight_exit(c->s, c->slot);
	return 0;
}

#define DMA_SPAN_MAX (256 * 1024)

/*
 * Translates from iova on, page by page, while the pages land contiguously in host RAM, up
 * to max bytes: returns that length with x->hva its start. 0 when the first page is not
 * RAM (x->pa then says what it is), -1 when its translation failed (*res filled). Pages
 * after the first only extend the span on an IOTLB hit; anything else ends it there and
 * the next call deals with it.
 */
static ssize_t dma_span(struct dma_ctx *c, uint64_t iova, size_t max, bool write, struct xl_out *x)
{
	size_t n = MIN(max, page_left(iova));

	if (dma_xl(c, iova, write, x))
		return -1;
	if (!x->hva)
		return 0;
	max = MIN(max, DMA_SPAN_MAX);
	while (n < max) {
		struct xl_out y;
		if (!dma_xl_fast(c, iova + n, write, &y) || y.hva != x->hva + n)
			break;
		n += MIN(max - n, SMMU_GRANULE_SIZE);
	}
	return (ssize_t)n;
}

/* One transfer loop for both directions: buf is the device's side of the copy. */
static int dma_xfer(struct smmu *s, const struct smmu_dma_txn *txn, uint64_t iova, uint8_t *buf,
		    size_t len, bool write, struct smmu_dma_result *res)
{
	struct dma_ctx c;

	if (!s || !txn || !res || (!buf && len))
		return -EINVAL;
	dma_begin(&c, s, txn, res);
	while (res->done < len) {
		uint64_t a = iova + res->done;
		struct xl_out x;
		ssize_t n = dma_span(&c, a, len - res->done, write, &x);
		if (n < 0)
			break;
		if (n > 0) {
			if (write)
				memcpy(x.hva, buf + res->done, (size_t)n);
			else
				memcpy(buf + res->done, x.hva, (size_t)n);
		} else {
			n = (ssize_t)MIN(len - res->done, page_left(a));
			if (dma_nonram(&c, &x, a, write, buf + res->done, (size_t)n))
				break;
		}
		res->done += (size_t)n;
	}
	return dma_end(&c);
}

int smmu_dma_read(struct smmu *s, const struct smmu_dma_txn *txn, uint64_t iova, void *buf,
		  size_t len, struct smmu_dma_result *res)
{
	return dma_xfer(s, txn, iova, buf, len, false, res);
}

/* The source is never written: dma_xfer only reads buf when write is set. */
int smmu_dma_write(struct smmu *s, const struct smmu_dma_txn *txn, uint64_t iova, const void *buf,
		   size_t len, struct smmu_dma_result *res)
{
	return dma_xfer(s, txn, iova, (uint8_t *)(uintptr_t)buf, len, true, res);
}

/* A copy step with a doorbell on either side: through a small bounce buffer. */
static ssize_t dma_copy_nonram(struct dma_ctx *c, uint64_t sa, uint64_t da, size_t n)
{
	uint8_t bounce[64];
	struct xl_out xs, xd;

	n = MIN(n, sizeof(bounce));
	if (dma_xl(c, sa, false, &xs) || dma_xl(c, da, true, &xd))
		return -1;
	if (xs.hva)
		memcpy(bounce, xs.hva, n);
	else if (dma_nonram(c, &xs, sa, false, bounce, n))
		return -1;
	if (xd.hva)
		memcpy(xd.hva, bounce, n);
	else if (dma_nonram(c, &xd, da, true, bounce, n))
		return -1;
	return (ssize_t)n;
}

/* The last bytes of [.., end) that share end's page (1 .. granule). */
static size_t page_back(uint64_t end)
{
	return (size_t)(((end - 1) & (SMMU_GRANULE_SIZE - 1)) + 1);
}

/*
 * dst above src and overlapping: a forward copy in pieces would read bytes it already
 * wrote, so copy from the end. A copy that stops part-way has completed nothing counted
 * from the start (done = 0); what it wrote is the tail.
 */
static void dma_copy_backward(struct dma_ctx *c, uint64_t dst, uint64_t src, size_t len)
{
	size_t left = len;

	while (left) {
		uint64_t se = src + left, de = dst + left;
		size_t n = MIN(left, MIN(page_back(se), page_back(de)));
		struct xl_out xs, xd;
		if (dma_span(c, se - n, n, false, &xs) != (ssize_t)n ||
		    dma_span(c, de - n, n, true, &xd) != (ssize_t)n) {
			if (c->res->status == SMMU_DMA_OK) { /* not RAM: no memory to move */
				c->res->status = SMMU_DMA_BUS_ERROR;
				c->res->fault_iova = de - n;
			}
			break;
		}
		memmove(xd.hva, xs.hva, n);
		left -= n;
	}
	c->res->done = left ? 0 : len;
}

int smmu_dma_copy(struct smmu *s, const struct smmu_dma_txn *txn, uint64_t dst_iova,
		  uint64_t src_iova, size_t len, struct smmu_dma_result *res)
{
	struct dma_ctx c;

	if (!s || !txn || !res)
		return -EINVAL;
	dma_begin(&c, s, txn, res);
	if (dst_iova > src_iova && dst_iova - src_iova < len) {
		dma_copy_backward(&c, dst_iova, src_iova, len);
		return dma_end(&c);
	}
	while (res->done < len) {
		uint64_t sa = src_iova + res->done, da = dst_iova + res->done;
		struct xl_out xs, xd;
		ssize_t ns = dma_span(&c, sa, len - res->done, false, &xs), nd = 0;
		if (ns < 0 || (ns > 0 && (nd = dma_span(&c, da, (size_t)ns, true, &xd)) < 0))
			break;
		if (ns > 0 && nd > 0) {
			memmove(xd.hva, xs.hva, (size_t)nd);
		} else {
			nd = dma_copy_nonram(
			    &c, sa, da, MIN(len - res->done, MIN(page_left(sa), page_left(da))));
			if (nd < 0)
				break;
		}
		res->done += (size_t)nd;
	}
	return dma_end(&c);
}

/* Byte i of the output is byte (phase + i) % 8 of pattern. */
static void fill_pattern(uint8_t *dst, uint64_t pattern, size_t phase, size_t n)
{
	unsigned rot = (unsigned)(phase & 7) * 8;
	uint64_t rp = rot ? (pattern >> rot) | (pattern << (64 - rot)) : pattern;
	size_t i = 0;

	for (; i + 8 <= n; i += 8)
		memcpy(dst + i, &rp, 8);
	for (; i < n; i++)
		dst[i] = (uint8_t)(rp >> (8 * (i & 7)));
}

int smmu_dma_fill(struct smmu *s, const struct smmu_dma_txn *txn, uint64_t dst_iova,
		  uint64_t pattern, size_t len, struct smmu_dma_result *res)
{
	struct dma_ctx c;
	uint8_t tmp[64];

	if (!s || !txn || !res)
		return -EINVAL;
	dma_begin(&c, s, txn, res);
	while (res->done < len) {
		uint64_t a = dst_iova + res->done;
		struct xl_out x;
		ssize_t n = dma_span(&c, a, len - res->done, true, &x);
		if (n < 0)
			break;
		if (n > 0) {
			fill_pattern(x.hva, pattern, res->done, (size_t)n);
		} else {
			n = (ssize_t)MIN(MIN(len - res->done, page_left(a)), sizeof(tmp));
			fill_pattern(tmp, pattern, res->done, (size_t)n);
			if (dma_nonram(&c, &x, a, true, tmp, (size_t)n))
				break;
		}
		res->done += (size_t)n;
	}
	return dma_end(&c);
}

static int probe_walk(struct smmu *s, const struct smmu_cfg *cfg, uint64_t iova, bool write,
		      struct smmu_probe_out *out)
{
	struct smmu_fault f = {0};
	struct tlb_fill tf;
	uint64_t off = iova & (SMMU_GRANULE_SIZE - 1);

	smmu_walk_set_probe(true);
	int rc = xl_walk(s, cfg, iova, write, &tf, &f);
	smmu_walk_set_probe(false);
	if (rc) {
		out->status = SMMU_DMA_FAULT;
		out->event_id = f.id;
		return 0;
	}
	out->ipa = tf.ipa | off;
	out->pa = tf.pa | off;
	out->read = tf.perm & TLB_PERM_R;
	out->write = tf.perm & TLB_PERM_W;
	return 0;
}

int smmu_probe(struct smmu *s, const struct smmu_dma_txn *txn, uint64_t iova, bool write,
	       struct smmu_probe_out *out)
{
	struct smmu_fault f = {0};
	const struct smmu_cfg *cfg = NULL;

	if (!s || !txn || !out)
		return -EINVAL;
	*out = (struct smmu_probe_out){.status = SMMU_DMA_OK, .ipa = iova, .pa = iova};
	smmu_walk_set_probe(true); /* the configuration's fetch changes nothing either */
	if (__atomic_load_n(&s->enabled, __ATOMIC_ACQUIRE))
		cfg = smmu_cfg_get(s, txn, &f);
	smmu_walk_set_probe(false);
	if (__atomic_load_n(&s->enabled, __ATOMIC_ACQUIRE) && !cfg) {
		out->status = SMMU_DMA_FAULT;
		out->event_id = f.id;
		return 0;
	}
	bool abort =
	    cfg ? cfg->kind == KIND_ABORT : __atomic_load_n(&s->gbpa_abort, __ATOMIC_ACQUIRE);
	if (abort)
		out->status = SMMU_DMA_ABORTED;
	if (abort || !cfg || cfg->kind == KIND_BYPASS) {
		out->read = out->write = !abort;
		return 0;
	}
	return probe_walk(s, cfg, iova, write, out);
}

int smmu_translate(struct smmu *s, const struct smmu_dma_txn *txn, uint64_t iova, bool write,
		   struct smmu_xlate *out)
{
	struct smmu_dma_txn t;
	struct smmu_dma_result res;
	struct xl_out x;

	if (!s || !txn || !out)
		return -EINVAL;
	t = *txn;
	t.flags &= ~SMMU_DMA_BLOCK_ON_STALL;
	/* No data moves, so no in-flight accounting: a CMD_SYNC need not wait for this. */
	struct dma_ctx c = {.s = s, .txn = &t, .res = &res, .tag = 0};
	res.status = SMMU_DMA_OK;
	res.event_id = 0;
	res.stag = 0;
	if (dma_xl(&c, iova, write, &x) == 0) {
		out->pa = x.pa;
		out->status = SMMU_DMA_OK;
		out->event_id = 0;
		return 0;
	}
	out->pa = 0;
	out->status = res.status;
	out->event_id = res.event_id;
	out->stag = res.stag;
	return 0;
}
