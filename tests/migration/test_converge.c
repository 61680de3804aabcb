// SPDX-License-Identifier: Apache-2.0
/* The switch-over decision alone (src/vmm/migration/converge.c): a pure function. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "vmm/migration/internal.h"

#define MB 1000000ull

static struct mig_converge_in base(void)
{
	return (struct mig_converge_in){.remaining_bytes = 0,
					.bandwidth = 1000 * MB,
					.dirty_rate = 0,
					.overhead_us = 500,
					.limit_us = 300000,
					.pass = 1,
					.max_throttle_pct = 99};
}

static enum mig_decision decide(const struct mig_converge_in *in, uint64_t *expected)
{
	struct mig_converge_out out;
	mig_converge_decide(in, &out);
	if (expected)
		*expected = out.expected_us;
	return out.decision;
}

/* Idle: a few pages left, nothing dirtied meanwhile: switch at once, for milliseconds. */
static void test_idle_switches_at_once(void **state)
{
	struct mig_converge_in in = base();
	uint64_t exp;

	in.remaining_bytes = 40960;
	assert_int_equal(decide(&in, &exp), MIG_DECIDE_SWITCH);
	assert_true(exp < 1000);
}

/* A device's initial pre-copy bytes hold the switchover back even when idle, pass cap too. */
static void test_device_initial_data_first(void **state)
{
	struct mig_converge_in in = base();

	in.remaining_bytes = 4096 + 100;
	in.must_precopy_bytes = 100;
	in.max_passes = 1;
	assert_int_equal(decide(&in, NULL), MIG_DECIDE_NEXT_PASS);
	in.must_precopy_bytes = 0;
	assert_int_equal(decide(&in, NULL), MIG_DECIDE_SWITCH);
}

/* 100 MB left at 1 GB/s fits 300 ms, but the guest dirties slowly: another pass cuts it. */
static void test_fits_but_another_pass_helps(void **state)
{
	struct mig_converge_in in = base();
	uint64_t exp;

	in.remaining_bytes = 100 * MB;
	in.dirty_rate = 50 * MB;
	assert_int_equal(decide(&in, &exp), MIG_DECIDE_NEXT_PASS);
	assert_in_range(exp, 100000, 101000);
	/* The pass cap ends the refinement when it fits. */
	in.max_passes = 1;
	assert_int_equal(decide(&in, NULL), MIG_DECIDE_SWITCH);
}

/* Dirtying as fast as it is sent: another pass leaves as much, so stop now if it fits. */
static void test_fits_and_no_progress_switches(void **state)
{
	struct mig_converge_in in = base();

	in.remaining_bytes = 100 * MB;
	in.dirty_rate = 1000 * MB;
	assert_int_equal(decide(&in, NULL), MIG_DECIDE_SWITCH);
}

/* Over the limit: never switch, whatever the pass cap; throttle only with auto-converge. */
static void test_over_limit_never_switches(void **state)
{
	struct mig_converge_in in = base();
	uint64_t exp;

	in.remaining_bytes = 400 * MB;
	in.dirty_rate = 800 * MB;
	in.max_passes = 1;
	in.pass = 50;
	assert_int_equal(decide(&in, &exp), MIG_DECIDE_NEXT_PASS);
	assert_true(exp > in.limit_us);
	in.auto_converge = true;
	assert_int_equal(decide(&in, NULL), MIG_DECIDE_THROTTLE);
	in.throttle_pct = 99;
	assert_int_equal(decide(&in, NULL), MIG_DECIDE_NEXT_PASS);
	/* A guest dirtying slowly is not throttled: the passes converge on their own. */
	in.throttle_pct = 0;
	in.dirty_rate = 100 * MB;
	assert_int_equal(decide(&in, NULL), MIG_DECIDE_NEXT_PASS);
}

/* The estimate is the transfer plus the measured overhead; no bandwidth yet: unknown. */
static void test_expected_downtime(void **state)
{
	struct mig_converge_in in = base();
	uint64_t exp;

	in.remaining_bytes = 10 * MB;
	in.overhead_us = 2000;
	decide(&in, &exp);
	assert_int_equal(exp, 12000);
	in.bandwidth = 0;
	assert_int_equal(decide(&in, &exp), MIG_DECIDE_NEXT_PASS);
	assert_true(exp > in.limit_us);
	in.remaining_bytes = 0;
	assert_int_equal(decide(&in, &exp), MIG_DECIDE_SWITCH);
	assert_int_equal(exp, 2000);
}
/*
 * A few pages left, but each pass spends 8 ms harvesting (device-log) while the guest dirties
 * 8 MB/s: another pass would leave as much as now, so switch (counting only the transfer,
 * it iterated until the drain bound).
 */
static void test_harvest_bound_pass_switches(void **state)
{
	struct mig_converge_in in = base();

	in.remaining_bytes = 65680;
	in.bandwidth = 43 * MB;
	in.dirty_rate = 8500000;
	in.overhead_us = 8400;
	assert_int_equal(decide(&in, NULL), MIG_DECIDE_NEXT_PASS); /* harvest unknown */
	in.pass_sync_us = 8000;
	assert_int_equal(decide(&in, NULL), MIG_DECIDE_SWITCH);
	/* A slow guest still gets its refining pass when the transfer dominates. */
	in.remaining_bytes = 100 * MB;
	in.bandwidth = 1000 * MB;
	in.dirty_rate = 50 * MB;
	assert_int_equal(decide(&in, NULL), MIG_DECIDE_NEXT_PASS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_idle_switches_at_once),
	    cmocka_unit_test(test_device_initial_data_first),
	    cmocka_unit_test(test_fits_but_another_pass_helps),
	    cmocka_unit_test(test_fits_and_no_progress_switches),
	    cmocka_unit_test(test_over_limit_never_switches),
	    cmocka_unit_test(test_expected_downtime),
	    cmocka_unit_test(test_harvest_bound_pass_switches),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
