// SPDX-License-Identifier: Apache-2.0
/*
 * The machine-shape record without KVM: a round trip compares equal, each kind of mismatch
 * is refused with -EPROTO and a reason naming it, and truncated or garbage records are
 * refused with -EINVAL (or -EPROTO) without a crash (a seeded fuzz loop: VMIG_FUZZ_SEED,
 * VMIG_FUZZ_ITERS to run it longer).
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

#include "common/util.h"
#include "vmm/kvm/shape.h"

static const struct kvm_cpuid_entry2 cpuid[] = {
    {.function = 0, .eax = 0xD, .ebx = 0x756E6547},
    {.function = 1, .eax = 0x806F8, .ecx = 0xFEDA3203, .edx = 0x178BFBFF},
    {.function = 7, .index = 0, .flags = 1, .ebx = 0xF1BF07AB},
    {.function = 0xD, .index = 1, .flags = 1, .eax = 0xF},
};
static const uint32_t msrs[] = {0x10, 0x174, 0x175, 0xC0000080, 0xC0000100};

static struct vm_shape base_shape(void)
{
	return (struct vm_shape){.nr_vcpus = 4,
				 .tsc_khz = 2600000,
				 .xsave_size = 4096,
				 .nr_cpuid = ARRAY_SIZE(cpuid),
				 .cpuid = cpuid,
				 .nr_msrs = ARRAY_SIZE(msrs),
				 .msr_index = msrs};
}

/* Encodes `src`, compares it against the base shape; returns the result and the reason. */
static int compare_with(const struct vm_shape *src, char *why, size_t n)
{
	struct vm_shape here = base_shape();
	void *blob;
	size_t len;

	assert_int_equal(vm_shape_encode(src, &blob, &len), 0);
	int ret = vm_shape_compare(&here, blob, len, why, n);
	free(blob);
	return ret;
}

static void expect_mismatch(const struct vm_shape *src, const char *reason)
{
	char why[160];

	assert_int_equal(compare_with(src, why, sizeof(why)), -EPROTO);
	printf("refused: %s\n", why);
	assert_string_equal(why, reason);
}

static void test_round_trip_equal(void **state)
{
	struct vm_shape s = base_shape();
	char why[64] = "junk";

	assert_int_equal(compare_with(&s, why, sizeof(why)), 0);
	assert_string_equal(why, "");
}

static void test_each_mismatch_named(void **state)
{
	struct vm_shape s = base_shape();
	struct kvm_cpuid_entry2 other[ARRAY_SIZE(cpuid)];

	memcpy(other, cpuid, sizeof(cpuid));
	other[2].ebx ^= 1u << 5;
	s.cpuid = other;
	expect_mismatch(&s, "CPUID leaf 0x7.0 ebx differs: source 0xf1bf078b here 0xf1bf07ab");
	s = base_shape();
	s.nr_cpuid--;
	expect_mismatch(&s, "CPUID leaf 0xd.1 is here, not on the source");
	memcpy(other, cpuid, sizeof(cpuid));
	other[3].index = 2;
	s = base_shape();
	s.cpuid = other;
	expect_mismatch(&s, "CPUID leaf 0xd.2 is on the source, not here");
	s = base_shape();
	s.tsc_khz = 2100000;
	expect_mismatch(&s, "TSC frequency 2100000 kHz on the source, 2600000 kHz here");
	s = base_shape();
	s.nr_msrs--;
	expect_mismatch(&s, "the source saves 4 MSRs, this host 5");
	s = base_shape();
	s.nr_vcpus = 2;
	expect_mismatch(&s, "the source has 2 vCPUs, this VM 4");
	s = base_shape();
	s.xsave_size = 8192;
	expect_mismatch(&s, "the source's XSAVE area is 8192 bytes, this host's only 4096");
	/* A smaller XSAVE area fits (KVM_SET_XSAVE takes it zero-padded). */
	s.xsave_size = 2048;
	assert_int_equal(compare_with(&s, NULL, 0), 0);
}

