/* SPDX-License-Identifier: Apache-2.0 */
/* A host SMMU test rig: host memory, an SMMU, a linear stream table, RAM at RIG_RAM_PA. */
#ifndef VMIG_TESTS_HOST_IOMMU_RIG_H
#define VMIG_TESTS_HOST_IOMMU_RIG_H

#include <stdint.h>

#include "host/iommu/hostmem.h"
#include "host/iommu/pgtable_build.h"
#include "host/iommu/smmu.h"

#define RIG_RAM_PA   0x40000000ull /* 1 GiB */
#define RIG_RAM_SIZE (1ull << 30)
#define RIG_ST_LOG2  8

struct rig {
	struct hostmem *hm;
	struct smmu *smmu;
	struct pgt_mem mem;
	uint64_t strtab;
};

void rig_init(struct rig *r, const struct smmu_params *p);
void rig_fini(struct rig *r);
/* Writes the STE of sid and issues CFGI_STE. */
void rig_set_ste(struct rig *r, uint32_t sid, const uint64_t ste[8]);
/* A pool page holding the given CD; returns its PA. */
uint64_t rig_put_cd(struct rig *r, const uint64_t cd[8]);
void *rig_ram(struct rig *r, uint64_t pa);
/* Drains the internal event queue; returns how many, last one in *ev (if not NULL). */
unsigned rig_events(struct rig *r, struct smmu_event *ev);
void rig_cmd(struct rig *r, struct smmu_cmd c);

#endif
