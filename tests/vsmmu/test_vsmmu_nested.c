// SPDX-License-Identifier: Apache-2.0
/*
 * The nested bridge on the modelled host: a guest STE becomes a host nested HWPT and the
 * device's DMA translates through the guest's stage-1 tables (in memfd-backed guest RAM)
 * and the host's stage 2; guest TLBIs reach the host; host faults reach the guest event
 * queue with the virtual SID; a stall is resumed by the guest's RESUME; post_load re-installs.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "host/iommu/pgtable_build.h"
#include "tests/vsmmu/harness.h"
#include "tests/vsmmu/nested_rig.h"
#include "vmm/smmuv3/nested.h"

#define VSID	0x10
#define ASID	7
#define PT_GPA	0x380000ull /* guest stage-1 tables */
#define PT_SIZE 0x40000ull
#define DATA0	0x3C0000ull /* guest pages the IOVAs map to */
#define DATA1	0x3C1000ull
#define DATA2	0x3C2000ull
#define IOVA	0x40000000ull

struct nfx {
	struct nrig *rig;
	struct th t;
	struct vsmmu_nested *n;
	struct pgt_buf buf;
	struct pgt_mem mem;
	struct pgtable s1;
};

static struct vsmmu_nested *nfx_bridge(struct nfx *f, struct vsmmu *vs)
{
	struct vsmmu_nested_params p = {.ctx = nrig_ctx(f->rig),
					.parent_hwpt_id = nrig_parent(f->rig)};
	struct vsmmu_nested *n;

	assert_int_equal(vsmmu_nested_create(vs, &p, &n), 0);
	assert_int_equal(vsmmu_nested_attach(n, VSID, nrig_dev(f->rig)), 0);
	assert_int_equal(vsmmu_nested_attach(n, VSID, nrig_dev(f->rig)), -EEXIST);
	return n;
}

static int nfx_setup(void **state)
{
	struct nfx *f = calloc(1, sizeof(*f));
	struct vsmmu_config c;

	f->rig = nrig_create(TH_RAM_SIZE);
	vsmmu_config_default(&c);
	assert_int_equal(vsmmu_nested_config_from_host(nrig_ctx(f->rig), nrig_dev(f->rig), &c), 0);
	th_init_ram(&f->t, &c, nrig_ram(f->rig));
	th_driver_probe(&f->t, true, 16, 8, 6);
	f->n = nfx_bridge(f, f->t.vs);
	pgt_buf_init(&f->buf, f->t.ram + PT_GPA, PT_GPA, PT_SIZE);
	f->mem = pgt_buf_mem(&f->buf);
	assert_int_equal(pgtable_init(&f->s1, &f->mem, 1, 48, PGT_LEVEL_AUTO), 0);
	*state = f;
	return 0;
}

static int nfx_teardown(void **state)
{
	struct nfx *f = *state;

	vsmmu_nested_destroy(f->n);
	pgtable_fini(&f->s1); /* unmap retires emptied tables to a list it frees */
	th_fini(&f->t);
	nrig_destroy(f->rig);
	free(f);
	return 0;
}

static void guest_cfgi_ste(struct th *t)
{
	th_cmd(t, th_op(CMD_CFGI_STE, VSID), 1);
	assert_true(th_sync(t));
}

/* The guest driver: one CD for its stage-1 table, an S1 STE for the device. */
static void guest_s1_enable(struct nfx *f, bool stall)
{
	uint64_t cd[8];

	smmu_cd_build(cd, &f->s1, ASID,
		      SMMU_CD_R | SMMU_CD_HA | SMMU_CD_HD | (stall ? SMMU_CD_S : 0));
	memcpy(f->t.ram + TH_CD_GPA, cd, sizeof(cd));
	th_ste_write(&f->t, VSID, th_ste_s1(TH_CD_GPA, 0, 0), 0);
	guest_cfgi_ste(&f->t);
	assert_true(vsmmu_sid_translating(f->t.vs, VSID));
}

