// SPDX-License-Identifier: Apache-2.0
// The workload steps. Every participating vCPU runs each step on its own slice of pages;
// the boot vCPU prints one RESULT line per step with fixed keys (docs/guest.md).
#include "console.h"
#include "iommu_workloads.h"
#include "lib.h"
#include "memory.h"
#include "user.h"
#include "workloads.h"

/* What each vCPU did in the current step. */
struct cpu_stats {
	uint64_t writes, passes, checked, mismatches, sse_bad;
} __attribute__((aligned(64)));

static struct cpu_stats stats[VMIG_MAX_VCPUS];
static uint64_t step_t0;			 /* tick at which the current step started */
static uint64_t snap_self, snap_cross, snap_irq; /* interrupt counts before the step */
static volatile uint32_t quiesced;
static volatile uint32_t mismatch_lines;
static uint32_t final_status = VMIG_GUEST_EXIT_OK;
static const char *step_status;

#define MAX_MISMATCH_LINES 8

static bool has_step(enum step s)
{
	for (uint32_t i = 0; i < cfg.nr_steps; i++)
		if (cfg.steps[i] == s)
			return true;
	return false;
}

bool workloads_need_ws(void)
{
	return has_step(STEP_DIRTY) || has_step(STEP_VERIFY) || has_step(STEP_CORRUPT);
}

uint64_t ram_bytes(void)
{
	uint64_t total = 0;

	for (uint32_t i = 0; i < boot.nr_ram; i++)
		total += boot.ram[i].end - boot.ram[i].start;
	return total;
}

void workloads_check_config(void)
{
	if (!has_step(STEP_TOUCH))
		return;
	for (uint64_t i = 0; i < cfg.touch_count; i++)
		if (!memory_page_is_free(cfg.touch_base + i * cfg.touch_stride))
			fail_cmdline("touch page is not free RAM", 0);
}

void print_layout(void)
{
	struct line l = {.len = 0};

	line_str(&l, "LAYOUT");
	line_kx(&l, "image_start", boot.image_start);
	line_kx(&l, "image_end", boot.image_end);
	line_kv(&l, "ws_pages", ws_set.pages);
	if (ws_set.pages) {
		line_kx(&l, "ws_start", ws_set.ext[0].start);
		line_kx(&l, "ws_end",
			ws_set.ext[ws_set.n - 1].start +
			    ws_set.ext[ws_set.n - 1].pages * PAGE_SIZE);
		line_kv(&l, "ws_extents", ws_set.n);
		line_kx(&l, "gen_table", ws_gen_addr);
	}
	line_kv(&l, "fill_pages", fill_set.pages);
	line_flush(&l);
}

static uint64_t irq_sum(uint32_t vector)
{
	uint64_t n = 0;

	for (uint32_t c = 0; c < ncpus; c++)
		n += cpus[c].irq_count[vector];
	return n;
}

static uint64_t stats_sum(size_t offset)
{
	uint64_t n = 0;

	for (uint32_t c = 0; c < ncpus; c++)
		n += *(uint64_t *)((char *)&stats[c] + offset);
	return n;
}
#define STAT_SUM(field) stats_sum(__builtin_offsetof(struct cpu_stats, field))

/* Deadline tick of a timed step (0: none); secs=0 means "until stopped". */
static uint64_t deadline(void)
{
	return cfg.secs ? step_t0 + cfg.secs * TIMER_HZ : 0;
}

static bool past(uint64_t deadline_tick)
{
	return deadline_tick && now_ticks() >= deadline_tick;
}

/* ---- prepare: initial contents of every owned page ------------------------------------ */

static void prepare(uint32_t cpu)
{
	uint64_t lo, hi;

	slice_of(ws_set.pages, cpu, &lo, &hi);
	for (uint64_t i = lo; i < hi; i++) {
		page_fill(page_set_addr(&ws_set, i), 1);
		ws_gen[i] = 1;
	}
	slice_of(fill_set.pages, cpu, &lo, &hi);
	for (uint64_t i = lo; i < hi; i++)
		page_fill(page_set_addr(&fill_set, i), 0);
}

static void report_prepare(void)
{
	struct line l = {.len = 0};

	line_str(&l, "PREPARED");
	line_kv(&l, "ws_pages", ws_set.pages);
	line_kv(&l, "fill_pages", fill_set.pages);
	line_kv(&l, "ticks", now_ticks() - step_t0);
	line_flush(&l);
}

