// SPDX-License-Identifier: Apache-2.0
/* The JSON parser and writer (src/common/json.c): round trips, refusals, limits, fuzzing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/json.h"

static int parse_str(const char *s, struct json_value **v, struct json_error *e)
{
	return json_parse(s, strlen(s), NULL, v, e);
}

/* Writes v compactly (the writer's own format) into a malloc'd string. */
static char *write_str(const struct json_value *v)
{
	struct json_writer w;

	json_writer_init(&w, 1 << 20);
	json_write_value(&w, v);
	assert_int_equal(json_writer_error(&w), 0);
	return json_writer_take(&w, NULL);
}

/* parse -> write -> parse gives an equal tree, and writing it again gives the same text. */
static void check_round_trip(const char *text)
{
	struct json_value *a, *b;
	struct json_error e;

	if (parse_str(text, &a, &e) != 0)
		fail_msg("refused valid %s at %zu: %s", text, e.pos, e.msg);
	char *t1 = write_str(a);
	assert_int_equal(parse_str(t1, &b, &e), 0);
	assert_true(json_equal(a, b));
	char *t2 = write_str(b);
	assert_string_equal(t1, t2);
	free(t1);
	free(t2);
	json_free(a);
	json_free(b);
}

static void test_round_trip(void **state)
{
	static const char *const docs[] = {
	    "null",
	    "true",
	    "false",
	    "0",
	    "-0",
	    "42",
	    "-17",
	    "9223372036854775807",
	    "-9223372036854775808",
	    "1.5",
	    "-2.25e-3",
	    "1E+300",
	    "0.1",
	    "\"\"",
	    "\"abc\"",
	    "\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"",
	    "\"\\u00e9\\u4e2d\\ud83d\\ude00\"",
	    "\"caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80\"",
	    "\"\\u001f\\u007f\"",
	    "[]",
	    "{}",
	    "[1,[2,[3,[]]],{}]",
	    " { \"a\" : 1 , \"b\" : [ true , null ] } \n",
	    "{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": []}, \"id\": "
	    "{\"x\": [1, 2.5, \"s\"]}}",
	    "{\"\": 0, \"\\u0041\": 1}",
	};
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++)
		check_round_trip(docs[i]);
}

static void test_values(void **state)
{
	struct json_value *v;
	struct json_error e;

	assert_int_equal(
	    parse_str("{\"a\": -9223372036854775808, \"b\": \"\\ud83d\\ude00\"}", &v, &e), 0);
	assert_int_equal(v->type, JSON_OBJECT);
	const struct json_value *a = json_object_get(v, "a"), *b = json_object_get(v, "b");
	assert_non_null(a);
	assert_int_equal(a->type, JSON_INT);
	assert_true(a->i == INT64_MIN);
	assert_int_equal(b->type, JSON_STRING);
	assert_int_equal(b->str.len, 4);
	assert_memory_equal(b->str.s, "\xf0\x9f\x98\x80", 4);
	assert_null(json_object_get(v, "c"));
	json_free(v);
	assert_int_equal(parse_str("2.5", &v, &e), 0);
	assert_int_equal(v->type, JSON_DOUBLE);
	assert_true(v->d == 2.5);
	json_free(v);
}

struct bad {
	const char *text;
	size_t len; /* 0: strlen */
	size_t pos;
	int err;
	const char *msg;
};

static void check_bad(const struct bad *b)
{
	struct json_value *v = (void *)1;
	struct json_error e = {0};
	size_t len = b->len ? b->len : strlen(b->text);
	int ret = json_parse(b->text, len, NULL, &v, &e);

	if (ret != b->err || e.pos != b->pos || !e.msg || !strstr(e.msg, b->msg))
		fail_msg("'%s': got %d at %zu (%s), want %d at %zu (%s)", b->text, ret, e.pos,
			 e.msg ? e.msg : "-", b->err, b->pos, b->msg);
	assert_null(v);
}

