// SPDX-License-Identifier: Apache-2.0
/*
 * The CPU section: the KVM clock, the in-kernel irqchip and every vCPU's full state, saved
 * once the vCPUs stopped. The destination collects the records and applies them only after
 * the whole stream proved complete and valid (apply): a truncated or corrupt stream leaves
 * KVM's CPU state of the never-run destination untouched.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/trace.h"
#include "vmm/kvm/vcpu_state.h"
#include "vmm/machine.h"
#include "vmm/migration/internal.h"

enum mig_cpu_type { MIG_T_CPU_CLOCK = 1, MIG_T_CPU_IRQCHIP = 2, MIG_T_CPU_VCPU = 3 };

#define MIG_VCPU_BLOB_MAX (1u << 20)

struct mig_cpu {
	struct vm *vm;
	/* Destination: what arrived. */
	bool clock_seen, irq_seen;
	struct vm_clock_state clock;
	struct kvm_irqchip chips[VM_NR_IRQCHIPS];
	struct vcpu_state *states; /* xsave != NULL once seen */
};

/* Source -------------------------------------------------------------------------------- */

static int mig_cpu_send_vcpu(struct mig_chan *ch, struct vcpu *v)
{
	struct vcpu_state st;
	void *blob;
	size_t len;
	int ret = vcpu_state_get(v, &st);

	if (ret < 0)
		return ret;
	ret = vcpu_state_serialise(&st, &blob, &len);
	vcpu_state_free(&st);
	if (ret < 0)
		return ret;
	struct iovec iov = {.iov_base = blob, .iov_len = len};
	ret = mig_chan_send(ch, MIG_SEC_CPU, MIG_T_CPU_VCPU, v->index, 0, &iov, 1);
	free(blob);
	return ret;
}

static int mig_cpu_save_complete(struct mig_section *s, struct mig_chan *ch)
{
	struct mig_cpu *c = s->state;
	struct vm_clock_state clock;
	struct kvm_irqchip chips[VM_NR_IRQCHIPS];
	int ret;

	/* One clock and TSC reference for every vCPU, taken once at the stop. */
	if ((ret = vm_clock_state_get(c->vm, &clock)) < 0 ||
	    (ret = vm_irqchip_get(c->vm, chips)) < 0)
		return ret;
	struct iovec ck = {.iov_base = &clock, .iov_len = sizeof(clock)};
	struct iovec ic = {.iov_base = chips, .iov_len = sizeof(chips)};
	if ((ret = mig_chan_send(ch, MIG_SEC_CPU, MIG_T_CPU_CLOCK, 0, 0, &ck, 1)) < 0 ||
	    (ret = mig_chan_send(ch, MIG_SEC_CPU, MIG_T_CPU_IRQCHIP, 0, 0, &ic, 1)) < 0)
		return ret;
	for (unsigned i = 0; i < c->vm->nr_vcpus; i++) {
		if ((ret = mig_cpu_send_vcpu(ch, &c->vm->vcpus[i])) < 0)
			return ret;
	}
	return 0;
}

/* Destination --------------------------------------------------------------------------- */

static int mig_cpu_load_setup(struct mig_section *s)
{
	struct mig_cpu *c = s->state;

	c->clock_seen = c->irq_seen = false;
	c->states = calloc(c->vm->nr_vcpus, sizeof(*c->states));
	return c->states ? 0 : -ENOMEM;
}

static int mig_cpu_load_fixed(struct mig_chan *ch, const struct mig_rec *r, void *dst, size_t size,
			      bool *seen)
{
	if (r->len != size || *seen)
		return -EBADMSG;
	int ret = mig_chan_recv_payload(ch, r, dst);
	if (ret == 0)
		*seen = true;
	return ret;
}

static int mig_cpu_load_vcpu(struct mig_cpu *c, struct mig_chan *ch, const struct mig_rec *r)
{
	struct vcpu_state st;

	if (r->len > MIG_VCPU_BLOB_MAX || r->arg >= c->vm->nr_vcpus || c->states[r->arg].xsave)
		return -EBADMSG;
	void *blob = malloc(r->len ? r->len : 1);
	if (!blob)
		return -ENOMEM;
	int ret = mig_chan_recv_payload(ch, r, blob);
	if (ret == 0)
		ret = vcpu_state_parse(blob, r->len, &st) < 0 ? -EBADMSG : 0;
	free(blob);
	if (ret < 0)
		return ret;
	if (st.index != r->arg) {
		vcpu_state_free(&st);
		return -EBADMSG;
	}
	c->states[r->arg] = st;
	return 0;
}

