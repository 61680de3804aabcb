// SPDX-License-Identifier: Apache-2.0
/*
 * The guest firmware's own drivers and workloads (docs/guest.md) on the wired VMM: each
 * workload must finish with status=ok and 0 mismatches; sva must have handled faults (the
 * device stalled, the guest mapped the page and resumed it), hostile must pass every case.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "tests/e2e/e2e_rig.h"

static const char *image;

struct run {
	struct e2e e;
	int code;
	char line[64]; /* "RESULT workload=<name>" */
};

static void run_workload(struct run *r, const char *name)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "cpus=1 workload=%s", name);
	snprintf(r->line, sizeof(r->line), "RESULT workload=%s ", name);
	e2e_boot_mem(&r->e, image, 256ull << 20, cmd, NULL);
	e2e_start(&r->e);
	r->code = machine_wait(r->e.m, 30000);
	if (r->code != 0)
		fprintf(stderr, "%s\n", r->e.vm.con.text);
}

static long long result(struct run *r, const char *key)
{
	return sys_console_value(&r->e.vm, r->line, key);
}

static void check_ok(struct run *r)
{
	assert_int_equal(r->code, 0);
	assert_true(sys_console_line_has(&r->e.vm, r->line, "status=ok"));
	assert_int_equal(result(r, "mismatches="), 0);
	assert_true(result(r, "jobs=") > 0);
}

static void test_dma(void **state)
{
	struct run r;
	struct devices_stats st;

	run_workload(&r, "dma");
	check_ok(&r);
	assert_true(result(&r, "bytes=") > 0);
	devices_get_stats(r.e.dev, &st);
	assert_true(st.msis > 0);			/* completion MSIs crossed both stages */
	assert_int_equal(st.sdma.doorbells_trapped, 0); /* the fast path carried them all */
	e2e_fini(&r.e);
}

static void test_remap(void **state)
{
	struct run r;
	struct devices_stats st;

	run_workload(&r, "remap");
	check_ok(&r);
	assert_true(result(&r, "remaps=") > 0);
	assert_int_equal(result(&r, "stale="), 0);
	devices_get_stats(r.e.dev, &st);
	assert_true(st.nested.inv_cmds > 0); /* the guest's TLBIs reached the host */
	e2e_fini(&r.e);
}

static void test_sva(void **state)
{
	struct run r;
	struct devices_stats st;

	run_workload(&r, "sva");
	check_ok(&r);
	assert_true(result(&r, "faults=") > 0);
	devices_get_stats(r.e.dev, &st);
	assert_true(st.nested.faults > 0);    /* host stalls given to the guest */
	assert_true(st.nested.responses > 0); /* and answered by its RESUME commands */
	e2e_fini(&r.e);
}

static void test_hostile(void **state)
{
	struct run r;

	run_workload(&r, "hostile");
	assert_int_equal(r.code, 0);
	assert_true(sys_console_line_has(&r.e.vm, r.line, "status=ok"));
	assert_true(result(&r, "cases=") > 0);
	assert_int_equal(result(&r, "passed="), result(&r, "cases="));
	assert_false(sys_console_has(&r.e.vm, "result=fail"));
	e2e_fini(&r.e);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dma),
	    cmocka_unit_test(test_remap),
	    cmocka_unit_test(test_sva),
	    cmocka_unit_test(test_hostile),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s FIRMWARE\n", argv[0]);
		return 1;
	}
	image = argv[1];
	e2e_require_kvm();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
