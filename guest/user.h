/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ring-3 side: system-call wrappers, the parsed command line, shared helpers of the
 * workloads. All of this runs natively on paravirtual KVM.
 */
#ifndef GUEST_USER_H
#define GUEST_USER_H

#include <stdbool.h>
#include <stdint.h>
#include "kernel.h"

static inline uint64_t syscall2(uint64_t nr, uint64_t a, uint64_t b)
{
	__asm__ volatile("ud2" : "+a"(nr) : "D"(a), "S"(b) : "memory");
	return nr;
}

static inline void sys_halt(void)
{
	syscall2(SYS_HALT, 0, 0);
}

static inline void sys_send_ipi(uint32_t dest, uint32_t vector)
{
	syscall2(SYS_SEND_IPI, dest, vector);
}

static inline void __attribute__((noreturn)) sys_quiesce(uint32_t mark, volatile uint32_t *ctr)
{
	syscall2(SYS_QUIESCE, mark, (uint64_t)ctr);
	__builtin_unreachable();
}

enum step {
	STEP_IDLE,
	STEP_DIRTY,
	STEP_VERIFY,
	STEP_TOUCH,
	STEP_IPI,
	STEP_IRQWAIT,
	STEP_CORRUPT,
	STEP_DMA,
	STEP_REMAP,
	STEP_SVA,
	STEP_HOSTILE,
};

#define MAX_STEPS 16

struct config {
	uint8_t steps[MAX_STEPS];
	uint32_t nr_steps;
	uint64_t secs; /* duration of idle and dirty, timeout of irqwait */
	bool secs_set;
	uint64_t iters;	   /* dirty: passes over the working set (0: no limit) */
	uint64_t ws_bytes; /* working-set size */
	uint64_t ws_base;  /* where the working set starts (0: lowest free RAM) */
	uint64_t rate;	   /* dirty: page writes per second, all vCPUs together (0: no limit) */
	bool fillram;	   /* fill all other free RAM with pseudo-random data, verify it too */
	uint64_t seed;
	uint32_t cpus; /* expected vCPUs (0: whoever shows up) */
	uint64_t touch_base, touch_count, touch_stride;
	uint32_t irq_vector, irq_count;
	uint32_t ipis; /* ipi: self-IPIs per vCPU */
	bool exit_at_end;
	uint64_t jobs;		 /* dma, remap, sva: jobs per step */
	uint64_t job_size;	 /* largest transfer of a job */
	bool strtab_2lvl;	 /* 2-level stream table instead of linear */
	bool tlbi;		 /* 0: unmaps skip the TLB invalidation (negative control) */
	bool remap_written;	 /* remap moves the windows the device just wrote (adversarial) */
	bool bypass;		 /* the device's STE bypasses translation: IOVA = GPA (dma only) */
	uint32_t stall_delay_ms; /* sva: the step's first stall is answered this late */
	bool ste_toggle;	 /* sva: each round flips the STE's untagged-DMA mode */
	bool httu_check; /* dma with secs=: window PTEs cleaned before use, A/D checked after */
	uint32_t httu_pace_ms; /* httucheck: batches of 4 windows, this far apart */
};

extern struct config cfg;
extern uint32_t ncpus;

/* Parses boot.cmdline into cfg; on error prints why and exits with status 2. */
void cmdline_parse(void);

/* Time in timer ticks (TIMER_HZ), from the boot processor's timer. */
static inline uint64_t now_ticks(void)
{
	return cpus[0].ticks;
}

void barrier(void);
/* Waits a little: until the next interrupt. */
void wait_a_bit(void);
void __attribute__((noreturn)) fail_cmdline(const char *what, const char *arg);

#endif
