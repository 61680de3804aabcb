// SPDX-License-Identifier: Apache-2.0
/*
 * Device migration between two sdma instances sharing one guest RAM (as after the RAM has
 * been migrated): pre-copy with work in flight, stop-copy to EOF, resume on the second
 * instance which continues the ring exactly where the first stopped. Then the refusals:
 * truncated, corrupted, trailing and incompatible streams, and the device staying usable.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/crc32c.h"

#include "host/vfio_drv.h"
#include "sdma_fx.h"

#define N_DESC	  200
#define FILL_SIZE (1u << 20)

struct mig {
	struct fx src, dst;
};

static int setup(void **state)
{
	struct mig *m = malloc(sizeof(*m));
	struct fx_opts so = {.mode = FX_STAGE2, .name = "sdma-src", .sid = 0x10};
	struct fx_opts dopt = {.mode = FX_STAGE2, .name = "sdma-dst", .sid = 0x11};

	fx_init(&m->src, &so);
	fx_add_device(&m->src, &m->dst, &dopt);
	*state = m;
	return 0;
}

static int teardown(void **state)
{
	struct mig *m = *state;

	fx_remove_device(&m->dst);
	fx_fini(&m->src);
	free(m);
	return 0;
}

struct stream {
	uint8_t buf[4096];
	size_t len;
};

/* Reads until the temporary end (PRE_COPY: -ENOMSG) or the end (STOP_COPY: 0). */
static ssize_t read_some(int fd, struct stream *s)
{
	for (;;) {
		ssize_t n = vfio_mig_data_read(fd, s->buf + s->len, sizeof(s->buf) - s->len);

		if (n <= 0)
			return n;
		s->len += (size_t)n;
	}
}

static void precopy_info(int fd, uint64_t *initial, uint64_t *dirty)
{
	struct vfio_precopy_info pi = {.argsz = sizeof(pi)};

	assert_int_equal(vfio_mig_get_precopy_info(fd, &pi), 0);
	*initial = pi.initial_bytes;
	*dirty = pi.dirty_bytes;
}

static uint64_t data_size(struct fx *f)
{
	struct {
		struct vfio_device_feature hdr;
		struct vfio_device_feature_mig_data_size d;
	} a = {.hdr = {.argsz = sizeof(a),
		       .flags = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE}};

	assert_int_equal(vfio_device_feature(f->vfio, &a.hdr), 0);
	return a.d.stop_copy_length;
}

/* Source: RUNNING with work queued -> PRE_COPY -> PRE_COPY_P2P -> STOP_COPY, to EOF. */
static void save(struct fx *f, struct stream *s, uint32_t *head, uint64_t *completed)
{
	uint64_t initial, dirty, remaining;
	struct sdma_stats st;
	int fd, fd2;
	size_t hdr_len;

	assert_int_equal(fx_set_state(f, VFIO_DEVICE_STATE_PRE_COPY, &fd), 0);
	assert_true(fd >= 0);
	sdma_get_stats(f->sdma, &st);
	assert_true(st.pending + st.inflight > 0); /* work in flight while pre-copying */
	precopy_info(fd, &initial, &dirty);
	assert_true(initial > 0);
	assert_int_equal(dirty, 0);
	/* The header (and config) comes early; a plain read() works for queued bytes. */
	assert_int_equal(read(fd, s->buf, 4), 4);
	s->len = 4;
	precopy_info(fd, &initial, &dirty);
	assert_true(initial > 0);
	initial += 4;
	/* Then a temporary end. */
	assert_int_equal(read_some(fd, s), -ENOMSG);
	assert_int_equal(s->len, initial);
	hdr_len = s->len;
	precopy_info(fd, &initial, &dirty);
	assert_int_equal(initial, 0);
	assert_int_equal(dirty, 0);
	/* A config register changes while pre-copying: it becomes dirty data. */
	fx_reg_write(f, SDMA_REG_MSI_DATA, FX_MSI_DATA + 1);
	precopy_info(fd, &initial, &dirty);
	assert_int_equal(initial, 0);
	assert_true(dirty > 0);
	assert_int_equal(read_some(fd, s), -ENOMSG);
	assert_int_equal(s->len, hdr_len + dirty);
	remaining = data_size(f);
	/* Let the engine make some progress before quiescing, so both sides run a part. */
	for (int k = 0; k < 5000 && fx_reg_read(f, SDMA_REG_COMPLETED) < 4; k++)
		usleep(200);
	/* PRE_COPY_P2P shares the session: no new fd. */
	assert_int_equal(fx_set_state(f, VFIO_DEVICE_STATE_PRE_COPY_P2P, &fd2), 0);
	assert_int_equal(fd2, -1);
	assert_int_equal(fx_set_state(f, VFIO_DEVICE_STATE_STOP_COPY, &fd2), 0);
	assert_int_equal(fd2, -1);
	*head = (uint32_t)fx_reg_read(f, SDMA_REG_WQ_HEAD);
	*completed = fx_reg_read(f, SDMA_REG_COMPLETED);
	assert_int_equal(read_some(fd, s), 0); /* the real end */
	assert_int_equal(s->len, hdr_len + (s->len - hdr_len));
	assert_true(s->len - hdr_len >= remaining);
	struct vfio_precopy_info pi = {.argsz = sizeof(pi)};
	assert_int_equal(vfio_mig_get_precopy_info(fd, &pi), -EINVAL); /* not in STOP_COPY */
	assert_int_equal(vfio_mig_data_close(fd), 0);
	assert_int_equal(fx_set_state(f, VFIO_DEVICE_STATE_STOP, NULL), 0);
}

