// SPDX-License-Identifier: Apache-2.0
/*
 * Device DMA logging, translated through the guest's stage 1 (device_log.h).
 *
 * Which translations can a logged IOVA have gone through since the last harvest? Those in
 * the guest's tables now, those the last harvest saw, and those the guest has removed from
 * its tables but whose invalidation has not yet reached the host: the device may go on
 * using them from its TLB until then. So a mapping that disappears from the tables waits in
 * `pending` until a forwarded TLBI covers it whole (by ASID and a VA range containing it,
 * by ASID, or all; CFGI and STE changes do not drop TLB entries on the host, so they do not
 * count), plus two harvests (the one the hook runs before the command cannot see writes the
 * device makes until the host executed it, and the device sets its log bit only after its
 * transfer returned). Commands that cover only part of a mapping leave it pending: that can
 * only over-report. A bypass once seen stays pending to the end.
 */
#include "vmm/vfio/device_log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arch/smmuv3.h"
#include "common/bitmap.h"
#include "common/trace.h"
#include "common/util.h"
#include "host/vfio.h"
#include "vmm/guest_mem.h"
#include "vmm/migration/section.h"
#include "vmm/smmuv3/vsmmu.h"

/* One writable stage-1 mapping: [iova, iova + size) -> [gpa, gpa + size). */
struct s1_extent {
	uint64_t iova, gpa, size;
	uint64_t inv_at; /* pending: the harvest a covering command followed (0: none yet) */
	uint32_t ssid;
	uint16_t asid;
};

struct s1_map {
	struct s1_extent *e;
	size_t n, cap;
	size_t max;    /* 0: DLOG_MAX_EXTENTS */
	bool identity; /* the stream (also) bypasses stage 1: IOVA = GPA over RAM */
};

#define DLOG_REPORT_BITS (1u << 16)   /* pages per report call (an 8 KiB bitmap) */
#define DLOG_MAX_EXTENTS (1u << 20)   /* per map: a guest cannot make the VMM grow forever */
#define S1_LARGEST_LEAF	 (1ull << 30) /* a 4 KiB-granule level-1 block */

struct device_log {
	struct vfio_device *vdev;
	struct vsmmu *vs;
	uint32_t vsid;
	const struct guest_mem *mem;
	uint64_t aperture, page_size;
	uint64_t *bits;
	struct s1_map cur;     /* the tables as the last harvest left them */
	struct s1_map pending; /* removed from the tables, maybe still in the host's TLB */
	uint64_t harvest_no;
	struct migration *mig; /* during a harvest: where table pages are marked */
	bool blind;
	void (*on_read)(void *);
	void *on_read_arg;
};

/* The uAPI ---------------------------------------------------------------------------------- */

static int dlog_feature(struct vfio_device *vdev, uint32_t flags, void *data, size_t len)
{
	uint8_t buf[sizeof(struct vfio_device_feature) + 64] __attribute__((aligned(8)));
	struct vfio_device_feature *f = (struct vfio_device_feature *)buf;

	if (len > 64)
		return -EINVAL;
	memset(buf, 0, sizeof(buf));
	f->argsz = (uint32_t)(sizeof(*f) + len);
	f->flags = flags;
	if (len)
		memcpy(f->data, data, len);
	int ret = vfio_device_feature(vdev, f);
	if (len)
		memcpy(data, f->data, len);
	return ret;
}

bool device_log_supported(struct vfio_device *vdev)
{
	return dlog_feature(vdev,
			    VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_SET |
				VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
			    NULL, 0) == 0;
}

/* Maps of the guest's tables ---------------------------------------------------------------- */

static int dlog_map_push(struct s1_map *m, const struct s1_extent *x)
{
	if (m->n == m->cap) {
		size_t cap = m->cap ? 2 * m->cap : 256;
		struct s1_extent *e = cap > (m->max ? m->max : DLOG_MAX_EXTENTS)
					  ? NULL
					  : realloc(m->e, cap * sizeof(*e));
		if (!e)
			return -E2BIG;
		m->e = e;
		m->cap = cap;
	}
	m->e[m->n++] = *x;
	return 0;
}

struct dlog_take {
	struct device_log *l;
	struct s1_map *m;
};

