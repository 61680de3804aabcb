// SPDX-License-Identifier: Apache-2.0
/* The iommufd model: objects, mapping, attach, nesting, vEVENTQ, faults, MSI windows, dirty
 * bitmaps, and every error path the interface documents. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/bitmap.h"
#include "common/trace.h"
#include "host/iommu/iommufd_host.h"
#include "host/iommu/pgtable_build.h"

#define RAM_SIZE (64ull << 20)
#define SID	 0x105
#define VSID	 0x21

struct fx {
	struct host_iommu_system sys;
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
	trace_init_from_env();
	assert_int_equal(host_iommu_system_create(&f->sys, NULL), 0);
	f->smmu = f->sys.smmu;
	f->host = f->sys.host;
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
	host_iommu_system_destroy(&f->sys);
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

static void test_map_unmap_errors(void **state)
{
	struct fx *f = *state;
	const uint32_t rw = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
	const uint32_t fixed = IOMMU_IOAS_MAP_FIXED_IOVA | rw;
	uint64_t iova = 0x100000, un;

	assert_int_equal(iommufd_ioas_map_file(f->ctx, 99, f->memfd, 0, 4096, &iova, fixed),
			 -ENOENT);
	assert_int_equal(
	    iommufd_ioas_map_file(f->ctx, f->ioas, f->memfd, 0, 4096, &iova, fixed | (1u << 7)),
	    -EOPNOTSUPP);
	assert_int_equal(iommufd_ioas_map_file(f->ctx, f->ioas, f->memfd, 0, 4096, &iova,
					       IOMMU_IOAS_MAP_FIXED_IOVA),
			 -EINVAL);
	assert_int_equal(iommufd_ioas_map_file(f->ctx, f->ioas, f->memfd, 100, 4096, &iova, fixed),
			 -EINVAL);
	assert_int_equal(iommufd_ioas_map_file(f->ctx, f->ioas, f->memfd, 0, 100, &iova, fixed),
			 -EINVAL);
	assert_int_equal(iommufd_ioas_map_file(f->ctx, f->ioas, f->memfd, 0, 0, &iova, fixed),
			 -EINVAL);
	iova = 0x100100;
	assert_int_equal(iommufd_ioas_map_file(f->ctx, f->ioas, f->memfd, 0, 4096, &iova, fixed),
			 -EINVAL);
	iova = UINT64_MAX - 4095;
	assert_int_equal(iommufd_ioas_map_file(f->ctx, f->ioas, f->memfd, 0, 8192, &iova, fixed),
			 -EOVERFLOW);
	iova = 0x100000;
	assert_int_equal(
	    iommufd_ioas_map_file(f->ctx, f->ioas, f->memfd, RAM_SIZE - 4096, 8192, &iova, fixed),
	    -EINVAL);
	assert_int_equal(iommufd_ioas_map_file(f->ctx, f->ioas, 9999, 0, 4096, &iova, fixed),
			 -EBADF);
	assert_int_equal(iommufd_ioas_map_file(f->ctx, f->ioas, f->memfd, 0, 1 << 20, &iova, fixed),
			 0);
	iova = 0x1ff000;
	assert_int_equal(iommufd_ioas_map_file(f->ctx, f->ioas, f->memfd, 0, 8192, &iova, fixed),
			 -EEXIST);
	/* the kernel picks an IOVA without FIXED_IOVA (read-only mapping) */
	iova = 0;
	assert_int_equal(iommufd_ioas_map_file(f->ctx, f->ioas, f->memfd, 0, 4096, &iova,
					       IOMMU_IOAS_MAP_READABLE),
			 0);
	assert_true(iova >= (4ull << 30));
	uint32_t pt = f->ioas;
	assert_int_equal(iommufd_device_attach(f->ctx, f->dev, &pt), 0);
	struct smmu_dma_result r;
	uint32_t v = 5;
	assert_int_equal(smmu_dma_read(f->smmu, &dtxn, iova, &v, 4, &r), 0);
	assert_int_equal(r.status, SMMU_DMA_OK);
	assert_int_equal(dma_write32(f, iova, 1), SMMU_DMA_FAULT); /* not writeable */
	/* unmap: partial, nothing there, zero, wrapping */
	assert_int_equal(iommufd_ioas_unmap(f->ctx, f->ioas, 0x100000, 4096, &un), -ENOENT);
	assert_int_equal(iommufd_ioas_unmap(f->ctx, f->ioas, 0x10000000, 4096, &un), -ENOENT);
	assert_int_equal(iommufd_ioas_unmap(f->ctx, f->ioas, 0x100000, 0, &un), -EINVAL);
	assert_int_equal(iommufd_ioas_unmap(f->ctx, f->ioas, 2, UINT64_MAX, &un), -EOVERFLOW);
	assert_int_equal(iommufd_ioas_unmap(f->ctx, 77, 0, 4096, &un), -ENOENT);
	assert_int_equal(iommufd_ioas_unmap(f->ctx, f->ioas, 0x100000, 1 << 20, &un), 0);
	assert_int_equal(un, 1 << 20);
	/* objects in use */
	assert_int_equal(iommufd_destroy(f->ctx, f->ioas), -EBUSY);
	assert_int_equal(iommufd_destroy(f->ctx, 1234), -ENOENT);
	assert_int_equal(iommufd_destroy(f->ctx, f->dev), -EINVAL);
	assert_int_equal(iommufd_ioas_unmap(f->ctx, f->ioas, 0, UINT64_MAX, &un), 0);
	assert_int_equal(un, 4096);
}