/* Destination: RESUMING, the stream in odd segments, STOP, RUNNING_P2P, RUNNING. */
static void load(struct fx *f, const struct stream *s)
{
	size_t off = 0, seg = 1;
	int fd;

	assert_int_equal(fx_set_state(f, VFIO_DEVICE_STATE_RESUMING, &fd), 0);
	assert_true(fd >= 0);
	/* A plain write() goes in too; the wrappers keep the byte order. */
	assert_int_equal(write(fd, s->buf, 5), 5);
	off = 5;
	while (off < s->len) {
		size_t n = MIN(seg, s->len - off);

		assert_int_equal(vfio_mig_data_write(fd, s->buf + off, n), (ssize_t)n);
		off += n;
		seg = seg * 3 % 17 + 1;
	}
	assert_int_equal(vfio_mig_data_close(fd), 0);
	assert_int_equal(fx_set_state(f, VFIO_DEVICE_STATE_STOP, NULL), 0);
	assert_int_equal(fx_set_state(f, VFIO_DEVICE_STATE_RUNNING_P2P, NULL), 0);
}

static void test_migrate_with_work_in_flight(void **state)
{
	struct mig *m = *state;
	struct stream s = {.len = 0};
	uint64_t completed;
	uint32_t head;

	fx_ring_setup(&m->src, 8);
	for (uint32_t i = 0; i < N_DESC; i++) {
		struct sdma_desc d = {.opcode = SDMA_OP_FILL,
				      .dst = FX_DATA_GPA + (uint64_t)(i % 32) * FILL_SIZE,
				      .size = FILL_SIZE,
				      .pattern = i};

		assert_int_equal(fx_put(&m->src, d, false), i);
	}
	fx_ring(&m->src);
	save(&m->src, &s, &head, &completed);
	assert_int_equal(head, completed);
	assert_true(completed >= 4);	 /* the source ran a part ... */
	assert_true(completed < N_DESC); /* ... and left the rest */
	/* Exactly the descriptors before HEAD completed on the source; mark their records. */
	for (uint32_t i = 0; i < N_DESC; i++) {
		struct sdma_compl *c = fx_compl(&m->src, i);

		if (i < head) {
			assert_int_equal(c->status, SDMA_STATUS_SUCCESS);
			assert_int_equal(c->index, i);
			c->status = 0xee; /* a rerun would overwrite this */
		} else {
			assert_int_equal(c->status, 0);
		}
	}
	load(&m->dst, &s);
	/* Registers arrived (RUNNING_P2P: nothing runs yet). */
	assert_int_equal(fx_reg_read(&m->dst, SDMA_REG_WQ_HEAD), head);
	assert_int_equal(fx_reg_read(&m->dst, SDMA_REG_WQ_TAIL), N_DESC);
	assert_int_equal(fx_reg_read(&m->dst, SDMA_REG_MSI_DATA), FX_MSI_DATA + 1);
	assert_int_equal(fx_reg_read(&m->dst, SDMA_REG_COMPLETED), completed);
	assert_int_equal(fx_set_state(&m->dst, VFIO_DEVICE_STATE_RUNNING, NULL), 0);
	assert_int_equal(sdma_wait_idle(m->dst.sdma, 5000), 0);
	assert_int_equal(fx_reg_read(&m->dst, SDMA_REG_COMPLETED), N_DESC);
	assert_int_equal(fx_reg_read(&m->dst, SDMA_REG_WQ_HEAD), N_DESC);
	for (uint32_t i = 0; i < N_DESC; i++) {
		struct sdma_compl *c = fx_compl(&m->src, i);

		assert_int_equal(c->status, i < head ? 0xee : SDMA_STATUS_SUCCESS);
		assert_int_equal(c->index, i);
	}
	/* The source is stopped: it did nothing more. */
	assert_int_equal(fx_reg_read(&m->src, SDMA_REG_COMPLETED), completed);
	/* Both still work: the destination takes new descriptors. */
	m->dst.ring_log2 = 8;
	m->dst.tail = N_DESC;
	uint32_t i = fx_put(&m->dst, (struct sdma_desc){.opcode = SDMA_OP_NOOP}, true);
	assert_true(fx_wait(&m->dst, i, 2000));
	assert_int_equal(fx_compl(&m->dst, i)->status, SDMA_STATUS_SUCCESS);
}