/* ---- idle ------------------------------------------------------------------------------ */

static void step_idle(uint32_t cpu)
{
	uint64_t end = deadline();

	while (!end || !past(end))
		sys_halt();
}

static void report_idle(struct line *l)
{
	line_kv(l, "secs", cfg.secs);
}

/* ---- dirty: rewrite the slice, page by page, each time with the next generation ------- */

/* Holds the vCPU back while it is ahead of its share of the rate; false at the deadline. */
static bool pace(uint64_t writes, uint64_t rate, uint64_t end)
{
	while (rate && writes >= rate * (now_ticks() - step_t0 + 1) / TIMER_HZ) {
		if (past(end))
			return false;
		sys_halt();
	}
	return !past(end);
}

static void step_dirty(uint32_t cpu)
{
	uint64_t lo, hi, rate = cfg.rate ? MAX(cfg.rate / ncpus, 1) : 0;
	uint64_t end = cfg.iters && !cfg.secs_set ? 0 : deadline();
	struct cpu_stats *st = &stats[cpu];

	slice_of(ws_set.pages, cpu, &lo, &hi);
	if (cpu == 0)
		vm_mark(VMIG_MARK_DIRTY);
	for (;;) {
		for (uint64_t i = lo; i < hi; i++) {
			uint32_t gen = ws_gen[i] + 1;

			if (!pace(st->writes, rate, end))
				return;
			page_fill(page_set_addr(&ws_set, i), gen);
			ws_gen[i] = gen;
			st->writes++;
		}
		st->passes++;
		if ((cfg.iters && st->passes >= cfg.iters) || (lo == hi && past(end)))
			return;
		if (lo == hi)
			sys_halt();
	}
}

static void report_dirty(struct line *l)
{
	uint64_t ticks = MAX(now_ticks() - step_t0, 1);

	line_kv(l, "pages", ws_set.pages);
	line_kx(l, "ws_start", ws_set.n ? ws_set.ext[0].start : 0);
	line_kv(l, "writes", STAT_SUM(writes));
	line_kv(l, "passes", stats[0].passes);
	line_kv(l, "rate", STAT_SUM(writes) * TIMER_HZ / ticks);
}

/* ---- SSE state: xmm8-15 hold per-vCPU values from the first step to every verify ------ */

/*
 * Nothing else in the guest touches SSE registers (it is built -mgeneral-regs-only), so a
 * VMM that loses or mixes up FPU/SSE state across a pause, save/restore or migration makes
 * verify fail.
 */
static void sse_expected(uint32_t cpu, uint64_t v[16])
{
	for (int k = 0; k < 16; k++)
		v[k] = (cfg.seed * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)cpu << 32) ^ (k + 1);
}

static void sse_load(uint32_t cpu)
{
	uint64_t v[16];

	sse_expected(cpu, v);
	__asm__ volatile("movdqu 0(%0), %%xmm8\n\tmovdqu 16(%0), %%xmm9\n\t"
			 "movdqu 32(%0), %%xmm10\n\tmovdqu 48(%0), %%xmm11\n\t"
			 "movdqu 64(%0), %%xmm12\n\tmovdqu 80(%0), %%xmm13\n\t"
			 "movdqu 96(%0), %%xmm14\n\tmovdqu 112(%0), %%xmm15"
			 :
			 : "r"(v)
			 : "memory");
}

static bool sse_intact(uint32_t cpu)
{
	uint64_t want[16], got[16];

	sse_expected(cpu, want);
	__asm__ volatile("movdqu %%xmm8, 0(%0)\n\tmovdqu %%xmm9, 16(%0)\n\t"
			 "movdqu %%xmm10, 32(%0)\n\tmovdqu %%xmm11, 48(%0)\n\t"
			 "movdqu %%xmm12, 64(%0)\n\tmovdqu %%xmm13, 80(%0)\n\t"
			 "movdqu %%xmm14, 96(%0)\n\tmovdqu %%xmm15, 112(%0)"
			 :
			 : "r"(got)
			 : "memory");
	return !memcmp(want, got, sizeof(got));
}

/* ---- verify: every owned page against its generation ---------------------------------- */

