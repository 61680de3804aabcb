// SPDX-License-Identifier: Apache-2.0
// The device workloads (docs/guest.md): dma, remap, sva and hostile, run by the boot vCPU
// through the vSMMUv3 and sdma drivers. All their state (tables, queues, buffers, expected
// results) is in guest RAM and every result is checked by the CPU after the device
// reported completion, so a migration at any instant is judged by the same checks.
#include "iommu_workloads.h"
#include "console.h"
#include "lib.h"
#include "sdma.h"
#include "smmu.h"
#include "user.h"

/* ---- memory: three pools of pages the device reads and writes -------------------------- */

#define POOL_PAGES     256	/* 1 MiB each */
#define DST_PAGES      4096	/* dma with secs=: 16 MiB of destination windows, in rotation */
#define SRC_IOVA       src_iova /* bypass=1: the pools' own addresses */
#define DST_IOVA       dst_iova
#define SLOT_SIZE      0x10000ull /* a job's destination window */
#define SLOTS	       (POOL_PAGES * PAGE_SIZE / SLOT_SIZE)
#define DST_SLOTS      (DST_PAGES * PAGE_SIZE / SLOT_SIZE)
#define SVA_IOVA(ssid) (0x60000000ull + (uint64_t)(ssid)*0x10000000ull)
#define SVA_DST_OFF    0x1000000ull /* destination pool within an SSID's window */
#define SVA_NOWHERE    0x8000000ull /* inside the window, never mapped: RESUME abort */
#define SVA_JOB_MAX    0x4000ull
#define CANARY	       0x5Au
#define DEV_SID	       VMIG_SDMA_SID
#define WAIT_TICKS     (5 * TIMER_HZ)

static uint8_t src_pool[POOL_PAGES][4096] __attribute__((aligned(4096)));
static uint8_t dst_pool[DST_PAGES][4096] __attribute__((aligned(4096)));
static uint8_t alt_pool[POOL_PAGES][4096] __attribute__((aligned(4096)));
static uint8_t dst_alt[POOL_PAGES]; /* remap: which backing the dst IOVA page has (0: dst) */

static struct smmu_as as0; /* SSID 0: untagged traffic, no stall */
static uint64_t src_iova = 0x40000000ull, dst_iova = 0x50000000ull;

struct smmu_as *dev_as0(void)
{
	return &as0;
}
static bool drivers_tried, drivers_ok;

struct dev_result dev_result;
static uint64_t rng;

static uint64_t rand64(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint64_t rand_range(uint64_t lo, uint64_t hi) /* [lo, hi] */
{
	return lo + rand64() % (hi - lo + 1);
}

static uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

/* ---- CRC32C, computed by the CPU independently of the device --------------------------- */

static uint32_t crc_table[256];

static void crc32c_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
		crc_table[i] = c;
	}
}

/*
 * The usual chainable form (inverted in and out, so crc32c(crc32c(0, a), b) is the CRC of
 * ab): the device is seeded with pattern[31:0] and continues from it the same way.
 */
static uint32_t crc32c(uint32_t crc, const uint8_t *p, uint64_t n)
{
	crc = ~crc;
	while (n--)
		crc = crc_table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
	return ~crc;
}

/* ---- driver bring-up, once per boot ------------------------------------------------------ */

static void fill_sources(void)
{
	rng = cfg.seed * 0x9E3779B97F4A7C15ull | 1;
	for (uint64_t i = 0; i < sizeof(src_pool) / 8; i++)
		((uint64_t *)src_pool)[i] = rand64();
	memset(alt_pool, CANARY, sizeof(alt_pool));
}

static bool drivers_start(void)
{
	if (!sdma_start(false, 0)) {
		sdma_dump("start failed");
		return false;
	}
	return true;
}

/* The device's STE in bypass (the vSMMU only for its MSIs and events): IOVA = GPA. */
static bool drivers_bypass(void)
{
	src_iova = (uint64_t)src_pool;
	dst_iova = (uint64_t)dst_pool;
	sdma_use_gpas();
	smmu_attach_bypass(DEV_SID);
	smmu_sync();
	return drivers_start();
}

static bool drivers_bring_up(void)
{
	smmu.verbose = true;
	smmu.skip_tlbi = !cfg.tlbi;
	if (!smmu_probe() || !sdma_probe())
		return false;
	if (!smmu_init(cfg.strtab_2lvl ? SMMU_STRTAB_2LVL : SMMU_STRTAB_LINEAR))
		return false;
	crc32c_init();
	fill_sources();
	smmu_as_init(&as0, DEV_SID, 0, 1, false);
	if (cfg.bypass)
		return drivers_bypass();
	if (!sdma_map_driver(&as0) ||
	    !smmu_map(&as0, SRC_IOVA, (uint64_t)src_pool, sizeof(src_pool), SMMU_PROT_READ) ||
	    !smmu_map(&as0, DST_IOVA, (uint64_t)dst_pool, sizeof(dst_pool),
		      SMMU_PROT_READ | SMMU_PROT_WRITE | SMMU_PROT_TRACK))
		kernel_panic("dma: page-table pool too small", 0, 0);
	smmu_sync();
	smmu_attach(DEV_SID);
	return drivers_start();
}