static void test_bind_attach_errors(void **state)
{
	struct fx *f = *state;
	struct iommufd_ctx *other;
	uint32_t d2, pt;

	assert_int_equal(iommufd_device_bind(f->ctx, SID, &d2), -EBUSY);
	assert_int_equal(iommufd_open(&other), 0);
	assert_int_equal(iommufd_device_bind(other, SID, &d2), -EBUSY);
	assert_int_equal(iommufd_device_bind(other, 1u << 16, &d2), -EINVAL);
	assert_int_equal(iommufd_device_bind(other, SID + 1, &d2), 0);
	iommufd_close(other); /* unbinds */
	assert_int_equal(iommufd_device_bind(f->ctx, SID + 1, &d2), 0);
	pt = f->ioas;
	assert_int_equal(iommufd_device_attach(f->ctx, 4242, &pt), -ENOENT);
	pt = 4242;
	assert_int_equal(iommufd_device_attach(f->ctx, f->dev, &pt), -ENOENT);
	pt = f->dev;
	assert_int_equal(iommufd_device_attach(f->ctx, f->dev, &pt), -EINVAL);
	pt = f->ioas;
	assert_int_equal(iommufd_device_replace(f->ctx, f->dev, &pt), -EINVAL);
	assert_int_equal(iommufd_device_detach(f->ctx, f->dev), -EINVAL);
	assert_int_equal(iommufd_device_attach(f->ctx, f->dev, &pt), 0);
	/* both devices share the automatic HWPT of the IOAS */
	uint32_t pt2 = f->ioas;
	assert_int_equal(iommufd_device_attach(f->ctx, d2, &pt2), 0);
	assert_int_equal(pt2, pt);
	assert_int_equal(iommufd_device_unbind(f->ctx, d2), 0);
	assert_int_equal(iommufd_device_unbind(f->ctx, d2), -ENOENT);
	/* hw_info */
	struct iommu_hw_info_arm_smmuv3 info;
	struct iommu_hw_info hi = {.size = sizeof(hi),
				   .dev_id = f->dev,
				   .data_len = sizeof(info),
				   .data_uptr = (uintptr_t)&info};
	assert_int_equal(iommufd_get_hw_info(f->ctx, &hi), 0);
	assert_int_equal(hi.out_data_type, IOMMU_HW_INFO_TYPE_ARM_SMMUV3);
	assert_true(hi.out_capabilities & IOMMU_HW_CAP_DIRTY_TRACKING);
	assert_int_equal(FGET(info.idr[0], IDR0_HTTU), 2);
	assert_int_equal(FGET(info.idr[0], IDR0_S1P), 1);
	assert_int_equal(FGET(info.idr[0], IDR0_S2P), 1);
	assert_int_equal(FGET(info.idr[5], IDR5_OAS), 5);
	hi.dev_id = 999;
	assert_int_equal(iommufd_get_hw_info(f->ctx, &hi), -ENOENT);
	hi.dev_id = f->dev;
	hi.flags = 1;
	assert_int_equal(iommufd_get_hw_info(f->ctx, &hi), -EOPNOTSUPP);
}

/* ---- nesting ---- */

struct nest {
	uint32_t parent, viommu, vdev, nested;
	struct pgt_buf gbuf;
	struct pgt_mem gmem;
	struct pgtable s1;
	uint64_t cd_gpa;
};

static int hwpt_alloc(struct fx *f, uint32_t flags, uint32_t pt, uint32_t type, const void *data,
		      uint32_t len, uint32_t fault_id, uint32_t *out)
{
	struct iommu_hwpt_alloc c = {.size = sizeof(c),
				     .flags = flags,
				     .dev_id = f->dev,
				     .pt_id = pt,
				     .data_type = type,
				     .data_len = len,
				     .data_uptr = (uintptr_t)data,
				     .fault_id = fault_id};
	int rc = iommufd_hwpt_alloc(f->ctx, &c);
	if (out)
		*out = c.out_hwpt_id;
	return rc;
}

static struct iommu_hwpt_arm_smmuv3 vste_s1(uint64_t cd_gpa)
{
	struct iommu_hwpt_arm_smmuv3 v = {{0}};
	v.ste[0] = FVAL(STE0_V, 1) | FVAL(STE0_CONFIG, STE_CFG_S1) | cd_gpa;
	v.ste[1] = FVAL(STE1_S1CIR, 1) | FVAL(STE1_S1COR, 1) | FVAL(STE1_S1CSH, 3);
	return v;
}

/* Guest RAM mapped at GPA 0; the guest's S1 tables and CD at GPA 1 MiB. */
static void nest_setup(struct fx *f, struct nest *n, uint32_t parent_flags, unsigned cdflags)
{
	uint64_t cd[8];

	fx_map_ram(f, IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE);
	assert_int_equal(hwpt_alloc(f, IOMMU_HWPT_ALLOC_NEST_PARENT | parent_flags, f->ioas, 0,
				    NULL, 0, 0, &n->parent),
			 0);
	struct iommu_viommu_alloc va = {.size = sizeof(va),
					.type = IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
					.dev_id = f->dev,
					.hwpt_id = n->parent};
	assert_int_equal(iommufd_viommu_alloc(f->ctx, &va), 0);
	n->viommu = va.out_viommu_id;
	struct iommu_vdevice_alloc vd = {
	    .size = sizeof(vd), .viommu_id = n->viommu, .dev_id = f->dev, .virt_id = VSID};
	assert_int_equal(iommufd_vdevice_alloc(f->ctx, &vd), 0);
	n->vdev = vd.out_vdevice_id;
	pgt_buf_init(&n->gbuf, f->vmm_ram + 0x100000, 0x100000, 1 << 20);
	n->gmem = pgt_buf_mem(&n->gbuf);
	assert_int_equal(pgt_buf_alloc(&n->gbuf, 64, 4096, &n->cd_gpa), 0);
	assert_int_equal(pgtable_init(&n->s1, &n->gmem, 1, 48, PGT_LEVEL_AUTO), 0);
	smmu_cd_build(cd, &n->s1, 3, cdflags);
	memcpy(pgt_buf_ptr(&n->gbuf, n->cd_gpa), cd, 64);
}

static void nest_attach(struct fx *f, struct nest *n, uint32_t fault_id)
{
	struct iommu_hwpt_arm_smmuv3 v = vste_s1(n->cd_gpa);
	assert_int_equal(hwpt_alloc(f, fault_id ? IOMMU_HWPT_FAULT_ID_VALID : 0, n->viommu,
				    IOMMU_HWPT_DATA_ARM_SMMUV3, &v, sizeof(v), fault_id,
				    &n->nested),
			 0);
	uint32_t pt = n->nested;
	assert_int_equal(iommufd_device_attach(f->ctx, f->dev, &pt), 0);
	assert_int_equal(pt, n->nested);
}

