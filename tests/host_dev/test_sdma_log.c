// SPDX-License-Identifier: Apache-2.0
/*
 * Device DMA logging through VFIO_DEVICE_FEATURE: random DMA writes, then reports equal
 * exactly the written IOVA pages at the chosen page size (by the IOVA the device emitted,
 * before nested translation), reports clear, sub-range reports, page-size choices, the
 * range limit with closest-range combining, a whole 48-bit aperture at 4 KiB pages, the
 * tracker's memory budget, and every error path.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/bitmap.h"
#include "host/dev/dma_log.h"
#include "sdma_fx.h"

#define AREA (16ull << 20) /* logged data area, from FX_DATA_GPA */

static int setup_s2(void **state)
{
	struct fx *f = malloc(sizeof(*f));
	struct fx_opts o = {.mode = FX_STAGE2};

	fx_init(f, &o);
	fx_ring_setup(f, 8);
	*state = f;
	return 0;
}

static int setup_nested(void **state)
{
	struct fx *f = malloc(sizeof(*f));
	struct fx_opts o = {.mode = FX_NESTED};

	fx_init(f, &o);
	fx_ring_setup(f, 8);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx_fini(*state);
	free(*state);
	return 0;
}

static int log_start(struct fx *f, const struct vfio_device_feature_dma_logging_range *r,
		     uint32_t n, uint64_t *page_size)
{
	struct {
		struct vfio_device_feature hdr;
		struct vfio_device_feature_dma_logging_control c;
	} a = {.hdr = {.argsz = sizeof(a),
		       .flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_START},
	       .c = {.page_size = *page_size, .num_ranges = n, .ranges = (uintptr_t)r}};
	int ret = vfio_device_feature(f->vfio, &a.hdr);

	*page_size = a.c.page_size;
	return ret;
}

static int log_stop(struct fx *f)
{
	struct vfio_device_feature a = {.argsz = sizeof(a),
					.flags = VFIO_DEVICE_FEATURE_SET |
						 VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP};

	return vfio_device_feature(f->vfio, &a);
}

static int log_report(struct fx *f, uint64_t iova, uint64_t len, uint64_t ps, uint64_t *map)
{
	struct {
		struct vfio_device_feature hdr;
		struct vfio_device_feature_dma_logging_report r;
	} a = {.hdr = {.argsz = sizeof(a),
		       .flags = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT},
	       .r = {.iova = iova, .length = len, .page_size = ps, .bitmap = (uintptr_t)map}};

	return vfio_device_feature(f->vfio, &a.hdr);
}

/* Runs n random FILL/MEMMOVE writes inside the area; marks written pages in expect. */
static void random_writes(struct fx *f, unsigned n, uint64_t ps, uint64_t *expect)
{
	uint32_t last = 0;

	for (unsigned k = 0; k < n; k++) {
		uint64_t off = ((uint64_t)rand() * 4099) % (AREA - 65536);
		uint64_t len = 1 + (uint64_t)rand() % 20000;
		struct sdma_desc d = {.dst = fx_iova(f, FX_DATA_GPA + off), .size = len};

		if (k % 3 == 0) {
			d.opcode = SDMA_OP_MEMMOVE;
			d.src = fx_iova(f, FX_DATA_GPA + AREA); /* outside the area: read only */
		} else {
			d.opcode = SDMA_OP_FILL;
			d.pattern = k;
		}
		bitmap_set_range(expect, off / ps, (off + len - 1) / ps - off / ps + 1);
		last = fx_put(f, d, true);
	}
	assert_true(fx_wait(f, last, 5000));
	assert_int_equal(sdma_wait_idle(f->sdma, 5000), 0);
}

static void expect_report(struct fx *f, uint64_t iova, uint64_t len, uint64_t ps,
			  const uint64_t *expect)
{
	size_t nbits = len / ps;
	uint64_t *got = bitmap_alloc(nbits);

	assert_int_equal(log_report(f, iova, len, ps, got), 0);
	assert_memory_equal(got, expect, bitmap_bytes(nbits));
	/* Read-and-clear: a second report is empty. */
	bitmap_zero(got, nbits);
	assert_int_equal(log_report(f, iova, len, ps, got), 0);
	assert_true(bitmap_empty(got, nbits));
	free(got);
}

