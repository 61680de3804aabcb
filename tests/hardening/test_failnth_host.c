// SPDX-License-Identifier: Apache-2.0
/*
 * Allocation-failure injection over the modelled host: the SMMU and every iommufd object
 * (IOAS, map_file, MSI window, paging HWPT with dirty tracking, vIOMMU, vDEVICE, vEVENTQ,
 * fault queue, nested HWPT, invalidation, attach/replace/detach, destruction), then the
 * sdma device through VFIO with its migration (PRE_COPY, STOP_COPY, RESUMING load).
 * Each allocation is made to fail in turn; the scenario must fail cleanly (no leak, no
 * fd left open, no crash) and succeed once no allocation fails.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arch/smmuv3.h"
#include "failnth.h"
#include "host/iommu/iommufd_host.h"
#include "host/dev/sdma.h"
#include "hw/sdma_regs.h"
#include "host/iommu/hostmem.h"
#include "host/iommu/smmu.h"
#include "host/vfio.h"

#define RAM_SIZE (8ull << 20)
#define MSI_GPA	 0xfee00000ull
#define SID	 0x10
#define VSID	 0x21

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

struct host {
	struct hostmem *hm;
	struct smmu *smmu;
	struct iommufd_host *host;
	struct iommufd_ctx *ctx;
};

static int host_up(struct host *h)
{
	memset(h, 0, sizeof(*h));
	h->hm = hostmem_create();
	h->smmu = h->hm ? smmu_create(h->hm, NULL) : NULL;
	h->host = h->smmu ? iommufd_host_create(h->smmu) : NULL;
	if (!h->host)
		return -ENOMEM;
	return iommufd_open_host(h->host, &h->ctx);
}

static void host_down(struct host *h)
{
	if (h->ctx)
		iommufd_close(h->ctx);
	iommufd_host_destroy(h->host);
	smmu_destroy(h->smmu);
	hostmem_destroy(h->hm);
}

struct objs {
	int memfd;
	uint32_t ioas, dev, parent, viommu, vdev, nested, fault, q;
	int msi_fd, q_fd, fault_fd;
};

static int ioas_up(struct host *h, struct objs *o)
{
	uint64_t iova = 0;
	int rc = iommufd_ioas_alloc(h->ctx, &o->ioas);

	if (!rc)
		rc = iommufd_ioas_map_file(h->ctx, o->ioas, o->memfd, 0, RAM_SIZE, &iova,
					   IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
					       IOMMU_IOAS_MAP_WRITEABLE);
	if (!rc)
		rc = iommufd_ioas_map_msi_window(h->ctx, o->ioas, MSI_GPA, 4096, &o->msi_fd);
	if (!rc)
		rc = iommufd_device_bind(h->ctx, SID, &o->dev);
	return rc;
}

static int parent_up(struct host *h, struct objs *o)
{
	uint64_t bitmap[RAM_SIZE / 4096 / 64] = {0};
	struct iommu_hwpt_alloc c = {.size = sizeof(c),
				     .flags = IOMMU_HWPT_ALLOC_NEST_PARENT |
					      IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
				     .dev_id = o->dev,
				     .pt_id = o->ioas};
	struct iommu_hwpt_get_dirty_bitmap b = {
	    .size = sizeof(b), .iova = 0, .length = RAM_SIZE, .page_size = 4096};
	int rc = iommufd_hwpt_alloc(h->ctx, &c);

	if (rc)
		return rc;
	o->parent = c.out_hwpt_id;
	b.hwpt_id = o->parent;
	b.data = (uintptr_t)bitmap;
	rc = iommufd_hwpt_set_dirty_tracking(h->ctx, o->parent, IOMMU_HWPT_DIRTY_TRACKING_ENABLE);
	if (!rc)
		rc = iommufd_hwpt_get_dirty_bitmap(h->ctx, &b);
	return rc;
}

static int viommu_up(struct host *h, struct objs *o)
{
	struct iommu_viommu_alloc va = {.size = sizeof(va),
					.type = IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
					.dev_id = o->dev,
					.hwpt_id = o->parent};
	struct iommu_vdevice_alloc vd = {.size = sizeof(vd), .dev_id = o->dev, .virt_id = VSID};
	struct iommu_veventq_alloc q = {
	    .size = sizeof(q), .type = IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, .veventq_depth = 8};
	struct iommu_fault_alloc fa = {.size = sizeof(fa)};
	int rc = iommufd_viommu_alloc(h->ctx, &va);

	if (rc)
		return rc;
	o->viommu = vd.viommu_id = q.viommu_id = va.out_viommu_id;
	rc = iommufd_vdevice_alloc(h->ctx, &vd);
	if (rc)
		return rc;
	o->vdev = vd.out_vdevice_id;
	rc = iommufd_veventq_alloc(h->ctx, &q);
	if (rc)
		return rc;
	o->q = q.out_veventq_id;
	o->q_fd = q.out_veventq_fd;
	rc = iommufd_fault_alloc(h->ctx, &fa);
	if (rc)
		return rc;
	o->fault = fa.out_fault_id;
	o->fault_fd = fa.out_fault_fd;
	return 0;
}

/* A nested HWPT (an S1 vSTE whose CD table is in guest RAM), attached, invalidated. */
static int nested_up(struct host *h, struct objs *o)
{
	struct iommu_hwpt_arm_smmuv3 v = {
	    .ste = {FVAL(STE0_V, 1) | FVAL(STE0_CONFIG, STE_CFG_S1) | 0x100000ull, 0}};
	struct iommu_hwpt_alloc c = {.size = sizeof(c),
				     .flags = IOMMU_HWPT_FAULT_ID_VALID,
				     .dev_id = o->dev,
				     .pt_id = o->viommu,
				     .data_type = IOMMU_HWPT_DATA_ARM_SMMUV3,
				     .data_len = sizeof(v),
				     .data_uptr = (uintptr_t)&v,
				     .fault_id = o->fault};
	struct smmu_cmd tlbi = smmu_cmd_tlbi_nh_all(0);
	struct iommu_hwpt_invalidate inv = {.size = sizeof(inv),
					    .data_uptr = (uintptr_t)&tlbi,
					    .data_type = IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
					    .entry_len = sizeof(tlbi),
					    .entry_num = 1};
	uint32_t pt;
	int rc = iommufd_hwpt_alloc(h->ctx, &c);

	if (rc)
		return rc;
	o->nested = pt = c.out_hwpt_id;
	rc = iommufd_device_attach(h->ctx, o->dev, &pt);
	inv.hwpt_id = o->viommu;
	if (!rc)
		rc = iommufd_hwpt_invalidate(h->ctx, &inv);
	pt = o->parent;
	if (!rc)
		rc = iommufd_device_replace(h->ctx, o->dev, &pt);
	if (!rc)
		rc = iommufd_device_detach(h->ctx, o->dev);
	return rc;
}

