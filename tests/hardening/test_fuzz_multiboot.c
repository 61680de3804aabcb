// SPDX-License-Identifier: Apache-2.0
/*
 * A hostile --kernel image: ELF32, ELF64 and address-field (a.out kludge) Multiboot images
 * with mutated headers (segments out of range, over the MMIO hole, wrapping, huge, beyond
 * the file). The loader must refuse (-ENOEXEC/-EFBIG) or load, and in both cases write
 * guest RAM only where it says it did: the image range and the info structure it reports.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "fuzz.h"
#include "vmm/guest_mem.h"
#include "vmm/multiboot.h"

#define RAM_SIZE (8ull << 20)
#define IMG_CAP	 0x6000
#define FILL	 0x5A
#define INFO_MAX (116 + 4 * 24 + 64) /* info, memory map, our command line */

static void mb_header(uint8_t *at, uint32_t flags, const uint32_t addr[5])
{
	uint32_t h[8] = {MULTIBOOT_HEADER_MAGIC, flags, 0};

	if (addr)
		memcpy(&h[3], addr, 5 * sizeof(uint32_t));
	h[2] = -(h[0] + h[1]);
	memcpy(at, h, sizeof(h));
}

static size_t make_elf32(uint8_t *img)
{
	Elf32_Ehdr eh = {.e_type = ET_EXEC,
			 .e_machine = EM_386,
			 .e_version = EV_CURRENT,
			 .e_entry = 0x100000,
			 .e_phoff = sizeof(Elf32_Ehdr),
			 .e_ehsize = sizeof(Elf32_Ehdr),
			 .e_phentsize = sizeof(Elf32_Phdr),
			 .e_phnum = 2};
	Elf32_Phdr ph[2] = {{.p_type = PT_LOAD,
			     .p_offset = 0x1000,
			     .p_paddr = 0x100000,
			     .p_filesz = 0x1000,
			     .p_memsz = 0x1000},
			    {.p_type = PT_LOAD,
			     .p_offset = 0x2000,
			     .p_paddr = 0x200000,
			     .p_filesz = 0x800,
			     .p_memsz = 0x3000}};

	memset(img, 0xC3, 0x3000);
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS32;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	memcpy(img, &eh, sizeof(eh));
	memcpy(img + sizeof(eh), ph, sizeof(ph));
	mb_header(img + 0x100, 0, NULL);
	return 0x3000;
}

static size_t make_elf64(uint8_t *img)
{
	Elf64_Ehdr eh = {.e_type = ET_EXEC,
			 .e_machine = EM_X86_64,
			 .e_version = EV_CURRENT,
			 .e_entry = 0x100000,
			 .e_phoff = sizeof(Elf64_Ehdr),
			 .e_ehsize = sizeof(Elf64_Ehdr),
			 .e_phentsize = sizeof(Elf64_Phdr),
			 .e_phnum = 2};
	Elf64_Phdr ph[2] = {{.p_type = PT_LOAD,
			     .p_offset = 0x1000,
			     .p_paddr = 0x100000,
			     .p_filesz = 0x1000,
			     .p_memsz = 0x2000},
			    {.p_type = PT_LOAD,
			     .p_offset = 0x2000,
			     .p_paddr = 0x300000,
			     .p_filesz = 0x1000,
			     .p_memsz = 0x1000}};

	memset(img, 0x90, 0x3000);
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	memcpy(img, &eh, sizeof(eh));
	memcpy(img + sizeof(eh), ph, sizeof(ph));
	mb_header(img + 0x200, 0, NULL);
	return 0x3000;
}

static size_t make_flat(uint8_t *img)
{
	const uint32_t addr[5] = {0x100040, 0x100000, 0x102000, 0x104000, 0x100080};

	memset(img, 0xCC, 0x2000);
	mb_header(img + 0x40, 1u << 16, addr);
	return 0x2000;
}