/* A whole stream of a quiet device (STOP_COPY straight from RUNNING). */
static void save_quiet(struct fx *f, struct stream *s)
{
	uint64_t expect;
	int fd;

	assert_int_equal(fx_set_state(f, VFIO_DEVICE_STATE_STOP, NULL), 0);
	expect = data_size(f);
	assert_int_equal(fx_set_state(f, VFIO_DEVICE_STATE_STOP_COPY, &fd), 0);
	s->len = 0;
	assert_int_equal(read_some(fd, s), 0);
	assert_int_equal(s->len, expect);
	vfio_mig_data_close(fd);
	assert_int_equal(fx_set_state(f, VFIO_DEVICE_STATE_RUNNING, NULL), 0);
}

/* Feeds data into RESUMING; returns the result of RESUMING -> STOP (or the write error). */
static int try_load(struct fx *f, const uint8_t *data, size_t len)
{
	ssize_t w = 0;
	int fd, ret;

	assert_int_equal(fx_set_state(f, VFIO_DEVICE_STATE_RESUMING, &fd), 0);
	if (len)
		w = vfio_mig_data_write(fd, data, len);
	vfio_mig_data_close(fd);
	ret = fx_set_state(f, VFIO_DEVICE_STATE_STOP, NULL);
	if (w < 0) {
		assert_int_equal(ret, -EINVAL); /* what was refused never arrived: incomplete */
		return (int)w;
	}
	return ret;
}

/* After a refused stream: ERROR, nothing but reset helps, then the device works. */
static void expect_error_then_recover(struct fx *f)
{
	uint32_t i;

	assert_int_equal(fx_get_state(f), VFIO_DEVICE_STATE_ERROR);
	assert_int_equal(fx_set_state(f, VFIO_DEVICE_STATE_RUNNING, NULL), -EINVAL);
	assert_int_equal(fx_get_state(f), VFIO_DEVICE_STATE_ERROR);
	assert_int_equal(vfio_device_reset(f->vfio), 0);
	assert_int_equal(fx_get_state(f), VFIO_DEVICE_STATE_RUNNING);
	fx_ring_setup(f, 3);
	i = fx_put(f, (struct sdma_desc){.opcode = SDMA_OP_NOOP}, true);
	assert_true(fx_wait(f, i, 2000));
	assert_int_equal(fx_compl(f, i)->status, SDMA_STATUS_SUCCESS);
}