/* Explicit destruction in dependency order (iommufd_close does the rest on errors). */
static int objs_down(struct host *h, struct objs *o)
{
	const uint32_t ids[] = {o->nested, o->fault, o->q, o->vdev, o->viommu, o->parent};
	int rc = 0;

	if (o->q_fd >= 0)
		close(o->q_fd);
	o->q_fd = -1;
	for (unsigned i = 0; i < sizeof(ids) / sizeof(ids[0]) && !rc; i++)
		rc = iommufd_destroy(h->ctx, ids[i]);
	if (!rc)
		rc = iommufd_device_unbind(h->ctx, o->dev);
	if (!rc)
		rc = iommufd_destroy(h->ctx, o->ioas);
	return rc;
}

static int scenario_iommufd(void *arg)
{
	struct objs o = {.memfd = *(int *)arg, .msi_fd = -1, .q_fd = -1, .fault_fd = -1};
	struct host h;
	int rc = host_up(&h);

	if (!rc)
		rc = ioas_up(&h, &o);
	if (!rc)
		rc = parent_up(&h, &o);
	if (!rc)
		rc = viommu_up(&h, &o);
	if (!rc)
		rc = nested_up(&h, &o);
	if (!rc)
		rc = objs_down(&h, &o);
	for (int *fd = &o.msi_fd; fd <= &o.fault_fd; fd++)
		if (*fd >= 0)
			close(*fd);
	host_down(&h);
	return rc;
}

static void test_failnth_iommufd(void **state)
{
	int memfd = memfd_create("guest-ram", MFD_CLOEXEC);
	int fds;

	assert_true(memfd >= 0);
	assert_int_equal(ftruncate(memfd, (off_t)RAM_SIZE), 0);
	fds = open_fds();
	assert_true(failnth_run("iommufd", scenario_iommufd, &memfd, 2000) > 20);
	assert_int_equal(open_fds(), fds);
	close(memfd);
}

