// SPDX-License-Identifier: Apache-2.0
/*
 * The guest's stage-1 tables as the VMM reads them (AArch64 descriptors, 4 KiB granule,
 * the only one vsmmu_cd_decode accepts): every mapping the device may write through, and
 * every table page the SMMU may update (access/dirty bits). For migration: a device's DMA
 * log names IOVAs, and they become guest-physical addresses here.
 *
 * Permissions are read conservatively: a leaf is "writable" unless AP[2] says read-only
 * with no DBM bit (with DBM the SMMU's dirty-state update makes it writable); APTable
 * restrictions are not applied (they can only remove writes, and over-reporting is safe).
 * A table the VMM cannot read (outside guest RAM) translates nothing, as on the host.
 * Everything a guest controls is bounded: tables per look (VSMMU_S1_MAX_TABLES), SSIDs.
 */
#include <errno.h>

#include "vmm/smmuv3/internal.h"

#define S1_VALID    1ull
#define S1_TABLE    2ull /* bit 1 at levels 0-2: table (page at level 3) */
#define S1_AP2	    (1ull << 7)
#define S1_DBM	    (1ull << 51)
#define S1_OA_MASK  0x0000FFFFFFFFF000ull
#define S1_TTB_MASK 0x000FFFFFFFFFFFF0ull /* TTB0[51:4]: a small top table is 64-byte aligned */

struct s1_walk {
	struct vsmmu *vs;
	vsmmu_s1_fn fn;
	void *opaque;
	struct vsmmu_s1_leaf leaf; /* asid, ssid of the CD being walked */
	bool tables;		   /* report table pages (the CD lets the SMMU update them) */
	unsigned *budget;	   /* table pages left for this look */
};

static unsigned s1_level_shift(unsigned level)
{
	return 12 + 9 * (3 - level);
}

static unsigned s1_in_bits(const struct vsmmu_cd *cd)
{
	return 64 - cd->t0sz;
}