static int invalidate(struct fx *f, uint32_t id, struct smmu_cmd *cmds, uint32_t n,
		      uint32_t *handled)
{
	struct iommu_hwpt_invalidate c = {.size = sizeof(c),
					  .hwpt_id = id,
					  .data_uptr = (uintptr_t)cmds,
					  .data_type = IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
					  .entry_len = 16,
					  .entry_num = n};
	int rc = iommufd_hwpt_invalidate(f->ctx, &c);
	if (handled)
		*handled = c.entry_num;
	return rc;
}

static void test_nested_dma_and_invalidate(void **state)
{
	struct fx *f = *state;
	struct nest n;
	uint32_t handled;

	nest_setup(f, &n, 0, SMMU_CD_R);
	assert_int_equal(pgtable_map(&n.s1, 0x7000000, 0x2000000, 4096, PGT_R | PGT_W), 0);
	nest_attach(f, &n, 0);
	assert_int_equal(dma_write32(f, 0x7000010, 0xabcd), SMMU_DMA_OK);
	assert_int_equal(*(uint32_t *)(f->vmm_ram + 0x2000010), 0xabcd);
	/* the guest re-points its PTE; until it invalidates, the old translation is cached */
	uint64_t *leaf = pgtable_leaf(&n.s1, 0x7000000, NULL);
	*leaf = (*leaf & ~PTE_OA_MASK) | 0x3000000;
	assert_int_equal(dma_write32(f, 0x7000020, 1), SMMU_DMA_OK);
	assert_int_equal(*(uint32_t *)(f->vmm_ram + 0x2000020), 1);
	/* guest command with a bogus VMID: the host forces its own */
	struct smmu_cmd c = smmu_cmd_tlbi_nh_va(0x3333, 3, 0x7000000, 0);
	assert_int_equal(invalidate(f, n.viommu, &c, 1, &handled), 0);
	assert_int_equal(handled, 1);
	assert_int_equal(dma_write32(f, 0x7000020, 2), SMMU_DMA_OK);
	assert_int_equal(*(uint32_t *)(f->vmm_ram + 0x3000020), 2);
	/* CFGI_CD by vSID after a CD change: the guest switches to another table */
	struct pgtable s1b;
	uint64_t cd[8];
	assert_int_equal(pgtable_init(&s1b, &n.gmem, 1, 48, PGT_LEVEL_AUTO), 0);
	assert_int_equal(pgtable_map(&s1b, 0x7000000, 0x3800000, 4096, PGT_R | PGT_W), 0);
	smmu_cd_build(cd, &s1b, 4, SMMU_CD_R);
	memcpy(pgt_buf_ptr(&n.gbuf, n.cd_gpa), cd, 64);
	struct smmu_cmd batch[4] = {smmu_cmd_cfgi_cd(VSID, 0), smmu_cmd_tlbi_nsnh_all(),
				    smmu_cmd_cfgi_ste(VSID), smmu_cmd_sync()};
	assert_int_equal(invalidate(f, n.viommu, batch, 4, &handled), -EIO);
	assert_int_equal(handled, 2); /* CFGI_STE is refused */
	assert_int_equal(dma_write32(f, 0x7000030, 3), SMMU_DMA_OK);
	assert_int_equal(*(uint32_t *)(f->vmm_ram + 0x3800030), 3);
	/* unknown vSID; bad type/len; not a vIOMMU; nothing to do */
	c = smmu_cmd_cfgi_cd_all(VSID + 1);
	assert_int_equal(invalidate(f, n.viommu, &c, 1, &handled), -EIO);
	assert_int_equal(handled, 0);
	struct iommu_hwpt_invalidate bad = {.size = sizeof(bad),
					    .hwpt_id = n.viommu,
					    .data_uptr = (uintptr_t)&c,
					    .data_type = 7,
					    .entry_len = 16,
					    .entry_num = 1};
	assert_int_equal(iommufd_hwpt_invalidate(f->ctx, &bad), -EINVAL);
	bad.data_type = IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3;
	bad.entry_len = 8;
	assert_int_equal(iommufd_hwpt_invalidate(f->ctx, &bad), -EINVAL);
	assert_int_equal(invalidate(f, n.parent, &c, 1, NULL), -EOPNOTSUPP);
	assert_int_equal(invalidate(f, 555, &c, 1, NULL), -ENOENT);
	assert_int_equal(invalidate(f, n.viommu, &c, 0, &handled), 0);
	/* replace with a bypass vSTE: IOVA = GPA through stage 2 */
	struct iommu_hwpt_arm_smmuv3 byp = {
	    {FVAL(STE0_V, 1) | FVAL(STE0_CONFIG, STE_CFG_BYPASS), 0}};
	uint32_t hb;
	assert_int_equal(
	    hwpt_alloc(f, 0, n.viommu, IOMMU_HWPT_DATA_ARM_SMMUV3, &byp, sizeof(byp), 0, &hb), 0);
	uint32_t pt = hb;
	assert_int_equal(iommufd_device_replace(f->ctx, f->dev, &pt), 0);
	assert_int_equal(dma_write32(f, 0x2800000, 4), SMMU_DMA_OK);
	assert_int_equal(*(uint32_t *)(f->vmm_ram + 0x2800000), 4);
	/* abort vSTE (and V=0) */
	struct iommu_hwpt_arm_smmuv3 abt = {{FVAL(STE0_V, 1), 0}};
	uint32_t ha;
	assert_int_equal(
	    hwpt_alloc(f, 0, n.viommu, IOMMU_HWPT_DATA_ARM_SMMUV3, &abt, sizeof(abt), 0, &ha), 0);
	pt = ha;
	assert_int_equal(iommufd_device_replace(f->ctx, f->dev, &pt), 0);
	assert_int_equal(dma_write32(f, 0x2800000, 5), SMMU_DMA_ABORTED);
	assert_int_equal(iommufd_destroy(f->ctx, n.viommu), -EBUSY);
	assert_int_equal(iommufd_destroy(f->ctx, n.nested), 0);
	assert_int_equal(iommufd_destroy(f->ctx, hb), 0);
	assert_int_equal(iommufd_destroy(f->ctx, ha), -EBUSY);
}

