// SPDX-License-Identifier: Apache-2.0
/* Register file: probe, CR0/CR0ACK, GBPA update protocol, access sizes, enable locks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tests/vsmmu/harness.h"

static void test_probe_idrs(void **state)
{
	struct th t;
	uint32_t idr0, idr1, idr3, idr5;
	struct vsmmu_attrs a;

	th_init(&t, NULL, false);
	idr0 = th_rd32(&t, SMMU_IDR0);
	idr1 = th_rd32(&t, SMMU_IDR1);
	idr3 = th_rd32(&t, SMMU_IDR3);
	idr5 = th_rd32(&t, SMMU_IDR5);
	/* Stage 1 only: the host's stage 2 is invisible. */
	assert_int_equal(FGET(idr0, IDR0_S1P), 1);
	assert_int_equal(idr0 & 1, 0); /* S2P */
	assert_int_equal(FGET(idr0, IDR0_TTF), 2);
	assert_int_equal(FGET(idr0, IDR0_HTTU), 2);
	assert_int_equal(FGET(idr0, IDR0_ASID16), 1);
	assert_int_equal(FGET(idr0, IDR0_MSI), 1);
	assert_int_equal(FGET(idr0, IDR0_SEV), 1);
	assert_int_equal(FGET(idr0, IDR0_CD2L), 1);
	assert_int_equal(FGET(idr0, IDR0_ST_LEVEL), 1);
	assert_int_equal(FGET(idr0, IDR0_STALL_MODEL), 0);
	assert_int_equal(FGET(idr0, IDR0_PRI), 0);
	assert_int_equal(FGET(idr1, IDR1_SIDSIZE), 16);
	assert_int_equal(FGET(idr1, IDR1_SSIDSIZE), 20);
	assert_int_equal(FGET(idr1, IDR1_CMDQS), 12);
	assert_int_equal(FGET(idr1, IDR1_EVENTQS), 12);
	assert_int_equal(FGET(idr3, IDR3_RIL), 1);
	assert_int_equal(FGET(idr5, IDR5_GRAN4K), 1);
	assert_int_equal(FGET(idr5, IDR5_GRAN64K), 0);
	assert_int_equal(FGET(idr5, IDR5_OAS), 5);
	assert_int_equal(FGET(idr5, IDR5_STALL_MAX), 64);
	assert_int_equal(th_rd32(&t, SMMU_AIDR), 1);
	/* Reset state. */
	assert_int_equal(th_rd32(&t, SMMU_CR0), 0);
	assert_int_equal(th_rd32(&t, SMMU_CR0ACK), 0);
	assert_int_equal(th_rd32(&t, SMMU_GBPA), 0x1000);
	vsmmu_get_attrs(t.vs, &a);
	assert_int_equal(a.input_bits, 48);
	assert_int_equal(a.output_bits, 48);
	assert_true(a.nesting && a.stall && a.httu_dirty);
	th_fini(&t);
}

static void test_create_rejects_bad_config(void **state)
{
	struct vsmmu_platform p = {0};
	struct vsmmu_config c;

	vsmmu_config_default(&c);
	assert_null(vsmmu_create(&c, &p, NULL, NULL)); /* no RAM accessors */
	struct th t;
	th_init(&t, NULL, false);
	c.ssid_bits = 21;
	assert_null(vsmmu_create(&c, &t.plat, NULL, NULL));
	vsmmu_config_default(&c);
	c.oas_bits = 47;
	assert_null(vsmmu_create(&c, &t.plat, NULL, NULL));
	vsmmu_config_default(&c);
	c.stall_max = 0;
	assert_null(vsmmu_create(&c, &t.plat, NULL, NULL));
	th_fini(&t);
}

static void test_config_without_stall_or_httu(void **state)
{
	struct vsmmu_config c;
	struct vsmmu_attrs a;
	struct th t;

	vsmmu_config_default(&c);
	c.stall = false;
	c.httu = 0;
	c.ssid_bits = 8;
	th_init(&t, &c, false);
	assert_int_equal(FGET(th_rd32(&t, SMMU_IDR0), IDR0_STALL_MODEL), 1);
	assert_int_equal(FGET(th_rd32(&t, SMMU_IDR0), IDR0_HTTU), 0);
	assert_int_equal(FGET(th_rd32(&t, SMMU_IDR1), IDR1_SSIDSIZE), 8);
	vsmmu_get_attrs(t.vs, &a);
	assert_false(a.stall || a.httu_dirty);
	assert_int_equal(a.ssid_bits, 8);
	/* A stall CD is malformed on an SMMU that cannot stall. */
	th_driver_probe(&t, false, 8, 8, 8);
	struct vsmmu_cd cd;
	th_cd_write(&t, TH_CD_GPA, th_cd_w0(1, true), 0x1000);
	th_ste_write(&t, 3, th_ste_s1(TH_CD_GPA, 0, 0), 0);
	assert_int_equal(vsmmu_cd_lookup(t.vs, 3, false, 0, &cd), EVT_C_BAD_CD);
	th_cd_write(&t, TH_CD_GPA, th_cd_w0(1, false), 0x1000);
	assert_int_equal(vsmmu_cd_lookup(t.vs, 3, false, 0, &cd), 0);
	th_fini(&t);
	c.httu = 3;
	assert_null(vsmmu_create(&c, &t.plat, NULL, NULL));
}

