// SPDX-License-Identifier: Apache-2.0
#include "vmm/multiboot.h"

#include <elf.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "vmig/guest_abi.h"
#include "vmm/guest_mem.h"

#define MB_SEARCH_BYTES 8192u
#define MB_FLAG_ADDRESS (1u << 16)

struct mb_header {
	uint32_t magic, flags, checksum;
	uint32_t header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr;
};

/* Finds the header in the first 8 KiB, 4-byte aligned. Returns its file offset or -1. */
static long mb_find_header(const uint8_t *img, size_t size, struct mb_header *h)
{
	for (size_t off = 0; off + 12 <= MIN(size, (size_t)MB_SEARCH_BYTES); off += 4) {
		uint32_t w[3];
		memcpy(w, img + off, sizeof(w));
		if (w[0] != MULTIBOOT_HEADER_MAGIC || (uint32_t)(w[0] + w[1] + w[2]) != 0)
			continue;
		memset(h, 0, sizeof(*h));
		memcpy(h, img + off, MIN(sizeof(*h), size - off));
		return (long)off;
	}
	return -1;
}

/* Copies file bytes and zeroes the rest of a segment, refusing anything outside low RAM. */
static int mb_place(struct guest_mem *gm, uint64_t gpa, const uint8_t *src, uint64_t filesz,
		    uint64_t memsz, struct multiboot_boot *b)
{
	if (memsz < filesz || gpa + memsz < gpa || gpa + memsz > VMIG_MMIO_HOLE_START ||
	    !guest_mem_ptr(gm, gpa, memsz ? memsz : 1))
		return -EFBIG;
	uint8_t *dst = guest_mem_ptr(gm, gpa, memsz ? memsz : 1);
	memcpy(dst, src, filesz);
	memset(dst + filesz, 0, memsz - filesz);
	guest_mem_mark_dirty(gm, gpa, memsz);
	b->image_lo = MIN(b->image_lo, gpa);
	b->image_hi = MAX(b->image_hi, gpa + memsz);
	return 0;
}

static int mb_load_aout(struct guest_mem *gm, const uint8_t *img, size_t size, long hoff,
			const struct mb_header *h, struct multiboot_boot *b)
{
	if (h->header_addr < h->load_addr || h->header_addr - h->load_addr > (uint32_t)hoff)
		return -ENOEXEC;
	size_t foff = (size_t)hoff - (h->header_addr - h->load_addr);
	uint64_t filesz =
	    h->load_end_addr ? (uint64_t)h->load_end_addr - h->load_addr : (uint64_t)(size - foff);
	if (h->load_end_addr && h->load_end_addr < h->load_addr)
		return -ENOEXEC;
	if (filesz > size - foff)
		return -ENOEXEC;
	uint64_t memsz = filesz;
	if (h->bss_end_addr && h->bss_end_addr > h->load_addr + filesz)
		memsz = h->bss_end_addr - h->load_addr;
	b->entry = h->entry_addr;
	return mb_place(gm, h->load_addr, img + foff, filesz, memsz, b);
}

/* One program header, normalised from ELF32 or ELF64. */
struct mb_phdr {
	uint32_t type;
	uint64_t offset, paddr, filesz, memsz;
};

static bool mb_elf_phdr(const uint8_t *img, size_t size, bool is64, uint64_t phoff, unsigned i,
			struct mb_phdr *p)
{
	size_t esz = is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
	uint64_t at = phoff + (uint64_t)i * esz;

	if (at > size || size - at < esz)
		return false;
	if (is64) {
		Elf64_Phdr ph;
		memcpy(&ph, img + at, sizeof(ph));
		*p = (struct mb_phdr){ph.p_type, ph.p_offset, ph.p_paddr, ph.p_filesz, ph.p_memsz};
	} else {
		Elf32_Phdr ph;
		memcpy(&ph, img + at, sizeof(ph));
		*p = (struct mb_phdr){ph.p_type, ph.p_offset, ph.p_paddr, ph.p_filesz, ph.p_memsz};
	}
	return true;
}