static void test_refuse_bad_streams(void **state)
{
	struct mig *m = *state;
	struct stream s;
	uint8_t bad[4096];

	fx_ring_setup(&m->src, 5);
	fx_reg_write(&m->src, SDMA_REG_MSI_DATA, 0xabc);
	save_quiet(&m->src, &s);
	assert_true(s.len > 100);
	/* Truncated anywhere: refused at STOP, ERROR, reset recovers. */
	size_t cuts[] = {0, 1, 7, 8, 30, s.len / 2, s.len - 5, s.len - 1};
	for (size_t k = 0; k < sizeof(cuts) / sizeof(cuts[0]); k++) {
		assert_int_equal(try_load(&m->dst, s.buf, cuts[k]), -EINVAL);
		expect_error_then_recover(&m->dst);
	}
	/* One flipped bit anywhere: the checksum (or the header check) refuses it. */
	for (size_t pos = 0; pos < s.len; pos += 13) {
		memcpy(bad, s.buf, s.len);
		bad[pos] ^= 0x10;
		assert_int_equal(try_load(&m->dst, bad, s.len), -EINVAL);
		expect_error_then_recover(&m->dst);
	}
	/* Bytes after END. */
	memcpy(bad, s.buf, s.len);
	bad[s.len] = 0;
	assert_int_equal(try_load(&m->dst, bad, s.len + 1), -EINVAL);
	expect_error_then_recover(&m->dst);
	/* The good stream still loads, and the registers match. */
	assert_int_equal(try_load(&m->dst, s.buf, s.len), 0);
	assert_int_equal(fx_reg_read(&m->dst, SDMA_REG_MSI_DATA), 0xabc);
	assert_int_equal(fx_reg_read(&m->dst, SDMA_REG_WQ_CFG), 5);
	assert_int_equal(fx_set_state(&m->dst, VFIO_DEVICE_STATE_RUNNING, NULL), 0);
}

/*
 * Rewrites register reg (its index in the FINAL record's register block) of a saved stream
 * and seals the record again, as a hostile or corrupt source could.
 */
static void reseal_final(uint8_t *buf, size_t len, unsigned reg, uint64_t value)
{
	for (size_t off = 0; off + 8 <= len;) {
		uint32_t type, rlen;
		memcpy(&type, buf + off, 4);
		memcpy(&rlen, buf + off + 4, 4);
		if (type == 3) { /* FINAL */
			memcpy(buf + off + 8 + reg * 8, &value, 8);
			uint32_t crc = crc32c(0, buf + off, 8 + rlen);
			memcpy(buf + off + 8 + rlen, &crc, 4);
			return;
		}
		off += 8 + rlen + 4;
	}
	fail_msg("no FINAL record");
}

/* RESUMING takes only register values BAR0 writes could have produced (checked at STOP). */
static void test_refuse_unreachable_registers(void **state)
{
	struct mig *m = *state;
	/* regs: ctrl halted err err_addr wq_base wq_cfg head tail shadow msi_addr msi_data int_ctrl
	 */
	const struct {
		unsigned reg;
		uint64_t value;
	} bad[] = {{5, 5 | (1ull << 40)}, {2, 1ull << 20},  {8, 0x1002},
		   {9, 0xfee00001},	  {10, 1ull << 32}, {11, 2}};
	struct stream s, t;

	fx_ring_setup(&m->src, 5);
	save_quiet(&m->src, &s);
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		t = s;
		reseal_final(t.buf, t.len, bad[k].reg, bad[k].value);
		assert_int_equal(try_load(&m->dst, t.buf, t.len), -EINVAL);
		expect_error_then_recover(&m->dst);
	}
	assert_int_equal(try_load(&m->dst, s.buf, s.len), 0);
}