bool devices_up(void)
{
	if (drivers_ok)
		vm_mark(VMIG_MARK_DEVICES);
	if (!drivers_tried) {
		drivers_tried = true;
		drivers_ok = drivers_bring_up();
		if (drivers_ok) {
			struct line l = {.len = 0};

			line_str(&l, "SMMU");
			line_kx(&l, "idr0", smmu.idr[0]);
			line_kx(&l, "idr1", smmu.idr[1]);
			line_str(&l, smmu.st_fmt == SMMU_STRTAB_2LVL ? " strtab=2level"
								     : " strtab=linear");
			line_kv(&l, "ril", smmu.ril);
			line_kv(&l, "httu_dirty", smmu.httu_dirty);
			line_kv(&l, "stall", smmu.stall_ok);
			line_kx(&l, "sdma_cap", sdma.cap);
			line_flush(&l);
			vm_mark(VMIG_MARK_DEVICES);
		}
	}
	return drivers_ok;
}

/* ---- jobs: descriptors and their independent checks ------------------------------------ */

enum job_op { JOB_COPY, JOB_FILL, JOB_CRC, JOB_OPS };

struct job {
	enum job_op op;
	uint64_t src_off, dst_iova, size, pattern;
	uint8_t *dst_va; /* where the CPU expects the bytes (dma/sva: fixed backing) */
	uint32_t index;	 /* ring index */
	bool expect_fault;
};

static struct job jobs[SDMA_MAX_BATCH];
static uint32_t max_lines;

static void job_random(struct job *j, uint64_t slot_iova, uint8_t *slot_va, uint64_t max_size)
{
	uint64_t size = rand_range(1, max_size), dst_off;

	/* Mostly sizes with odd ends; every fourth job page-sized and aligned. */
	if ((rand64() & 3) == 0)
		size = ALIGN_UP(size, PAGE_SIZE);
	size = MIN(size, max_size);
	dst_off = rand_range(0, SLOT_SIZE - size);
	*j = (struct job){
	    .op = (enum job_op)(rand64() % JOB_OPS),
	    .src_off = rand_range(0, sizeof(src_pool) - size),
	    .dst_iova = slot_iova + dst_off,
	    .dst_va = slot_va ? slot_va + dst_off : 0,
	    .size = size,
	    .pattern = rand64(),
	};
}

static void job_submit(struct job *j, uint64_t src_base, bool bof, bool irq)
{
	static const uint8_t ops[JOB_OPS] = {SDMA_OP_MEMMOVE, SDMA_OP_FILL, SDMA_OP_CRC32C};
	struct sdma_desc d = {
	    .opcode = ops[j->op],
	    .src = src_base + j->src_off,
	    .dst = j->dst_iova,
	    .size = j->size,
	    .pattern = j->op == JOB_CRC ? (uint32_t)j->pattern : j->pattern,
	};

	if (bof)
		d.flags |= SDMA_FLAG_BOF;
	if (irq)
		d.flags |= SDMA_FLAG_RCI;
	j->index = sdma_queue(&d);
}

static void report_bad_job(const struct job *j, const char *why, uint64_t a, uint64_t b)
{
	struct line l = {.len = 0};

	if (max_lines++ >= 8)
		return;
	line_str(&l, "DMAERR ");
	line_str(&l, why);
	line_kv(&l, "op", j->op);
	line_kx(&l, "dst", j->dst_iova);
	line_kv(&l, "size", j->size);
	line_kx(&l, "a", a);
	line_kx(&l, "b", b);
	line_flush(&l);
}

/* Expected byte k of a fill: the 8-byte pattern repeated from the destination's start. */
static uint8_t fill_byte(uint64_t pattern, uint64_t k)
{
	return (uint8_t)(pattern >> (8 * (k & 7)));
}

/*
 * Where the CPU finds destination bytes: NULL means at the job's dst_va (fixed backing);
 * remap passes a resolver, since each of its IOVA pages may be backed by either pool.
 */
typedef uint8_t *(*dst_resolve_fn)(uint64_t iova);

static bool job_data_ok(const struct job *j, dst_resolve_fn resolve)
{
	const uint8_t *src = (const uint8_t *)src_pool + j->src_off;

	for (uint64_t k = 0; k < j->size;) {
		uint64_t iova = j->dst_iova + k;
		uint64_t n = MIN(j->size - k, PAGE_SIZE - (iova & (PAGE_SIZE - 1)));
		const uint8_t *d = resolve ? resolve(iova) : j->dst_va + k;

		if (j->op == JOB_COPY && memcmp(d, src + k, n))
			return false;
		for (uint64_t i = 0; j->op == JOB_FILL && i < n; i++)
			if (d[i] != fill_byte(j->pattern, k + i))
				return false;
		k += n;
	}
	return true;
}

