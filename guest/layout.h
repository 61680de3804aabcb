/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Constants shared by the guest's assembly and C: selectors, page-table bits, control
 * register bits, stack sizes and fixed low-memory addresses. Plain #defines only, so
 * boot.S can include it.
 */
#ifndef GUEST_LAYOUT_H
#define GUEST_LAYOUT_H

#include "vmig/guest_abi.h"

/* Where the image is linked (and loaded: the Multiboot header carries the addresses). */
#define IMAGE_BASE 0x100000
/* AP trampoline page (SIPI vector = page number); below 1 MiB, above the BIOS data. */
#define TRAMPOLINE_ADDR 0x8000

/* GDT selectors; boot.S lays the GDT out in this order. */
#define SEL_KCODE   0x08
#define SEL_KDATA   0x10
#define SEL_UDATA   (0x18 | 3)
#define SEL_UCODE   (0x20 | 3)
#define SEL_KCODE32 0x28
#define SEL_TSS0    0x30
#define GDT_ENTRIES (6 + 2 * VMIG_MAX_VCPUS)

/* Page-table entry bits. */
#define PTE_P  0x1
#define PTE_RW 0x2
#define PTE_US 0x4
#define PTE_UC 0x18 /* PWT | PCD */
#define PTE_PS 0x80

#define CR0_PE 0x1
#define CR0_MP 0x2
#define CR0_EM 0x4
#define CR0_WP 0x10000
#define CR0_PG 0x80000000

#define CR4_PAE	       0x20
#define CR4_OSFXSR     0x200
#define CR4_OSXMMEXCPT 0x400

#define MSR_EFER 0xC0000080
#define EFER_LME 0x100

#define RFLAGS_IF    0x200
#define RFLAGS_IOPL3 0x3000

/* Ring-0 stacks per CPU (interrupts, the #UD system call) and the boot stack. */
#define BOOT_STACK_SIZE 0x4000
#define KSTACK_SIZE	0x4000
/* Ring-3 stack per CPU. */
#define USTACK_SIZE 0x10000

#endif
