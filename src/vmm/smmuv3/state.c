// SPDX-License-Identifier: Apache-2.0
/*
 * Migration of the vSMMU: a versioned little-endian stream of the registers, queue indexes,
 * error state and stall bookkeeping. Loading parses into a scratch copy and validates every
 * field before anything changes, so a corrupt stream leaves the instance untouched.
 *
 * Stream: magic, version, total length, the identification it was saved with (it must
 * match: the guest has already probed IDR0-5), registers, stall count, stall slots.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/trace.h"
#include "vmm/smmuv3/internal.h"

#define VSMMU_STATE_MAGIC 0x554D5356u /* "VSMU" */
/* header, identification, 13 x 32-bit and 6 x 64-bit registers, EVTQ CONS, STAG, count */
#define VSMMU_STATE_FIXED (4 * 4 + 8 * 4 + 13 * 4 + 6 * 8 + 4 + 4 + 4)
#define VSMMU_STALL_REC	  (5 * 4)

struct vsmmu_sbuf {
	uint8_t *p;
	const uint8_t *rp;
	size_t len, off;
	bool bad;
};

static void vsmmu_put32(struct vsmmu_sbuf *b, uint32_t v)
{
	if (b->off + 4 > b->len) {
		b->bad = true;
		return;
	}
	for (unsigned i = 0; i < 4; i++)
		b->p[b->off++] = (uint8_t)(v >> (8 * i));
}

static void vsmmu_put64(struct vsmmu_sbuf *b, uint64_t v)
{
	vsmmu_put32(b, (uint32_t)v);
	vsmmu_put32(b, (uint32_t)(v >> 32));
}

static uint32_t vsmmu_get32(struct vsmmu_sbuf *b)
{
	uint32_t v = 0;

	if (b->off + 4 > b->len) {
		b->bad = true;
		return 0;
	}
	for (unsigned i = 0; i < 4; i++)
		v |= (uint32_t)b->rp[b->off++] << (8 * i);
	return v;
}

static uint64_t vsmmu_get64(struct vsmmu_sbuf *b)
{
	uint64_t lo = vsmmu_get32(b);

	return lo | ((uint64_t)vsmmu_get32(b) << 32);
}

static unsigned vsmmu_stalls_used(const struct vsmmu_regs *r, unsigned max)
{
	unsigned n = 0;

	for (unsigned i = 0; i < max; i++)
		n += r->stalls[i].used;
	return n;
}

static size_t vsmmu_state_size_locked(struct vsmmu *vs)
{
	return VSMMU_STATE_FIXED + VSMMU_STALL_REC * vsmmu_stalls_used(&vs->r, vs->cfg.stall_max);
}

size_t vsmmu_state_size(struct vsmmu *vs)
{
	size_t n;

	vsmmu_lock(vs);
	n = vsmmu_state_size_locked(vs);
	vsmmu_unlock(vs);
	return n;
}

static void vsmmu_put_config(struct vsmmu_sbuf *b, const struct vsmmu_config *c)
{
	vsmmu_put32(b, c->sid_bits);
	vsmmu_put32(b, c->ssid_bits);
	vsmmu_put32(b, c->cmdq_bits);
	vsmmu_put32(b, c->evtq_bits);
	vsmmu_put32(b, c->oas_bits);
	vsmmu_put32(b, c->stall_max);
	vsmmu_put32(b, c->httu);
	vsmmu_put32(b, c->stall);
}

/*
 * The plain registers in stream order, one table for both directions: save and load
 * cannot drift apart when a register is added.
 */
/* Offset of a field of struct vsmmu_regs, refused at compile time unless it is n bytes. */
#define REG(f, n)                                                                                  \
	(offsetof(struct vsmmu_regs, f) +                                                          \
	 0 * sizeof(char[sizeof(((struct vsmmu_regs *)0)->f) == (n) ? 1 : -1]))
#define R32(f) REG(f, 4)
#define R64(f) REG(f, 8)
static const size_t vsmmu_regs32[] = {R32(cr0),
				      R32(cr1),
				      R32(cr2),
				      R32(gbpa),
				      R32(irq_ctrl),
				      R32(gerror),
				      R32(gerrorn),
				      R32(gerror_irq.data),
				      R32(gerror_irq.attr),
				      R32(evtq_irq.data),
				      R32(evtq_irq.attr),
				      R32(strtab_cfg),
				      R32(cmdq.prod)};
static const size_t vsmmu_regs64[] = {R64(gerror_irq.addr), R64(evtq_irq.addr), R64(strtab_base),
				      R64(cmdq.base), R64(evtq.base)};
#undef R64
#undef R32
#undef REG