static void guest_tlbi_va(struct th *t, uint64_t iova)
{
	th_cmd(t, FSET(th_op(CMD_TLBI_NH_VA, 0), CMD0_ASID, ASID), iova | 1);
	assert_true(th_sync(t));
}

/* The guest is offered no more than the host can back (host model defaults). */
static void test_nested_config_from_host(void **state)
{
	struct nfx *f = *state;
	struct vsmmu_config c;

	vsmmu_config_default(&c);
	assert_int_equal(c.ssid_bits, 20);
	assert_int_equal(vsmmu_nested_config_from_host(nrig_ctx(f->rig), nrig_dev(f->rig), &c), 0);
	assert_int_equal(c.ssid_bits, 16);
	assert_int_equal(c.oas_bits, 48);
	assert_int_equal(c.httu, 2);
	assert_true(c.stall);
	assert_int_equal(c.stall_max, 64);
	assert_int_equal(c.sid_bits, 16); /* virtual: unchanged */
	assert_int_equal(FGET(th_rd32(&f->t, SMMU_IDR1), IDR1_SSIDSIZE), 16);
	assert_int_equal(vsmmu_nested_config_from_host(nrig_ctx(f->rig), 9999, &c), -ENOENT);
}

static void test_nested_ste_translates(void **state)
{
	struct nfx *f = *state;
	struct vsmmu_nested_stats st;
	const char msg[] = "vmig-nested!";
	char back[sizeof(msg)];

	guest_s1_enable(f, false);
	assert_int_equal(pgtable_map(&f->s1, IOVA, DATA0, 4096, PGT_R | PGT_W), 0);
	assert_int_equal(nrig_dma_write(f->rig, false, 0, IOVA + 0x10, msg, sizeof(msg), NULL),
			 NRIG_OK);
	assert_memory_equal(f->t.ram + DATA0 + 0x10, msg, sizeof(msg));
	assert_int_equal(nrig_dma_read(f->rig, IOVA + 0x10, back, sizeof(back)), NRIG_OK);
	assert_memory_equal(back, msg, sizeof(msg));
	vsmmu_nested_get_stats(f->n, &st);
	assert_true(st.hwpt_allocs >= 2); /* the attach-time config, then the S1 vSTE */
	/* The same vSTE again keeps its HWPT. */
	guest_cfgi_ste(&f->t);
	vsmmu_nested_get_stats(f->n, &st);
	assert_int_equal(st.hwpt_reused, 1);
	/* Abort and bypass STEs. */
	th_ste_write(&f->t, VSID, FSET(0, STE0_V, 1), 0);
	guest_cfgi_ste(&f->t);
	assert_int_equal(nrig_dma_write(f->rig, false, 0, IOVA, msg, 4, NULL), NRIG_ABORTED);
	th_ste_write(&f->t, VSID, FSET(FSET(0, STE0_V, 1), STE0_CONFIG, STE_CFG_BYPASS), 0);
	guest_cfgi_ste(&f->t);
	assert_int_equal(nrig_dma_write(f->rig, false, 0, DATA1, msg, sizeof(msg), NULL), NRIG_OK);
	assert_memory_equal(f->t.ram + DATA1, msg, sizeof(msg)); /* IOVA = IPA: stage 2 only */
	assert_int_equal(th_evt_drain(&f->t), 0);
}