/* One job's record against the CPU's own computation; true when it matches. */
static bool job_check(const struct job *j, dst_resolve_fn resolve)
{
	volatile struct sdma_compl *c = sdma_compl_of(j->index);

	if (j->expect_fault) {
		if (c->status == SDMA_STATUS_SUCCESS)
			report_bad_job(j, "unexpected_success", c->status, 0);
		return c->status != SDMA_STATUS_SUCCESS;
	}
	if (c->status != SDMA_STATUS_SUCCESS || c->bytes_completed != j->size) {
		report_bad_job(j, "status", c->status, c->fault_addr);
		return false;
	}
	if (j->op == JOB_CRC) {
		uint32_t want = crc32c((uint32_t)j->pattern, src_pool[0] + j->src_off, j->size);

		if (c->result != want) {
			report_bad_job(j, "crc", c->result, want);
			return false;
		}
		return true;
	}
	if (!job_data_ok(j, resolve)) {
		report_bad_job(j, "data", 0, 0);
		return false;
	}
	return true;
}

/* Waits for the batch's last descriptor (the device completes in order). */
static bool batch_wait(uint32_t n)
{
	if (!n)
		return true;
	if (sdma_wait(jobs[n - 1].index, WAIT_TICKS))
		return true;
	sdma_dump("timeout");
	return false;
}

static uint64_t step_end;      /* with secs=: the tick at which no new batch starts */
static uint64_t irqs_at_begin; /* completion MSIs before the step */

static uint64_t sdma_irqs(void)
{
	return cpus[0].irq_count[VMIG_VEC_SDMA]; /* the MSI targets the boot vCPU */
}

static void result_begin(void)
{
	step_end = now_ticks() + cfg.secs * TIMER_HZ;
	irqs_at_begin = sdma_irqs();
	dev_result = (struct dev_result){0};
	max_lines = 0;
	rng = (cfg.seed + 0x1234567) * 0x2545F4914F6CDD1Dull | 1;
}

/*
 * Size of the next batch: the rest of jobs=, at most max; with an explicit secs=N instead
 * batches of max until N seconds passed (a device workload a migration can land in).
 */
static uint32_t next_batch(uint64_t *left, uint64_t max)
{
	uint64_t n;

	if (cfg.secs_set && cfg.secs)
		return now_ticks() < step_end ? (uint32_t)max : 0;
	n = MIN(*left, max);
	*left -= n;
	return (uint32_t)n;
}

static void count_checked(const struct job *j, bool ok)
{
	dev_result.irqs = sdma_irqs() - irqs_at_begin;
	dev_result.jobs++;
	dev_result.bytes += j->size;
	if (!ok)
		dev_result.mismatches++;
}

static uint64_t job_size_max(void)
{
	return MIN(MIN(cfg.job_size, SLOT_SIZE), 1ull << sdma.xfer_log2_max);
}

/* ---- dma: copy, fill and CRC32C streams -------------------------------------------------- */

/*
 * Kept results (dma with secs=): every destination page the CPU checked keeps a digest of
 * what it held then, and is checked against it again before the window is reused and at
 * the end of the step. A DMA write that a migration failed to carry (a dirty page it did
 * not see) leaves the destination host's page as it was before the device wrote it: the
 * guest then counts it in lost=.
 */
static uint64_t kept_digest[DST_PAGES];
static uint8_t kept_valid[DST_PAGES];

static uint64_t page_digest(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;
	uint64_t h = 0x9E3779B97F4A7C15ull;

	for (unsigned i = 0; i < PAGE_SIZE / 8; i++)
		h = (h ^ w[i]) * 0x100000001B3ull + i;
	return h;
}

static void kept_check_slot(uint32_t slot)
{
	for (uint32_t p = slot * (SLOT_SIZE / PAGE_SIZE); p < (slot + 1) * (SLOT_SIZE / PAGE_SIZE);
	     p++) {
		if (kept_valid[p] && page_digest(dst_pool[p]) != kept_digest[p]) {
			struct job page = {.dst_iova = DST_IOVA + p * PAGE_SIZE, .size = PAGE_SIZE};

			dev_result.lost++;
			report_bad_job(&page, "lost_page", kept_digest[p],
				       page_digest(dst_pool[p]));
		}
		kept_valid[p] = 0;
	}
}

static void kept_record_slot(uint32_t slot)
{
	for (uint32_t p = slot * (SLOT_SIZE / PAGE_SIZE); p < (slot + 1) * (SLOT_SIZE / PAGE_SIZE);
	     p++) {
		kept_digest[p] = page_digest(dst_pool[p]);
		kept_valid[p] = 1;
	}
}

