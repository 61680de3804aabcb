// SPDX-License-Identifier: Apache-2.0
#include "sdma_fx.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "common/trace.h"
#include "host/iommu/smmu_regs.h"

#define FX_VSID 0x21

static void fx_host_init(struct fx *f)
{
	uint64_t iova = 0;

	trace_init_from_env();
	f->hm = hostmem_create();
	f->smmu = smmu_create(f->hm, NULL);
	f->host = iommufd_host_create(f->smmu);
	assert_non_null(f->host);
	assert_int_equal(iommufd_open_host(f->host, &f->ctx), 0);
	f->memfd = memfd_create("guest-ram", MFD_CLOEXEC);
	assert_true(f->memfd >= 0);
	assert_int_equal(ftruncate(f->memfd, (off_t)FX_RAM_SIZE), 0);
	f->ram = mmap(NULL, FX_RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, f->memfd, 0);
	assert_true(f->ram != MAP_FAILED);
	assert_int_equal(iommufd_ioas_alloc(f->ctx, &f->ioas), 0);
	assert_int_equal(iommufd_ioas_map_file(f->ctx, f->ioas, f->memfd, 0, FX_RAM_SIZE, &iova,
					       IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
						   IOMMU_IOAS_MAP_WRITEABLE),
			 0);
	assert_int_equal(iommufd_ioas_map_msi_window(f->ctx, f->ioas, FX_MSI_GPA, 4096, &f->msi_fd),
			 0);
}

static void fx_device_create(struct fx *f, const struct fx_opts *o)
{
	f->o = *o;
	f->o.dev.smmu = f->smmu;
	f->o.dev.sid = o->sid ? o->sid : 0x10;
	f->o.dev.name = o->name ? o->name : "sdma-test";
	assert_int_equal(sdma_create(&f->o.dev, &f->sdma), 0);
	assert_int_equal(vfio_device_open(f->o.dev.name, &f->vfio), 0);
	assert_int_equal(vfio_device_bind_iommufd(f->vfio, f->ctx, &f->dev_id), 0);
}

static uint32_t fx_hwpt_alloc(struct fx *f, uint32_t flags, uint32_t pt, const void *data,
			      uint32_t len, uint32_t fault_id)
{
	struct iommu_hwpt_alloc c = {.size = sizeof(c),
				     .flags = flags,
				     .dev_id = f->dev_id,
				     .pt_id = pt,
				     .data_type = data ? IOMMU_HWPT_DATA_ARM_SMMUV3 : 0,
				     .data_len = len,
				     .data_uptr = (uintptr_t)data,
				     .fault_id = fault_id};

	assert_int_equal(iommufd_hwpt_alloc(f->ctx, &c), 0);
	return c.out_hwpt_id;
}

static void fx_nest_objects(struct fx *f)
{
	struct iommu_viommu_alloc va = {
	    .size = sizeof(va), .type = IOMMU_VIOMMU_TYPE_ARM_SMMUV3, .dev_id = f->dev_id};
	struct iommu_vdevice_alloc vd = {
	    .size = sizeof(vd), .dev_id = f->dev_id, .virt_id = FX_VSID};

	f->parent = fx_hwpt_alloc(f, IOMMU_HWPT_ALLOC_NEST_PARENT, f->ioas, NULL, 0, 0);
	va.hwpt_id = f->parent;
	assert_int_equal(iommufd_viommu_alloc(f->ctx, &va), 0);
	f->viommu = va.out_viommu_id;
	vd.viommu_id = f->viommu;
	assert_int_equal(iommufd_vdevice_alloc(f->ctx, &vd), 0);
	f->vdev = vd.out_vdevice_id;
	if (f->o.stall) {
		struct iommu_fault_alloc fa = {.size = sizeof(fa)};

		assert_int_equal(iommufd_fault_alloc(f->ctx, &fa), 0);
		f->fault_id = fa.out_fault_id;
		f->fault_fd = fa.out_fault_fd;
	}
}

/*
 * CD FX_PASID: the same ring/completion/MSI mappings as CD 0, but the data window
 * translated FX_PASID_SHIFT higher, so a test sees which context a DMA used.
 */
static void fx_pasid_tables(struct fx *f, uint64_t cd_table, unsigned cdflags)
{
	const unsigned prot = PGT_R | PGT_W | PGT_PAGES;
	uint64_t cd[8];

	assert_int_equal(pgtable_init(&f->s1p, &f->gmem, 1, 48, PGT_LEVEL_AUTO), 0);
	assert_int_equal(pgtable_map(&f->s1p, FX_S1_OFFSET + FX_RING_GPA, FX_RING_GPA,
				     FX_DATA_GPA - FX_RING_GPA, prot),
			 0);
	assert_int_equal(pgtable_map(&f->s1p, FX_S1_OFFSET + FX_DATA_GPA,
				     FX_DATA_GPA + FX_PASID_SHIFT, 1 << 20, prot),
			 0);
	assert_int_equal(pgtable_map(&f->s1p, FX_S1_OFFSET + FX_MSI_GPA, FX_MSI_GPA, 4096, prot),
			 0);
	smmu_cd_build(cd, &f->s1p, 5, cdflags);
	memcpy(pgt_buf_ptr(&f->gbuf, cd_table + FX_PASID * 64), cd, sizeof(cd));
}

