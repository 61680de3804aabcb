// SPDX-License-Identifier: Apache-2.0
/*
 * The sdma device on the host SMMU, stage 2 only and nested: every operation's memory
 * result and completion record, MSIs through the translation, faults (partial completion,
 * block on fault with a resumed stall), malformed guest input, the valueless doorbell,
 * the P2P/STOP semantics of the engine and the put-back of a blocked descriptor.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <poll.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/crc32c.h"
#include "sdma_fx.h"

static int setup_s2(void **state)
{
	struct fx *f = malloc(sizeof(*f));
	struct fx_opts o = {.mode = FX_STAGE2};

	fx_init(f, &o);
	*state = f;
	return 0;
}

static int setup_nested(void **state)
{
	struct fx *f = malloc(sizeof(*f));
	struct fx_opts o = {.mode = FX_NESTED};

	fx_init(f, &o);
	*state = f;
	return 0;
}

static int setup_nested_stall(void **state)
{
	struct fx *f = malloc(sizeof(*f));
	struct fx_opts o = {
	    .mode = FX_NESTED, .stall = true, .s1_sparse = true, .dev = {.quiesce_ms = 100}};

	fx_init(f, &o);
	*state = f;
	return 0;
}

static int setup_nested_pasid(void **state)
{
	struct fx *f = malloc(sizeof(*f));
	struct fx_opts o = {.mode = FX_NESTED, .pasid = true};

	fx_init(f, &o);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx_fini(*state);
	free(*state);
	return 0;
}

/* Reads one MSI record from the window (the device's completion interrupt). */
static void expect_msi(struct fx *f)
{
	struct iommufd_msi_record rec;
	struct pollfd p = {.fd = f->msi_fd, .events = POLLIN};

	assert_int_equal(poll(&p, 1, 2000), 1);
	assert_int_equal(read(f->msi_fd, &rec, sizeof(rec)), sizeof(rec));
	assert_int_equal(rec.iova, FX_MSI_GPA); /* the IPA: stage 1 was applied first */
	assert_int_equal(rec.data, FX_MSI_DATA);
	assert_int_equal(rec.sid, f->o.dev.sid);
}

static void no_msi(struct fx *f)
{
	struct pollfd p = {.fd = f->msi_fd, .events = POLLIN};

	assert_int_equal(poll(&p, 1, 0), 0);
}

static uint8_t *gpa_ptr(struct fx *f, uint64_t gpa)
{
	return f->ram + gpa;
}

static uint32_t run(struct fx *f, struct sdma_desc d)
{
	uint32_t idx = fx_put(f, d, true);

	assert_true(fx_wait(f, idx, 3000));
	assert_int_equal(fx_compl(f, idx)->index, idx);
	return idx;
}

/*
 * The engine writes a completion record before it retires the descriptor (HEAD, in-flight
 * count, STATUS.IDLE), as real hardware may: software that sees the record polls for the
 * rest. Waits up to ms for STATUS.IDLE, or for no descriptor in flight.
 */
static bool wait_idle(struct fx *f, int ms)
{
	for (int i = 0; i < ms; i++) {
		if (fx_reg_read(f, SDMA_REG_STATUS) & (1u << SDMA_STATUS_IDLE_SHIFT))
			return true;
		usleep(1000);
	}
	return false;
}

static bool wait_none_inflight(struct fx *f, int ms)
{
	struct sdma_stats st;

	for (int i = 0; i < ms; i++) {
		sdma_get_stats(f->sdma, &st);
		if (st.inflight == 0)
			return true;
		usleep(1000);
	}
	return false;
}

