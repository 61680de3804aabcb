/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Named trace points, switched on at run time by name pattern.
 *
 *   TRACE(smmu_walk_fault, "sid=%u iova=%#lx", sid, iova);
 *
 * Patterns are comma-separated shell globs ("smmu_*,vfio_mig_*"); a leading '-' excludes.
 * Set them with trace_enable() (the --trace option, the control socket) or the VMIG_TRACE
 * environment variable; VMIG_TRACE_FILE sends output to a file instead of stderr.
 * A disabled trace point costs one load and compare: each point caches its on/off state
 * and re-evaluates it only when the pattern set changes (a global generation count).
 */
#ifndef VMIG_COMMON_TRACE_H
#define VMIG_COMMON_TRACE_H

#include <stdbool.h>

struct trace_point {
	const char *name;
	unsigned gen; /* trace generation the cached state belongs to; 0 = never evaluated */
	bool on;
};

extern unsigned trace_generation;

void trace_point_refresh(struct trace_point *tp, unsigned gen);
void trace_emit(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline bool trace_point_enabled(struct trace_point *tp)
{
	unsigned gen = __atomic_load_n(&trace_generation, __ATOMIC_ACQUIRE);
	if (__builtin_expect(__atomic_load_n(&tp->gen, __ATOMIC_RELAXED) != gen, 0))
		trace_point_refresh(tp, gen);
	return __atomic_load_n(&tp->on, __ATOMIC_RELAXED);
}

#define TRACE(tpname, ...)                                                                         \
	do {                                                                                       \
		static struct trace_point tp_##tpname = {.name = #tpname};                         \
		if (__builtin_expect(trace_point_enabled(&tp_##tpname), 0))                        \
			trace_emit(#tpname, __VA_ARGS__);                                          \
	} while (0)

/* Replaces the pattern set; NULL or "" turns everything off. -EINVAL on a malformed set. */
int trace_enable(const char *patterns);
/* Returns the current pattern set (never NULL). */
const char *trace_patterns(void);
/* NULL sends to stderr. -errno if the file cannot be opened (output unchanged). */
int trace_set_output(const char *path);
/* Reads VMIG_TRACE and VMIG_TRACE_FILE; returns a negative errno on a bad value. */
int trace_init_from_env(void);
/* True if name matches the current pattern set (what a trace point would decide). */
bool trace_name_enabled(const char *name);
/* Closes an output file and forgets the patterns (for tests and exit). */
void trace_shutdown(void);

#endif