/* The guest's stage 1: tables and CD in guest RAM, then the nested HWPT from its vSTE. */
static void fx_nest_attach(struct fx *f)
{
	unsigned cdflags = SMMU_CD_R | (f->o.stall ? SMMU_CD_S : 0);
	struct iommu_hwpt_arm_smmuv3 v = {{0}};
	uint64_t cd[8], cd_gpa;

	fx_nest_objects(f);
	pgt_buf_init(&f->gbuf, f->ram + FX_S1_GPA, FX_S1_GPA, 1 << 20);
	f->gmem = pgt_buf_mem(&f->gbuf);
	assert_int_equal(pgt_buf_alloc(&f->gbuf, 4 * 64, 4096, &cd_gpa), 0);
	assert_int_equal(pgtable_init(&f->s1, &f->gmem, 1, 48, PGT_LEVEL_AUTO), 0);
	smmu_cd_build(cd, &f->s1, 3, cdflags);
	memcpy(pgt_buf_ptr(&f->gbuf, cd_gpa), cd, sizeof(cd));
	if (f->o.pasid)
		fx_pasid_tables(f, cd_gpa, cdflags);
	if (f->o.s1_sparse)
		fx_s1_map(f, FX_RING_GPA, FX_DATA_GPA - FX_RING_GPA);
	else
		fx_s1_map(f, FX_RING_GPA, FX_RAM_SIZE - FX_RING_GPA);
	assert_int_equal(
	    pgtable_map(&f->s1, FX_S1_OFFSET + FX_MSI_GPA, FX_MSI_GPA, 4096, PGT_R | PGT_W), 0);
	v.ste[0] = F_VAL(STE0_V, 1) | F_VAL(STE0_CFG, STE_CFG_S1) | cd_gpa;
	v.ste[1] = F_VAL(STE1_S1CIR, 1) | F_VAL(STE1_S1COR, 1) | F_VAL(STE1_S1CSH, 3);
	if (f->o.pasid) {
		/* Linear table of 4 CDs; untagged traffic uses CD 0 (S1DSS = 2). */
		v.ste[0] |= F_VAL(STE0_S1FMT, STE_S1FMT_LINEAR) | F_VAL(STE0_S1CDMAX, 2);
		v.ste[1] |= F_VAL(STE1_S1DSS, 2);
	}
	f->nested = fx_hwpt_alloc(f, f->o.stall ? IOMMU_HWPT_FAULT_ID_VALID : 0, f->viommu, &v,
				  sizeof(v), f->fault_id);
	f->pt = f->nested;
	assert_int_equal(vfio_device_attach_pt(f->vfio, &f->pt), 0);
}

void fx_init(struct fx *f, const struct fx_opts *o)
{
	memset(f, 0, sizeof(*f));
	f->fault_fd = -1;
	fx_host_init(f);
	fx_device_create(f, o);
	if (o->mode == FX_NESTED) {
		fx_nest_attach(f);
	} else {
		f->pt = f->ioas;
		assert_int_equal(vfio_device_attach_pt(f->vfio, &f->pt), 0);
	}
}

void fx_add_device(struct fx *f, struct fx *g, const struct fx_opts *o)
{
	assert_int_equal(f->o.mode, FX_STAGE2);
	memset(g, 0, sizeof(*g));
	g->hm = f->hm;
	g->smmu = f->smmu;
	g->host = f->host;
	g->ctx = f->ctx;
	g->ram = f->ram;
	g->memfd = -1;
	g->msi_fd = f->msi_fd;
	g->fault_fd = -1;
	g->ioas = f->ioas;
	fx_device_create(g, o);
	g->pt = g->ioas;
	assert_int_equal(vfio_device_attach_pt(g->vfio, &g->pt), 0);
}

void fx_remove_device(struct fx *g)
{
	vfio_device_close(g->vfio);
	sdma_destroy(g->sdma);
}

void fx_fini(struct fx *f)
{
	fx_remove_device(f);
	if (f->fault_fd >= 0)
		close(f->fault_fd);
	close(f->msi_fd);
	iommufd_close(f->ctx);
	iommufd_host_destroy(f->host);
	smmu_destroy(f->smmu);
	hostmem_destroy(f->hm);
	munmap(f->ram, FX_RAM_SIZE);
	close(f->memfd);
}