static void report_mismatch(uint64_t addr, uint32_t gen, int word, uint64_t exp, uint64_t got)
{
	struct line l = {.len = 0};

	if (__atomic_fetch_add(&mismatch_lines, 1, __ATOMIC_RELAXED) >= MAX_MISMATCH_LINES)
		return;
	line_str(&l, "MISMATCH");
	line_kx(&l, "addr", addr);
	line_kv(&l, "gen", gen);
	line_kv(&l, "word", (uint64_t)word);
	line_kx(&l, "expected", exp);
	line_kx(&l, "found", got);
	line_flush(&l);
}

static void verify_page(struct cpu_stats *st, uint64_t addr, uint32_t gen)
{
	uint64_t exp, got;
	int word = page_check(addr, gen, &exp, &got);

	st->checked++;
	if (word >= 0) {
		st->mismatches++;
		report_mismatch(addr, gen, word, exp, got);
	}
}

static void step_verify(uint32_t cpu)
{
	struct cpu_stats *st = &stats[cpu];
	uint64_t lo, hi;

	slice_of(ws_set.pages, cpu, &lo, &hi);
	for (uint64_t i = lo; i < hi; i++)
		verify_page(st, page_set_addr(&ws_set, i), ws_gen[i]);
	slice_of(fill_set.pages, cpu, &lo, &hi);
	for (uint64_t i = lo; i < hi; i++)
		verify_page(st, page_set_addr(&fill_set, i), 0);
	st->sse_bad = !sse_intact(cpu);
}

static void report_verify(struct line *l)
{
	line_kv(l, "pages", ws_set.pages);
	line_kv(l, "fill_pages", fill_set.pages);
	line_kv(l, "checked", STAT_SUM(checked));
	line_kv(l, "mismatches", STAT_SUM(mismatches));
	line_kv(l, "sse_bad", STAT_SUM(sse_bad));
	if (STAT_SUM(mismatches) || STAT_SUM(sse_bad))
		step_status = "fail";
}

/* ---- touch: a known set of pages, then silence ----------------------------------------- */

static void touch_pages(void)
{
	for (uint64_t i = 0; i < cfg.touch_count; i++) {
		uint64_t addr = cfg.touch_base + i * cfg.touch_stride;

		*(volatile uint64_t *)addr = addr ^ cfg.seed;
	}
}

/* Never returns: afterwards no vCPU writes guest RAM again (timers off, halted). */
static void step_touch(uint32_t cpu)
{
	struct line l = {.len = 0};

	if (cpu != 0)
		sys_quiesce(0, &quiesced);
	while (quiesced != ncpus - 1)
		sys_halt();
	touch_pages();
	line_str(&l, "RESULT workload=touch");
	line_kv(&l, "vcpus", ncpus);
	line_kv(&l, "pages", cfg.touch_count);
	line_kx(&l, "base", cfg.touch_base);
	line_kx(&l, "stride", cfg.touch_stride);
	line_kx(&l, "last", cfg.touch_base + (cfg.touch_count - 1) * cfg.touch_stride);
	line_kv(&l, "ticks", now_ticks() - step_t0);
	line_str(&l, " status=ok");
	line_flush(&l);
	sys_quiesce(VMIG_MARK_TOUCHED, 0);
}

/* ---- ipi: self-IPIs on every vCPU and one IPI from the boot vCPU to each other --------- */

static void step_ipi(uint32_t cpu)
{
	uint64_t expect_self = (uint64_t)ncpus * cfg.ipis, expect_cross = ncpus - 1;

	for (uint32_t k = 0; k < cfg.ipis; k++)
		sys_send_ipi(SYS_IPI_SELF, VMIG_VEC_TEST_SELF);
	if (cpu != 0)
		return;
	for (uint32_t c = 1; c < ncpus; c++)
		sys_send_ipi(cpus[c].apic_id, VMIG_VEC_TEST_CROSS);
	while (irq_sum(VMIG_VEC_TEST_SELF) - snap_self < expect_self ||
	       irq_sum(VMIG_VEC_TEST_CROSS) - snap_cross < expect_cross) {
		if (now_ticks() - step_t0 > 2 * TIMER_HZ) {
			step_status = "timeout";
			return;
		}
		sys_halt();
	}
}