static void test_exact_pages(void **state)
{
	struct fx *f = *state;
	const uint64_t base = fx_iova(f, FX_DATA_GPA);
	struct vfio_device_feature_dma_logging_range r = {.iova = base, .length = AREA};
	uint64_t ps = 4096, *expect = bitmap_alloc(AREA / 4096);

	srand(11);
	assert_int_equal(log_start(f, &r, 1, &ps), 0);
	assert_int_equal(ps, 4096);
	random_writes(f, 150, 4096, expect);
	assert_true(bitmap_count(expect, AREA / 4096) > 100);
	expect_report(f, base, AREA, 4096, expect);
	/* Again at 2 MiB and at 8 KiB report granularity (tracking stays 4 KiB). */
	uint64_t *e2m = bitmap_alloc(AREA >> 21), *e8k = bitmap_alloc(AREA >> 13);
	random_writes(f, 40, 2ull << 20, e2m);
	expect_report(f, base, AREA, 2ull << 20, e2m);
	random_writes(f, 40, 8192, e8k);
	expect_report(f, base, AREA, 8192, e8k);
	/* Sub-range reports clear only their window. */
	bitmap_zero(expect, AREA / 4096);
	random_writes(f, 60, 4096, expect);
	uint64_t half = AREA / 2, npages = half / 4096;
	uint64_t *lo = bitmap_alloc(npages), *hi = bitmap_alloc(npages);
	bitmap_or(lo, expect, npages);
	for (uint64_t b = 0; b < npages; b++)
		if (bitmap_test(expect, npages + b))
			bitmap_set(hi, b);
	expect_report(f, base, half, 4096, lo);
	expect_report(f, base + half, half, 4096, hi);
	/* Completion records and MSIs are outside the logged range: never reported. */
	assert_int_equal(log_stop(f), 0);
	free(expect);
	free(e2m);
	free(e8k);
	free(lo);
	free(hi);
}

/* Reports racing the engine: the union of all reports is exactly what was written. */
static void test_concurrent_reports(void **state)
{
	struct fx *f = *state;
	const uint64_t base = fx_iova(f, FX_DATA_GPA), npages = AREA / 4096;
	struct vfio_device_feature_dma_logging_range r = {.iova = base, .length = AREA};
	uint64_t ps = 4096, *expect = bitmap_alloc(npages), *acc = bitmap_alloc(npages);
	uint64_t *got = bitmap_alloc(npages);
	uint32_t last = 0;
	int reports = 0;

	srand(5);
	assert_int_equal(log_start(f, &r, 1, &ps), 0);
	for (unsigned k = 0; k < 200; k++) {
		uint64_t off = ((uint64_t)rand() * 4099) % (AREA - 65536);
		uint64_t len = 1 + (uint64_t)rand() % 40000;

		bitmap_set_range(expect, off / 4096, (off + len - 1) / 4096 - off / 4096 + 1);
		last = fx_put(f,
			      (struct sdma_desc){.opcode = SDMA_OP_FILL,
						 .dst = fx_iova(f, FX_DATA_GPA + off),
						 .size = len},
			      false);
	}
	fx_ring(f);
	do {
		bitmap_zero(got, npages);
		assert_int_equal(log_report(f, base, AREA, 4096, got), 0);
		bitmap_or(acc, got, npages);
		reports++;
	} while (!__atomic_load_n(&fx_compl(f, last)->status, __ATOMIC_ACQUIRE));
	assert_int_equal(sdma_wait_idle(f->sdma, 5000), 0);
	bitmap_zero(got, npages);
	assert_int_equal(log_report(f, base, AREA, 4096, got), 0);
	bitmap_or(acc, got, npages);
	assert_memory_equal(acc, expect, bitmap_bytes(npages));
	assert_true(reports >= 1);
	assert_int_equal(log_stop(f), 0);
	free(expect);
	free(acc);
	free(got);
}

