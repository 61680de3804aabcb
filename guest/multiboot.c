// SPDX-License-Identifier: Apache-2.0
// Reads the Multiboot v1 information: the command line and the memory map. Everything is
// copied into `boot` at once, because the loader may have put the information in RAM that
// the workloads later overwrite.
#include <stdint.h>
#include "console.h"
#include "kernel.h"
#include "lib.h"

#define MB_INFO_CMDLINE (1u << 2)
#define MB_INFO_MMAP	(1u << 6)
#define MB_MMAP_RAM	1

struct mb_info {
	uint32_t flags;
	uint32_t mem_lower, mem_upper;
	uint32_t boot_device;
	uint32_t cmdline;
	uint32_t mods_count, mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length, mmap_addr;
} __attribute__((packed));

struct mb_mmap_entry {
	uint32_t size; /* of the rest of the entry */
	uint64_t base, length;
	uint32_t type;
} __attribute__((packed));

static void copy_cmdline(const struct mb_info *mbi)
{
	const char *src;
	unsigned i;

	if (!(mbi->flags & MB_INFO_CMDLINE))
		return;
	src = (const char *)(uintptr_t)mbi->cmdline;
	for (i = 0; i < CMDLINE_MAX - 1 && src[i]; i++)
		boot.cmdline[i] = src[i];
	boot.cmdline[i] = 0;
}

/* Keeps the list sorted by start; the map is small, so insertion is fine. */
static void add_ram(uint64_t start, uint64_t end)
{
	uint32_t i;

	/* Below 1 MiB: firmware areas, the trampoline; the workloads never use it. */
	start = ALIGN_UP(MAX(start, MIB), PAGE_SIZE);
	end = ALIGN_DOWN(end, PAGE_SIZE);
	if (start < VMIG_MMIO_HOLE_START && end > VMIG_MMIO_HOLE_END) {
		/* A range across the whole hole: keep both sides, never the hole itself. */
		add_ram(start, VMIG_MMIO_HOLE_START);
		start = VMIG_MMIO_HOLE_END;
	}
	if (start >= VMIG_MMIO_HOLE_START && start < VMIG_MMIO_HOLE_END)
		start = VMIG_MMIO_HOLE_END;
	if (end > VMIG_MMIO_HOLE_START && end <= VMIG_MMIO_HOLE_END)
		end = VMIG_MMIO_HOLE_START;
	if (start >= end || boot.nr_ram == MAX_RAM_RANGES)
		return;
	for (i = boot.nr_ram; i > 0 && boot.ram[i - 1].start > start; i--)
		boot.ram[i] = boot.ram[i - 1];
	boot.ram[i].start = start;
	boot.ram[i].end = end;
	boot.nr_ram++;
	boot.ram_top = MAX(boot.ram_top, end);
}

static void read_mmap(const struct mb_info *mbi)
{
	uint64_t p = mbi->mmap_addr, end = p + mbi->mmap_length;

	while (p + sizeof(struct mb_mmap_entry) <= end) {
		const struct mb_mmap_entry *e = (const void *)(uintptr_t)p;

		if (e->type == MB_MMAP_RAM)
			add_ram(e->base, e->base + e->length);
		p += e->size + 4;
	}
}

void multiboot_read(uint32_t info)
{
	const struct mb_info *mbi = (const void *)(uintptr_t)info;

	copy_cmdline(mbi);
	if (!(mbi->flags & MB_INFO_MMAP))
		kernel_panic("no Multiboot memory map", mbi->flags, 0);
	read_mmap(mbi);
	if (!boot.nr_ram)
		kernel_panic("no usable RAM above 1 MiB", 0, 0);
}
