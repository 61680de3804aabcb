// SPDX-License-Identifier: Apache-2.0
// Ring-0 part of the guest firmware: bring-up of every vCPU (page tables above 4 GiB, IDT,
// TSS, x2APIC and its timer, INIT-SIPI-SIPI), interrupt and exception handling, and the
// `ud2` system calls. Each of its instructions is emulated on paravirtual KVM, so it does
// as little as it can and hands each vCPU to ring 3 (user_main) as soon as possible.
#include <stdint.h>
#include "console.h"
#include "kernel.h"
#include "lib.h"
#include "x86.h"

#define MB_LOADER_MAGIC 0x2BADB002u

#define MSR_APIC_BASE	  0x1B
#define APIC_BASE_EXTD	  (1u << 10)
#define APIC_BASE_EN	  (1u << 11)
#define X2APIC_ID	  0x802
#define X2APIC_TPR	  0x808
#define X2APIC_EOI	  0x80B
#define X2APIC_SVR	  0x80F
#define X2APIC_ICR	  0x830
#define X2APIC_LVT_LINT0  0x835
#define X2APIC_LVT_LINT1  0x836
#define X2APIC_LVT_TIMER  0x832
#define X2APIC_TIMER_INIT 0x838
#define X2APIC_TIMER_DIV  0x83E
/* The xAPIC fallback (QEMU's TCG lacks x2APIC): register n of the MSR space at n << 4. */
#define XAPIC_REG(msr)	(VMIG_LAPIC_BASE + (((msr)-0x800u) << 4))
#define XAPIC_ICR_HIGH	0x831
#define APIC_SVR_ENABLE (1u << 8)
#define LVT_MASKED	(1u << 16)
#define LVT_PERIODIC	(1u << 17)
#define TIMER_DIV_1	0xB
/* KVM's (and QEMU's) local APIC timer counts at 1 GHz. */
#define APIC_TIMER_HZ 1000000000ull

#define ICR_ALL_BUT_SELF (3u << 18)
#define ICR_SELF	 (1u << 18)
#define ICR_ASSERT	 (1u << 14)
#define ICR_INIT	 (5u << 8)
#define ICR_STARTUP	 (6u << 8)

#define VEC_UD	   6
#define UD2_OPCODE 0x0B0F

/*
 * Ring 3 does port I/O through IOPL 3 and, where the hypervisor ignores IOPL (paravirtual
 * KVM does), through the TSS permission bitmap, which covers the low ports only.
 */
#define IOMAP_PORTS 0x100

/* 2 MiB-page directories for RAM above 4 GiB when the CPU lacks 1 GiB pages. */
#define HIGH_PDS 60

struct frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error, rip, cs, rflags, rsp, ss;
};

struct idt_gate {
	uint16_t offset_lo, selector;
	uint8_t ist, type;
	uint16_t offset_mid;
	uint32_t offset_hi, zero;
} __attribute__((packed));

struct tss {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3, iomap_base;
	/* Ports 0-0xFF allowed from ring 3 (zero bits); the 0xFF byte ends the map. */
	uint8_t iomap[IOMAP_PORTS / 8 + 1];
} __attribute__((packed, aligned(16)));