static void test_nested_tlbi_forwarded_and_fault_reported(void **state)
{
	struct nfx *f = *state;
	struct vsmmu_nested_stats st;
	uint64_t evt[4], inv_before;
	uint32_t v = 0xA;

	guest_s1_enable(f, false);
	assert_int_equal(pgtable_map(&f->s1, IOVA, DATA0, 4096, PGT_R | PGT_W), 0);
	assert_int_equal(nrig_dma_write(f->rig, false, 0, IOVA, &v, 4, NULL), NRIG_OK);
	/* The guest remaps the IOVA; until it invalidates, the host may use the old entry. */
	pgtable_unmap(&f->s1, IOVA, 4096);
	assert_int_equal(pgtable_map(&f->s1, IOVA, DATA1, 4096, PGT_R | PGT_W), 0);
	v = 0xB;
	assert_int_equal(nrig_dma_write(f->rig, false, 0, IOVA, &v, 4, NULL), NRIG_OK);
	/* The host's IOTLB still held the old translation: only the forwarded TLBI fixes it. */
	assert_int_equal(*(uint32_t *)(f->t.ram + DATA0), 0xB);
	vsmmu_nested_get_stats(f->n, &st);
	inv_before = st.inv_cmds;
	guest_tlbi_va(&f->t, IOVA);
	vsmmu_nested_get_stats(f->n, &st);
	assert_int_equal(st.inv_cmds, inv_before + 1);
	v = 0xC;
	assert_int_equal(nrig_dma_write(f->rig, false, 0, IOVA, &v, 4, NULL), NRIG_OK);
	assert_int_equal(*(uint32_t *)(f->t.ram + DATA1), 0xC);
	/* Every forwardable command is accepted by the host. */
	th_cmd(&f->t, th_op(CMD_TLBI_NH_ALL, 0), 0);
	th_cmd(&f->t, FSET(th_op(CMD_TLBI_NH_ASID, 0), CMD0_ASID, ASID), 0);
	th_cmd(&f->t, th_op(CMD_TLBI_NH_VAA, 0), IOVA);
	th_cmd(&f->t,
	       FSET(FSET(FSET(th_op(CMD_TLBI_NH_VA, 0), CMD0_ASID, ASID), CMD0_TLBI_NUM, 7),
		    CMD0_TLBI_SCALE, 0),
	       FSET(IOVA, CMD1_TLBI_TG, 1)); /* range: 8 pages */
	th_cmd(&f->t, th_op(CMD_TLBI_NSNH_ALL, 0), 0);
	th_cmd(&f->t, th_op(CMD_CFGI_CD, VSID), 1);
	th_cmd(&f->t, th_op(CMD_CFGI_CD_ALL, VSID), 0);
	th_cmd(&f->t, th_op(CMD_ATC_INV, VSID), FSET(0, CMD1_ATC_SIZE, 52));
	assert_true(th_sync(&f->t));
	vsmmu_nested_get_stats(f->n, &st);
	assert_int_equal(st.inv_cmds, inv_before + 1 + 8);
	assert_int_equal(st.inv_errors, 0);
	/* Unmapped and invalidated: a fault, reported to the guest with the virtual SID. */
	pgtable_unmap(&f->s1, IOVA, 4096);
	guest_tlbi_va(&f->t, IOVA);
	assert_int_equal(nrig_dma_write(f->rig, false, 0, IOVA + 0x40, &v, 4, NULL), NRIG_FAULT);
	assert_true(vsmmu_nested_poll(f->n) >= 1);
	assert_true(th_evt_pop(&f->t, evt));
	assert_int_equal(FGET(evt[0], EVT0_ID), EVT_F_TRANSLATION);
	assert_int_equal(FGET(evt[0], EVT0_SID), VSID);
	assert_int_equal(FGET(evt[1], EVT1_STALL), 0);
	assert_int_equal(evt[2], IOVA + 0x40);
	assert_false(th_evt_pop(&f->t, evt));
}

