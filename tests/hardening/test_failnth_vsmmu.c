// SPDX-License-Identifier: Apache-2.0
/*
 * Allocation-failure injection over the vSMMU's migration destination: a new vSMMU, its
 * nested bridge on the modelled host (fault queue, vIOMMU, vEVENTQ, vDEVICE), the state
 * load and the post-load that re-installs the guest's stage 1 as a host nested HWPT. Each
 * allocation fails in turn: the destination must report an error, leak nothing, and when
 * it reports success the device must translate through the guest's tables.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "failnth.h"
#include "host/iommu/pgtable_build.h"
#include "tests/vsmmu/harness.h"
#include "tests/vsmmu/nested_rig.h"
#include "vmm/smmuv3/nested.h"

#define VSID	0x10
#define ASID	7
#define PT_GPA	0x380000ull
#define PT_SIZE 0x40000ull
#define DATA0	0x3C0000ull
#define IOVA	0x40000000ull

struct src {
	struct nrig *rig;
	struct th t;
	struct pgt_buf buf;
	struct pgt_mem mem;
	struct pgtable s1;
	void *state;
	size_t len;
	uint32_t v;
};

static struct vsmmu_nested *bridge(struct src *s, struct vsmmu *vs)
{
	struct vsmmu_nested_params p = {.ctx = nrig_ctx(s->rig),
					.parent_hwpt_id = nrig_parent(s->rig)};
	struct vsmmu_nested *n;

	assert_int_equal(vsmmu_nested_create(vs, &p, &n), 0);
	assert_int_equal(vsmmu_nested_attach(n, VSID, nrig_dev(s->rig)), 0);
	return n;
}

/* The source: a guest with an S1 STE and a mapped IOVA; its state saved; bridge gone. */
static void src_init(struct src *s)
{
	struct vsmmu_nested *n;
	struct vsmmu_config c;
	uint64_t cd[8];

	s->rig = nrig_create(TH_RAM_SIZE);
	vsmmu_config_default(&c);
	assert_int_equal(vsmmu_nested_config_from_host(nrig_ctx(s->rig), nrig_dev(s->rig), &c), 0);
	th_init_ram(&s->t, &c, nrig_ram(s->rig));
	th_driver_probe(&s->t, true, 16, 8, 6);
	n = bridge(s, s->t.vs);
	pgt_buf_init(&s->buf, s->t.ram + PT_GPA, PT_GPA, PT_SIZE);
	s->mem = pgt_buf_mem(&s->buf);
	assert_int_equal(pgtable_init(&s->s1, &s->mem, 1, 48, PGT_LEVEL_AUTO), 0);
	smmu_cd_build(cd, &s->s1, ASID, SMMU_CD_R);
	memcpy(s->t.ram + TH_CD_GPA, cd, sizeof(cd));
	th_ste_write(&s->t, VSID, th_ste_s1(TH_CD_GPA, 0, 0), 0);
	th_cmd(&s->t, th_op(CMD_CFGI_STE, VSID), 1);
	assert_true(th_sync(&s->t));
	assert_int_equal(pgtable_map(&s->s1, IOVA, DATA0, 4096, PGT_R | PGT_W), 0);
	s->len = vsmmu_state_size(s->t.vs);
	s->state = malloc(s->len);
	assert_int_equal(vsmmu_state_save(s->t.vs, s->state, s->len), (long)s->len);
	vsmmu_nested_destroy(n);
}

static void src_fini(struct src *s)
{
	pgtable_fini(&s->s1);
	th_fini(&s->t);
	nrig_destroy(s->rig);
	free(s->state);
}

/* 1 (a wrong result) when every call succeeded but the device does not translate. */
static int dst_check(struct src *s)
{
	uint32_t v = ++s->v;

	if (nrig_dma_write(s->rig, false, 0, IOVA + 8, &v, 4, NULL) != NRIG_OK)
		return 1;
	return memcmp(s->t.ram + DATA0 + 8, &v, 4) ? 1 : 0;
}

static int scenario_vsmmu_dst(void *arg)
{
	struct src *s = arg;
	struct vsmmu_nested_params p = {.ctx = nrig_ctx(s->rig),
					.parent_hwpt_id = nrig_parent(s->rig)};
	struct vsmmu_nested *n = NULL;
	struct vsmmu *vs = vsmmu_create(&s->t.cfg, &s->t.plat, NULL, NULL);
	int rc = vs ? vsmmu_nested_create(vs, &p, &n) : -ENOMEM;

	if (!rc)
		rc = vsmmu_nested_attach(n, VSID, nrig_dev(s->rig));
	if (!rc)
		rc = vsmmu_state_load(vs, s->state, s->len);
	if (!rc)
		rc = vsmmu_post_load(vs);
	if (rc > 0)
		rc = 0; /* the number of streams installed */
	if (!rc)
		rc = dst_check(s);
	if (n)
		vsmmu_nested_destroy(n);
	vsmmu_destroy(vs);
	return rc;
}

static void test_failnth_vsmmu_dst(void **state)
{
	struct src s = {0};

	src_init(&s);
	assert_true(failnth_run("vsmmu_dst", scenario_vsmmu_dst, &s, 2000) > 5);
	src_fini(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_failnth_vsmmu_dst),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