static void test_ops(void **state)
{
	struct fx *f = *state;
	const uint64_t src = FX_DATA_GPA, dst = FX_DATA_GPA + 0x100000, n = 3 * 4096 + 123;
	struct sdma_compl *c;
	uint32_t i;

	fx_ring_setup(f, 4);
	for (uint64_t k = 0; k < n; k++)
		gpa_ptr(f, src)[k] = (uint8_t)(k * 7 + 1);
	/* NOOP with an interrupt */
	i = run(f, (struct sdma_desc){.opcode = SDMA_OP_NOOP, .flags = SDMA_FLAG_RCI});
	assert_int_equal(fx_compl(f, i)->status, SDMA_STATUS_SUCCESS);
	expect_msi(f);
	/* MEMMOVE (unaligned size across pages) */
	i = run(f, (struct sdma_desc){.opcode = SDMA_OP_MEMMOVE,
				      .src = fx_iova(f, src),
				      .dst = fx_iova(f, dst),
				      .size = n});
	c = fx_compl(f, i);
	assert_int_equal(c->status, SDMA_STATUS_SUCCESS);
	assert_int_equal(c->bytes_completed, n);
	assert_memory_equal(gpa_ptr(f, dst), gpa_ptr(f, src), n);
	assert_int_equal(gpa_ptr(f, dst)[n], 0);
	no_msi(f);
	/* COMPARE equal, then with a difference at a known offset */
	i = run(f, (struct sdma_desc){.opcode = SDMA_OP_COMPARE,
				      .src = fx_iova(f, src),
				      .dst = fx_iova(f, dst),
				      .size = n});
	assert_int_equal(fx_compl(f, i)->status, SDMA_STATUS_SUCCESS);
	assert_int_equal(fx_compl(f, i)->result, 0);
	assert_int_equal(fx_compl(f, i)->bytes_completed, n);
	gpa_ptr(f, dst)[5000] ^= 0xff;
	i = run(f, (struct sdma_desc){.opcode = SDMA_OP_COMPARE,
				      .src = fx_iova(f, src),
				      .dst = fx_iova(f, dst),
				      .size = n,
				      .flags = SDMA_FLAG_RCI});
	assert_int_equal(fx_compl(f, i)->result, 1);
	assert_int_equal(fx_compl(f, i)->bytes_completed, 5000);
	expect_msi(f);
	/* FILL with an 8-byte pattern, length not a multiple of 8 */
	i = run(f, (struct sdma_desc){.opcode = SDMA_OP_FILL,
				      .dst = fx_iova(f, dst + 1),
				      .size = 8195,
				      .pattern = 0x0807060504030201ull});
	assert_int_equal(fx_compl(f, i)->status, SDMA_STATUS_SUCCESS);
	for (unsigned k = 0; k < 8195; k++)
		assert_int_equal(gpa_ptr(f, dst + 1)[k], k % 8 + 1);
	assert_int_equal(gpa_ptr(f, dst + 1)[8195], (uint8_t)(8195 * 7 + 1 + 7)); /* untouched */
	/* CRC32C: the standard check value, and a seeded chain */
	memcpy(gpa_ptr(f, src), "123456789", 9);
	i = run(f, (struct sdma_desc){.opcode = SDMA_OP_CRC32C, .src = fx_iova(f, src), .size = 9});
	assert_int_equal(fx_compl(f, i)->result, 0xE3069283u);
	i = run(f, (struct sdma_desc){.opcode = SDMA_OP_CRC32C,
				      .src = fx_iova(f, src + 4),
				      .size = 5,
				      .pattern = crc32c(0, "1234", 4)});
	assert_int_equal(fx_compl(f, i)->result, 0xE3069283u);
	assert_true(wait_idle(f, 3000));
	assert_int_equal(fx_reg_read(f, SDMA_REG_COMPLETED), 7);
	assert_int_equal(fx_reg_read(f, SDMA_REG_WQ_HEAD), 7);
}

/* A fault without block-on-fault: a partial completion naming the first failed address. */
static void test_partial_fault(void **state)
{
	struct fx *f = *state;
	const uint64_t src = FX_DATA_GPA, dst_gpa = FX_RAM_SIZE - 0x1800; /* 0x800 before the end */
	uint64_t dst = fx_iova(f, dst_gpa);
	bool nested = f->o.mode == FX_NESTED;
	/* Stage 2: the hole is the end of RAM. Nested: a stage-1 hole one page earlier. */
	uint64_t done = nested ? 0x800 : 0x1800;
	uint64_t hole = nested ? fx_iova(f, FX_RAM_SIZE - 0x1000) : FX_RAM_SIZE;
	struct sdma_compl *c;
	uint32_t i;

	if (nested)
		fx_s1_unmap(f, FX_RAM_SIZE - 0x1000, 0x1000);
	fx_ring_setup(f, 4);
	memset(gpa_ptr(f, src), 0x5a, 0x2000);
	i = run(f,
		(struct sdma_desc){
		    .opcode = SDMA_OP_MEMMOVE, .src = fx_iova(f, src), .dst = dst, .size = 0x2000});
	c = fx_compl(f, i);
	assert_int_equal(c->status, SDMA_STATUS_PAGE_FAULT);
	assert_int_equal(c->bytes_completed, done);
	assert_int_equal(c->fault_addr, hole);
	assert_true(c->fault_info & SDMA_FAULT_INFO_WRITE);
	assert_int_equal(gpa_ptr(f, dst_gpa)[done - 1], 0x5a);
	if (nested)
		assert_int_equal(gpa_ptr(f, dst_gpa)[done], 0);
	/* A read fault: CRC32C over the hole; result is the CRC of what was read. */
	i = run(f, (struct sdma_desc){.opcode = SDMA_OP_CRC32C,
				      .src = fx_iova(f, FX_RAM_SIZE - 0x2000),
				      .size = 0x3000});
	c = fx_compl(f, i);
	assert_int_equal(c->status, SDMA_STATUS_PAGE_FAULT);
	assert_false(c->fault_info & SDMA_FAULT_INFO_WRITE);
	assert_int_equal(c->fault_addr, hole);
	assert_int_equal(c->bytes_completed, hole - fx_iova(f, FX_RAM_SIZE - 0x2000));
	/* The engine goes on after faults. */
	i = run(f, (struct sdma_desc){.opcode = SDMA_OP_NOOP});
	assert_int_equal(fx_compl(f, i)->status, SDMA_STATUS_SUCCESS);
}

