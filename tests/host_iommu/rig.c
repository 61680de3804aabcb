// SPDX-License-Identifier: Apache-2.0
#include "rig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/trace.h"

static void rig_check(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "rig: %s failed\n", what);
		abort();
	}
}

void rig_init(struct rig *r, const struct smmu_params *p)
{
	memset(r, 0, sizeof(*r));
	trace_init_from_env();
	r->hm = hostmem_create();
	rig_check(r->hm != NULL, "hostmem_create");
	rig_check(hostmem_add_ram(r->hm, RIG_RAM_PA, RIG_RAM_SIZE) == 0, "add_ram");
	r->smmu = smmu_create(r->hm, p);
	rig_check(r->smmu != NULL, "smmu_create");
	r->mem = pgt_mem_hostmem(r->hm);
	rig_check(smmu_test_strtab_init(r->smmu, r->hm, RIG_ST_LOG2, &r->strtab) == 0, "strtab");
}

void rig_fini(struct rig *r)
{
	smmu_destroy(r->smmu);
	hostmem_destroy(r->hm);
}

void rig_set_ste(struct rig *r, uint32_t sid, const uint64_t ste[8])
{
	rig_check(smmu_test_set_ste(r->smmu, r->hm, r->strtab, sid, ste) == 0, "ste");
}

uint64_t rig_put_cd(struct rig *r, const uint64_t cd[8])
{
	uint64_t pa;
	rig_check(hostmem_page_alloc(r->hm, &pa) == 0, "cd page");
	rig_check(hostmem_write(r->hm, pa, cd, 64) == 0, "cd write");
	return pa;
}

void *rig_ram(struct rig *r, uint64_t pa)
{
	return hostmem_ptr(r->hm, pa, 1);
}

unsigned rig_events(struct rig *r, struct smmu_event *ev)
{
	struct smmu_event e;
	unsigned n = 0;
	while (smmu_event_pop(r->smmu, &e)) {
		if (ev)
			*ev = e;
		n++;
	}
	return n;
}

void rig_cmd(struct rig *r, struct smmu_cmd c)
{
	rig_check(smmu_cmd_one(r->smmu, c) == 0, "command");
}