static int mb_load_elf(struct guest_mem *gm, const uint8_t *img, size_t size,
		       struct multiboot_boot *b)
{
	if (size < sizeof(Elf32_Ehdr) || memcmp(img, ELFMAG, SELFMAG) != 0)
		return -ENOEXEC;
	bool is64 = img[EI_CLASS] == ELFCLASS64;
	uint64_t phoff, entry;
	unsigned phnum;
	if (is64) {
		Elf64_Ehdr eh;
		if (size < sizeof(eh))
			return -ENOEXEC;
		memcpy(&eh, img, sizeof(eh));
		phoff = eh.e_phoff, phnum = eh.e_phnum, entry = eh.e_entry;
	} else {
		Elf32_Ehdr eh;
		memcpy(&eh, img, sizeof(eh));
		phoff = eh.e_phoff, phnum = eh.e_phnum, entry = eh.e_entry;
	}
	if (entry >> 32)
		return -ENOEXEC;
	b->entry = (uint32_t)entry;
	int loaded = 0;
	for (unsigned i = 0; i < phnum; i++) {
		struct mb_phdr p;
		if (!mb_elf_phdr(img, size, is64, phoff, i, &p))
			return -ENOEXEC;
		if (p.type != PT_LOAD || p.memsz == 0)
			continue;
		if (p.offset > size || p.filesz > size - p.offset)
			return -ENOEXEC;
		int ret = mb_place(gm, p.paddr, img + p.offset, p.filesz, p.memsz, b);
		if (ret < 0)
			return ret;
		loaded++;
	}
	return loaded ? 0 : -ENOEXEC;
}

struct mb_mmap_entry {
	uint32_t size;
	uint64_t addr, len;
	uint32_t type;
} __attribute__((packed));

static unsigned mb_build_mmap(const struct guest_mem *gm, struct mb_mmap_entry *e)
{
	uint64_t low = gm->regions[0].size;
	unsigned n = 0;

	e[n++] = (struct mb_mmap_entry){20, 0, MIN(low, 0x9FC00ull), 1};
	if (low > 0x9FC00ull)
		e[n++] = (struct mb_mmap_entry){20, 0x9FC00, MIN(low, 0x100000ull) - 0x9FC00, 2};
	if (low > 0x100000ull)
		e[n++] = (struct mb_mmap_entry){20, 0x100000, low - 0x100000, 1};
	if (gm->nr_regions > 1)
		e[n++] = (struct mb_mmap_entry){20, gm->regions[1].gpa, gm->regions[1].size, 1};
	return n;
}

/* The info structure (116 bytes), then the memory map, then the command line. */
static int mb_write_info(struct guest_mem *gm, const char *cmdline, struct multiboot_boot *b)
{
	uint32_t info[29] = {0};
	struct mb_mmap_entry mmap[4];
	unsigned n = mb_build_mmap(gm, mmap);
	size_t cmdlen = strlen(cmdline) + 1;
	uint64_t at = ALIGN_UP(b->image_hi, GUEST_PAGE_SIZE);
	uint64_t mmap_at = at + sizeof(info), cmd_at = mmap_at + n * sizeof(mmap[0]);
	uint64_t low = gm->regions[0].size;

	if (cmdlen > MULTIBOOT_CMDLINE_MAX || cmd_at + cmdlen > low)
		return -EFBIG;
	info[0] = (1u << 0) | (1u << 2) | (1u << 6); /* mem_*, cmdline, mmap */
	info[1] = 640;
	info[2] = (uint32_t)(low > 0x100000ull ? (low - 0x100000ull) / 1024 : 0);
	info[4] = (uint32_t)cmd_at;
	info[11] = n * (uint32_t)sizeof(mmap[0]);
	info[12] = (uint32_t)mmap_at;
	if (guest_mem_write(gm, at, info, sizeof(info)) < 0 ||
	    guest_mem_write(gm, mmap_at, mmap, n * sizeof(mmap[0])) < 0 ||
	    guest_mem_write(gm, cmd_at, cmdline, cmdlen) < 0)
		return -EFBIG;
	b->info = (uint32_t)at;
	return 0;
}

int multiboot_load(struct guest_mem *gm, const void *image, size_t size, const char *cmdline,
		   struct multiboot_boot *out)
{
	struct mb_header h;
	struct multiboot_boot b = {.image_lo = UINT64_MAX, .image_hi = 0};
	long hoff = mb_find_header(image, size, &h);
	int ret;

	if (hoff < 0) {
		log_error("kernel image: no Multiboot header in its first 8 KiB");
		return -ENOEXEC;
	}
	if (h.flags & MB_FLAG_ADDRESS)
		ret = mb_load_aout(gm, image, size, hoff, &h, &b);
	else
		ret = mb_load_elf(gm, image, size, &b);
	if (ret == 0)
		ret = mb_write_info(gm, cmdline ? cmdline : "", &b);
	if (ret == -ENOEXEC)
		log_error("kernel image: not a loadable Multiboot image");
	else if (ret == -EFBIG)
		log_error("kernel image: does not fit in guest RAM below the MMIO hole");
	if (ret == 0)
		*out = b;
	return ret;
}