static void test_malformed(void **state)
{
	struct fx *f = *state;
	uint64_t err;
	uint32_t i;

	fx_ring_setup(f, 3);
	i = run(f, (struct sdma_desc){.opcode = 9});
	assert_int_equal(fx_compl(f, i)->status, SDMA_STATUS_INVALID);
	i = run(f, (struct sdma_desc){.opcode = SDMA_OP_MEMMOVE, .size = 0});
	assert_int_equal(fx_compl(f, i)->status, SDMA_STATUS_INVALID);
	i = run(f, (struct sdma_desc){
		       .opcode = SDMA_OP_FILL, .dst = fx_iova(f, FX_DATA_GPA), .size = 1ull << 40});
	assert_int_equal(fx_compl(f, i)->status, SDMA_STATUS_INVALID);
	i = run(f, (struct sdma_desc){.opcode = SDMA_OP_NOOP, .flags = 0x80});
	assert_int_equal(fx_compl(f, i)->status, SDMA_STATUS_INVALID);
	i = run(f, (struct sdma_desc){.opcode = SDMA_OP_NOOP, .rsvd2 = {1, 0}});
	assert_int_equal(fx_compl(f, i)->status, SDMA_STATUS_INVALID);
	/* A FILL to an unmapped IOVA far away: a fault, not a crash. */
	i = run(f, (struct sdma_desc){.opcode = SDMA_OP_FILL, .dst = 0xdead0000000ull, .size = 64});
	assert_int_equal(fx_compl(f, i)->status, SDMA_STATUS_PAGE_FAULT);
	assert_int_equal(fx_compl(f, i)->bytes_completed, 0);
	/* TAIL outside the ring halts the queue with an error record. */
	fx_reg_write(f, SDMA_REG_WQ_TAIL, 100);
	assert_true(fx_reg_read(f, SDMA_REG_STATUS) & (1u << SDMA_STATUS_HALTED_SHIFT));
	err = fx_reg_read(f, SDMA_REG_ERR);
	assert_int_equal(err & 0xff, SDMA_ERR_TAIL_RANGE);
	assert_true(err & (1u << SDMA_ERR_VALID_SHIFT));
	/* Reset recovers; a misaligned ring refuses to enable. */
	fx_reg_write(f, SDMA_REG_CTRL, 1u << SDMA_CTRL_RESET_SHIFT);
	assert_int_equal(fx_reg_read(f, SDMA_REG_STATUS) & 3, 0);
	assert_int_equal(fx_reg_read(f, SDMA_REG_ERR), 0);
	fx_reg_write(f, SDMA_REG_WQ_BASE, fx_iova(f, FX_RING_GPA) + 8);
	fx_reg_write(f, SDMA_REG_CTRL, 1);
	assert_int_equal(fx_reg_read(f, SDMA_REG_ERR) & 0xff, SDMA_ERR_WQ_BASE_ALIGN);
	assert_true(fx_reg_read(f, SDMA_REG_STATUS) & (1u << SDMA_STATUS_HALTED_SHIFT));
	/* Too large a ring. */
	fx_reg_write(f, SDMA_REG_ERR, 1u << SDMA_ERR_VALID_SHIFT);
	fx_reg_write(f, SDMA_REG_CTRL, 0);
	fx_reg_write(f, SDMA_REG_WQ_BASE, fx_iova(f, FX_RING_GPA));
	fx_reg_write(f, SDMA_REG_WQ_CFG, 25);
	fx_reg_write(f, SDMA_REG_CTRL, 1);
	assert_int_equal(fx_reg_read(f, SDMA_REG_ERR) & 0xff, SDMA_ERR_WQ_SIZE);
	/* A ring outside the mapped IOVA space: the fetch fails and halts, naming the address. */
	fx_reg_write(f, SDMA_REG_CTRL, 1u << SDMA_CTRL_RESET_SHIFT);
	fx_reg_write(f, SDMA_REG_WQ_BASE, 0x7000000000ull);
	fx_reg_write(f, SDMA_REG_WQ_CFG, 2);
	fx_reg_write(f, SDMA_REG_CTRL, 1);
	fx_reg_write(f, SDMA_REG_WQ_TAIL, 1);
	for (int k = 0; k < 2000 && !(fx_reg_read(f, SDMA_REG_STATUS) & 2); k++)
		usleep(1000);
	assert_true(fx_reg_read(f, SDMA_REG_STATUS) & (1u << SDMA_STATUS_HALTED_SHIFT));
	assert_int_equal(fx_reg_read(f, SDMA_REG_ERR) & 0xff, SDMA_ERR_WQ_FETCH);
	assert_int_equal(fx_reg_read(f, SDMA_REG_ERR_ADDR), 0x7000000000ull);
	assert_int_equal(fx_reg_read(f, SDMA_REG_WQ_HEAD), 0);
	/* Bad BAR accesses are refused by the region. */
	uint64_t v = 0;
	assert_int_equal(vfio_region_read(f->vfio, 0, 3, &v, 4), -EINVAL);
	assert_int_equal(vfio_region_read(f->vfio, 0, 0, &v, 2), -EINVAL);
	assert_int_equal(vfio_region_read(f->vfio, 0, SDMA_BAR0_SIZE, &v, 8), -EINVAL);
	assert_int_equal(vfio_region_read(f->vfio, 1, 0, &v, 8), -EINVAL);
	/* And after a reset everything works again. */
	fx_reg_write(f, SDMA_REG_CTRL, 1u << SDMA_CTRL_RESET_SHIFT);
	fx_ring_setup(f, 3);
	i = run(f, (struct sdma_desc){.opcode = SDMA_OP_NOOP});
	assert_int_equal(fx_compl(f, i)->status, SDMA_STATUS_SUCCESS);
}

