// SPDX-License-Identifier: Apache-2.0
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "common/bitmap.h"

/* A bit-per-byte reference model the word-based code is checked against. */
static void check_against_model(const uint64_t *map, const unsigned char *model, size_t n)
{
	for (size_t i = 0; i < n; i++)
		assert_int_equal(bitmap_test(map, i), model[i]);
}

static void test_ranges_match_model(void **state)
{
	enum { N = 1000 };
	uint64_t *map = bitmap_alloc(N);
	unsigned char model[N] = {0};

	srand(7);
	for (int iter = 0; iter < 2000; iter++) {
		size_t start = (size_t)rand() % N;
		size_t count = (size_t)rand() % (N - start + 1);
		int set = rand() & 1;

		if (set)
			bitmap_set_range(map, start, count);
		else
			bitmap_clear_range(map, start, count);
		for (size_t i = start; i < start + count; i++)
			model[i] = (unsigned char)set;
	}
	check_against_model(map, model, N);
	size_t expected = 0;
	for (size_t i = 0; i < N; i++)
		expected += model[i];
	assert_int_equal(bitmap_count(map, N), expected);
	free(map);
}

static void test_find_next(void **state)
{
	enum { N = 300 };
	uint64_t *map = bitmap_alloc(N);

	assert_int_equal(bitmap_find_next_set(map, N, 0), N);
	assert_true(bitmap_empty(map, N));
	bitmap_set(map, 5);
	bitmap_set(map, 64);
	bitmap_set(map, 299);
	assert_int_equal(bitmap_find_next_set(map, N, 0), 5);
	assert_int_equal(bitmap_find_next_set(map, N, 6), 64);
	assert_int_equal(bitmap_find_next_set(map, N, 65), 299);
	assert_int_equal(bitmap_find_next_set(map, 299, 65), 299); /* beyond nbits: none */
	assert_int_equal(bitmap_find_next_clear(map, N, 5), 6);
	bitmap_set_range(map, 0, N);
	assert_int_equal(bitmap_find_next_clear(map, N, 0), N);
	assert_true(bitmap_test_range_any(map, 100, 1));
	bitmap_clear_range(map, 100, 50);
	assert_false(bitmap_test_range_any(map, 100, 50));
	assert_true(bitmap_test_range_any(map, 100, 51));
	free(map);
}

static void test_or_counts_new_bits(void **state)
{
	enum { N = 130 };
	uint64_t *a = bitmap_alloc(N), *b = bitmap_alloc(N);

	bitmap_set_range(a, 0, 10);
	bitmap_set_range(b, 5, 10);
	b[2] |= 1ull << 10; /* bit 138: past nbits, must not be merged or counted */
	assert_int_equal(bitmap_or(a, b, N), 5);
	assert_int_equal(bitmap_count(a, N), 15);
	assert_false(bitmap_test(a, 138));
	free(a);
	free(b);
}

static void test_atomic_take(void **state)
{
	uint64_t *map = bitmap_alloc(128);

	bitmap_set_atomic(map, 3);
	bitmap_set_atomic(map, 70);
	assert_int_equal(bitmap_take_word_atomic(map, 0), 1ull << 3);
	assert_int_equal(bitmap_take_word_atomic(map, 0), 0);
	assert_int_equal(bitmap_take_word_atomic(map, 1), 1ull << 6);
	free(map);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ranges_match_model),
	    cmocka_unit_test(test_find_next),
	    cmocka_unit_test(test_or_counts_new_bits),
	    cmocka_unit_test(test_atomic_take),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