static void test_nested_stall_resume_and_term(void **state)
{
	struct nfx *f = *state;
	uint64_t evt[4];
	uint16_t host_stag, guest_stag;
	uint32_t v = 0x5EED;

	guest_s1_enable(f, true);
	assert_int_equal(nrig_dma_write(f->rig, false, 0, IOVA + 8, &v, 4, &host_stag),
			 NRIG_STALLED);
	assert_int_equal(vsmmu_nested_poll(f->n), 1);
	assert_int_equal(vsmmu_stall_count(f->t.vs), 1);
	assert_true(th_evt_pop(&f->t, evt));
	assert_int_equal(FGET(evt[0], EVT0_SID), VSID);
	assert_int_equal(FGET(evt[1], EVT1_STALL), 1);
	assert_int_equal(FGET(evt[1], EVT1_RNW), 0);
	assert_int_equal(evt[2], IOVA + 8);
	guest_stag = (uint16_t)FGET(evt[1], EVT1_STAG);
	/* The guest maps the page and resumes (no CMD_SYNC needed). */
	assert_int_equal(pgtable_map(&f->s1, IOVA, DATA2, 4096, PGT_R | PGT_W), 0);
	th_cmd(&f->t, FSET(th_op(CMD_RESUME, VSID), CMD0_RESUME_RESP, CMD_RESUME_RETRY),
	       FSET(0, CMD1_RESUME_STAG, guest_stag));
	th_kick(&f->t);
	assert_int_equal(nrig_dma_wait(f->rig, host_stag), 0);
	assert_int_equal(nrig_dma_write(f->rig, false, 0, IOVA + 8, &v, 4, NULL), NRIG_OK);
	assert_int_equal(*(uint32_t *)(f->t.ram + DATA2 + 8), 0x5EED);
	assert_int_equal(vsmmu_stall_count(f->t.vs), 0);
	/* Another stall, terminated by STALL_TERM: the device sees the failure. */
	assert_int_equal(nrig_dma_write(f->rig, false, 0, IOVA + 0x2000, &v, 4, &host_stag),
			 NRIG_STALLED);
	assert_int_equal(vsmmu_nested_poll(f->n), 1);
	th_cmd(&f->t, th_op(CMD_STALL_TERM, VSID), 0);
	assert_true(th_sync(&f->t));
	assert_int_equal(nrig_dma_wait(f->rig, host_stag), -ECANCELED);
}

struct blocking_dma {
	struct nrig *rig;
	enum nrig_dma status;
	int done;
};

