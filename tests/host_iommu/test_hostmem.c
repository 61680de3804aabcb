// SPDX-License-Identifier: Apache-2.0
/* Host physical memory (regions, page pool, doorbells) and the page-table builder. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "host/iommu/hostmem.h"
#include "host/iommu/pgtable.h"
#include "host/iommu/pgtable_build.h"
#include "arch/smmuv3.h"
#include "common/util.h"

static void test_pool(void **state)
{
	struct hostmem *hm = hostmem_create();
	uint64_t a, b, c;

	assert_int_equal(hostmem_pages_alloc(hm, 3, &a), -EINVAL);
	assert_int_equal(hostmem_pages_alloc(hm, 1024, &a), -EINVAL);
	assert_int_equal(hostmem_page_alloc(hm, &a), 0);
	assert_int_equal(hostmem_pages_alloc(hm, 16, &b), 0);
	assert_int_equal(b % (16 * 4096), 0);
	assert_int_equal(hostmem_pages_alloc(hm, 4, &c), 0);
	assert_int_equal(c % (4 * 4096), 0);
	assert_true(a != b && b != c && a != c);
	assert_int_equal(hostmem_pages_in_use(hm), 21);
	/* zeroed, and really memory */
	uint8_t *p = hostmem_ptr(hm, b, 16 * 4096);
	assert_non_null(p);
	for (unsigned i = 0; i < 16 * 4096; i += 512)
		assert_int_equal(p[i], 0);
	memset(p, 0xff, 4096);
	hostmem_pages_free(hm, b, 16);
	uint64_t again;
	assert_int_equal(hostmem_pages_alloc(hm, 16, &again), 0);
	assert_int_equal(again, b);
	assert_int_equal(*(uint8_t *)hostmem_ptr(hm, again, 1), 0); /* zeroed again */
	hostmem_pages_free(hm, again, 16);
	hostmem_page_free(hm, a);
	hostmem_pages_free(hm, c, 4);
	assert_int_equal(hostmem_pages_in_use(hm), 0);
	hostmem_destroy(hm);
}

static void test_regions(void **state)
{
	struct hostmem *hm = hostmem_create();
	int fd = memfd_create("ram", MFD_CLOEXEC);
	uint64_t pa;

	assert_int_equal(ftruncate(fd, 1 << 20), 0);
	uint8_t *vmm = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_int_equal(hostmem_add_ram(hm, 0x100000, 0x100000), 0);
	assert_int_equal(hostmem_add_ram(hm, 0x180000, 0x100000), -EEXIST);
	assert_int_equal(hostmem_add_ram(hm, 0x300100, 0x1000), -EINVAL);
	assert_int_equal(hostmem_map_file(hm, fd, 0x1000, 0x10000, &pa), 0);
	/* device DMA lands through the host's own mapping of the same memfd */
	vmm[0x1000 + 0x20] = 0x42;
	assert_int_equal(*(uint8_t *)hostmem_ptr(hm, pa + 0x20, 1), 0x42);
	assert_null(hostmem_ptr(hm, pa + 0xf000, 0x2000)); /* crosses the end */
	assert_int_equal(hostmem_ram_span(hm, pa + 0xf000), 0x1000);
	assert_int_equal(hostmem_ram_span(hm, 0x50000), 0);
	assert_int_equal(hostmem_read(hm, 0x50000, &pa, 8), -EFAULT);
	uint32_t v = 7;
	assert_int_equal(hostmem_write(hm, 0x100010, &v, 4), 0);
	assert_int_equal(hostmem_remove(hm, 0x100000), 0);
	assert_int_equal(hostmem_remove(hm, 0x100000), -ENOENT);
	assert_null(hostmem_ptr(hm, 0x100010, 4));
	assert_int_equal(hostmem_remove(hm, HOSTMEM_POOL_BASE), -ENOENT); /* the pool stays */
	hostmem_destroy(hm);
	munmap(vmm, 1 << 20);
	close(fd);
}

struct db_seen {
	uint64_t off;
	uint32_t data, sid;
	unsigned n;
};

static void db_fn(void *opaque, uint64_t offset, const void *data, size_t len, uint32_t sid)
{
	struct db_seen *s = opaque;
	s->off = offset;
	memcpy(&s->data, data, len < 4 ? len : 4);
	s->sid = sid;
	s->n++;
}

static void test_doorbell(void **state)
{
	struct hostmem *hm = hostmem_create();
	struct db_seen seen = {0};
	uint64_t pa;
	uint32_t v = 0x1234;

	assert_int_equal(hostmem_alloc_doorbell(hm, 4096, db_fn, &seen, &pa), 0);
	assert_true(hostmem_is_doorbell(hm, pa + 8));
	assert_null(hostmem_ptr(hm, pa, 4));
	assert_true(hostmem_doorbell_write(hm, pa + 0x40, &v, 4, 9));
	assert_int_equal(seen.n, 1);
	assert_int_equal(seen.off, 0x40);
	assert_int_equal(seen.data, 0x1234);
	assert_int_equal(seen.sid, 9);
	assert_false(hostmem_doorbell_write(hm, pa + 4096, &v, 4, 9));
	assert_int_equal(hostmem_add_doorbell(hm, 0x1000, 4096, NULL, NULL), -EINVAL);
	hostmem_destroy(hm);
}