struct table_desc {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

/* From boot.S and the linker script. */
extern char __image_start[], __image_end[];
extern uint64_t boot_pml4[512], boot_pdpt[512], gdt[GDT_ENTRIES];
extern uint32_t boot_has_1g;
extern char isr_stubs[], trampoline_start[], trampoline_end[];
extern uint8_t kstacks[];
void enter_user(uint64_t rip, uint64_t rsp, uint64_t arg) __attribute__((noreturn));
void halt_forever(void) __attribute__((noreturn));

void kernel_main_bsp(uint32_t magic, uint32_t info);
void kernel_main_ap(uint32_t index);
void isr_dispatch(struct frame *f);
void multiboot_read(uint32_t info);

struct boot_info boot;
struct percpu cpus[VMIG_MAX_VCPUS];
volatile uint32_t cpus_online;

static struct idt_gate idt[256] __attribute__((aligned(16)));
static struct tss tss[VMIG_MAX_VCPUS] __attribute__((aligned(16)));
static uint8_t ustacks[VMIG_MAX_VCPUS][USTACK_SIZE] __attribute__((aligned(4096)));
static uint64_t high_pds[HIGH_PDS][512] __attribute__((aligned(4096)));

void kernel_panic(const char *what, uint64_t a, uint64_t b)
{
	struct line l = {.len = 0};

	console_break_lock();
	line_str(&l, "PANIC ");
	line_str(&l, what);
	line_kx(&l, "a", a);
	line_kx(&l, "b", b);
	line_flush(&l);
	vm_exit(VMIG_GUEST_EXIT_FAULT);
}

/* The vCPU we run on, from the ring-0 stack we are on: no MSR read, no exit. */
static uint32_t this_cpu(void)
{
	uint64_t sp = (uint64_t)__builtin_frame_address(0) - (uint64_t)kstacks;
	uint64_t index = sp / KSTACK_SIZE;

	return index < VMIG_MAX_VCPUS ? (uint32_t)index : 0;
}

/* Forgets RAM at and above `top` (beyond what the page tables can map). */
static void ram_clip(uint64_t top)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < boot.nr_ram; i++) {
		boot.ram[i].end = MIN(boot.ram[i].end, top);
		if (boot.ram[i].start < boot.ram[i].end)
			boot.ram[n++] = boot.ram[i];
	}
	boot.nr_ram = n;
	boot.ram_top = MIN(boot.ram_top, top);
}

/* Identity-maps RAM above 4 GiB (boot.S mapped the low 4 GiB), user-accessible. */
static void paging_map_high(void)
{
	uint64_t limit = boot_has_1g ? 512 : 4 + HIGH_PDS; /* GiB */
	uint64_t gibs = MIN(ALIGN_UP(boot.ram_top, GIB) >> 30, limit);
	uint64_t flags = PTE_P | PTE_RW | PTE_US;

	for (uint64_t g = 4; g < gibs; g++) {
		if (boot_has_1g) {
			boot_pdpt[g] = (g << 30) | flags | PTE_PS;
			continue;
		}
		for (uint64_t i = 0; i < 512; i++)
			high_pds[g - 4][i] = (g << 30) + (i << 21) + (flags | PTE_PS);
		boot_pdpt[g] = (uint64_t)high_pds[g - 4] | flags;
	}
	boot.mapped_top = MAX(gibs, 4) << 30;
	boot.pages_1g = boot_has_1g;
	ram_clip(boot.mapped_top);
	__asm__ volatile("mov %0, %%cr3" : : "r"((uint64_t)boot_pml4) : "memory");
}

static void idt_build(void)
{
	for (int v = 0; v < 256; v++) {
		uint64_t addr = (uint64_t)isr_stubs + 16 * v;

		idt[v].offset_lo = (uint16_t)addr;
		idt[v].selector = SEL_KCODE;
		idt[v].type = 0x8E; /* present, DPL 0, 64-bit interrupt gate */
		idt[v].offset_mid = (uint16_t)(addr >> 16);
		idt[v].offset_hi = (uint32_t)(addr >> 32);
	}
}

