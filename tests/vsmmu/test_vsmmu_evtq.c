// SPDX-License-Identifier: Apache-2.0
/* Event queue: discard while disabled, overflow (OVFLG/OVACKFLG), wrap, MSIs, aborts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>

#include "tests/vsmmu/harness.h"

static void make_evt(uint64_t evt[4], uint32_t sid, uint64_t addr)
{
	evt[0] = FSET(FSET(0, EVT0_ID, EVT_F_TRANSLATION), EVT0_SID, sid);
	evt[1] = FSET(0, EVT1_CLASS, EVT_CLASS_IN);
	evt[2] = addr;
	evt[3] = 0;
}

static void setup_probe(struct th *t, unsigned evtq_log2)
{
	th_init(t, NULL, false);
	th_driver_probe(t, false, 8, 8, evtq_log2);
	t->n_msi = 0;
}

static void test_events_discarded_when_disabled(void **state)
{
	struct th t;
	uint64_t evt[4];
	struct vsmmu_stats st;

	setup_probe(&t, 4);
	th_cr0_set(&t, (uint32_t)(FMASK(CR0_CMDQEN) | FMASK(CR0_SMMUEN)));
	make_evt(evt, 1, 0x1000);
	assert_false(vsmmu_event_inject(t.vs, evt));
	assert_int_equal(th_rd32(&t, SMMU_EVENTQ_PROD), 0);
	assert_int_equal(t.n_msi, 0);
	vsmmu_event_lost(t.vs); /* no overflow signalled for a disabled queue */
	assert_int_equal(th_rd32(&t, SMMU_EVENTQ_PROD), 0);
	vsmmu_get_stats(t.vs, &st);
	assert_int_equal(st.events, 0);
	assert_int_equal(st.events_lost, 1);
	th_fini(&t);
}

static void test_evtq_overflow_ovflg_ovackflg(void **state)
{
	struct th t;
	uint64_t evt[4], got[4];
	uint32_t prod;

	setup_probe(&t, 2); /* 4 entries */
	for (unsigned i = 0; i < 4; i++) {
		make_evt(evt, i, 0x1000 * i);
		assert_true(vsmmu_event_inject(t.vs, evt));
	}
	prod = th_rd32(&t, SMMU_EVENTQ_PROD);
	assert_int_equal(prod, 4); /* full: index 0, wrap 1 */
	make_evt(evt, 99, 0);
	assert_false(vsmmu_event_inject(t.vs, evt));
	prod = th_rd32(&t, SMMU_EVENTQ_PROD);
	assert_int_equal(prod, 0x80000004u); /* OVFLG toggled */
	assert_false(vsmmu_event_inject(t.vs, evt));
	assert_int_equal(th_rd32(&t, SMMU_EVENTQ_PROD), 0x80000004u); /* once per episode */
	/* The driver drains, acknowledging with OVACKFLG; records are the first four. */
	for (unsigned i = 0; i < 4; i++) {
		assert_true(th_evt_pop(&t, got));
		assert_int_equal(FGET(got[0], EVT0_SID), i);
		assert_int_equal(got[2], 0x1000 * i);
	}
	assert_false(th_evt_pop(&t, got));
	assert_int_equal(th_rd32(&t, SMMU_EVENTQ_CONS), 0x80000004u);
	/* Space again: events flow; a new overflow toggles OVFLG back. */
	for (unsigned i = 0; i < 4; i++)
		assert_true(vsmmu_event_inject(t.vs, evt));
	assert_false(vsmmu_event_inject(t.vs, evt));
	assert_int_equal(th_rd32(&t, SMMU_EVENTQ_PROD), 0x00000000u);
	th_fini(&t);
}

static void test_evtq_wraparound(void **state)
{
	struct th t;
	uint64_t evt[4], got[4];
	unsigned wraps = 0;

	setup_probe(&t, 2);
	for (unsigned i = 0; i < 30; i++) {
		make_evt(evt, 0x100 + i, 0x2000 + i);
		assert_true(vsmmu_event_inject(t.vs, evt));
		if (i % 3 == 2) {
			for (unsigned k = i - 2; k <= i; k++) {
				assert_true(th_evt_pop(&t, got));
				assert_int_equal(FGET(got[0], EVT0_SID), 0x100 + k);
				assert_int_equal(got[2], 0x2000 + k);
			}
		}
		wraps |= 1u << ((th_rd32(&t, SMMU_EVENTQ_PROD) >> 2) & 1);
	}
	assert_int_equal(wraps, 3);
	th_fini(&t);
}

