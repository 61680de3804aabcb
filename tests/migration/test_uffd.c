// SPDX-License-Identifier: Apache-2.0
/*
 * Post-copy's absent pages (src/vmm/migration/uffd.c) on a shared memfd mapping, as guest
 * RAM is: a thread touching an absent page blocks until the page is placed and then sees
 * exactly what was placed; a page already present is never overwritten; zero pages; a
 * toucher still blocked when the registration ends goes on. Skips (77) where this process
 * may not use userfaultfd.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "vmm/migration/uffd.h"

#define PAGE  4096u
#define PAGES 64u

struct ram {
	int fd;
	uint8_t *host;
	struct mig_uffd *u;
};

static int ram_open(struct ram *r)
{
	char err[256];

	r->fd = memfd_create("test-uffd", MFD_CLOEXEC);
	assert_true(r->fd >= 0);
	assert_int_equal(ftruncate(r->fd, PAGES * PAGE), 0);
	r->host = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
	assert_true(r->host != MAP_FAILED);
	int ret = mig_uffd_open(r->host, PAGES * PAGE, &r->u, err, sizeof(err));
	if (ret < 0)
		printf("mig_uffd_open: %s\n", err);
	return ret;
}

static void ram_close(struct ram *r)
{
	mig_uffd_close(r->u);
	munmap(r->host, PAGES * PAGE);
	close(r->fd);
}

static void fill(uint8_t *page, unsigned seed)
{
	for (unsigned i = 0; i < PAGE; i++)
		page[i] = (uint8_t)(seed * 131 + i * 7);
}

/* A toucher: reads a whole page (through memcmp) or writes one byte of it. */
struct toucher {
	struct ram *r;
	unsigned page;
	bool write;
	uint8_t seen[PAGE];
	bool done; /* atomic */
};

static void *touch(void *arg)
{
	struct toucher *t = arg;
	uint8_t *p = t->r->host + (size_t)t->page * PAGE;

	if (t->write)
		p[100] = 0xEE;
	memcpy(t->seen, p, PAGE);
	__atomic_store_n(&t->done, true, __ATOMIC_RELEASE);
	return NULL;
}

static void expect_fault(struct ram *r, unsigned page, bool write)
{
	uint64_t off;
	bool w;

	assert_int_equal(mig_uffd_next_fault(r->u, 5000, &off, &w), 0);
	assert_int_equal(off, (uint64_t)page * PAGE);
	assert_int_equal(w, write);
}

static void test_touch_blocks_until_placed(void **state)
{
	struct ram r;
	struct toucher t = {.r = &r, .page = 17};
	uint8_t page[PAGE];
	pthread_t th;

	if (ram_open(&r) < 0)
		skip();
	assert_int_equal(pthread_create(&th, NULL, touch, &t), 0);
	expect_fault(&r, 17, false);
	usleep(50000);
	assert_false(__atomic_load_n(&t.done, __ATOMIC_ACQUIRE)); /* still blocked */
	fill(page, 17);
	assert_int_equal(mig_uffd_place(r.u, 17 * PAGE, page), 0);
	pthread_join(th, NULL);
	assert_memory_equal(t.seen, page, PAGE);
	ram_close(&r);
}

/* A write to an absent page lands on the placed content, not on zeros placed under it. */
static void test_write_fault_then_place(void **state)
{
	struct ram r;
	struct toucher t = {.r = &r, .page = 3, .write = true};
	uint8_t page[PAGE];
	pthread_t th;

	if (ram_open(&r) < 0)
		skip();
	assert_int_equal(pthread_create(&th, NULL, touch, &t), 0);
	expect_fault(&r, 3, true);
	fill(page, 3);
	assert_int_equal(mig_uffd_place(r.u, 3 * PAGE, page), 0);
	pthread_join(th, NULL);
	page[100] = 0xEE;
	assert_memory_equal(t.seen, page, PAGE);
	ram_close(&r);
}

/* A page arriving again for a page already placed changes nothing. */
static void test_present_page_not_overwritten(void **state)
{
	struct ram r;
	uint8_t a[PAGE], b[PAGE];
	struct mig_uffd_stats st;

	if (ram_open(&r) < 0)
		skip();
	fill(a, 1);
	fill(b, 2);
	assert_int_equal(mig_uffd_place(r.u, 5 * PAGE, a), 0);
	assert_int_equal(mig_uffd_place(r.u, 5 * PAGE, b), -EEXIST);
	assert_int_equal(mig_uffd_place(r.u, 5 * PAGE, NULL), -EEXIST);
	assert_memory_equal(r.host + 5 * PAGE, a, PAGE);
	/* A page written through another mapping of the memfd (one the registration does not
	 * cover, as the host model's): present too. */
	uint8_t *other = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, r.fd, 0);
	assert_true(other != MAP_FAILED);
	other[9 * PAGE] = 1;
	assert_int_equal(mig_uffd_place(r.u, 9 * PAGE, b), -EEXIST);
	assert_int_equal(r.host[9 * PAGE], 1);
	munmap(other, PAGES * PAGE);
	mig_uffd_stats(r.u, &st);
	assert_int_equal(st.placed, 1);
	assert_int_equal(st.present, 3);
	ram_close(&r);
}

