// SPDX-License-Identifier: Apache-2.0
/* libFuzzer target (-Dfuzz=true): the vSMMU's migration state, then post_load and MMIO. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arch/smmuv3.h"
#include "vmm/smmuv3/vsmmu.h"

#define RAM_SIZE (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t ram[RAM_SIZE];

static int ram_read(void *opaque, uint64_t gpa, void *buf, size_t len)
{
	if (gpa > RAM_SIZE || len > RAM_SIZE - gpa)
		return -EFAULT;
	memcpy(buf, ram + gpa, len);
	return 0;
}

static int ram_write(void *opaque, uint64_t gpa, const void *buf, size_t len)
{
	if (gpa > RAM_SIZE || len > RAM_SIZE - gpa)
		return -EFAULT;
	memcpy(ram + gpa, buf, len);
	return 0;
}

static int msi_send(void *opaque, uint64_t addr, uint32_t data)
{
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct vsmmu_platform plat = {ram_read, ram_write, msi_send, NULL, NULL};
	struct vsmmu *vs = vsmmu_create(NULL, &plat, NULL, NULL);
	uint64_t v;

	if (!vs)
		abort();
	if (vsmmu_state_load(vs, data, size) == 0) {
		vsmmu_post_load(vs);
		/* Kick both queues from wherever the state left them. */
		vsmmu_mmio_read(vs, SMMU_CMDQ_PROD, 4, &v);
		vsmmu_mmio_write(vs, SMMU_CMDQ_PROD, 4, (uint32_t)v + 1);
		vsmmu_mmio_write(vs, SMMU_EVENTQ_CONS, 4, 0);
	}
	vsmmu_destroy(vs);
	return 0;
}
