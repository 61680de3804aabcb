// SPDX-License-Identifier: Apache-2.0
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/trace.h"

static void emit_both(void)
{
	TRACE(smmu_walk_fault, "iova=%#x", 0x1000);
	TRACE(vfio_mig_state, "state=%d", 3);
}

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "r");
	static char buf[4096];
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	buf[n] = 0;
	if (f)
		fclose(f);
	return buf;
}

static void test_patterns_select_points(void **state)
{
	char path[] = "/tmp/vmig-trace-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);

	assert_int_equal(trace_set_output(path), 0);
	emit_both(); /* nothing enabled yet */
	assert_int_equal(trace_enable("smmu_*"), 0);
	emit_both();
	assert_int_equal(trace_enable("*,-smmu_*"), 0);
	emit_both();
	trace_shutdown();

	char *out = read_all(path);
	unlink(path);
	assert_non_null(strstr(out, "smmu_walk_fault: iova=0x1000"));
	assert_non_null(strstr(out, "vfio_mig_state: state=3"));
	/* Exactly one of each: the first emit was off, the second only smmu, the third only vfio */
	assert_null(strstr(strstr(out, "smmu_walk_fault") + 1, "smmu_walk_fault"));
	assert_null(strstr(strstr(out, "vfio_mig_state") + 1, "vfio_mig_state"));
	assert_true(strstr(out, "smmu_walk_fault") < strstr(out, "vfio_mig_state"));
}

static void test_bad_patterns_rejected(void **state)
{
	assert_int_equal(trace_enable("a,,b"), -22);
	assert_int_equal(trace_enable("-"), -22);
	assert_int_equal(trace_enable("ok_*"), 0);
	assert_string_equal(trace_patterns(), "ok_*");
	assert_true(trace_name_enabled("ok_x"));
	assert_false(trace_name_enabled("nok"));
	assert_int_equal(trace_set_output("/nonexistent-dir/x"), -2);
	trace_shutdown();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_patterns_select_points),
	    cmocka_unit_test(test_bad_patterns_rejected),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