/* Loads the IDT and this vCPU's TSS (ring-0 stack for entries from ring 3). */
static void cpu_load_tables(uint32_t index)
{
	struct table_desc idtr = {sizeof(idt) - 1, (uint64_t)idt};
	uint64_t base = (uint64_t)&tss[index];
	uint64_t limit = sizeof(struct tss) - 1;
	uint32_t slot = SEL_TSS0 / 8 + 2 * index;

	tss[index].rsp[0] = (uint64_t)kstacks + (index + 1) * KSTACK_SIZE;
	tss[index].iomap_base = __builtin_offsetof(struct tss, iomap);
	tss[index].iomap[IOMAP_PORTS / 8] = 0xFF;
	gdt[slot] = (limit & 0xFFFF) | ((base & 0xFFFFFF) << 16) | (0x89ull << 40) |
		    ((limit >> 16) << 48) | (((base >> 24) & 0xFF) << 56);
	gdt[slot + 1] = base >> 32;
	__asm__ volatile("lidt %0" : : "m"(idtr));
	__asm__ volatile("ltr %w0" : : "r"(slot * 8));
}

/*
 * The BIOS (under QEMU) leaves the 8259 PIC routed to LINT0, where its timer would arrive
 * on exception vector 8: mask the PIC and LINT0. Only the boot vCPU has the PIC wired.
 */
static void apic_write(uint32_t reg, uint32_t value)
{
	if (boot.x2apic)
		wrmsr(reg, value);
	else
		*(volatile uint32_t *)XAPIC_REG(reg) = value;
}

static uint32_t apic_read_id(void)
{
	if (boot.x2apic)
		return (uint32_t)rdmsr(X2APIC_ID);
	return *(volatile uint32_t *)XAPIC_REG(X2APIC_ID) >> 24;
}

static void apic_send_icr(uint32_t dest, uint32_t low)
{
	if (boot.x2apic) {
		wrmsr(X2APIC_ICR, ((uint64_t)dest << 32) | low);
		return;
	}
	*(volatile uint32_t *)XAPIC_REG(XAPIC_ICR_HIGH) = dest << 24;
	*(volatile uint32_t *)XAPIC_REG(X2APIC_ICR) = low;
}

static void legacy_irqs_mask(void)
{
	outb(0x21, 0xFF);
	outb(0xA1, 0xFF);
	apic_write(X2APIC_LVT_LINT0, LVT_MASKED);
}

static void apic_enable(uint32_t index)
{
	wrmsr(MSR_APIC_BASE,
	      rdmsr(MSR_APIC_BASE) | APIC_BASE_EN | (boot.x2apic ? APIC_BASE_EXTD : 0));
	apic_write(X2APIC_SVR, APIC_SVR_ENABLE | VMIG_VEC_SPURIOUS);
	if (index == 0)
		legacy_irqs_mask();
	cpus[index].index = index;
	cpus[index].apic_id = apic_read_id();
}

static void timer_set(int on)
{
	if (!on) {
		apic_write(X2APIC_LVT_TIMER, LVT_MASKED);
		apic_write(X2APIC_TIMER_INIT, 0);
		return;
	}
	apic_write(X2APIC_TIMER_DIV, TIMER_DIV_1);
	apic_write(X2APIC_LVT_TIMER, LVT_PERIODIC | VMIG_VEC_TIMER);
	apic_write(X2APIC_TIMER_INIT, APIC_TIMER_HZ / TIMER_HZ);
}

static void send_ipi(uint32_t dest, uint32_t vector)
{
	if (dest == SYS_IPI_SELF)
		apic_send_icr(0, ICR_SELF | (vector & 0xFF));
	else
		apic_send_icr(dest, vector & 0xFF);
}

static void short_delay(void)
{
	for (volatile int i = 0; i < 200; i++)
		cpu_relax();
}

/* Wakes every other vCPU at the trampoline. How many there are is learned in ring 3. */
static void smp_start_aps(void)
{
	memcpy((void *)TRAMPOLINE_ADDR, trampoline_start, trampoline_end - trampoline_start);
	apic_send_icr(0, ICR_ALL_BUT_SELF | ICR_ASSERT | ICR_INIT);
	short_delay();
	apic_send_icr(0, ICR_ALL_BUT_SELF | ICR_STARTUP | (TRAMPOLINE_ADDR >> 12));
	short_delay();
	apic_send_icr(0, ICR_ALL_BUT_SELF | ICR_STARTUP | (TRAMPOLINE_ADDR >> 12));
}

