// SPDX-License-Identifier: Apache-2.0
/* The vCPU state byte format: round trip, and refusal of every truncated or corrupt blob. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/kvm/vcpu_state.h"

static void fill(void *p, size_t n, unsigned seed)
{
	uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(seed * 31 + i * 7);
}

static void make_state(struct vcpu_state *st)
{
	memset(st, 0, sizeof(*st));
	st->index = 3;
	fill(&st->regs, sizeof(st->regs), 1);
	fill(&st->sregs, sizeof(st->sregs), 2);
	fill(&st->xcrs, sizeof(st->xcrs), 3);
	fill(&st->lapic, sizeof(st->lapic), 4);
	fill(&st->events, sizeof(st->events), 5);
	fill(&st->mp_state, sizeof(st->mp_state), 6);
	fill(&st->debugregs, sizeof(st->debugregs), 7);
	st->xsave_size = 4096 + 1024;
	st->xsave = malloc(st->xsave_size);
	fill(st->xsave, st->xsave_size, 8);
	st->nr_msrs = 37;
	st->msrs = calloc(st->nr_msrs, sizeof(*st->msrs));
	for (unsigned i = 0; i < st->nr_msrs; i++)
		st->msrs[i] = (struct kvm_msr_entry){.index = 0xC0000080 + i, .data = i * 0x1111};
}

static void assert_state_equal(const struct vcpu_state *a, const struct vcpu_state *b)
{
	assert_int_equal(a->index, b->index);
	assert_memory_equal(&a->regs, &b->regs, sizeof(a->regs));
	assert_memory_equal(&a->sregs, &b->sregs, sizeof(a->sregs));
	assert_memory_equal(&a->xcrs, &b->xcrs, sizeof(a->xcrs));
	assert_memory_equal(&a->lapic, &b->lapic, sizeof(a->lapic));
	assert_memory_equal(&a->events, &b->events, sizeof(a->events));
	assert_memory_equal(&a->mp_state, &b->mp_state, sizeof(a->mp_state));
	assert_memory_equal(&a->debugregs, &b->debugregs, sizeof(a->debugregs));
	assert_int_equal(a->xsave_size, b->xsave_size);
	assert_memory_equal(a->xsave, b->xsave, a->xsave_size);
	assert_int_equal(a->nr_msrs, b->nr_msrs);
	assert_memory_equal(a->msrs, b->msrs, a->nr_msrs * sizeof(*a->msrs));
}

static void test_round_trip(void **state)
{
	struct vcpu_state a, b;
	void *buf;
	size_t len;

	make_state(&a);
	assert_int_equal(vcpu_state_serialise(&a, &buf, &len), 0);
	assert_int_equal(vcpu_state_parse(buf, len, &b), 0);
	assert_state_equal(&a, &b);
	vcpu_state_free(&a);
	vcpu_state_free(&b);
	free(buf);
}

static void test_truncated_refused(void **state)
{
	struct vcpu_state a, b;
	void *buf;
	size_t len;

	make_state(&a);
	assert_int_equal(vcpu_state_serialise(&a, &buf, &len), 0);
	for (size_t n = 0; n < len; n++) {
		/* A copy of exactly n bytes, so ASan sees any read past the end. */
		void *cut = malloc(n ? n : 1);
		memcpy(cut, buf, n);
		assert_int_equal(vcpu_state_parse(cut, n, &b), -EINVAL);
		assert_null(b.xsave);
		assert_null(b.msrs);
		free(cut);
	}
	assert_int_equal(vcpu_state_parse(NULL, len, &b), -EINVAL);
	vcpu_state_free(&a);
	free(buf);
}

static void test_corrupt_refused(void **state)
{
	struct vcpu_state a, b;
	uint8_t *buf;
	size_t len;

	make_state(&a);
	assert_int_equal(vcpu_state_serialise(&a, (void **)&buf, &len), 0);
	/* Wrong magic, wrong version, wrong total. */
	buf[0] ^= 1;
	assert_int_equal(vcpu_state_parse(buf, len, &b), -EINVAL);
	buf[0] ^= 1;
	buf[4] = 99;
	assert_int_equal(vcpu_state_parse(buf, len, &b), -EPROTO);
	buf[4] = 1;
	buf[8] ^= 0x10;
	assert_int_equal(vcpu_state_parse(buf, len, &b), -EINVAL);
	buf[8] ^= 0x10;
	/* The first record (regs) with a wrong length, then a wrong tag. */
	uint32_t *rec = (uint32_t *)(buf + 16);
	rec[1] += 8;
	assert_int_equal(vcpu_state_parse(buf, len, &b), -EINVAL);
	rec[1] -= 8;
	rec[0] = 2; /* sregs twice (and regs missing) */
	assert_int_equal(vcpu_state_parse(buf, len, &b), -EINVAL);
	rec[0] = 1;
	assert_int_equal(vcpu_state_parse(buf, len, &b), 0);
	vcpu_state_free(&b);

	/* Random byte flips: any result, but never a crash or a leak. */
	srand(11);
	for (int i = 0; i < 3000; i++) {
		size_t at = (size_t)rand() % 400;
		uint8_t old = buf[at];
		buf[at] = (uint8_t)rand();
		if (vcpu_state_parse(buf, len, &b) == 0)
			vcpu_state_free(&b);
		buf[at] = old;
	}
	vcpu_state_free(&a);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_truncated_refused),
	    cmocka_unit_test(test_corrupt_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