static int mig_cpu_load(struct mig_section *s, struct mig_chan *ch, const struct mig_rec *r,
			char *err, size_t errlen)
{
	struct mig_cpu *c = s->state;
	int ret = -EBADMSG;

	if (r->type == MIG_T_CPU_CLOCK)
		ret = mig_cpu_load_fixed(ch, r, &c->clock, sizeof(c->clock), &c->clock_seen);
	else if (r->type == MIG_T_CPU_IRQCHIP)
		ret = mig_cpu_load_fixed(ch, r, c->chips, sizeof(c->chips), &c->irq_seen);
	else if (r->type == MIG_T_CPU_VCPU)
		ret = mig_cpu_load_vcpu(c, ch, r);
	if (ret < 0)
		snprintf(err, errlen, "CPU state record (type %u, %u bytes) is %s", r->type, r->len,
			 ret == -EPIPE ? "cut short" : "malformed or repeated");
	return ret;
}

static int mig_cpu_load_check(struct mig_section *s, char *err, size_t errlen)
{
	struct mig_cpu *c = s->state;

	for (unsigned i = 0; i < c->vm->nr_vcpus; i++) {
		if (!c->states[i].xsave) {
			snprintf(err, errlen, "the stream has no state for vCPU %u", i);
			return -EBADMSG;
		}
	}
	if (!c->clock_seen || !c->irq_seen) {
		snprintf(err, errlen, "the stream has no %s state",
			 c->clock_seen ? "irqchip" : "clock");
		return -EBADMSG;
	}
	return 0;
}

/*
 * The irqchip, then every vCPU (their LAPICs after the irqchip), then the clock state: it
 * sets every vCPU's TSC from the one reference, after the per-vCPU IA32_TSC in their states.
 */
static int mig_cpu_apply(struct mig_section *s, char *err, size_t errlen)
{
	struct mig_cpu *c = s->state;
	int ret = vm_irqchip_set(c->vm, c->chips);

	for (unsigned i = 0; ret == 0 && i < c->vm->nr_vcpus; i++)
		ret = vcpu_state_set(&c->vm->vcpus[i], &c->states[i]);
	if (ret == 0)
		ret = vm_clock_state_set(c->vm, &c->clock);
	if (ret < 0)
		snprintf(err, errlen, "KVM refused the CPU state: %s", strerror(-ret));
	return ret;
}

static void mig_cpu_load_cleanup(struct mig_section *s)
{
	struct mig_cpu *c = s->state;

	for (unsigned i = 0; c->states && i < c->vm->nr_vcpus; i++)
		vcpu_state_free(&c->states[i]);
	free(c->states);
	c->states = NULL;
}

/*
 * What applying the CPU state will cost here, measured on the VM that waits for it: its own
 * state read and written back (harmless: it never ran). Feeds the source's expected downtime.
 */
uint64_t mig_cpu_apply_probe_us(struct migration *mig)
{
	struct vm *vm = mig->m->vm;
	uint64_t t0 = mig_now_ns();

	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu_state st;
		if (vcpu_state_get(&vm->vcpus[i], &st) < 0)
			break;
		vcpu_state_set(&vm->vcpus[i], &st);
		vcpu_state_free(&st);
	}
	return (mig_now_ns() - t0) / 1000;
}

static const struct mig_section_ops mig_cpu_ops = {
    .name = "cpu",
    .save_complete = mig_cpu_save_complete,
    .load_setup = mig_cpu_load_setup,
    .load = mig_cpu_load,
    .load_check = mig_cpu_load_check,
    .apply = mig_cpu_apply,
    .load_cleanup = mig_cpu_load_cleanup,
};

int mig_cpu_register(struct migration *mig)
{
	struct mig_cpu *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->vm = mig->m->vm;
	int ret = mig_register(mig, &mig_cpu_ops, MIG_SEC_CPU, c);
	if (ret < 0)
		free(c);
	return ret;
}
