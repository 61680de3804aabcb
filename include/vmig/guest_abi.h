/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The contract between the guest firmware (guest/) and the VMM (src/vmm): the machine the
 * guest sees. Both sides include this header; nothing else crosses that line except RAM,
 * MMIO, port I/O and interrupts.
 *
 * Boot: Multiboot v1. The VMM loads the image as a Multiboot loader would and enters it in
 * 32-bit protected mode, paging off, EAX = 0x2BADB002, EBX = the physical address of a
 * Multiboot information structure carrying the command line (flag 2) and a memory map
 * (flag 6). The same image boots under qemu-system-x86_64 -kernel.
 */
#ifndef VMIG_GUEST_ABI_H
#define VMIG_GUEST_ABI_H

/* Port I/O ------------------------------------------------------------------------------ */

/* Byte writes print a console character (the Bochs/QEMU "debugcon" port). */
#define VMIG_PORT_CONSOLE 0xE9
/*
 * A 32-bit write ends the VM; the value is the exit status (0 = success). Under QEMU use
 * -device isa-debug-exit,iobase=0xf4,iosize=4, which exits with (value << 1) | 1.
 */
#define VMIG_PORT_EXIT 0xF4
/*
 * A 32-bit write records a checkpoint value that the VMM can wait for (tests and
 * benchmarks: "the guest has finished writing its pages"). The guest carries on; it is
 * not an exit. Ignored under QEMU.
 */
#define VMIG_PORT_MARK 0xF8

/* Physical memory map ---------------------------------------------------------------------- */

/* RAM runs from 0 up to the hole, then continues at 4 GiB. */
#define VMIG_MMIO_HOLE_START 0xC0000000ull
#define VMIG_MMIO_HOLE_END   0x100000000ull

/* Where the image is loaded and the Multiboot info is placed are the loader's choice; the
 * guest must not assume more than the Multiboot spec says. */

/* Devices inside the hole. */
#define VMIG_VSMMU_BASE	     0xD0000000ull /* vSMMUv3: page 0 and page 1, 2 x 64 KiB */
#define VMIG_VSMMU_SIZE	     0x20000ull
#define VMIG_SDMA_BAR0	     0xD0100000ull /* sdma BAR0 registers */
#define VMIG_SDMA_BAR0_SIZE  0x1000ull
#define VMIG_SDMA_SID	     0x10u /* the device's (virtual) StreamID */
#define VMIG_IOAPIC_BASE     0xFEC00000ull
#define VMIG_LAPIC_BASE	     0xFEE00000ull /* x2APIC mode is used; MSI address window */
#define VMIG_MSI_WINDOW	     0xFEE00000ull
#define VMIG_MSI_WINDOW_SIZE 0x100000ull

/* Interrupt vectors the firmware uses (IDT slots). */
#define VMIG_VEC_TIMER	     0x20
#define VMIG_VEC_SDMA	     0x30 /* sdma completion MSI */
#define VMIG_VEC_SMMU_EVTQ   0x31
#define VMIG_VEC_SMMU_GERROR 0x32
#define VMIG_VEC_SMMU_SYNC   0x33
#define VMIG_VEC_SPURIOUS    0xFF
/* The guest's own inter-processor test interrupts (workload=ipi): self and cross-vCPU. */
#define VMIG_VEC_TEST_SELF  0x40
#define VMIG_VEC_TEST_CROSS 0x41

/* Guest firmware conventions (docs/guest.md) ----------------------------------------------- */

/* Exit statuses the firmware writes to VMIG_PORT_EXIT. */
#define VMIG_GUEST_EXIT_OK	0 /* every workload step passed */
#define VMIG_GUEST_EXIT_FAILED	1 /* a check failed: verify mismatches, missing interrupts */
#define VMIG_GUEST_EXIT_CMDLINE 2 /* bad command line */
#define VMIG_GUEST_EXIT_FAULT	3 /* CPU exception, missing vCPUs or features, bad memory map */

/* Values the firmware writes to VMIG_PORT_MARK. */
#define VMIG_MARK_BOOTED   0x0B00 /* all vCPUs online, the first workload step starts */
#define VMIG_MARK_DEVICES  0x0C00 /* vSMMU and sdma drivers up, a device workload starts */
#define VMIG_MARK_DIRTY	   0x0D00 /* working set initialised, dirtying starts */
#define VMIG_MARK_TOUCHED  0x0E00 /* touch done; every vCPU is halted for good, no more writes */
#define VMIG_MARK_IRQ_WAIT 0x0F00 /* irqwait started: inject the interrupts now */

/* Limits. */
#define VMIG_MAX_VCPUS 64

#endif