/*
 * httucheck=1: at the start of each round through the windows every window's PTEs go back
 * to not accessed, writable-clean (the CPU's last write to those table pages for a while);
 * the device's writes during the round (the guard FILL covers every page) must make the
 * SMMU set both bits. They are checked at the next round's start and at the end: a
 * migration that did not carry the SMMU's own update of a descriptor shows as a clean PTE
 * on the destination (pte_lost=).
 */
static uint8_t httu_written[DST_SLOTS];

static void httu_check_slot(uint32_t slot)
{
	for (uint64_t p = 0; httu_written[slot] && p < SLOT_SIZE / PAGE_SIZE; p++) {
		uint64_t pte = smmu_pte(&as0, DST_IOVA + slot * SLOT_SIZE + p * PAGE_SIZE);
		if (!smmu_pte_young(pte) || !smmu_pte_dirty(pte)) {
			struct job page = {.dst_iova = DST_IOVA + slot * SLOT_SIZE + p * PAGE_SIZE};

			dev_result.pte_lost++;
			report_bad_job(&page, "pte_not_updated", pte, 0);
		}
	}
	httu_written[slot] = 0;
}

/*
 * httupace=MS: batches of 4 windows MS ms apart, so the SMMU updates each table page (32
 * windows) over 8 batches, long after the round's clean: a migration sends that page
 * between its updates, and only device dirty tracking (stage 2 sees the SMMU's write, the
 * device log marks table pages) carries the later ones. Without it the destination's check
 * finds them clean: the negative control of httucheck.
 */
#define HTTU_PACE_BATCH 4

static void httu_pace(void)
{
	for (uint64_t end = now_ticks() + cfg.httu_pace_ms * TIMER_HZ / 1000 + 1;
	     now_ticks() < end;)
		__asm__ volatile("pause" ::: "memory");
}

static void httu_new_round(void)
{
	for (uint32_t s = 0; s < DST_SLOTS; s++)
		httu_check_slot(s);
	smmu_pte_clean(&as0, DST_IOVA, DST_SLOTS * SLOT_SIZE);
	smmu_sync(); /* the cleaned PTEs reach the SMMU before the device uses them again */
}

static void kept_check_all(void)
{
	for (uint32_t s = 0; s < DST_SLOTS; s++) {
		kept_check_slot(s);
		if (cfg.httu_check)
			httu_check_slot(s);
	}
}

static void guard_fill(uint8_t *slot)
{
	memset(slot, CANARY, SLOT_SIZE);
}

/*
 * With kept results the device itself writes the guard (a FILL of the whole window just
 * before the job, pattern guards[i]): the CPU then never writes a destination page, so
 * every byte there is a DMA write that a migration must carry.
 */
static struct job guards[SDMA_MAX_BATCH];

static void guard_submit(struct job *g, uint64_t slot_iova)
{
	*g = (struct job){
	    .op = JOB_FILL, .dst_iova = slot_iova, .size = SLOT_SIZE, .pattern = rand64()};
	job_submit(g, SRC_IOVA, false, false);
}

static uint8_t guard_byte(const struct job *g, uint64_t i)
{
	return g ? fill_byte(g->pattern, i) : CANARY;
}

/* Bytes of the slot around a copy or fill must still be the guard (no overrun). */
static bool guard_ok(const struct job *j, const uint8_t *slot, const struct job *g)
{
	uint64_t lo = (uint64_t)(j->dst_va - slot), hi = lo + j->size;

	if (g && sdma_compl_of(g->index)->status != SDMA_STATUS_SUCCESS)
		return false;
	if (j->op == JOB_CRC)
		lo = hi = 0;
	for (uint64_t i = 0; i < SLOT_SIZE; i++)
		if ((i < lo || i >= hi) && slot[i] != guard_byte(g, i))
			return false;
	return true;
}

static uint64_t tsc_busy; /* TSC cycles between doorbells and completions (benchmarks) */

/* n jobs in the windows from slot `base` on; keep: check and record kept results. */
static bool dma_batch(uint32_t n, uint32_t base, bool keep)
{
	uint64_t t0;
	bool ok;

	for (uint32_t i = 0; i < n; i++) {
		uint8_t *slot = dst_pool[0] + (base + i) * SLOT_SIZE;

		if (keep) {
			kept_check_slot(base + i);
			guard_submit(&guards[i], DST_IOVA + (base + i) * SLOT_SIZE);
		} else {
			guard_fill(slot);
		}
		job_random(&jobs[i], DST_IOVA + (base + i) * SLOT_SIZE, slot, job_size_max());
		job_submit(&jobs[i], SRC_IOVA, false, i == n - 1);
	}
	t0 = rdtsc();
	sdma_doorbell();
	ok = batch_wait(n);
	tsc_busy += rdtsc() - t0;
	for (uint32_t i = 0; i < n && ok; i++) {
		httu_written[base + i] = keep && cfg.httu_check;
		bool good = job_check(&jobs[i], 0) &&
			    guard_ok(&jobs[i], dst_pool[0] + (base + i) * SLOT_SIZE,
				     keep ? &guards[i] : NULL);

		if (!good && jobs[i].op != JOB_CRC)
			report_bad_job(&jobs[i], "guard_or_data", 0, 0);
		count_checked(&jobs[i], good);
		if (keep)
			kept_record_slot(base + i);
	}
	return ok;
}

