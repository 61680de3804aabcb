// SPDX-License-Identifier: Apache-2.0
/*
 * The machine shape on KVM: a shape saved from one VM checks OK on an identical VM, and a
 * blob with one CPUID word, the TSC frequency or the vCPU count changed is refused with a
 * reason naming it.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/kvm/shape.h"
#include "vmm/kvm/vm.h"
#include "sys_util.h"

#define SHAPE_HDR   32u /* the blob layout in shape.h */
#define SHAPE_LEAF  28u
#define OFF_TSC_KHZ 16u

static struct vm *open_vm(unsigned vcpus)
{
	struct vm_config cfg = {.nr_vcpus = vcpus, .dirty_mode = VM_DIRTY_AUTO};
	struct vm *vm;
	assert_int_equal(vm_open(&cfg, &vm), 0);
	return vm;
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4); /* the blob is little endian, as this host */
	return v;
}

/* Offset of leaf (fn, index)'s first register word (eax) in the blob; asserts it exists. */
static size_t leaf_eax_offset(const uint8_t *blob, uint32_t fn, uint32_t index)
{
	uint32_t n = get32(blob + 24);
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *e = blob + SHAPE_HDR + (size_t)i * SHAPE_LEAF;
		if (get32(e) == fn && get32(e + 4) == index)
			return (size_t)(e - blob) + 12;
	}
	fail_msg("leaf %#x.%u not in the shape", fn, index);
	return 0;
}

static void test_same_shape_accepted(void **state)
{
	struct vm *a = open_vm(2), *b = open_vm(2);
	void *blob;
	size_t len;
	char why[160];

	assert_int_equal(vm_shape_save(a, &blob, &len), 0);
	printf("shape: %zu bytes, %u CPUID leaves, %u MSRs, XSAVE %u bytes\n", len, a->cpuid->nent,
	       a->nr_msrs, a->xsave_size);
	assert_int_equal(vm_shape_check(b, blob, len, why, sizeof(why)), 0);
	assert_int_equal(vm_shape_check(a, blob, len, why, sizeof(why)), 0);
	free(blob);
	vm_close(a);
	vm_close(b);
}

static void expect_refused(struct vm *vm, const void *blob, size_t len, const char *needle)
{
	char why[160];

	assert_int_equal(vm_shape_check(vm, blob, len, why, sizeof(why)), -EPROTO);
	printf("refused: %s\n", why);
	if (!strstr(why, needle))
		fail_msg("reason '%s' does not name '%s'", why, needle);
}

static void test_mutated_shape_refused(void **state)
{
	struct vm *a = open_vm(2), *b = open_vm(2), *c = open_vm(3);
	uint8_t *blob;
	size_t len;

	assert_int_equal(vm_shape_save(a, (void **)&blob, &len), 0);
	size_t ebx = leaf_eax_offset(blob, 7, 0) + 4;
	blob[ebx] ^= 0x20;
	expect_refused(b, blob, len, "CPUID leaf 0x7.0 ebx differs");
	blob[ebx] ^= 0x20;
	uint32_t khz = get32(blob + OFF_TSC_KHZ) + 100000;
	memcpy(blob + OFF_TSC_KHZ, &khz, 4);
	expect_refused(b, blob, len, "kHz on the source");
	khz -= 100000;
	memcpy(blob + OFF_TSC_KHZ, &khz, 4);
	expect_refused(c, blob, len, "the source has 2 vCPUs, this VM 3");
	char why[160];
	assert_int_equal(vm_shape_check(b, blob, len, why, sizeof(why)), 0);
	assert_int_equal(vm_shape_check(b, blob, len - 1, why, sizeof(why)), -EINVAL);
	free(blob);
	vm_close(a);
	vm_close(b);
	vm_close(c);
}

int main(void)
{
	sys_require_kvm();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_same_shape_accepted),
	    cmocka_unit_test(test_mutated_shape_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