/* PASID traffic through a guest CD table (linear, 4 CDs) under a nested HWPT. */
static void test_nested_pasid(void **state)
{
	struct fx *f = *state;
	struct nest n;
	uint64_t cdt, cd[8];
	struct pgtable s1b;
	struct smmu_dma_result r;
	uint32_t v = 0x77;

	nest_setup(f, &n, 0, SMMU_CD_R);
	assert_int_equal(pgtable_map(&n.s1, 0x7000000, 0x2000000, 4096, PGT_R | PGT_W), 0);
	assert_int_equal(pgtable_init(&s1b, &n.gmem, 1, 48, PGT_LEVEL_AUTO), 0);
	assert_int_equal(pgtable_map(&s1b, 0x7000000, 0x2100000, 4096, PGT_R | PGT_W), 0);
	assert_int_equal(pgt_buf_alloc(&n.gbuf, 4 * 64, 4096, &cdt), 0);
	memcpy(pgt_buf_ptr(&n.gbuf, cdt), pgt_buf_ptr(&n.gbuf, n.cd_gpa), 64); /* SSID 0 */
	smmu_cd_build(cd, &s1b, 8, SMMU_CD_R);
	memcpy(pgt_buf_ptr(&n.gbuf, cdt + 3 * 64), cd, 64); /* SSID 3 */
	struct iommu_hwpt_arm_smmuv3 v3 = vste_s1(cdt);
	v3.ste[0] |= FVAL(STE0_S1CDMAX, 2);
	v3.ste[1] |= FVAL(STE1_S1DSS, STE_S1DSS_SSID0);
	uint32_t hn, pt;
	assert_int_equal(
	    hwpt_alloc(f, 0, n.viommu, IOMMU_HWPT_DATA_ARM_SMMUV3, &v3, sizeof(v3), 0, &hn), 0);
	pt = hn;
	assert_int_equal(iommufd_device_attach(f->ctx, f->dev, &pt), 0);
	struct smmu_dma_txn t3 = {.sid = SID, .ssid = 3, .flags = SMMU_DMA_SSV};
	assert_int_equal(smmu_dma_write(f->smmu, &t3, 0x7000004, &v, 4, &r), 0);
	assert_int_equal(r.status, SMMU_DMA_OK);
	assert_int_equal(*(uint32_t *)(f->vmm_ram + 0x2100004), 0x77);
	assert_int_equal(dma_write32(f, 0x7000008, 0x78), SMMU_DMA_OK); /* untagged: SSID 0 */
	assert_int_equal(*(uint32_t *)(f->vmm_ram + 0x2000008), 0x78);
	t3.ssid = 1; /* a CD with V=0 */
	assert_int_equal(smmu_dma_write(f->smmu, &t3, 0x7000004, &v, 4, &r), 0);
	assert_int_equal(r.status, SMMU_DMA_FAULT);
	assert_int_equal(r.event_id, EVT_C_BAD_CD);
}

