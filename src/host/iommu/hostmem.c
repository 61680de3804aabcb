// SPDX-License-Identifier: Apache-2.0
/* Host physical memory: regions by PA, lock-free lookups, a page pool, doorbells. */
#include "host/iommu/hostmem.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/bitmap.h"
#include "common/util.h"

#define HM_PAGE	     4096ull
#define HM_POOL_PGS  (HOSTMEM_POOL_SIZE / HM_PAGE)
#define HM_MAX_ALLOC 512u

enum hm_kind { HM_RAM, HM_DOORBELL };

struct hm_region {
	uint64_t pa, len;
	enum hm_kind kind;
	uint8_t *hva;
	bool unmap; /* hva was mmapped by us for this region */
	hostmem_doorbell_fn fn;
	void *opaque;
};

/* Immutable snapshot of the region list, sorted by pa; replaced wholesale on change. */
struct hm_snap {
	struct hm_snap *older; /* retired snapshots, freed at destroy (readers may hold them) */
	uint64_t uid;	       /* unique over all snapshots of all instances */
	unsigned n;
	struct hm_region r[];
};

struct hostmem {
	pthread_mutex_t lock;
	struct hm_snap *snap;
	uint64_t next_file_pa, next_db_pa;
	uint8_t *pool;
	uint64_t *pool_map;
	uint64_t *pool_hint; /* dirty hints, one bit per pool page */
	size_t pool_used;
};

static struct hm_snap *hm_snap_load(struct hostmem *hm)
{
	return __atomic_load_n(&hm->snap, __ATOMIC_ACQUIRE);
}

/* Per-thread last hit (snapshot uid, index): walks read many descriptors in a row from
 * the same region. Only ever indexes the current snapshot, so it cannot dangle. */
static __thread struct {
	uint64_t uid;
	unsigned idx;
} hm_last;

static uint64_t hm_snap_uid(void)
{
	static uint64_t next;
	return __atomic_add_fetch(&next, 1, __ATOMIC_RELAXED);
}

static const struct hm_region *hm_find(struct hostmem *hm, uint64_t pa)
{
	struct hm_snap *s = hm_snap_load(hm);
	unsigned lo = 0, hi = s->n;

	if (hm_last.uid == s->uid && pa - s->r[hm_last.idx].pa < s->r[hm_last.idx].len)
		return &s->r[hm_last.idx];
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		const struct hm_region *r = &s->r[mid];
		if (pa < r->pa) {
			hi = mid;
		} else if (pa - r->pa >= r->len) {
			lo = mid + 1;
		} else {
			hm_last.uid = s->uid;
			hm_last.idx = mid;
			return r;
		}
	}
	return NULL;
}

static bool hm_overlaps(const struct hm_snap *s, uint64_t pa, uint64_t len)
{
	for (unsigned i = 0; i < s->n; i++)
		if (s->r[i].len && pa < s->r[i].pa + s->r[i].len && s->r[i].pa < pa + len)
			return true;
	return false;
}

/* Publishes a copy of the current snapshot with r inserted. Caller holds the lock. */
static int hm_insert_locked(struct hostmem *hm, const struct hm_region *r)
{
	struct hm_snap *old = hm->snap, *s;
	unsigned i = 0, j = 0;

	if (hm_overlaps(old, r->pa, r->len))
		return -EEXIST;
	s = malloc(sizeof(*s) + (old->n + 1) * sizeof(s->r[0]));
	if (!s)
		return -ENOMEM;
	s->uid = hm_snap_uid();
	for (; i < old->n && old->r[i].pa < r->pa; i++)
		if (old->r[i].len)
			s->r[j++] = old->r[i];
	s->r[j++] = *r;
	for (; i < old->n; i++)
		if (old->r[i].len)
			s->r[j++] = old->r[i];
	s->n = j;
	s->older = old;
	__atomic_store_n(&hm->snap, s, __ATOMIC_RELEASE);
	return 0;
}

static int hm_insert(struct hostmem *hm, const struct hm_region *r)
{
	pthread_mutex_lock(&hm->lock);
	int rc = hm_insert_locked(hm, r);
	pthread_mutex_unlock(&hm->lock);
	return rc;
}