static void report_ipi(struct line *l)
{
	line_kv(l, "self_sent", (uint64_t)ncpus * cfg.ipis);
	line_kv(l, "self_received", irq_sum(VMIG_VEC_TEST_SELF) - snap_self);
	line_kv(l, "cross_sent", ncpus - 1);
	line_kv(l, "cross_received", irq_sum(VMIG_VEC_TEST_CROSS) - snap_cross);
}

/* ---- irqwait: interrupts from outside (the VMM's MSIs) -------------------------------- */

static void step_irqwait(uint32_t cpu)
{
	uint64_t end = step_t0 + (cfg.secs_set ? cfg.secs : 10) * TIMER_HZ;
	struct line l = {.len = 0};

	if (cpu != 0)
		return;
	line_str(&l, "IRQWAIT");
	line_kx(&l, "vector", cfg.irq_vector);
	line_kv(&l, "count", cfg.irq_count);
	line_kx(&l, "apic_id", cpus[0].apic_id);
	line_flush(&l);
	vm_mark(VMIG_MARK_IRQ_WAIT);
	while (irq_sum(cfg.irq_vector) - snap_irq < cfg.irq_count) {
		if (now_ticks() >= end) {
			step_status = "timeout";
			return;
		}
		sys_halt();
	}
}

static void report_irqwait(struct line *l)
{
	line_kx(l, "vector", cfg.irq_vector);
	line_kv(l, "expected", cfg.irq_count);
	line_kv(l, "received", irq_sum(cfg.irq_vector) - snap_irq);
}

/* ---- corrupt: damage owned pages behind verify's back (proves verify can fail) ------- */

static uint64_t corrupted;

static void corrupt_page(uint64_t addr)
{
	((volatile uint64_t *)addr)[7] ^= 0x5A;
	corrupted++;
}

static void step_corrupt(uint32_t cpu)
{
	if (cpu != 0)
		return;
	corrupted = 0;
	if (ws_set.pages)
		corrupt_page(page_set_addr(&ws_set, ws_set.pages - 1));
	if (fill_set.pages)
		corrupt_page(page_set_addr(&fill_set, 0));
	__asm__ volatile("pcmpeqd %%xmm15, %%xmm15" ::: "memory"); /* and vCPU 0's SSE state */
}

static void report_corrupt(struct line *l)
{
	line_kv(l, "pages", corrupted);
}

/* ---- dma, remap, sva, hostile: the boot vCPU drives the device (iommu_workloads.c) ---- */

static void run_device_step(uint32_t cpu, bool (*run)(void))
{
	if (cpu == 0 && !run())
		step_status = "fail";
}

static void step_dma(uint32_t cpu)
{
	run_device_step(cpu, step_dma_run);
}

static void step_remap(uint32_t cpu)
{
	run_device_step(cpu, step_remap_run);
}

static void step_sva(uint32_t cpu)
{
	run_device_step(cpu, step_sva_run);
}

static void step_hostile(uint32_t cpu)
{
	run_device_step(cpu, step_hostile_run);
}

/* The fixed keys of every device step. */
static void report_device(struct line *l)
{
	line_kv(l, "jobs", dev_result.jobs);
	line_kv(l, "bytes", dev_result.bytes);
	line_kv(l, "faults", dev_result.faults);
	line_kv(l, "mismatches", dev_result.mismatches);
	line_kv(l, "irqs", dev_result.irqs);
}

static void report_dma(struct line *l)
{
	report_device(l);
	line_kv(l, "lost", dev_result.lost);
	line_kv(l, "descs", dev_result.descs);
	line_kv(l, "pte_lost", dev_result.pte_lost);
	line_kv(l, "device_descs", dev_result.device_descs);
	line_kv(l, "pte_young", dev_result.young_pages);
	line_kv(l, "pte_dirty", dev_result.dirty_pages);
}

static void report_remap(struct line *l)
{
	report_device(l);
	line_kv(l, "lost", dev_result.lost);
	line_kv(l, "remaps", dev_result.remaps);
	line_kv(l, "remapped_pages", dev_result.remapped_pages);
	line_kv(l, "stale", dev_result.stale);
}