/* A leaf goes into the map; a table page the SMMU may update is marked dirty at once. */
static int dlog_take_leaf(void *opaque, const struct vsmmu_s1_leaf *leaf)
{
	struct dlog_take *t = opaque;
	struct s1_extent x = {.iova = leaf->iova,
			      .gpa = leaf->gpa,
			      .size = leaf->size,
			      .ssid = leaf->ssid,
			      .asid = leaf->asid};

	if (leaf->table) {
		if (!t->l->blind && t->l->mig)
			mig_dirty_mark(t->l->mig, leaf->gpa, 1);
		return 0;
	}
	return dlog_map_push(t->m, &x);
}

static int dlog_extent_cmp(const void *a, const void *b)
{
	const struct s1_extent *x = a, *y = b;

	if (x->iova != y->iova)
		return x->iova < y->iova ? -1 : 1;
	return x->gpa < y->gpa ? -1 : x->gpa > y->gpa;
}

/* An empty map has no array (qsort's is declared non-null). */
static void dlog_sort(struct s1_map *m, int (*cmp)(const void *, const void *))
{
	if (m->n)
		qsort(m->e, m->n, sizeof(*m->e), cmp);
}

/* Today's writable mappings of every CD of the stream, by IOVA; -E2BIG past the bounds. */
static int dlog_map_take(struct device_log *l, struct s1_map *m)
{
	struct dlog_take t = {.l = l, .m = m};

	m->n = 0;
	int ret = vsmmu_sid_s1_writable_locked(l->vs, l->vsid, dlog_take_leaf, &t);
	m->identity = ret == VSMMU_S1_IDENTITY;
	if (ret < 0)
		return ret;
	dlog_sort(m, dlog_extent_cmp);
	return 0;
}

/* The first extent that may overlap iova: none larger than a 1 GiB block starts earlier. */
static size_t dlog_map_find(const struct s1_map *m, uint64_t iova)
{
	uint64_t from = iova > S1_LARGEST_LEAF ? iova - S1_LARGEST_LEAF : 0;
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->e[mid].iova < from)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool dlog_same(const struct s1_extent *e, const struct s1_extent *x)
{
	return e->iova == x->iova && e->gpa == x->gpa && e->size == x->size && e->asid == x->asid &&
	       e->ssid == x->ssid;
}

/* Whether sorted m has exactly x (a mapping still in the tables). */
static bool dlog_map_has(const struct s1_map *m, const struct s1_extent *x)
{
	for (size_t i = dlog_map_find(m, x->iova); i < m->n && m->e[i].iova <= x->iova; i++) {
		if (dlog_same(&m->e[i], x))
			return true;
	}
	return false;
}

/* x in pending (not kept sorted while it grows: a plain scan). */
static struct s1_extent *dlog_map_get(struct s1_map *m, const struct s1_extent *x)
{
	for (size_t i = 0; i < m->n; i++) {
		if (dlog_same(&m->e[i], x))
			return &m->e[i];
	}
	return NULL;
}

static uint64_t dlog_mark_range(struct migration *mig, uint64_t gpa, uint64_t len, bool blind)
{
	uint64_t first = ALIGN_DOWN(gpa, GUEST_PAGE_SIZE);
	uint64_t n = (ALIGN_UP(gpa + len, GUEST_PAGE_SIZE) - first) >> GUEST_PAGE_SHIFT;

	if (!blind)
		mig_dirty_mark(mig, first, n);
	return n;
}

/*
 * Appends to out the GPAs [iova, iova + len) maps to in m. Extents of several CDs may
 * overlap in IOVA (the log has no PASID): every one of them counts, so the scan goes past
 * the first.
 */
static int dlog_map_gpas(const struct s1_map *m, uint64_t iova, uint64_t len, struct s1_map *out)
{
	struct s1_extent x = {.gpa = iova, .size = len};
	int ret = m->identity ? dlog_map_push(out, &x) : 0;

	for (size_t i = dlog_map_find(m, iova); i < m->n && m->e[i].iova < iova + len; i++) {
		const struct s1_extent *e = &m->e[i];
		uint64_t lo = MAX(iova, e->iova), hi = MIN(iova + len, e->iova + e->size);
		x = (struct s1_extent){.gpa = e->gpa + (lo - e->iova), .size = hi - lo};
		if (lo < hi && ret == 0)
			ret = dlog_map_push(out, &x);
	}
	return ret;
}