/* The chosen page size: clamped to 4 KiB .. 2 MiB; bits replicate when reporting finer. */
static void test_page_sizes(void **state)
{
	struct fx *f = *state;
	const uint64_t base = fx_iova(f, FX_DATA_GPA);
	struct vfio_device_feature_dma_logging_range r = {.iova = base, .length = AREA};
	uint64_t ps = 1024, one = 0;

	r.length = AREA;
	assert_int_equal(log_start(f, &r, 1, &ps), 0); /* below the device's minimum */
	assert_int_equal(ps, 4096);
	assert_int_equal(log_stop(f), 0);
	ps = 4ull << 20;
	assert_int_equal(log_start(f, &r, 1, &ps), 0);
	assert_int_equal(ps, 2ull << 20);
	assert_int_equal(log_stop(f), 0);
	ps = 2ull << 20;
	assert_int_equal(log_start(f, &r, 1, &ps), 0);
	assert_int_equal(ps, 2ull << 20);
	/* One byte written: its whole 2 MiB page is reported, at 4 KiB as 512 bits. */
	uint32_t i = fx_put(
	    f,
	    (struct sdma_desc){.opcode = SDMA_OP_FILL, .dst = base + (2ull << 20) + 5, .size = 1},
	    true);
	assert_true(fx_wait(f, i, 2000));
	uint64_t *map = bitmap_alloc(AREA / 4096);
	assert_int_equal(log_report(f, base, AREA, 4096, map), 0);
	assert_int_equal(bitmap_count(map, AREA / 4096), 512);
	assert_int_equal(bitmap_find_next_set(map, AREA / 4096, 0), 512);
	/* At 4 MiB: one bit. */
	i = fx_put(f, (struct sdma_desc){.opcode = SDMA_OP_FILL, .dst = base + 5, .size = 1}, true);
	assert_true(fx_wait(f, i, 2000));
	assert_int_equal(log_report(f, base, AREA, 4ull << 20, &one), 0);
	assert_int_equal(one, 1);
	assert_int_equal(log_stop(f), 0);
	free(map);
}

/* More ranges than the device tracks: the closest ones are merged (gaps become logged). */
static void test_range_limit(void **state)
{
	struct fx *f = *state;
	const uint64_t base = fx_iova(f, FX_DATA_GPA), M = 1ull << 20;
	/* Six 1 MiB ranges; gaps: 1M, 4M, 64K... the two smallest gaps (64 KiB) get merged. */
	struct vfio_device_feature_dma_logging_range r[6] = {
	    {base + 0 * M, M},		 {base + 2 * M, M},  {base + 7 * M, M},
	    {base + 8 * M + 0x10000, M}, {base + 12 * M, M}, {base + 13 * M + 0x10000, M},
	};
	uint64_t ps = 4096, map[4] = {0};
	uint32_t i;

	assert_int_equal(log_start(f, r, 6, &ps), 0);
	/* A write in the merged 64 KiB gap after range 2 is logged ... */
	i = fx_put(f, (struct sdma_desc){.opcode = SDMA_OP_FILL, .dst = base + 8 * M, .size = 8},
		   true);
	/* ... one in the 1 MiB gap between ranges 0 and 1 is not. */
	i = fx_put(f, (struct sdma_desc){.opcode = SDMA_OP_FILL, .dst = base + 1 * M, .size = 8},
		   true);
	assert_true(fx_wait(f, i, 2000));
	assert_int_equal(sdma_wait_idle(f->sdma, 2000), 0);
	assert_int_equal(log_report(f, base + 8 * M, 0x10000, 4096, map), 0);
	assert_int_equal(map[0], 1);
	map[0] = 0;
	assert_int_equal(log_report(f, base + 1 * M, M, 4096, map), 0);
	assert_int_equal(map[0] | map[1] | map[2] | map[3], 0);
	assert_int_equal(log_stop(f), 0);
}