static void vsmmu_put_regs(struct vsmmu_sbuf *b, const struct vsmmu_regs *r)
{
	const char *base = (const char *)r;
	uint32_t v32;
	uint64_t v64;

	for (unsigned i = 0; i < ARRAY_SIZE(vsmmu_regs32); i++) {
		memcpy(&v32, base + vsmmu_regs32[i], sizeof(v32));
		vsmmu_put32(b, v32);
	}
	for (unsigned i = 0; i < ARRAY_SIZE(vsmmu_regs64); i++) {
		memcpy(&v64, base + vsmmu_regs64[i], sizeof(v64));
		vsmmu_put64(b, v64);
	}
	vsmmu_put64(b, ((uint64_t)r->cmdq.cons << 32) | r->evtq.prod);
	vsmmu_put32(b, r->evtq.cons);
	vsmmu_put32(b, r->next_stag);
}

static void vsmmu_get_regs(struct vsmmu_sbuf *b, struct vsmmu_regs *r)
{
	char *base = (char *)r;
	uint64_t pc;
	uint32_t stag;

	for (unsigned i = 0; i < ARRAY_SIZE(vsmmu_regs32); i++) {
		uint32_t v32 = vsmmu_get32(b);
		memcpy(base + vsmmu_regs32[i], &v32, sizeof(v32));
	}
	for (unsigned i = 0; i < ARRAY_SIZE(vsmmu_regs64); i++) {
		uint64_t v64 = vsmmu_get64(b);
		memcpy(base + vsmmu_regs64[i], &v64, sizeof(v64));
	}
	pc = vsmmu_get64(b);
	r->cmdq.cons = (uint32_t)(pc >> 32);
	r->evtq.prod = (uint32_t)pc;
	r->evtq.cons = vsmmu_get32(b);
	stag = vsmmu_get32(b);
	if (stag > 0xFFFF)
		b->bad = true;
	r->next_stag = (uint16_t)stag;
}

static void vsmmu_put_stalls(struct vsmmu_sbuf *b, const struct vsmmu_regs *r, unsigned max)
{
	vsmmu_put32(b, vsmmu_stalls_used(r, max));
	for (unsigned i = 0; i < max; i++) {
		const struct vsmmu_stall_slot *s = &r->stalls[i];

		if (!s->used)
			continue;
		vsmmu_put32(b, s->ssv);
		vsmmu_put32(b, s->stag);
		vsmmu_put32(b, s->vsid);
		vsmmu_put32(b, s->ssid);
		vsmmu_put32(b, s->cookie);
	}
}

long vsmmu_state_save(struct vsmmu *vs, void *buf, size_t len)
{
	struct vsmmu_sbuf b = {.p = buf, .len = len};
	size_t need;

	vsmmu_lock(vs);
	need = vsmmu_state_size_locked(vs);
	if (!buf || len < need) {
		vsmmu_unlock(vs);
		return -ENOSPC;
	}
	vsmmu_put32(&b, VSMMU_STATE_MAGIC);
	vsmmu_put32(&b, VSMMU_STATE_VERSION);
	vsmmu_put32(&b, (uint32_t)need);
	vsmmu_put32(&b, 0); /* flags, reserved */
	vsmmu_put_config(&b, &vs->cfg);
	vsmmu_put_regs(&b, &vs->r);
	vsmmu_put_stalls(&b, &vs->r, vs->cfg.stall_max);
	vsmmu_unlock(vs);
	TRACE(vsmmu_state_save, "len=%zu", b.off);
	return b.bad ? -ENOSPC : (long)b.off;
}

static bool vsmmu_state_regs_valid(const struct vsmmu *vs, const struct vsmmu_regs *r)
{
	uint32_t cm = vsmmu_queue_ptr_mask(vs->cfg.cmdq_bits);
	uint32_t em = vsmmu_queue_ptr_mask(vs->cfg.evtq_bits);

	return !(r->cr0 & ~CR0_WMASK) && !(r->cr1 & ~CR1_WMASK) && !(r->cr2 & ~CR2_WMASK) &&
	       !(r->gbpa & ~GBPA_WMASK) && !(r->irq_ctrl & ~IRQ_CTRL_WMASK) &&
	       !(r->gerror & ~GERROR_WMASK) && !(r->gerrorn & ~GERROR_WMASK) &&
	       !(r->gerror_irq.addr & ~FMASK(IRQ_CFG0_ADDR)) &&
	       !(r->evtq_irq.addr & ~FMASK(IRQ_CFG0_ADDR)) &&
	       !(r->gerror_irq.attr & ~IRQ_CFG2_WMASK) && !(r->evtq_irq.attr & ~IRQ_CFG2_WMASK) &&
	       !(r->strtab_base & ~STRTAB_BASE_WMASK) && !(r->strtab_cfg & ~STRTAB_CFG_WMASK) &&
	       !(r->cmdq.base & ~Q_BASE_WMASK) && !(r->evtq.base & ~Q_BASE_WMASK) &&
	       !(r->cmdq.prod & ~cm) && !(r->cmdq.cons & ~(cm | FMASK(Q_CONS_ERR))) &&
	       FGET(r->cmdq.cons, Q_CONS_ERR) <= CMDQ_ERR_ATC_SYNC &&
	       !(r->evtq.prod & ~(em | FMASK(Q_PROD_OVFLG))) &&
	       !(r->evtq.cons & ~(em | FMASK(Q_CONS_OVACKFLG)));
}