static int dlog_gpa_cmp(const void *a, const void *b)
{
	const struct s1_extent *x = a, *y = b;

	return x->gpa < y->gpa ? -1 : x->gpa > y->gpa;
}

/*
 * Marks the union of g's GPA extents, in whole pages, and returns its pages: the same page
 * of one logged run through the tables now, as last seen and pending counts once.
 */
static uint64_t dlog_mark_union(struct s1_map *g, struct migration *mig, bool blind)
{
	uint64_t pages = 0, lo = 0, hi = 0;

	dlog_sort(g, dlog_gpa_cmp);
	for (size_t i = 0; i < g->n; i++) {
		uint64_t a = ALIGN_DOWN(g->e[i].gpa, GUEST_PAGE_SIZE);
		uint64_t b = ALIGN_UP(g->e[i].gpa + g->e[i].size, GUEST_PAGE_SIZE);
		if (hi && a <= hi) {
			hi = MAX(hi, b);
			continue;
		}
		if (hi)
			pages += dlog_mark_range(mig, lo, hi - lo, blind);
		lo = a;
		hi = b;
	}
	return hi ? pages + dlog_mark_range(mig, lo, hi - lo, blind) : pages;
}

/* Pending translations -------------------------------------------------------------------- */

/* What left the tables since the last look (in old, not in now) waits for its command. */
static int dlog_pending_add(struct device_log *l, const struct s1_map *old,
			    const struct s1_map *now)
{
	int ret = 0;

	for (size_t i = 0; i < old->n && ret == 0; i++) {
		struct s1_extent x = old->e[i];
		x.inv_at = 0;
		if (dlog_map_has(now, &x))
			continue;
		struct s1_extent *p = dlog_map_get(&l->pending, &x);
		if (p)
			p->inv_at = 0; /* removed again: its earlier cover does not count */
		else
			ret = dlog_map_push(&l->pending, &x);
	}
	if (old->identity && !now->identity)
		l->pending.identity = true;
	dlog_sort(&l->pending, dlog_extent_cmp);
	return ret;
}

/*
 * TLBI ranges: (NUM + 1) << SCALE granules of TG from ADDR; without TG, the page at ADDR.
 * The host caches nested entries at the smaller of the two stages' sizes and drops only
 * what intersects the range, so an extent counts only when the range contains it whole.
 */
static bool dlog_tlbi_covers(const uint64_t c[2], const struct s1_extent *e)
{
	uint64_t addr = FGET(c[1], CMD1_ADDR) << 12;
	unsigned tg = (unsigned)FGET(c[1], CMD1_TLBI_TG);
	uint64_t len = 4096;

	if (tg) {
		uint64_t gran = 1ull << (12 + 2 * (tg - 1));
		len = ((FGET(c[0], CMD0_TLBI_NUM) + 1) << FGET(c[0], CMD0_TLBI_SCALE)) * gran;
	}
	return addr <= e->iova && e->iova + e->size <= addr + len;
}

/* Whether TLBI c, once the host executed it, removes e from the device's reach. */
static bool dlog_cmd_covers(const uint64_t c[2], const struct s1_extent *e)
{
	switch (FGET(c[0], CMD0_OP)) {
	case CMD_TLBI_NH_ALL:
	case CMD_TLBI_NSNH_ALL:
		return true;
	case CMD_TLBI_NH_ASID:
		return FGET(c[0], CMD0_ASID) == e->asid;
	case CMD_TLBI_NH_VA:
		return FGET(c[0], CMD0_ASID) == e->asid && dlog_tlbi_covers(c, e);
	case CMD_TLBI_NH_VAA:
		return dlog_tlbi_covers(c, e);
	default:
		return false;
	}
}

/* Retires what a TLBI covered two harvests ago; marks what these commands cover. */
static void dlog_pending_commands(struct device_log *l, const uint64_t (*cmds)[2], size_t n)
{
	struct s1_map *p = &l->pending;
	size_t keep = 0;

	for (size_t i = 0; i < p->n; i++) {
		struct s1_extent *e = &p->e[i];
		if (e->inv_at && e->inv_at + 1 < l->harvest_no)
			continue; /* its TLBI ran, and two harvests after it translated with it */
		for (size_t k = 0; k < n && !e->inv_at; k++)
			e->inv_at = dlog_cmd_covers(cmds[k], e) ? l->harvest_no : 0;
		p->e[keep++] = *e;
	}
	p->n = keep;
}

