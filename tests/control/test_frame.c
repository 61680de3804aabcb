// SPDX-License-Identifier: Apache-2.0
/* QMP input framing (src/vmm/control/frame.c): how a byte stream is cut into messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/control/frame.h"

struct collect {
	char msgs[16][128];
	unsigned n, overflows;
	unsigned stop_after; /* 0: never ask to stop */
};

static bool on_msg(void *opaque, const char *msg, size_t len)
{
	struct collect *c = opaque;

	if (c->n == sizeof(c->msgs) / sizeof(c->msgs[0]))
		return true; /* only the random test gets here; it checks nothing but survival */
	if (!msg) {
		snprintf(c->msgs[c->n++], sizeof(c->msgs[0]), "<too large>");
		c->overflows++;
	} else {
		assert_int_equal(strlen(msg), len);
		snprintf(c->msgs[c->n++], sizeof(c->msgs[0]), "%s", msg);
	}
	return !(c->stop_after && c->n == c->stop_after);
}

/* Feeds text whole, then byte by byte: both must give the same messages. */
static void check_frames(const char *text, const char *const *want, unsigned nwant)
{
	for (int bytewise = 0; bytewise < 2; bytewise++) {
		struct frame f;
		struct collect c = {.n = 0};
		size_t len = strlen(text);

		assert_int_equal(frame_init(&f, 64), 0);
		if (bytewise) {
			for (size_t i = 0; i < len; i++)
				assert_true(frame_feed(&f, text + i, 1, on_msg, &c));
		} else {
			assert_true(frame_feed(&f, text, len, on_msg, &c));
		}
		if (c.n != nwant)
			fail_msg("'%s': %u messages, want %u", text, c.n, nwant);
		for (unsigned i = 0; i < nwant; i++)
			assert_string_equal(c.msgs[i], want[i]);
		frame_fini(&f);
	}
}

#define CHECK(text, ...)                                                                           \
	do {                                                                                       \
		static const char *const w_[] = {__VA_ARGS__};                                     \
		check_frames(text, w_, sizeof(w_) / sizeof(w_[0]));                                \
	} while (0)

static void test_objects(void **state)
{
	CHECK("{\"a\": 1}", "{\"a\": 1}");
	CHECK("{\"a\":{\"b\":[1,{}]}}{\"c\":2}\n  {}", "{\"a\":{\"b\":[1,{}]}}", "{\"c\":2}", "{}");
	/* Brackets and quotes inside strings do not count. */
	CHECK("{\"x\": \"}]{[\\\"\"} []", "{\"x\": \"}]{[\\\"\"}", "[]");
	CHECK("\r\n\t {\"execute\":\"stop\"}\r\n", "{\"execute\":\"stop\"}");
}

static void test_garbage(void **state)
{
	CHECK("foo {}", "foo", "{}");
	CHECK("foo{}", "foo", "{}");
	CHECK("42\ntrue ", "42", "true");
	CHECK("\"str\"{}", "\"str\"", "{}");
	CHECK("} ] {}", "}", "]", "{}");
	CHECK("{]", "{]");
	/* A raw newline in a string ends the message (it is invalid there anyway). */
	CHECK("{\"execute\": \"sto\n{}", "{\"execute\": \"sto", "{}");
	/* A byte no JSON token has, outside a string, ends the message at once: an error now. */
	CHECK("{\"execute\": nope\n", "{\"execute\": no", "pe");
	CHECK("{\"a\": @}{}", "{\"a\": @", "}", "{}");
	/* Unfinished but well-formed so far: nothing yet (the rest may follow). */
	check_frames("{\"execute\": tru", NULL, 0);
	check_frames("{\"a\": [1, 2", NULL, 0);
	check_frames("foo", NULL, 0);
}

static void test_overflow(void **state)
{
	char big[300];
	memset(big, ' ', sizeof(big));
	big[0] = '[';
	memcpy(big + 1, "\"", 1);
	big[200] = '"';
	big[201] = ']';
	big[202] = 0;
	/* Reported once, skipped to its end, and the stream goes on. */
	char text[400];
	snprintf(text, sizeof(text), "%s{\"ok\":1}", big);
	CHECK(text, "<too large>", "{\"ok\":1}");
	/* A huge bare word too. */
	memset(big, 'x', 299);
	big[299] = 0;
	snprintf(text, sizeof(text), "%s {}", big);
	CHECK(text, "<too large>", "{}");
}

static void test_stop_and_pending(void **state)
{
	struct frame f;
	struct collect c = {.stop_after = 1};

	assert_int_equal(frame_init(&f, 64), 0);
	assert_false(frame_pending(&f));
	assert_false(frame_feed(&f, "{}{}{}", 6, on_msg, &c));
	assert_int_equal(c.n, 1);
	frame_fini(&f);
	assert_int_equal(frame_init(&f, 64), 0);
	c = (struct collect){.n = 0};
	assert_true(frame_feed(&f, "{\"exec", 6, on_msg, &c));
	assert_true(frame_pending(&f));
	frame_fini(&f);
}

static void test_random_bytes(void **state)
{
	struct frame f;
	struct collect c;
	uint32_t x = 12345;
	char buf[512];

	assert_int_equal(frame_init(&f, 64), 0);
	for (int it = 0; it < 2000; it++) {
		for (size_t i = 0; i < sizeof(buf); i++) {
			x = x * 1103515245u + 12345u;
			buf[i] = "{}[]\"\\ a\n"[(x >> 16) % 9];
		}
		c = (struct collect){.n = 0};
		for (size_t i = 0; i < sizeof(buf); i += 32)
			frame_feed(&f, buf + i, 32, on_msg, &c);
	}
	frame_fini(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_objects),	 cmocka_unit_test(test_garbage),
	    cmocka_unit_test(test_overflow),	 cmocka_unit_test(test_stop_and_pending),
	    cmocka_unit_test(test_random_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
