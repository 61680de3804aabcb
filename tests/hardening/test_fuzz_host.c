// SPDX-License-Identifier: Apache-2.0
/*
 * Untrusted input at the host interfaces, fuzzed with bounded seeded loops:
 * - the sdma migration stream: mutated copies of a real stream written to a RESUMING
 *   device; whatever happens, a reset brings the device back and it runs work again;
 * - VFIO device feature calls with random argsz, flags and payloads (pointers inside the
 *   payloads stay valid process addresses, as the kernel would otherwise say -EFAULT),
 *   and region accesses at any index, offset and length;
 * - random descriptors in the ring, behind stage 2 and nested with unanswered stalls;
 * - iommufd calls with random ids, sizes, flags and data; the context stays usable and
 *   every fd it hands out is accounted for.
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
#include <time.h>
#include <unistd.h>

#include "fuzz.h"
#include "common/util.h"
#include "sdma_fx.h"

struct hfx {
	struct fx src, dst;
};

static int setup(void **state)
{
	struct hfx *h = calloc(1, sizeof(*h));
	struct fx_opts so = {.mode = FX_STAGE2, .name = "fz-src", .sid = 0x10};
	struct fx_opts dopt = {.mode = FX_STAGE2, .name = "fz-dst", .sid = 0x11};

	fx_init(&h->src, &so);
	fx_add_device(&h->src, &h->dst, &dopt);
	*state = h;
	return 0;
}

static int teardown(void **state)
{
	struct hfx *h = *state;

	fx_remove_device(&h->dst);
	fx_fini(&h->src);
	free(h);
	return 0;
}

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

/* The device is usable: a reset returns it to RUNNING and a descriptor completes. */
static void expect_recovers(struct fx *f)
{
	uint32_t i;

	assert_int_equal(vfio_device_reset(f->vfio), 0);
	assert_int_equal(fx_get_state(f), VFIO_DEVICE_STATE_RUNNING);
	fx_ring_setup(f, 4);
	i = fx_put(
	    f,
	    (struct sdma_desc){.opcode = SDMA_OP_FILL, .dst = fx_iova(f, FX_DATA_GPA), .size = 64},
	    true);
	assert_true(fx_wait(f, i, 5000));
	if (fx_compl(f, i)->status != SDMA_STATUS_SUCCESS)
		fail_msg("recovery FILL: status %u fault_addr %#llx err %#llx err_addr %#llx",
			 fx_compl(f, i)->status, (unsigned long long)fx_compl(f, i)->fault_addr,
			 (unsigned long long)fx_reg_read(f, SDMA_REG_ERR),
			 (unsigned long long)fx_reg_read(f, SDMA_REG_ERR_ADDR));
}

/* ---- the migration stream ---- */

#define STREAM_CAP 65536

/* A real stream: work done, config set, RUNNING -> STOP -> STOP_COPY to the end. */
static size_t stream_save(struct fx *f, uint8_t *buf)
{
	size_t len = 0;
	uint32_t i;
	int fd;

	fx_ring_setup(f, 5);
	for (int k = 0; k < 5; k++)
		i = fx_put(f, (struct sdma_desc){.opcode = SDMA_OP_NOOP}, true);
	assert_true(fx_wait(f, i, 5000));
	fx_reg_write(f, SDMA_REG_MSI_DATA, 0xabc);
	assert_int_equal(fx_set_state(f, VFIO_DEVICE_STATE_STOP, NULL), 0);
	assert_int_equal(fx_set_state(f, VFIO_DEVICE_STATE_STOP_COPY, &fd), 0);
	for (;;) {
		ssize_t n = vfio_mig_data_read(fd, buf + len, STREAM_CAP - len);

		assert_true(n >= 0);
		if (n == 0)
			break;
		len += (size_t)n;
	}
	vfio_mig_data_close(fd);
	assert_int_equal(fx_set_state(f, VFIO_DEVICE_STATE_STOP, NULL), 0);
	assert_int_equal(fx_set_state(f, VFIO_DEVICE_STATE_RUNNING, NULL), 0);
	return len;
}

/* Writes buf in random pieces; stops at the first refusal. Returns 0 or the error. */
static int stream_write(struct fuzz *z, int fd, const uint8_t *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		size_t n = 1 + fuzz_below(z, len - off);
		ssize_t w = vfio_mig_data_write(fd, buf + off, n);

		if (w < 0)
			return (int)w;
		assert_true(w > 0 && (size_t)w <= n);
		off += (size_t)w;
	}
	return 0;
}

