// SPDX-License-Identifier: Apache-2.0
/*
 * CRC-32C: the standard check value, chaining, and the fast path (the CPU instruction over
 * three interleaved chains, combined by table) bit for bit against the table-only one on
 * random buffers of every awkward length and alignment.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "common/crc32c.h"

static void test_check_value(void **state)
{
	assert_int_equal(crc32c(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(crc32c_portable(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(crc32c(crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
}

static void test_fast_path_matches_table(void **state)
{
	enum { MAX = 3 * 4096 + 64 };
	uint8_t *buf = malloc(MAX + 8);
	uint64_t x = 0x9E3779B97F4A7C15ull;

	for (size_t i = 0; i < MAX + 8; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		buf[i] = (uint8_t)x;
	}
	for (unsigned n = 0; n < 3000; n++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		size_t off = x % 8, len = n < 100 ? n : (x >> 8) % MAX;
		uint32_t seed = (uint32_t)(x >> 32);
		assert_int_equal(crc32c(seed, buf + off, len),
				 crc32c_portable(seed, buf + off, len));
	}
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_check_value),
	    cmocka_unit_test(test_fast_path_matches_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
