// SPDX-License-Identifier: Apache-2.0
#include "vmm/kvm/vcpu_state.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "common/log.h"
#include "common/trace.h"
#include "common/util.h"
#include "vmm/kvm/vm.h"

/* One MSR through KVM_GET_MSRS / KVM_SET_MSRS; returns the ioctl's count (1 = done). */
static int vcpu_msr_one(struct vcpu *v, unsigned long req, uint32_t index, uint64_t *val)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} m = {.hdr = {.nmsrs = 1}, .e = {.index = index, .data = *val}};
	int r = ioctl(v->fd, req, &m);
	*val = m.e.data;
	return r;
}

static struct kvm_msr_list *vm_get_msr_list(struct vm *vm)
{
	struct kvm_msr_list probe = {.nmsrs = 0};

	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
		return NULL;
	struct kvm_msr_list *l = calloc(1, sizeof(*l) + probe.nmsrs * sizeof(uint32_t));
	if (!l)
		return NULL;
	l->nmsrs = probe.nmsrs;
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, l) < 0) {
		free(l);
		return NULL;
	}
	return l;
}

/*
 * The MSRs that travel with a vCPU: those KVM lists that can be read and written back on
 * this host (a listed MSR may be absent on this CPU model). Probed once on vCPU 0 before
 * it ever runs, so writing the reset values back changes nothing.
 */
int vm_setup_msrs(struct vm *vm)
{
	struct kvm_msr_list *l = vm_get_msr_list(vm);
	if (!l) {
		log_error("KVM_GET_MSR_INDEX_LIST: %s", strerror(errno));
		return -EIO;
	}
	vm->msr_index = calloc(l->nmsrs ? l->nmsrs : 1, sizeof(uint32_t));
	if (!vm->msr_index) {
		free(l);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < l->nmsrs && vm->nr_msrs < VCPU_STATE_MAX_MSRS; i++) {
		uint64_t val = 0;
		if (vcpu_msr_one(&vm->vcpus[0], KVM_GET_MSRS, l->indices[i], &val) != 1)
			continue;
		if (vcpu_msr_one(&vm->vcpus[0], KVM_SET_MSRS, l->indices[i], &val) != 1) {
			TRACE(kvm_msr_skip, "msr %#x reads but does not write back", l->indices[i]);
			continue;
		}
		vm->msr_index[vm->nr_msrs++] = l->indices[i];
	}
	TRACE(kvm_msr_list, "%u of %u listed MSRs are saved", vm->nr_msrs, l->nmsrs);
	free(l);
	return 0;
}

static int vcpu_state_get_msrs(struct vcpu *v, struct vcpu_state *st)
{
	struct vm *vm = v->vm;
	struct kvm_msrs *m = calloc(1, sizeof(*m) + vm->nr_msrs * sizeof(struct kvm_msr_entry));
	if (!m)
		return -ENOMEM;
	m->nmsrs = vm->nr_msrs;
	for (unsigned i = 0; i < vm->nr_msrs; i++)
		m->entries[i].index = vm->msr_index[i];
	int r = ioctl(v->fd, KVM_GET_MSRS, m);
	if (r != (int)vm->nr_msrs) {
		free(m);
		return r < 0 ? -errno : -EIO;
	}
	st->msrs = calloc(vm->nr_msrs ? vm->nr_msrs : 1, sizeof(struct kvm_msr_entry));
	if (!st->msrs) {
		free(m);
		return -ENOMEM;
	}
	memcpy(st->msrs, m->entries, vm->nr_msrs * sizeof(struct kvm_msr_entry));
	st->nr_msrs = vm->nr_msrs;
	free(m);
	return 0;
}

static int vcpu_state_get_xsave(struct vcpu *v, struct vcpu_state *st)
{
	st->xsave_size = v->vm->xsave_size;
	st->xsave = calloc(1, st->xsave_size);
	if (!st->xsave)
		return -ENOMEM;
	unsigned long req =
	    st->xsave_size > sizeof(struct kvm_xsave) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE;
	return ioctl(v->fd, req, st->xsave) < 0 ? -errno : 0;
}

#define VCPU_IOCTL(fd, req, arg) (ioctl((fd), (req), (arg)) < 0 ? -errno : 0)