struct hostmem *hostmem_create(void)
{
	struct hostmem *hm = calloc(1, sizeof(*hm));

	if (!hm)
		return NULL;
	pthread_mutex_init(&hm->lock, NULL);
	hm->snap = calloc(1, sizeof(*hm->snap));
	if (hm->snap)
		hm->snap->uid = hm_snap_uid();
	hm->pool_map = bitmap_alloc(HM_POOL_PGS);
	hm->pool_hint = bitmap_alloc(HM_POOL_PGS);
	hm->pool = mmap(NULL, HOSTMEM_POOL_SIZE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	hm->next_file_pa = HOSTMEM_FILE_BASE;
	hm->next_db_pa = HOSTMEM_DOORBELL_BASE;
	if (!hm->snap || !hm->pool_map || !hm->pool_hint || hm->pool == MAP_FAILED) {
		if (hm->pool == MAP_FAILED)
			hm->pool = NULL;
		hostmem_destroy(hm);
		return NULL;
	}
	struct hm_region pool = {
	    .pa = HOSTMEM_POOL_BASE, .len = HOSTMEM_POOL_SIZE, .hva = hm->pool};
	if (hm_insert(hm, &pool)) {
		hostmem_destroy(hm);
		return NULL;
	}
	return hm;
}

void hostmem_destroy(struct hostmem *hm)
{
	if (!hm)
		return;
	struct hm_snap *s = hm->snap;
	for (unsigned i = 0; s && i < s->n; i++)
		if (s->r[i].unmap)
			munmap(s->r[i].hva, s->r[i].len);
	while (s) {
		struct hm_snap *older = s->older;
		free(s);
		s = older;
	}
	if (hm->pool)
		munmap(hm->pool, HOSTMEM_POOL_SIZE);
	free(hm->pool_map);
	free(hm->pool_hint);
	pthread_mutex_destroy(&hm->lock);
	free(hm);
}

static bool hm_range_ok(uint64_t pa, uint64_t len)
{
	return len && IS_ALIGNED(pa, HM_PAGE) && IS_ALIGNED(len, HM_PAGE) && pa + len > pa;
}

int hostmem_add_file(struct hostmem *hm, uint64_t pa, int fd, uint64_t offset, uint64_t len)
{
	if (!hm_range_ok(pa, len) || !IS_ALIGNED(offset, HM_PAGE))
		return -EINVAL;
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)offset);
	if (p == MAP_FAILED)
		return -errno;
	struct hm_region r = {.pa = pa, .len = len, .kind = HM_RAM, .hva = p, .unmap = true};
	int rc = hm_insert(hm, &r);
	if (rc)
		munmap(p, len);
	return rc;
}

int hostmem_map_file(struct hostmem *hm, int fd, uint64_t offset, uint64_t len, uint64_t *pa)
{
	if (!len || !IS_ALIGNED(len, HM_PAGE))
		return -EINVAL;
	/* Keep a 2 MiB gap and alignment so block mappings of the region stay possible. */
	pthread_mutex_lock(&hm->lock);
	uint64_t at = hm->next_file_pa;
	hm->next_file_pa = ALIGN_UP(at + len + 2 * MiB, 1 * GiB);
	pthread_mutex_unlock(&hm->lock);
	int rc = hostmem_add_file(hm, at, fd, offset, len);
	if (!rc)
		*pa = at;
	return rc;
}

int hostmem_add_ram(struct hostmem *hm, uint64_t pa, uint64_t len)
{
	if (!hm_range_ok(pa, len))
		return -EINVAL;
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	struct hm_region r = {.pa = pa, .len = len, .kind = HM_RAM, .hva = p, .unmap = true};
	int rc = hm_insert(hm, &r);
	if (rc)
		munmap(p, len);
	return rc;
}