/* TSC ticks per timer tick over the step, for the BENCH lines. */
static uint64_t tsc_t0, tick_t0;

static void bench_begin(void)
{
	tsc_busy = 0;
	tsc_t0 = rdtsc();
	tick_t0 = now_ticks();
}

static uint64_t tsc_per_us(void)
{
	uint64_t ticks = now_ticks() - tick_t0;

	if (ticks < 2)
		return 0;
	return (rdtsc() - tsc_t0) / (ticks * (1000000 / TIMER_HZ));
}

/* "BENCH <name> <value with 3 decimals> <unit>" like the host benchmarks. */
static void bench_line(const char *name, uint64_t milli, const char *unit)
{
	struct line l = {.len = 0};
	char frac[4] = {(char)('0' + milli / 100 % 10), (char)('0' + milli / 10 % 10),
			(char)('0' + milli % 10), 0};

	line_str(&l, "BENCH ");
	line_str(&l, name);
	line_str(&l, " ");
	line_dec(&l, milli / 1000);
	line_str(&l, ".");
	line_str(&l, frac);
	line_str(&l, " ");
	line_str(&l, unit);
	line_flush(&l);
}

static void bench_dma(void)
{
	uint64_t per_us = tsc_per_us(), us;

	if (!per_us || !tsc_busy)
		return;
	us = MAX(tsc_busy / per_us, 1);
	/* bytes per µs = MB/s; GB/s with 3 decimals = bytes * 1000 / (us * 1000). */
	bench_line("guest_dma_gbps", dev_result.bytes / us, "GB/s");
}

bool step_dma_run(void)
{
	uint64_t left = cfg.jobs;
	uint64_t nbatch = SLOTS < SDMA_MAX_BATCH ? SLOTS : SDMA_MAX_BATCH, events0;

	if (cfg.httu_check && cfg.httu_pace_ms)
		nbatch = HTTU_PACE_BATCH;

	result_begin();
	if (!devices_up())
		return false;
	events0 = smmu.st.events;
	bench_begin();
	/* With secs= the windows rotate through the whole pool and results are kept. */
	bool keep = cfg.secs_set && cfg.secs;
	uint32_t base = 0;
	for (uint32_t n; (n = next_batch(&left, nbatch)); base = (base + n) % DST_SLOTS) {
		if (keep && cfg.httu_check && base == 0)
			httu_new_round();
		if (!dma_batch(n, keep ? base : 0, keep))
			return false;
		if (keep && cfg.httu_check && cfg.httu_pace_ms)
			httu_pace();
	}
	if (keep)
		kept_check_all();
	for (uint64_t p = 0; p < POOL_PAGES && !cfg.bypass; p++) {
		uint64_t pte = smmu_pte(&as0, DST_IOVA + p * PAGE_SIZE);

		dev_result.dirty_pages += smmu_pte_dirty(pte);
		dev_result.young_pages += smmu_pte_young(pte);
	}
	dev_result.faults = smmu.st.events - events0;
	dev_result.descs = sdma.st.submitted - sdma.submitted_at_start;
	/* The record is written before the device counts the descriptor: let it catch up. */
	dev_result.device_descs = sdma_read(SDMA_REG_COMPLETED);
	for (int i = 0; i < 1000 && dev_result.device_descs < dev_result.descs; i++)
		dev_result.device_descs = sdma_read(SDMA_REG_COMPLETED);
	bench_dma();
	return dev_result.mismatches == 0 && dev_result.lost == 0 && dev_result.pte_lost == 0 &&
	       dev_result.descs == dev_result.device_descs;
}

/* ---- remap: move IOVA pages to other guest pages while the device runs ------------------ */

/*
 * Backings of a remapped page: dst_pool and alt_pool by turns; with kept results KEEP_BACKINGS
 * pages of dst_pool in rotation, so a page left behind stays so for many rounds (a loss is
 * not covered up by the page being mapped again before a migration ends).
 */
#define KEEP_BACKINGS (DST_PAGES / POOL_PAGES)
static unsigned remap_backings = 2;

static uint8_t *remap_page_va(uint64_t page, unsigned b)
{
	if (remap_backings == 2)
		return b ? alt_pool[page] : dst_pool[page];
	return dst_pool[page + b * POOL_PAGES];
}

static uint8_t *dst_remapped(uint64_t iova)
{
	uint64_t page = (iova - DST_IOVA) / PAGE_SIZE;

	return remap_page_va(page, dst_alt[page]) + (iova & (PAGE_SIZE - 1));
}

static const uint8_t canary_page[4096] = {[0 ... 4095] = CANARY};