static void test_hwpt_viommu_errors(void **state)
{
	struct fx *f = *state;
	uint32_t id, plain, parent;
	struct iommu_hwpt_arm_smmuv3 v = vste_s1(0x100000);

	assert_int_equal(hwpt_alloc(f, 1u << 9, f->ioas, 0, NULL, 0, 0, &id), -EOPNOTSUPP);
	assert_int_equal(hwpt_alloc(f, IOMMU_HWPT_FAULT_ID_VALID, f->ioas, 0, NULL, 0, 1, &id),
			 -EOPNOTSUPP);
	assert_int_equal(hwpt_alloc(f, 0, f->ioas, 9, NULL, 0, 0, &id), -EOPNOTSUPP);
	assert_int_equal(hwpt_alloc(f, 0, f->ioas, 0, &v, sizeof(v), 0, &id), -EINVAL);
	assert_int_equal(hwpt_alloc(f, 0, 777, 0, NULL, 0, 0, &id), -ENOENT);
	struct iommu_hwpt_alloc c = {.size = sizeof(c), .dev_id = 888, .pt_id = f->ioas};
	assert_int_equal(iommufd_hwpt_alloc(f->ctx, &c), -ENOENT);
	assert_int_equal(hwpt_alloc(f, 0, f->ioas, 0, NULL, 0, 0, &plain), 0);
	assert_int_equal(
	    hwpt_alloc(f, IOMMU_HWPT_ALLOC_NEST_PARENT, f->ioas, 0, NULL, 0, 0, &parent), 0);
	/* vIOMMU */
	struct iommu_viommu_alloc va = {.size = sizeof(va),
					.type = IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
					.dev_id = f->dev,
					.hwpt_id = plain};
	assert_int_equal(iommufd_viommu_alloc(f->ctx, &va), -EINVAL); /* not a nest parent */
	va.hwpt_id = parent;
	va.type = 5;
	assert_int_equal(iommufd_viommu_alloc(f->ctx, &va), -EOPNOTSUPP);
	va.type = IOMMU_VIOMMU_TYPE_ARM_SMMUV3;
	va.dev_id = 99;
	assert_int_equal(iommufd_viommu_alloc(f->ctx, &va), -ENOENT);
	va.dev_id = f->dev;
	assert_int_equal(iommufd_viommu_alloc(f->ctx, &va), 0);
	uint32_t vi = va.out_viommu_id;
	assert_int_equal(iommufd_destroy(f->ctx, parent), -EBUSY);
	/* nested HWPT data checks */
	assert_int_equal(hwpt_alloc(f, 0, vi, IOMMU_HWPT_DATA_ARM_SMMUV3, &v, 8, 0, &id), -EINVAL);
	assert_int_equal(hwpt_alloc(f, 0, plain, IOMMU_HWPT_DATA_ARM_SMMUV3, &v, sizeof(v), 0, &id),
			 -ENOENT);
	assert_int_equal(hwpt_alloc(f, IOMMU_HWPT_FAULT_ID_VALID, vi, IOMMU_HWPT_DATA_ARM_SMMUV3,
				    &v, sizeof(v), 4321, &id),
			 -ENOENT);
	assert_int_equal(hwpt_alloc(f, IOMMU_HWPT_ALLOC_DIRTY_TRACKING, vi,
				    IOMMU_HWPT_DATA_ARM_SMMUV3, &v, sizeof(v), 0, &id),
			 -EOPNOTSUPP);
	struct iommu_hwpt_arm_smmuv3 bad = v;
	bad.ste[0] |= FVAL(STE2_S2VMID, 0) | (1ull << 58); /* reserved/host bit in word 0 */
	assert_int_equal(
	    hwpt_alloc(f, 0, vi, IOMMU_HWPT_DATA_ARM_SMMUV3, &bad, sizeof(bad), 0, &id), -EIO);
	bad = v;
	bad.ste[1] |= FVAL(STE1_STRW, 1);
	assert_int_equal(
	    hwpt_alloc(f, 0, vi, IOMMU_HWPT_DATA_ARM_SMMUV3, &bad, sizeof(bad), 0, &id), -EIO);
	bad = v;
	bad.ste[0] = FSET(bad.ste[0], STE0_CONFIG, STE_CFG_S2);
	assert_int_equal(
	    hwpt_alloc(f, 0, vi, IOMMU_HWPT_DATA_ARM_SMMUV3, &bad, sizeof(bad), 0, &id), -EIO);
	bad.ste[0] = FSET(bad.ste[0], STE0_CONFIG, STE_CFG_NESTED);
	assert_int_equal(
	    hwpt_alloc(f, 0, vi, IOMMU_HWPT_DATA_ARM_SMMUV3, &bad, sizeof(bad), 0, &id), -EIO);
	bad = v;
	bad.ste[1] |= FVAL(STE1_EATS, 2);
	assert_int_equal(
	    hwpt_alloc(f, 0, vi, IOMMU_HWPT_DATA_ARM_SMMUV3, &bad, sizeof(bad), 0, &id), -EIO);
	bad.ste[0] = (1ull << 58) | 0x12345000; /* V=0: anything goes, it is an abort STE */
	assert_int_equal(
	    hwpt_alloc(f, 0, vi, IOMMU_HWPT_DATA_ARM_SMMUV3, &bad, sizeof(bad), 0, &id), 0);
	/* vDEVICE */
	struct iommu_vdevice_alloc vd = {
	    .size = sizeof(vd), .viommu_id = vi, .dev_id = f->dev, .virt_id = 1ull << 32};
	assert_int_equal(iommufd_vdevice_alloc(f->ctx, &vd), -EINVAL);
	vd.virt_id = VSID;
	vd.viommu_id = 1234;
	assert_int_equal(iommufd_vdevice_alloc(f->ctx, &vd), -ENOENT);
	vd.viommu_id = vi;
	assert_int_equal(iommufd_vdevice_alloc(f->ctx, &vd), 0);
	assert_int_equal(iommufd_vdevice_alloc(f->ctx, &vd), -EEXIST);
	uint32_t d2;
	assert_int_equal(iommufd_device_bind(f->ctx, SID + 2, &d2), 0);
	vd.dev_id = d2;
	assert_int_equal(iommufd_vdevice_alloc(f->ctx, &vd), -EEXIST); /* same virt_id */
	/* vEVENTQ */
	struct iommu_veventq_alloc q = {.size = sizeof(q),
					.viommu_id = vi,
					.type = IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
					.veventq_depth = 0};
	assert_int_equal(iommufd_veventq_alloc(f->ctx, &q), -EINVAL);
	q.veventq_depth = 4;
	q.type = 9;
	assert_int_equal(iommufd_veventq_alloc(f->ctx, &q), -EOPNOTSUPP);
	q.type = IOMMU_VEVENTQ_TYPE_ARM_SMMUV3;
	q.viommu_id = 4444;
	assert_int_equal(iommufd_veventq_alloc(f->ctx, &q), -ENOENT);
	q.viommu_id = vi;
	assert_int_equal(iommufd_veventq_alloc(f->ctx, &q), 0);
	int qfd = q.out_veventq_fd;
	assert_int_equal(iommufd_veventq_alloc(f->ctx, &q), -EEXIST);
	assert_int_equal(iommufd_destroy(f->ctx, vi), -EBUSY);
	close(qfd);
	/* fault queue */
	struct iommu_fault_alloc fa = {.size = sizeof(fa), .flags = 1};
	assert_int_equal(iommufd_fault_alloc(f->ctx, &fa), -EOPNOTSUPP);
	uint64_t zero = 0;
	assert_int_equal(iommufd_fault_write(12345, &zero, 8), -EBADF);
}

/* ---- vEVENTQ ---- */

static int veventq(struct fx *f, uint32_t viommu, uint32_t depth)
{
	struct iommu_veventq_alloc q = {.size = sizeof(q),
					.viommu_id = viommu,
					.type = IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
					.veventq_depth = depth};
	assert_int_equal(iommufd_veventq_alloc(f->ctx, &q), 0);
	fcntl(q.out_veventq_fd, F_SETFL, O_NONBLOCK);
	return q.out_veventq_fd;
}

struct vrec {
	struct iommufd_vevent_header hdr;
	struct iommu_vevent_arm_smmuv3 evt;
};