static void test_errors(void **state)
{
	struct fx *f = *state;
	const uint64_t base = fx_iova(f, FX_DATA_GPA);
	struct vfio_device_feature_dma_logging_range r[2] = {{base, 1 << 20},
							     {base + (2 << 20), 1 << 20}};
	struct vfio_device_feature_dma_logging_range *many = calloc(300, sizeof(*many));
	uint64_t ps = 4096, map[64];

	/* REPORT before START. */
	assert_int_equal(log_report(f, base, 1 << 20, 4096, map), -EINVAL);
	assert_int_equal(log_start(f, r, 0, &ps), -EINVAL);
	for (int k = 0; k < 300; k++)
		many[k] = (struct vfio_device_feature_dma_logging_range){base + k * 8192ull, 4096};
	assert_int_equal(log_start(f, many, 257, &ps), -E2BIG);
	assert_int_equal(log_start(f, NULL, 1, &ps), -EFAULT);
	r[0].iova = base + 100;
	assert_int_equal(log_start(f, r, 2, &ps), -EINVAL); /* unaligned iova */
	r[0].iova = base;
	r[0].length = 100;
	assert_int_equal(log_start(f, r, 2, &ps), -EINVAL); /* unaligned length */
	r[0].length = 0;
	assert_int_equal(log_start(f, r, 2, &ps), -EINVAL); /* empty */
	r[0].length = 3 << 20;
	assert_int_equal(log_start(f, r, 2, &ps), -EINVAL); /* overlap */
	r[0].length = 1 << 20;
	r[1].iova = 0xfffffffffff00000ull;
	r[1].length = 2 << 20;
	assert_int_equal(log_start(f, r, 2, &ps), -EOVERFLOW);
	r[1].iova = base + (2 << 20);
	r[1].length = 1 << 20;
	ps = 0;
	assert_int_equal(log_start(f, r, 2, &ps), -EINVAL);
	ps = 12288;
	assert_int_equal(log_start(f, r, 2, &ps), -EINVAL);
	/* 256 ranges are accepted (combined down to the device's 4). */
	ps = 4096;
	assert_int_equal(log_start(f, many, 256, &ps), 0);
	/* Only one START at a time. */
	assert_int_equal(log_start(f, r, 2, &ps), -EINVAL);
	assert_int_equal(log_report(f, base, 1 << 20, 2048, map), -EINVAL);
	assert_int_equal(log_report(f, base, 1 << 20, 12288, map), -EINVAL);
	assert_int_equal(log_report(f, 0xfffffffffffff000ull, 0x2000, 4096, map), -EOVERFLOW);
	assert_int_equal(log_report(f, base, 1 << 20, 4096, NULL), -EFAULT);
	assert_int_equal(log_report(f, base, 0, 4096, map), -EINVAL);
	/* Wrong ops and sizes on the feature itself. */
	struct {
		struct vfio_device_feature hdr;
		struct vfio_device_feature_dma_logging_report rep;
	} a = {.hdr = {.argsz = sizeof(a.hdr) + 8,
		       .flags = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT}};
	assert_int_equal(vfio_device_feature(f->vfio, &a.hdr), -EINVAL);
	a.hdr.argsz = sizeof(a);
	a.hdr.flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT;
	assert_int_equal(vfio_device_feature(f->vfio, &a.hdr), -EINVAL);
	a.hdr.flags = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_LOGGING_START;
	assert_int_equal(vfio_device_feature(f->vfio, &a.hdr), -EINVAL);
	a.hdr.flags = VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_SET |
		      VFIO_DEVICE_FEATURE_DMA_LOGGING_START;
	assert_int_equal(vfio_device_feature(f->vfio, &a.hdr), 0);
	assert_int_equal(log_stop(f), 0);
	assert_int_equal(log_stop(f), 0);
	assert_int_equal(log_report(f, base, 1 << 20, 4096, map), -EINVAL);
	free(many);
}

/* The log records the IOVA the device emits: nested, that is the stage-1 input address. */
static void test_logs_untranslated_iova(void **state)
{
	struct fx *f = *state;
	struct vfio_device_feature_dma_logging_range r[2] = {
	    {FX_DATA_GPA, 1 << 20},		/* the GPA (IPA) of the buffer */
	    {fx_iova(f, FX_DATA_GPA), 1 << 20}, /* its IOVA */
	};
	uint64_t ps = 4096, map[4] = {0};
	uint32_t i;

	assert_int_equal(log_start(f, r, 2, &ps), 0);
	i = fx_put(
	    f,
	    (struct sdma_desc){.opcode = SDMA_OP_FILL, .dst = fx_iova(f, FX_DATA_GPA), .size = 4},
	    true);
	assert_true(fx_wait(f, i, 2000));
	assert_int_equal(log_report(f, FX_DATA_GPA, 1 << 20, 4096, map), 0);
	assert_int_equal(map[0] | map[1] | map[2] | map[3], 0);
	assert_int_equal(log_report(f, fx_iova(f, FX_DATA_GPA), 1 << 20, 4096, map), 0);
	assert_int_equal(map[0], 1);
	assert_int_equal(log_stop(f), 0);
}

/* The device option that turns DMA logging off. */
static void test_logging_off(void **state)
{
	struct fx *f = *state;
	struct fx g;
	struct fx_opts o = {
	    .mode = FX_STAGE2, .name = "sdma-nolog", .sid = 0x30, .dev = {.no_dma_log = true}};
	struct vfio_device_feature_dma_logging_range r = {0, 4096};
	uint64_t ps = 4096, map[1];
	struct vfio_device_feature probe = {.argsz = sizeof(probe),
					    .flags = VFIO_DEVICE_FEATURE_PROBE |
						     VFIO_DEVICE_FEATURE_SET |
						     VFIO_DEVICE_FEATURE_DMA_LOGGING_START};

	fx_add_device(f, &g, &o);
	assert_false(fx_reg_read(&g, SDMA_REG_CAP) & (1ull << SDMA_CAP_DMA_LOG_SHIFT));
	assert_int_equal(vfio_device_feature(g.vfio, &probe), -ENOTTY);
	assert_int_equal(log_start(&g, &r, 1, &ps), -ENOTTY);
	assert_int_equal(log_stop(&g), -ENOTTY);
	assert_int_equal(log_report(&g, 0, 4096, 4096, map), -ENOTTY);
	assert_int_equal(vfio_device_feature(f->vfio, &probe), 0);
	fx_remove_device(&g);
}