/*
 * A long pre-copy: the saving side bounds what is queued, not what was ever emitted. 20000
 * configuration changes, each read as it comes (a CONFIG record each, 1.3 MiB in all).
 */
static void test_long_precopy_keeps_emitting(void **state)
{
	struct mig *m = *state;
	uint8_t buf[256];
	int fd;

	fx_ring_setup(&m->src, 5);
	assert_int_equal(fx_set_state(&m->src, VFIO_DEVICE_STATE_PRE_COPY, &fd), 0);
	while (vfio_mig_data_read(fd, buf, sizeof(buf)) > 0)
		;
	for (uint32_t k = 0; k < 20000; k++) {
		fx_reg_write(&m->src, SDMA_REG_MSI_DATA, k + 1);
		ssize_t n = vfio_mig_data_read(fd, buf, sizeof(buf));
		if (n <= 0)
			fail_msg("change %u: no CONFIG record (%zd)", k, n);
		while (vfio_mig_data_read(fd, buf, sizeof(buf)) > 0)
			;
	}
	vfio_mig_data_close(fd);
	assert_int_equal(fx_set_state(&m->src, VFIO_DEVICE_STATE_RUNNING, NULL), 0);
}

/* An incompatible destination refuses the header as soon as it is written. */
static void test_incompatible_header(void **state)
{
	struct mig *m = *state;
	struct fx small;
	struct fx_opts o = {
	    .mode = FX_STAGE2, .name = "sdma-small", .sid = 0x12, .dev = {.wq_log2_max = 6}};
	struct stream s;
	int fd;

	save_quiet(&m->src, &s);
	fx_add_device(&m->src, &small, &o);
	assert_int_equal(fx_set_state(&small, VFIO_DEVICE_STATE_RESUMING, &fd), 0);
	assert_int_equal(vfio_mig_data_write(fd, s.buf, 20), 20); /* incomplete: not judged yet */
	assert_int_equal(vfio_mig_data_write(fd, s.buf + 20, 8), -EINVAL); /* whole header record */
	/* The read side of a resuming fd is not for reading. */
	assert_int_equal(vfio_mig_data_read(fd, s.buf, 4), -EINVAL);
	vfio_mig_data_close(fd);
	assert_int_equal(fx_set_state(&small, VFIO_DEVICE_STATE_STOP, NULL), -EINVAL);
	assert_int_equal(fx_get_state(&small), VFIO_DEVICE_STATE_ERROR);
	assert_int_equal(vfio_device_reset(small.vfio), 0);
	fx_remove_device(&small);
}

/* A device with STOP_COPY only: no P2P/PRE_COPY states, but it migrates. */
static void test_stop_copy_only(void **state)
{
	struct mig *m = *state;
	struct fx a, b;
	struct fx_opts oa = {.mode = FX_STAGE2,
			     .name = "sdma-sc-a",
			     .sid = 0x13,
			     .dev = {.mig_flags = VFIO_MIGRATION_STOP_COPY, .no_dma_log = true}};
	struct fx_opts ob = oa;
	struct stream s;
	uint32_t i;
	int fd;

	ob.name = "sdma-sc-b";
	ob.sid = 0x14;
	fx_add_device(&m->src, &a, &oa);
	fx_add_device(&m->src, &b, &ob);
	assert_int_equal(fx_set_state(&a, VFIO_DEVICE_STATE_PRE_COPY, &fd), -EINVAL);
	assert_int_equal(fx_set_state(&a, VFIO_DEVICE_STATE_RUNNING_P2P, &fd), -EINVAL);
	fx_ring_setup(&a, 4);
	i = fx_put(&a, (struct sdma_desc){.opcode = SDMA_OP_NOOP}, true);
	assert_true(fx_wait(&a, i, 2000));
	save_quiet(&a, &s);
	assert_int_equal(try_load(&b, s.buf, s.len), 0);
	assert_int_equal(fx_set_state(&b, VFIO_DEVICE_STATE_RUNNING, NULL), 0);
	assert_int_equal(fx_reg_read(&b, SDMA_REG_WQ_HEAD), 1);
	b.ring_log2 = 4;
	b.tail = 1;
	i = fx_put(&b, (struct sdma_desc){.opcode = SDMA_OP_NOOP}, true);
	assert_true(fx_wait(&b, i, 2000));
	assert_int_equal(fx_reg_read(&b, SDMA_REG_COMPLETED), 2);
	fx_remove_device(&a);
	fx_remove_device(&b);
}
/*
 * RUNNING_P2P with a descriptor in flight: the uAPI says outstanding DMA completes before
 * the arc returns (a VMM harvests its dirty log after it). So once it returned nothing is
 * in flight and the descriptor either finished (record written) or never started.
 */