static void test_cr0_ack_and_reserved_bits(void **state)
{
	struct th t;

	th_init(&t, NULL, false);
	th_wr32(&t, SMMU_CR0, 0xFFFFFFFF);
	/* PRIQEN (no PRI) and VMW (no stage 2) are RES0. */
	assert_int_equal(th_rd32(&t, SMMU_CR0), 0x1D);
	assert_int_equal(th_rd32(&t, SMMU_CR0ACK), 0x1D);
	th_cr0_set(&t, 0);
	th_wr32(&t, SMMU_IRQ_CTRL, 0xFF);
	assert_int_equal(th_rd32(&t, SMMU_IRQ_CTRLACK), 0x5);
	th_wr32(&t, SMMU_GERROR, 0xFF); /* read-only */
	assert_int_equal(th_rd32(&t, SMMU_GERROR), 0);
	th_wr32(&t, SMMU_IDR0, 0);
	assert_int_not_equal(th_rd32(&t, SMMU_IDR0), 0);
	th_fini(&t);
}

static void test_gbpa_update_protocol(void **state)
{
	struct th t;
	struct vsmmu_ste ste;

	th_init(&t, NULL, true);
	th_attach(&t, 0x10);
	/* Without UPDATE the write is ignored. */
	th_wr32(&t, SMMU_GBPA, (uint32_t)FMASK(GBPA_ABORT));
	assert_int_equal(th_rd32(&t, SMMU_GBPA), 0x1000);
	assert_int_equal(t.n_installs, 0);
	/* With UPDATE it takes effect and UPDATE reads back as 0 (complete). */
	th_wr32(&t, SMMU_GBPA, (uint32_t)(FMASK(GBPA_ABORT) | FMASK(GBPA_UPDATE)));
	assert_int_equal(th_rd32(&t, SMMU_GBPA), FMASK(GBPA_ABORT));
	/* SMMUEN=0: the device's configuration follows GBPA. */
	assert_int_equal(t.n_installs, 1);
	assert_int_equal(t.installed[0].kind, VSMMU_STE_ABORT);
	th_wr32(&t, SMMU_GBPA, (uint32_t)FMASK(GBPA_UPDATE));
	assert_int_equal(t.installed[0].kind, VSMMU_STE_BYPASS);
	assert_false(vsmmu_sid_translating(t.vs, 0x10));
	assert_int_equal(vsmmu_ste_lookup(t.vs, 0x10, &ste), EVT_C_BAD_STREAMID);
	th_fini(&t);
}