int hostmem_add_doorbell(struct hostmem *hm, uint64_t pa, uint64_t len, hostmem_doorbell_fn fn,
			 void *opaque)
{
	if (!hm_range_ok(pa, len) || !fn)
		return -EINVAL;
	struct hm_region r = {
	    .pa = pa, .len = len, .kind = HM_DOORBELL, .fn = fn, .opaque = opaque};
	return hm_insert(hm, &r);
}

int hostmem_alloc_doorbell(struct hostmem *hm, uint64_t len, hostmem_doorbell_fn fn, void *opaque,
			   uint64_t *pa)
{
	if (!len || !IS_ALIGNED(len, HM_PAGE))
		return -EINVAL;
	pthread_mutex_lock(&hm->lock);
	uint64_t at = hm->next_db_pa;
	hm->next_db_pa = ALIGN_UP(at + len + 2 * MiB, 2 * MiB);
	pthread_mutex_unlock(&hm->lock);
	int rc = hostmem_add_doorbell(hm, at, len, fn, opaque);
	if (!rc)
		*pa = at;
	return rc;
}

/*
 * Removal must not fail for lack of memory: callers are destructors (IOAS unmap, MSI window
 * free) that cannot undo, and a region left behind would keep a doorbell pointing at freed
 * state. Without memory for a new snapshot the entry is emptied in place (len 0 matches no
 * address, keeps the order) and dropped by the next copy.
 */
static void hm_tombstone_locked(struct hm_snap *s, unsigned i)
{
	s->r[i].unmap = false;
	__atomic_store_n(&s->r[i].len, 0, __ATOMIC_RELEASE);
}

int hostmem_remove(struct hostmem *hm, uint64_t pa)
{
	pthread_mutex_lock(&hm->lock);
	struct hm_snap *old = hm->snap, *s;
	unsigned i;

	for (i = 0; i < old->n && (old->r[i].pa != pa || !old->r[i].len); i++)
		;
	if (i == old->n || pa == HOSTMEM_POOL_BASE) {
		pthread_mutex_unlock(&hm->lock);
		return -ENOENT;
	}
	struct hm_region gone = old->r[i];
	s = malloc(sizeof(*s) + old->n * sizeof(s->r[0]));
	if (s) {
		unsigned j = 0;

		s->uid = hm_snap_uid();
		for (unsigned k = 0; k < old->n; k++)
			if (k != i && old->r[k].len)
				s->r[j++] = old->r[k];
		s->n = j;
		s->older = old;
		__atomic_store_n(&hm->snap, s, __ATOMIC_RELEASE);
	} else {
		hm_tombstone_locked(old, i);
	}
	pthread_mutex_unlock(&hm->lock);
	if (gone.unmap)
		munmap(gone.hva, gone.len);
	return 0;
}

void *hostmem_ptr(struct hostmem *hm, uint64_t pa, uint64_t len)
{
	const struct hm_region *r = hm_find(hm, pa);

	if (!r || r->kind != HM_RAM || len > r->len - (pa - r->pa))
		return NULL;
	return r->hva + (pa - r->pa);
}

uint64_t hostmem_ram_span(struct hostmem *hm, uint64_t pa)
{
	const struct hm_region *r = hm_find(hm, pa);

	if (!r || r->kind != HM_RAM)
		return 0;
	return r->len - (pa - r->pa);
}

bool hostmem_doorbell_write(struct hostmem *hm, uint64_t pa, const void *data, size_t len,
			    uint32_t sid)
{
	const struct hm_region *r = hm_find(hm, pa);

	if (!r || r->kind != HM_DOORBELL)
		return false;
	r->fn(r->opaque, pa - r->pa, data, len, sid);
	return true;
}

bool hostmem_is_doorbell(struct hostmem *hm, uint64_t pa)
{
	const struct hm_region *r = hm_find(hm, pa);
	return r && r->kind == HM_DOORBELL;
}

int hostmem_read(struct hostmem *hm, uint64_t pa, void *buf, size_t len)
{
	void *p = hostmem_ptr(hm, pa, len);

	if (!p)
		return -EFAULT;
	memcpy(buf, p, len);
	return 0;
}

