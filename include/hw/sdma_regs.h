/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sdma: the programming model of the streaming DMA accelerator (BAR0 registers, work-queue
 * descriptors, completion records). Self-contained on purpose: the guest driver, the VMM
 * and the host model include this one header, so it uses nothing but <stdint.h>.
 *
 * BAR0 is SDMA_BAR0_SIZE bytes of 64-bit registers; 4- and 8-byte naturally aligned
 * accesses are accepted (a 4-byte access reaches the low or high half). Fields are given
 * as (shift, width) pairs: SDMA_<REG>_<FIELD>_SHIFT / _WIDTH.
 *
 * Work queue: a ring of 2^LOG2_SIZE 64-byte descriptors at WQ_BASE (an IOVA, 64-byte
 * aligned, translated by the IOMMU with the device's StreamID and, when WQ_CFG.PASID_V is
 * set, that PASID). HEAD is the index of the next descriptor the device will start (it owns
 * it); TAIL is the index one past the last descriptor software has written. Software writes
 * descriptors, then writes TAIL: that write is the doorbell. The device runs descriptors in
 * order from HEAD until HEAD == TAIL.
 *
 * Doorbell without a value (an eventfd, e.g. a KVM ioeventfd on the TAIL register, which
 * drops the written data): if WQ_SHADOW.EN is set the device DMA-reads the 32-bit tail
 * index software also stores at WQ_SHADOW's IOVA (as NVMe shadow doorbells do), otherwise
 * such a kick only re-checks the current TAIL. Drivers that want the fast path write the
 * tail to the shadow location first, then to the TAIL register.
 *
 * Completion: a descriptor with FLAG_CRAV gets a 32-byte completion record written at its
 * completion address (32-byte aligned); with FLAG_RCI the device then writes MSI_DATA
 * (4 bytes) to MSI_ADDR, an IOVA translated like any DMA write, if INT_CTRL.EN is set.
 */
#ifndef VMIG_HW_SDMA_REGS_H
#define VMIG_HW_SDMA_REGS_H

#include <stdint.h>

#define SDMA_BAR0_SIZE 0x1000u
#define SDMA_VERSION   1u

/* CAP (RO): what this instance implements. */
#define SDMA_REG_CAP		     0x000u
#define SDMA_CAP_VERSION_SHIFT	     0
#define SDMA_CAP_VERSION_WIDTH	     8
#define SDMA_CAP_OPS_SHIFT	     8 /* bit (8 + op) set when opcode op is supported */
#define SDMA_CAP_OPS_WIDTH	     16
#define SDMA_CAP_WQ_LOG2_MAX_SHIFT   24 /* largest LOG2_SIZE accepted */
#define SDMA_CAP_WQ_LOG2_MAX_WIDTH   5
#define SDMA_CAP_BOF_SHIFT	     29 /* block-on-fault supported */
#define SDMA_CAP_BOF_WIDTH	     1
#define SDMA_CAP_DMA_LOG_SHIFT	     30 /* device-side DMA write logging (for migration) */
#define SDMA_CAP_DMA_LOG_WIDTH	     1
#define SDMA_CAP_SHADOW_SHIFT	     31 /* shadow tail (valueless doorbell) supported */
#define SDMA_CAP_SHADOW_WIDTH	     1
#define SDMA_CAP_XFER_LOG2_MAX_SHIFT 32 /* largest transfer size is 2^this bytes */
#define SDMA_CAP_XFER_LOG2_MAX_WIDTH 6

/* CTRL (RW): EN starts the work queue (config is checked then); RESET (write 1) resets. */
#define SDMA_REG_CTRL	      0x008u
#define SDMA_CTRL_EN_SHIFT    0
#define SDMA_CTRL_EN_WIDTH    1
#define SDMA_CTRL_RESET_SHIFT 1
#define SDMA_CTRL_RESET_WIDTH 1

/* STATUS (RO). HALTED: a work-queue error stopped the device; CTRL.RESET recovers it. */
#define SDMA_REG_STATUS		 0x010u
#define SDMA_STATUS_EN_SHIFT	 0
#define SDMA_STATUS_EN_WIDTH	 1
#define SDMA_STATUS_HALTED_SHIFT 1
#define SDMA_STATUS_HALTED_WIDTH 1
/* IDLE: no DMA under way, no kick taken and not served, HEAD == TAIL (or disabled/halted) */
#define SDMA_STATUS_IDLE_SHIFT 2
#define SDMA_STATUS_IDLE_WIDTH 1

/* ERR (RO, write 1 to VALID to clear): the first error since the last clear. */
#define SDMA_REG_ERR	     0x018u
#define SDMA_ERR_CODE_SHIFT  0
#define SDMA_ERR_CODE_WIDTH  8
#define SDMA_ERR_VALID_SHIFT 8
#define SDMA_ERR_VALID_WIDTH 1
#define SDMA_ERR_INDEX_SHIFT 32 /* ring index involved, when there is one */
#define SDMA_ERR_INDEX_WIDTH 32
#define SDMA_REG_ERR_ADDR    0x020u /* (RO) the IOVA involved, when there is one */