static void *blocking_dma_main(void *arg)
{
	struct blocking_dma *b = arg;
	uint32_t v = 0xB10C;

	b->status = nrig_dma_write_blocking(b->rig, IOVA + 0x30, &v, 4);
	__atomic_store_n(&b->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * A device blocked on a fault while the guest keeps issuing configuration and invalidation
 * commands (which end in host CMD_SYNCs): nothing waits for the stalled transaction, and
 * the guest's RESUME lets it complete. The service thread delivers the fault.
 */
static void test_nested_blocking_stall(void **state)
{
	struct nfx *f = *state;
	struct blocking_dma b = {.rig = f->rig};
	struct timespec ts = {0, 2 * 1000 * 1000};
	pthread_t thr;
	uint64_t evt[4];
	bool seen = false;

	guest_s1_enable(f, true);
	assert_int_equal(vsmmu_nested_start(f->n), 0);
	assert_int_equal(pthread_create(&thr, NULL, blocking_dma_main, &b), 0);
	for (int i = 0; i < 1000 && !seen; i++) {
		seen = th_evt_pop(&f->t, evt);
		if (!seen)
			nanosleep(&ts, NULL);
	}
	assert_true(seen);
	assert_int_equal(FGET(evt[1], EVT1_STALL), 1);
	/* The guest works on while the device waits. */
	guest_cfgi_ste(&f->t);
	guest_tlbi_va(&f->t, IOVA);
	th_cmd(&f->t, th_op(CMD_CFGI_CD_ALL, VSID), 0);
	assert_true(th_sync(&f->t));
	assert_int_equal(__atomic_load_n(&b.done, __ATOMIC_ACQUIRE), 0);
	assert_int_equal(pgtable_map(&f->s1, IOVA, DATA2, 4096, PGT_R | PGT_W), 0);
	th_cmd(&f->t, FSET(th_op(CMD_RESUME, VSID), CMD0_RESUME_RESP, CMD_RESUME_RETRY),
	       FSET(0, CMD1_RESUME_STAG, FGET(evt[1], EVT1_STAG)));
	th_kick(&f->t);
	pthread_join(thr, NULL);
	vsmmu_nested_stop(f->n);
	assert_int_equal(b.status, NRIG_OK);
	assert_int_equal(*(uint32_t *)(f->t.ram + DATA2 + 0x30), 0xB10C);
}

static void test_nested_post_load_reinstalls(void **state)
{
	struct nfx *f = *state;
	uint32_t v = 0x1234;
	long len;
	void *buf;
	struct th t2;
	struct vsmmu_nested *n2;

	guest_s1_enable(f, false);
	assert_int_equal(pgtable_map(&f->s1, IOVA, DATA0, 4096, PGT_R | PGT_W), 0);
	len = (long)vsmmu_state_size(f->t.vs);
	buf = malloc((size_t)len);
	assert_int_equal(vsmmu_state_save(f->t.vs, buf, (size_t)len), len);
	/* Tear down as the source would; the device is back on stage 2 alone. */
	vsmmu_nested_destroy(f->n);
	f->n = NULL;
	assert_int_not_equal(nrig_dma_write(f->rig, false, 0, IOVA, &v, 4, NULL), NRIG_OK);
	/* A new vSMMU and bridge on the same RAM: load, then post_load. A vSMMU that offers
	 * the guest something else than the source did is refused. */
	th_init_ram(&t2, NULL, f->t.ram);
	assert_int_equal(vsmmu_state_load(t2.vs, buf, (size_t)len), -EPROTO);
	th_fini(&t2);
	th_init_ram(&t2, &f->t.cfg, f->t.ram);
	n2 = nfx_bridge(f, t2.vs);
	assert_int_equal(vsmmu_state_load(t2.vs, buf, (size_t)len), 0);
	assert_int_equal(vsmmu_post_load(t2.vs), 1);
	assert_int_equal(nrig_dma_write(f->rig, false, 0, IOVA + 4, &v, 4, NULL), NRIG_OK);
	assert_int_equal(*(uint32_t *)(f->t.ram + DATA0 + 4), 0x1234);
	vsmmu_nested_destroy(n2);
	th_fini(&t2);
	free(buf);
	f->n = nfx_bridge(f, f->t.vs); /* for the teardown */
}

/* Several SSIDs: a linear CD table, one stage-1 table per PASID; CFGI_CD reaches the host. */
static void test_nested_pasids(void **state)
{
	struct nfx *f = *state;
	struct pgtable s1b;
	uint64_t cd[8], evt[4];
	uint32_t v = 0x3333;

	assert_int_equal(pgtable_init(&s1b, &f->mem, 1, 48, PGT_LEVEL_AUTO), 0);
	memset(f->t.ram + TH_CD_GPA, 0, 16 * 64);
	smmu_cd_build(cd, &f->s1, ASID, SMMU_CD_R);
	memcpy(f->t.ram + TH_CD_GPA, cd, sizeof(cd));
	th_ste_write(&f->t, VSID, th_ste_s1(TH_CD_GPA, STE_S1FMT_LINEAR, 4),
		     FSET(0, STE1_S1DSS, STE_S1DSS_SSID0));
	guest_cfgi_ste(&f->t);
	assert_int_equal(pgtable_map(&f->s1, IOVA, DATA0, 4096, PGT_R | PGT_W), 0);
	assert_int_equal(pgtable_map(&s1b, IOVA, DATA1, 4096, PGT_R | PGT_W), 0);
	/* PASID 3 is configured after the STE, as an SVA bind would do it. */
	smmu_cd_build(cd, &s1b, ASID + 3, SMMU_CD_R);
	memcpy(f->t.ram + TH_CD_GPA + 3 * 64, cd, sizeof(cd));
	th_cmd(&f->t, th_op(CMD_CFGI_CD, VSID) | FSET(0, CMD0_SSID, 3), 1);
	assert_true(th_sync(&f->t));
	assert_int_equal(nrig_dma_write(f->rig, true, 3, IOVA, &v, 4, NULL), NRIG_OK);
	assert_int_equal(*(uint32_t *)(f->t.ram + DATA1), 0x3333);
	v = 0x0;
	assert_int_equal(nrig_dma_write(f->rig, false, 0, IOVA, &v, 4, NULL), NRIG_OK);
	assert_int_equal(*(uint32_t *)(f->t.ram + DATA0), 0);
	assert_int_equal(*(uint32_t *)(f->t.ram + DATA1), 0x3333);
	/* An SSID without a valid CD: the host reports it, the guest sees the vSID. */
	assert_int_not_equal(nrig_dma_write(f->rig, true, 5, IOVA, &v, 4, NULL), NRIG_OK);
	assert_true(vsmmu_nested_poll(f->n) >= 1);
	assert_true(th_evt_pop(&f->t, evt));
	assert_int_equal(FGET(evt[0], EVT0_SID), VSID);
	assert_int_equal(FGET(evt[0], EVT0_ID), EVT_C_BAD_CD);
	assert_int_equal(FGET(evt[0], EVT0_SSV), 1);
	assert_int_equal(FGET(evt[0], EVT0_SSID), 5);
	pgtable_fini(&s1b);
}

/*
 * Linux's breaking STE update (V=0 first, then the other words, then word 0, a CFGI_STE
 * after each step), from abort to S1 and from S1 to bypass: no guest events on the way and
 * the device follows each state.
 */
static void test_nested_linux_ste_update(void **state)
{
	struct nfx *f = *state;
	uint64_t cd[8], ste = th_ste_addr(&f->t, VSID);
	uint32_t v = 0x77;

	smmu_cd_build(cd, &f->s1, ASID, SMMU_CD_R);
	memcpy(f->t.ram + TH_CD_GPA, cd, sizeof(cd));
	assert_int_equal(pgtable_map(&f->s1, IOVA, DATA0, 4096, PGT_R | PGT_W), 0);
	th_ste_write(&f->t, VSID, FSET(0, STE0_V, 1), 0); /* abort */
	guest_cfgi_ste(&f->t);
	assert_int_equal(nrig_dma_write(f->rig, false, 0, IOVA, &v, 4, NULL), NRIG_ABORTED);
	th_ram_st64(&f->t, ste, 0); /* V=0 */
	guest_cfgi_ste(&f->t);
	assert_int_equal(nrig_dma_write(f->rig, false, 0, IOVA, &v, 4, NULL), NRIG_ABORTED);
	th_ram_st64(&f->t, ste + 8, FSET(0, STE1_S1CIR, 1));
	guest_cfgi_ste(&f->t);
	th_ram_st64(&f->t, ste, th_ste_s1(TH_CD_GPA, 0, 0));
	guest_cfgi_ste(&f->t);
	assert_int_equal(nrig_dma_write(f->rig, false, 0, IOVA, &v, 4, NULL), NRIG_OK);
	assert_int_equal(*(uint32_t *)(f->t.ram + DATA0), 0x77);
	/* To bypass. */
	th_ram_st64(&f->t, ste, 0);
	guest_cfgi_ste(&f->t);
	th_ram_st64(&f->t, ste + 8, 0);
	guest_cfgi_ste(&f->t);
	th_ram_st64(&f->t, ste, FSET(FSET(0, STE0_V, 1), STE0_CONFIG, STE_CFG_BYPASS));
	guest_cfgi_ste(&f->t);
	assert_int_equal(nrig_dma_write(f->rig, false, 0, DATA1, &v, 4, NULL), NRIG_OK);
	assert_int_equal(*(uint32_t *)(f->t.ram + DATA1), 0x77);
	assert_int_equal(th_evt_drain(&f->t), 0);
}

/* A detached device is on the host's stage 2 alone; its stream no longer reaches the host. */
static void test_nested_detach(void **state)
{
	struct nfx *f = *state;
	struct vsmmu_nested_stats a, b;
	uint32_t v = 0x99;

	guest_s1_enable(f, false);
	assert_int_equal(vsmmu_nested_detach(f->n, VSID), 0);
	assert_int_equal(vsmmu_nested_detach(f->n, VSID), -ENOENT);
	assert_int_equal(nrig_dma_write(f->rig, false, 0, DATA2, &v, 4, NULL), NRIG_OK);
	assert_int_equal(*(uint32_t *)(f->t.ram + DATA2), 0x99);
	vsmmu_nested_get_stats(f->n, &a);
	guest_cfgi_ste(&f->t);
	th_cmd(&f->t, th_op(CMD_CFGI_CD_ALL, VSID), 0);
	assert_true(th_sync(&f->t));
	vsmmu_nested_get_stats(f->n, &b);
	assert_int_equal(b.hwpt_allocs, a.hwpt_allocs);
	assert_int_equal(b.inv_cmds, a.inv_cmds);
	/* And back: the guest's S1 configuration is installed again at once. */
	assert_int_equal(vsmmu_nested_attach(f->n, VSID, nrig_dev(f->rig)), 0);
	assert_int_equal(pgtable_map(&f->s1, IOVA, DATA0, 4096, PGT_R | PGT_W), 0);
	assert_int_equal(nrig_dma_write(f->rig, false, 0, IOVA, &v, 4, NULL), NRIG_OK);
	assert_int_equal(*(uint32_t *)(f->t.ram + DATA0), 0x99);
}

static void test_nested_service_thread(void **state)
{
	struct nfx *f = *state;
	uint32_t v = 1;
	uint64_t evt[4];
	bool seen = false;

	guest_s1_enable(f, false);
	assert_int_equal(vsmmu_nested_start(f->n), 0);
	assert_int_equal(vsmmu_nested_start(f->n), -EALREADY);
	assert_int_equal(nrig_dma_write(f->rig, false, 0, IOVA, &v, 4, NULL), NRIG_FAULT);
	for (int i = 0; i < 400 && !seen; i++) {
		struct timespec ts = {0, 5 * 1000 * 1000};
		seen = th_evt_pop(&f->t, evt);
		if (!seen)
			nanosleep(&ts, NULL);
	}
	vsmmu_nested_stop(f->n);
	assert_true(seen);
	assert_int_equal(FGET(evt[0], EVT0_SID), VSID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_nested_config_from_host, nfx_setup, nfx_teardown),
	    cmocka_unit_test_setup_teardown(test_nested_ste_translates, nfx_setup, nfx_teardown),
	    cmocka_unit_test_setup_teardown(test_nested_tlbi_forwarded_and_fault_reported,
					    nfx_setup, nfx_teardown),
	    cmocka_unit_test_setup_teardown(test_nested_stall_resume_and_term, nfx_setup,
					    nfx_teardown),
	    cmocka_unit_test_setup_teardown(test_nested_blocking_stall, nfx_setup, nfx_teardown),
	    cmocka_unit_test_setup_teardown(test_nested_post_load_reinstalls, nfx_setup,
					    nfx_teardown),
	    cmocka_unit_test_setup_teardown(test_nested_pasids, nfx_setup, nfx_teardown),
	    cmocka_unit_test_setup_teardown(test_nested_linux_ste_update, nfx_setup, nfx_teardown),
	    cmocka_unit_test_setup_teardown(test_nested_detach, nfx_setup, nfx_teardown),
	    cmocka_unit_test_setup_teardown(test_nested_service_thread, nfx_setup, nfx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
