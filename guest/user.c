// SPDX-License-Identifier: Apache-2.0
// Ring-3 main program of every vCPU: the boot vCPU parses the command line, waits for the
// others and lays out memory; then all run the workload steps in lockstep and the boot
// vCPU reports and ends the VM.
#include "console.h"
#include "lib.h"
#include "memory.h"
#include "user.h"
#include "workloads.h"

uint32_t ncpus;
static volatile uint32_t go;
static volatile uint32_t bar_count, bar_gen;

void wait_a_bit(void)
{
	sys_halt();
}

/* Sense-reversing barrier of the ncpus participating vCPUs. */
void barrier(void)
{
	uint32_t gen = __atomic_load_n(&bar_gen, __ATOMIC_ACQUIRE);

	if (__atomic_add_fetch(&bar_count, 1, __ATOMIC_ACQ_REL) == ncpus) {
		bar_count = 0;
		__atomic_store_n(&bar_gen, gen + 1, __ATOMIC_RELEASE);
		return;
	}
	while (__atomic_load_n(&bar_gen, __ATOMIC_ACQUIRE) == gen)
		wait_a_bit();
}

static void __attribute__((noreturn)) idle_forever(void)
{
	for (;;)
		sys_halt();
}

/*
 * The kernel woke every other vCPU with a broadcast SIPI; count who arrives. With cpus=N,
 * wait for N; otherwise until nobody new has come for 250 ms.
 */
static void wait_for_cpus(void)
{
	uint64_t start = now_ticks(), changed = start;
	uint32_t seen = cpus_online;

	for (;;) {
		uint32_t n = cpus_online;

		if (n != seen)
			seen = n, changed = now_ticks();
		if (cfg.cpus ? n >= cfg.cpus : now_ticks() - changed >= TIMER_HZ / 4)
			break;
		if (now_ticks() - start >= 5 * TIMER_HZ) {
			struct line l = {.len = 0};

			line_str(&l, "ERROR vcpus: too few came online");
			line_kv(&l, "online", n);
			line_kv(&l, "expected", cfg.cpus);
			line_flush(&l);
			vm_exit(VMIG_GUEST_EXIT_FAULT);
		}
		sys_halt();
	}
	ncpus = cfg.cpus ? cfg.cpus : seen;
}

static void print_boot(void)
{
	struct line l = {.len = 0};

	line_str(&l, "BOOT");
	line_kv(&l, "vcpus", ncpus);
	line_kv(&l, "ram_mib", ram_bytes() / MIB);
	line_kx(&l, "ram_top", boot.ram_top);
	line_str(&l, boot.pages_1g ? " map=1g" : " map=2m");
	line_str(&l, boot.x2apic ? " apic=x2apic" : " apic=xapic");
	line_kx(&l, "image_end", boot.image_end);
	line_kv(&l, "hz", TIMER_HZ);
	line_flush(&l);
	line_str(&l, "CMDLINE ");
	line_str(&l, boot.cmdline);
	line_flush(&l);
}

static void boot_cpu_setup(void)
{
	cmdline_parse();
	wait_for_cpus();
	memory_setup(workloads_need_ws());
	workloads_check_config();
	print_boot();
	print_layout();
	__atomic_store_n(&go, 1, __ATOMIC_RELEASE);
	vm_mark(VMIG_MARK_BOOTED);
}

void user_main(uint32_t cpu)
{
	if (cpu == 0)
		boot_cpu_setup();
	while (!__atomic_load_n(&go, __ATOMIC_ACQUIRE))
		wait_a_bit();
	if (cpu >= ncpus)
		idle_forever(); /* came up too late to be counted */
	workloads_run(cpu);
	if (cpu != 0)
		idle_forever();
	workloads_finish();
}