static void test_fuzz_sdma_stream(void **state)
{
	struct hfx *h = *state;
	uint8_t *good = malloc(STREAM_CAP), *buf = malloc(STREAM_CAP);
	size_t good_len = stream_save(&h->src, good);
	unsigned accepted = 0;
	struct fuzz z;

	fuzz_begin(&z, "sdma_stream", 1500);
	while (fuzz_next(&z, 50)) {
		size_t len = good_len;
		int fd, rc;

		memcpy(buf, good, len);
		if (z.iter > 1)
			fuzz_mutate(&z, buf, &len, STREAM_CAP);
		assert_int_equal(fx_set_state(&h->dst, VFIO_DEVICE_STATE_RESUMING, &fd), 0);
		rc = stream_write(&z, fd, buf, len);
		vfio_mig_data_close(fd);
		if (!rc)
			rc = fx_set_state(&h->dst, VFIO_DEVICE_STATE_STOP, NULL);
		if (!rc)
			rc = fx_set_state(&h->dst, VFIO_DEVICE_STATE_RUNNING, NULL);
		if (z.iter == 1)
			assert_int_equal(rc, 0); /* the unmutated stream loads */
		accepted += rc == 0;
		/* Accepted or not, with or without work running from it: a reset recovers. */
		expect_recovers(&h->dst);
	}
	fuzz_end(&z);
	printf("accepted %u\n", accepted);
	free(good);
	free(buf);
}

/* ---- VFIO device features ---- */

#define FEAT_BITMAP_BYTES (1u << 20)

struct feat_bufs {
	struct vfio_device_feature_dma_logging_range ranges[VFIO_LOG_MAX_RANGES];
	uint64_t *bitmap;
};

/* Pointers in the payload must be process addresses the callee may use to their size. */
static void feature_fix_pointers(struct fuzz *z, struct vfio_device_feature *hdr,
				 struct feat_bufs *b)
{
	uint32_t feature = hdr->flags & VFIO_DEVICE_FEATURE_MASK;

	if (feature == VFIO_DEVICE_FEATURE_DMA_LOGGING_START) {
		struct vfio_device_feature_dma_logging_control *c = (void *)hdr->data;

		fuzz_bytes(z, b->ranges, sizeof(b->ranges));
		for (unsigned i = 0; i < VFIO_LOG_MAX_RANGES && fuzz_chance(z, 2); i++) {
			b->ranges[i].iova = fuzz_below(z, FX_RAM_SIZE);
			b->ranges[i].length = fuzz_interesting(z);
		}
		c->ranges = (uintptr_t)b->ranges;
	} else if (feature == VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT) {
		struct vfio_device_feature_dma_logging_report *r = (void *)hdr->data;
		uint64_t ps = r->page_size;

		r->bitmap = (uintptr_t)b->bitmap;
		/* Keep the bitmap the callee may write within the buffer we own. */
		if (ps && ps < (1ull << 40) && r->length / ps >= FEAT_BITMAP_BYTES * 8ull)
			r->length = ps * fuzz_below(z, FEAT_BITMAP_BYTES * 8ull);
	}
}

static void feature_call(struct fuzz *z, struct fx *f, struct feat_bufs *b)
{
	static const uint32_t ops[] = {VFIO_DEVICE_FEATURE_GET, VFIO_DEVICE_FEATURE_SET,
				       VFIO_DEVICE_FEATURE_PROBE};
	struct {
		struct vfio_device_feature hdr;
		uint8_t data[256];
	} a;
	int rc;

	fuzz_bytes(z, &a, sizeof(a));
	a.hdr.argsz = fuzz_chance(z, 3) ? (uint32_t)fuzz_interesting(z)
					: (uint32_t)(sizeof(a.hdr) + fuzz_below(z, 64));
	if (a.hdr.argsz > sizeof(a))
		a.hdr.argsz = fuzz_chance(z, 2) ? (uint32_t)sizeof(a) : a.hdr.argsz;
	a.hdr.flags = (uint32_t)fuzz_below(z, 12);
	for (unsigned k = 0; k < 3; k++)
		if (fuzz_chance(z, 2))
			a.hdr.flags |= ops[k];
	if (fuzz_chance(z, 8))
		a.hdr.flags |= (uint32_t)fuzz_u64(z);
	if ((a.hdr.flags & VFIO_DEVICE_FEATURE_MASK) == VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE) {
		struct vfio_device_feature_mig_state *s = (void *)a.hdr.data;

		s->device_state = (uint32_t)fuzz_below(z, 10);
		s->data_fd = -1;
	}
	feature_fix_pointers(z, &a.hdr, b);
	if (a.hdr.argsz > sizeof(a))
		return; /* the callee would read past what we own (the kernel: -EFAULT) */
	rc = vfio_device_feature(f->vfio, &a.hdr);
	assert_true(rc <= 0);
	if (!rc && (a.hdr.flags & VFIO_DEVICE_FEATURE_SET) &&
	    (a.hdr.flags & VFIO_DEVICE_FEATURE_MASK) == VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE &&
	    !(a.hdr.flags & VFIO_DEVICE_FEATURE_PROBE)) {
		struct vfio_device_feature_mig_state *s = (void *)a.hdr.data;

		if (s->data_fd >= 0)
			vfio_mig_data_close(s->data_fd);
	}
}

