/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Register and descriptor fields given as (shift, width) pairs. Freestanding (only
 * <stdint.h>): the guest firmware, the VMM and the host model share these and the
 * architecture tables built on them.
 */
#ifndef VMIG_ARCH_FIELD_H
#define VMIG_ARCH_FIELD_H

#include <stdint.h>

#define FIELD_MASK(shift, width)   ((((width) >= 64) ? ~0ull : ((1ull << (width)) - 1)) << (shift))
#define FIELD_GET(v, shift, width) (((uint64_t)(v)&FIELD_MASK(shift, width)) >> (shift))
#define FIELD_SET(v, shift, width, f)                                                              \
	(((uint64_t)(v) & ~FIELD_MASK(shift, width)) |                                             \
	 (((uint64_t)(f) << (shift)) & FIELD_MASK(shift, width)))

/*
 * Accessors taking one name that expands to a (shift, width) pair: the pair is expanded
 * before FIELD_GET and friends see it. FGET(ste[0], STE0_CONFIG).
 */
#define FIELD_EXPAND_(m, ...) m(__VA_ARGS__)
#define FGET(v, f)	      FIELD_EXPAND_(FIELD_GET, v, f)
#define FSET(v, f, x)	      FIELD_EXPAND_(FIELD_SET, v, f, x)
#define FMASK(f)	      FIELD_EXPAND_(FIELD_MASK, f)
/* The field value x shifted into place, for building words with |. */
#define FVAL(f, x) FIELD_EXPAND_(FIELD_SET, 0, f, x)

#endif