/* Life cycle ------------------------------------------------------------------------------ */

int device_log_start(struct vfio_device *vdev, struct vsmmu *vs, uint32_t vsid,
		     const struct guest_mem *mem, unsigned aperture_bits, struct device_log **out)
{
	struct device_log *l = calloc(1, sizeof(*l));
	struct vfio_device_feature_dma_logging_range range = {.iova = 0,
							      .length = 1ull << aperture_bits};
	struct vfio_device_feature_dma_logging_control ctl = {
	    .page_size = GUEST_PAGE_SIZE, .num_ranges = 1, .ranges = (uintptr_t)&range};

	if (!l)
		return -ENOMEM;
	*l = (struct device_log){
	    .vdev = vdev, .vs = vs, .vsid = vsid, .mem = mem, .aperture = range.length};
	int ret =
	    dlog_feature(vdev, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
			 &ctl, sizeof(ctl));
	l->page_size = ctl.page_size;
	bool started = ret == 0;
	if (ret == 0 && !(l->bits = bitmap_alloc(DLOG_REPORT_BITS)))
		ret = -ENOMEM;
	if (ret == 0)
		ret = dlog_map_take(l, &l->cur);
	TRACE(device_log_start, "aperture=%#llx page=%#llx: %d", (unsigned long long)l->aperture,
	      (unsigned long long)l->page_size, ret);
	if (ret < 0) {
		if (!started)
			l->vdev = NULL; /* nothing to stop */
		device_log_stop(l);
		return ret;
	}
	*out = l;
	return 0;
}

void device_log_on_read(struct device_log *l, void (*fn)(void *), void *arg)
{
	l->on_read = fn;
	l->on_read_arg = arg;
}

void device_log_stop(struct device_log *l)
{
	if (!l)
		return;
	if (l->vdev)
		dlog_feature(l->vdev,
			     VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, NULL,
			     0);
	free(l->cur.e);
	free(l->pending.e);
	free(l->bits);
	free(l);
}

/* Harvest --------------------------------------------------------------------------------- */

/* Reads and clears [lo, hi) of the log into l->bits (bit 0 = lo). */
static int dlog_report(struct device_log *l, uint64_t lo, uint64_t hi)
{
	struct vfio_device_feature_dma_logging_report r = {
	    .iova = lo, .length = hi - lo, .page_size = l->page_size, .bitmap = (uintptr_t)l->bits};

	memset(l->bits, 0, bitmap_bytes((hi - lo) / l->page_size));
	return dlog_feature(l->vdev,
			    VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, &r,
			    sizeof(r));
}

/* Appends the IOVA of every page set in l->bits (bit 0 = lo) to dirty, in runs. */
static int dlog_collect(struct device_log *l, uint64_t lo, uint64_t hi, struct s1_map *dirty)
{
	uint64_t nbits = (hi - lo) / l->page_size;
	int ret = 0;

	for (uint64_t w = 0; w < bitmap_words(nbits) && ret == 0; w++)
		for (uint64_t v = l->bits[w]; v && ret == 0; v &= v - 1) {
			struct s1_extent x = {.iova = lo + (w * 64 + (unsigned)__builtin_ctzll(v)) *
							       l->page_size,
					      .size = l->page_size};
			struct s1_extent *last = dirty->n ? &dirty->e[dirty->n - 1] : NULL;
			if (last && last->iova + last->size == x.iova)
				last->size += x.size;
			else
				ret = dlog_map_push(dirty, &x);
		}
	return ret;
}

static int dlog_read_range(struct device_log *l, uint64_t lo, uint64_t hi, struct s1_map *dirty)
{
	uint64_t step = DLOG_REPORT_BITS * l->page_size;
	int ret = 0;

	lo = ALIGN_DOWN(lo, l->page_size);
	hi = MIN(ALIGN_UP(hi, l->page_size), l->aperture);
	for (uint64_t a = lo; a < hi && ret == 0; a += step) {
		uint64_t b = MIN(hi, a + step);
		ret = dlog_report(l, a, b);
		if (ret == 0)
			ret = dlog_collect(l, a, b, dirty);
	}
	return ret;
}

