// SPDX-License-Identifier: Apache-2.0
/*
 * Host SMMU model benchmarks. Each figure is the median of several runs (the machine is
 * shared and noisy); the individual runs follow on a '#' line.
 *
 *   ninja -C build && ./build/bench/host_iommu/bench_host_iommu
 *   meson test -C build --benchmark bench_host_iommu -v
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "host/iommu/iommufd_host.h"
#include "host/iommu/pgtable_build.h"

#define RUNS   7
#define RAM_PA 0x40000000ull

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void report(const char *name, const char *unit, double *v, int n)
{
	double s[RUNS];
	memcpy(s, v, sizeof(double) * (size_t)n);
	qsort(s, (size_t)n, sizeof(double), cmp_double);
	printf("BENCH %s %.3f %s\n", name, s[n / 2], unit);
	printf("#   %s runs:", name);
	for (int i = 0; i < n; i++)
		printf(" %.3f", v[i]);
	printf("\n");
	fflush(stdout);
}

static void die(const char *what)
{
	fprintf(stderr, "bench: %s failed\n", what);
	exit(1);
}

struct rig {
	struct hostmem *hm;
	struct smmu *smmu;
	struct pgt_mem mem;
	uint64_t strtab;
};

static void rig_init(struct rig *r, uint64_t ram)
{
	r->hm = hostmem_create();
	if (!r->hm || hostmem_add_ram(r->hm, RAM_PA, ram))
		die("hostmem");
	r->smmu = smmu_create(r->hm, NULL);
	r->mem = pgt_mem_hostmem(r->hm);
	if (!r->smmu || hostmem_pages_alloc(r->hm, 4, &r->strtab) ||
	    smmu_set_strtab(r->smmu, r->strtab, (uint32_t)F_VAL(STRTAB_CFG_LOG2SIZE, 8)))
		die("smmu");
	smmu_set_enable(r->smmu, true);
}

static void rig_ste(struct rig *r, uint32_t sid, const struct smmu_ste_desc *d)
{
	uint64_t ste[8];
	smmu_ste_build(ste, d);
	hostmem_write(r->hm, r->strtab + sid * 64ull, ste, 64);
	smmu_cmd_one(r->smmu, smmu_cmd_cfgi_ste(sid));
}

static void rig_fini(struct rig *r)
{
	smmu_destroy(r->smmu);
	hostmem_destroy(r->hm);
}

/* ---- IOTLB hit ---- */

static void bench_iotlb_hit(void)
{
	struct rig r;
	struct pgtable s2;
	struct smmu_dma_txn t = {.sid = 1};
	struct smmu_xlate x;
	double v[RUNS];
	const int n = 2000000;

	rig_init(&r, 64 << 20);
	if (pgtable_init(&s2, &r.mem, 2, 40, PGT_LEVEL_AUTO) ||
	    pgtable_map(&s2, 0, RAM_PA, 64 << 20, PGT_R | PGT_W | PGT_PAGES))
		die("map");
	rig_ste(&r, 1, &(struct smmu_ste_desc){.config = STE_CFG_S2, .s2 = &s2, .vmid = 1});
	for (int i = 0; i < 64; i++)
		smmu_translate(r.smmu, &t, (uint64_t)i << 12, false, &x);
	for (int run = 0; run < RUNS; run++) {
		double t0 = now_ns();
		for (int i = 0; i < n; i++)
			smmu_translate(r.smmu, &t, (uint64_t)(i & 63) << 12, false, &x);
		v[run] = (now_ns() - t0) / n;
	}
	if (x.status != SMMU_DMA_OK)
		die("translate");
	report("iotlb_hit_translate", "ns", v, RUNS);
	pgtable_fini(&s2);
	rig_fini(&r);
}

/* ---- invalidation: one TLBI_NH_VA alone, and per command in a batch of 32 ---- */