/* ---- sdma + VFIO migration ---- */

#define RING_GPA  0x200000ull
#define COMPL_GPA 0x300000ull
#define DATA_GPA  0x400000ull
#define N_DESC	  8

struct dev {
	struct sdma *sdma;
	struct vfio_device *vfio;
	uint32_t dev_id, pt;
};

struct mig {
	int memfd;
	uint8_t *ram;
	struct objs o;
	struct dev src, dst;
	uint8_t buf[16384];
	size_t len;
};

static int dev_up(struct mig *m, struct dev *d, const char *name, uint32_t sid, struct host *h)
{
	struct sdma_config cfg = {.name = name, .smmu = h->smmu, .sid = sid};
	int rc = sdma_create(&cfg, &d->sdma);

	if (!rc)
		rc = vfio_device_open(name, &d->vfio);
	if (!rc)
		rc = vfio_device_bind_iommufd(d->vfio, h->ctx, &d->dev_id);
	d->pt = m->o.ioas;
	if (!rc)
		rc = vfio_device_attach_pt(d->vfio, &d->pt);
	return rc;
}

static void dev_down(struct dev *d)
{
	if (d->vfio)
		vfio_device_close(d->vfio);
	if (d->sdma)
		sdma_destroy(d->sdma);
}

static int reg_write(struct dev *d, uint32_t off, uint64_t v)
{
	ssize_t n = vfio_region_write(d->vfio, VFIO_PCI_BAR0_REGION_INDEX, off, &v, 8);

	return n == 8 ? 0 : n < 0 ? (int)n : -EIO;
}

/* A ring of FILL descriptors, DMA logging on, the doorbell rung: work in flight. */
static int dev_work(struct mig *m, struct dev *d)
{
	struct vfio_device_feature_dma_logging_range r = {DATA_GPA, 1 << 20};
	struct {
		struct vfio_device_feature hdr;
		struct vfio_device_feature_dma_logging_control c;
	} log = {.hdr = {.argsz = sizeof(log),
			 .flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_START},
		 .c = {.page_size = 4096, .num_ranges = 1, .ranges = (uintptr_t)&r}};
	struct sdma_desc *ring = (struct sdma_desc *)(m->ram + RING_GPA);
	int rc = vfio_device_feature(d->vfio, &log.hdr);

	memset(m->ram + COMPL_GPA, 0, N_DESC * sizeof(struct sdma_compl));
	for (unsigned i = 0; i < N_DESC; i++)
		ring[i] =
		    (struct sdma_desc){.opcode = SDMA_OP_FILL,
				       .flags = SDMA_FLAG_CRAV,
				       .compl_addr = COMPL_GPA + i * sizeof(struct sdma_compl),
				       .dst = DATA_GPA + i * 65536,
				       .size = 65536,
				       .pattern = i};
	if (!rc)
		rc = reg_write(d, SDMA_REG_CTRL, 0);
	if (!rc)
		rc = reg_write(d, SDMA_REG_WQ_BASE, RING_GPA);
	if (!rc)
		rc = reg_write(d, SDMA_REG_WQ_CFG, 4);
	if (!rc)
		rc = reg_write(d, SDMA_REG_CTRL, 1);
	if (!rc)
		rc = reg_write(d, SDMA_REG_WQ_TAIL, N_DESC);
	return rc;
}

static int set_state(struct dev *d, uint32_t state, int *data_fd)
{
	struct {
		struct vfio_device_feature hdr;
		struct vfio_device_feature_mig_state s;
	} a = {.hdr = {.argsz = sizeof(a),
		       .flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE},
	       .s = {.device_state = state, .data_fd = -1}};
	int rc = vfio_device_feature(d->vfio, &a.hdr);

	if (data_fd)
		*data_fd = a.s.data_fd;
	else if (!rc && a.s.data_fd >= 0)
		vfio_mig_data_close(a.s.data_fd);
	return rc;
}

/* Reads until the temporary end (-ENOMSG) or the end (0). */
static ssize_t read_all(struct mig *m, int fd)
{
	for (;;) {
		ssize_t n = vfio_mig_data_read(fd, m->buf + m->len, sizeof(m->buf) - m->len);

		if (n <= 0)
			return n;
		m->len += (size_t)n;
	}
}

