// SPDX-License-Identifier: Apache-2.0
/* Stalls: host fault -> guest event with Stall=1 and STAG -> RESUME/STALL_TERM -> host. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tests/vsmmu/harness.h"

static void setup(struct th *t, const struct vsmmu_config *cfg)
{
	th_init(t, cfg, true);
	th_attach(t, 0x10);
	th_attach(t, 0x20);
	th_driver_probe(t, false, 8, 8, 6);
	t->n_msi = 0;
}

static struct vsmmu_stall mk_stall(uint32_t sid, uint32_t cookie, uint64_t addr, bool write)
{
	return (struct vsmmu_stall){.vsid = sid,
				    .ssv = true,
				    .ssid = 3,
				    .addr = addr,
				    .read = !write,
				    .write = write,
				    .cookie = cookie};
}

static uint16_t pop_stall(struct th *t, uint32_t sid, uint64_t addr, bool write)
{
	uint64_t evt[4];

	assert_true(th_evt_pop(t, evt));
	assert_int_equal(FGET(evt[0], EVT0_ID), EVT_F_TRANSLATION);
	assert_int_equal(FGET(evt[0], EVT0_SID), sid);
	assert_int_equal(FGET(evt[0], EVT0_SSV), 1);
	assert_int_equal(FGET(evt[0], EVT0_SSID), 3);
	assert_int_equal(FGET(evt[1], EVT1_STALL), 1);
	assert_int_equal(FGET(evt[1], EVT1_RNW), !write);
	assert_int_equal(FGET(evt[1], EVT1_CLASS), EVT_CLASS_IN);
	assert_int_equal(evt[2], addr);
	return (uint16_t)FGET(evt[1], EVT1_STAG);
}

static void resume(struct th *t, uint32_t sid, uint16_t stag, unsigned resp)
{
	th_cmd(t, FSET(th_op(CMD_RESUME, sid), CMD0_RESUME_RESP, resp),
	       FSET(0, CMD1_RESUME_STAG, stag));
	th_kick(t); /* no CMD_SYNC needed after RESUME */
}

static void test_stall_resume_retry_and_abort(void **state)
{
	struct th t;
	struct vsmmu_stall a = mk_stall(0x10, 1001, 0x7000, true);
	struct vsmmu_stall b = mk_stall(0x10, 1002, 0x8000, false);
	uint16_t sa, sb;

	setup(&t, NULL);
	assert_int_equal(vsmmu_stall_inject(t.vs, &a), 0);
	assert_int_equal(vsmmu_stall_inject(t.vs, &b), 0);
	assert_int_equal(t.n_msi, 2); /* event-queue MSIs */
	assert_int_equal(vsmmu_stall_count(t.vs), 2);
	sa = pop_stall(&t, 0x10, 0x7000, true);
	sb = pop_stall(&t, 0x10, 0x8000, false);
	assert_int_not_equal(sa, sb);
	/* A RESUME for the wrong SID or an unknown STAG changes nothing. */
	resume(&t, 0x20, sa, CMD_RESUME_RETRY);
	resume(&t, 0x10, (uint16_t)(sa + sb + 100), CMD_RESUME_RETRY);
	assert_int_equal(t.n_resp, 0);
	resume(&t, 0x10, sb, CMD_RESUME_ABORT);
	resume(&t, 0x10, sa, CMD_RESUME_RETRY);
	assert_int_equal(t.n_resp, 2);
	assert_int_equal(t.resp[0].cookie, 1002);
	assert_int_equal(t.resp[0].resp, VSMMU_RESUME_FAIL);
	assert_int_equal(t.resp[1].cookie, 1001);
	assert_int_equal(t.resp[1].sid, 0x10);
	assert_int_equal(t.resp[1].resp, VSMMU_RESUME_RETRY);
	assert_int_equal(vsmmu_stall_count(t.vs), 0);
	/* Answered once only. */
	resume(&t, 0x10, sa, CMD_RESUME_RETRY);
	assert_int_equal(t.n_resp, 2);
	th_fini(&t);
}

static void test_stall_term(void **state)
{
	struct th t;
	struct vsmmu_stall s;

	setup(&t, NULL);
	for (unsigned i = 0; i < 3; i++) {
		s = mk_stall(0x10, 10 + i, 0x1000 * i, false);
		assert_int_equal(vsmmu_stall_inject(t.vs, &s), 0);
	}
	s = mk_stall(0x20, 20, 0x9000, false);
	assert_int_equal(vsmmu_stall_inject(t.vs, &s), 0);
	th_cmd(&t, th_op(CMD_STALL_TERM, 0x10), 0);
	assert_true(th_sync(&t));
	assert_int_equal(t.n_resp, 3);
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(t.resp[i].sid, 0x10);
		assert_int_equal(t.resp[i].resp, VSMMU_RESUME_FAIL);
	}
	assert_int_equal(vsmmu_stall_count(t.vs), 1);
	/* Reset terminates what is left so the host does not wait forever. */
	vsmmu_reset(t.vs);
	assert_int_equal(t.n_resp, 4);
	assert_int_equal(t.resp[3].cookie, 20);
	th_fini(&t);
}

static void test_stall_limits(void **state)
{
	struct th t;
	struct vsmmu_config c;
	struct vsmmu_stall s = mk_stall(0x10, 1, 0, false);

	vsmmu_config_default(&c);
	c.stall_max = 4;
	setup(&t, &c);
	for (unsigned i = 0; i < 4; i++) {
		s.cookie = i;
		assert_int_equal(vsmmu_stall_inject(t.vs, &s), 0);
	}
	/* STALL_MAX held: the bridge must fail the transaction itself. */
	assert_int_equal(vsmmu_stall_inject(t.vs, &s), -EBUSY);
	th_evt_drain(&t);
	th_cmd(&t, th_op(CMD_STALL_TERM, 0x10), 0);
	assert_true(th_sync(&t));
	/* Event queue disabled: a stall the guest cannot see is refused. */
	th_cr0_set(&t, (uint32_t)(FMASK(CR0_CMDQEN) | FMASK(CR0_SMMUEN)));
	assert_int_equal(vsmmu_stall_inject(t.vs, &s), -EBUSY);
	assert_int_equal(vsmmu_stall_count(t.vs), 0);
	th_fini(&t);
}

static void test_stall_stags_unique_across_wrap(void **state)
{
	struct th t;
	struct vsmmu_stall s = mk_stall(0x10, 0, 0, false);
	uint16_t first, stag;

	setup(&t, NULL);
	assert_int_equal(vsmmu_stall_inject(t.vs, &s), 0);
	first = pop_stall(&t, 0x10, 0, false);
	/* 70000 stalls answered in turn while the first stays held: its STAG is never reused. */
	for (unsigned i = 1; i < 70000; i++) {
		s.cookie = i;
		assert_int_equal(vsmmu_stall_inject(t.vs, &s), 0);
		stag = pop_stall(&t, 0x10, 0, false);
		assert_int_not_equal(stag, first);
		resume(&t, 0x10, stag, CMD_RESUME_RETRY);
	}
	assert_int_equal(vsmmu_stall_count(t.vs), 1);
	th_fini(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stall_resume_retry_and_abort),
	    cmocka_unit_test(test_stall_term),
	    cmocka_unit_test(test_stall_limits),
	    cmocka_unit_test(test_stall_stags_unique_across_wrap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
