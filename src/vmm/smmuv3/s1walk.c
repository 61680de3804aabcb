// SPDX-License-Identifier: Apache-2.0
/*
 * The guest's stage-1 tables as the VMM reads them (AArch64 descriptors, 4 KiB granule,
 * the only one vsmmu_cd_decode accepts): one translation, or every mapping. For migration:
 * a device's DMA log names IOVAs, and they become guest-physical addresses here.
 *
 * Permissions are read conservatively: a leaf is "writable" unless AP[2] says read-only
 * with no DBM bit (with DBM the SMMU's dirty-state update makes it writable); APTable
 * restrictions are not applied (they can only remove writes, and over-reporting is safe).
 */
#include <errno.h>

#include "vmm/smmuv3/internal.h"

#define S1_VALID   1ull
#define S1_TABLE   2ull /* bit 1 at levels 0-2: table (page at level 3) */
#define S1_AP2	   (1ull << 7)
#define S1_DBM	   (1ull << 51)
#define S1_OA_MASK 0x0000FFFFFFFFF000ull

struct s1_walk {
	struct vsmmu *vs;
	vsmmu_s1_fn fn;
	void *opaque;
	unsigned visited; /* table pages read: a hostile guest's loop ends at the bound */
};

#define S1_MAX_TABLES 65536u

static unsigned s1_level_shift(unsigned level)
{
	return 12 + 9 * (3 - level);
}

static unsigned s1_start_level(const struct vsmmu_cd *cd)
{
	unsigned in_bits = 64 - cd->t0sz;

	return 4 - (in_bits - 12 + 8) / 9;
}

static int s1_read_desc(struct vsmmu *vs, uint64_t table, unsigned idx, uint64_t *d)
{
	uint8_t b[8];

	if (vs->plat.ram_read(vs->plat.opaque, table + idx * 8ull, b, 8) < 0)
		return -EIO;
	*d = 0;
	for (unsigned i = 0; i < 8; i++)
		*d |= (uint64_t)b[i] << (8 * i);
	return 0;
}

static bool s1_is_table(uint64_t d, unsigned level)
{
	return level < 3 && (d & S1_TABLE);
}

static bool s1_is_leaf(uint64_t d, unsigned level)
{
	return level == 3 ? (d & S1_TABLE) != 0 : (level >= 1 && !(d & S1_TABLE));
}

static bool s1_configured(const struct vsmmu_cd *cd)
{
	return cd->valid && !cd->epd0 && cd->tg0 == 0 && cd->t0sz >= 16 && cd->t0sz <= 39;
}

int vsmmu_s1_translate(struct vsmmu *vs, const struct vsmmu_cd *cd, uint64_t iova, uint64_t *gpa)
{
	if (!s1_configured(cd) || (cd->t0sz < 64 && (iova >> (64 - cd->t0sz))))
		return -ENOENT;
	uint64_t table = cd->ttb0 & S1_OA_MASK, d;
	for (unsigned level = s1_start_level(cd); level <= 3; level++) {
		unsigned shift = s1_level_shift(level);
		int ret = s1_read_desc(vs, table, (unsigned)((iova >> shift) & 511), &d);
		if (ret < 0)
			return ret;
		if (!(d & S1_VALID))
			return -ENOENT;
		if (s1_is_leaf(d, level)) {
			uint64_t size = 1ull << shift;
			*gpa = (d & S1_OA_MASK & ~(size - 1)) | (iova & (size - 1));
			return 0;
		}
		if (!s1_is_table(d, level))
			return -ENOENT;
		table = d & S1_OA_MASK;
	}
	return -ENOENT;
}

static int s1_walk_table(struct s1_walk *w, uint64_t table, unsigned level, uint64_t base)
{
	if (++w->visited > S1_MAX_TABLES)
		return -ELOOP;
	for (unsigned i = 0; i < 512; i++) {
		uint64_t d, iova = base + ((uint64_t)i << s1_level_shift(level));
		int ret = s1_read_desc(w->vs, table, i, &d);
		if (ret < 0)
			return ret;
		if (!(d & S1_VALID))
			continue;
		if (s1_is_leaf(d, level)) {
			bool writable = !(d & S1_AP2) || (d & S1_DBM);
			uint64_t size = 1ull << s1_level_shift(level);
			if (writable)
				w->fn(w->opaque, iova, d & S1_OA_MASK & ~(size - 1), size);
		} else if (s1_is_table(d, level) &&
			   (ret = s1_walk_table(w, d & S1_OA_MASK, level + 1, iova)) < 0) {
			return ret;
		}
	}
	return 0;
}

int vsmmu_s1_for_each_writable(struct vsmmu *vs, const struct vsmmu_cd *cd, vsmmu_s1_fn fn,
			       void *opaque)
{
	struct s1_walk w = {.vs = vs, .fn = fn, .opaque = opaque};

	if (!s1_configured(cd))
		return 0;
	return s1_walk_table(&w, cd->ttb0 & S1_OA_MASK, s1_start_level(cd), 0);
}

/* How many SSIDs vsid's STE allows (1 without substreams). */
static uint32_t s1_ssids(struct vsmmu *vs, uint32_t vsid)
{
	struct vsmmu_ste ste;
	uint64_t addr;

	if (vsmmu_ste_get(vs, vsid, &ste, &addr) || ste.kind != VSMMU_STE_S1 || !ste.s1cdmax)
		return 1;
	return ste.s1cdmax >= 11 ? VSMMU_S1_MAX_SSIDS : 1u << ste.s1cdmax;
}

int vsmmu_sid_s1_writable_locked(struct vsmmu *vs, uint32_t vsid, vsmmu_s1_fn fn, void *opaque)
{
	struct vsmmu_ste ste;
	struct vsmmu_cd cd;
	int ret = 0;

	vsmmu_config_resolve(vs, vsid, false, &ste);
	if (ste.kind == VSMMU_STE_ABORT)
		return 0;
	/* Bypass (an STE, GBPA, or S1DSS for traffic without a PASID): IOVA = GPA. */
	bool identity =
	    ste.kind == VSMMU_STE_BYPASS || (ste.s1cdmax && ste.s1dss == STE_S1DSS_BYPASS);
	if (!identity && vsmmu_cd_lookup_locked(vs, vsid, false, 0, &cd) == 0)
		ret = vsmmu_s1_for_each_writable(vs, &cd, fn, opaque);
	if (ste.kind == VSMMU_STE_BYPASS)
		return VSMMU_S1_IDENTITY;
	uint32_t n = s1_ssids(vs, vsid);
	for (uint32_t ssid = 1; ssid < n && ret == 0; ssid++) {
		if (vsmmu_cd_lookup_locked(vs, vsid, true, ssid, &cd) == 0)
			ret = vsmmu_s1_for_each_writable(vs, &cd, fn, opaque);
	}
	return ret == 0 && identity ? VSMMU_S1_IDENTITY : ret;
}