static void report_sva(struct line *l)
{
	report_device(l);
	line_kv(l, "mapped", dev_result.mapped_on_demand);
	line_kv(l, "aborted", dev_result.aborted);
	line_kv(l, "descs", dev_result.descs);
	line_kv(l, "device_descs", dev_result.device_descs);
	if (cfg.ste_toggle)
		line_kv(l, "ste_toggles", dev_result.ste_toggles);
}

static void report_hostile(struct line *l)
{
	line_kv(l, "cases", dev_result.cases);
	line_kv(l, "passed", dev_result.passed);
	line_kv(l, "failed", dev_result.cases - dev_result.passed);
	line_kv(l, "events", dev_result.faults);
}

/* ---- the driver ------------------------------------------------------------------------ */

struct step_ops {
	const char *name;
	void (*run)(uint32_t cpu);
	void (*report)(struct line *l);
};

static const struct step_ops step_ops[] = {
    [STEP_IDLE] = {"idle", step_idle, report_idle},
    [STEP_DIRTY] = {"dirty", step_dirty, report_dirty},
    [STEP_VERIFY] = {"verify", step_verify, report_verify},
    [STEP_TOUCH] = {"touch", step_touch, 0},
    [STEP_IPI] = {"ipi", step_ipi, report_ipi},
    [STEP_IRQWAIT] = {"irqwait", step_irqwait, report_irqwait},
    [STEP_CORRUPT] = {"corrupt", step_corrupt, report_corrupt},
    [STEP_DMA] = {"dma", step_dma, report_dma},
    [STEP_REMAP] = {"remap", step_remap, report_remap},
    [STEP_SVA] = {"sva", step_sva, report_sva},
    [STEP_HOSTILE] = {"hostile", step_hostile, report_hostile},
};

/* Boot vCPU, before the step's start barrier: the baseline of the step. */
static void step_begin(void)
{
	for (uint32_t c = 0; c < ncpus; c++)
		stats[c] = (struct cpu_stats){0};
	snap_self = irq_sum(VMIG_VEC_TEST_SELF);
	snap_cross = irq_sum(VMIG_VEC_TEST_CROSS);
	snap_irq = irq_sum(cfg.irq_vector);
	step_status = "ok";
	step_t0 = now_ticks();
}

static void step_report(const struct step_ops *ops)
{
	struct line l = {.len = 0};

	line_str(&l, "RESULT workload=");
	line_str(&l, ops->name);
	line_kv(&l, "vcpus", ncpus);
	ops->report(&l);
	line_kv(&l, "ticks", now_ticks() - step_t0);
	line_str(&l, " status=");
	line_str(&l, step_status);
	line_flush(&l);
	if (step_status[0] != 'o')
		final_status = VMIG_GUEST_EXIT_FAILED;
}

void workloads_run(uint32_t cpu)
{
	sse_load(cpu);
	if (ws_set.pages || fill_set.pages) {
		if (cpu == 0)
			step_begin();
		barrier();
		prepare(cpu);
		barrier();
		if (cpu == 0)
			report_prepare();
	}
	for (uint32_t s = 0; s < cfg.nr_steps; s++) {
		const struct step_ops *ops = &step_ops[cfg.steps[s]];

		if (cpu == 0)
			step_begin();
		barrier();
		ops->run(cpu);
		barrier();
		if (cpu == 0)
			step_report(ops);
	}
}

static void report_irqs(uint32_t c)
{
	struct line l = {.len = 0};

	line_str(&l, "IRQS");
	line_kv(&l, "cpu", c);
	line_kv(&l, "apic_id", cpus[c].apic_id);
	line_kv(&l, "timer", cpus[c].irq_count[VMIG_VEC_TIMER]);
	for (uint32_t v = 32; v < 256; v++) {
		if (v == VMIG_VEC_TIMER || !cpus[c].irq_count[v])
			continue;
		line_str(&l, " vec");
		line_hex(&l, v);
		line_str(&l, "=");
		line_dec(&l, cpus[c].irq_count[v]);
	}
	line_flush(&l);
}

void workloads_finish(void)
{
	struct line l = {.len = 0};

	for (uint32_t c = 0; c < ncpus; c++)
		report_irqs(c);
	line_str(&l, "DONE");
	line_kv(&l, "status", final_status);
	line_kv(&l, "ticks", now_ticks());
	line_flush(&l);
	if (cfg.exit_at_end)
		vm_exit(final_status);
	for (;;)
		sys_halt();
}