/* The valueless doorbell: the eventfd kick makes the device read the shadow tail. */
static void test_doorbell_eventfd(void **state)
{
	struct fx *f = *state;
	uint32_t region, width, idx[3];
	uint64_t off;
	int efd;

	assert_int_equal(vfio_device_get_doorbell(f->vfio, &region, &off, &width, &efd), 0);
	assert_int_equal(region, VFIO_PCI_BAR0_REGION_INDEX);
	assert_int_equal(off, SDMA_REG_WQ_TAIL);
	assert_int_equal(width, 4);
	fx_ring_setup(f, 2);
	fx_reg_write(f, SDMA_REG_WQ_SHADOW, fx_iova(f, FX_SHADOW_GPA) | 1);
	for (int k = 0; k < 3; k++)
		idx[k] = fx_put(f, (struct sdma_desc){.opcode = SDMA_OP_NOOP}, false);
	*(volatile uint32_t *)gpa_ptr(f, FX_SHADOW_GPA) = f->tail;
	assert_int_equal(eventfd_write(efd, 1), 0);
	for (int k = 0; k < 3; k++)
		assert_true(fx_wait(f, idx[k], 2000));
	assert_int_equal(fx_reg_read(f, SDMA_REG_WQ_TAIL), 3);
	/* Wrap around the 4-slot ring. */
	idx[0] = fx_put(f, (struct sdma_desc){.opcode = SDMA_OP_NOOP}, false);
	idx[1] = fx_put(f, (struct sdma_desc){.opcode = SDMA_OP_NOOP}, false);
	*(volatile uint32_t *)gpa_ptr(f, FX_SHADOW_GPA) = f->tail;
	assert_int_equal(eventfd_write(efd, 1), 0);
	assert_true(fx_wait(f, idx[1], 2000));
	assert_int_equal(idx[1], 0);
	/* A shadow tail beyond the ring halts the queue. */
	*(volatile uint32_t *)gpa_ptr(f, FX_SHADOW_GPA) = 77;
	assert_int_equal(eventfd_write(efd, 1), 0);
	for (int k = 0; k < 2000 && !(fx_reg_read(f, SDMA_REG_STATUS) & 2); k++)
		usleep(1000);
	assert_int_equal(fx_reg_read(f, SDMA_REG_ERR) & 0xff, SDMA_ERR_TAIL_RANGE);
}

/* RUNNING_P2P: nothing new starts; STOP holds; RUNNING resumes where it stopped. */
static void test_p2p_holds_new_work(void **state)
{
	struct fx *f = *state;
	struct sdma_stats st;
	uint32_t i;

	fx_ring_setup(f, 4);
	assert_int_equal(fx_set_state(f, VFIO_DEVICE_STATE_RUNNING_P2P, NULL), 0);
	i = fx_put(f, (struct sdma_desc){.opcode = SDMA_OP_NOOP}, true);
	usleep(50000);
	assert_int_equal(fx_compl(f, i)->status, 0);
	sdma_get_stats(f->sdma, &st);
	assert_int_equal(st.pending, 1);
	assert_int_equal(st.inflight, 0);
	assert_int_equal(fx_set_state(f, VFIO_DEVICE_STATE_STOP, NULL), 0);
	usleep(20000);
	assert_int_equal(fx_compl(f, i)->status, 0);
	assert_int_equal(fx_set_state(f, VFIO_DEVICE_STATE_RUNNING, NULL), 0);
	assert_true(fx_wait(f, i, 2000));
	assert_int_equal(fx_compl(f, i)->status, SDMA_STATUS_SUCCESS);
}

