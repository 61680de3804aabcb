/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Allocation-failure injection for tests, in the style of the kernel's fail-nth: a test
 * executable linked with -Wl,--wrap=malloc,... (see meson.build) routes every allocation
 * of the code under test through here, and failnth_run() replays a scenario once per
 * allocation site, making exactly the n-th allocation fail. Every failure must come back
 * as an error with nothing leaked (checked with LSan in the sanitizer build), and the
 * scenario must succeed once n is past its last allocation.
 */
#ifndef VMIG_TESTS_HARDENING_FAILNTH_H
#define VMIG_TESTS_HARDENING_FAILNTH_H

#include <stdbool.h>

/* Makes the n-th allocation from now fail (n >= 1); 0 disarms. */
void failnth_arm(unsigned n);
/* Disarms; true if the armed failure happened. */
bool failnth_disarm(void);

/*
 * Runs scenario(arg) with n = 1, 2, ... until a run in which the n-th allocation never
 * came; that run must return 0. Runs with an injected failure may return an error or 0
 * (a failure the code could absorb). max bounds n. Returns the number of runs.
 * Fails the cmocka test on a leak (sanitizer build) or a wrong result.
 */
unsigned failnth_run(const char *name, int (*scenario)(void *arg), void *arg, unsigned max);

#endif