static void test_veventq(void **state)
{
	struct fx *f = *state;
	struct nest n;
	struct vrec rec[4];
	struct iommufd_host_stats st;

	nest_setup(f, &n, 0, SMMU_CD_R);
	nest_attach(f, &n, 0);
	int fd = veventq(f, n.viommu, 2);
	/* a stage-1 fault reaches the guest with its vSID */
	assert_int_equal(dma_write32(f, 0x9000000, 1), SMMU_DMA_FAULT);
	assert_int_equal(read(fd, rec, sizeof(rec)), sizeof(struct vrec));
	assert_int_equal(rec[0].hdr.flags, 0);
	assert_int_equal(rec[0].hdr.sequence, 0);
	assert_int_equal(FGET(rec[0].evt.evt[0], EVT0_ID), EVT_F_TRANSLATION);
	assert_int_equal(FGET(rec[0].evt.evt[0], EVT0_SID), VSID);
	assert_int_equal(rec[0].evt.evt[2], 0x9000000);
	/* a stage-2 fault (S1 output outside guest RAM) is the host's, not forwarded */
	assert_int_equal(pgtable_map(&n.s1, 0xa000000, 0x8000000, 4096, PGT_R | PGT_W), 0);
	assert_int_equal(dma_write32(f, 0xa000000, 1), SMMU_DMA_FAULT);
	assert_int_equal(read(fd, rec, sizeof(rec)), -1);
	/* overflow: depth 2, four faults -> two kept, the rest lost, then a LOST header */
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(dma_write32(f, 0x9001000 + i * 4096ull, 1), SMMU_DMA_FAULT);
	assert_int_equal(read(fd, rec, sizeof(rec)), 2 * sizeof(struct vrec));
	assert_int_equal(rec[0].hdr.sequence, 1);
	assert_int_equal(rec[1].hdr.sequence, 2);
	assert_int_equal(dma_write32(f, 0x9100000, 1), SMMU_DMA_FAULT);
	struct iommufd_vevent_header lost;
	assert_int_equal(read(fd, &lost, sizeof(lost)), sizeof(lost));
	assert_int_equal(lost.flags, IOMMU_VEVENTQ_FLAG_LOST_EVENTS);
	assert_int_equal(read(fd, rec, sizeof(rec)), sizeof(struct vrec));
	assert_int_equal(rec[0].hdr.sequence, 5); /* 3 and 4 were lost: a gap */
	assert_int_equal(rec[0].evt.evt[2], 0x9100000);
	iommufd_host_get_stats(f->host, &st);
	assert_int_equal(st.vevents, 4);
	assert_int_equal(st.vevents_lost, 2);
	close(fd);
}

/* ---- fault queue ---- */

struct dma_thread {
	struct fx *f;
	uint64_t iova;
	struct smmu_dma_result res;
	pthread_t th;
};

static void *dma_thread_main(void *arg)
{
	struct dma_thread *t = arg;
	struct smmu_dma_txn txn = {.sid = SID, .flags = SMMU_DMA_BLOCK_ON_STALL};
	uint32_t v = 0x600df00d;
	smmu_dma_write(t->f->smmu, &txn, t->iova, &v, 4, &t->res);
	return NULL;
}

static void test_fault_queue(void **state)
{
	struct fx *f = *state;
	struct nest n;
	struct iommu_hwpt_pgfault pf;
	struct dma_thread t = {.f = f, .iova = 0xb000000};

	nest_setup(f, &n, 0, SMMU_CD_R | SMMU_CD_S);
	struct iommu_fault_alloc fa = {.size = sizeof(fa)};
	assert_int_equal(iommufd_fault_alloc(f->ctx, &fa), 0);
	nest_attach(f, &n, fa.out_fault_id);
	assert_int_equal(iommufd_destroy(f->ctx, fa.out_fault_id), -EBUSY);
	/* the device faults and blocks; the VMM reads the fault group */
	pthread_create(&t.th, NULL, dma_thread_main, &t);
	assert_int_equal(read(fa.out_fault_fd, &pf, sizeof(pf)), sizeof(pf));
	assert_int_equal(pf.dev_id, f->dev);
	assert_int_equal(pf.addr, 0xb000000);
	assert_int_equal(pf.perm, IOMMU_PGFAULT_PERM_WRITE);
	assert_true(pf.flags & IOMMU_PGFAULT_FLAGS_LAST_PAGE);
	assert_false(pf.flags & IOMMU_PGFAULT_FLAGS_PASID_VALID);
	/* bad responses */
	struct iommu_hwpt_page_response resp = {.cookie = pf.cookie + 100, .code = 0};
	assert_int_equal(iommufd_fault_write(fa.out_fault_fd, &resp, sizeof(resp)), -EINVAL);
	resp.cookie = pf.cookie;
	resp.code = 7;
	assert_int_equal(iommufd_fault_write(fa.out_fault_fd, &resp, sizeof(resp)), -EINVAL);
	assert_int_equal(iommufd_fault_write(fa.out_fault_fd, &resp, 5), -EINVAL);
	/* the guest maps the page, the VMM answers SUCCESS: the DMA retries and completes */
	assert_int_equal(pgtable_map(&n.s1, 0xb000000, 0x1800000, 4096, PGT_R | PGT_W), 0);
	resp.code = IOMMUFD_PAGE_RESP_SUCCESS;
	/* a plain write() on the fault fd works too (the host's service thread applies it) */
	assert_int_equal(write(fa.out_fault_fd, &resp, sizeof(resp)), sizeof(resp));
	pthread_join(t.th, NULL);
	assert_int_equal(t.res.status, SMMU_DMA_OK);
	assert_int_equal(*(uint32_t *)(f->vmm_ram + 0x1800000), 0x600df00d);
	/* the same cookie again is unknown now */
	assert_int_equal(iommufd_fault_write(fa.out_fault_fd, &resp, sizeof(resp)), -EINVAL);
	/* INVALID fails the transaction */
	t.iova = 0xb001000;
	pthread_create(&t.th, NULL, dma_thread_main, &t);
	assert_int_equal(read(fa.out_fault_fd, &pf, sizeof(pf)), sizeof(pf));
	resp = (struct iommu_hwpt_page_response){.cookie = pf.cookie,
						 .code = IOMMUFD_PAGE_RESP_INVALID};
	assert_int_equal(iommufd_fault_write(fa.out_fault_fd, &resp, sizeof(resp)), sizeof(resp));
	pthread_join(t.th, NULL);
	assert_int_equal(t.res.status, SMMU_DMA_ABORTED);
	close(fa.out_fault_fd);
}