static void test_evtq_msi(void **state)
{
	struct th t;
	uint64_t evt[4];

	setup_probe(&t, 4);
	make_evt(evt, 1, 0);
	assert_true(vsmmu_event_inject(t.vs, evt));
	assert_int_equal(t.n_msi, 1);
	assert_int_equal(t.msi[0].addr, TH_MSI_BASE);
	assert_int_equal(t.msi[0].data, 0x31);
	th_wr32(&t, SMMU_IRQ_CTRL, (uint32_t)FMASK(IRQ_CTRL_GERROR_IRQEN));
	assert_true(vsmmu_event_inject(t.vs, evt));
	assert_int_equal(t.n_msi, 1);
	/* An unreachable EVTQ MSI address: MSI_EVENTQ_ABT, signalled through GERROR's MSI. */
	th_wr32(&t, SMMU_IRQ_CTRL,
		(uint32_t)(FMASK(IRQ_CTRL_GERROR_IRQEN) | FMASK(IRQ_CTRL_EVENTQ_IRQEN)));
	th_wr64(&t, SMMU_EVENTQ_IRQ_CFG0, 0x90000000ull);
	assert_true(vsmmu_event_inject(t.vs, evt));
	assert_true(th_rd32(&t, SMMU_GERROR) & (1u << GERROR_MSI_EVENTQ_ABT));
	assert_int_equal(t.n_msi, 2);
	assert_int_equal(t.msi[1].data, 0x32);
	th_fini(&t);
}

static void test_evtq_abort_outside_ram(void **state)
{
	struct th t;
	uint64_t evt[4];

	setup_probe(&t, 4);
	th_cr0_set(&t, (uint32_t)(FMASK(CR0_CMDQEN) | FMASK(CR0_SMMUEN)));
	th_wr64(&t, SMMU_EVENTQ_BASE, (TH_RAM_SIZE - 64) | 4); /* 16 x 32 B straddles the end */
	th_cr0_set(&t, (uint32_t)(FMASK(CR0_CMDQEN) | FMASK(CR0_EVENTQEN) | FMASK(CR0_SMMUEN)));
	make_evt(evt, 1, 0);
	assert_true(vsmmu_event_inject(t.vs, evt));
	assert_true(vsmmu_event_inject(t.vs, evt));
	assert_false(vsmmu_event_inject(t.vs, evt)); /* slot 2 is outside RAM */
	assert_true((th_rd32(&t, SMMU_GERROR) ^ th_rd32(&t, SMMU_GERRORN)) &
		    (1u << GERROR_EVENTQ_ABT));
	assert_int_equal(th_rd32(&t, SMMU_EVENTQ_PROD), 2);
	th_fini(&t);
}

static void test_event_lost_signals_overflow(void **state)
{
	struct th t;

	setup_probe(&t, 4);
	vsmmu_event_lost(t.vs);
	assert_int_equal(th_rd32(&t, SMMU_EVENTQ_PROD), 0x80000000u);
	assert_int_equal(t.n_msi, 1); /* the driver is told so it notices the overflow */
	th_fini(&t);
}

struct injector {
	struct th *t;
	unsigned ok, tries;
	int done;
};

static void *inject_thread(void *arg)
{
	struct injector *in = arg;
	uint64_t evt[4];

	/* 5000 records delivered; a full queue makes the poller retry later. */
	while (in->ok < 5000) {
		make_evt(evt, 0x10, in->tries++);
		if (vsmmu_event_inject(in->t->vs, evt))
			in->ok++;
		else
			sched_yield();
	}
	__atomic_store_n(&in->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* The bridge's poller injects while a vCPU consumes events and issues commands. */
static void test_concurrent_inject_and_consume(void **state)
{
	struct th t;
	struct injector in = {.t = &t};
	pthread_t thr;
	unsigned popped = 0;
	uint64_t evt[4], last = 0;
	bool first = true;

	setup_probe(&t, 6);
	assert_int_equal(pthread_create(&thr, NULL, inject_thread, &in), 0);
	while (!__atomic_load_n(&in.done, __ATOMIC_ACQUIRE)) {
		while (th_evt_pop(&t, evt)) {
			/* Records arrive whole and in order. */
			assert_int_equal(FGET(evt[0], EVT0_SID), 0x10);
			assert_true(first || evt[2] > last);
			first = false;
			last = evt[2];
			popped++;
		}
		th_cmd(&t, th_op(CMD_TLBI_NH_ALL, 0), 0);
		assert_true(th_sync(&t));
	}
	pthread_join(thr, NULL);
	popped += th_evt_drain(&t);
	assert_int_equal(popped, in.ok);
	assert_int_equal(in.ok, 5000);
	th_fini(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_events_discarded_when_disabled),
	    cmocka_unit_test(test_evtq_overflow_ovflg_ovackflg),
	    cmocka_unit_test(test_evtq_wraparound),
	    cmocka_unit_test(test_evtq_msi),
	    cmocka_unit_test(test_evtq_abort_outside_ram),
	    cmocka_unit_test(test_event_lost_signals_overflow),
	    cmocka_unit_test(test_concurrent_inject_and_consume),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
