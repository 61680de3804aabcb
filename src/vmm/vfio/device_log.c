// SPDX-License-Identifier: Apache-2.0
/* Device DMA logging, translated through the guest's stage 1 (device_log.h). */
#include "vmm/vfio/device_log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
};

struct s1_map {
	struct s1_extent *e;
	size_t n, cap;
	bool broken; /* an allocation failed: the map is incomplete */
};

#define DLOG_GENERATIONS 3	      /* now, the last harvest's record, the one before */
#define DLOG_REPORT_BITS (1u << 16)   /* pages per report call (an 8 KiB bitmap) */
#define S1_LARGEST_LEAF	 (1ull << 30) /* a 4 KiB-granule level-1 block */

struct device_log {
	struct vfio_device *vdev;
	struct vsmmu *vs;
	uint32_t vsid;
	const struct guest_mem *mem;
	uint64_t aperture, page_size;
	uint64_t *bits;
	struct s1_map gen[DLOG_GENERATIONS];
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

/* Records of the guest's tables ---------------------------------------------------------- */

static void dlog_map_add(void *opaque, uint64_t iova, uint64_t gpa, uint64_t size)
{
	struct s1_map *m = opaque;

	if (m->n == m->cap) {
		size_t cap = m->cap ? 2 * m->cap : 256;
		struct s1_extent *e = realloc(m->e, cap * sizeof(*e));
		if (!e) {
			m->broken = true;
			return;
		}
		m->e = e;
		m->cap = cap;
	}
	m->e[m->n++] = (struct s1_extent){.iova = iova, .gpa = gpa, .size = size};
}

static int dlog_extent_cmp(const void *a, const void *b)
{
	const struct s1_extent *x = a, *y = b;

	return x->iova < y->iova ? -1 : x->iova > y->iova;
}

static int dlog_map_sort(struct s1_map *m)
{
	if (m->broken)
		return -ENOMEM;
	qsort(m->e, m->n, sizeof(*m->e), dlog_extent_cmp);
	return 0;
}

/* Today's writable mappings of every CD of the stream (RAM itself in bypass), by IOVA. */
static int dlog_map_take(struct device_log *l, struct s1_map *m)
{
	m->n = 0;
	m->broken = false;
	int ret = vsmmu_sid_s1_writable_locked(l->vs, l->vsid, dlog_map_add, m);
	for (unsigned i = 0; ret == VSMMU_S1_IDENTITY && i < l->mem->nr_regions; i++)
		dlog_map_add(m, l->mem->regions[i].gpa, l->mem->regions[i].gpa,
			     l->mem->regions[i].size);
	return ret < 0 ? ret : dlog_map_sort(m);
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

/*
 * Marks the GPAs [iova, iova + len) maps to in m. Extents of several CDs may overlap in
 * IOVA (the log has no PASID): every one of them counts, so scan past the first.
 */
static uint64_t dlog_map_mark(const struct s1_map *m, uint64_t iova, uint64_t len,
			      struct migration *mig, bool blind)
{
	uint64_t pages = 0;

	for (size_t i = dlog_map_find(m, iova); i < m->n; i++) {
		const struct s1_extent *e = &m->e[i];
		uint64_t lo = MAX(iova, e->iova), hi = MIN(iova + len, e->iova + e->size);
		if (e->iova >= iova + len)
			break;
		if (lo >= hi)
			continue;
		uint64_t first = ALIGN_DOWN(e->gpa + (lo - e->iova), GUEST_PAGE_SIZE);
		uint64_t n = (ALIGN_UP(e->gpa + (hi - e->iova), GUEST_PAGE_SIZE) - first) >>
			     GUEST_PAGE_SHIFT;
		if (!blind)
			mig_dirty_mark(mig, first, n);
		pages += n;
	}
	return pages;
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
	if (ret == 0 && !(l->bits = bitmap_alloc(DLOG_REPORT_BITS)))
		ret = -ENOMEM;
	if (ret == 0)
		ret = dlog_map_take(l, &l->gen[0]);
	TRACE(device_log_start, "aperture=%#llx page=%#llx: %d", (unsigned long long)l->aperture,
	      (unsigned long long)l->page_size, ret);
	if (ret < 0) {
		device_log_stop(l);
		return ret;
	}
	*out = l;
	return 0;
}

void device_log_stop(struct device_log *l)
{
	if (!l)
		return;
	dlog_feature(l->vdev, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, NULL,
		     0);
	for (unsigned g = 0; g < DLOG_GENERATIONS; g++)
		free(l->gen[g].e);
	free(l->bits);
	free(l);
}

uint64_t device_log_page_size(const struct device_log *l)
{
	return l->page_size;
}

/* Harvest --------------------------------------------------------------------------------- */

/*
 * Where to read the log: a device write can only land on an IOVA some translation mapped
 * writable, so the windows are the extents of today's tables and of the two records, at
 * the log's page size, merged. Reading the whole 48-bit aperture each time would cost tens
 * of milliseconds per guest invalidation.
 */
static int dlog_windows(struct device_log *l, struct s1_map *w)
{
	int ret = dlog_map_take(l, w);

	for (unsigned g = 0; ret == 0 && g < DLOG_GENERATIONS - 1; g++)
		for (size_t i = 0; i < l->gen[g].n; i++)
			dlog_map_add(w, l->gen[g].e[i].iova, 0, l->gen[g].e[i].size);
	return ret < 0 ? ret : dlog_map_sort(w);
}

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

/* Appends the IOVA of every page set in l->bits (bit 0 = lo) to dirty. */
static void dlog_collect(struct device_log *l, uint64_t lo, uint64_t hi, struct s1_map *dirty)
{
	uint64_t nbits = (hi - lo) / l->page_size;

	for (uint64_t w = 0; w < bitmap_words(nbits); w++)
		for (uint64_t v = l->bits[w]; v; v &= v - 1)
			dlog_map_add(dirty,
				     lo + (w * 64 + (unsigned)__builtin_ctzll(v)) * l->page_size, 0,
				     l->page_size);
}

/* Reads every merged window, a bounded piece at a time, into dirty. */
static int dlog_read_windows(struct device_log *l, const struct s1_map *w, struct s1_map *dirty)
{
	uint64_t step = DLOG_REPORT_BITS * l->page_size;
	int ret = 0;

	for (size_t i = 0; i < w->n && ret == 0;) {
		uint64_t lo = ALIGN_DOWN(w->e[i].iova, l->page_size);
		uint64_t hi = ALIGN_UP(w->e[i].iova + w->e[i].size, l->page_size);
		for (i++; i < w->n && w->e[i].iova <= hi; i++)
			hi = MAX(hi, ALIGN_UP(w->e[i].iova + w->e[i].size, l->page_size));
		for (uint64_t a = lo; a < hi && ret == 0; a += step) {
			uint64_t b = MIN(hi, a + step);
			ret = dlog_report(l, a, b);
			if (ret == 0)
				dlog_collect(l, a, b, dirty);
		}
	}
	return ret == 0 && dirty->broken ? -ENOMEM : ret;
}

/*
 * 1. windows: where the device could have written (today's tables and the two records);
 * 2. read and clear the log there;
 * 3. today's tables again, after the read: a translation the guest changed meanwhile is
 *    there or in a record; this becomes the newest record;
 * 4. every logged page through every generation.
 */
int device_log_harvest(struct device_log *l, struct migration *mig, bool blind, bool current_only,
		       uint64_t *pages)
{
	struct s1_map windows = {0}, dirty = {0};
	int ret = dlog_windows(l, &windows);

	if (ret == 0)
		ret = dlog_read_windows(l, &windows, &dirty);
	struct s1_map oldest = l->gen[2];
	l->gen[2] = l->gen[1];
	l->gen[1] = l->gen[0];
	l->gen[0] = oldest;
	if (ret == 0)
		ret = dlog_map_take(l, &l->gen[0]);
	*pages = 0;
	for (size_t i = 0; ret == 0 && i < dirty.n; i++)
		for (unsigned g = 0; g < (current_only ? 1u : DLOG_GENERATIONS); g++)
			*pages +=
			    dlog_map_mark(&l->gen[g], dirty.e[i].iova, l->page_size, mig, blind);
	free(windows.e);
	free(dirty.e);
	return ret;
}