static void test_stall_without_fault_queue(void **state)
{
	struct fx *f = *state;
	struct nest n;
	struct iommufd_host_stats st;

	nest_setup(f, &n, 0, SMMU_CD_R | SMMU_CD_S);
	nest_attach(f, &n, 0);
	int fd = veventq(f, n.viommu, 4);
	struct dma_thread t = {.f = f, .iova = 0xc000000};
	pthread_create(&t.th, NULL, dma_thread_main, &t);
	pthread_join(t.th, NULL); /* nobody to answer: the host aborts it at once */
	assert_int_equal(t.res.status, SMMU_DMA_ABORTED);
	iommufd_host_get_stats(f->host, &st);
	assert_int_equal(st.stalls_aborted, 1);
	/* the guest still hears of it, as a plain fault */
	struct vrec rec;
	assert_int_equal(read(fd, &rec, sizeof(rec)), sizeof(rec));
	assert_int_equal(FGET(rec.evt.evt[0], EVT0_ID), EVT_F_TRANSLATION);
	assert_int_equal(FGET(rec.evt.evt[1], EVT1_STALL), 0);
	assert_int_equal(rec.evt.evt[2], 0xc000000);
	close(fd);
}

/* ---- MSI window ---- */

static void test_msi_window(void **state)
{
	struct fx *f = *state;
	struct iommufd_msi_record rec;
	int fd;
	uint32_t pt = f->ioas;

	fx_map_ram(f, IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE);
	assert_int_equal(iommufd_ioas_map_msi_window(f->ctx, f->ioas, 0x1000000, 4096, &fd),
			 -EEXIST);
	assert_int_equal(iommufd_ioas_map_msi_window(f->ctx, f->ioas, 0xfee00000, 100, &fd),
			 -EINVAL);
	assert_int_equal(iommufd_ioas_map_msi_window(f->ctx, 99, 0xfee00000, 4096, &fd), -ENOENT);
	assert_int_equal(iommufd_ioas_map_msi_window(f->ctx, f->ioas, 0xfee00000, 4096, &fd), 0);
	assert_int_equal(iommufd_device_attach(f->ctx, f->dev, &pt), 0);
	assert_int_equal(dma_write32(f, 0xfee00040, 0x4041), SMMU_DMA_OK);
	assert_int_equal(read(fd, &rec, sizeof(rec)), sizeof(rec));
	assert_int_equal(rec.iova, 0xfee00040);
	assert_int_equal(rec.data, 0x4041);
	assert_int_equal(rec.sid, SID);
	uint64_t un;
	assert_int_equal(iommufd_ioas_unmap(f->ctx, f->ioas, 0xfee00000, 4096, &un), 0);
	assert_int_equal(dma_write32(f, 0xfee00040, 1), SMMU_DMA_FAULT);
	assert_int_equal(read(fd, &rec, sizeof(rec)), 0); /* writer side closed */
	close(fd);
}

/* ---- dirty tracking ---- */

static int get_dirty(struct fx *f, uint32_t hwpt, uint64_t iova, uint64_t len, uint64_t psize,
		     uint32_t flags, uint64_t *map)
{
	struct iommu_hwpt_get_dirty_bitmap c = {.size = sizeof(c),
						.hwpt_id = hwpt,
						.flags = flags,
						.iova = iova,
						.length = len,
						.page_size = psize,
						.data = (uintptr_t)map};
	return iommufd_hwpt_get_dirty_bitmap(f->ctx, &c);
}

static void test_dirty_bitmap(void **state)
{
	struct fx *f = *state;
	uint64_t map[RAM_SIZE / 4096 / 64];
	uint32_t hw, plain;

	fx_map_ram(f, IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE);
	assert_int_equal(
	    hwpt_alloc(f, IOMMU_HWPT_ALLOC_DIRTY_TRACKING, f->ioas, 0, NULL, 0, 0, &hw), 0);
	assert_int_equal(hwpt_alloc(f, 0, f->ioas, 0, NULL, 0, 0, &plain), 0);
	uint32_t pt = hw;
	assert_int_equal(iommufd_device_attach(f->ctx, f->dev, &pt), 0);
	/* errors */
	assert_int_equal(get_dirty(f, hw, 0, RAM_SIZE, 4096, 0, map), -EINVAL); /* not enabled */
	assert_int_equal(iommufd_hwpt_set_dirty_tracking(f->ctx, plain, 1), -EOPNOTSUPP);
	assert_int_equal(iommufd_hwpt_set_dirty_tracking(f->ctx, hw, 2), -EOPNOTSUPP);
	assert_int_equal(iommufd_hwpt_set_dirty_tracking(f->ctx, 999, 1), -ENOENT);
	assert_int_equal(iommufd_hwpt_set_dirty_tracking(f->ctx, hw, 1), 0);
	assert_int_equal(get_dirty(f, plain, 0, RAM_SIZE, 4096, 0, map), -EOPNOTSUPP);
	assert_int_equal(get_dirty(f, 999, 0, RAM_SIZE, 4096, 0, map), -ENOENT);
	assert_int_equal(get_dirty(f, hw, 0, RAM_SIZE, 4096, 2, map), -EOPNOTSUPP);
	assert_int_equal(get_dirty(f, hw, 0, RAM_SIZE, 0, 0, map), -EINVAL);
	assert_int_equal(get_dirty(f, hw, 0, RAM_SIZE, 12288, 0, map), -EINVAL);
	assert_int_equal(get_dirty(f, hw, 0, RAM_SIZE, 2048, 0, map), -EINVAL);
	assert_int_equal(get_dirty(f, hw, 0x800, RAM_SIZE, 4096, 0, map), -EINVAL);
	assert_int_equal(get_dirty(f, hw, 0, 0x1800, 4096, 0, map), -EINVAL);
	assert_int_equal(get_dirty(f, hw, 0, 0, 4096, 0, map), -EINVAL);
	assert_int_equal(get_dirty(f, hw, UINT64_MAX - 4095, 8192, 4096, 0, map), -EOVERFLOW);
	/* exactly the written GPAs; reads don't count */
	memset(map, 0, sizeof(map));
	assert_int_equal(get_dirty(f, hw, 0, RAM_SIZE, 4096, 0, map), 0);
	for (unsigned i = 0; i < ARRAY_SIZE(map); i++)
		assert_int_equal(map[i], 0);
	static const uint64_t gpa[] = {0x0, 0x5000, 0x123000, 0x3fff000};
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(dma_write32(f, gpa[i] + 12, 7), SMMU_DMA_OK);
	struct smmu_dma_result r;
	uint32_t v;
	smmu_dma_read(f->smmu, &dtxn, 0x9000, &v, 4, &r);
	for (unsigned pass = 0; pass < 3; pass++) {
		memset(map, 0, sizeof(map));
		uint32_t fl = pass < 2 ? IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR : 0;
		assert_int_equal(get_dirty(f, hw, 0, RAM_SIZE, 4096, fl, map), 0);
		size_t want = 0;
		for (unsigned i = 0; i < 4; i++)
			assert_true(bitmap_test(map, gpa[i] / 4096));
		want = bitmap_count(map, RAM_SIZE / 4096);
		assert_int_equal(want, 4);
	}
	memset(map, 0, sizeof(map));
	assert_int_equal(get_dirty(f, hw, 0, RAM_SIZE, 4096, 0, map), 0);
	assert_int_equal(bitmap_count(map, RAM_SIZE / 4096), 0); /* second harvest empty */
	/* a sub-range with a 2 MiB page size; bits only ever get set */
	assert_int_equal(dma_write32(f, 0x2345678, 1), SMMU_DMA_OK);
	assert_int_equal(dma_write32(f, 0x0, 1), SMMU_DMA_OK);
	memset(map, 0, sizeof(map));
	map[0] = 1ull << 63;
	assert_int_equal(get_dirty(f, hw, 0x2000000, 0x2000000, 2 << 20, 0, map), 0);
	assert_int_equal(map[0], (1ull << 63) | (1ull << 1));
	memset(map, 0, sizeof(map));
	assert_int_equal(get_dirty(f, hw, 0, RAM_SIZE, 4096, 0, map), 0);
	assert_int_equal(bitmap_count(map, RAM_SIZE / 4096), 1); /* 0x0 is still dirty */
	assert_true(bitmap_test(map, 0));
	/* re-enabling starts clean */
	assert_int_equal(dma_write32(f, 0x7000, 1), SMMU_DMA_OK);
	assert_int_equal(iommufd_hwpt_set_dirty_tracking(f->ctx, hw, 0), 0);
	assert_int_equal(iommufd_hwpt_set_dirty_tracking(f->ctx, hw, 1), 0);
	memset(map, 0, sizeof(map));
	assert_int_equal(get_dirty(f, hw, 0, RAM_SIZE, 4096, 0, map), 0);
	assert_int_equal(bitmap_count(map, RAM_SIZE / 4096), 0);
}

