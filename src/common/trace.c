// SPDX-License-Identifier: Apache-2.0
#include "common/trace.h"

#include <errno.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Starts at 1 so that a never-evaluated point (gen 0) always refreshes once. */
unsigned trace_generation = 1;

static pthread_mutex_t trace_lock = PTHREAD_MUTEX_INITIALIZER;
static char *trace_pattern_set;
static FILE *trace_out;

static bool glob_list_match(const char *list, const char *name)
{
	bool on = false;
	const char *p = list;

	while (p && *p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char pat[128];

		if (len > 0 && len < sizeof(pat)) {
			memcpy(pat, p, len);
			pat[len] = 0;
			if (pat[0] == '-') {
				if (fnmatch(pat + 1, name, 0) == 0)
					on = false;
			} else if (fnmatch(pat, name, 0) == 0) {
				on = true;
			}
		}
		p = end ? end + 1 : NULL;
	}
	return on;
}

bool trace_name_enabled(const char *name)
{
	pthread_mutex_lock(&trace_lock);
	bool on = glob_list_match(trace_pattern_set, name);
	pthread_mutex_unlock(&trace_lock);
	return on;
}

void trace_point_refresh(struct trace_point *tp, unsigned gen)
{
	__atomic_store_n(&tp->on, trace_name_enabled(tp->name), __ATOMIC_RELAXED);
	__atomic_store_n(&tp->gen, gen, __ATOMIC_RELAXED);
}

static bool patterns_valid(const char *patterns)
{
	const char *p = patterns;

	while (*p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len == 0 || len >= 128 || (len == 1 && p[0] == '-'))
			return false;
		p = end ? end + 1 : p + len;
	}
	return true;
}

int trace_enable(const char *patterns)
{
	char *copy = NULL;

	if (patterns && *patterns) {
		if (!patterns_valid(patterns))
			return -EINVAL;
		copy = strdup(patterns);
		if (!copy)
			return -ENOMEM;
	}
	pthread_mutex_lock(&trace_lock);
	free(trace_pattern_set);
	trace_pattern_set = copy;
	unsigned gen = trace_generation + 1;
	if (gen == 0)
		gen = 1;
	__atomic_store_n(&trace_generation, gen, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&trace_lock);
	return 0;
}

const char *trace_patterns(void)
{
	return trace_pattern_set ? trace_pattern_set : "";
}

int trace_set_output(const char *path)
{
	FILE *f = NULL;

	if (path) {
		f = fopen(path, "a");
		if (!f)
			return -errno;
		setvbuf(f, NULL, _IOLBF, 0);
	}
	pthread_mutex_lock(&trace_lock);
	if (trace_out)
		fclose(trace_out);
	trace_out = f;
	pthread_mutex_unlock(&trace_lock);
	return 0;
}

int trace_init_from_env(void)
{
	const char *file = getenv("VMIG_TRACE_FILE");
	int ret = 0;

	if (file && *file)
		ret = trace_set_output(file);
	if (ret == 0)
		ret = trace_enable(getenv("VMIG_TRACE"));
	return ret;
}

void trace_emit(const char *name, const char *fmt, ...)
{
	struct timespec ts;
	va_list ap;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	pthread_mutex_lock(&trace_lock);
	FILE *out = trace_out ? trace_out : stderr;
	fprintf(out, "[%ld.%06ld] %s: ", (long)ts.tv_sec, ts.tv_nsec / 1000, name);
	va_start(ap, fmt);
	vfprintf(out, fmt, ap);
	va_end(ap);
	fputc('\n', out);
	pthread_mutex_unlock(&trace_lock);
}

void trace_shutdown(void)
{
	trace_set_output(NULL);
	trace_enable(NULL);
}