/*
 * Kept results of remap (secs=): a page left behind keeps what the device wrote into it
 * through the old mapping, with its digest; it must still hold it when it is mapped again
 * and at the end. A migration whose dirty tracking translated the device's IOVA with the
 * new mapping only loses exactly such a write; a write through a stale TLB entry changes
 * it too. Both count in lost=.
 */
static uint64_t left_digest[KEEP_BACKINGS][POOL_PAGES];
static uint8_t left_valid[KEEP_BACKINGS][POOL_PAGES];

static void left_record(uint64_t p, unsigned b)
{
	left_digest[b][p] = page_digest(remap_page_va(p, b));
	left_valid[b][p] = 1;
}

static void left_check(uint64_t p, unsigned b)
{
	if (left_valid[b][p] && page_digest(remap_page_va(p, b)) != left_digest[b][p]) {
		struct job page = {.dst_iova = DST_IOVA + p * PAGE_SIZE, .size = PAGE_SIZE};

		dev_result.lost++;
		report_bad_job(&page, "lost_left", left_digest[b][p], b);
	}
	left_valid[b][p] = 0;
}

/* Every page not mapped now still holds what it held when it was left behind. */
static void left_check_all(void)
{
	for (uint64_t p = 0; p < POOL_PAGES; p++)
		for (unsigned b = 0; b < remap_backings; b++)
			if (b != dst_alt[p])
				left_check(p, b);
}

/*
 * Moves a random run of pages of an idle slot to their other backing. The page left behind
 * gets the canary (a device write through a stale TLB entry would show up there), or with
 * kept results keeps its data and a digest of it.
 */
static void remap_slot(uint32_t slot, bool keep)
{
	uint64_t first = slot * (SLOT_SIZE / PAGE_SIZE);
	uint64_t n = rand_range(1, SLOT_SIZE / PAGE_SIZE);
	uint64_t start = first + rand_range(0, SLOT_SIZE / PAGE_SIZE - n);
	uint64_t iova = DST_IOVA + start * PAGE_SIZE;

	smmu_unmap(&as0, iova, n * PAGE_SIZE);
	for (uint64_t p = start; p < start + n; p++) {
		if (keep)
			left_record(p, dst_alt[p]);
		else
			memset(remap_page_va(p, dst_alt[p]), CANARY, PAGE_SIZE);
		dst_alt[p] = (uint8_t)((dst_alt[p] + 1) % remap_backings);
		if (keep)
			left_check(p, dst_alt[p]);
		smmu_map(&as0, DST_IOVA + p * PAGE_SIZE, (uint64_t)remap_page_va(p, dst_alt[p]),
			 PAGE_SIZE, SMMU_PROT_READ | SMMU_PROT_WRITE | SMMU_PROT_TRACK);
	}
	dev_result.remaps++;
	dev_result.remapped_pages += n;
}

/* Every page not currently mapped must still hold the canary. */
static uint64_t stale_writes(void)
{
	uint64_t bad = 0;

	for (uint64_t p = 0; p < POOL_PAGES; p++)
		if (memcmp(remap_page_va(p, !dst_alt[p]), canary_page, PAGE_SIZE))
			bad++;
	return bad;
}

static uint64_t tsc_inval, inval_batches;

/*
 * Jobs go to one half of the slots while the other half is remapped. With remapwritten=1
 * the half the jobs just wrote is remapped once they completed: no invalidation (and so no
 * migration harvest before one) comes between the device's writes and the remap.
 */
static bool remap_round(uint32_t half, uint32_t n, bool keep)
{
	uint32_t per_half = SLOTS / 2, base = half * per_half;
	uint64_t t0;
	bool ok = true;

	for (uint32_t i = 0; i < n; i++) {
		uint32_t slot = base + i % per_half;

		job_random(&jobs[i], DST_IOVA + slot * SLOT_SIZE, 0, job_size_max());
		if (i >= per_half) /* a second job in a slot would overlap the first */
			jobs[i].op = JOB_CRC;
		job_submit(&jobs[i], SRC_IOVA, false, i == n - 1);
	}
	sdma_doorbell();
	uint32_t moved = cfg.remap_written ? half : 1 - half;
	if (cfg.remap_written) {
		ok = batch_wait(n);
		for (uint32_t i = 0; i < n && ok; i++)
			count_checked(&jobs[i], job_check(&jobs[i], dst_remapped));
	}
	for (uint32_t s = 0; s < per_half; s++)
		remap_slot(moved * per_half + s, keep);
	t0 = rdtsc();
	smmu_sync(); /* the whole round's TLBIs in one CMDQ_PROD write */
	tsc_inval += rdtsc() - t0;
	inval_batches++;
	if (cfg.remap_written)
		return ok;
	ok = batch_wait(n);
	for (uint32_t i = 0; i < n && ok; i++)
		count_checked(&jobs[i], job_check(&jobs[i], dst_remapped));
	return ok;
}