static void bench_tlbi(void)
{
	struct rig r;
	struct pgtable s2;
	struct smmu_cmd batch[32];
	struct smmu_dma_txn t = {.sid = 1};
	struct smmu_xlate x;
	double v1[RUNS], v32[RUNS];

	/* 4096 live IOTLB entries (a 16 MiB working set) that the TLBIs must look through */
	rig_init(&r, 16 << 20);
	if (pgtable_init(&s2, &r.mem, 2, 40, PGT_LEVEL_AUTO) ||
	    pgtable_map(&s2, 0, RAM_PA, 16 << 20, PGT_R | PGT_W | PGT_PAGES))
		die("map");
	rig_ste(&r, 1, &(struct smmu_ste_desc){.config = STE_CFG_S2, .s2 = &s2, .vmid = 1});
	for (int i = 0; i < 32; i++)
		batch[i] = smmu_cmd_tlbi_nh_va(1, 2, (uint64_t)i << 12, 0);
	for (int run = 0; run < RUNS; run++) {
		for (uint64_t a = 0; a < (16 << 20); a += 4096)
			smmu_translate(r.smmu, &t, a, false, &x);
		double t0 = now_ns();
		for (int i = 0; i < 32; i++)
			smmu_cmd_one(r.smmu, batch[i]);
		v1[run] = (now_ns() - t0) / 32 / 1e3;
		t0 = now_ns();
		smmu_cmd_exec(r.smmu, batch, 32, NULL);
		v32[run] = (now_ns() - t0) / 32 / 1e3;
	}
	report("tlbi_nh_va_single_4096_live", "us", v1, RUNS);
	report("tlbi_nh_va_batched32_per_cmd_4096_live", "us", v32, RUNS);
	pgtable_fini(&s2);
	rig_fini(&r);
}

/* ---- cold nested walk: 4-level stage 1, every table through a 4-level stage 2 ---- */

static void bench_nested_walk(void)
{
	struct rig r;
	struct pgtable s1, s2;
	struct pgt_buf gbuf;
	uint64_t cd[8], cd_ipa;
	struct smmu_dma_txn t = {.sid = 1};
	struct smmu_xlate x;
	double v[RUNS];
	const unsigned n = 2048;

	rig_init(&r, 64 << 20);
	if (pgtable_init(&s2, &r.mem, 2, 48, 0) ||
	    pgtable_map(&s2, 0, RAM_PA, 64 << 20, PGT_R | PGT_W | PGT_PAGES))
		die("s2");
	pgt_buf_init(&gbuf, hostmem_ptr(r.hm, RAM_PA + (32 << 20), 1), 32 << 20, 32 << 20);
	struct pgt_mem gmem = pgt_buf_mem(&gbuf);
	if (pgt_buf_alloc(&gbuf, 64, 4096, &cd_ipa) || pgtable_init(&s1, &gmem, 1, 48, 0))
		die("s1");
	/* one page per 2 MiB, spread over many tables: every walk reads 4+4x4+4 descriptors */
	for (unsigned i = 0; i < n; i++)
		if (pgtable_map(&s1, 0x7f0000000000ull + ((uint64_t)i << 21), (i % 4096) << 12,
				4096, PGT_R | PGT_W))
			die("s1 map");
	smmu_cd_build(cd, &s1, 1, 0);
	memcpy(pgt_buf_ptr(&gbuf, cd_ipa), cd, 64);
	rig_ste(&r, 1,
		&(struct smmu_ste_desc){
		    .config = STE_CFG_NESTED, .s2 = &s2, .vmid = 2, .cd_ptr = cd_ipa});
	for (int run = 0; run < RUNS; run++) {
		smmu_cmd_one(r.smmu, smmu_cmd_tlbi_nsnh_all());
		double t0 = now_ns();
		for (unsigned i = 0; i < n; i++)
			smmu_translate(r.smmu, &t, 0x7f0000000000ull + ((uint64_t)i << 21), false,
				       &x);
		v[run] = (now_ns() - t0) / n;
		if (x.status != SMMU_DMA_OK)
			die("nested translate");
	}
	report("nested_walk_cold_4level", "ns", v, RUNS);
	pgtable_fini(&s2);
	rig_fini(&r);
}

/* ---- DMA copy vs memcpy ---- */