static void test_access_sizes(void **state)
{
	struct th t;
	uint64_t v;

	th_init(&t, NULL, false);
	/* 64-bit register: whole, and as two 32-bit halves. */
	th_wr64(&t, SMMU_STRTAB_BASE, 0x0000123456789AC0ull);
	assert_int_equal(th_rd64(&t, SMMU_STRTAB_BASE), 0x0000123456789AC0ull);
	assert_int_equal(th_rd32(&t, SMMU_STRTAB_BASE), 0x56789AC0u);
	assert_int_equal(th_rd32(&t, SMMU_STRTAB_BASE + 4), 0x1234u);
	th_wr32(&t, SMMU_STRTAB_BASE + 4, 0x4000ABCD); /* RA + high address bits */
	assert_int_equal(th_rd64(&t, SMMU_STRTAB_BASE), 0x4000ABCD56789AC0ull);
	/* Unwritable low bits of the base are RES0. */
	th_wr32(&t, SMMU_STRTAB_BASE, 0xFFFFFFFF);
	assert_int_equal(th_rd32(&t, SMMU_STRTAB_BASE), 0xFFFFFFC0u);
	/* 64-bit access to a 32-bit register, bad sizes and misalignment: RAZ/WI. */
	th_wr64(&t, SMMU_CR2, 0x6);
	assert_int_equal(th_rd32(&t, SMMU_CR2), 0);
	assert_int_equal(th_rd64(&t, SMMU_IDR0), 0);
	vsmmu_mmio_write(t.vs, SMMU_CR2, 2, 0x6);
	vsmmu_mmio_write(t.vs, SMMU_CR2, 1, 0x6);
	vsmmu_mmio_write(t.vs, SMMU_CR2 + 1, 4, 0x6);
	vsmmu_mmio_write(t.vs, SMMU_STRTAB_BASE + 4, 8, 0);
	assert_int_equal(th_rd32(&t, SMMU_CR2), 0);
	vsmmu_mmio_read(t.vs, SMMU_IDR0 + 2, 4, &v);
	assert_int_equal(v, 0);
	vsmmu_mmio_read(t.vs, SMMU_IDR0, 2, &v);
	assert_int_equal(v, 0);
	vsmmu_bus_read(t.vs, SMMU_IDR1, 4, &v); /* the bus-shaped entry points */
	assert_int_equal(v, th_rd32(&t, SMMU_IDR1));
	vsmmu_bus_write(t.vs, SMMU_CR2, 4, 0x2);
	assert_int_equal(th_rd32(&t, SMMU_CR2), 0x2);
	vsmmu_bus_write(t.vs, SMMU_CR2, 4, 0);
	vsmmu_mmio_read(t.vs, 0x20000, 4, &v);
	assert_int_equal(v, 0);
	vsmmu_mmio_read(t.vs, ~0ull - 3, 4, &v);
	assert_int_equal(v, 0);
	vsmmu_mmio_write(t.vs, ~0ull - 7, 8, ~0ull);
	/* Reserved offsets and PRIQ (no PRI) are RAZ/WI. */
	th_wr64(&t, SMMU_PRIQ_BASE, ~0ull);
	assert_int_equal(th_rd64(&t, SMMU_PRIQ_BASE), 0);
	th_wr32(&t, 0x1000, 0xFFFFFFFF);
	assert_int_equal(th_rd32(&t, 0x1000), 0);
	th_fini(&t);
}

static void test_enable_locks_bases(void **state)
{
	struct th t;

	th_init(&t, NULL, false);
	th_driver_probe(&t, false, 8, 8, 8);
	/* With the SMMU and queues enabled, their bases cannot move. */
	th_wr64(&t, SMMU_STRTAB_BASE, 0x400000);
	th_wr32(&t, SMMU_STRTAB_BASE_CFG, 3);
	th_wr64(&t, SMMU_CMDQ_BASE, 0x400000);
	th_wr64(&t, SMMU_EVENTQ_BASE, 0x400000);
	th_wr32(&t, SMMU_CMDQ_CONS, 5);
	th_wr32(&t, SMMU_EVENTQ_PROD, 5);
	assert_int_equal(th_rd64(&t, SMMU_STRTAB_BASE) & ~FMASK(STRTAB_BASE_RA), TH_STRTAB_GPA);
	assert_int_equal(th_rd32(&t, SMMU_STRTAB_BASE_CFG), 8);
	assert_int_equal(FGET(th_rd64(&t, SMMU_CMDQ_BASE), Q_BASE_ADDR) << 5, TH_CMDQ_GPA);
	assert_int_equal(FGET(th_rd64(&t, SMMU_EVENTQ_BASE), Q_BASE_ADDR) << 5, TH_EVTQ_GPA);
	assert_int_equal(th_rd32(&t, SMMU_CMDQ_CONS), t.cmdq_prod);
	assert_int_equal(th_rd32(&t, SMMU_EVENTQ_PROD), 0);
	/* Page-0 aliases of the page-1 event queue registers. */
	assert_int_equal(th_rd32(&t, SMMU_EVENTQ_PROD_P0), th_rd32(&t, SMMU_EVENTQ_PROD));
	th_fini(&t);
}

static void test_reset_restores_defaults(void **state)
{
	struct th t;

	th_init(&t, NULL, false);
	th_driver_probe(&t, true, 16, 8, 8);
	vsmmu_reset(t.vs);
	assert_int_equal(th_rd32(&t, SMMU_CR0), 0);
	assert_int_equal(th_rd64(&t, SMMU_STRTAB_BASE), 0);
	assert_int_equal(th_rd32(&t, SMMU_GBPA), 0x1000);
	assert_int_equal(th_rd32(&t, SMMU_IRQ_CTRL), 0);
	th_fini(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_probe_idrs),
	    cmocka_unit_test(test_create_rejects_bad_config),
	    cmocka_unit_test(test_config_without_stall_or_httu),
	    cmocka_unit_test(test_cr0_ack_and_reserved_bits),
	    cmocka_unit_test(test_gbpa_update_protocol),
	    cmocka_unit_test(test_access_sizes),
	    cmocka_unit_test(test_enable_locks_bases),
	    cmocka_unit_test(test_reset_restores_defaults),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