/* Unmapped backings hold the canary before the step (sva and dma write dst_pool). */
static void remap_prepare(void)
{
	memset(left_valid, 0, sizeof(left_valid));
	for (uint64_t p = 0; p < POOL_PAGES && remap_backings == 2; p++)
		memset(remap_page_va(p, !dst_alt[p]), CANARY, PAGE_SIZE);
}

/* Every page back on dst_pool, as dma and sva expect. */
static void remap_restore(void)
{
	for (uint64_t p = 0; p < POOL_PAGES; p++) {
		if (!dst_alt[p])
			continue;
		smmu_unmap(&as0, DST_IOVA + p * PAGE_SIZE, PAGE_SIZE);
		dst_alt[p] = 0;
		smmu_map(&as0, DST_IOVA + p * PAGE_SIZE, (uint64_t)dst_pool[p], PAGE_SIZE,
			 SMMU_PROT_READ | SMMU_PROT_WRITE | SMMU_PROT_TRACK);
	}
	smmu_sync();
}

/* remap and sva move translations: with bypass=1 there are none to move. */
static bool translation_needed(const char *step)
{
	struct line l = {.len = 0};

	if (!cfg.bypass)
		return true;
	line_str(&l, "ERROR ");
	line_str(&l, step);
	line_str(&l, ": needs the vSMMU to translate (not bypass=1)");
	line_flush(&l);
	return false;
}

bool step_remap_run(void)
{
	uint64_t left = cfg.jobs, round = 0, per_us, events0;
	bool ok = true;

	result_begin();
	if (!translation_needed("remap") || !devices_up())
		return false;
	events0 = smmu.st.events;
	bool keep = cfg.secs_set && cfg.secs;
	remap_backings = keep ? KEEP_BACKINGS : 2;
	remap_prepare();
	bench_begin();
	tsc_inval = inval_batches = 0;
	for (uint32_t n; (n = next_batch(&left, SLOTS));)
		if (!(ok = remap_round((uint32_t)(round++ & 1), n, keep)))
			break;
	if (keep)
		left_check_all();
	else
		dev_result.stale = stale_writes();
	dev_result.faults = smmu.st.events - events0;
	remap_restore();
	per_us = tsc_per_us();
	if (per_us && inval_batches)
		bench_line("guest_inval_batch_us", tsc_inval * 1000 / per_us / inval_batches, "us");
	return ok && dev_result.mismatches == 0 && dev_result.stale == 0 && dev_result.lost == 0;
}

/* ---- sva: buffers start unmapped; stalls are served by mapping on demand ---------------- */

#define SVA_SSIDS 3
static const uint32_t sva_ssid[SVA_SSIDS] = {1, 2, 1025}; /* 1025: the second CD leaf */
static struct smmu_as sva_as[SVA_SSIDS];

static struct smmu_as *as_of_ssid(uint32_t ssid)
{
	for (int i = 0; i < SVA_SSIDS; i++)
		if (sva_as[i].ttb && sva_as[i].ssid == ssid)
			return &sva_as[i];
	return 0;
}

/* The guest page behind an IOVA of an SSID window, or 0 for what nobody may map. */
static uint64_t sva_backing(uint32_t ssid, uint64_t iova, unsigned *prot)
{
	uint64_t base = SVA_IOVA(ssid);

	if (iova >= base && iova < base + sizeof(src_pool)) {
		*prot = SMMU_PROT_READ;
		return (uint64_t)src_pool + (iova - base);
	}
	if (iova >= base + SVA_DST_OFF && iova < base + SVA_DST_OFF + sizeof(dst_pool)) {
		*prot = SMMU_PROT_READ | SMMU_PROT_WRITE | SMMU_PROT_TRACK;
		return (uint64_t)dst_pool + (iova - base - SVA_DST_OFF);
	}
	return 0;
}

static bool sva_delayed;

/*
 * stalldelay=MS: the step's first stall waits MS ms for its answer, the device blocked on
 * it (a migration test's guest that does not answer its faults in time).
 */
static void sva_delay_once(void)
{
	if (!cfg.stall_delay_ms || sva_delayed)
		return;
	sva_delayed = true;
	struct line l = {.len = 0};

	line_str(&l, "sva: holding a stall");
	line_kv(&l, "ms", cfg.stall_delay_ms);
	line_flush(&l);
	for (uint64_t end = now_ticks() + cfg.stall_delay_ms * TIMER_HZ / 1000 + 1;
	     now_ticks() < end;)
		__asm__ volatile("pause" ::: "memory");
	console_puts("sva: answering the held stall");
}

static bool sva_on_stall(const struct smmu_event *ev)
{
	struct smmu_as *as = as_of_ssid(ev->ssv ? ev->ssid : 0);
	uint64_t page = ALIGN_DOWN(ev->iova, PAGE_SIZE), pa_;
	unsigned prot = 0;

	sva_delay_once();

	if (!as || ev->sid != DEV_SID || !(pa_ = sva_backing(as->ssid, page, &prot)))
		return false;
	/* Invalid -> valid: nothing can be cached for the page, so no TLBI (as Linux's IOPF). */
	if (!smmu_map(as, page, ALIGN_DOWN(pa_, PAGE_SIZE), PAGE_SIZE, prot))
		return false;
	dev_result.mapped_on_demand++;
	return true;
}

