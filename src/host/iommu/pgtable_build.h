/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test support (library host_iommu_testlib, dependency host_iommu_testlib_dep): build page
 * tables, stream table entries and context descriptors in plain memory, for tests of the
 * host SMMU, the device and the vSMMU.
 *
 * Page tables: see pgtable.h (struct pgtable, pgtable_init/map/unmap/harvest). This header
 * adds a memory source for them that is any buffer you can address by (I)PA:
 *
 *   struct pgt_buf buf;                     // tables placed in guest RAM, for example
 *   pgt_buf_init(&buf, ram + 0x100000, 0x100000, 1 << 20);   // host ptr, its (G)PA, size
 *   struct pgt_mem mem = pgt_buf_mem(&buf);
 *   struct pgtable s1;
 *   pgtable_init(&s1, &mem, 1, 48, PGT_LEVEL_AUTO);
 *   pgtable_map(&s1, iova, gpa, 4096, PGT_R | PGT_W);
 *   uint64_t cd[8];
 *   smmu_cd_build(cd, &s1, asid, SMMU_CD_R | SMMU_CD_HA | SMMU_CD_HD);
 *
 * STEs: smmu_ste_build() fills the 8 dwords from a config, a stage-2 table and a CD pointer.
 */
#ifndef VMIG_HOST_IOMMU_PGTABLE_BUILD_H
#define VMIG_HOST_IOMMU_PGTABLE_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include "host/iommu/pgtable.h"

/* A bump allocator over [base, base+size), addressed as [pa, pa+size). Frees are no-ops. */
struct pgt_buf {
	uint8_t *base;
	uint64_t pa;
	uint64_t size, used;
};

void pgt_buf_init(struct pgt_buf *b, void *base, uint64_t pa, uint64_t size);
struct pgt_mem pgt_buf_mem(struct pgt_buf *b);
/* Raw allocation from the buffer (CD tables, stream tables): aligned, zeroed; 0 or -ENOMEM. */
int pgt_buf_alloc(struct pgt_buf *b, uint64_t size, uint64_t align, uint64_t *pa);
void *pgt_buf_ptr(struct pgt_buf *b, uint64_t pa);

/* CD flags */
#define SMMU_CD_HA   (1u << 0)
#define SMMU_CD_HD   (1u << 1)
#define SMMU_CD_S    (1u << 2) /* stall */
#define SMMU_CD_R    (1u << 3) /* record faults */
#define SMMU_CD_AFFD (1u << 4)
#define SMMU_CD_EPD0 (1u << 5)

/* A valid AArch64 CD for stage-1 table s1 (T0SZ, TG0=4K, TTB0, IPS=48 bits, EPD1, A, ASET). */
void smmu_cd_build(uint64_t cd[8], const struct pgtable *s1, uint16_t asid, unsigned flags);

/* STE stage-2 flags */
#define SMMU_STE_S2HA	(1u << 0)
#define SMMU_STE_S2HD	(1u << 1)
#define SMMU_STE_S2S	(1u << 2)
#define SMMU_STE_S2R	(1u << 3)
#define SMMU_STE_S2AFFD (1u << 4)

struct smmu_ste_desc {
	unsigned config;	  /* STE_CFG_* (arch/smmuv3.h) */
	const struct pgtable *s2; /* for STE_CFG_S2 / NESTED */
	uint16_t vmid;
	unsigned s2_flags; /* SMMU_STE_S2* */
	unsigned s2ps;	   /* S2PS encoding, default 0 means 5 (48 bits) when s2 != NULL */
	uint64_t cd_ptr;   /* S1ContextPtr (PA, or IPA when nested) */
	unsigned s1fmt, s1cdmax, s1dss;
	bool s1stalld;
};

/* V=1 plus the fields above (V=0 when config is ~0u: an invalid STE). */
void smmu_ste_build(uint64_t ste[8], const struct smmu_ste_desc *d);

/*
 * Driving an SMMU directly (device tests without iommufd): a linear stream table of
 * 2^log2size STEs in the host page pool (log2size <= 15), installed and the SMMU enabled;
 * then write STEs with smmu_test_set_ste (it issues CFGI_STE + CMD_SYNC).
 *
 *   uint64_t st;
 *   smmu_test_strtab_init(smmu, hm, 8, &st);
 *   pgtable_init(&s2, &mem, 2, 40, PGT_LEVEL_AUTO);   // mem = pgt_mem_hostmem(hm)
 *   pgtable_map(&s2, 0, ram_pa, ram_size, PGT_R | PGT_W);
 *   smmu_ste_build(ste, &(struct smmu_ste_desc){.config = STE_CFG_S2, .s2 = &s2, .vmid = 1});
 *   smmu_test_set_ste(smmu, hm, st, sid, ste);
 */
struct smmu;
int smmu_test_strtab_init(struct smmu *smmu, struct hostmem *hm, unsigned log2size,
			  uint64_t *strtab_pa);
int smmu_test_set_ste(struct smmu *smmu, struct hostmem *hm, uint64_t strtab_pa, uint32_t sid,
		      const uint64_t ste[8]);

#endif