static void bench_copy(size_t sz, const char *name)
{
	struct rig r;
	struct pgtable s2;
	struct smmu_dma_txn t = {.sid = 1};
	struct smmu_dma_result res;
	double v[RUNS], bw[RUNS];
	const uint64_t src = 0x100000, dst = 0x900000;
	size_t reps = (256u << 20) / sz;

	rig_init(&r, 64 << 20);
	if (pgtable_init(&s2, &r.mem, 2, 40, PGT_LEVEL_AUTO) ||
	    pgtable_map(&s2, 0, RAM_PA, 64 << 20, PGT_R | PGT_W | PGT_PAGES))
		die("map");
	rig_ste(&r, 1, &(struct smmu_ste_desc){.config = STE_CFG_S2, .s2 = &s2, .vmid = 1});
	uint8_t *hs = hostmem_ptr(r.hm, RAM_PA + src, sz),
		*hd = hostmem_ptr(r.hm, RAM_PA + dst, sz);
	memset(hs, 0x5a, sz);
	smmu_dma_copy(r.smmu, &t, dst, src, sz, &res); /* warm the IOTLB */
	/* Interleave short rounds of each so that machine noise hits both alike. */
	for (int run = 0; run < RUNS; run++) {
		double t_mem = 0, t_dma = 0;
		for (int round = 0; round < 64; round++) {
			double t0 = now_ns();
			for (size_t i = 0; i < reps / 64; i++) {
				memcpy(hd, hs, sz);
				__asm__ volatile("" ::"r"(hd) : "memory");
			}
			double t1 = now_ns();
			for (size_t i = 0; i < reps / 64; i++)
				smmu_dma_copy(r.smmu, &t, dst, src, sz, &res);
			t_dma += now_ns() - t1;
			t_mem += t1 - t0;
		}
		if (res.status != SMMU_DMA_OK)
			die("copy");
		v[run] = t_mem / t_dma;
		bw[run] = (double)sz * (double)(reps / 64 * 64) / t_dma; /* bytes/ns = GB/s */
	}
	char n1[64], n2[64];
	snprintf(n1, sizeof(n1), "dma_copy_%s_vs_memcpy", name);
	snprintf(n2, sizeof(n2), "dma_copy_%s_throughput", name);
	report(n1, "x", v, RUNS);
	report(n2, "GB/s", bw, RUNS);
	pgtable_fini(&s2);
	rig_fini(&r);
}

static void bench_copy_4k(void)
{
	bench_copy(4096, "4k");
}

static void bench_copy_64k(void)
{
	bench_copy(65536, "64k");
}

/* ---- stage-2 dirty harvest of 1 GiB through iommufd ---- */

static void bench_harvest_iommufd(void)
{
	struct hostmem *hm = hostmem_create();
	struct smmu *smmu = smmu_create(hm, NULL);
	struct iommufd_host *host = iommufd_host_create(smmu);
	struct iommufd_ctx *ctx;
	uint32_t ioas, dev, hwpt;
	int memfd = memfd_create("bench", MFD_CLOEXEC);
	const uint64_t len = 1ull << 30;
	uint64_t *map = calloc(len / 4096 / 64, 8);
	double v[RUNS];

	if (!host || ftruncate(memfd, (off_t)len) || iommufd_open_host(host, &ctx) ||
	    iommufd_ioas_alloc(ctx, &ioas) || iommufd_device_bind(ctx, 1, &dev))
		die("iommufd");
	uint64_t iova = 0;
	if (iommufd_ioas_map_file(ctx, ioas, memfd, 0, len, &iova,
				  IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
				      IOMMU_IOAS_MAP_WRITEABLE))
		die("map");
	/* DIRTY_TRACKING HWPTs map 4K pages (the 2M figure comes from the walker alone). */
	struct iommu_hwpt_alloc ha = {.size = sizeof(ha),
				      .dev_id = dev,
				      .pt_id = ioas,
				      .flags = IOMMU_HWPT_ALLOC_DIRTY_TRACKING};
	if (iommufd_hwpt_alloc(ctx, &ha))
		die("hwpt");
	hwpt = ha.out_hwpt_id;
	uint32_t pt = hwpt;
	if (iommufd_device_attach(ctx, dev, &pt))
		die("attach");
	struct smmu_dma_txn t = {.sid = 1};
	struct smmu_dma_result res;
	for (int run = 0; run < RUNS; run++) {
		iommufd_hwpt_set_dirty_tracking(ctx, hwpt, 1);
		/* dirty 1 page in 64 */
		for (uint64_t a = 0; a < len; a += 64 * 4096)
			smmu_dma_write(smmu, &t, a, &a, 8, &res);
		struct iommu_hwpt_get_dirty_bitmap c = {.size = sizeof(c),
							.hwpt_id = hwpt,
							.length = len,
							.page_size = 4096,
							.data = (uintptr_t)map};
		double t0 = now_ns();
		int rc = iommufd_hwpt_get_dirty_bitmap(ctx, &c);
		v[run] = (now_ns() - t0) / 1e6;
		if (rc)
			die("harvest");
	}
	report("harvest_s2_iommufd_4k_per_gib", "ms", v, RUNS);
	iommufd_close(ctx);
	iommufd_host_destroy(host);
	smmu_destroy(smmu);
	hostmem_destroy(hm);
	close(memfd);
	free(map);
}