/* Reads the next fault group the device's stall produced. */
static void read_fault(struct fx *f, struct iommu_hwpt_pgfault *pf)
{
	struct pollfd p = {.fd = f->fault_fd, .events = POLLIN};

	assert_int_equal(poll(&p, 1, 3000), 1);
	assert_int_equal(read(f->fault_fd, pf, sizeof(*pf)), sizeof(*pf));
}

static void answer_fault(struct fx *f, const struct iommu_hwpt_pgfault *pf, uint32_t code)
{
	struct iommu_hwpt_page_response r = {.cookie = pf->cookie, .code = code};

	assert_int_equal(iommufd_fault_write(f->fault_fd, &r, sizeof(r)), sizeof(r));
}

/* Block on fault: the descriptor stays in flight until the guest maps the page. */
static void test_block_on_fault(void **state)
{
	struct fx *f = *state;
	const uint64_t dst = FX_DATA_GPA + 0x10000;
	struct iommu_hwpt_pgfault pf;
	struct sdma_stats st;
	uint32_t i;

	fx_ring_setup(f, 4);
	i = fx_put(f,
		   (struct sdma_desc){.opcode = SDMA_OP_FILL,
				      .flags = SDMA_FLAG_BOF | SDMA_FLAG_RCI,
				      .dst = fx_iova(f, dst),
				      .size = 4096,
				      .pattern = 0x1111},
		   true);
	read_fault(f, &pf);
	assert_int_equal(pf.addr, fx_iova(f, dst));
	assert_int_equal(pf.perm, IOMMU_PGFAULT_PERM_WRITE);
	sdma_get_stats(f->sdma, &st);
	assert_int_equal(st.inflight, 1);
	assert_int_equal(fx_compl(f, i)->status, 0);
	fx_s1_map(f, dst, 4096);
	answer_fault(f, &pf, IOMMUFD_PAGE_RESP_SUCCESS);
	assert_true(fx_wait(f, i, 3000));
	assert_int_equal(fx_compl(f, i)->status, SDMA_STATUS_SUCCESS);
	assert_int_equal(fx_compl(f, i)->bytes_completed, 4096);
	assert_int_equal(*(uint64_t *)gpa_ptr(f, dst + 4088), 0x1111);
	expect_msi(f);
	sdma_get_stats(f->sdma, &st);
	assert_int_equal(st.inflight, 0);
	/*
	 * Without BOF, the same kind of fault is a partial completion at once. The stream
	 * stalls all the same (the SMMU decides), so the guest still gets the fault record;
	 * the device withdrew the transaction, so the answer changes nothing.
	 */
	i = run(f, (struct sdma_desc){
		       .opcode = SDMA_OP_FILL, .dst = fx_iova(f, dst + 0x1000), .size = 64});
	assert_int_equal(fx_compl(f, i)->status, SDMA_STATUS_PAGE_FAULT);
	assert_int_equal(fx_compl(f, i)->fault_addr, fx_iova(f, dst + 0x1000));
	read_fault(f, &pf);
	assert_int_equal(pf.addr, fx_iova(f, dst + 0x1000));
	struct iommu_hwpt_page_response r = {.cookie = pf.cookie, .code = 0};
	iommufd_fault_write(f->fault_fd, &r, sizeof(r));
	/* A stall answered INVALID: the descriptor fails (page fault, nothing done). */
	i = fx_put(f,
		   (struct sdma_desc){.opcode = SDMA_OP_FILL,
				      .flags = SDMA_FLAG_BOF,
				      .dst = fx_iova(f, dst + 0x2000),
				      .size = 64},
		   true);
	read_fault(f, &pf);
	answer_fault(f, &pf, IOMMUFD_PAGE_RESP_INVALID);
	assert_true(fx_wait(f, i, 3000));
	assert_int_equal(fx_compl(f, i)->status, SDMA_STATUS_ABORTED);
	assert_int_equal(fx_compl(f, i)->bytes_completed, 0);
}

