// SPDX-License-Identifier: Apache-2.0
/*
 * sdma MEMMOVE throughput through nested translation (guest stage 1 in guest RAM over a
 * host stage 2), 4 KiB and 1 MiB descriptors, with and without device DMA logging. Runs
 * alternate (off, on, off, on, ...) so both see the same machine state; medians.
 * Prints "BENCH <name> <value> <unit>" lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "sdma_fx.h"

#define REPS	7
#define BATCH	256
#define SPAN	(16ull << 20) /* source and destination windows */
#define SRC_GPA FX_DATA_GPA
#define DST_GPA (FX_DATA_GPA + 24ull * (1 << 20))

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Runs count MEMMOVEs of size bytes in batches; returns seconds. */
static double run_memmoves(struct fx *f, uint64_t size, unsigned count)
{
	double t0 = now_s();

	for (unsigned done = 0; done < count; done += BATCH) {
		unsigned n = count - done < BATCH ? count - done : BATCH;

		for (unsigned k = 0; k < n; k++) {
			uint64_t off = ((uint64_t)(done + k) * size) % SPAN;

			fx_put(f,
			       (struct sdma_desc){.opcode = SDMA_OP_MEMMOVE,
						  .src = fx_iova(f, SRC_GPA + off),
						  .dst = fx_iova(f, DST_GPA + off),
						  .size = size},
			       false);
		}
		fx_ring(f);
		if (sdma_wait_idle(f->sdma, 60000) != 0) {
			fprintf(stderr, "bench: device did not finish\n");
			exit(1);
		}
	}
	return now_s() - t0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return v[n / 2];
}

static void log_ctl(struct fx *f, bool on)
{
	struct vfio_device_feature_dma_logging_range r = {.iova = fx_iova(f, 0),
							  .length = FX_RAM_SIZE};
	struct {
		struct vfio_device_feature hdr;
		struct vfio_device_feature_dma_logging_control c;
	} a = {
	    .hdr = {.argsz = sizeof(a),
		    .flags = VFIO_DEVICE_FEATURE_SET | (on ? VFIO_DEVICE_FEATURE_DMA_LOGGING_START
							   : VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP)},
	    .c = {.page_size = 4096, .num_ranges = 1, .ranges = (uintptr_t)&r}};

	if (vfio_device_feature(f->vfio, &a.hdr) != 0) {
		fprintf(stderr, "bench: logging %s failed\n", on ? "start" : "stop");
		exit(1);
	}
}

static void bench_size(struct fx *f, const char *tag, uint64_t size, unsigned count)
{
	double off[REPS], on[REPS];

	run_memmoves(f, size, count / 4 + 1); /* warm the IOTLB and the page cache */
	for (int r = 0; r < REPS; r++) {
		off[r] = run_memmoves(f, size, count);
		log_ctl(f, true);
		on[r] = run_memmoves(f, size, count);
		log_ctl(f, false);
	}
	double t_off = median(off, REPS), t_on = median(on, REPS);
	double bytes = (double)size * count;

	printf("BENCH sdma_memmove_%s_nested_desc_per_s %.0f desc/s\n", tag, count / t_off);
	printf("BENCH sdma_memmove_%s_nested_gbps %.3f GB/s\n", tag, bytes / t_off / 1e9);
	printf("BENCH sdma_memmove_%s_nested_log_desc_per_s %.0f desc/s\n", tag, count / t_on);
	printf("BENCH sdma_memmove_%s_nested_log_gbps %.3f GB/s\n", tag, bytes / t_on / 1e9);
	printf("BENCH sdma_memmove_%s_log_overhead %.3f ratio\n", tag, t_on / t_off);
}

int main(void)
{
	struct fx f;
	struct fx_opts o = {.mode = FX_NESTED};

	printf("# reproduce: meson setup build && ninja -C build && "
	       "./build/bench/host_dev/bench_sdma\n");
	printf("# MEMMOVE through nested translation, medians of %d alternating runs\n", REPS);
	fx_init(&f, &o);
	fx_ring_setup(&f, 10);
	memset(f.ram + SRC_GPA, 0xa5, SPAN);
	bench_size(&f, "4k", 4096, 8192);
	bench_size(&f, "1m", 1u << 20, 64);
	fx_fini(&f);
	return 0;
}