/* Stage-2 dirty tracking on a nesting parent: guest writes through its stage 1. */
static void test_dirty_nest_parent(void **state)
{
	struct fx *f = *state;
	struct nest n;
	uint64_t map[RAM_SIZE / 4096 / 64] = {0};

	nest_setup(f, &n, IOMMU_HWPT_ALLOC_DIRTY_TRACKING, SMMU_CD_R);
	assert_int_equal(pgtable_map(&n.s1, 0x7000000, 0x2000000, 8192, PGT_R | PGT_W), 0);
	nest_attach(f, &n, 0);
	assert_int_equal(iommufd_hwpt_set_dirty_tracking(f->ctx, n.parent, 1), 0);
	assert_int_equal(dma_write32(f, 0x7001004, 1), SMMU_DMA_OK);
	assert_int_equal(get_dirty(f, n.parent, 0, RAM_SIZE, 4096, 0, map), 0);
	assert_int_equal(bitmap_count(map, RAM_SIZE / 4096), 1);
	assert_true(bitmap_test(map, 0x2001000 / 4096)); /* the GPA, not the IOVA */
	/* after the harvest, the cached combined translation must not keep write permission */
	assert_int_equal(dma_write32(f, 0x7001008, 1), SMMU_DMA_OK);
	memset(map, 0, sizeof(map));
	assert_int_equal(get_dirty(f, n.parent, 0, RAM_SIZE, 4096, 0, map), 0);
	assert_true(bitmap_test(map, 0x2001000 / 4096));
}

/*
 * A host SMMU without hardware dirty state (HTTU < 2) must not claim dirty tracking: it
 * would otherwise take a fault on every tracked write and the VMM could not fall back.
 */
static void test_no_dirty_bits_refused(void **state)
{
	struct fx *f = *state;
	struct host_iommu_system sys;
	struct smmu_params p;
	struct iommufd_ctx *ctx;
	uint32_t ioas, dev;

	iommufd_close(f->ctx);
	host_iommu_system_destroy(&f->sys);
	smmu_params_default(&p);
	p.httu = 1;
	assert_int_equal(host_iommu_system_create(&sys, &p), 0);
	assert_int_equal(iommufd_open(&ctx), 0);
	assert_int_equal(iommufd_ioas_alloc(ctx, &ioas), 0);
	assert_int_equal(iommufd_device_bind(ctx, SID, &dev), 0);
	struct iommu_hw_info hi = {.size = sizeof(hi), .dev_id = dev};
	assert_int_equal(iommufd_get_hw_info(ctx, &hi), 0);
	assert_false(hi.out_capabilities & IOMMU_HW_CAP_DIRTY_TRACKING);
	struct iommu_hwpt_alloc a = {.size = sizeof(a),
				     .flags = IOMMU_HWPT_ALLOC_NEST_PARENT |
					      IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
				     .dev_id = dev,
				     .pt_id = ioas};
	assert_int_equal(iommufd_hwpt_alloc(ctx, &a), -EOPNOTSUPP);
	a.flags = IOMMU_HWPT_ALLOC_NEST_PARENT; /* the fallback works */
	assert_int_equal(iommufd_hwpt_alloc(ctx, &a), 0);
	iommufd_close(ctx);
	/* The fixture's teardown closes and destroys what it has: give it a fresh pair. */
	f->sys = sys;
	assert_int_equal(iommufd_open(&f->ctx), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_attach_ioas_dma, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_map_unmap_errors, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_bind_attach_errors, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_nested_dma_and_invalidate, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_hwpt_viommu_errors, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_nested_pasid, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_veventq, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_fault_queue, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_stall_without_fault_queue, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_msi_window, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_dirty_bitmap, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_dirty_nest_parent, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_no_dirty_bits_refused, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