static void test_pgtable_builder(void **state)
{
	struct hostmem *hm = hostmem_create();
	struct pgt_mem mem = pgt_mem_hostmem(hm);
	struct pgtable pt;
	unsigned level;

	assert_int_equal(pgtable_init(&pt, &mem, 2, 40, PGT_LEVEL_AUTO), 0);
	assert_int_equal(pgtable_map(&pt, 0x200000, 0x40000000, 2 << 20, PGT_R | PGT_W), 0);
	assert_int_equal(pgtable_map(&pt, 0x201000, 0x1000, 4096, PGT_R), -EEXIST);
	assert_int_equal(pgtable_map(&pt, 1ull << 40, 0x1000, 4096, PGT_R), -ERANGE);
	assert_int_equal(pgtable_map(&pt, 0x1000, 0x1001, 4096, PGT_R), -EINVAL);
	assert_int_equal(pgtable_map(&pt, 0x1000, 0x1000, 100, PGT_R), -EINVAL);
	/* leaf encodings */
	uint64_t *leaf = pgtable_leaf(&pt, 0x234567, &level);
	assert_int_equal(level, 2);
	assert_int_equal(*leaf & PTE_OA_MASK, 0x40000000);
	assert_int_equal(*leaf & 3, PTE_TYPE_BLOCK);
	assert_true(*leaf & PTE_BIT_S2AP_R);
	assert_true(*leaf & PTE_BIT_S2AP_W);
	assert_true(*leaf & PTE_BIT_AF);
	/* partial block unmap is refused and changes nothing */
	assert_int_equal(pgtable_unmap(&pt, 0x200000, 4096), -EINVAL);
	assert_non_null(pgtable_leaf(&pt, 0x200000, NULL));
	assert_int_equal(pgtable_map(&pt, 0x400000, 0x1000, 3 * 4096, PGT_R), 0);
	assert_int_equal(pgtable_unmap(&pt, 0x200000, 6 << 20), (2 << 20) + 3 * 4096);
	assert_null(pgtable_leaf(&pt, 0x400000, NULL));
	assert_int_equal(pgtable_unmap(&pt, 0x200000, 4096), 0);
	/* emptied tables wait for pgtable_reclaim (after the driver's TLBI + sync) */
	assert_int_equal(pt.nretired, 2); /* the leaf table at 0x400000 and its level-2 */
	size_t before = hostmem_pages_in_use(hm);
	pgtable_reclaim(&pt);
	assert_int_equal(hostmem_pages_in_use(hm), before - 2);
	assert_int_equal(pt.tables, pt.root_pages);
	assert_int_equal(pgtable_map(&pt, 0x400000, 0x1000, 4096, PGT_R), 0); /* rebuilds */
	assert_non_null(pgtable_leaf(&pt, 0x400000, NULL));
	pgtable_fini(&pt);
	assert_int_equal(hostmem_pages_in_use(hm), 0);
	/* stage 1 encodings: writable-clean with DBM, read-only without */
	assert_int_equal(pgtable_init(&pt, &mem, 1, 48, PGT_LEVEL_AUTO), 0);
	assert_int_equal(pgtable_map(&pt, 0x1000, 0x5000, 4096, PGT_R | PGT_W | PGT_DBM), 0);
	assert_int_equal(pgtable_map(&pt, 0x2000, 0x5000, 4096, PGT_R), 0);
	assert_int_equal(*pgtable_leaf(&pt, 0x1000, NULL) & (PTE_BIT_AP2 | PTE_BIT_DBM),
			 PTE_BIT_AP2 | PTE_BIT_DBM);
	assert_int_equal(*pgtable_leaf(&pt, 0x2000, NULL) & (PTE_BIT_AP2 | PTE_BIT_DBM),
			 PTE_BIT_AP2);
	pgtable_fini(&pt);
	/* buffer-backed memory (guest RAM style) */
	static uint8_t buf[64 * 4096] __attribute__((aligned(4096)));
	struct pgt_buf b;
	pgt_buf_init(&b, buf, 0x800000, sizeof(buf));
	struct pgt_mem bm = pgt_buf_mem(&b);
	assert_int_equal(pgtable_init(&pt, &bm, 1, 39, PGT_LEVEL_AUTO), 0);
	assert_int_equal(pt.root, 0x800000);
	assert_int_equal(pgtable_map(&pt, 0x1000, 0x9000, 4096, PGT_R), 0);
	assert_int_equal(pt.tables, 3);
	uint64_t *l1 = (uint64_t *)buf;
	assert_int_equal(l1[0] & PTE_OA_MASK, 0x801000);
	pgtable_fini(&pt);
	hostmem_destroy(hm);
}

static int no_pages(void *opaque, unsigned npages, uint64_t *pa)
{
	return -ENOMEM;
}

static void never_free(void *opaque, uint64_t pa, unsigned npages)
{
	fail_msg("freed a root that was never allocated");
}

/*
 * A table whose root cannot be allocated (a destination building host objects under memory
 * pressure): init fails and fini has nothing to free (it used to free the root it believed
 * it had, and crash).
 */
static void test_pgtable_root_alloc_fails(void **state)
{
	struct pgt_mem mem = {.alloc = no_pages, .free = never_free};
	struct pgtable pt;

	memset(&pt, 0, sizeof(pt));
	assert_int_equal(pgtable_init(&pt, &mem, 2, 40, PGT_LEVEL_AUTO), -ENOMEM);
	pgtable_fini(&pt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pool),
	    cmocka_unit_test(test_regions),
	    cmocka_unit_test(test_doorbell),
	    cmocka_unit_test(test_pgtable_builder),
	    cmocka_unit_test(test_pgtable_root_alloc_fails),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