static void vsmmu_get_stalls(struct vsmmu_sbuf *b, const struct vsmmu *vs, struct vsmmu_regs *r)
{
	uint32_t n = vsmmu_get32(b), v[5];

	if (n > vs->cfg.stall_max) {
		b->bad = true;
		return;
	}
	for (uint32_t i = 0; i < n && !b->bad; i++) {
		for (unsigned k = 0; k < 5; k++)
			v[k] = vsmmu_get32(b);
		if (v[0] > 1 || v[1] > 0xFFFF || v[3] >= (1u << 20))
			b->bad = true;
		for (uint32_t j = 0; j < i; j++)
			if (r->stalls[j].stag == v[1])
				b->bad = true; /* STAGs are unique */
		r->stalls[i] = (struct vsmmu_stall_slot){.used = true,
							 .ssv = v[0],
							 .stag = (uint16_t)v[1],
							 .vsid = v[2],
							 .ssid = v[3],
							 .cookie = v[4]};
	}
}

static int vsmmu_state_parse(struct vsmmu *vs, const void *buf, size_t len, struct vsmmu_regs *r)
{
	struct vsmmu_sbuf b = {.rp = buf, .len = len};
	struct vsmmu_config c;
	uint32_t stall;

	if (!buf || vsmmu_get32(&b) != VSMMU_STATE_MAGIC)
		return -EINVAL;
	if (vsmmu_get32(&b) != VSMMU_STATE_VERSION)
		return -EPROTO;
	if (vsmmu_get32(&b) != len || vsmmu_get32(&b) != 0)
		return -EINVAL;
	c.sid_bits = vsmmu_get32(&b);
	c.ssid_bits = vsmmu_get32(&b);
	c.cmdq_bits = vsmmu_get32(&b);
	c.evtq_bits = vsmmu_get32(&b);
	c.oas_bits = vsmmu_get32(&b);
	c.stall_max = vsmmu_get32(&b);
	c.httu = vsmmu_get32(&b);
	stall = vsmmu_get32(&b);
	if (c.sid_bits != vs->cfg.sid_bits || c.ssid_bits != vs->cfg.ssid_bits ||
	    c.cmdq_bits != vs->cfg.cmdq_bits || c.evtq_bits != vs->cfg.evtq_bits ||
	    c.oas_bits != vs->cfg.oas_bits || c.stall_max != vs->cfg.stall_max ||
	    c.httu != vs->cfg.httu || stall != (uint32_t)vs->cfg.stall)
		return -EPROTO; /* a different SMMU than the guest probed */
	memset(r, 0, sizeof(*r));
	vsmmu_get_regs(&b, r);
	vsmmu_get_stalls(&b, vs, r);
	if (b.bad || b.off != len || !vsmmu_state_regs_valid(vs, r))
		return -EINVAL;
	return 0;
}

/* Parses buf whole into a scratch copy; with apply, it then becomes the state. */
static int vsmmu_state_take(struct vsmmu *vs, const void *buf, size_t len, bool apply,
			    unsigned *stalls)
{
	struct vsmmu_regs *r = calloc(1, sizeof(*r));
	int ret;

	if (!r)
		return -ENOMEM;
	vsmmu_lock(vs);
	ret = vsmmu_state_parse(vs, buf, len, r);
	*stalls = ret == 0 ? vsmmu_stalls_used(r, vs->cfg.stall_max) : 0;
	if (apply && ret == 0) {
		/* This instance's own held stalls belong to no guest any more. */
		vsmmu_stall_drop_all(vs);
		vs->r = *r;
		vs->fwd_n = 0;
		vs->evtq_irq_pending = false;
	}
	vsmmu_unlock(vs);
	free(r);
	return ret;
}

int vsmmu_state_load(struct vsmmu *vs, const void *buf, size_t len)
{
	unsigned stalls;
	int ret = vsmmu_state_take(vs, buf, len, true, &stalls);

	TRACE(vsmmu_state_load, "len=%zu ret=%d", len, ret);
	return ret;
}

int vsmmu_state_check(struct vsmmu *vs, const void *buf, size_t len, unsigned *stalls)
{
	return vsmmu_state_take(vs, buf, len, false, stalls);
}

int vsmmu_post_load(struct vsmmu *vs)
{
	uint64_t nsnh[2] = {FSET(0, CMD0_OP, CMD_TLBI_NSNH_ALL), 0};
	unsigned n;

	int err;

	vsmmu_lock(vs);
	vs->install_resource_err = 0;
	/* Events for bad configurations were delivered on the source already. */
	n = vsmmu_config_install_all(vs, false);
	err = vs->install_resource_err;
	/* Nothing the destination host cached before the load can be trusted. */
	if (n)
		vsmmu_fwd_queue(vs, nsnh);
	vsmmu_op_finish(vs);
	vsmmu_unlock(vs);
	TRACE(vsmmu_post_load, "installed=%u err=%d", n, err);
	return err ? err : (int)n;
}
