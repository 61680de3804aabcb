/* SPDX-License-Identifier: Apache-2.0 */
/*
 * State shared between the guest's ring-0 kernel and its ring-3 workloads. Everything lives
 * in the identity map with U/S=1, so ring 3 reads these structures directly; only the
 * kernel writes the interrupt counters.
 */
#ifndef GUEST_KERNEL_H
#define GUEST_KERNEL_H

#include <stdint.h>
#include "layout.h"

/* Timer interrupt rate of every vCPU. */
#define TIMER_HZ 100

/* A range of guest-physical RAM [start, end). */
struct range {
	uint64_t start, end;
};

#define MAX_RAM_RANGES 32
#define CMDLINE_MAX    1024

/* What the boot processor learned, written once before ring 3 starts. */
struct boot_info {
	char cmdline[CMDLINE_MAX];
	struct range ram[MAX_RAM_RANGES]; /* usable RAM from the Multiboot map, sorted */
	uint32_t nr_ram;
	uint64_t ram_top;     /* end of the highest usable RAM */
	uint64_t mapped_top;  /* the identity map covers [0, mapped_top) */
	uint64_t image_start; /* the image, bss and stacks: [image_start, image_end) */
	uint64_t image_end;
	uint32_t pages_1g; /* the identity map uses 1 GiB pages */
	uint32_t x2apic;   /* x2APIC mode (else the xAPIC MMIO fallback) */
	uint32_t bsp_apic_id;
};

/* Per-vCPU state; the kernel updates the counters from interrupt handlers. */
struct percpu {
	uint32_t index;
	uint32_t apic_id;
	volatile uint32_t online;
	volatile uint64_t ticks;
	volatile uint32_t irq_count[256];
} __attribute__((aligned(64)));

extern struct boot_info boot;
extern struct percpu cpus[VMIG_MAX_VCPUS];
/* Number of vCPUs that reached ring 3 (the BSP included). */
extern volatile uint32_t cpus_online;

/* System calls: `ud2` with the number in rax and arguments in rdi, rsi, rdx. */
enum syscall_nr {
	SYS_HALT = 0, /* wait for the next interrupt */
	SYS_SEND_IPI, /* (apic id or SYS_IPI_SELF, vector) */
	SYS_TIMER,    /* (on): start or stop this vCPU's timer */
	SYS_QUIESCE,  /* (mark, counter): stop the timer, increment *counter if given,
			 write the mark if non-zero, halt forever with interrupts off */
};
#define SYS_IPI_SELF 0xFFFFFFFFu

/* Ring-3 entry point of every vCPU. */
void user_main(uint32_t cpu) __attribute__((noreturn));

void kernel_panic(const char *what, uint64_t a, uint64_t b) __attribute__((noreturn));

#endif