uint64_t fx_iova(const struct fx *f, uint64_t gpa)
{
	return f->o.mode == FX_NESTED ? gpa + FX_S1_OFFSET : gpa;
}

void fx_s1_map(struct fx *f, uint64_t gpa, uint64_t len)
{
	/* 4 KiB pages, so tests can punch single-page holes. */
	assert_int_equal(
	    pgtable_map(&f->s1, FX_S1_OFFSET + gpa, gpa, len, PGT_R | PGT_W | PGT_PAGES), 0);
}

void fx_s1_unmap(struct fx *f, uint64_t gpa, uint64_t len)
{
	assert_true(pgtable_unmap(&f->s1, FX_S1_OFFSET + gpa, len) >= 0);
}

uint64_t fx_reg_read(struct fx *f, uint32_t off)
{
	uint64_t v = 0;

	assert_int_equal(vfio_region_read(f->vfio, VFIO_PCI_BAR0_REGION_INDEX, off, &v, 8), 8);
	return v;
}

void fx_reg_write(struct fx *f, uint32_t off, uint64_t v)
{
	assert_int_equal(vfio_region_write(f->vfio, VFIO_PCI_BAR0_REGION_INDEX, off, &v, 8), 8);
}

void fx_ring_setup(struct fx *f, unsigned log2)
{
	f->ring_log2 = log2;
	f->tail = 0;	memset(f->ram + FX_RING_GPA, 0, sizeof(struct sdma_desc) << log2);
	fx_reg_write(f, SDMA_REG_CTRL, 0); /* the queue config is writable while disabled */
	fx_reg_write(f, SDMA_REG_WQ_BASE, fx_iova(f, FX_RING_GPA));
	fx_reg_write(f, SDMA_REG_WQ_CFG, log2);
	fx_reg_write(f, SDMA_REG_MSI_ADDR, fx_iova(f, FX_MSI_GPA));
	fx_reg_write(f, SDMA_REG_MSI_DATA, FX_MSI_DATA);
	fx_reg_write(f, SDMA_REG_INT_CTRL, 1);
	fx_reg_write(f, SDMA_REG_CTRL, 1);
	assert_int_equal(fx_reg_read(f, SDMA_REG_STATUS) & 3, 1);
}

uint64_t fx_compl_iova(const struct fx *f, uint32_t idx)
{
	return fx_iova(f, FX_COMPL_GPA + (uint64_t)idx * sizeof(struct sdma_compl));
}

struct sdma_compl *fx_compl(struct fx *f, uint32_t idx)
{
	return (struct sdma_compl *)(f->ram + FX_COMPL_GPA +
				     (uint64_t)idx * sizeof(struct sdma_compl));
}

uint32_t fx_put(struct fx *f, struct sdma_desc d, bool ring)
{
	uint32_t idx = f->tail;

	d.flags |= SDMA_FLAG_CRAV;
	d.compl_addr = fx_compl_iova(f, idx);
	memset(fx_compl(f, idx), 0, sizeof(struct sdma_compl));
	memcpy(f->ram + FX_RING_GPA + (uint64_t)idx * sizeof(d), &d, sizeof(d));
	f->tail = (idx + 1) & ((1u << f->ring_log2) - 1);
	if (ring)
		fx_ring(f);
	return idx;
}

void fx_ring(struct fx *f)
{
	fx_reg_write(f, SDMA_REG_WQ_TAIL, f->tail);
}

bool fx_wait(struct fx *f, uint32_t idx, unsigned timeout_ms)
{
	volatile uint8_t *st = &fx_compl(f, idx)->status;

	for (unsigned i = 0; i < timeout_ms * 10; i++) {
		if (__atomic_load_n(st, __ATOMIC_ACQUIRE))
			return true;
		usleep(100);
	}
	return false;
}

int fx_set_state(struct fx *f, uint32_t state, int *data_fd)
{
	struct {
		struct vfio_device_feature hdr;
		struct vfio_device_feature_mig_state s;
	} a = {.hdr = {.argsz = sizeof(a),
		       .flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE},
	       .s = {.device_state = state}};
	int ret = vfio_device_feature(f->vfio, &a.hdr);

	if (data_fd)
		*data_fd = a.s.data_fd;
	else if (a.s.data_fd >= 0)
		vfio_mig_data_close(a.s.data_fd);
	return ret;
}

uint32_t fx_get_state(struct fx *f)
{
	struct {
		struct vfio_device_feature hdr;
		struct vfio_device_feature_mig_state s;
	} a = {.hdr = {.argsz = sizeof(a),
		       .flags = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE}};

	assert_int_equal(vfio_device_feature(f->vfio, &a.hdr), 0);
	return a.s.device_state;
}