/*
 * A vIOMMU's whole 48-bit aperture at 4 KiB pages (the tracker allocates only where the
 * device writes): one byte written is one 4 KiB bit, nothing reported anywhere else.
 */
static void test_whole_aperture(void **state)
{
	struct fx *f = *state;
	const uint64_t base = fx_iova(f, FX_DATA_GPA);
	struct vfio_device_feature_dma_logging_range r = {.iova = 0, .length = 1ull << 48};
	uint64_t ps = 4096, *map = bitmap_alloc(AREA / 4096);

	assert_int_equal(log_start(f, &r, 1, &ps), 0);
	assert_int_equal(ps, 4096);
	uint32_t i = fx_put(
	    f, (struct sdma_desc){.opcode = SDMA_OP_FILL, .dst = base + 0x3005, .size = 1}, true);
	assert_true(fx_wait(f, i, 2000));
	assert_int_equal(log_report(f, base, AREA, 4096, map), 0);
	assert_int_equal(bitmap_count(map, AREA / 4096), 1);
	assert_int_equal(bitmap_find_next_set(map, AREA / 4096, 0), 3);
	bitmap_zero(map, AREA / 4096);
	assert_int_equal(log_report(f, (1ull << 47), AREA, 4096, map), 0);
	assert_int_equal(bitmap_count(map, AREA / 4096), 0);
	assert_int_equal(log_stop(f), 0);
	free(map);
}

/*
 * Past its memory budget the tracker cannot record a write: the log breaks and every report
 * fails (never a report missing that page), until the next START.
 */
static void test_budget_breaks_log(void **state)
{
	(void)state;
	struct dma_log log;
	struct vfio_log_range r = {.iova = 0, .length = 1ull << 48};
	const uint64_t chunk_iova = (1ull << DMA_LOG_CHUNK_SHIFT) * 4096;
	const uint64_t budget = DMA_LOG_MAX_BITS >> DMA_LOG_CHUNK_SHIFT;
	uint64_t ps = 4096, map = 0;

	dma_log_init(&log);
	assert_int_equal(dma_log_start(&log, &r, 1, &ps), 0);
	assert_int_equal(ps, 4096);
	for (uint64_t k = 0; k < budget; k++)
		dma_log_mark(&log, k * chunk_iova + 4096, 8);
	assert_int_equal(dma_log_report(&log, 5 * chunk_iova, 64 * 4096, 4096, &map), 0);
	assert_int_equal(map, 2); /* the page at +4 KiB */
	dma_log_mark(&log, budget * chunk_iova, 8);
	assert_int_equal(dma_log_report(&log, 5 * chunk_iova, 64 * 4096, 4096, &map), -EIO);
	assert_int_equal(dma_log_stop(&log), 0);
	assert_int_equal(dma_log_start(&log, &r, 1, &ps), 0);
	dma_log_mark(&log, budget * chunk_iova, 8);
	map = 0;
	assert_int_equal(dma_log_report(&log, budget * chunk_iova, 64 * 4096, 4096, &map), 0);
	assert_int_equal(map, 1);
	assert_int_equal(dma_log_stop(&log), 0);
	dma_log_destroy(&log);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_exact_pages, setup_s2, teardown),
	    cmocka_unit_test_setup_teardown(test_exact_pages, setup_nested, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent_reports, setup_s2, teardown),
	    cmocka_unit_test_setup_teardown(test_page_sizes, setup_s2, teardown),
	    cmocka_unit_test_setup_teardown(test_range_limit, setup_nested, teardown),
	    cmocka_unit_test_setup_teardown(test_errors, setup_s2, teardown),
	    cmocka_unit_test_setup_teardown(test_logs_untranslated_iova, setup_nested, teardown),
	    cmocka_unit_test_setup_teardown(test_logging_off, setup_s2, teardown),
	    cmocka_unit_test_setup_teardown(test_whole_aperture, setup_nested, teardown),
	    cmocka_unit_test(test_budget_breaks_log),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
