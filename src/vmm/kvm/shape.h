/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CPU shape of a VM: what a destination must match before it takes a source's vCPU
 * state. The CPUID entries the VM sets on its vCPUs (vm->cpuid, before the per-vCPU APIC
 * id), the MSR index list saved with vCPU state, the TSC frequency, the XSAVE area size
 * and the vCPU count. A destination checks it before it reads any RAM, so a mismatch is
 * refused with a reason instead of failing half-way through applying state.
 *
 * Blob (little endian): {u32 magic "SHPE", u16 version, u16 zero, u32 total bytes,
 * u32 vcpus, u32 tsc_khz, u32 xsave_size, u32 nr_cpuid, u32 nr_msrs}, then nr_cpuid
 * entries {u32 function, index, flags, eax, ebx, ecx, edx}, then nr_msrs u32 MSR indices.
 * total must be exactly the length these give.
 */
#ifndef VMIG_VMM_KVM_SHAPE_H
#define VMIG_VMM_KVM_SHAPE_H

#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>

struct vm;

#define VM_SHAPE_MAGIC	   0x45504853u /* "SHPE" */
#define VM_SHAPE_VERSION   1u
#define VM_SHAPE_MAX_CPUID 4096u

/* One side's shape; points into the VM (or test data), owns nothing. */
struct vm_shape {
	uint32_t nr_vcpus;
	uint32_t tsc_khz; /* 0 when KVM cannot tell */
	uint32_t xsave_size;
	uint32_t nr_cpuid;
	const struct kvm_cpuid_entry2 *cpuid;
	uint32_t nr_msrs;
	const uint32_t *msr_index;
};

/* The running VM's shape: a malloc'd blob (free()). */
int vm_shape_save(struct vm *vm, void **blob, size_t *len);
/*
 * 0 if vm can take state saved under blob's shape. -EINVAL for a malformed blob, -EPROTO
 * for a mismatch (or an unknown version); why gets one line naming what differs.
 */
int vm_shape_check(struct vm *vm, const void *blob, size_t len, char *why, size_t why_len);

/* The same without KVM (unit tests): describe / encode / compare. */
void vm_shape_describe(struct vm *vm, struct vm_shape *shape);
int vm_shape_encode(const struct vm_shape *shape, void **blob, size_t *len);
int vm_shape_compare(const struct vm_shape *here, const void *blob, size_t len, char *why,
		     size_t why_len);

#endif
