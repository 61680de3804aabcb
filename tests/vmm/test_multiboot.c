// SPDX-License-Identifier: Apache-2.0
/* The Multiboot loader, without KVM: images into guest_mem, the info structure it writes. */
#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/util.h"
#include "vmig/guest_abi.h"
#include "vmm/guest_mem.h"
#include "vmm/multiboot.h"

/* A flat image: header with address fields at offset 0x40, code after it. */
static size_t make_flat(uint8_t *img, uint32_t load, uint32_t bss_end)
{
	uint32_t h[8] = {
	    MULTIBOOT_HEADER_MAGIC, 1u << 16, 0, load + 0x40, load, 0, bss_end, load + 0x80};
	h[2] = -(h[0] + h[1]);
	memset(img, 0xCC, 0x1000);
	memcpy(img + 0x40, h, sizeof(h));
	return 0x1000;
}

static uint32_t rd32(struct guest_mem *gm, uint64_t gpa)
{
	uint32_t v;
	assert_int_equal(guest_mem_read(gm, gpa, &v, 4), 0);
	return v;
}

static void test_flat_image_and_info(void **state)
{
	struct guest_mem *gm;
	struct multiboot_boot b;
	uint8_t img[0x1000];
	size_t n = make_flat(img, 0x100000, 0x103000);

	assert_int_equal(guest_mem_create(VMIG_MMIO_HOLE_START + 1 * GiB, &gm), 0);
	memset(guest_mem_ptr(gm, 0x101000, 0x2000), 0x77, 0x2000); /* bss must get zeroed */
	assert_int_equal(multiboot_load(gm, img, n, "workload=idle seed=7", &b), 0);
	assert_int_equal(b.entry, 0x100080);
	assert_int_equal(b.image_lo, 0x100000);
	assert_int_equal(b.image_hi, 0x103000);
	assert_int_equal(b.info, 0x103000);
	assert_int_equal(*(uint8_t *)guest_mem_ptr(gm, 0x100000, 1), 0xCC);
	assert_int_equal(*(uint8_t *)guest_mem_ptr(gm, 0x102FFF, 1), 0);
	/* Flags: memory, cmdline, mmap. */
	assert_int_equal(rd32(gm, b.info) & 0x45, 0x45);
	char cmd[64];
	assert_int_equal(guest_mem_read(gm, rd32(gm, b.info + 16), cmd, 21), 0);
	assert_string_equal(cmd, "workload=idle seed=7");
	/* The memory map: the last entry is the RAM above 4 GiB. */
	uint32_t mlen = rd32(gm, b.info + 44), maddr = rd32(gm, b.info + 48);
	assert_int_equal(mlen % 24, 0);
	uint64_t base, len;
	uint32_t type;
	assert_int_equal(guest_mem_read(gm, maddr + mlen - 20, &base, 8), 0);
	assert_int_equal(guest_mem_read(gm, maddr + mlen - 12, &len, 8), 0);
	assert_int_equal(guest_mem_read(gm, maddr + mlen - 4, &type, 4), 0);
	assert_int_equal(base, VMIG_MMIO_HOLE_END);
	assert_int_equal(len, 1 * GiB);
	assert_int_equal(type, 1);
	guest_mem_destroy(gm);
}

static void test_elf32_image(void **state)
{
	struct guest_mem *gm;
	struct multiboot_boot b;
	uint8_t img[0x2000] = {0};
	Elf32_Ehdr *eh = (Elf32_Ehdr *)img;
	Elf32_Phdr *ph = (Elf32_Phdr *)(img + sizeof(*eh));
	uint32_t h[3] = {MULTIBOOT_HEADER_MAGIC, 0, -MULTIBOOT_HEADER_MAGIC};

	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS32;
	eh->e_machine = EM_386;
	eh->e_entry = 0x200010;
	eh->e_phoff = sizeof(*eh);
	eh->e_phnum = 1;
	eh->e_phentsize = sizeof(*ph);
	*ph = (Elf32_Phdr){.p_type = PT_LOAD,
			   .p_offset = 0x1000,
			   .p_paddr = 0x200000,
			   .p_filesz = 0x1000,
			   .p_memsz = 0x5000};
	memcpy(img + 0x100, h, sizeof(h));
	memset(img + 0x1000, 0x90, 0x1000);
	assert_int_equal(guest_mem_create(16 * MiB, &gm), 0);
	assert_int_equal(multiboot_load(gm, img, sizeof(img), "", &b), 0);
	assert_int_equal(b.entry, 0x200010);
	assert_int_equal(b.image_hi, 0x205000);
	assert_int_equal(*(uint8_t *)guest_mem_ptr(gm, 0x200FFF, 1), 0x90);
	/* Segment too big for RAM, then a segment reaching past the file. */
	ph->p_memsz = 64 * MiB;
	assert_int_equal(multiboot_load(gm, img, sizeof(img), "", &b), -EFBIG);
	ph->p_memsz = 0x5000;
	ph->p_filesz = 0x100000;
	assert_int_equal(multiboot_load(gm, img, sizeof(img), "", &b), -ENOEXEC);
	guest_mem_destroy(gm);
}

static void test_bad_images(void **state)
{
	struct guest_mem *gm;
	struct multiboot_boot b;
	uint8_t img[0x1000];

	assert_int_equal(guest_mem_create(16 * MiB, &gm), 0);
	memset(img, 0, sizeof(img));
	assert_int_equal(multiboot_load(gm, img, sizeof(img), "", &b), -ENOEXEC);
	make_flat(img, 0x100000, 0);
	img[0x48] ^= 1; /* checksum */
	assert_int_equal(multiboot_load(gm, img, sizeof(img), "", &b), -ENOEXEC);
	make_flat(img, 0x100000, 0);
	assert_int_equal(multiboot_load(gm, img, 0x20, "", &b), -ENOEXEC); /* header cut off */
	make_flat(img, 0xFF0000, 0x2000000);				   /* bss beyond RAM */
	assert_int_equal(multiboot_load(gm, img, sizeof(img), "", &b), -EFBIG);
	char *huge = malloc(MULTIBOOT_CMDLINE_MAX + 10);
	memset(huge, 'a', MULTIBOOT_CMDLINE_MAX + 9);
	huge[MULTIBOOT_CMDLINE_MAX + 9] = 0;
	make_flat(img, 0x100000, 0);
	assert_int_equal(multiboot_load(gm, img, sizeof(img), huge, &b), -EFBIG);
	free(huge);
	guest_mem_destroy(gm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_flat_image_and_info),
	    cmocka_unit_test(test_elf32_image),
	    cmocka_unit_test(test_bad_images),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