/*
 * Where the device could have written: every IOVA some translation it may use maps (the
 * tables now, as last seen, and pending), merged at the log's page size; all of RAM for a
 * stream in bypass. Reading the whole 48-bit aperture instead would cost tens of
 * milliseconds at every guest invalidation.
 */
static int dlog_read_windows(struct device_log *l, const struct s1_map *const maps[3],
			     struct s1_map *dirty)
{
	struct s1_map w = {0};
	int ret = 0;

	for (unsigned k = 0; k < 3 && ret == 0; k++) {
		for (size_t i = 0; i < maps[k]->n && ret == 0; i++)
			ret = dlog_map_push(&w, &maps[k]->e[i]);
		for (unsigned r = 0; maps[k]->identity && ret == 0 && r < l->mem->nr_regions; r++) {
			struct s1_extent x = {.iova = l->mem->regions[r].gpa,
					      .size = l->mem->regions[r].size};
			ret = dlog_map_push(&w, &x);
		}
	}
	if (ret == 0)
		dlog_sort(&w, dlog_extent_cmp);
	for (size_t i = 0; i < w.n && ret == 0;) {
		uint64_t lo = w.e[i].iova, hi = w.e[i].iova + w.e[i].size;
		for (i++; i < w.n && ALIGN_DOWN(w.e[i].iova, l->page_size) <= hi; i++)
			hi = MAX(hi, w.e[i].iova + w.e[i].size);
		ret = dlog_read_range(l, lo, hi, dirty);
	}
	free(w.e);
	return ret;
}

/* Marks the GPAs of every logged run through each of maps; *pages: how many, each once. */
static int dlog_translate(const struct s1_map *dirty, const struct s1_map *const maps[],
			  unsigned nmaps, struct migration *mig, bool blind, uint64_t *pages)
{
	struct s1_map gpas = {.max = DLOG_MAX_EXTENTS + 4};
	int ret = 0;

	/* A run reaches at most every extent of every map once (plus identity). */
	for (unsigned k = 0; k < nmaps; k++)
		gpas.max += maps[k]->n;
	*pages = 0;
	for (size_t i = 0; i < dirty->n && ret == 0; i++) {
		gpas.n = 0;
		for (unsigned k = 0; k < nmaps && ret == 0; k++)
			ret = dlog_map_gpas(maps[k], dirty->e[i].iova, dirty->e[i].size, &gpas);
		if (ret == 0)
			*pages += dlog_mark_union(&gpas, mig, blind);
	}
	free(gpas.e);
	return ret;
}

/*
 * 1. the tables now ("pre"); 2. read and clear the log where pre, the last look and the
 * pending translations map; 3. the tables again ("post", after the read: a change made
 * meanwhile is in one of the two); 4. every logged page through pre, post, the last look
 * and pending; 5. what left the tables goes pending; the commands about to be forwarded
 * cover some of it; post becomes the last look.
 */
int device_log_harvest(struct device_log *l, struct migration *mig, bool blind, bool current_only,
		       const uint64_t (*cmds)[2], size_t ncmds, uint64_t *pages)
{
	struct s1_map pre = {0}, post = {0};
	/* Runs of logged pages: at most one per two pages of RAM, or a guest's many aliases. */
	struct s1_map dirty = {.max = MAX(DLOG_MAX_EXTENTS, l->mem->gpa_pages / 2 + 1)};

	l->mig = mig;
	l->blind = blind;
	int ret = dlog_map_take(l, &pre);
	const struct s1_map *const where[3] = {&pre, &l->cur, &l->pending};
	if (ret == 0)
		ret = dlog_read_windows(l, where, &dirty);
	if (ret == 0 && l->on_read)
		l->on_read(l->on_read_arg);
	if (ret == 0)
		ret = dlog_map_take(l, &post);
	const struct s1_map *const all[4] = {&post, &pre, &l->cur, &l->pending};
	*pages = 0;
	if (ret == 0)
		ret = dlog_translate(&dirty, all, current_only ? 1 : 4, mig, blind, pages);
	if (ret == 0)
		ret = dlog_pending_add(l, &l->cur, &post);
	if (ret == 0)
		ret = dlog_pending_add(l, &pre, &post);
	l->harvest_no++;
	if (ret == 0)
		dlog_pending_commands(l, cmds, ncmds);
	free(l->cur.e);
	l->cur = post;
	free(pre.e);
	free(dirty.e);
	l->mig = NULL;
	return ret;
}
