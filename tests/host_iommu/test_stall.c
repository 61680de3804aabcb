// SPDX-License-Identifier: Apache-2.0
/* The stall model: CD.S / STE.S2S faults hold the transaction with a STAG until RESUME
 * (retry re-translates, abort/terminate fail it) or STALL_TERM; bounded outstanding stalls. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "rig.h"

struct stall_fx {
	struct rig r;
	struct pgtable s1, s2;
};

static int setup(void **state)
{
	struct stall_fx *f = calloc(1, sizeof(*f));
	uint64_t cd[8], ste[8];

	rig_init(&f->r, NULL);
	assert_int_equal(pgtable_init(&f->s1, &f->r.mem, 1, 48, PGT_LEVEL_AUTO), 0);
	smmu_cd_build(cd, &f->s1, 1, SMMU_CD_R | SMMU_CD_S);
	smmu_ste_build(
	    ste, &(struct smmu_ste_desc){.config = STE_CFG_S1, .cd_ptr = rig_put_cd(&f->r, cd)});
	rig_set_ste(&f->r, 1, ste);
	rig_set_ste(&f->r, 2, ste);
	assert_int_equal(pgtable_init(&f->s2, &f->r.mem, 2, 40, PGT_LEVEL_AUTO), 0);
	smmu_ste_build(ste, &(struct smmu_ste_desc){.config = STE_CFG_S2,
						    .s2 = &f->s2,
						    .vmid = 1,
						    .s2_flags = SMMU_STE_S2S | SMMU_STE_S2R});
	rig_set_ste(&f->r, 3, ste);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct stall_fx *f = *state;
	pgtable_fini(&f->s1);
	pgtable_fini(&f->s2);
	rig_fini(&f->r);
	free(f);
	return 0;
}

struct writer {
	struct smmu *smmu;
	struct smmu_dma_txn txn;
	uint64_t iova;
	struct smmu_dma_result res;
	int done;
	pthread_t th;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	uint64_t v = 0x1122334455667788ull;
	smmu_dma_write(w->smmu, &w->txn, w->iova, &v, 8, &w->res);
	__atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void writer_start(struct writer *w, struct smmu *smmu, uint32_t sid, uint64_t iova)
{
	*w = (struct writer){
	    .smmu = smmu, .iova = iova, .txn = {.sid = sid, .flags = SMMU_DMA_BLOCK_ON_STALL}};
	assert_int_equal(pthread_create(&w->th, NULL, writer_main, w), 0);
}

/* Waits for the next stall event; returns its STAG. */
static uint16_t wait_stall_event(struct rig *r, uint32_t sid, uint64_t iova)
{
	struct smmu_event ev;
	while (!smmu_event_pop(r->smmu, &ev))
		sched_yield();
	assert_int_equal(F_GET(ev.dw[1], EVT1_STALL), 1);
	assert_int_equal(F_GET(ev.dw[0], EVT0_SID), sid);
	assert_int_equal(ev.dw[2], iova);
	return (uint16_t)F_GET(ev.dw[1], EVT1_STAG);
}

static void test_resume_retry(void **state)
{
	struct stall_fx *f = *state;
	struct writer w;

	writer_start(&w, f->r.smmu, 1, 0x40000);
	uint16_t stag = wait_stall_event(&f->r, 1, 0x40000);
	assert_int_equal(smmu_stalls_outstanding(f->r.smmu), 1);
	usleep(2000);
	assert_int_equal(__atomic_load_n(&w.done, __ATOMIC_ACQUIRE), 0); /* held */
	/* the "guest" fixes its page table, then resumes with retry */
	assert_int_equal(pgtable_map(&f->s1, 0x40000, RIG_RAM_PA + 0x9000, 4096, PGT_R | PGT_W), 0);
	rig_cmd(&f->r, smmu_cmd_resume(1, stag, CMD_RESUME_RETRY));
	pthread_join(w.th, NULL);
	assert_int_equal(w.res.status, SMMU_DMA_OK);
	assert_int_equal(w.res.done, 8);
	assert_int_equal(*(uint64_t *)rig_ram(&f->r, RIG_RAM_PA + 0x9000), 0x1122334455667788ull);
	assert_int_equal(smmu_stalls_outstanding(f->r.smmu), 0);
	/* RESUME of a stall that is gone is ignored */
	rig_cmd(&f->r, smmu_cmd_resume(1, stag, CMD_RESUME_RETRY));
}

static void test_resume_abort_and_terminate(void **state)
{
	struct stall_fx *f = *state;
	static const unsigned resp[] = {CMD_RESUME_ABORT, CMD_RESUME_TERM};

	for (unsigned i = 0; i < 2; i++) {
		struct writer w;
		writer_start(&w, f->r.smmu, 1, 0x50000);
		uint16_t stag = wait_stall_event(&f->r, 1, 0x50000);
		/* a RESUME for another stream does not touch it */
		rig_cmd(&f->r, smmu_cmd_resume(2, stag, CMD_RESUME_RETRY));
		rig_cmd(&f->r, smmu_cmd_resume(1, stag, resp[i]));
		pthread_join(w.th, NULL);
		assert_int_equal(w.res.status, SMMU_DMA_ABORTED);
		assert_int_equal(w.res.done, 0);
		assert_int_equal(w.res.event_id, EVT_F_TRANSLATION);
	}
}