/* Region reads and writes at any index, offset and length (the BAR takes 4 and 8 only). */
static void region_call(struct fuzz *z, struct fx *f)
{
	uint8_t buf[64];
	uint32_t index = fuzz_chance(z, 4) ? (uint32_t)fuzz_interesting(z) : 0;
	uint64_t off = fuzz_chance(z, 2) ? fuzz_below(z, 0x80) : fuzz_interesting(z);
	size_t len = fuzz_chance(z, 2) ? 1u << fuzz_below(z, 4) : fuzz_below(z, sizeof(buf) + 1);
	ssize_t n;

	fuzz_bytes(z, buf, sizeof(buf));
	if (fuzz_chance(z, 2))
		n = vfio_region_read(f->vfio, index, off, buf, len);
	else
		n = vfio_region_write(f->vfio, index, off, buf, len);
	assert_true(n < 0 || (size_t)n == len);
}

static void test_fuzz_vfio_features(void **state)
{
	struct hfx *h = *state;
	struct feat_bufs *b = calloc(1, sizeof(*b));
	int fds = open_fds();
	struct fuzz z;

	b->bitmap = calloc(1, FEAT_BITMAP_BYTES);
	fuzz_begin(&z, "vfio_features", 1500);
	while (fuzz_next(&z, 50)) {
		for (unsigned k = 0; k < 16; k++) {
			feature_call(&z, &h->dst, b);
			region_call(&z, &h->dst);
		}
		expect_recovers(&h->dst);
	}
	fuzz_end(&z);
	assert_int_equal(open_fds(), fds);
	free(b->bitmap);
	free(b);
}

/* ---- iommufd with random arguments ---- */

#define IFZ_BUF	     4096u
#define IFZ_BITMAP   (1u << 20)
#define IFZ_FDS	     1024
#define IFZ_GOOD_SID 0x30u

struct ifz {
	struct fuzz *z;
	struct iommufd_ctx *ctx;
	int memfd;
	uint8_t data[IFZ_BUF];
	uint64_t *bitmap;
	int fds[IFZ_FDS];
	unsigned nfds;
};

static uint32_t ifz_id(struct ifz *q)
{
	return fuzz_chance(q->z, 16) ? (uint32_t)fuzz_interesting(q->z)
				     : (uint32_t)fuzz_below(q->z, 24);
}

static uint64_t ifz_addr(struct ifz *q)
{
	return fuzz_chance(q->z, 2) ? fuzz_below(q->z, 64) << 21 : fuzz_interesting(q->z);
}

static void ifz_keep_fd(struct ifz *q, int rc, int fd)
{
	if (rc == 0) {
		assert_true(fd >= 0);
		assert_true(q->nfds < IFZ_FDS);
		q->fds[q->nfds++] = fd;
	}
}