static int save(struct mig *m)
{
	int fd = -1, fd2 = -1;
	int rc = set_state(&m->src, VFIO_DEVICE_STATE_PRE_COPY, &fd);

	if (!rc && read_all(m, fd) != -ENOMSG)
		rc = -EIO;
	if (!rc)
		rc = set_state(&m->src, VFIO_DEVICE_STATE_PRE_COPY_P2P, NULL);
	if (!rc)
		rc = set_state(&m->src, VFIO_DEVICE_STATE_STOP_COPY, &fd2);
	if (!rc && (fd2 != fd && fd2 >= 0))
		rc = -EIO; /* the kernel keeps the pre-copy fd for STOP_COPY */
	if (!rc && read_all(m, fd))
		rc = -EIO;
	if (fd >= 0)
		vfio_mig_data_close(fd);
	if (!rc)
		rc = set_state(&m->src, VFIO_DEVICE_STATE_STOP, NULL);
	return rc;
}

static int load(struct mig *m)
{
	int fd = -1;
	int rc = set_state(&m->dst, VFIO_DEVICE_STATE_RESUMING, &fd);

	if (!rc && vfio_mig_data_write(fd, m->buf, m->len) != (ssize_t)m->len)
		rc = -EIO;
	if (fd >= 0)
		vfio_mig_data_close(fd);
	if (!rc)
		rc = set_state(&m->dst, VFIO_DEVICE_STATE_STOP, NULL);
	if (!rc)
		rc = set_state(&m->dst, VFIO_DEVICE_STATE_RUNNING, NULL);
	return rc;
}

/*
 * After every call succeeded, all descriptors must complete (on the source before the
 * switch or on the destination after it): 1 (a wrong result, not an error) otherwise.
 */
static int ring_completed(struct mig *m)
{
	const struct sdma_compl *c = (const struct sdma_compl *)(m->ram + COMPL_GPA);

	for (unsigned ms = 0; ms < 5000; ms++) {
		unsigned done = 0;

		for (unsigned i = 0; i < N_DESC; i++)
			done +=
			    __atomic_load_n(&c[i].status, __ATOMIC_ACQUIRE) == SDMA_STATUS_SUCCESS;
		if (done == N_DESC)
			return 0;
		usleep(1000);
	}
	return 1;
}

static int scenario_sdma_mig(void *arg)
{
	struct mig *m = arg;
	struct host h;
	int rc;

	memset(&m->o, 0, sizeof(m->o));
	memset(&m->src, 0, sizeof(m->src));
	memset(&m->dst, 0, sizeof(m->dst));
	memset(m->ram, 0, RAM_SIZE);
	m->o.memfd = m->memfd;
	m->o.msi_fd = m->o.q_fd = m->o.fault_fd = -1;
	m->len = 0;
	rc = host_up(&h);
	if (!rc)
		rc = ioas_up(&h, &m->o);
	if (!rc)
		rc = dev_up(m, &m->src, "fn-src", 0x12, &h);
	if (!rc)
		rc = dev_up(m, &m->dst, "fn-dst", 0x13, &h);
	if (!rc)
		rc = dev_work(m, &m->src);
	if (!rc)
		rc = save(m);
	if (!rc)
		rc = load(m);
	if (!rc)
		rc = ring_completed(m);
	dev_down(&m->src);
	dev_down(&m->dst);
	if (m->o.msi_fd >= 0)
		close(m->o.msi_fd);
	host_down(&h);
	return rc;
}

static void test_failnth_sdma_mig(void **state)
{
	struct mig *m = calloc(1, sizeof(*m));
	int fds;

	m->memfd = memfd_create("guest-ram", MFD_CLOEXEC);
	assert_true(m->memfd >= 0);
	assert_int_equal(ftruncate(m->memfd, (off_t)RAM_SIZE), 0);
	m->ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, m->memfd, 0);
	assert_true(m->ram != MAP_FAILED);
	fds = open_fds();
	assert_true(failnth_run("sdma_mig", scenario_sdma_mig, m, 4000) > 20);
	assert_int_equal(open_fds(), fds);
	munmap(m->ram, RAM_SIZE);
	close(m->memfd);
	free(m);
}

/* ---- host memory: removal cannot fail ---- */

#define HM_PA 0x80000000ull

static unsigned doorbells;

static void count_doorbell(void *opaque, uint64_t offset, const void *data, size_t len,
			   uint32_t sid)
{
	doorbells++;
}

