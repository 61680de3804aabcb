// SPDX-License-Identifier: Apache-2.0
/* IOAS (map_file, unmap, MSI windows), paging HWPTs (stage 2) and dirty tracking. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/bitmap.h"
#include "common/trace.h"
#include "host/iommu/iommufd_internal.h"

#define IFD_IA_BITS 48
#define IFD_PAGE    4096ull
#define IFD_MAP_FLAGS                                                                              \
	(IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE)

/* ---- helpers ---- */

/* Next paging HWPT of ioas after 'from' (NULL: first). */
static struct ifd_hwpt_paging *ifd_next_hwpt(struct iommufd_ctx *ctx, struct ifd_ioas *ioas,
					     struct ifd_hwpt_paging *from)
{
	uint32_t i = from ? from->obj.id : 0;

	for (; i < ctx->nobjs; i++) {
		struct ifd_obj *o = ctx->objs[i];
		if (o && o->type == IFD_HWPT_PAGING && ((struct ifd_hwpt_paging *)o)->ioas == ioas)
			return (struct ifd_hwpt_paging *)o;
	}
	return NULL;
}

#define for_each_hwpt(ctx, ioas, hp)                                                               \
	for (struct ifd_hwpt_paging *hp = ifd_next_hwpt(ctx, ioas, NULL); hp;                      \
	     hp = ifd_next_hwpt(ctx, ioas, hp))

static unsigned ifd_area_pgprot(const struct ifd_hwpt_paging *hp, const struct ifd_area *a)
{
	unsigned prot = a->prot;

	/* Dirty tracking logs 4 KiB pages: no blocks, so a write dirties one page. */
	if (hp->flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING)
		prot |= PGT_PAGES;
	if ((prot & PGT_W) && (hp->flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) && !a->msi)
		prot |= PGT_DBM;
	return prot;
}

static int ifd_area_map_one(struct ifd_hwpt_paging *hp, const struct ifd_area *a)
{
	int rc = pgtable_map(&hp->pt, a->iova, a->pa, a->len, ifd_area_pgprot(hp, a));
	if (rc)
		pgtable_unmap(&hp->pt, a->iova, a->len); /* whatever part got in */
	return rc;
}

/* Maps a new area into every paging HWPT of the IOAS, all or nothing. */
static int ifd_area_map_all(struct iommufd_ctx *ctx, struct ifd_ioas *ioas,
			    const struct ifd_area *a)
{
	for_each_hwpt(ctx, ioas, hp)
	{
		int rc = ifd_area_map_one(hp, a);
		if (rc) {
			for (struct ifd_hwpt_paging *u = ifd_next_hwpt(ctx, ioas, NULL); u != hp;
			     u = ifd_next_hwpt(ctx, ioas, u))
				pgtable_unmap(&u->pt, a->iova, a->len);
			return rc;
		}
	}
	return 0;
}

static void ifd_hwpt_flush(struct iommufd_ctx *ctx, struct ifd_hwpt_paging *hp)
{
	/* Stage-2-only and combined (nested) entries of this VMID. */
	ifd_cmd(ctx->host, smmu_cmd_tlbi_s12_vmall(hp->vmid));
}

static void ifd_area_release(struct iommufd_ctx *ctx, struct ifd_area *a)
{
	if (a->msi)
		ifd_msi_free(a->msi);
	else
		hostmem_remove(ctx->host->hm, a->pa);
}

static bool ifd_overlaps(const struct ifd_ioas *ioas, uint64_t iova, uint64_t len)
{
	for (unsigned i = 0; i < ioas->n; i++)
		if (iova < ioas->areas[i].iova + ioas->areas[i].len &&
		    ioas->areas[i].iova < iova + len)
			return true;
	return false;
}

