// SPDX-License-Identifier: Apache-2.0
/* The iommufd model: objects, mapping, attach, nesting, vEVENTQ, faults, MSI windows, dirty
 * bitmaps, and every error path the interface documents. */
#include <errno.h>
#include <setjmp.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "host/iommu/iommufd_host.h"
#include "host/iommu/pgtable_build.h"

#define RAM_SIZE (64ull << 20)
#define SID	 0x105
#define VSID	 0x21

struct fx {
	struct hostmem *hm;
	struct smmu *smmu;
	struct iommufd_host *host;
	struct iommufd_ctx *ctx;
	int memfd;
	uint8_t *vmm_ram; /* the VMM's own mapping of guest RAM */
	uint32_t ioas, dev;
};

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	f->hm = hostmem_create();
	f->smmu = smmu_create(f->hm, NULL);
	f->host = iommufd_host_create(f->smmu);
	assert_non_null(f->host);
	iommufd_host_set_default(f->host);
	assert_int_equal(iommufd_open(&f->ctx), 0);
	f->memfd = memfd_create("guest-ram", MFD_CLOEXEC);
	assert_int_equal(ftruncate(f->memfd, (off_t)RAM_SIZE), 0);
	f->vmm_ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, f->memfd, 0);
	assert_true(f->vmm_ram != MAP_FAILED);
	assert_int_equal(iommufd_ioas_alloc(f->ctx, &f->ioas), 0);
	assert_int_equal(iommufd_device_bind(f->ctx, SID, &f->dev), 0);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	iommufd_close(f->ctx);
	iommufd_host_destroy(f->host);
	smmu_destroy(f->smmu);
	hostmem_destroy(f->hm);
	munmap(f->vmm_ram, RAM_SIZE);
	close(f->memfd);
	free(f);
	return 0;
}

static void fx_map_ram(struct fx *f, unsigned flags)
{
	uint64_t iova = 0;
	assert_int_equal(iommufd_ioas_map_file(f->ctx, f->ioas, f->memfd, 0, RAM_SIZE, &iova,
					       IOMMU_IOAS_MAP_FIXED_IOVA | flags),
			 0);
}

static const struct smmu_dma_txn dtxn = {.sid = SID};

static enum smmu_dma_status dma_write32(struct fx *f, uint64_t iova, uint32_t v)
{
	struct smmu_dma_result r;
	assert_int_equal(smmu_dma_write(f->smmu, &dtxn, iova, &v, 4, &r), 0);
	return r.status;
}

static void test_attach_ioas_dma(void **state)
{
	struct fx *f = *state;
	uint32_t pt = f->ioas;

	/* bound, not attached: blocked */
	assert_int_equal(dma_write32(f, 0x1000, 1), SMMU_DMA_ABORTED);
	fx_map_ram(f, IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE);
	assert_int_equal(iommufd_device_attach(f->ctx, f->dev, &pt), 0);
	assert_int_not_equal(pt, f->ioas); /* the automatic HWPT */
	assert_int_equal(dma_write32(f, 0x123450, 0xfeedf00d), SMMU_DMA_OK);
	assert_int_equal(*(uint32_t *)(f->vmm_ram + 0x123450), 0xfeedf00d);
	/* beyond the mapping */
	assert_int_equal(dma_write32(f, RAM_SIZE, 1), SMMU_DMA_FAULT);
	uint32_t again = f->ioas;
	assert_int_equal(iommufd_device_attach(f->ctx, f->dev, &again), -EBUSY);
	/* unmap: the IOTLB must not keep the old translation */
	uint64_t unmapped = 0;
	assert_int_equal(iommufd_ioas_unmap(f->ctx, f->ioas, 0, RAM_SIZE, &unmapped), 0);
	assert_int_equal(unmapped, RAM_SIZE);
	assert_int_equal(dma_write32(f, 0x123450, 2), SMMU_DMA_FAULT);
	assert_int_equal(iommufd_destroy(f->ctx, pt), -EBUSY);
	assert_int_equal(iommufd_device_detach(f->ctx, f->dev), 0);
	/* the automatic HWPT went with its last device */
	assert_int_equal(iommufd_destroy(f->ctx, pt), -ENOENT);
	assert_int_equal(dma_write32(f, 0x123450, 3), SMMU_DMA_ABORTED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_attach_ioas_dma, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
