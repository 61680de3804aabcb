// SPDX-License-Identifier: Apache-2.0
#include "fuzz.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t fuzz_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t fuzz_env(const char *name, uint64_t def)
{
	const char *v = getenv(name);

	return v && *v ? strtoull(v, NULL, 0) : def;
}

void fuzz_begin(struct fuzz *z, const char *name, unsigned budget_ms)
{
	z->name = name;
	z->seed = fuzz_env("VMIG_FUZZ_SEED", (uint64_t)time(NULL) ^ (uint64_t)fuzz_now_ns());
	z->state = z->seed;
	z->iter = 0;
	z->deadline_ns = fuzz_now_ns() + fuzz_env("VMIG_FUZZ_MS", budget_ms) * 1000000ull;
	printf("fuzz %s: seed VMIG_FUZZ_SEED=%#" PRIx64 "\n", name, z->seed);
	fflush(stdout);
}

bool fuzz_next(struct fuzz *z, uint64_t min_iter)
{
	if (z->iter >= min_iter && fuzz_now_ns() > z->deadline_ns)
		return false;
	z->iter++;
	return true;
}

void fuzz_end(struct fuzz *z)
{
	printf("fuzz %s: %" PRIu64 " iterations (seed %#" PRIx64 ")\n", z->name, z->iter, z->seed);
}

/* splitmix64: tiny, and every seed (including 0) gives a good stream. */
uint64_t fuzz_u64(struct fuzz *z)
{
	uint64_t x = (z->state += 0x9e3779b97f4a7c15ull);

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

uint64_t fuzz_below(struct fuzz *z, uint64_t n)
{
	return fuzz_u64(z) % n;
}

bool fuzz_chance(struct fuzz *z, unsigned one_in)
{
	return fuzz_below(z, one_in) == 0;
}

uint64_t fuzz_interesting(struct fuzz *z)
{
	uint64_t p = 1ull << fuzz_below(z, 64);

	switch (fuzz_below(z, 8)) {
	case 0:
		return 0;
	case 1:
		return 1;
	case 2:
		return UINT64_MAX;
	case 3:
		return p;
	case 4:
		return p - 1;
	case 5:
		return p + 1;
	case 6:
		return fuzz_below(z, 4096);
	default:
		return fuzz_u64(z);
	}
}

void fuzz_bytes(struct fuzz *z, void *buf, size_t len)
{
	uint8_t *p = buf;

	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)fuzz_u64(z);
}

static void fuzz_put_word(struct fuzz *z, uint8_t *buf, size_t len)
{
	static const size_t widths[] = {1, 2, 4, 8};
	size_t w = widths[fuzz_below(z, 4)];
	uint64_t v = fuzz_interesting(z);

	if (len < w)
		return;
	memcpy(buf + (fuzz_below(z, len - w + 1) & ~(w - 1)), &v, w);
}

void fuzz_mutate(struct fuzz *z, uint8_t *buf, size_t *len, size_t cap)
{
	unsigned n = 1 + (unsigned)fuzz_below(z, 4);

	for (unsigned i = 0; i < n; i++) {
		switch (fuzz_below(z, 6)) {
		case 0:
		case 1:
			if (*len)
				buf[fuzz_below(z, *len)] ^= (uint8_t)(1u << fuzz_below(z, 8));
			break;
		case 2:
		case 3:
			fuzz_put_word(z, buf, *len);
			break;
		case 4:
			*len = *len ? fuzz_below(z, *len) : 0;
			break;
		default: {
			size_t add = fuzz_below(z, 64);

			if (*len + add > cap)
				add = cap - *len;
			fuzz_bytes(z, buf + *len, add);
			*len += add;
		}
		}
	}
}