static void test_malformed(void **state)
{
	static const struct bad bads[] = {
	    {"", 0, 0, -EINVAL, "end of input"},
	    {"   ", 0, 3, -EINVAL, "end of input"},
	    {"{", 0, 1, -EINVAL, "string key"},
	    {"{\"a\"}", 0, 4, -EINVAL, "expected ':'"},
	    {"{\"a\":}", 0, 5, -EINVAL, "unexpected character"},
	    {"{\"a\":1,}", 0, 7, -EINVAL, "string key"},
	    {"{a:1}", 0, 1, -EINVAL, "string key"},
	    {"{\"a\":1 \"b\":2}", 0, 7, -EINVAL, "expected ',' or '}'"},
	    {"[1,]", 0, 3, -EINVAL, "unexpected character"},
	    {"[1 2]", 0, 3, -EINVAL, "expected ',' or ']'"},
	    {"[1", 0, 2, -EINVAL, "expected ',' or ']'"},
	    {"]", 0, 0, -EINVAL, "unexpected character"},
	    {"{} {}", 0, 3, -EINVAL, "trailing"},
	    {"nul", 0, 0, -EINVAL, "literal"},
	    {"truex", 0, 4, -EINVAL, "trailing"},
	    {"TRUE", 0, 0, -EINVAL, "unexpected character"},
	    {"// c\n1", 0, 0, -EINVAL, "unexpected character"},
	    {"'a'", 0, 0, -EINVAL, "unexpected character"},
	    {"01", 0, 1, -EINVAL, "trailing"},
	    {"-", 0, 0, -EINVAL, "invalid number"},
	    {"+1", 0, 0, -EINVAL, "unexpected character"},
	    {"1.", 0, 1, -EINVAL, "after '.'"},
	    {".5", 0, 0, -EINVAL, "unexpected character"},
	    {"1e", 0, 1, -EINVAL, "exponent"},
	    {"1e+", 0, 1, -EINVAL, "exponent"},
	    {"9223372036854775808", 0, 0, -EINVAL, "out of range"},
	    {"-9223372036854775809", 0, 0, -EINVAL, "out of range"},
	    {"[1e400]", 0, 1, -EINVAL, "out of range"},
	    {"NaN", 0, 0, -EINVAL, "unexpected character"},
	    {"\"abc", 0, 0, -EINVAL, "unterminated"},
	    {"\"a\\\"", 0, 0, -EINVAL, "unterminated"},
	    {"\"a\nb\"", 0, 2, -EINVAL, "control character"},
	    {"\"\\x\"", 0, 1, -EINVAL, "invalid escape"},
	    {"\"\\u12\"", 0, 1, -EINVAL, "\\u escape"},
	    {"\"\\u12g4\"", 0, 1, -EINVAL, "\\u escape"},
	    {"\"\\u0000\"", 0, 1, -EINVAL, "\\u0000"},
	    {"\"\\ud800\"", 0, 1, -EINVAL, "lone high"},
	    {"\"\\ud800\\u0041\"", 0, 1, -EINVAL, "lone high"},
	    {"\"\\udc00\"", 0, 1, -EINVAL, "lone low"},
	    {"\"x\xc0\x80\"", 0, 2, -EINVAL, "UTF-8"},	       /* overlong NUL */
	    {"\"x\xe0\x80\xaf\"", 0, 2, -EINVAL, "UTF-8"},     /* overlong '/' */
	    {"\"x\xed\xa0\x80\"", 0, 2, -EINVAL, "UTF-8"},     /* encoded surrogate */
	    {"\"x\xf4\x90\x80\x80\"", 0, 2, -EINVAL, "UTF-8"}, /* > U+10FFFF */
	    {"\"x\xff\"", 0, 2, -EINVAL, "UTF-8"},
	    {"\"x\xe4\xb8\"", 0, 2, -EINVAL, "UTF-8"}, /* truncated sequence */
	    {"\"x\x80\"", 0, 2, -EINVAL, "UTF-8"},     /* lone continuation */
	    {"\"a\0b\"", 5, 2, -EINVAL, "control character"},
	    {"[1]\0", 4, 3, -EINVAL, "trailing"},
	    {"{\"k\": 1, \"k\": 2}", 0, 9, -EINVAL, "duplicate key"},
	    {"{\"k\": 1, \"\\u006b\": 2}", 0, 9, -EINVAL, "duplicate key"},
	};
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++)
		check_bad(&bads[i]);
}