static void ifz_ioas(struct ifz *q)
{
	uint64_t iova = ifz_addr(q), unmapped;
	uint32_t id;
	int fd = -1;

	switch (fuzz_below(q->z, 4)) {
	case 0:
		iommufd_ioas_alloc(q->ctx, &id);
		break;
	case 1:
		iommufd_ioas_map_file(q->ctx, ifz_id(q), fuzz_chance(q->z, 8) ? 12345 : q->memfd,
				      fuzz_chance(q->z, 2) ? 0 : fuzz_interesting(q->z),
				      fuzz_chance(q->z, 2) ? 2 << 20 : fuzz_interesting(q->z),
				      &iova, (uint32_t)fuzz_below(q->z, 16));
		break;
	case 2:
		iommufd_ioas_unmap(q->ctx, ifz_id(q), iova,
				   fuzz_chance(q->z, 2) ? 2 << 20 : fuzz_interesting(q->z),
				   &unmapped);
		break;
	default: {
		uint64_t len = fuzz_chance(q->z, 2) ? 4096 : fuzz_interesting(q->z);
		int rc = iommufd_ioas_map_msi_window(q->ctx, ifz_id(q), iova, len, &fd);

		ifz_keep_fd(q, rc, fd);
	}
	}
}

static void ifz_hwpt(struct ifz *q)
{
	struct iommu_hwpt_alloc c = {.size = fuzz_chance(q->z, 8) ? (uint32_t)fuzz_interesting(q->z)
								  : sizeof(c),
				     .flags = (uint32_t)fuzz_below(q->z, 8),
				     .dev_id = ifz_id(q),
				     .pt_id = ifz_id(q),
				     .data_type = (uint32_t)fuzz_below(q->z, 4),
				     .data_len = (uint32_t)fuzz_below(q->z, IFZ_BUF + 1),
				     .data_uptr = fuzz_chance(q->z, 8) ? 0 : (uintptr_t)q->data,
				     .fault_id = ifz_id(q)};

	if (fuzz_chance(q->z, 2))
		c.data_len = 16;
	iommufd_hwpt_alloc(q->ctx, &c);
}

static void ifz_dirty(struct ifz *q)
{
	struct iommu_hwpt_get_dirty_bitmap b = {
	    .size = sizeof(b),
	    .hwpt_id = ifz_id(q),
	    .flags = (uint32_t)fuzz_below(q->z, 4),
	    .iova = ifz_addr(q),
	    .length = fuzz_interesting(q->z),
	    .page_size = fuzz_chance(q->z, 2) ? 4096 : fuzz_interesting(q->z),
	    .data = (uintptr_t)q->bitmap};

	if (fuzz_chance(q->z, 2)) {
		iommufd_hwpt_set_dirty_tracking(q->ctx, ifz_id(q), (uint32_t)fuzz_below(q->z, 4));
		return;
	}
	/* The bitmap the callee may write stays inside the buffer we own. */
	if (b.page_size && b.page_size < (1ull << 40) &&
	    b.length / b.page_size >= IFZ_BITMAP * 8ull)
		b.length = b.page_size * fuzz_below(q->z, IFZ_BITMAP * 8ull);
	iommufd_hwpt_get_dirty_bitmap(q->ctx, &b);
}

static void ifz_invalidate(struct ifz *q)
{
	struct iommu_hwpt_invalidate c = {
	    .size = sizeof(c),
	    .hwpt_id = ifz_id(q),
	    .data_uptr = fuzz_chance(q->z, 8) ? 0 : (uintptr_t)q->data,
	    .data_type = (uint32_t)fuzz_below(q->z, 3),
	    .entry_len = fuzz_chance(q->z, 2) ? 16 : (uint32_t)fuzz_below(q->z, 64),
	    .entry_num = (uint32_t)fuzz_interesting(q->z)};

	/* entry_len * entry_num bytes are read: keep them inside q->data. */
	if (c.entry_len && c.entry_num > IFZ_BUF / c.entry_len)
		c.entry_num = (uint32_t)fuzz_below(q->z, IFZ_BUF / c.entry_len + 1);
	iommufd_hwpt_invalidate(q->ctx, &c);
}