static void test_stall_term(void **state)
{
	struct stall_fx *f = *state;
	struct writer a, b, c;

	writer_start(&a, f->r.smmu, 1, 0x60000);
	wait_stall_event(&f->r, 1, 0x60000);
	writer_start(&b, f->r.smmu, 1, 0x61000);
	wait_stall_event(&f->r, 1, 0x61000);
	writer_start(&c, f->r.smmu, 2, 0x62000);
	uint16_t stag_c = wait_stall_event(&f->r, 2, 0x62000);
	assert_int_equal(smmu_stalls_outstanding(f->r.smmu), 3);
	rig_cmd(&f->r, smmu_cmd_stall_term(1));
	pthread_join(a.th, NULL);
	pthread_join(b.th, NULL);
	assert_int_equal(a.res.status, SMMU_DMA_ABORTED);
	assert_int_equal(b.res.status, SMMU_DMA_ABORTED);
	assert_int_equal(smmu_stalls_outstanding(f->r.smmu), 1);
	/* the device-reset path */
	assert_int_equal(smmu_dma_terminate_stalls(f->r.smmu, 2), 1);
	pthread_join(c.th, NULL);
	assert_int_equal(c.res.status, SMMU_DMA_ABORTED);
	(void)stag_c;
}

static void test_nonblocking_and_bound(void **state)
{
	struct stall_fx *f = *state;
	struct smmu_dma_txn t = {.sid = 1};
	struct smmu_dma_result res[70];
	uint64_t v = 7;

	/* not blocking: STALLED with the STAG; the answer is collected with smmu_dma_wait */
	assert_int_equal(smmu_dma_write(f->r.smmu, &t, 0x70000, &v, 8, &res[0]), 0);
	assert_int_equal(res[0].status, SMMU_DMA_STALLED);
	assert_int_equal(wait_stall_event(&f->r, 1, 0x70000), res[0].stag);
	rig_cmd(&f->r, smmu_cmd_resume(1, res[0].stag, CMD_RESUME_ABORT));
	assert_int_equal(smmu_dma_wait(f->r.smmu, 1, res[0].stag), -ECANCELED);
	assert_int_equal(smmu_dma_wait(f->r.smmu, 1, res[0].stag), -ENOENT);
	/* bounded: 64 outstanding (default STALL_MAX), then faults are not stalled */
	for (unsigned i = 0; i < 65; i++) {
		assert_int_equal(
		    smmu_dma_write(f->r.smmu, &t, 0x80000 + i * 4096ull, &v, 8, &res[i]), 0);
		assert_int_equal(res[i].status, i < 64 ? SMMU_DMA_STALLED : SMMU_DMA_FAULT);
	}
	assert_int_equal(smmu_stalls_outstanding(f->r.smmu), 64);
	assert_int_equal(rig_events(&f->r, NULL), 65);
	/* retry: the caller re-issues and it completes once mapped */
	assert_int_equal(pgtable_map(&f->s1, 0x80000, RIG_RAM_PA, 4096, PGT_R | PGT_W), 0);
	rig_cmd(&f->r, smmu_cmd_resume(1, res[0].stag, CMD_RESUME_RETRY));
	assert_int_equal(smmu_dma_wait(f->r.smmu, 1, res[0].stag), 0);
	assert_int_equal(smmu_dma_write(f->r.smmu, &t, 0x80000, &v, 8, &res[0]), 0);
	assert_int_equal(res[0].status, SMMU_DMA_OK);
	rig_cmd(&f->r, smmu_cmd_stall_term(1));
	assert_int_equal(smmu_stalls_outstanding(f->r.smmu), 0);
}

static void test_stage2_stall(void **state)
{
	struct stall_fx *f = *state;
	struct writer w;

	writer_start(&w, f->r.smmu, 3, 0x90000);
	uint16_t stag = wait_stall_event(&f->r, 3, 0x90000);
	assert_int_equal(pgtable_map(&f->s2, 0x90000, RIG_RAM_PA + 0xa000, 4096, PGT_R | PGT_W), 0);
	rig_cmd(&f->r, smmu_cmd_resume(3, stag, CMD_RESUME_RETRY));
	pthread_join(w.th, NULL);
	assert_int_equal(w.res.status, SMMU_DMA_OK);
	assert_int_equal(*(uint64_t *)rig_ram(&f->r, RIG_RAM_PA + 0xa000), 0x1122334455667788ull);
}

/* A CMD_SYNC does not wait for a stalled transaction (it left the in-flight set). */
static void test_sync_with_stall(void **state)
{
	struct stall_fx *f = *state;
	struct writer w;

	writer_start(&w, f->r.smmu, 1, 0xa0000);
	uint16_t stag = wait_stall_event(&f->r, 1, 0xa0000);
	rig_cmd(&f->r, smmu_cmd_sync());
	rig_cmd(&f->r, smmu_cmd_resume(1, stag, CMD_RESUME_ABORT));
	pthread_join(w.th, NULL);
	assert_int_equal(w.res.status, SMMU_DMA_ABORTED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_resume_retry, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resume_abort_and_terminate, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stall_term, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_nonblocking_and_bound, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stage2_stall, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sync_with_stall, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