static void test_zero_and_bounds(void **state)
{
	struct ram r;
	struct toucher t = {.r = &r, .page = PAGES - 1};
	uint8_t zeros[PAGE] = {0}, page[PAGE];
	pthread_t th;

	if (ram_open(&r) < 0)
		skip();
	fill(page, 9);
	assert_int_equal(mig_uffd_place(r.u, PAGES * PAGE, page), -EINVAL);
	assert_int_equal(mig_uffd_place(r.u, 4 * PAGE + 8, page), -EINVAL);
	assert_int_equal(pthread_create(&th, NULL, touch, &t), 0);
	expect_fault(&r, PAGES - 1, false);
	assert_int_equal(mig_uffd_place(r.u, (PAGES - 1) * PAGE, NULL), 0);
	pthread_join(th, NULL);
	assert_memory_equal(t.seen, zeros, PAGE);
	ram_close(&r);
}

/* A page made present through another mapping while a toucher waits on it: the placement
 * that then fails (-EEXIST) still wakes the toucher, which sees that page. */
static void test_present_placement_wakes(void **state)
{
	struct ram r;
	struct toucher t = {.r = &r, .page = 11};
	uint8_t page[PAGE];
	pthread_t th;

	if (ram_open(&r) < 0)
		skip();
	assert_int_equal(pthread_create(&th, NULL, touch, &t), 0);
	expect_fault(&r, 11, false);
	uint8_t *other = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, r.fd, 0);
	assert_true(other != MAP_FAILED);
	other[11 * PAGE] = 0x42;
	fill(page, 11);
	assert_int_equal(mig_uffd_place(r.u, 11 * PAGE, page), -EEXIST);
	pthread_join(th, NULL); /* hangs here (the test times out) without the wake */
	assert_int_equal(t.seen[0], 0x42);
	munmap(other, PAGES * PAGE);
	ram_close(&r);
}

/* Ending the registration lets a blocked toucher go on with zeros: the hazard uffd.h
 * warns of (close only once every page is present). */
static void test_close_releases_waiters(void **state)
{
	struct ram r;
	struct toucher t = {.r = &r, .page = 30};
	uint8_t zeros[PAGE] = {0};
	pthread_t th;
	uint64_t off;
	bool w;

	if (ram_open(&r) < 0)
		skip();
	assert_int_equal(pthread_create(&th, NULL, touch, &t), 0);
	expect_fault(&r, 30, false);
	assert_int_equal(mig_uffd_next_fault(r.u, 20, &off, &w), -ETIMEDOUT);
	mig_uffd_close(r.u);
	r.u = NULL;
	pthread_join(th, NULL);
	assert_memory_equal(t.seen, zeros, PAGE);
	ram_close(&r);
}

/* A page placed, then discarded (sent again by the source): the next touch faults and
 * sees only the new content, through this mapping and any other mapping of the memfd. */
static void test_discard_makes_absent(void **state)
{
	struct ram r;
	struct toucher t = {.r = &r, .page = 7};
	uint8_t old[PAGE], fresh[PAGE];
	pthread_t th;

	if (ram_open(&r) < 0)
		skip();
	fill(old, 70);
	fill(fresh, 71);
	assert_int_equal(mig_uffd_place(r.u, 7 * PAGE, old), 0);
	assert_memory_equal(r.host + 7 * PAGE, old, PAGE);
	assert_int_equal(mig_uffd_discard(r.u, 7 * PAGE, PAGE), 0);
	assert_int_equal(mig_uffd_discard(r.u, 7 * PAGE, 2 * PAGE - 1), -EINVAL);
	assert_int_equal(mig_uffd_discard(r.u, (PAGES - 1) * PAGE, 2 * PAGE), -EINVAL);
	assert_int_equal(pthread_create(&th, NULL, touch, &t), 0);
	expect_fault(&r, 7, false);
	assert_int_equal(mig_uffd_place(r.u, 7 * PAGE, fresh), 0);
	pthread_join(th, NULL);
	assert_memory_equal(t.seen, fresh, PAGE);
	uint8_t *other = mmap(NULL, PAGES * PAGE, PROT_READ, MAP_SHARED, r.fd, 0);
	assert_true(other != MAP_FAILED);
	assert_memory_equal(other + 7 * PAGE, fresh, PAGE);
	munmap(other, PAGES * PAGE);
	ram_close(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_touch_blocks_until_placed),
	    cmocka_unit_test(test_write_fault_then_place),
	    cmocka_unit_test(test_present_page_not_overwritten),
	    cmocka_unit_test(test_zero_and_bounds),
	    cmocka_unit_test(test_close_releases_waiters),
	    cmocka_unit_test(test_discard_makes_absent),
	    cmocka_unit_test(test_present_placement_wakes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