int vcpu_state_get(struct vcpu *v, struct vcpu_state *st)
{
	int ret;

	memset(st, 0, sizeof(*st));
	st->index = v->index;
	/*
	 * MP state first: KVM_GET_MP_STATE accepts a pending INIT/SIPI, which resets the vCPU
	 * and moves it to the SIPI vector. Read later, it would pair a RUNNABLE state with the
	 * registers from before the SIPI.
	 */
	if ((ret = VCPU_IOCTL(v->fd, KVM_GET_MP_STATE, &st->mp_state)) < 0 ||
	    (ret = VCPU_IOCTL(v->fd, KVM_GET_REGS, &st->regs)) < 0 ||
	    (ret = VCPU_IOCTL(v->fd, KVM_GET_SREGS, &st->sregs)) < 0 ||
	    (ret = vcpu_state_get_xsave(v, st)) < 0 ||
	    (ret = VCPU_IOCTL(v->fd, KVM_GET_XCRS, &st->xcrs)) < 0 ||
	    (ret = VCPU_IOCTL(v->fd, KVM_GET_LAPIC, &st->lapic)) < 0 ||
	    (ret = vcpu_state_get_msrs(v, st)) < 0 ||
	    (ret = VCPU_IOCTL(v->fd, KVM_GET_DEBUGREGS, &st->debugregs)) < 0 ||
	    (ret = VCPU_IOCTL(v->fd, KVM_GET_VCPU_EVENTS, &st->events)) < 0) {
		vcpu_state_free(st);
		return ret;
	}
	return 0;
}

static int vcpu_state_set_xsave(struct vcpu *v, const struct vcpu_state *st)
{
	if (st->xsave_size > v->vm->xsave_size)
		return -EINVAL;
	struct kvm_xsave *x = calloc(1, v->vm->xsave_size);
	if (!x)
		return -ENOMEM;
	memcpy(x, st->xsave, st->xsave_size);
	int ret = VCPU_IOCTL(v->fd, KVM_SET_XSAVE, x);
	free(x);
	return ret;
}

static int vcpu_state_set_msrs(struct vcpu *v, const struct vcpu_state *st)
{
	struct kvm_msrs *m = calloc(1, sizeof(*m) + st->nr_msrs * sizeof(struct kvm_msr_entry));
	if (!m)
		return -ENOMEM;
	m->nmsrs = st->nr_msrs;
	memcpy(m->entries, st->msrs, st->nr_msrs * sizeof(struct kvm_msr_entry));
	int r = ioctl(v->fd, KVM_SET_MSRS, m);
	int ret = r < 0 ? -errno : 0;
	if (r >= 0 && (uint32_t)r != st->nr_msrs) {
		log_error("vcpu %u: MSR %#x could not be restored", v->index, st->msrs[r].index);
		ret = -EINVAL;
	}
	free(m);
	return ret;
}

int vcpu_state_set(struct vcpu *v, const struct vcpu_state *st)
{
	struct kvm_vcpu_events ev = st->events;
	int ret;

	/* NMI pending and the SIPI vector are only written when asked for. */
	ev.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR;
	if ((ret = VCPU_IOCTL(v->fd, KVM_SET_SREGS, &st->sregs)) < 0 ||
	    (ret = VCPU_IOCTL(v->fd, KVM_SET_REGS, &st->regs)) < 0 ||
	    (ret = vcpu_state_set_xsave(v, st)) < 0 ||
	    (ret = VCPU_IOCTL(v->fd, KVM_SET_XCRS, &st->xcrs)) < 0 ||
	    (ret = VCPU_IOCTL(v->fd, KVM_SET_LAPIC, &st->lapic)) < 0 ||
	    (ret = vcpu_state_set_msrs(v, st)) < 0 ||
	    (ret = VCPU_IOCTL(v->fd, KVM_SET_MP_STATE, &st->mp_state)) < 0 ||
	    (ret = VCPU_IOCTL(v->fd, KVM_SET_DEBUGREGS, &st->debugregs)) < 0 ||
	    (ret = VCPU_IOCTL(v->fd, KVM_SET_VCPU_EVENTS, &ev)) < 0)
		log_error("vcpu %u: restoring state: %s", v->index, strerror(-ret));
	return ret;
}

void vcpu_state_free(struct vcpu_state *st)
{
	free(st->xsave);
	free(st->msrs);
	st->xsave = NULL;
	st->msrs = NULL;
	st->xsave_size = 0;
	st->nr_msrs = 0;
}

/* Serialisation ---------------------------------------------------------------------- */

enum vcpu_state_tag {
	TAG_REGS = 1,
	TAG_SREGS,
	TAG_XSAVE,
	TAG_XCRS,
	TAG_LAPIC,
	TAG_MSRS,
	TAG_MP_STATE,
	TAG_DEBUGREGS,
	TAG_EVENTS,
	TAG_COUNT = TAG_EVENTS,
};

struct vcpu_state_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t records;
	uint32_t total;
	uint32_t index;
};

struct vcpu_state_rec {
	uint32_t tag;
	uint32_t len;
};

struct vcpu_state_field {
	uint32_t tag;
	const void *data;
	uint32_t len;
};