/* Mostly the headers: that is where a loader goes wrong. */
static void mutate_image(struct fuzz *z, uint8_t *img, size_t *len)
{
	if (fuzz_chance(z, 4)) {
		fuzz_mutate(z, img, len, IMG_CAP);
		return;
	}
	size_t head = MIN(*len, (size_t)0x300);

	fuzz_mutate(z, img, &head, head);
	if (head < MIN(*len, (size_t)0x300))
		*len = head; /* a truncation of the header part truncates the file */
}

static bool in_written(uint64_t a, uint64_t lo, uint64_t hi, uint64_t info)
{
	return (a >= lo && a < hi) || (info && a >= info && a < info + INFO_MAX);
}

/* Every byte outside [lo, hi) and the info area still holds the fill pattern. */
static void expect_untouched(struct guest_mem *gm, uint64_t lo, uint64_t hi, uint64_t info)
{
	static uint8_t fill[4096];
	const uint8_t *ram = guest_mem_ptr(gm, 0, RAM_SIZE);

	memset(fill, FILL, sizeof(fill));
	for (uint64_t pg = 0; pg < RAM_SIZE; pg += sizeof(fill)) {
		if (!memcmp(ram + pg, fill, sizeof(fill)))
			continue;
		for (uint64_t a = pg; a < pg + sizeof(fill); a++)
			if (ram[a] != FILL && !in_written(a, lo, hi, info))
				fail_msg("loader wrote %#llx outside [%#llx, %#llx) and info %#llx",
					 (unsigned long long)a, (unsigned long long)lo,
					 (unsigned long long)hi, (unsigned long long)info);
	}
}

/* The loader explains each refusal on stderr; thousands of them here. */
static int quiet_load(struct guest_mem *gm, const uint8_t *img, size_t len,
		      struct multiboot_boot *b)
{
	int saved = dup(2), null = open("/dev/null", O_WRONLY);
	int rc;

	fflush(stderr);
	dup2(null, 2);
	rc = multiboot_load(gm, img, len, "fuzz", b);
	dup2(saved, 2);
	close(saved);
	close(null);
	return rc;
}

static void test_fuzz_multiboot(void **state)
{
	static size_t (*const makers[])(uint8_t *) = {make_elf32, make_elf64, make_flat};
	uint8_t *good = malloc(IMG_CAP), *img = malloc(IMG_CAP);
	unsigned loaded = 0, refused = 0;
	struct guest_mem *gm;
	struct fuzz z;

	assert_int_equal(guest_mem_create(RAM_SIZE, &gm), 0);
	memset(guest_mem_ptr(gm, 0, RAM_SIZE), FILL, RAM_SIZE);
	fuzz_begin(&z, "multiboot", 2000);
	while (fuzz_next(&z, 100)) {
		struct multiboot_boot b = {0};
		size_t len = makers[z.iter % 3](good);
		int rc;

		memcpy(img, good, len);
		if (z.iter > 3)
			mutate_image(&z, img, &len);
		rc = quiet_load(gm, img, len, &b);
		if (z.iter <= 3)
			assert_int_equal(rc, 0); /* the unmutated images load */
		if (rc == 0) {
			loaded++;
			assert_true(b.image_lo <= b.image_hi && b.image_hi <= RAM_SIZE);
			assert_true(b.info >= b.image_hi && b.info + INFO_MAX <= RAM_SIZE);
			expect_untouched(gm, b.image_lo, b.image_hi, b.info);
		} else {
			refused++;
			assert_true(rc == -ENOEXEC || rc == -EFBIG);
		}
		/* A refused image may have placed segments before the bad one: refill. */
		memset(guest_mem_ptr(gm, 0, RAM_SIZE), FILL, RAM_SIZE);
	}
	fuzz_end(&z);
	printf("loaded %u refused %u\n", loaded, refused);
	assert_true(loaded > 3 && refused > 0);
	guest_mem_destroy(gm);
	free(good);
	free(img);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fuzz_multiboot),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