/* STOP while a descriptor is blocked: it is terminated, put back, and runs after RUNNING. */
static void test_stop_puts_back_blocked(void **state)
{
	struct fx *f = *state;
	const uint64_t dst = FX_DATA_GPA + 0x20000;
	struct iommu_hwpt_pgfault pf;
	struct sdma_stats st;
	uint32_t i;

	fx_ring_setup(f, 4);
	i = fx_put(f,
		   (struct sdma_desc){.opcode = SDMA_OP_FILL,
				      .flags = SDMA_FLAG_BOF,
				      .dst = fx_iova(f, dst),
				      .size = 128,
				      .pattern = 7},
		   true);
	read_fault(f, &pf);
	assert_int_equal(fx_set_state(f, VFIO_DEVICE_STATE_RUNNING_P2P, NULL), 0);
	sdma_get_stats(f->sdma, &st);
	assert_int_equal(st.inflight, 1); /* P2P lets it finish; nobody answers */
	assert_int_equal(fx_set_state(f, VFIO_DEVICE_STATE_STOP, NULL), 0);
	sdma_get_stats(f->sdma, &st);
	assert_int_equal(st.inflight, 0);
	assert_int_equal(st.rollbacks, 1);
	assert_int_equal(st.completed, 0);
	assert_int_equal(fx_reg_read(f, SDMA_REG_WQ_HEAD), i);
	assert_int_equal(fx_compl(f, i)->status, 0); /* no completion written */
	fx_s1_map(f, dst, 4096);
	assert_int_equal(fx_set_state(f, VFIO_DEVICE_STATE_RUNNING, NULL), 0);
	assert_true(fx_wait(f, i, 3000));
	assert_int_equal(fx_compl(f, i)->status, SDMA_STATUS_SUCCESS);
	assert_int_equal(*(uint64_t *)gpa_ptr(f, dst + 120), 7);
	sdma_get_stats(f->sdma, &st);
	assert_int_equal(st.completed, 1);
}

/*
 * STOP while an overlapping MEMMOVE is blocked: it is not put back to run again (part of its
 * source may already be overwritten), it completes ABORTED; the queue goes on after it.
 */
static void test_stop_aborts_overlapping_move(void **state)
{
	struct fx *f = *state;
	const uint64_t base = FX_DATA_GPA + 0x40000;
	struct iommu_hwpt_pgfault pf;
	struct sdma_stats st;
	uint32_t i, j;

	fx_ring_setup(f, 4);
	fx_s1_map(f, base, 0x2000); /* src's pages; dst's last page (base + 0x2000) unmapped */
	i = fx_put(f,
		   (struct sdma_desc){.opcode = SDMA_OP_MEMMOVE,
				      .flags = SDMA_FLAG_BOF,
				      .src = fx_iova(f, base),
				      .dst = fx_iova(f, base + 0x800),
				      .size = 0x2000},
		   true);
	read_fault(f, &pf);
	assert_int_equal(fx_set_state(f, VFIO_DEVICE_STATE_STOP, NULL), 0);
	sdma_get_stats(f->sdma, &st);
	assert_int_equal(st.rollbacks, 0);
	assert_int_equal(st.completed, 1);
	assert_int_equal(fx_compl(f, i)->status, SDMA_STATUS_ABORTED);
	assert_int_equal(fx_set_state(f, VFIO_DEVICE_STATE_RUNNING, NULL), 0);
	j = fx_put(f, (struct sdma_desc){.opcode = SDMA_OP_NOOP}, true);
	assert_true(fx_wait(f, j, 3000));
	sdma_get_stats(f->sdma, &st);
	assert_int_equal(st.completed, 2); /* the move did not run again */
}

/* RUNNING_P2P: a blocked descriptor still finishes when its fault is answered; the next
 * one waits for RUNNING (the VMM's drain before stopping the vCPUs relies on this). */