/* What HTTU does on a write: the descriptor becomes dirty and its table page hinted. */
static void dirty_one(struct hostmem *hm, struct pgtable *pt, uint64_t iova)
{
	unsigned level;
	uint64_t *p = pgtable_leaf(pt, iova, &level);
	*p |= PTE_BIT_S2AP_W;
	uint64_t *parent = pgtable_desc(pt, iova, level - 1);
	if (!parent)
		die("leaf at the start level");
	hostmem_dirty_hint_set(hm, *parent & PTE_OA_MASK);
}

/*
 * The walker alone on 1 GiB of 4K pages or 2M blocks (no iommufd, no flush): 1 page in
 * 'stride' dirty (every leaf table has some), or 'sparse': 64 dirty pages in one table.
 */
static void bench_harvest_pgtable(unsigned prot_extra, const char *name, bool sparse)
{
	struct hostmem *hm = hostmem_create();
	struct pgt_mem mem = pgt_mem_hostmem(hm);
	struct pgtable pt;
	/* 2 MiB-aligned but not 1 GiB-aligned: 2 MiB blocks, never one 1 GiB block */
	const uint64_t len = 1ull << 30, base = (1ull << 32) + (2ull << 20);
	double v[RUNS];

	if (pgtable_init(&pt, &mem, 2, 40, PGT_LEVEL_AUTO) ||
	    pgtable_map(&pt, base, base, len, PGT_R | PGT_W | PGT_DBM | prot_extra))
		die("pgtable");
	pgtable_harvest(&pt, base, len, 0, NULL, NULL); /* consume the allocation hints */
	for (int run = 0; run < RUNS; run++) {
		if (sparse)
			for (uint64_t a = 0; a < 64; a++)
				dirty_one(hm, &pt, base + (300ull << 20) + a * 4096);
		else
			for (uint64_t a = 0; a < len; a += 64 * 4096)
				dirty_one(hm, &pt, base + a);
		double t0 = now_ns();
		int64_t n = pgtable_harvest(&pt, base, len, 0, NULL, NULL);
		v[run] = (now_ns() - t0) / 1e3;
		if (n != (sparse ? 64 : (prot_extra & PGT_PAGES) ? 4096 : 512))
			die("harvest count");
	}
	char n[64];
	snprintf(n, sizeof(n), "harvest_s2_walk_%s_per_gib", name);
	report(n, "us", v, RUNS);
	pgtable_fini(&pt);
	hostmem_destroy(hm);
}

static void bench_harvest_walk_4k(void)
{
	bench_harvest_pgtable(PGT_PAGES, "4k_all_tables_dirty", false);
}

static void bench_harvest_walk_4k_sparse(void)
{
	bench_harvest_pgtable(PGT_PAGES, "4k_one_table_dirty", true);
}

static void bench_harvest_walk_2m(void)
{
	bench_harvest_pgtable(0, "2m_blocks", false);
}

int main(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : "";
	static const struct {
		const char *name;
		void (*fn)(void);
	} benches[] = {
	    {"iotlb_hit", bench_iotlb_hit},
	    {"nested_walk", bench_nested_walk},
	    {"tlbi", bench_tlbi},
	    {"copy_4k", bench_copy_4k},
	    {"copy_64k", bench_copy_64k},
	    {"harvest_iommufd", bench_harvest_iommufd},
	    {"harvest_walk_4k", bench_harvest_walk_4k},
	    {"harvest_walk_4k_sparse", bench_harvest_walk_4k_sparse},
	    {"harvest_walk_2m", bench_harvest_walk_2m},
	};

	printf("# host SMMU model benchmarks; reproduce: ninja -C build && "
	       "./build/bench/host_iommu/bench_host_iommu [name-filter]\n");
	for (size_t i = 0; i < sizeof(benches) / sizeof(benches[0]); i++)
		if (strstr(benches[i].name, only))
			benches[i].fn();
	return 0;
}