static void ifz_viommu(struct ifz *q)
{
	struct iommu_viommu_alloc va = {.size = sizeof(va),
					.flags = (uint32_t)fuzz_below(q->z, 2),
					.type = (uint32_t)fuzz_below(q->z, 3),
					.dev_id = ifz_id(q),
					.hwpt_id = ifz_id(q)};
	struct iommu_vdevice_alloc vd = {.size = sizeof(vd),
					 .viommu_id = ifz_id(q),
					 .dev_id = ifz_id(q),
					 .virt_id = fuzz_interesting(q->z)};
	struct iommu_veventq_alloc ea = {.size = sizeof(ea),
					 .flags = (uint32_t)fuzz_below(q->z, 2),
					 .viommu_id = ifz_id(q),
					 .type = (uint32_t)fuzz_below(q->z, 3),
					 .veventq_depth = (uint32_t)fuzz_interesting(q->z)};
	struct iommu_fault_alloc fa = {.size = sizeof(fa), .flags = (uint32_t)fuzz_below(q->z, 2)};

	switch (fuzz_below(q->z, 4)) {
	case 0:
		iommufd_viommu_alloc(q->ctx, &va);
		break;
	case 1:
		iommufd_vdevice_alloc(q->ctx, &vd);
		break;
	case 2: {
		int rc;

		ea.veventq_depth %= 1u << fuzz_below(q->z, 20); /* memory it may allocate */
		rc = iommufd_veventq_alloc(q->ctx, &ea);
		ifz_keep_fd(q, rc, ea.out_veventq_fd);
		break;
	}
	default: {
		int rc = iommufd_fault_alloc(q->ctx, &fa);

		ifz_keep_fd(q, rc, fa.out_fault_fd);
	}
	}
}

static void ifz_device(struct ifz *q)
{
	uint32_t id = ifz_id(q), pt = ifz_id(q);
	struct iommu_hw_info hi = {.size = sizeof(hi),
				   .dev_id = id,
				   .data_len = (uint32_t)fuzz_below(q->z, IFZ_BUF + 1),
				   .data_uptr = (uintptr_t)q->data};

	switch (fuzz_below(q->z, 7)) {
	case 0: {
		uint32_t sid = fuzz_chance(q->z, 4) ? (uint32_t)fuzz_interesting(q->z)
						    : 0x20 + (uint32_t)fuzz_below(q->z, 4);

		/* IFZ_GOOD_SID stays free for ifz_still_works. */
		iommufd_device_bind(q->ctx, sid == IFZ_GOOD_SID ? sid + 1 : sid, &id);
		break;
	}
	case 1:
		iommufd_device_unbind(q->ctx, id);
		break;
	case 2:
		iommufd_device_attach(q->ctx, id, &pt);
		break;
	case 3:
		iommufd_device_replace(q->ctx, id, &pt);
		break;
	case 4:
		iommufd_device_detach(q->ctx, id);
		break;
	case 5:
		iommufd_get_hw_info(q->ctx, &hi);
		break;
	default:
		iommufd_destroy(q->ctx, id);
	}
}

/* After the storm the context still works for a well-behaved user. */
static void ifz_still_works(struct ifz *q)
{
	uint32_t ioas, dev, pt;
	uint64_t iova = 0;

	assert_int_equal(iommufd_ioas_alloc(q->ctx, &ioas), 0);
	assert_int_equal(iommufd_ioas_map_file(q->ctx, ioas, q->memfd, 0, 2 << 20, &iova,
					       IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE),
			 0);
	assert_int_equal(iommufd_device_bind(q->ctx, IFZ_GOOD_SID, &dev), 0);
	pt = ioas;
	assert_int_equal(iommufd_device_attach(q->ctx, dev, &pt), 0);
	assert_int_equal(iommufd_device_detach(q->ctx, dev), 0);
	assert_int_equal(iommufd_device_unbind(q->ctx, dev), 0);
}

static void test_fuzz_iommufd(void **state)
{
	struct hfx *h = *state;
	static void (*const ops[])(struct ifz *) = {ifz_ioas,	    ifz_hwpt,	ifz_dirty,
						    ifz_invalidate, ifz_viommu, ifz_device};
	struct ifz *q = calloc(1, sizeof(*q));
	struct iommu_fault_alloc fa = {.size = sizeof(fa)};
	struct fuzz z;
	int fds;

	/* The host starts its fault service (an epoll fd, an eventfd) with the first fault
	 * queue and keeps it: start it before counting. */
	assert_int_equal(iommufd_fault_alloc(h->src.ctx, &fa), 0);
	assert_int_equal(iommufd_destroy(h->src.ctx, fa.out_fault_id), 0);
	close(fa.out_fault_fd);
	fds = open_fds();

	q->z = &z;
	q->memfd = h->src.memfd;
	q->bitmap = calloc(1, IFZ_BITMAP);
	fuzz_begin(&z, "iommufd", 1500);
	while (fuzz_next(&z, 20)) {
		assert_int_equal(iommufd_open_host(h->src.host, &q->ctx), 0);
		for (unsigned k = 0; k < 200; k++) {
			fuzz_bytes(&z, q->data, 64);
			ops[fuzz_below(&z, ARRAY_SIZE(ops))](q);
		}
		ifz_still_works(q);
		iommufd_close(q->ctx);
		while (q->nfds)
			close(q->fds[--q->nfds]);
	}
	fuzz_end(&z);
	assert_int_equal(open_fds(), fds);
	expect_recovers(&h->src); /* the other context and its device were never disturbed */
	free(q->bitmap);
	free(q);
}