static void test_p2p_lets_blocked_finish(void **state)
{
	struct fx *f = *state;
	const uint64_t dst = FX_DATA_GPA + 0x30000;
	struct iommu_hwpt_pgfault pf;
	struct sdma_stats st;
	uint32_t a, b;

	fx_ring_setup(f, 4);
	a = fx_put(f,
		   (struct sdma_desc){.opcode = SDMA_OP_FILL,
				      .flags = SDMA_FLAG_BOF,
				      .dst = fx_iova(f, dst),
				      .size = 64,
				      .pattern = 9},
		   false);
	b = fx_put(f, (struct sdma_desc){.opcode = SDMA_OP_NOOP}, true);
	read_fault(f, &pf);
	assert_int_equal(fx_set_state(f, VFIO_DEVICE_STATE_RUNNING_P2P, NULL), 0);
	assert_false(fx_reg_read(f, SDMA_REG_STATUS) & (1u << SDMA_STATUS_IDLE_SHIFT));
	fx_s1_map(f, dst, 4096);
	answer_fault(f, &pf, IOMMUFD_PAGE_RESP_SUCCESS);
	assert_true(fx_wait(f, a, 3000));
	assert_int_equal(fx_compl(f, a)->status, SDMA_STATUS_SUCCESS);
	assert_true(wait_none_inflight(f, 3000));
	usleep(20000); /* room for a wrongly started b to show up */
	assert_int_equal(fx_compl(f, b)->status, 0);
	sdma_get_stats(f->sdma, &st);
	assert_int_equal(st.inflight, 0);
	assert_int_equal(st.pending, 1);
	assert_int_equal(st.rollbacks, 0);
	assert_int_equal(fx_set_state(f, VFIO_DEVICE_STATE_RUNNING, NULL), 0);
	assert_true(fx_wait(f, b, 3000));
	assert_true(wait_idle(f, 3000));
}
/* WQ_CFG.PASID_V: every access of the queue is tagged with the PASID (its own CD). */
static void test_pasid(void **state)
{
	struct fx *f = *state;
	const uint64_t buf = FX_DATA_GPA + 0x1000;
	uint32_t i;

	/* Untagged: CD 0, the data lands at its GPA. */
	fx_ring_setup(f, 3);
	i = run(f, (struct sdma_desc){
		       .opcode = SDMA_OP_FILL, .dst = fx_iova(f, buf), .size = 8, .pattern = 0x11});
	assert_int_equal(fx_compl(f, i)->status, SDMA_STATUS_SUCCESS);
	assert_int_equal(*(uint64_t *)gpa_ptr(f, buf), 0x11);
	assert_int_equal(*(uint64_t *)gpa_ptr(f, buf + FX_PASID_SHIFT), 0);
	/* Tagged with FX_PASID: same IOVA, the other context's translation. */
	fx_reg_write(f, SDMA_REG_CTRL, 0);
	fx_reg_write(f, SDMA_REG_WQ_CFG,
		     3 | ((uint64_t)FX_PASID << SDMA_WQ_CFG_PASID_SHIFT) |
			 (1ull << SDMA_WQ_CFG_PASID_V_SHIFT));
	fx_reg_write(f, SDMA_REG_CTRL, 1);
	f->tail = 0;
	i = run(f, (struct sdma_desc){.opcode = SDMA_OP_FILL,
				      .dst = fx_iova(f, buf),
				      .size = 8,
				      .pattern = 0x22,
				      .flags = SDMA_FLAG_RCI});
	assert_int_equal(fx_compl(f, i)->status, SDMA_STATUS_SUCCESS);
	assert_int_equal(*(uint64_t *)gpa_ptr(f, buf), 0x11);
	assert_int_equal(*(uint64_t *)gpa_ptr(f, buf + FX_PASID_SHIFT), 0x22);
	expect_msi(f);
	/* A PASID without a valid CD: the ring fetch fails and the queue halts. */
	fx_reg_write(f, SDMA_REG_CTRL, 0);
	fx_reg_write(f, SDMA_REG_WQ_CFG,
		     3 | (2ull << SDMA_WQ_CFG_PASID_SHIFT) | (1ull << SDMA_WQ_CFG_PASID_V_SHIFT));
	fx_reg_write(f, SDMA_REG_CTRL, 1);
	fx_reg_write(f, SDMA_REG_WQ_TAIL, 1);
	for (int k = 0; k < 2000 && !(fx_reg_read(f, SDMA_REG_STATUS) & 2); k++)
		usleep(1000);
	assert_int_equal(fx_reg_read(f, SDMA_REG_ERR) & 0xff, SDMA_ERR_WQ_FETCH);
}
/* Resets while a descriptor is blocked: the stall is terminated, nothing hangs. */
static void test_reset_while_blocked(void **state)
{
	struct fx *f = *state;
	struct iommu_hwpt_pgfault pf;
	struct sdma_stats st;
	uint32_t i;

	for (int kind = 0; kind < 2; kind++) {
		fx_ring_setup(f, 4);
		i = fx_put(
		    f,
		    (struct sdma_desc){.opcode = SDMA_OP_FILL,
				       .flags = SDMA_FLAG_BOF,
				       .dst = fx_iova(f, FX_DATA_GPA + 0x40000 + kind * 4096),
				       .size = 64},
		    true);
		read_fault(f, &pf);
		assert_int_equal(smmu_stalls_outstanding(f->smmu), 1);
		if (kind == 0)
			fx_reg_write(f, SDMA_REG_CTRL, 1u << SDMA_CTRL_RESET_SHIFT);
		else
			assert_int_equal(vfio_device_reset(f->vfio), 0);
		assert_int_equal(smmu_stalls_outstanding(f->smmu), 0);
		sdma_get_stats(f->sdma, &st);
		assert_int_equal(st.inflight, 0);
		assert_int_equal(fx_reg_read(f, SDMA_REG_CTRL), 0);
		assert_int_equal(fx_reg_read(f, SDMA_REG_WQ_HEAD), 0);
		assert_int_equal(fx_compl(f, i)->status, 0);
		/* The late answer finds nothing to resume. */
		struct iommu_hwpt_page_response r = {.cookie = pf.cookie, .code = 0};
		iommufd_fault_write(f->fault_fd, &r, sizeof(r));
		fx_ring_setup(f, 4);
		i = run(f, (struct sdma_desc){.opcode = SDMA_OP_NOOP});
		assert_int_equal(fx_compl(f, i)->status, SDMA_STATUS_SUCCESS);
	}
	assert_int_equal(fx_get_state(f), VFIO_DEVICE_STATE_RUNNING);
}

