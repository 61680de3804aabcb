// SPDX-License-Identifier: Apache-2.0
/*
 * Dirty tracking under concurrency, through the whole stack (iommufd get_dirty_bitmap on a
 * stage-2 HWPT, SMMU HTTU, IOTLB): several threads DMA-write random pages while another
 * harvests continuously. A write that starts after harvest k returned and ends when m
 * harvests have returned must be reported by one of harvests k+1 .. m+2 (m+1 may have
 * been in progress, past that page, when the write landed; m+2 started after it ended).
 * A final harvest after the writers stop closes the window.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/bitmap.h"
#include "host/iommu/iommufd_host.h"

#define PAGES	  4096u
#define RAM	  ((uint64_t)PAGES * 4096)
#define WRITERS	  3
#define MAX_REC	  200000
#define MAX_HARV  20000
#define RUN_NS	  300000000ll
#define MAP_WORDS (PAGES / 64)

struct rec {
	uint32_t page, k_start, k_end;
};

struct race {
	struct smmu *smmu;
	struct iommufd_ctx *ctx;
	uint32_t hwpt;
	uint64_t (*maps)[MAP_WORDS]; /* maps[j]: harvest j (1-based) */
	uint32_t done;		     /* harvests completed */
	int stop;
	struct rec *recs[WRITERS];
	unsigned nrec[WRITERS];
};

struct writer_arg {
	struct race *r;
	unsigned idx;
};

static int harvest_into(struct race *r, uint32_t j)
{
	struct iommu_hwpt_get_dirty_bitmap c = {.size = sizeof(c),
						.hwpt_id = r->hwpt,
						.length = RAM,
						.page_size = 4096,
						.data = (uintptr_t)r->maps[j]};
	return iommufd_hwpt_get_dirty_bitmap(r->ctx, &c);
}

static void *harvester(void *arg)
{
	struct race *r = arg;
	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		uint32_t j = r->done + 1;
		if (j >= MAX_HARV - 1)
			break;
		if (harvest_into(r, j))
			abort();
		__atomic_store_n(&r->done, j, __ATOMIC_RELEASE);
	}
	return NULL;
}

static void *writer(void *arg)
{
	struct writer_arg *a = arg;
	struct race *r = a->r;
	struct smmu_dma_txn t = {.sid = 7};
	unsigned seed = 12345u * (a->idx + 1);

	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE) && r->nrec[a->idx] < MAX_REC) {
		struct rec *rc = &r->recs[a->idx][r->nrec[a->idx]++];
		struct smmu_dma_result res;
		uint64_t v = seed;
		seed = seed * 1103515245u + 12345u;
		rc->page = (seed >> 8) % PAGES;
		rc->k_start = __atomic_load_n(&r->done, __ATOMIC_ACQUIRE);
		smmu_dma_write(r->smmu, &t, (uint64_t)rc->page * 4096 + (a->idx * 8), &v, 8, &res);
		rc->k_end = __atomic_load_n(&r->done, __ATOMIC_ACQUIRE);
		if (res.status != SMMU_DMA_OK)
			abort();
	}
	return NULL;
}

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static void check_records(struct race *r, uint32_t last)
{
	unsigned long total = 0;

	for (unsigned w = 0; w < WRITERS; w++) {
		for (unsigned i = 0; i < r->nrec[w]; i++) {
			const struct rec *rc = &r->recs[w][i];
			bool seen = false;
			for (uint32_t j = rc->k_start + 1; j <= rc->k_end + 2 && j <= last && !seen;
			     j++)
				seen = bitmap_test(r->maps[j], rc->page);
			if (!seen)
				fail_msg("write %u/%u to page %u after harvest %u lost (ended %u)",
					 w, i, rc->page, rc->k_start, rc->k_end);
		}
		total += r->nrec[w];
	}
	print_message("%lu writes, %u harvests, none lost\n", total, last);
	assert_true(last > 3);
}

static void test_concurrent_harvest(void **state)
{
	struct hostmem *hm = hostmem_create();
	struct smmu *smmu = smmu_create(hm, NULL);
	struct iommufd_host *host = iommufd_host_create(smmu);
	struct race *r = calloc(1, sizeof(*r));
	uint32_t ioas, dev;
	int memfd = memfd_create("ram", MFD_CLOEXEC);

	assert_int_equal(ftruncate(memfd, (off_t)RAM), 0);
	r->smmu = smmu;
	r->maps = calloc(MAX_HARV, sizeof(*r->maps));
	assert_int_equal(iommufd_open_host(host, &r->ctx), 0);
	assert_int_equal(iommufd_ioas_alloc(r->ctx, &ioas), 0);
	uint64_t iova = 0;
	assert_int_equal(iommufd_ioas_map_file(r->ctx, ioas, memfd, 0, RAM, &iova,
					       IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
						   IOMMU_IOAS_MAP_WRITEABLE),
			 0);
	assert_int_equal(iommufd_device_bind(r->ctx, 7, &dev), 0);
	struct iommu_hwpt_alloc ha = {.size = sizeof(ha),
				      .dev_id = dev,
				      .pt_id = ioas,
				      .flags = IOMMU_HWPT_ALLOC_DIRTY_TRACKING};
	assert_int_equal(iommufd_hwpt_alloc(r->ctx, &ha), 0);
	r->hwpt = ha.out_hwpt_id;
	uint32_t pt = r->hwpt;
	assert_int_equal(iommufd_device_attach(r->ctx, dev, &pt), 0);
	assert_int_equal(iommufd_hwpt_set_dirty_tracking(r->ctx, r->hwpt, 1), 0);

	pthread_t hth, wth[WRITERS];
	struct writer_arg wa[WRITERS];
	for (unsigned w = 0; w < WRITERS; w++) {
		r->recs[w] = calloc(MAX_REC, sizeof(struct rec));
		wa[w] = (struct writer_arg){r, w};
		pthread_create(&wth[w], NULL, writer, &wa[w]);
	}
	pthread_create(&hth, NULL, harvester, r);
	long long t0 = now_ns();
	while (now_ns() - t0 < RUN_NS)
		usleep(10000);
	__atomic_store_n(&r->stop, 1, __ATOMIC_RELEASE);
	for (unsigned w = 0; w < WRITERS; w++)
		pthread_join(wth[w], NULL);
	pthread_join(hth, NULL);
	uint32_t last = r->done + 1; /* the final harvest, all writers stopped */
	assert_int_equal(harvest_into(r, last), 0);
	check_records(r, last);

	for (unsigned w = 0; w < WRITERS; w++)
		free(r->recs[w]);
	free(r->maps);
	iommufd_close(r->ctx);
	free(r);
	iommufd_host_destroy(host);
	smmu_destroy(smmu);
	hostmem_destroy(hm);
	close(memfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_concurrent_harvest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