static void __attribute__((noreturn)) cpu_enter_user(uint32_t index)
{
	cpus[index].online = 1;
	__atomic_fetch_add(&cpus_online, 1, __ATOMIC_SEQ_CST);
	/* rsp = 8 mod 16, as if user_main had been called */
	enter_user((uint64_t)user_main, (uint64_t)ustacks[index] + USTACK_SIZE - 8, index);
}

static void check_cpu_features(void)
{
	uint32_t r[4];

	cpuid(1, 0, r);
	boot.x2apic = (r[2] >> 21) & 1;
	if (!(r[3] & (1u << 9)))
		kernel_panic("no local APIC", r[3], 0);
}

void kernel_main_bsp(uint32_t magic, uint32_t info)
{
	if (magic != MB_LOADER_MAGIC)
		kernel_panic("not started by a Multiboot loader", magic, info);
	check_cpu_features();
	multiboot_read(info);
	boot.image_start = (uint64_t)__image_start;
	boot.image_end = (uint64_t)__image_end;
	paging_map_high();
	idt_build();
	cpu_load_tables(0);
	apic_enable(0);
	boot.bsp_apic_id = cpus[0].apic_id;
	smp_start_aps();
	timer_set(1);
	cpu_enter_user(0);
}

void kernel_main_ap(uint32_t index)
{
	if (index >= VMIG_MAX_VCPUS)
		halt_forever();
	cpu_load_tables(index);
	apic_enable(index);
	timer_set(1);
	cpu_enter_user(index);
}

static void report_fault(const struct frame *f, uint32_t cpu)
{
	struct line l = {.len = 0};
	uint64_t cr2;

	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	console_break_lock();
	line_str(&l, "FAULT");
	line_kv(&l, "cpu", cpu);
	line_kv(&l, "vector", f->vector);
	line_kx(&l, "error", f->error);
	line_kx(&l, "rip", f->rip);
	line_kx(&l, "rsp", f->rsp);
	line_kx(&l, "cr2", cr2);
	line_kx(&l, "cs", f->cs);
	line_kx(&l, "rflags", f->rflags);
	line_flush(&l);
	vm_exit(VMIG_GUEST_EXIT_FAULT);
}

static void handle_syscall(struct frame *f, uint32_t cpu)
{
	switch (f->rax) {
	case SYS_HALT:
		/* The waking interrupt runs nested on this stack, then we return to ring 3. */
		__asm__ volatile("sti; hlt; cli" ::: "memory");
		break;
	case SYS_SEND_IPI:
		send_ipi((uint32_t)f->rdi, (uint32_t)f->rsi);
		break;
	case SYS_TIMER:
		timer_set(f->rdi != 0);
		break;
	case SYS_QUIESCE:
		/* Count ourselves only once the timer is off: nothing of ours writes RAM after. */
		timer_set(0);
		if (f->rsi)
			__atomic_fetch_add((uint32_t *)f->rsi, 1, __ATOMIC_SEQ_CST);
		if (f->rdi)
			vm_mark((uint32_t)f->rdi);
		halt_forever();
	default:
		report_fault(f, cpu);
	}
	f->rip += 2;
}

void isr_dispatch(struct frame *f)
{
	uint32_t cpu = this_cpu();

	if (f->vector == VEC_UD && (f->cs & 3) && *(uint16_t *)f->rip == UD2_OPCODE) {
		handle_syscall(f, cpu);
		return;
	}
	if (f->vector < 32)
		report_fault(f, cpu);
	cpus[cpu].irq_count[f->vector]++;
	if (f->vector == VMIG_VEC_TIMER)
		cpus[cpu].ticks++;
	if (f->vector != VMIG_VEC_SPURIOUS)
		apic_write(X2APIC_EOI, 0);
}
