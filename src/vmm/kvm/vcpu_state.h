/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The complete state of one vCPU as KVM holds it, and a versioned, length-checked byte
 * format for it (what migration and snapshots carry).
 *
 * Format (little endian, as the host): a header {u32 magic "VCPU", u16 version, u16 records,
 * u32 total bytes, u32 vcpu index} then records {u32 tag, u32 length, payload padded to 8}.
 * Every tag must appear exactly once; fixed-size records must have exactly their size.
 * A truncated or corrupt blob gives -EINVAL (-EPROTO for an unknown version) and no state.
 *
 * Capture order: MP state before everything else (reading it makes KVM accept a pending
 * INIT/SIPI, which changes the registers).
 *
 * Restore order: sregs (CR*, EFER, APIC base - so the LAPIC below is read in x2APIC mode),
 * regs, XSAVE, XCRs, LAPIC, MSRs (after sregs and LAPIC: EFER-dependent and TSC-deadline
 * MSRs), MP state, debug registers, and vCPU events last (pending exception/interrupt/NMI
 * must not be overwritten by the steps above). CPUID was set when the vCPU was created.
 */
#ifndef VMIG_VMM_KVM_VCPU_STATE_H
#define VMIG_VMM_KVM_VCPU_STATE_H

#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>

struct vcpu;

#define VCPU_STATE_MAGIC     0x55504356u /* "VCPU" */
#define VCPU_STATE_VERSION   1u
#define VCPU_STATE_MAX_MSRS  1024u
#define VCPU_STATE_MAX_XSAVE (64u * 1024u)

struct vcpu_state {
	uint32_t index;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xcrs xcrs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp_state;
	struct kvm_debugregs debugregs;
	uint32_t xsave_size;
	struct kvm_xsave *xsave; /* xsave_size bytes */
	uint32_t nr_msrs;
	struct kvm_msr_entry *msrs;
};

/* The vCPU must not be running (vm_pause()). Free with vcpu_state_free(). */
int vcpu_state_get(struct vcpu *vcpu, struct vcpu_state *st);
int vcpu_state_set(struct vcpu *vcpu, const struct vcpu_state *st);
void vcpu_state_free(struct vcpu_state *st);

/* Allocates *buf (free()). */
int vcpu_state_serialise(const struct vcpu_state *st, void **buf, size_t *len);
int vcpu_state_parse(const void *buf, size_t len, struct vcpu_state *st);

#endif