static unsigned vcpu_state_fields(const struct vcpu_state *st, struct vcpu_state_field *f)
{
	f[0] = (struct vcpu_state_field){TAG_REGS, &st->regs, sizeof(st->regs)};
	f[1] = (struct vcpu_state_field){TAG_SREGS, &st->sregs, sizeof(st->sregs)};
	f[2] = (struct vcpu_state_field){TAG_XSAVE, st->xsave, st->xsave_size};
	f[3] = (struct vcpu_state_field){TAG_XCRS, &st->xcrs, sizeof(st->xcrs)};
	f[4] = (struct vcpu_state_field){TAG_LAPIC, &st->lapic, sizeof(st->lapic)};
	f[5] = (struct vcpu_state_field){TAG_MSRS, st->msrs,
					 st->nr_msrs * (uint32_t)sizeof(struct kvm_msr_entry)};
	f[6] = (struct vcpu_state_field){TAG_MP_STATE, &st->mp_state, sizeof(st->mp_state)};
	f[7] = (struct vcpu_state_field){TAG_DEBUGREGS, &st->debugregs, sizeof(st->debugregs)};
	f[8] = (struct vcpu_state_field){TAG_EVENTS, &st->events, sizeof(st->events)};
	return TAG_COUNT;
}

int vcpu_state_serialise(const struct vcpu_state *st, void **buf, size_t *len)
{
	struct vcpu_state_field f[TAG_COUNT];
	unsigned n = vcpu_state_fields(st, f);
	size_t total = sizeof(struct vcpu_state_hdr);

	for (unsigned i = 0; i < n; i++)
		total += sizeof(struct vcpu_state_rec) + ALIGN_UP((size_t)f[i].len, 8);
	uint8_t *p = calloc(1, total);
	if (!p)
		return -ENOMEM;
	struct vcpu_state_hdr h = {VCPU_STATE_MAGIC, VCPU_STATE_VERSION, (uint16_t)n,
				   (uint32_t)total, st->index};
	memcpy(p, &h, sizeof(h));
	size_t off = sizeof(h);
	for (unsigned i = 0; i < n; i++) {
		struct vcpu_state_rec r = {f[i].tag, f[i].len};
		memcpy(p + off, &r, sizeof(r));
		if (f[i].len)
			memcpy(p + off + sizeof(r), f[i].data, f[i].len);
		off += sizeof(r) + ALIGN_UP((size_t)f[i].len, 8);
	}
	*buf = p;
	*len = total;
	return 0;
}

/* Copies one record into st; checks its size. */
static int vcpu_state_take(struct vcpu_state *st, uint32_t tag, const uint8_t *data, uint32_t len)
{
	struct vcpu_state_field f[TAG_COUNT];
	vcpu_state_fields(st, f);

	if (tag == TAG_XSAVE) {
		if (len < sizeof(struct kvm_xsave) || len > VCPU_STATE_MAX_XSAVE || st->xsave)
			return -EINVAL;
		st->xsave = malloc(len);
		if (!st->xsave)
			return -ENOMEM;
		memcpy(st->xsave, data, len);
		st->xsave_size = len;
		return 0;
	}
	if (tag == TAG_MSRS) {
		size_t n = len / sizeof(struct kvm_msr_entry);
		if (len % sizeof(struct kvm_msr_entry) || n > VCPU_STATE_MAX_MSRS || st->msrs)
			return -EINVAL;
		st->msrs = calloc(n ? n : 1, sizeof(struct kvm_msr_entry));
		if (!st->msrs)
			return -ENOMEM;
		memcpy(st->msrs, data, len);
		st->nr_msrs = (uint32_t)n;
		return 0;
	}
	if (tag < 1 || tag > TAG_COUNT || f[tag - 1].len != len)
		return -EINVAL;
	memcpy((void *)f[tag - 1].data, data, len);
	return 0;
}

static int vcpu_state_parse_records(const uint8_t *p, size_t total, unsigned records,
				    struct vcpu_state *st)
{
	size_t off = sizeof(struct vcpu_state_hdr);
	uint32_t seen = 0;

	for (unsigned i = 0; i < records; i++) {
		struct vcpu_state_rec r;
		if (total - off < sizeof(r))
			return -EINVAL;
		memcpy(&r, p + off, sizeof(r));
		off += sizeof(r);
		if (r.tag < 1 || r.tag > TAG_COUNT || (seen & (1u << r.tag)) ||
		    ALIGN_UP((size_t)r.len, 8) > total - off)
			return -EINVAL;
		seen |= 1u << r.tag;
		int ret = vcpu_state_take(st, r.tag, p + off, r.len);
		if (ret < 0)
			return ret;
		off += ALIGN_UP((size_t)r.len, 8);
	}
	return (off == total && seen == (((1u << TAG_COUNT) - 1) << 1)) ? 0 : -EINVAL;
}

int vcpu_state_parse(const void *buf, size_t len, struct vcpu_state *st)
{
	struct vcpu_state_hdr h;

	memset(st, 0, sizeof(*st));
	if (!buf || len < sizeof(h))
		return -EINVAL;
	memcpy(&h, buf, sizeof(h));
	if (h.magic != VCPU_STATE_MAGIC)
		return -EINVAL;
	if (h.version != VCPU_STATE_VERSION)
		return -EPROTO;
	if (h.total != len || h.records != TAG_COUNT)
		return -EINVAL;
	st->index = h.index;
	int ret = vcpu_state_parse_records(buf, len, h.records, st);
	if (ret < 0)
		vcpu_state_free(st);
	return ret;
}