static char *repeat(const char *a, size_t n, const char *b, size_t m)
{
	size_t la = strlen(a), lb = strlen(b);
	char *s = malloc(la * n + lb * m + 1), *p = s;

	for (size_t i = 0; i < n; i++, p += la)
		memcpy(p, a, la);
	for (size_t i = 0; i < m; i++, p += lb)
		memcpy(p, b, lb);
	*p = 0;
	return s;
}

static void test_limits(void **state)
{
	const struct json_limits lim = {.max_size = 1000, .max_depth = 4, .max_values = 10};
	struct json_value *v;
	struct json_error e;
	char *s;

	assert_int_equal(json_parse("[[[[1]]]]", 9, &lim, &v, &e), 0);
	json_free(v);
	assert_int_equal(json_parse("[[[[[1]]]]]", 11, &lim, &v, &e), -E2BIG);
	assert_int_equal(e.pos, 4);
	assert_non_null(strstr(e.msg, "deep"));
	assert_int_equal(json_parse("[1,2,3,4,5,6,7,8,9]", 19, &lim, &v, &e), 0);
	json_free(v);
	assert_int_equal(json_parse("[1,2,3,4,5,6,7,8,9,10]", 22, &lim, &v, &e), -E2BIG);
	assert_non_null(strstr(e.msg, "too many"));
	s = repeat(" ", 1000, "1", 1);
	assert_int_equal(json_parse(s, strlen(s), &lim, &v, &e), -E2BIG);
	assert_int_equal(e.pos, 1000);
	free(s);

	/* The defaults: 64 KiB, depth 32. A deep hostile document fails fast, no recursion. */
	s = repeat("[", 32, "]", 32);
	assert_int_equal(parse_str(s, &v, &e), 0);
	json_free(v);
	free(s);
	s = repeat("[", 60000, "]", 0);
	assert_int_equal(parse_str(s, &v, &e), -E2BIG);
	assert_int_equal(e.pos, 32);
	free(s);
	s = repeat("[", 1, "1,", 20000);
	s[strlen(s) - 1] = ']';
	assert_int_equal(parse_str(s, &v, &e), -E2BIG);
	free(s);
	s = repeat("x", 70000, "", 0);
	assert_int_equal(parse_str(s, &v, &e), -E2BIG);
	free(s);
}

static void test_writer(void **state)
{
	struct json_writer w;

	json_writer_init(&w, 4096);
	json_write_begin_object(&w);
	json_write_key(&w, "s");
	json_write_string_n(&w, "q\"\\\n\x01\x7f\xff\xc3\xa9", 9);
	json_write_key(&w, "a");
	json_write_begin_array(&w);
	json_write_int(&w, INT64_MIN);
	json_write_uint(&w, UINT64_MAX);
	json_write_double(&w, 1.0);
	json_write_bool(&w, false);
	json_write_null(&w);
	json_write_begin_object(&w);
	json_write_end_object(&w);
	json_write_end_array(&w);
	json_write_end_object(&w);
	assert_int_equal(json_writer_error(&w), 0);
	assert_string_equal(w.buf, "{\"s\": \"q\\\"\\\\\\u000a\\u0001\\u007f\\ufffd\xc3\xa9\", "
				   "\"a\": [-9223372036854775808, 18446744073709551615, 1.0, "
				   "false, null, {}]}");
	json_writer_fini(&w);

	/* The cap, misuse, and values JSON cannot carry. */
	json_writer_init(&w, 8);
	json_write_string(&w, "0123456789");
	assert_int_equal(json_writer_error(&w), -E2BIG);
	json_writer_fini(&w);
	json_writer_init(&w, 64);
	json_write_end_array(&w);
	assert_int_equal(json_writer_error(&w), -EINVAL);
	json_writer_fini(&w);
	json_writer_init(&w, 64);
	json_write_begin_array(&w);
	assert_int_equal(json_writer_error(&w), -EINVAL); /* unclosed */
	json_writer_fini(&w);
	json_writer_init(&w, 64);
	json_write_double(&w, 0.0 / 0.0);
	assert_int_equal(json_writer_error(&w), -EINVAL);
	json_writer_fini(&w);
}

