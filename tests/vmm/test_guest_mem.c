// SPDX-License-Identifier: Apache-2.0
/* Guest RAM layout around the MMIO hole, the VMM write helper and its dirty bitmap. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "common/bitmap.h"
#include "common/util.h"
#include "vmig/guest_abi.h"
#include "vmm/guest_mem.h"

static void test_small_layout(void **state)
{
	struct guest_mem *gm;

	assert_int_equal(guest_mem_create(64 * MiB, &gm), 0);
	assert_int_equal(gm->nr_regions, 1);
	assert_int_equal(gm->gpa_pages, 64 * MiB / 4096);
	assert_non_null(guest_mem_ptr(gm, 64 * MiB - 8, 8));
	assert_null(guest_mem_ptr(gm, 64 * MiB - 8, 9));
	assert_false(guest_mem_is_ram(gm, 64 * MiB));
	guest_mem_destroy(gm);
}

static void test_hole_layout(void **state)
{
	struct guest_mem *gm;
	uint64_t size = VMIG_MMIO_HOLE_START + 2 * GiB; /* 5 GiB: 3 below, 2 above 4 GiB */

	assert_int_equal(guest_mem_create(size, &gm), 0);
	assert_int_equal(gm->nr_regions, 2);
	assert_int_equal(gm->regions[0].size, VMIG_MMIO_HOLE_START);
	assert_int_equal(gm->regions[1].gpa, VMIG_MMIO_HOLE_END);
	assert_int_equal(gm->regions[1].size, 2 * GiB);
	assert_int_equal(gm->regions[1].offset, VMIG_MMIO_HOLE_START);
	assert_int_equal(gm->gpa_pages, (VMIG_MMIO_HOLE_END + 2 * GiB) >> 12);
	assert_false(guest_mem_is_ram(gm, VMIG_MMIO_HOLE_START));
	assert_false(guest_mem_is_ram(gm, VMIG_VSMMU_BASE));
	assert_true(guest_mem_is_ram(gm, VMIG_MMIO_HOLE_END));
	/* GPA 4 GiB is memfd offset 3 GiB: the same byte through both views. */
	uint8_t *hi = guest_mem_ptr(gm, VMIG_MMIO_HOLE_END, 1);
	assert_ptr_equal(hi, gm->host + VMIG_MMIO_HOLE_START);
	guest_mem_destroy(gm);
}

static void test_write_marks_dirty(void **state)
{
	struct guest_mem *gm;
	uint64_t size = VMIG_MMIO_HOLE_START + 64 * MiB;
	char buf[6000];

	assert_int_equal(guest_mem_create(size, &gm), 0);
	memset(buf, 0xA5, sizeof(buf));
	/* Straddles pages 0x10 and 0x11 and part of 0x12. */
	assert_int_equal(guest_mem_write(gm, 0x10FF0, buf, 5000), 0);
	assert_int_equal(guest_mem_write(gm, VMIG_MMIO_HOLE_END + 0x2000, buf, 1), 0);
	/* Into the hole, or running off the end of low RAM into it: refused, nothing written. */
	assert_int_equal(guest_mem_write(gm, VMIG_MMIO_HOLE_START - 16, buf, 32), -EFAULT);
	assert_int_equal(guest_mem_write(gm, VMIG_VSMMU_BASE, buf, 4), -EFAULT);
	uint8_t *last = guest_mem_ptr(gm, VMIG_MMIO_HOLE_START - 16, 16);
	assert_int_equal(last[0], 0);

	uint64_t *map = bitmap_alloc(gm->gpa_pages);
	assert_int_equal(guest_mem_take_dirty(gm, map), 4);
	assert_true(bitmap_test(map, 0x10));
	assert_true(bitmap_test(map, 0x11));
	assert_true(bitmap_test(map, 0x12));
	assert_true(bitmap_test(map, (VMIG_MMIO_HOLE_END >> 12) + 2));
	assert_int_equal(bitmap_count(map, gm->gpa_pages), 4);
	/* Taken means cleared. */
	bitmap_zero(map, gm->gpa_pages);
	assert_int_equal(guest_mem_take_dirty(gm, map), 0);

	char back[5000];
	assert_int_equal(guest_mem_read(gm, 0x10FF0, back, sizeof(back)), 0);
	assert_memory_equal(back, buf, sizeof(back));
	assert_int_equal(guest_mem_read(gm, VMIG_MMIO_HOLE_START - 1, back, 2), -EFAULT);
	free(map);
	guest_mem_destroy(gm);
}

/* shmem counts allocated pages in st_blocks: none before, all of RAM after. */
static void test_prealloc_backs_all_ram(void **state)
{
	struct guest_mem *gm;
	struct stat st;

	assert_int_equal(guest_mem_create(8 << 20, &gm), 0);
	assert_int_equal(fstat(gm->fd, &st), 0);
	assert_int_equal(st.st_blocks, 0);
	assert_int_equal(guest_mem_prealloc(gm), 0);
	assert_int_equal(fstat(gm->fd, &st), 0);
	assert_int_equal((uint64_t)st.st_blocks * 512, 8 << 20);
	guest_mem_destroy(gm);
}

/* More than the host can back is refused before touching anything (not the OOM killer). */
static void test_prealloc_refuses_more_than_host(void **state)
{
	struct guest_mem *gm;
	struct stat st;

	assert_int_equal(guest_mem_create(1ull << 40, &gm), 0); /* sparse: costs nothing */
	assert_int_equal(guest_mem_prealloc(gm), -ENOMEM);
	assert_int_equal(fstat(gm->fd, &st), 0);
	assert_int_equal(st.st_blocks, 0);
	guest_mem_destroy(gm);
}

static void test_parse_size(void **state)
{
	uint64_t v;

	assert_int_equal(guest_mem_parse_size("512M", &v), 0);
	assert_int_equal(v, 512 * MiB);
	assert_int_equal(guest_mem_parse_size("6G", &v), 0);
	assert_int_equal(v, 6 * GiB);
	assert_int_equal(guest_mem_parse_size("4GiB", &v), 0);
	assert_int_equal(v, 4 * GiB);
	assert_int_equal(guest_mem_parse_size("65536k", &v), 0);
	assert_int_equal(guest_mem_parse_size("1048576", &v), 0);
	assert_int_equal(v, MiB);
	const char *bad[] = {
	    "0", "abc", "", "-1G", "12Q", "4097", "2T", "1G ", "M", "0M", "99999999999999999999G"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(guest_mem_parse_size(bad[i], &v), -EINVAL);
	assert_int_equal(guest_mem_create(0, (struct guest_mem **)&v), -EINVAL);
	assert_int_equal(guest_mem_create(4097, (struct guest_mem **)&v), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_small_layout),
	    cmocka_unit_test(test_hole_layout),
	    cmocka_unit_test(test_write_marks_dirty),
	    cmocka_unit_test(test_prealloc_backs_all_ram),
	    cmocka_unit_test(test_prealloc_refuses_more_than_host),
	    cmocka_unit_test(test_parse_size),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