static void test_p2p_waits_for_dma_in_flight(void **state)
{
	struct mig *m = *state;
	struct sdma_stats st;
	uint32_t idx[4];
	int spins = 0;

	fx_ring_setup(&m->src, 4);
	for (int k = 0; k < 4; k++)
		idx[k] =
		    fx_put(&m->src,
			   (struct sdma_desc){.opcode = SDMA_OP_FILL,
					      .dst = fx_iova(&m->src, FX_DATA_GPA),
					      .size = 32ull << 20,
					      .pattern = 0x1111111111111111ull * (unsigned)(k + 1)},
			   k == 3);
	do
		sdma_get_stats(m->src.sdma, &st);
	while (!st.inflight && ++spins < 1000000);
	assert_true(st.inflight); /* a 32 MiB fill is under way */
	assert_int_equal(fx_set_state(&m->src, VFIO_DEVICE_STATE_RUNNING_P2P, NULL), 0);
	sdma_get_stats(m->src.sdma, &st);
	assert_int_equal(st.inflight, 0);
	uint64_t done = fx_reg_read(&m->src, SDMA_REG_COMPLETED);
	assert_true(done >= 1 && done < 4);
	assert_int_equal(fx_compl(&m->src, idx[done - 1])->status, SDMA_STATUS_SUCCESS);
	/* Its DMA is all in memory: the last byte of the fill holds its pattern. */
	assert_int_equal(*(volatile uint8_t *)(m->src.ram + FX_DATA_GPA + (32u << 20) - 1),
			 0x11 * done);
	usleep(20000);
	assert_int_equal(fx_reg_read(&m->src, SDMA_REG_COMPLETED), done); /* none starts */
	assert_int_equal(fx_set_state(&m->src, VFIO_DEVICE_STATE_RUNNING, NULL), 0);
	assert_true(fx_wait(&m->src, idx[3], 5000));
}

/*
 * The valueless doorbell across a migration: descriptors announced through the shadow
 * tail and the eventfd while the source is quiesced run on the destination, once.
 */
static void test_doorbell_kick_migrates(void **state)
{
	struct mig *m = *state;
	struct stream s = {.len = 0};
	uint32_t region, width, idx[3];
	uint64_t off;
	int efd, fd;

	fx_ring_setup(&m->src, 4);
	fx_reg_write(&m->src, SDMA_REG_WQ_SHADOW, fx_iova(&m->src, FX_SHADOW_GPA) | 1);
	assert_int_equal(vfio_device_get_doorbell(m->src.vfio, &region, &off, &width, &efd), 0);
	assert_int_equal(fx_set_state(&m->src, VFIO_DEVICE_STATE_RUNNING_P2P, NULL), 0);
	for (int k = 0; k < 3; k++)
		idx[k] = fx_put(&m->src, (struct sdma_desc){.opcode = SDMA_OP_NOOP}, false);
	*(volatile uint32_t *)(m->src.ram + FX_SHADOW_GPA) = m->src.tail;
	assert_int_equal(eventfd_write(efd, 1), 0);
	usleep(20000);
	assert_int_equal(fx_compl(&m->src, idx[0])->status, 0); /* P2P: nothing starts */
	assert_int_equal(fx_set_state(&m->src, VFIO_DEVICE_STATE_STOP_COPY, &fd), 0);
	assert_int_equal(read_some(fd, &s), 0);
	vfio_mig_data_close(fd);
	load(&m->dst, &s);
	assert_int_equal(fx_set_state(&m->dst, VFIO_DEVICE_STATE_RUNNING, NULL), 0);
	for (int k = 0; k < 3; k++) {
		assert_true(fx_wait(&m->dst, idx[k], 2000));
		assert_int_equal(fx_compl(&m->dst, idx[k])->status, SDMA_STATUS_SUCCESS);
	}
	assert_int_equal(sdma_wait_idle(m->dst.sdma, 2000), 0);
	assert_int_equal(fx_reg_read(&m->dst, SDMA_REG_COMPLETED), 3);
	assert_int_equal(fx_reg_read(&m->src, SDMA_REG_COMPLETED), 0);
}

