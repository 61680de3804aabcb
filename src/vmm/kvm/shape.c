// SPDX-License-Identifier: Apache-2.0
#include "vmm/kvm/shape.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/kvm/vcpu_state.h"
#include "vmm/kvm/vm.h"

#define SHAPE_HDR_BYTES	  32u
#define SHAPE_CPUID_BYTES 28u /* seven u32 */

/* Byte order is explicit so the blob means the same on any host. */
static void shape_put32(uint8_t **p, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		*(*p)++ = (uint8_t)(v >> (8 * i));
}

static uint32_t shape_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static size_t shape_bytes(uint32_t nr_cpuid, uint32_t nr_msrs)
{
	return SHAPE_HDR_BYTES + (size_t)nr_cpuid * SHAPE_CPUID_BYTES + (size_t)nr_msrs * 4;
}

static void shape_put_cpuid(uint8_t **p, const struct kvm_cpuid_entry2 *e)
{
	const uint32_t w[7] = {e->function, e->index, e->flags, e->eax, e->ebx, e->ecx, e->edx};
	for (unsigned i = 0; i < 7; i++)
		shape_put32(p, w[i]);
}

int vm_shape_encode(const struct vm_shape *s, void **blob, size_t *len)
{
	if (s->nr_cpuid > VM_SHAPE_MAX_CPUID || s->nr_msrs > VCPU_STATE_MAX_MSRS)
		return -EINVAL;
	size_t total = shape_bytes(s->nr_cpuid, s->nr_msrs);
	uint8_t *buf = malloc(total), *p = buf;
	if (!buf)
		return -ENOMEM;
	const uint32_t hdr[] = {VM_SHAPE_MAGIC, VM_SHAPE_VERSION, (uint32_t)total, s->nr_vcpus,
				s->tsc_khz,	s->xsave_size,	  s->nr_cpuid,	   s->nr_msrs};
	for (unsigned i = 0; i < 8; i++)
		shape_put32(&p, hdr[i]); /* version: u16 version + u16 zero, little endian */
	for (uint32_t i = 0; i < s->nr_cpuid; i++)
		shape_put_cpuid(&p, &s->cpuid[i]);
	for (uint32_t i = 0; i < s->nr_msrs; i++)
		shape_put32(&p, s->msr_index[i]);
	*blob = buf;
	*len = total;
	return 0;
}

void vm_shape_describe(struct vm *vm, struct vm_shape *s)
{
	*s = (struct vm_shape){.nr_vcpus = vm->nr_vcpus,
			       .tsc_khz = vm->tsc_khz,
			       .xsave_size = vm->xsave_size,
			       .nr_cpuid = vm->cpuid->nent,
			       .cpuid = vm->cpuid->entries,
			       .nr_msrs = vm->nr_msrs,
			       .msr_index = vm->msr_index};
}

int vm_shape_save(struct vm *vm, void **blob, size_t *len)
{
	struct vm_shape s;

	vm_shape_describe(vm, &s);
	return vm_shape_encode(&s, blob, len);
}

/* Parsing and comparing ---------------------------------------------------------------- */

/* The source side as read from a blob whose length was checked. */
struct shape_src {
	uint32_t nr_vcpus, tsc_khz, xsave_size, nr_cpuid, nr_msrs;
	const uint8_t *cpuid, *msrs;
};

static int shape_why(char *why, size_t n, int ret, const char *fmt, ...)
{
	va_list ap;

	if (why && n) {
		va_start(ap, fmt);
		vsnprintf(why, n, fmt, ap);
		va_end(ap);
	}
	return ret;
}

static int shape_parse(const uint8_t *p, size_t len, struct shape_src *src, char *why, size_t n)
{
	if (!p || len < SHAPE_HDR_BYTES)
		return shape_why(why, n, -EINVAL, "shape record truncated (%zu bytes)", len);
	if (shape_get32(p) != VM_SHAPE_MAGIC)
		return shape_why(why, n, -EINVAL, "shape record has a bad magic");
	if (shape_get32(p + 4) != VM_SHAPE_VERSION)
		return shape_why(why, n, -EPROTO, "shape record version %u, this vmig reads %u",
				 shape_get32(p + 4), VM_SHAPE_VERSION);
	*src = (struct shape_src){.nr_vcpus = shape_get32(p + 12),
				  .tsc_khz = shape_get32(p + 16),
				  .xsave_size = shape_get32(p + 20),
				  .nr_cpuid = shape_get32(p + 24),
				  .nr_msrs = shape_get32(p + 28)};
	if (src->nr_cpuid > VM_SHAPE_MAX_CPUID || src->nr_msrs > VCPU_STATE_MAX_MSRS)
		return shape_why(why, n, -EINVAL, "shape record lists too many entries");
	size_t want = shape_bytes(src->nr_cpuid, src->nr_msrs);
	if (shape_get32(p + 8) != len || want != len)
		return shape_why(why, n, -EINVAL, "shape record is %zu bytes, its counts say %zu",
				 len, want);
	src->cpuid = p + SHAPE_HDR_BYTES;
	src->msrs = src->cpuid + (size_t)src->nr_cpuid * SHAPE_CPUID_BYTES;
	return 0;
}