static bool sva_setup_as(int i)
{
	struct smmu_as *as = &sva_as[i];

	if (!as->ttb) {
		smmu_as_init(as, DEV_SID, sva_ssid[i], (uint16_t)(2 + i), true);
		if (!sdma_map_driver(as))
			return false;
		smmu_sync();
	}
	return sdma_start(true, sva_ssid[i]);
}

/* Unmaps what the round faulted in, so the next round on this SSID faults again. */
static void sva_teardown(int i)
{
	uint64_t base = SVA_IOVA(sva_ssid[i]);

	smmu_unmap(&sva_as[i], base, sizeof(src_pool));
	smmu_unmap(&sva_as[i], base + SVA_DST_OFF, sizeof(dst_pool));
	smmu_sync();
}

static bool sva_round(int i, uint32_t n, bool with_abort)
{
	uint64_t base = SVA_IOVA(sva_ssid[i]), t0;
	bool ok;

	for (uint32_t k = 0; k < n; k++) {
		uint8_t *slot = dst_pool[0] + (k % SLOTS) * SLOT_SIZE;

		/* Smaller jobs than dma: every page of a job faults once per round. */
		job_random(&jobs[k], base + SVA_DST_OFF + (k % SLOTS) * SLOT_SIZE, slot,
			   MIN(job_size_max(), SVA_JOB_MAX));
		if (k >= SLOTS)
			jobs[k].op = JOB_CRC;
		if (with_abort && k == n / 2) {
			/* A page nobody maps: the guest answers RESUME abort. */
			jobs[k].op = JOB_FILL;
			jobs[k].dst_iova = base + SVA_NOWHERE;
			jobs[k].size = 64;
			jobs[k].expect_fault = true;
		}
		job_submit(&jobs[k], base, sdma.bof_ok, k == n - 1);
	}
	t0 = rdtsc();
	sdma_doorbell();
	ok = batch_wait(n);
	tsc_busy += rdtsc() - t0;
	for (uint32_t k = 0; k < n && ok; k++)
		count_checked(&jobs[k], job_check(&jobs[k], 0));
	/* Each round starts from a reset queue: the device ran each job exactly once. */
	uint64_t done = ok ? sdma_read(SDMA_REG_COMPLETED) : 0;
	for (int t = 0; ok && t < 1000 && done < n; t++)
		done = sdma_read(SDMA_REG_COMPLETED);
	dev_result.descs += n;
	dev_result.device_descs += done;
	return ok;
}

/*
 * stetoggle=1: the device's STE flips its untagged-DMA mode (S1DSS) between "SSID 0" and
 * "bypass" every round: sva's DMA all carries a PASID, so the jobs do not notice, but the
 * STE the guest last wrote before a migration must be the one in force on the
 * destination's host (a test reads the host's translations of untagged DMA on both sides).
 * The step ends with it back on SSID 0.
 */
static void sva_ste_toggle(uint32_t round)
{
	if (!cfg.ste_toggle)
		return;
	smmu_ste_untagged(DEV_SID, round & 1);
	dev_result.ste_toggles++;
}

bool step_sva_run(void)
{
	uint64_t left = cfg.jobs, stalls0, aborts0, per_us;
	uint32_t round = 0;
	bool ok = true;

	result_begin();
	if (!translation_needed("sva") || !devices_up())
		return false;
	if (!smmu.stall_ok) {
		console_puts("ERROR sva: the vSMMU does not support stalls");
		return false;
	}
	stalls0 = smmu.st.stalls;
	aborts0 = smmu.st.aborts;
	sva_delayed = false;
	smmu.on_stall = sva_on_stall;
	bench_begin();
	for (uint32_t n; ok && (n = next_batch(&left, SDMA_MAX_BATCH / 2)); round++) {
		int i = (int)(round % SVA_SSIDS);

		sva_ste_toggle(round);
		ok = sva_setup_as(i) && sva_round(i, n, round < SVA_SSIDS);
		sva_teardown(i);
	}
	if (cfg.ste_toggle)
		smmu_ste_untagged(DEV_SID, false);
	smmu.on_stall = 0;
	dev_result.faults = smmu.st.stalls - stalls0;
	dev_result.aborted = smmu.st.aborts - aborts0;
	per_us = tsc_per_us();
	if (per_us && dev_result.faults)
		bench_line("guest_fault_roundtrip_us", tsc_busy * 1000 / per_us / dev_result.faults,
			   "us");
	/* Back to the untagged queue for whatever step follows. */
	ok = sdma_start(false, 0) && ok;
	return ok && dev_result.mismatches == 0 && dev_result.faults > 0 &&
	       dev_result.descs == dev_result.device_descs;
}