/*
 * Regions are removed by destructors that cannot undo (IOAS unmap, MSI window free): with
 * the snapshot allocation failing, the region must still be gone: no RAM behind its PA,
 * a doorbell no longer called, the PA free for a new region.
 */
static void test_hostmem_remove_without_memory(void **state)
{
	struct hostmem *hm = hostmem_create();
	int memfd = memfd_create("hm", MFD_CLOEXEC);
	uint32_t v = 1;

	assert_non_null(hm);
	assert_int_equal(ftruncate(memfd, 2 << 20), 0);
	assert_int_equal(hostmem_add_file(hm, HM_PA, memfd, 0, 2 << 20), 0);
	assert_int_equal(hostmem_add_doorbell(hm, HM_PA + (4 << 20), 4096, count_doorbell, NULL),
			 0);
	failnth_arm(1);
	assert_int_equal(hostmem_remove(hm, HM_PA), 0);
	assert_true(failnth_disarm());
	assert_null(hostmem_ptr(hm, HM_PA, 8));
	assert_int_equal(hostmem_remove(hm, HM_PA), -ENOENT);
	failnth_arm(1);
	assert_int_equal(hostmem_remove(hm, HM_PA + (4 << 20)), 0);
	assert_true(failnth_disarm());
	assert_false(hostmem_doorbell_write(hm, HM_PA + (4 << 20), &v, 4, 0));
	assert_int_equal(doorbells, 0);
	/* A region over both tombstones, then the next copy drops them. */
	assert_int_equal(hostmem_add_file(hm, HM_PA - (2 << 20), memfd, 0, 2 << 20), 0);
	assert_int_equal(hostmem_add_ram(hm, HM_PA, 8 << 20), 0);
	assert_non_null(hostmem_ptr(hm, HM_PA + (4 << 20), 8));
	assert_int_equal(hostmem_remove(hm, HM_PA - (2 << 20)), 0);
	assert_int_equal(hostmem_remove(hm, HM_PA), 0);
	assert_null(hostmem_ptr(hm, HM_PA, 8));
	hostmem_destroy(hm);
	close(memfd);
}

/* ---- invalidation batches: any entry_num, no allocation ---- */

static void test_invalidate_any_count(void **state)
{
	enum { N = 1000, BAD = 700 };
	int memfd = memfd_create("guest-ram", MFD_CLOEXEC);
	struct objs o = {.memfd = memfd, .msi_fd = -1, .q_fd = -1, .fault_fd = -1};
	struct smmu_cmd *cmds = calloc(N, sizeof(*cmds));
	struct iommu_hwpt_invalidate inv = {.size = sizeof(inv),
					    .data_uptr = (uintptr_t)cmds,
					    .data_type = IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
					    .entry_len = sizeof(*cmds),
					    .entry_num = N};
	struct host h;

	assert_int_equal(ftruncate(memfd, (off_t)RAM_SIZE), 0);
	assert_int_equal(host_up(&h), 0);
	assert_int_equal(ioas_up(&h, &o), 0);
	assert_int_equal(parent_up(&h, &o), 0);
	assert_int_equal(viommu_up(&h, &o), 0);
	for (unsigned i = 0; i < N; i++)
		cmds[i] = smmu_cmd_tlbi_nh_all(0);
	inv.hwpt_id = o.viommu;
	failnth_arm(1); /* whatever the count, nothing is allocated */
	assert_int_equal(iommufd_hwpt_invalidate(h.ctx, &inv), 0);
	assert_false(failnth_disarm());
	assert_int_equal(inv.entry_num, N);
	/* A refused command past the first batches: those before it ran, the count says so. */
	cmds[BAD] = smmu_cmd_cfgi_all();
	inv.entry_num = N;
	assert_int_equal(iommufd_hwpt_invalidate(h.ctx, &inv), -EIO);
	assert_int_equal(inv.entry_num, BAD);
	for (int *fd = &o.msi_fd; fd <= &o.fault_fd; fd++)
		if (*fd >= 0)
			close(*fd);
	host_down(&h);
	close(memfd);
	free(cmds);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hostmem_remove_without_memory),
	    cmocka_unit_test(test_failnth_iommufd),
	    cmocka_unit_test(test_invalidate_any_count),
	    cmocka_unit_test(test_failnth_sdma_mig),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
