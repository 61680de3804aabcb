/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Deterministic, bounded mutation fuzzing inside cmocka tests. The seed is printed (and can
 * be given with VMIG_FUZZ_SEED) so a failure reproduces; VMIG_FUZZ_MS overrides the time
 * budget of each loop (long runs by hand, short ones in CI).
 */
#ifndef VMIG_TESTS_HARDENING_FUZZ_H
#define VMIG_TESTS_HARDENING_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fuzz {
	const char *name;
	uint64_t seed, state;
	uint64_t iter, deadline_ns;
};

/* Starts a loop of at most budget_ms (VMIG_FUZZ_MS overrides) and prints its seed. */
void fuzz_begin(struct fuzz *z, const char *name, unsigned budget_ms);
/* True while the budget lasts (and at least min_iter iterations have not run yet). */
bool fuzz_next(struct fuzz *z, uint64_t min_iter);
/* Prints how many iterations ran. */
void fuzz_end(struct fuzz *z);

uint64_t fuzz_u64(struct fuzz *z);
/* Uniform in [0, n); n > 0. */
uint64_t fuzz_below(struct fuzz *z, uint64_t n);
bool fuzz_chance(struct fuzz *z, unsigned one_in);
/* A value a parser should be careful with: 0, 1, all-ones, powers of two +-1, random. */
uint64_t fuzz_interesting(struct fuzz *z);
void fuzz_bytes(struct fuzz *z, void *buf, size_t len);
/*
 * Mutates buf[0, *len) in place (capacity cap): byte flips, interesting words at aligned
 * offsets, truncation, extension with random bytes, chunk duplication.
 */
void fuzz_mutate(struct fuzz *z, uint8_t *buf, size_t *len, size_t cap);

#endif