enum sdma_err_code {
	SDMA_ERR_NONE = 0,
	SDMA_ERR_WQ_BASE_ALIGN = 1, /* WQ_BASE not 64-byte aligned (halts at enable) */
	SDMA_ERR_WQ_SIZE = 2,	    /* LOG2_SIZE above CAP.WQ_LOG2_MAX (halts at enable) */
	SDMA_ERR_WQ_FETCH = 3,	    /* descriptor read failed: ring not mapped (halts) */
	SDMA_ERR_TAIL_RANGE = 4,    /* TAIL written outside the ring (halts) */
	SDMA_ERR_COMPL_WRITE = 5,   /* completion record write failed (not halting) */
	SDMA_ERR_MSI_WRITE = 6,	    /* MSI write failed (not halting) */
	SDMA_ERR_SHADOW_READ = 7,   /* shadow tail read failed (halts) */
	SDMA_ERR_COMPL_ALIGN = 8,   /* completion address misaligned (descriptor invalid) */
};

/* WQ_BASE (RW while disabled): IOVA of the ring. */
#define SDMA_REG_WQ_BASE 0x028u

/* WQ_CFG (RW while disabled). */
#define SDMA_REG_WQ_CFG		    0x030u
#define SDMA_WQ_CFG_LOG2_SIZE_SHIFT 0
#define SDMA_WQ_CFG_LOG2_SIZE_WIDTH 5
#define SDMA_WQ_CFG_PASID_SHIFT	    8
#define SDMA_WQ_CFG_PASID_WIDTH	    20
#define SDMA_WQ_CFG_PASID_V_SHIFT   31
#define SDMA_WQ_CFG_PASID_V_WIDTH   1

#define SDMA_REG_WQ_HEAD 0x038u /* (RO) next index the device starts */
#define SDMA_REG_WQ_TAIL 0x040u /* (RW) doorbell: one past the last valid descriptor */

/* WQ_SHADOW (RW): IOVA of the 32-bit shadow tail, 4-byte aligned, EN in bit 0. */
#define SDMA_REG_WQ_SHADOW	 0x048u
#define SDMA_WQ_SHADOW_EN_SHIFT	 0
#define SDMA_WQ_SHADOW_EN_WIDTH	 1
#define SDMA_WQ_SHADOW_ADDR_MASK (~3ull)

#define SDMA_REG_MSI_ADDR 0x050u /* (RW) IOVA, 4-byte aligned */
#define SDMA_REG_MSI_DATA 0x058u /* (RW) low 32 bits written */

#define SDMA_REG_INT_CTRL      0x060u
#define SDMA_INT_CTRL_EN_SHIFT 0
#define SDMA_INT_CTRL_EN_WIDTH 1

#define SDMA_REG_COMPLETED 0x068u /* (RO) descriptors completed since reset (any status) */

/* Descriptors ----------------------------------------------------------------------------- */

enum sdma_opcode {
	SDMA_OP_NOOP = 0,
	SDMA_OP_MEMMOVE = 1,
	SDMA_OP_FILL = 2,    /* dst <- 8-byte pattern repeated (last copy truncated) */
	SDMA_OP_COMPARE = 3, /* result 0 equal, 1 differ; bytes_completed = first difference */
	SDMA_OP_CRC32C = 4,  /* result = CRC32C(src) seeded with pattern[31:0] */
	SDMA_OP_COUNT
};

#define SDMA_FLAG_CRAV (1u << 0) /* completion record address valid */
#define SDMA_FLAG_RCI  (1u << 1) /* request completion interrupt */
#define SDMA_FLAG_BOF  (1u << 2) /* block on fault: wait for a stalled fault to be answered */
#define SDMA_FLAGS_ALL (SDMA_FLAG_CRAV | SDMA_FLAG_RCI | SDMA_FLAG_BOF)

struct sdma_desc {
	uint8_t opcode;
	uint8_t flags;
	uint16_t rsvd0;
	uint32_t rsvd1;
	uint64_t compl_addr;
	uint64_t src; /* MEMMOVE, COMPARE (first operand), CRC32C */
	uint64_t dst; /* MEMMOVE, FILL, COMPARE (second operand) */
	uint64_t size;
	uint64_t pattern; /* FILL pattern, CRC32C seed */
	uint64_t rsvd2[2];
};
_Static_assert(sizeof(struct sdma_desc) == 64, "descriptor is 64 bytes");

enum sdma_status {
	SDMA_STATUS_NONE = 0, /* software clears the record; the device never writes 0 */
	SDMA_STATUS_SUCCESS = 1,
	SDMA_STATUS_PAGE_FAULT = 2, /* bytes_completed done, fault_addr failed */
	SDMA_STATUS_INVALID = 3,    /* bad opcode, flags, size or alignment: nothing done */
	SDMA_STATUS_ABORTED = 4,    /* stall terminated / reset / transaction aborted */
};

#define SDMA_FAULT_INFO_WRITE (1u << 0) /* the faulting access was a write */
#define SDMA_FAULT_INFO_BUS   (1u << 1) /* translated, but nothing behind the address */

struct sdma_compl {
	uint8_t status;
	uint8_t fault_info;
	uint16_t rsvd0;
	uint32_t result;
	uint64_t bytes_completed;
	uint64_t fault_addr;
	uint32_t index; /* ring index of the descriptor (lets tests detect loss or replay) */
	uint32_t rsvd1;
};
_Static_assert(sizeof(struct sdma_compl) == 32, "completion record is 32 bytes");

#endif
