/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A Multiboot (v1) loader: what GRUB or QEMU -kernel would do with the image, minus the
 * BIOS. Accepts an ELF32/ELF64 image (PT_LOAD segments at their physical addresses) or one
 * whose header sets flag 16 (the address fields: load_addr, load_end_addr, bss_end_addr,
 * entry_addr; a flat binary). Writes the Multiboot information structure, the command line
 * and a memory map (RAM below the hole, the legacy VGA/BIOS range reserved, RAM from 4 GiB)
 * on the first page boundary after the image. The entry state is set by
 * vcpu_set_boot_state(entry, MULTIBOOT_BOOTLOADER_MAGIC, info).
 */
#ifndef VMIG_VMM_MULTIBOOT_H
#define VMIG_VMM_MULTIBOOT_H

#include <stddef.h>
#include <stdint.h>

struct guest_mem;

#define MULTIBOOT_HEADER_MAGIC	   0x1BADB002u
#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002u
#define MULTIBOOT_CMDLINE_MAX	   4096u

struct multiboot_boot {
	uint32_t entry;	   /* 32-bit entry point */
	uint32_t info;	   /* GPA of the Multiboot information structure (EBX) */
	uint64_t image_lo; /* GPA range the image occupies (incl. bss) */
	uint64_t image_hi;
};

/* -ENOEXEC: no valid Multiboot header/ELF; -EFBIG: the image does not fit in RAM. */
int multiboot_load(struct guest_mem *gm, const void *image, size_t size, const char *cmdline,
		   struct multiboot_boot *out);

#endif
