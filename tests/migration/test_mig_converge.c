// SPDX-License-Identifier: Apache-2.0
/*
 * Convergence: a guest that dirties faster than max-bandwidth lets through. Without
 * auto-converge the migration never switches over past the limit: it keeps iterating and
 * reports an expected downtime that is the truth (what is dirty over what the link
 * carries), until it is cancelled and the guest, resumed, verifies clean. With
 * auto-converge the vCPUs are throttled until the rest fits: it completes, the measured
 * downtime is within the limit, and the guest verifies clean on the destination.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/util.h"
#include "mig_rig.h"

#define LIMIT_MS  300
#define BANDWIDTH (24ull << 20) /* bytes/s: well below the guest's dirty rate */

static struct rig_case slow_case(char *uri, size_t len)
{
	return (struct rig_case){.uri = rig_tcp_uri(uri, len),
				 .mem = 256 * MiB,
				 .vcpus = 2,
				 .src_dirty = VM_DIRTY_AUTO,
				 .dst_dirty = VM_DIRTY_AUTO,
				 .guest_args = "workload=dirty,verify secs=25 ws=32M",
				 .delay_ms = 300};
}

static void slow_link(struct migration *mig, bool auto_converge)
{
	char err[256];
	struct mig_params p = {.downtime_limit_ms = LIMIT_MS, .max_bandwidth = BANDWIDTH};

	assert_int_equal(migration_set_params(mig, &p,
					      MIG_PARAM_DOWNTIME_LIMIT | MIG_PARAM_MAX_BANDWIDTH,
					      err, sizeof(err)),
			 0);
	assert_int_equal(
	    migration_set_cap(mig, MIG_CAP_AUTO_CONVERGE, auto_converge, err, sizeof(err)), 0);
}

static void test_no_autoconverge_keeps_iterating(void **state)
{
	char uri[64];
	struct rig_case c = slow_case(uri, sizeof(uri));
	struct mig_info info;
	struct rig r;

	rig_source_create(&r, &c);
	rig_dest_create(&r);
	slow_link(r.src.mig, false);
	rig_start(&r);
	/* Several passes: each sends the 32 MiB working set at 24 MiB/s. */
	for (int i = 0; i < 200; i++) {
		migration_query(r.src.mig, &info);
		if (info.passes >= 4)
			break;
		usleep(50000);
	}
	migration_query(r.src.mig, &info);
	printf("after %llu passes: status %s, remaining %llu, expected downtime %llu ms\n",
	       (unsigned long long)info.passes, migration_status_name(info.status),
	       (unsigned long long)info.ram.remaining,
	       (unsigned long long)info.expected_downtime_ms);
	assert_int_equal(info.status, MIG_STATUS_ACTIVE);
	assert_true(info.passes >= 4);
	/* Truthful: over the limit, and about the dirty bytes over the link's rate. */
	assert_true(info.expected_downtime_ms > LIMIT_MS);
	assert_true(info.expected_downtime_ms >= 500 && info.expected_downtime_ms <= 5000);
	assert_int_equal(info.cpu_throttle_percentage, 0);
	assert_int_equal(migration_cancel(r.src.mig), 0);
	assert_int_equal(rig_wait_final(r.src.mig, &info, RIG_WAIT_MS), MIG_STATUS_CANCELLED);
	assert_false(migration_source_done(r.src.mig));
	assert_int_equal(rig_wait_incoming(&r, RIG_WAIT_MS), -1);
	assert_false(r.dst.vm.m->vm->started);
	rig_destroy_side(&r.dst);
	/* The source rolled back: its guest runs on and verifies clean. */
	assert_false(vm_is_paused(r.src.vm.m->vm));
	rig_expect_guest_ok(&r.src.vm);
	rig_destroy_side(&r.src);
}

static void test_autoconverge_completes_within_limit(void **state)
{
	char uri[64];
	struct rig_case c = slow_case(uri, sizeof(uri));
	struct mig_info info;
	uint64_t max_throttle = 0;
	struct rig r;

	rig_source_create(&r, &c);
	rig_dest_create(&r);
	slow_link(r.src.mig, true);
	rig_start(&r);
	do {
		usleep(50000);
		migration_query(r.src.mig, &info);
		max_throttle = MAX(max_throttle, info.cpu_throttle_percentage);
	} while (!rig_status_final(info.status));
	printf("%s after %llu passes, throttle up to %llu%%, downtime %llu us\n",
	       migration_status_name(info.status), (unsigned long long)info.passes,
	       (unsigned long long)max_throttle, (unsigned long long)info.downtime_us);
	assert_int_equal(info.status, MIG_STATUS_COMPLETED);
	assert_true(max_throttle > 0);
	assert_true(info.downtime_us <= LIMIT_MS * 1000);
	assert_int_equal(rig_wait_incoming(&r, RIG_WAIT_MS), 1);
	rig_destroy_side(&r.src);
	rig_expect_guest_ok(&r.dst.vm);
	rig_destroy_side(&r.dst);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_no_autoconverge_keeps_iterating),
	    cmocka_unit_test(test_autoconverge_completes_within_limit),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s GUEST_IMAGE\n", argv[0]);
		return 2;
	}
	rig_image = argv[1];
	sys_require_kvm();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
