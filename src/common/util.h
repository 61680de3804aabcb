/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Small helpers shared by every layer. Error convention for the whole project: functions
 * return 0 or a positive count on success and a negative errno value on failure; at the
 * uAPI-like boundaries (iommufd.h, vfio.h) the codes are the ones Linux would return.
 */
#ifndef VMIG_COMMON_UTIL_H
#define VMIG_COMMON_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b)     ((a) < (b) ? (a) : (b))
#define MAX(a, b)     ((a) > (b) ? (a) : (b))

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define IS_POW2(x)	 ((x) != 0 && ((x) & ((x)-1)) == 0)
#define ALIGN_UP(x, a)	 (((x) + (a)-1) & ~((__typeof__(x))(a)-1))
#define ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a)-1))
#define IS_ALIGNED(x, a) (((x) & ((__typeof__(x))(a)-1)) == 0)

/* Register fields as (shift, width) pairs: FIELD_GET/FIELD_SET/FGET/FSET. */
#include "arch/field.h"

/* CLOCK_REALTIME ms from now: a pthread_cond_timedwait deadline. */
static inline struct timespec realtime_after_ms(unsigned ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* CLOCK_MONOTONIC in nanoseconds: durations and deadlines. */
static inline uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#define KiB (1024ull)
#define MiB (1024ull * KiB)
#define GiB (1024ull * MiB)

#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define LIKELY(x)   __builtin_expect(!!(x), 1)

#endif