/* ---- random descriptors in the ring, stage 2 and nested (with stalls) ---- */

static uint64_t desc_addr(struct fuzz *z, struct fx *f)
{
	switch (fuzz_below(z, 4)) {
	case 0:
		return fuzz_interesting(z);
	case 1:
		return fx_iova(f, fuzz_below(z, FX_RAM_SIZE));
	default:
		return fx_iova(f, FX_DATA_GPA + fuzz_below(z, 8u << 20));
	}
}

static struct sdma_desc random_desc(struct fuzz *z, struct fx *f)
{
	struct sdma_desc d;

	fuzz_bytes(z, &d, sizeof(d));
	d.opcode = (uint8_t)(fuzz_chance(z, 8) ? d.opcode : fuzz_below(z, SDMA_OP_COUNT + 1));
	d.flags = (uint8_t)(fuzz_chance(z, 8) ? d.flags : fuzz_below(z, SDMA_FLAGS_ALL + 1));
	if (!fuzz_chance(z, 8)) {
		d.rsvd0 = 0;
		d.rsvd1 = 0;
		d.rsvd2[0] = d.rsvd2[1] = 0;
	}
	d.src = desc_addr(z, f);
	d.dst = desc_addr(z, f);
	d.size = fuzz_chance(z, 4) ? fuzz_interesting(z) : fuzz_below(z, 1u << 20);
	return d;
}

static uint64_t elapsed_ms(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)(t.tv_sec - t0->tv_sec) * 1000 +
	       (uint64_t)((t.tv_nsec - t0->tv_nsec) / 1000000);
}

/* Until the queue is idle or halted (or blocked on a stall nobody answers): bounded. */
static void wait_settled(struct fx *f, unsigned ms)
{
	for (unsigned i = 0; i < ms; i++) {
		uint64_t st = fx_reg_read(f, SDMA_REG_STATUS);

		if ((st & (1u << SDMA_STATUS_IDLE_SHIFT)) ||
		    (st & (1u << SDMA_STATUS_HALTED_SHIFT)))
			return;
		usleep(1000);
	}
}

static void desc_storm(struct fx *f, const char *name)
{
	struct fuzz z;

	fuzz_begin(&z, name, 1500);
	while (fuzz_next(&z, 10)) {
		struct timespec t0;
		unsigned n = 1 + (unsigned)fuzz_below(&z, 15);

		fx_ring_setup(f, 4);
		for (unsigned k = 0; k < n; k++) {
			struct sdma_desc d = random_desc(&z, f);
			uint32_t idx = fx_put(f, d, false);

			if (fuzz_chance(&z, 4)) { /* fx_put set a valid completion; not always */
				d.compl_addr = desc_addr(&z, f);
				memcpy(f->ram + FX_RING_GPA + (uint64_t)idx * sizeof(d), &d,
				       sizeof(d));
			}
		}
		fx_ring(f);
		wait_settled(f, 200);
		/* Whatever it is doing (even blocked on a stall), a reset ends it promptly. */
		clock_gettime(CLOCK_MONOTONIC, &t0);
		assert_int_equal(vfio_device_reset(f->vfio), 0);
		assert_true(elapsed_ms(&t0) < 3000);
		expect_recovers(f);
	}
	fuzz_end(&z);
}

static void test_fuzz_desc_stage2(void **state)
{
	struct hfx *h = *state;

	desc_storm(&h->src, "desc_stage2");
}

static void test_fuzz_desc_nested(void **state)
{
	struct fx f;
	struct fx_opts o = {.mode = FX_NESTED, .stall = true, .name = "fz-nest", .sid = 0x12};

	fx_init(&f, &o);
	desc_storm(&f, "desc_nested");
	fx_fini(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_fuzz_sdma_stream, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fuzz_vfio_features, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fuzz_iommufd, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fuzz_desc_stage2, setup, teardown),
	    cmocka_unit_test(test_fuzz_desc_nested),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