static int ifd_area_insert(struct ifd_ioas *ioas, const struct ifd_area *a)
{
	if (ioas->n == ioas->cap) {
		unsigned cap = ioas->cap ? ioas->cap * 2 : 8;
		struct ifd_area *n = realloc(ioas->areas, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		ioas->areas = n;
		ioas->cap = cap;
	}
	unsigned i = ioas->n;
	while (i > 0 && ioas->areas[i - 1].iova > a->iova) {
		ioas->areas[i] = ioas->areas[i - 1];
		i--;
	}
	ioas->areas[i] = *a;
	ioas->n++;
	return 0;
}

/* ---- IOAS ---- */

int iommufd_ioas_alloc(struct iommufd_ctx *ctx, uint32_t *ioas_id)
{
	if (!ctx || !ioas_id)
		return -EINVAL;
	struct ifd_ioas *ioas = calloc(1, sizeof(*ioas));
	if (!ioas)
		return -ENOMEM;
	pthread_mutex_lock(&ctx->lock);
	int rc = ifd_obj_add(ctx, &ioas->obj, IFD_IOAS);
	pthread_mutex_unlock(&ctx->lock);
	if (rc) {
		free(ioas);
		return rc;
	}
	*ioas_id = ioas->obj.id;
	return 0;
}

void ifd_ioas_destroy(struct iommufd_ctx *ctx, struct ifd_ioas *ioas)
{
	/* No HWPT uses it (users == 0), so no DMA can reach these areas. */
	for (unsigned i = 0; i < ioas->n; i++)
		ifd_area_release(ctx, &ioas->areas[i]);
	ifd_obj_remove(ctx, &ioas->obj);
	free(ioas->areas);
	free(ioas);
}

/* The kernel picks an IOVA: above 4 GiB, after every area, 1 GiB aligned. */
static uint64_t ifd_pick_iova(const struct ifd_ioas *ioas)
{
	uint64_t at = 4 * GiB;
	for (unsigned i = 0; i < ioas->n; i++)
		at = MAX(at, ioas->areas[i].iova + ioas->areas[i].len);
	return ALIGN_UP(at, 1 * GiB);
}

static int ifd_map_checks(int memfd, uint64_t offset, uint64_t length, uint64_t iova,
			  uint32_t flags)
{
	struct stat st;

	if (flags & ~IFD_MAP_FLAGS)
		return -EOPNOTSUPP;
	if (!(flags & (IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)) || !length ||
	    !IS_ALIGNED(offset, IFD_PAGE) || !IS_ALIGNED(length, IFD_PAGE) ||
	    ((flags & IOMMU_IOAS_MAP_FIXED_IOVA) && !IS_ALIGNED(iova, IFD_PAGE)))
		return -EINVAL;
	if (offset + length < offset ||
	    ((flags & IOMMU_IOAS_MAP_FIXED_IOVA) && iova + length < iova))
		return -EOVERFLOW;
	if ((flags & IOMMU_IOAS_MAP_FIXED_IOVA) && ((iova + length - 1) >> IFD_IA_BITS))
		return -EINVAL;
	if (fstat(memfd, &st))
		return -EBADF;
	if ((uint64_t)st.st_size < offset + length)
		return -EINVAL;
	return 0;
}

/* Adds a mapped area (file region or doorbell at a->pa) to the IOAS. Caller holds lock. */
static int ifd_ioas_add_area(struct iommufd_ctx *ctx, struct ifd_ioas *ioas, struct ifd_area *a)
{
	if (ifd_overlaps(ioas, a->iova, a->len))
		return -EEXIST;
	int rc = ifd_area_map_all(ctx, ioas, a);
	if (rc)
		return rc;
	rc = ifd_area_insert(ioas, a);
	if (rc) {
		for_each_hwpt(ctx, ioas, hp)
		{
			pgtable_unmap(&hp->pt, a->iova, a->len);
		}
	}
	return rc;
}

int iommufd_ioas_map_file(struct iommufd_ctx *ctx, uint32_t ioas_id, int memfd, uint64_t offset,
			  uint64_t length, uint64_t *iova, uint32_t flags)
{
	if (!ctx || !iova)
		return -EINVAL;
	int rc = ifd_map_checks(memfd, offset, length, *iova, flags);
	if (rc)
		return rc;
	pthread_mutex_lock(&ctx->lock);
	struct ifd_ioas *ioas = (struct ifd_ioas *)ifd_obj_get(ctx, ioas_id, IFD_IOAS);
	struct ifd_area a = {.len = length};
	a.iova = (flags & IOMMU_IOAS_MAP_FIXED_IOVA) ? *iova : ioas ? ifd_pick_iova(ioas) : 0;
	a.prot = ((flags & IOMMU_IOAS_MAP_READABLE) ? PGT_R : 0) |
		 ((flags & IOMMU_IOAS_MAP_WRITEABLE) ? PGT_W : 0);
	if (!ioas)
		rc = -ENOENT;
	else if (ifd_overlaps(ioas, a.iova, length))
		rc = -EEXIST;
	else
		rc = hostmem_map_file(ctx->host->hm, memfd, offset, length, &a.pa);
	if (!rc) {
		rc = ifd_ioas_add_area(ctx, ioas, &a);
		if (rc)
			hostmem_remove(ctx->host->hm, a.pa);
	}
	pthread_mutex_unlock(&ctx->lock);
	if (!rc)
		*iova = a.iova;
	TRACE(iommufd_map, "ioas=%u iova=%#llx len=%#llx rc=%d", ioas_id,
	      (unsigned long long)a.iova, (unsigned long long)length, rc);
	return rc;
}

int iommufd_ioas_map_msi_window(struct iommufd_ctx *ctx, uint32_t ioas_id, uint64_t iova,
				uint64_t length, int *fd)
{
	int p[2];

	if (!ctx || !fd || !length || !IS_ALIGNED(iova, IFD_PAGE) || !IS_ALIGNED(length, IFD_PAGE))
		return -EINVAL;
	if (iova + length < iova)
		return -EOVERFLOW;
	struct ifd_msi *m = calloc(1, sizeof(*m));
	if (!m || pipe2(p, O_CLOEXEC)) {
		free(m);
		return -ENOMEM;
	}
	fcntl(p[1], F_SETFL, O_NONBLOCK);
	*m = (struct ifd_msi){
	    .host = ctx->host, .rfd = p[0], .wfd = p[1], .iova = iova, .len = length};
	pthread_mutex_lock(&ctx->lock);
	struct ifd_ioas *ioas = (struct ifd_ioas *)ifd_obj_get(ctx, ioas_id, IFD_IOAS);
	int rc = !ioas ? -ENOENT : ifd_overlaps(ioas, iova, length) ? -EEXIST : 0;
	if (!rc)
		rc = hostmem_alloc_doorbell(ctx->host->hm, length, ifd_msi_doorbell, m, &m->pa);
	struct ifd_area a = {
	    .iova = iova, .len = length, .pa = m->pa, .prot = PGT_R | PGT_W, .msi = m};
	if (!rc && (rc = ifd_ioas_add_area(ctx, ioas, &a)))
		hostmem_remove(ctx->host->hm, m->pa);
	pthread_mutex_unlock(&ctx->lock);
	if (rc) {
		close(p[0]);
		close(p[1]);
		free(m);
		return rc;
	}
	*fd = p[0];
	return 0;
}

/* Which areas [iova, iova+length) covers: -ENOENT if one is cut or none is inside. */
static int ifd_unmap_select(const struct ifd_ioas *ioas, uint64_t iova, uint64_t last,
			    unsigned *first, unsigned *count)
{
	unsigned f = ioas->n, c = 0;

	for (unsigned i = 0; i < ioas->n; i++) {
		const struct ifd_area *a = &ioas->areas[i];
		uint64_t alast = a->iova + a->len - 1;
		if (alast < iova || a->iova > last)
			continue;
		if (a->iova < iova || alast > last)
			return -ENOENT;
		f = MIN(f, i);
		c++;
	}
	*first = f;
	*count = c;
	return c ? 0 : -ENOENT;
}

static uint64_t ifd_unmap_areas(struct iommufd_ctx *ctx, struct ifd_ioas *ioas, unsigned first,
				unsigned count)
{
	uint64_t bytes = 0;

	for (unsigned i = first; i < first + count; i++) {
		for_each_hwpt(ctx, ioas, hp)
		{
			pgtable_unmap(&hp->pt, ioas->areas[i].iova, ioas->areas[i].len);
		}
		bytes += ioas->areas[i].len;
	}
	for_each_hwpt(ctx, ioas, hp)
	{
		ifd_hwpt_flush(ctx, hp);
	}
	ifd_sync(ctx->host); /* no DMA uses the old translations any more */
	for_each_hwpt(ctx, ioas, hp)
	{
		pgtable_reclaim(&hp->pt);
	}
	for (unsigned i = first; i < first + count; i++)
		ifd_area_release(ctx, &ioas->areas[i]);
	memmove(&ioas->areas[first], &ioas->areas[first + count],
		(ioas->n - first - count) * sizeof(ioas->areas[0]));
	ioas->n -= count;
	return bytes;
}

int iommufd_ioas_unmap(struct iommufd_ctx *ctx, uint32_t ioas_id, uint64_t iova, uint64_t length,
		       uint64_t *unmapped)
{
	unsigned first, count;

	if (!ctx || !length)
		return -EINVAL;
	if (iova + length - 1 < iova)
		return -EOVERFLOW;
	pthread_mutex_lock(&ctx->lock);
	struct ifd_ioas *ioas = (struct ifd_ioas *)ifd_obj_get(ctx, ioas_id, IFD_IOAS);
	int rc = ioas ? ifd_unmap_select(ioas, iova, iova + length - 1, &first, &count) : -ENOENT;
	uint64_t bytes = rc ? 0 : ifd_unmap_areas(ctx, ioas, first, count);
	pthread_mutex_unlock(&ctx->lock);
	if (unmapped)
		*unmapped = bytes;
	return rc;
}

/* ---- paging HWPT ---- */

int ifd_hwpt_paging_new(struct iommufd_ctx *ctx, struct ifd_ioas *ioas, uint32_t flags,
			bool auto_domain, struct ifd_hwpt_paging **out)
{
	struct ifd_hwpt_paging *hp = calloc(1, sizeof(*hp));
	struct pgt_mem mem = pgt_mem_hostmem(ctx->host->hm);
	int rc;

	if (!hp)
		return -ENOMEM;
	hp->ioas = ioas;
	hp->flags = flags;
	hp->auto_domain = auto_domain;
	rc = ifd_vmid_alloc(ctx->host, &hp->vmid);
	if (rc) {
		free(hp);
		return rc;
	}
	rc = pgtable_init(&hp->pt, &mem, 2, IFD_IA_BITS, PGT_LEVEL_AUTO);
	for (unsigned i = 0; !rc && i < ioas->n; i++)
		rc = ifd_area_map_one(hp, &ioas->areas[i]);
	if (!rc)
		rc = ifd_obj_add(ctx, &hp->obj, IFD_HWPT_PAGING);
	if (rc) {
		pgtable_fini(&hp->pt);
		ifd_vmid_free(ctx->host, hp->vmid);
		free(hp);
		return rc;
	}
	ioas->obj.users++;
	*out = hp;
	return 0;
}

void ifd_hwpt_paging_destroy(struct iommufd_ctx *ctx, struct ifd_hwpt_paging *hp)
{
	ifd_obj_remove(ctx, &hp->obj);
	ifd_hwpt_flush(ctx, hp);
	ifd_sync(ctx->host);
	pgtable_fini(&hp->pt);
	ifd_vmid_free(ctx->host, hp->vmid);
	hp->ioas->obj.users--;
	free(hp);
}

void ifd_ste_for_paging(const struct ifd_hwpt_paging *hp, uint64_t ste[8])
{
	bool dirty = hp->flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING;

	memset(ste, 0, 64);
	ste[0] = FVAL(STE0_V, 1) | FVAL(STE0_CONFIG, STE_CFG_S2);
	ste[1] = FVAL(STE1_SHCFG, 1);
	ste[2] = FVAL(STE2_S2VMID, hp->vmid) | FVAL(STE2_S2T0SZ, pgtable_txsz(&hp->pt)) |
		 FVAL(STE2_S2SL0, pgtable_s2_sl0(&hp->pt)) | FVAL(STE2_S2IR0, 1) |
		 FVAL(STE2_S2OR0, 1) | FVAL(STE2_S2SH0, 3) | FVAL(STE2_S2PS, 5) |
		 FVAL(STE2_S2AA64, 1) | FVAL(STE2_S2HA, 1) | FVAL(STE2_S2HD, dirty) |
		 FVAL(STE2_S2R, 1) | FVAL(STE2_S2PTW, 1);
	ste[3] = hp->pt.root & FMASK(STE3_S2TTB);
}

static int ifd_hwpt_paging_alloc(struct iommufd_ctx *ctx, struct iommu_hwpt_alloc *cmd)
{
	const uint32_t ok = IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_DIRTY_TRACKING;
	struct ifd_hwpt_paging *hp;

	if (cmd->flags & ~ok)
		return -EOPNOTSUPP;
	if (cmd->data_len || cmd->data_uptr)
		return -EINVAL;
	/* Without hardware dirty state every tracked write would fault: refuse, as Linux does. */
	if ((cmd->flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) && !ifd_host_dirty(ctx))
		return -EOPNOTSUPP;
	pthread_mutex_lock(&ctx->lock);
	struct ifd_ioas *ioas = (struct ifd_ioas *)ifd_obj_get(ctx, cmd->pt_id, IFD_IOAS);
	int rc = !ifd_obj_get(ctx, cmd->dev_id, IFD_DEVICE) || !ioas ? -ENOENT : 0;
	if (!rc)
		rc = ifd_hwpt_paging_new(ctx, ioas, cmd->flags, false, &hp);
	if (!rc)
		cmd->out_hwpt_id = hp->obj.id;
	pthread_mutex_unlock(&ctx->lock);
	return rc;
}

int iommufd_hwpt_alloc(struct iommufd_ctx *ctx, struct iommu_hwpt_alloc *cmd)
{
	if (!ctx || !cmd)
		return -EINVAL;
	if (cmd->__reserved || cmd->__reserved2)
		return -EOPNOTSUPP;
	if (cmd->data_type == IOMMU_HWPT_DATA_NONE)
		return ifd_hwpt_paging_alloc(ctx, cmd);
	if (cmd->data_type == IOMMU_HWPT_DATA_ARM_SMMUV3)
		return ifd_hwpt_nested_alloc(ctx, cmd);
	return -EOPNOTSUPP;
}

/* ---- dirty tracking ---- */

static struct ifd_hwpt_paging *ifd_dirty_hwpt(struct iommufd_ctx *ctx, uint32_t id, int *rc)
{
	struct ifd_hwpt_paging *hp =
	    (struct ifd_hwpt_paging *)ifd_obj_get(ctx, id, IFD_HWPT_PAGING);
	*rc = 0;
	if (!hp)
		*rc = -ENOENT;
	else if (!(hp->flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING))
		*rc = -EOPNOTSUPP;
	return *rc ? NULL : hp;
}

int iommufd_hwpt_set_dirty_tracking(struct iommufd_ctx *ctx, uint32_t hwpt_id, uint32_t flags)
{
	int rc;

	if (!ctx)
		return -EINVAL;
	if (flags & ~IOMMU_HWPT_DIRTY_TRACKING_ENABLE)
		return -EOPNOTSUPP;
	pthread_mutex_lock(&ctx->lock);
	struct ifd_hwpt_paging *hp = ifd_dirty_hwpt(ctx, hwpt_id, &rc);
	if (hp) {
		bool en = flags & IOMMU_HWPT_DIRTY_TRACKING_ENABLE;
		if (en && !hp->dirty_enabled) {
			pgtable_clean_all(&hp->pt, 0, 1ull << IFD_IA_BITS);
			ifd_hwpt_flush(ctx, hp);
			ifd_sync(ctx->host);
		}
		hp->dirty_enabled = en;
	}
	pthread_mutex_unlock(&ctx->lock);
	return rc;
}

struct ifd_bitmap {
	uint64_t *map;
	uint64_t iova, end;
	unsigned pgshift;
};

static void ifd_bitmap_mark(void *opaque, uint64_t iova, uint64_t size)
{
	struct ifd_bitmap *b = opaque;
	uint64_t lo = MAX(iova, b->iova), hi = MIN(iova + size, b->end);

	for (uint64_t a = lo; a < hi; a += 1ull << b->pgshift)
		bitmap_set_atomic(b->map, (a - b->iova) >> b->pgshift);
}

static int ifd_dirty_checks(const struct iommu_hwpt_get_dirty_bitmap *cmd)
{
	if (cmd->flags & ~IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR || cmd->__reserved)
		return -EOPNOTSUPP;
	if (!IS_POW2(cmd->page_size) || cmd->page_size < IFD_PAGE || !cmd->length ||
	    !IS_ALIGNED(cmd->iova, cmd->page_size) || !IS_ALIGNED(cmd->length, cmd->page_size))
		return -EINVAL;
	if (cmd->iova + cmd->length < cmd->iova)
		return -EOVERFLOW;
	if (!cmd->data)
		return -EFAULT;
	return 0;
}

static void ifd_harvest(struct iommufd_ctx *ctx, struct ifd_hwpt_paging *hp,
			const struct iommu_hwpt_get_dirty_bitmap *cmd)
{
	struct ifd_bitmap b = {.map = (uint64_t *)(uintptr_t)cmd->data,
			       .iova = cmd->iova,
			       .end = cmd->iova + cmd->length,
			       .pgshift = (unsigned)__builtin_ctzll(cmd->page_size)};
	uint64_t top = 1ull << IFD_IA_BITS;
	bool clear = !(cmd->flags & IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR);

	if (cmd->iova >= top)
		return;
	uint64_t len = MIN(b.end, top) - cmd->iova;
	int64_t n = pgtable_harvest(&hp->pt, cmd->iova, len, clear ? 0 : PGT_HARVEST_NO_CLEAR,
				    ifd_bitmap_mark, &b);
	if (n > 0 && clear) {
		/* Cached write permission must go: the next write re-walks and re-dirties. */
		ifd_cmd(ctx->host, smmu_cmd_tlbi_s2_ipa(hp->vmid, cmd->iova, len >> 12));
		ifd_sync(ctx->host);
	}
	TRACE(iommufd_dirty, "hwpt=%u iova=%#llx len=%#llx dirty=%lld", hp->obj.id,
	      (unsigned long long)cmd->iova, (unsigned long long)len, (long long)n);
}

int iommufd_hwpt_get_dirty_bitmap(struct iommufd_ctx *ctx,
				  const struct iommu_hwpt_get_dirty_bitmap *cmd)
{
	int rc;

	if (!ctx || !cmd)
		return -EINVAL;
	rc = ifd_dirty_checks(cmd);
	if (rc)
		return rc;
	pthread_mutex_lock(&ctx->lock);
	struct ifd_hwpt_paging *hp = ifd_dirty_hwpt(ctx, cmd->hwpt_id, &rc);
	if (hp && !hp->dirty_enabled)
		rc = -EINVAL;
	else if (hp)
		ifd_harvest(ctx, hp, cmd);
	pthread_mutex_unlock(&ctx->lock);
	return rc;
}