static bool saving(uint32_t st)
{
	return st == VFIO_DEVICE_STATE_PRE_COPY || st == VFIO_DEVICE_STATE_PRE_COPY_P2P ||
	       st == VFIO_DEVICE_STATE_STOP_COPY;
}

/* Drains a saving fd to its (temporary) end; closes it. */
static void drain_and_close(int fd)
{
	struct stream junk = {.len = 0};
	ssize_t r = read_some(fd, &junk);

	assert_true(r == 0 || r == -ENOMSG);
	assert_true(junk.len > 0);
	vfio_mig_data_close(fd);
}

/* Enters state st from RUNNING; a RESUMING session gets the valid stream. */
static void enter(struct fx *f, uint32_t st, const struct stream *good)
{
	int fd;

	assert_int_equal(vfio_device_reset(f->vfio), 0);
	assert_int_equal(fx_set_state(f, st, &fd), 0);
	if (st == VFIO_DEVICE_STATE_RESUMING) {
		assert_int_equal(vfio_mig_data_write(fd, good->buf, good->len), (ssize_t)good->len);
		vfio_mig_data_close(fd);
	} else if (fd >= 0) {
		drain_and_close(fd);
	}
	assert_int_equal(fx_get_state(f), st);
}

/* Every (current, requested) pair on the real driver, for every feature combination. */
static void test_driver_all_pairs(void **state)
{
	struct mig *m = *state;
	const uint64_t combos[] = {
	    VFIO_MIGRATION_STOP_COPY,
	    VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P,
	    VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_PRE_COPY,
	    VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY,
	};
	struct stream good;

	save_quiet(&m->src, &good);
	for (size_t c = 0; c < sizeof(combos) / sizeof(combos[0]); c++) {
		struct fx_opts o = {.mode = FX_STAGE2,
				    .name = "sdma-pairs",
				    .sid = 0x40,
				    .dev = {.mig_flags = combos[c]}};
		struct fx g;

		fx_add_device(&m->src, &g, &o);
		for (uint32_t cur = 1; cur < VFIO_DEVICE_STATE_COUNT; cur++) {
			uint32_t next;

			if (vfio_mig_next_state(combos[c], cur, cur, &next) != 0)
				continue; /* cur itself unsupported */
			for (uint32_t want = 0; want < VFIO_DEVICE_STATE_COUNT; want++) {
				bool valid =
				    vfio_mig_next_state(combos[c], cur, want, &next) == 0 ||
				    (cur == want);
				int fd, ret;

				enter(&g, cur, &good);
				ret = fx_set_state(&g, want, &fd);
				if (!valid || want == VFIO_DEVICE_STATE_ERROR) {
					assert_int_equal(ret, -EINVAL);
					assert_int_equal(fx_get_state(&g), cur);
					continue;
				}
				assert_int_equal(ret, 0);
				assert_int_equal(fx_get_state(&g), want);
				if (fd >= 0) {
					if (saving(want))
						drain_and_close(fd);
					else
						vfio_mig_data_close(fd);
				}
			}
		}
		fx_remove_device(&g);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_migrate_with_work_in_flight, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refuse_bad_streams, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_incompatible_header, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stop_copy_only, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_driver_all_pairs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_doorbell_kick_migrates, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_p2p_waits_for_dma_in_flight, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refuse_unreachable_registers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_long_precopy_keeps_emitting, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