static void test_version_and_magic(void **state)
{
	struct vm_shape s = base_shape(), here = base_shape();
	uint8_t *blob;
	size_t len;
	char why[80];

	assert_int_equal(vm_shape_encode(&s, (void **)&blob, &len), 0);
	blob[4] = 2;
	assert_int_equal(vm_shape_compare(&here, blob, len, why, sizeof(why)), -EPROTO);
	assert_string_equal(why, "shape record version 2, this vmig reads 1");
	blob[4] = 1;
	blob[0] ^= 0xFF;
	assert_int_equal(vm_shape_compare(&here, blob, len, why, sizeof(why)), -EINVAL);
	/* A tiny reason buffer is cut, still terminated. */
	assert_int_equal(vm_shape_compare(&here, blob, len, why, 5), -EINVAL);
	assert_int_equal(strlen(why), 4);
	free(blob);
}

static void test_truncated_and_extended(void **state)
{
	struct vm_shape s = base_shape(), here = base_shape();
	uint8_t *blob;
	size_t len;
	char why[128];

	assert_int_equal(vm_shape_encode(&s, (void **)&blob, &len), 0);
	for (size_t n = 0; n < len; n++)
		assert_int_equal(vm_shape_compare(&here, blob, n, why, sizeof(why)), -EINVAL);
	uint8_t *longer = calloc(1, len + 4);
	memcpy(longer, blob, len);
	assert_int_equal(vm_shape_compare(&here, longer, len + 4, why, sizeof(why)), -EINVAL);
	assert_int_equal(vm_shape_compare(&here, NULL, 0, why, sizeof(why)), -EINVAL);
	/* Counts that would overflow the expected length are refused before any use. */
	memcpy(longer, blob, len);
	memset(longer + 24, 0xFF, 8);
	assert_int_equal(vm_shape_compare(&here, longer, len, why, sizeof(why)), -EINVAL);
	free(longer);
	free(blob);
}

static uint64_t fuzz_next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void fuzz_one(const struct vm_shape *here, uint8_t *buf, size_t len)
{
	char why[96];
	int ret = vm_shape_compare(here, buf, len, why, sizeof(why));
	if (ret != 0 && ret != -EINVAL && ret != -EPROTO)
		fail_msg("unexpected result %d", ret);
	if (!memchr(why, 0, sizeof(why)) || strchr(why, '\n'))
		fail_msg("reason not one terminated line");
}

static void test_fuzz_no_crash(void **state)
{
	struct vm_shape s = base_shape();
	uint8_t *blob;
	size_t len;
	const char *env = getenv("VMIG_FUZZ_SEED");
	const char *iters_env = getenv("VMIG_FUZZ_ITERS");
	uint64_t x = env ? strtoull(env, NULL, 0) | 1 : 0x5EED5EEDull;
	unsigned iters = iters_env ? (unsigned)strtoul(iters_env, NULL, 0) : 200000;

	printf("fuzz seed %#llx, %u iterations\n", (unsigned long long)x, iters);
	assert_int_equal(vm_shape_encode(&s, (void **)&blob, &len), 0);
	uint8_t *buf = malloc(len + 64);
	for (unsigned i = 0; i < iters; i++) {
		memcpy(buf, blob, len);
		unsigned flips = 1 + (unsigned)(fuzz_next(&x) % 4);
		for (unsigned f = 0; f < flips; f++)
			buf[fuzz_next(&x) % len] = (uint8_t)fuzz_next(&x);
		size_t n = len - 8 + (size_t)(fuzz_next(&x) % 16);
		if (i % 4 == 0)
			n = (size_t)(fuzz_next(&x) % (len + 64));
		/* Exactly sized heap buffers: ASan sees any read past the record. */
		uint8_t *exact = malloc(n ? n : 1);
		memcpy(exact, buf, MIN(n, len + 64));
		fuzz_one(&s, exact, n);
		free(exact);
	}
	free(buf);
	free(blob);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip_equal),  cmocka_unit_test(test_each_mismatch_named),
	    cmocka_unit_test(test_version_and_magic), cmocka_unit_test(test_truncated_and_extended),
	    cmocka_unit_test(test_fuzz_no_crash),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