int hostmem_write(struct hostmem *hm, uint64_t pa, const void *buf, size_t len)
{
	void *p = hostmem_ptr(hm, pa, len);

	if (!p)
		return -EFAULT;
	memcpy(p, buf, len);
	return 0;
}

/* First free naturally aligned run of n pages in the pool bitmap. */
static size_t hm_pool_find(struct hostmem *hm, unsigned n)
{
	size_t i = 0;

	while (i + n <= HM_POOL_PGS) {
		i = bitmap_find_next_clear(hm->pool_map, HM_POOL_PGS, i);
		i = ALIGN_UP(i, (size_t)n);
		if (i + n > HM_POOL_PGS)
			break;
		if (!bitmap_test_range_any(hm->pool_map, i, n))
			return i;
		i += n;
	}
	return HM_POOL_PGS;
}

int hostmem_pages_alloc(struct hostmem *hm, unsigned npages, uint64_t *pa)
{
	if (!IS_POW2(npages) || npages > HM_MAX_ALLOC)
		return -EINVAL;
	pthread_mutex_lock(&hm->lock);
	size_t i = hm_pool_find(hm, npages);
	if (i < HM_POOL_PGS) {
		bitmap_set_range(hm->pool_map, i, npages);
		hm->pool_used += npages;
	}
	pthread_mutex_unlock(&hm->lock);
	if (i >= HM_POOL_PGS)
		return -ENOMEM;
	memset(hm->pool + i * HM_PAGE, 0, npages * HM_PAGE);
	for (unsigned k = 0; k < npages; k++)
		hostmem_dirty_hint_set(hm, HOSTMEM_POOL_BASE + (i + k) * HM_PAGE);
	*pa = HOSTMEM_POOL_BASE + i * HM_PAGE;
	return 0;
}

void hostmem_pages_free(struct hostmem *hm, uint64_t pa, unsigned npages)
{
	size_t i = (pa - HOSTMEM_POOL_BASE) / HM_PAGE;

	if (pa < HOSTMEM_POOL_BASE || i + npages > HM_POOL_PGS)
		return;
	pthread_mutex_lock(&hm->lock);
	bitmap_clear_range(hm->pool_map, i, npages);
	hm->pool_used -= npages;
	pthread_mutex_unlock(&hm->lock);
}

size_t hostmem_pages_in_use(struct hostmem *hm)
{
	pthread_mutex_lock(&hm->lock);
	size_t n = hm->pool_used;
	pthread_mutex_unlock(&hm->lock);
	return n;
}

/* ---- dirty hints ---- */

static inline bool hm_pool_index(uint64_t pa, size_t *i)
{
	*i = (pa - HOSTMEM_POOL_BASE) / HM_PAGE;
	return pa >= HOSTMEM_POOL_BASE && *i < HM_POOL_PGS;
}

void hostmem_dirty_hint_set(struct hostmem *hm, uint64_t pa)
{
	size_t i;
	uint64_t bit;

	if (!hm_pool_index(pa, &i))
		return;
	bit = 1ull << (i % 64);
	/* A plain load first: most updates find the hint already set. */
	if (!(__atomic_load_n(&hm->pool_hint[i / 64], __ATOMIC_SEQ_CST) & bit))
		__atomic_fetch_or(&hm->pool_hint[i / 64], bit, __ATOMIC_SEQ_CST);
}

bool hostmem_dirty_hint_take(struct hostmem *hm, uint64_t pa)
{
	size_t i;

	if (!hm_pool_index(pa, &i))
		return true;
	uint64_t bit = 1ull << (i % 64);
	if (!(__atomic_load_n(&hm->pool_hint[i / 64], __ATOMIC_SEQ_CST) & bit))
		return false;
	return __atomic_fetch_and(&hm->pool_hint[i / 64], ~bit, __ATOMIC_SEQ_CST) & bit;
}

bool hostmem_dirty_hint_test(struct hostmem *hm, uint64_t pa)
{
	size_t i;

	if (!hm_pool_index(pa, &i))
		return true;
	return __atomic_load_n(&hm->pool_hint[i / 64], __ATOMIC_SEQ_CST) & (1ull << (i % 64));
}
