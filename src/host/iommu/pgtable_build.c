// SPDX-License-Identifier: Apache-2.0
/* Test support: buffer-backed table memory and STE/CD builders. */
#include "host/iommu/pgtable_build.h"

#include <errno.h>
#include <string.h>

#include "host/iommu/smmu.h"
#include "host/iommu/smmu_regs.h"

void pgt_buf_init(struct pgt_buf *b, void *base, uint64_t pa, uint64_t size)
{
	*b = (struct pgt_buf){.base = base, .pa = pa, .size = size};
}

int pgt_buf_alloc(struct pgt_buf *b, uint64_t size, uint64_t align, uint64_t *pa)
{
	uint64_t at = ALIGN_UP(b->pa + b->used, align) - b->pa;

	if (at + size > b->size || at + size < at)
		return -ENOMEM;
	memset(b->base + at, 0, size);
	b->used = at + size;
	*pa = b->pa + at;
	return 0;
}

void *pgt_buf_ptr(struct pgt_buf *b, uint64_t pa)
{
	return pa >= b->pa && pa - b->pa < b->size ? b->base + (pa - b->pa) : NULL;
}

static int pgt_buf_mem_alloc(void *opaque, unsigned npages, uint64_t *pa)
{
	return pgt_buf_alloc(opaque, (uint64_t)npages * 4096, (uint64_t)npages * 4096, pa);
}

static void pgt_buf_mem_free(void *opaque, uint64_t pa, unsigned npages)
{
	(void)opaque;
	(void)pa;
	(void)npages;
}

static void *pgt_buf_mem_ptr(void *opaque, uint64_t pa)
{
	return pgt_buf_ptr(opaque, pa);
}

struct pgt_mem pgt_buf_mem(struct pgt_buf *b)
{
	return (struct pgt_mem){.alloc = pgt_buf_mem_alloc,
				.free = pgt_buf_mem_free,
				.ptr = pgt_buf_mem_ptr,
				.opaque = b};
}

void smmu_cd_build(uint64_t cd[8], const struct pgtable *s1, uint16_t asid, unsigned flags)
{
	uint64_t w0 = F_VAL(CD0_T0SZ, pgtable_txsz(s1)) | F_VAL(CD0_TG0, 0) | F_VAL(CD0_IR0, 1) |
		      F_VAL(CD0_OR0, 1) | F_VAL(CD0_SH0, 3) | F_VAL(CD0_EPD1, 1) | F_VAL(CD0_V, 1) |
		      F_VAL(CD0_IPS, 5) | F_VAL(CD0_AA64, 1) | F_VAL(CD0_A, 1) |
		      F_VAL(CD0_ASET, 1) | F_VAL(CD0_ASID, asid);

	w0 |= F_VAL(CD0_HA, !!(flags & SMMU_CD_HA)) | F_VAL(CD0_HD, !!(flags & SMMU_CD_HD)) |
	      F_VAL(CD0_S, !!(flags & SMMU_CD_S)) | F_VAL(CD0_R, !!(flags & SMMU_CD_R)) |
	      F_VAL(CD0_AFFD, !!(flags & SMMU_CD_AFFD)) | F_VAL(CD0_EPD0, !!(flags & SMMU_CD_EPD0));
	memset(cd, 0, 64);
	cd[0] = w0;
	cd[1] = s1->root & F_MASK(CD1_TTB0);
	cd[3] = 0xff; /* MAIR: attr 0 normal write-back */
}

static uint64_t ste_s2_word(const struct smmu_ste_desc *d)
{
	unsigned f = d->s2_flags;

	return F_VAL(STE2_S2VMID, d->vmid) | F_VAL(STE2_S2T0SZ, pgtable_txsz(d->s2)) |
	       F_VAL(STE2_S2SL0, pgtable_s2_sl0(d->s2)) | F_VAL(STE2_S2IR0, 1) |
	       F_VAL(STE2_S2OR0, 1) | F_VAL(STE2_S2SH0, 3) | F_VAL(STE2_S2TG, 0) |
	       F_VAL(STE2_S2PS, d->s2ps ? d->s2ps : 5) | F_VAL(STE2_S2AA64, 1) |
	       F_VAL(STE2_S2PTW, 0) | F_VAL(STE2_S2HA, !!(f & SMMU_STE_S2HA)) |
	       F_VAL(STE2_S2HD, !!(f & SMMU_STE_S2HD)) | F_VAL(STE2_S2S, !!(f & SMMU_STE_S2S)) |
	       F_VAL(STE2_S2R, !!(f & SMMU_STE_S2R)) | F_VAL(STE2_S2AFFD, !!(f & SMMU_STE_S2AFFD));
}

void smmu_ste_build(uint64_t ste[8], const struct smmu_ste_desc *d)
{
	memset(ste, 0, 64);
	if (d->config == ~0u)
		return;
	ste[0] = F_VAL(STE0_V, 1) | F_VAL(STE0_CFG, d->config);
	if (d->config & 1) {
		ste[0] |= (d->cd_ptr & F_MASK(STE0_S1CTXPTR)) | F_VAL(STE0_S1FMT, d->s1fmt) |
			  F_VAL(STE0_S1CDMAX, d->s1cdmax);
		ste[1] = F_VAL(STE1_S1DSS, d->s1dss) | F_VAL(STE1_S1CIR, 1) | F_VAL(STE1_S1COR, 1) |
			 F_VAL(STE1_S1CSH, 3) | F_VAL(STE1_S1STALLD, d->s1stalld);
	}
	if ((d->config & 2) && d->s2) {
		ste[2] = ste_s2_word(d);
		ste[3] = d->s2->root & F_MASK(STE3_S2TTB);
	}
}

int smmu_test_strtab_init(struct smmu *smmu, struct hostmem *hm, unsigned log2size,
			  uint64_t *strtab_pa)
{
	uint64_t bytes = 64ull << log2size;
	unsigned pages = (unsigned)(bytes < 4096 ? 1 : bytes / 4096);

	if (log2size > 15)
		return -EINVAL;
	int rc = hostmem_pages_alloc(hm, pages, strtab_pa);
	if (rc)
		return rc;
	rc = smmu_set_strtab(smmu, *strtab_pa, (uint32_t)F_VAL(STRTAB_CFG_LOG2SIZE, log2size));
	if (rc)
		return rc;
	smmu_set_enable(smmu, true);
	return 0;
}

int smmu_test_set_ste(struct smmu *smmu, struct hostmem *hm, uint64_t strtab_pa, uint32_t sid,
		      const uint64_t ste[8])
{
	int rc = hostmem_write(hm, strtab_pa + (uint64_t)sid * 64, ste, 64);
	if (!rc)
		rc = smmu_cmd_one(smmu, smmu_cmd_cfgi_ste(sid));
	if (!rc)
		rc = smmu_cmd_one(smmu, smmu_cmd_sync());
	return rc;
}