/* Fuzzing -------------------------------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 11);
}

static const char *const fuzz_seeds[] = {
    "{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": [\"oob\"]}, \"id\": 1}",
    "[1, -2.5e3, true, false, null, \"\\u00e9\\ud83d\\ude00\", {\"a\": [[], {}]}]",
    "{\"s\": \"caf\xc3\xa9 \\n\\t\\\"\", \"n\": 9223372036854775807, \"m\": -0.0}",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
};

static const char fuzz_alphabet[] = "{}[]\",:\\/ \n\t0123456789-+.eEtrufalsn\x80\xc3\xff\xed";

static size_t mutate(char *buf, size_t len, size_t cap)
{
	unsigned ops = 1 + rng() % 4;

	for (unsigned k = 0; k < ops; k++) {
		size_t at = len ? rng() % len : 0;
		switch (rng() % 5) {
		case 0: /* replace a byte */
			if (len)
				buf[at] = rng() % 3
					      ? fuzz_alphabet[rng() % (sizeof(fuzz_alphabet) - 1)]
					      : (char)rng();
			break;
		case 1: /* insert a byte */
			if (len < cap) {
				memmove(buf + at + 1, buf + at, len - at);
				buf[at] = fuzz_alphabet[rng() % (sizeof(fuzz_alphabet) - 1)];
				len++;
			}
			break;
		case 2: /* delete a run */
			if (len) {
				size_t n = 1 + rng() % 4;
				n = n > len - at ? len - at : n;
				memmove(buf + at, buf + at + n, len - at - n);
				len -= n;
			}
			break;
		case 3: /* duplicate a run */
			if (len && len * 2 <= cap) {
				size_t n = 1 + rng() % (len - at);
				memmove(buf + at + n, buf + at, len - at);
				len += n;
			}
			break;
		default: /* truncate */
			len = at;
			break;
		}
	}
	return len;
}

static void test_fuzz(void **state)
{
	enum { ITERS = 30000, CAP = 4096 };
	char *buf = malloc(CAP);
	unsigned ok = 0;

	for (unsigned i = 0; i < ITERS; i++) {
		const char *seed = fuzz_seeds[rng() % (sizeof(fuzz_seeds) / sizeof(fuzz_seeds[0]))];
		size_t len = strlen(seed);
		struct json_value *v;
		struct json_error e;

		memcpy(buf, seed, len);
		len = mutate(buf, len, CAP);
		int ret = json_parse(buf, len, NULL, &v, &e);
		if (ret == 0) {
			/* Whatever is accepted must survive the writer and come back equal. */
			char *text = write_str(v);
			struct json_value *back;
			assert_int_equal(parse_str(text, &back, &e), 0);
			assert_true(json_equal(v, back));
			json_free(back);
			free(text);
			json_free(v);
			ok++;
		} else {
			assert_true(ret == -EINVAL || ret == -E2BIG);
			assert_true(e.pos <= len);
			assert_non_null(e.msg);
			assert_null(v);
		}
	}
	free(buf);
	print_message("fuzz: %u of %u mutated inputs were valid JSON\n", ok, (unsigned)ITERS);
	assert_true(ok > 0 && ok < ITERS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip), cmocka_unit_test(test_values),
	    cmocka_unit_test(test_malformed),  cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_writer),     cmocka_unit_test(test_fuzz),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