static int shape_compare_scalars(const struct vm_shape *h, const struct shape_src *s, char *why,
				 size_t n)
{
	if (s->nr_vcpus != h->nr_vcpus)
		return shape_why(why, n, -EPROTO, "the source has %u vCPUs, this VM %u",
				 s->nr_vcpus, h->nr_vcpus);
	if (s->tsc_khz != h->tsc_khz)
		return shape_why(why, n, -EPROTO, "TSC frequency %u kHz on the source, %u kHz here",
				 s->tsc_khz, h->tsc_khz);
	if (s->xsave_size > h->xsave_size)
		return shape_why(why, n, -EPROTO,
				 "the source's XSAVE area is %u bytes, this host's only %u",
				 s->xsave_size, h->xsave_size);
	return 0;
}

static int shape_compare_msrs(const struct vm_shape *h, const struct shape_src *s, char *why,
			      size_t n)
{
	if (s->nr_msrs != h->nr_msrs)
		return shape_why(why, n, -EPROTO, "the source saves %u MSRs, this host %u",
				 s->nr_msrs, h->nr_msrs);
	for (uint32_t i = 0; i < s->nr_msrs; i++) {
		uint32_t msr = shape_get32(s->msrs + 4 * (size_t)i);
		if (msr != h->msr_index[i])
			return shape_why(why, n, -EPROTO,
					 "saved MSR %u is %#x on the source, %#x here", i, msr,
					 h->msr_index[i]);
	}
	return 0;
}

static const struct kvm_cpuid_entry2 *shape_find_leaf(const struct vm_shape *h, uint32_t fn,
						      uint32_t index)
{
	for (uint32_t i = 0; i < h->nr_cpuid; i++) {
		if (h->cpuid[i].function == fn && h->cpuid[i].index == index)
			return &h->cpuid[i];
	}
	return NULL;
}

/* Source entry at p against ours; names the first register that differs. */
static int shape_compare_leaf(const struct vm_shape *h, const uint8_t *p, char *why, size_t n)
{
	static const char *const reg[] = {"flags", "eax", "ebx", "ecx", "edx"};
	uint32_t fn = shape_get32(p), index = shape_get32(p + 4);
	const struct kvm_cpuid_entry2 *e = shape_find_leaf(h, fn, index);
	if (!e)
		return shape_why(why, n, -EPROTO, "CPUID leaf %#x.%u is on the source, not here",
				 fn, index);
	const uint32_t here[] = {e->flags, e->eax, e->ebx, e->ecx, e->edx};
	for (unsigned r = 0; r < 5; r++) {
		uint32_t src = shape_get32(p + 8 + 4 * r);
		if (src != here[r])
			return shape_why(why, n, -EPROTO,
					 "CPUID leaf %#x.%u %s differs: source %#x here %#x", fn,
					 index, reg[r], src, here[r]);
	}
	return 0;
}

static bool shape_src_has_leaf(const struct shape_src *s, uint32_t fn, uint32_t index)
{
	for (uint32_t i = 0; i < s->nr_cpuid; i++) {
		const uint8_t *p = s->cpuid + (size_t)i * SHAPE_CPUID_BYTES;
		if (shape_get32(p) == fn && shape_get32(p + 4) == index)
			return true;
	}
	return false;
}

static int shape_compare_cpuid(const struct vm_shape *h, const struct shape_src *s, char *why,
			       size_t n)
{
	for (uint32_t i = 0; i < s->nr_cpuid; i++) {
		int ret = shape_compare_leaf(h, s->cpuid + (size_t)i * SHAPE_CPUID_BYTES, why, n);
		if (ret < 0)
			return ret;
	}
	for (uint32_t i = 0; i < h->nr_cpuid; i++) {
		const struct kvm_cpuid_entry2 *e = &h->cpuid[i];
		if (!shape_src_has_leaf(s, e->function, e->index))
			return shape_why(why, n, -EPROTO,
					 "CPUID leaf %#x.%u is here, not on the source",
					 e->function, e->index);
	}
	return 0;
}

int vm_shape_compare(const struct vm_shape *here, const void *blob, size_t len, char *why,
		     size_t why_len)
{
	struct shape_src src = {0};
	int ret;

	shape_why(why, why_len, 0, "");
	if ((ret = shape_parse(blob, len, &src, why, why_len)) < 0 ||
	    (ret = shape_compare_scalars(here, &src, why, why_len)) < 0 ||
	    (ret = shape_compare_msrs(here, &src, why, why_len)) < 0 ||
	    (ret = shape_compare_cpuid(here, &src, why, why_len)) < 0)
		return ret;
	return 0;
}

int vm_shape_check(struct vm *vm, const void *blob, size_t len, char *why, size_t why_len)
{
	struct vm_shape here;

	vm_shape_describe(vm, &here);
	return vm_shape_compare(&here, blob, len, why, why_len);
}