static unsigned s1_start_level(const struct vsmmu_cd *cd)
{
	return 4 - (s1_in_bits(cd) - 12 + 8) / 9;
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

static int s1_emit(struct s1_walk *w, uint64_t iova, uint64_t gpa, uint64_t size, bool table)
{
	struct vsmmu_s1_leaf l = w->leaf;

	l.iova = iova;
	l.gpa = gpa;
	l.size = size;
	l.table = table;
	return w->fn(w->opaque, &l);
}

static int s1_walk_table(struct s1_walk *w, uint64_t table, unsigned level, uint64_t base,
			 unsigned entries);

static int s1_walk_desc(struct s1_walk *w, uint64_t d, unsigned level, uint64_t iova)
{
	uint64_t size = 1ull << s1_level_shift(level);

	if (s1_is_leaf(d, level)) {
		bool writable = !(d & S1_AP2) || (d & S1_DBM);
		return writable ? s1_emit(w, iova, d & S1_OA_MASK & ~(size - 1), size, false) : 0;
	}
	return s1_is_table(d, level) ? s1_walk_table(w, d & S1_OA_MASK, level + 1, iova, 512) : 0;
}

static int s1_walk_table(struct s1_walk *w, uint64_t table, unsigned level, uint64_t base,
			 unsigned entries)
{
	int ret = 0;

	if (*w->budget == 0)
		return -E2BIG;
	(*w->budget)--;
	if (w->tables && (ret = s1_emit(w, 0, table & S1_OA_MASK, 4096, true)) != 0)
		return ret;
	for (unsigned i = 0; i < entries && ret == 0; i++) {
		uint64_t d;
		if (s1_read_desc(w->vs, table, i, &d) < 0)
			return 0; /* outside guest RAM: the host's walk would fault here too */
		if (d & S1_VALID)
			ret = s1_walk_desc(w, d, level,
					   base + ((uint64_t)i << s1_level_shift(level)));
	}
	return ret;
}

/* Walks one CD: fn for its writable leaves (and its table pages when the SMMU updates them). */
static int s1_walk_cd(struct s1_walk *w, const struct vsmmu_cd *cd, uint32_t ssid)
{
	unsigned level = s1_start_level(cd);
	unsigned entries = 1u << (s1_in_bits(cd) - s1_level_shift(level));

	if (!s1_configured(cd))
		return 0;
	w->leaf = (struct vsmmu_s1_leaf){.asid = cd->asid, .ssid = ssid};
	w->tables = cd->ha || cd->hd;
	return s1_walk_table(w, cd->ttb0 & S1_TTB_MASK, level, 0, entries > 512 ? 512 : entries);
}

#define S1_MAX_CD_LOOKUPS (1u << 16) /* SSIDs looked at per look, whatever S1CDMax says */

/* SSIDs first .. first + n - 1, each CD that is valid walked. */
static int s1_walk_ssids(struct s1_walk *w, uint32_t vsid, uint32_t first, uint32_t n,
			 unsigned *lookups)
{
	struct vsmmu_cd cd;
	int ret = 0;

	for (uint32_t ssid = first; ssid < first + n && ret == 0; ssid++) {
		if (!(*lookups)--)
			return -E2BIG;
		if (ssid && vsmmu_cd_lookup_locked(w->vs, vsid, true, ssid, &cd) == 0)
			ret = s1_walk_cd(w, &cd, ssid);
	}
	return ret;
}

/*
 * Every SSID the STE allows: a linear table whole (up to 2^VSMMU_S1_MAX_SSIDS_LOG2), a
 * 2-level one only under its valid level-1 descriptors (a guest with 20-bit PASIDs and a
 * few in use costs a few leaves).
 */
static int s1_walk_substreams(struct s1_walk *w, uint32_t vsid, const struct vsmmu_ste *ste)
{
	unsigned lookups = S1_MAX_CD_LOOKUPS;

	if (ste->kind != VSMMU_STE_S1 || !ste->s1cdmax)
		return 0;
	if (ste->s1fmt == STE_S1FMT_LINEAR)
		return ste->s1cdmax > VSMMU_S1_MAX_SSIDS_LOG2
			   ? -E2BIG
			   : s1_walk_ssids(w, vsid, 0, 1u << ste->s1cdmax, &lookups);
	unsigned split = ste->s1fmt == STE_S1FMT_64K_L2 ? CD_L2_SPLIT : 6;
	unsigned leaves = ste->s1cdmax > split ? 1u << (ste->s1cdmax - split) : 1;
	int ret = 0;
	for (unsigned i = 0; i < leaves && ret == 0; i++) {
		uint64_t desc;
		if (s1_read_desc(w->vs, ste->cd_table_gpa, i, &desc) < 0)
			break;
		if (desc & 1) /* CD_L1.V */
			ret = s1_walk_ssids(w, vsid, i << split, 1u << split, &lookups);
	}
	return ret;
}

int vsmmu_sid_s1_writable_locked(struct vsmmu *vs, uint32_t vsid, vsmmu_s1_fn fn, void *opaque)
{
	unsigned budget = VSMMU_S1_MAX_TABLES;
	struct s1_walk w = {.vs = vs, .fn = fn, .opaque = opaque, .budget = &budget};
	struct vsmmu_ste ste;
	struct vsmmu_cd cd;
	int ret = 0;

	vsmmu_config_resolve(vs, vsid, false, &ste);
	if (ste.kind == VSMMU_STE_ABORT)
		return 0;
	if (ste.kind == VSMMU_STE_BYPASS)
		return VSMMU_S1_IDENTITY;
	/* S1DSS bypass: traffic without a PASID has IOVA = GPA. */
	bool identity = ste.s1cdmax && ste.s1dss == STE_S1DSS_BYPASS;
	if (!identity && vsmmu_cd_lookup_locked(vs, vsid, false, 0, &cd) == 0)
		ret = s1_walk_cd(&w, &cd, 0);
	if (ret == 0)
		ret = s1_walk_substreams(&w, vsid, &ste);
	return ret == 0 && identity ? VSMMU_S1_IDENTITY : ret;
}
