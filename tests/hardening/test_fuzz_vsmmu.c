// SPDX-License-Identifier: Apache-2.0
/*
 * The vSMMU's migration state is untrusted input on the destination: mutated copies of a
 * real saved state are loaded into a vSMMU with a device attached (the harness's mock
 * bridge). A refused state must change nothing (the saved state is byte-identical after);
 * an accepted one must save back to something that loads again, survive post_load and
 * then a burst of random guest MMIO, and the vSMMU must never touch RAM outside the guest's.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "tests/vsmmu/harness.h"

#define VSID 3

static uint8_t *saved(struct th *t, size_t *len)
{
	uint8_t *b;

	*len = vsmmu_state_size(t->vs);
	b = malloc(*len + 256);
	assert_int_equal(vsmmu_state_save(t->vs, b, *len), (long)*len);
	return b;
}

/* A guest mid-flight: queues and stream table programmed, an S1 stream, commands done. */
static void guest_setup(struct th *t)
{
	th_init(t, NULL, true);
	th_attach(t, VSID);
	th_driver_probe(t, true, 8, 5, 5);
	th_cd_write(t, TH_CD_GPA, th_cd_w0(5, true), TH_SCRATCH);
	th_ste_write(t, VSID, th_ste_s1(TH_CD_GPA, 0, 0), 0);
	th_cmd(t, th_op(CMD_CFGI_STE, VSID), 1);
	assert_true(th_sync(t));
}

static const uint64_t regs_offs[] = {SMMU_CR0,
				     SMMU_CR1,
				     SMMU_CR2,
				     SMMU_IRQ_CTRL,
				     SMMU_GERRORN,
				     SMMU_STRTAB_BASE,
				     SMMU_STRTAB_BASE_CFG,
				     SMMU_CMDQ_BASE,
				     SMMU_CMDQ_PROD,
				     SMMU_CMDQ_CONS,
				     SMMU_EVENTQ_BASE,
				     SMMU_EVENTQ_PROD,
				     SMMU_EVENTQ_CONS,
				     SMMU_GBPA,
				     SMMU_CR0ACK};

/* Random guest register traffic: any register, offset, width, value. */
static void guest_mmio_burst(struct fuzz *z, struct th *t, unsigned n)
{
	static const unsigned sizes[] = {1, 2, 4, 8};

	for (unsigned i = 0; i < n; i++) {
		unsigned size = sizes[fuzz_below(z, 4)];
		uint64_t off = fuzz_chance(z, 2) ? regs_offs[fuzz_below(z, ARRAY_SIZE(regs_offs))]
						 : fuzz_below(z, 0x20000);
		uint64_t v;

		if (fuzz_chance(z, 3))
			vsmmu_mmio_read(t->vs, off, size, &v);
		else
			vsmmu_mmio_write(t->vs, off, size, fuzz_interesting(z));
	}
}

static void test_fuzz_vsmmu_state_load(void **state)
{
	struct th src, dst;
	struct fuzz z;
	size_t good_len, before_len, len;
	uint8_t *good, *before, *buf;
	unsigned accepted = 0;

	guest_setup(&src);
	good = saved(&src, &good_len);
	buf = malloc(good_len + 256);
	th_init(&dst, NULL, true);
	th_attach(&dst, VSID);
	dst.wr_check = true;
	dst.wr_lo = 0;
	dst.wr_hi = TH_RAM_SIZE;
	fuzz_begin(&z, "vsmmu_state_load", 1500);
	while (fuzz_next(&z, 200)) {
		int rc;

		len = good_len;
		memcpy(buf, good, len);
		fuzz_mutate(&z, buf, &len, good_len + 256);
		before = saved(&dst, &before_len);
		rc = vsmmu_state_load(dst.vs, buf, len);
		if (rc < 0) {
			size_t after_len;
			uint8_t *after = saved(&dst, &after_len);

			assert_true(rc == -EINVAL || rc == -EPROTO);
			assert_int_equal(after_len, before_len);
			assert_memory_equal(after, before, before_len); /* nothing changed */
			free(after);
		} else {
			size_t again_len;
			uint8_t *again;

			assert_int_equal(rc, 0);
			accepted++;
			again = saved(&dst, &again_len);
			assert_int_equal(vsmmu_state_load(dst.vs, again, again_len), 0);
			assert_true(vsmmu_post_load(dst.vs) >= 0);
			guest_mmio_burst(&z, &dst, 64);
			free(again);
			/* Back to a known state for the next round. */
			assert_int_equal(vsmmu_state_load(dst.vs, good, good_len), 0);
		}
		free(before);
	}
	fuzz_end(&z);
	printf("accepted %u\n", accepted);
	assert_int_equal(dst.n_wr_unexpected, 0);
	assert_true(accepted > 0); /* the mutations also reach past the parser */
	free(buf);
	free(good);
	th_fini(&dst);
	th_fini(&src);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fuzz_vsmmu_state_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
