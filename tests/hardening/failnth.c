// SPDX-License-Identifier: Apache-2.0
#include "failnth.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#define HAVE_LSAN 1
#endif

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t sz);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);
char *__real_strdup(const char *s);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t sz);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_aligned_alloc(size_t align, size_t n);
char *__wrap_strdup(const char *s);

/* Allocations left before the failing one (0 = disarmed); atomic: engine threads allocate. */
static atomic_uint countdown;
static atomic_bool fired;

static bool failnth_hit(void)
{
	unsigned c = atomic_load(&countdown);

	while (c) {
		if (atomic_compare_exchange_weak(&countdown, &c, c - 1)) {
			if (c == 1) {
				atomic_store(&fired, true);
				return true;
			}
			return false;
		}
	}
	return false;
}

void *__wrap_malloc(size_t n)
{
	return failnth_hit() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t sz)
{
	return failnth_hit() ? NULL : __real_calloc(n, sz);
}

void *__wrap_realloc(void *p, size_t n)
{
	return failnth_hit() ? NULL : __real_realloc(p, n);
}

void *__wrap_aligned_alloc(size_t align, size_t n)
{
	return failnth_hit() ? NULL : __real_aligned_alloc(align, n);
}

char *__wrap_strdup(const char *s)
{
	return failnth_hit() ? NULL : __real_strdup(s);
}

void failnth_arm(unsigned n)
{
	atomic_store(&fired, false);
	atomic_store(&countdown, n);
}

bool failnth_disarm(void)
{
	atomic_store(&countdown, 0);
	return atomic_load(&fired);
}

static void failnth_check_leaks(const char *name, unsigned n)
{
#ifdef HAVE_LSAN
	if (__lsan_do_recoverable_leak_check())
		fail_msg("%s: leak with allocation %u failing", name, n);
#else
	(void)name;
	(void)n;
#endif
}

unsigned failnth_run(const char *name, int (*scenario)(void *arg), void *arg, unsigned max)
{
	unsigned n;

	for (n = 1; n <= max; n++) {
		int rc;
		bool hit;

		failnth_arm(n);
		rc = scenario(arg);
		hit = failnth_disarm();
		if (getenv("FAILNTH_DEBUG"))
			printf("%s n=%u rc=%d hit=%d\n", name, n, rc, hit);
		failnth_check_leaks(name, n);
		if (!hit) {
			if (rc)
				fail_msg("%s: fails (%d) with no allocation failing", name, rc);
			printf("%s: %u allocation sites, all failures handled\n", name, n - 1);
			return n;
		}
		if (rc > 0)
			fail_msg("%s: positive result %d with allocation %u failing", name, rc, n);
	}
	fail_msg("%s: more than %u allocations", name, max);
	return n;
}