static void test_info(void **state)
{
	struct fx *f = *state;
	struct vfio_device_info di = {.argsz = sizeof(di)};
	struct vfio_region_info ri = {.argsz = sizeof(ri), .index = 0};
	uint64_t cap = fx_reg_read(f, SDMA_REG_CAP);

	assert_int_equal(vfio_device_get_info(f->vfio, &di), 0);
	assert_int_equal(di.num_regions, 1);
	assert_true(di.flags & VFIO_DEVICE_FLAGS_RESET);
	assert_int_equal(vfio_device_get_region_info(f->vfio, &ri), 0);
	assert_int_equal(ri.size, SDMA_BAR0_SIZE);
	ri.index = 1;
	assert_int_equal(vfio_device_get_region_info(f->vfio, &ri), -EINVAL);
	di.argsz = 4;
	assert_int_equal(vfio_device_get_info(f->vfio, &di), -EINVAL);
	assert_int_equal(cap & 0xff, SDMA_VERSION);
	assert_true(cap & (1ull << SDMA_CAP_DMA_LOG_SHIFT));
	assert_true(cap & (1ull << SDMA_CAP_BOF_SHIFT));
	/* The binding: a second bind is refused; attach again replaces. */
	uint32_t id, pt = f->o.mode == FX_NESTED ? f->nested : f->ioas;
	assert_int_equal(vfio_device_bind_iommufd(f->vfio, f->ctx, &id), -EBUSY);
	assert_int_equal(vfio_device_attach_pt(f->vfio, &pt), 0);
	assert_int_equal(vfio_device_detach_pt(f->vfio), 0);
	assert_int_equal(vfio_device_detach_pt(f->vfio), -EINVAL);
	pt = f->o.mode == FX_NESTED ? f->nested : f->ioas;
	assert_int_equal(vfio_device_attach_pt(f->vfio, &pt), 0);
}

/*
 * MEMMOVE with overlapping buffers has memmove's meaning: with dst above src a forward copy
 * in pieces (spans of at most 256 KiB) would read bytes it already wrote. 1 MiB moved up by
 * one page and a few bytes, and down by the same.
 */
static void test_memmove_overlap(void **state)
{
	struct fx *f = *state;
	const uint64_t base = FX_DATA_GPA + 0x100000, n = 1u << 20, shift = 4096 + 7;
	uint8_t *want = malloc(n + shift);
	uint32_t i;

	fx_ring_setup(f, 4);
	for (int dir = 0; dir < 2; dir++) {
		uint64_t src = dir ? base + shift : base, dst = dir ? base : base + shift;
		for (uint64_t k = 0; k < n + shift; k++)
			gpa_ptr(f, base)[k] = (uint8_t)(k * 13 + k / 4096 + 3);
		memcpy(want, gpa_ptr(f, base), n + shift);
		memmove(want + (dst - base), want + (src - base), n);
		i = run(f, (struct sdma_desc){.opcode = SDMA_OP_MEMMOVE,
					      .src = fx_iova(f, src),
					      .dst = fx_iova(f, dst),
					      .size = n});
		assert_int_equal(fx_compl(f, i)->status, SDMA_STATUS_SUCCESS);
		assert_int_equal(fx_compl(f, i)->bytes_completed, n);
		assert_memory_equal(gpa_ptr(f, base), want, n + shift);
	}
	free(want);
}

#define BOTH(t)                                                                                    \
	cmocka_unit_test_setup_teardown(t, setup_s2, teardown),                                    \
	    cmocka_unit_test_setup_teardown(t, setup_nested, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    BOTH(test_info),
	    BOTH(test_ops),
	    BOTH(test_partial_fault),
	    BOTH(test_malformed),
	    BOTH(test_doorbell_eventfd),
	    BOTH(test_p2p_holds_new_work),
	    BOTH(test_memmove_overlap),
	    cmocka_unit_test_setup_teardown(test_block_on_fault, setup_nested_stall, teardown),
	    cmocka_unit_test_setup_teardown(test_pasid, setup_nested_pasid, teardown),
	    cmocka_unit_test_setup_teardown(test_reset_while_blocked, setup_nested_stall, teardown),
	    cmocka_unit_test_setup_teardown(test_stop_aborts_overlapping_move, setup_nested_stall,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_p2p_lets_blocked_finish, setup_nested_stall,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_stop_puts_back_blocked, setup_nested_stall,
					    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
