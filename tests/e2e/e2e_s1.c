// SPDX-License-Identifier: Apache-2.0
#include "e2e_s1.h"

#include <stdlib.h>

#include "host/iommu/pgtable_build.h"

struct e2e_s1 {
	struct pgt_buf buf;
	struct pgtable pt;
};

struct e2e_s1 *e2e_s1_create(void *pool_host, uint64_t pool_gpa, uint64_t size)
{
	struct e2e_s1 *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	pgt_buf_init(&s->buf, pool_host, pool_gpa, size);
	struct pgt_mem mem = pgt_buf_mem(&s->buf);
	if (pgtable_init(&s->pt, &mem, 1, 48, PGT_LEVEL_AUTO) < 0) {
		free(s);
		return NULL;
	}
	return s;
}

void e2e_s1_destroy(struct e2e_s1 *s)
{
	if (s)
		pgtable_fini(&s->pt); /* the pool is guest RAM: only the retired list is freed */
	free(s);
}

int e2e_s1_map(struct e2e_s1 *s, uint64_t iova, uint64_t ipa, uint64_t len)
{
	return pgtable_map(&s->pt, iova, ipa, len, PGT_R | PGT_W | PGT_PAGES);
}

int e2e_s1_unmap(struct e2e_s1 *s, uint64_t iova, uint64_t len)
{
	long ret = pgtable_unmap(&s->pt, iova, len);

	return ret < 0 ? (int)ret : 0;
}

void e2e_s1_cd(struct e2e_s1 *s, uint16_t asid, bool stall, uint64_t cd[8])
{
	smmu_cd_build(cd, &s->pt, asid, SMMU_CD_R | (stall ? SMMU_CD_S : 0));
}

uint64_t e2e_s1_alloc(struct e2e_s1 *s, uint64_t size, uint64_t align)
{
	uint64_t pa;

	return pgt_buf_alloc(&s->buf, size, align, &pa) == 0 ? pa : 0;
}
