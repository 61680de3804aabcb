// SPDX-License-Identifier: Apache-2.0
// Ring-3 sdma driver (guest/sdma.h).
#include "sdma.h"
#include "console.h"
#include "lib.h"
#include "user.h"

struct sdma sdma;

static struct sdma_desc ring[SDMA_RING_SIZE] __attribute__((aligned(4096)));
/* One page: the completion records, then the shadow tail at SDMA_IOVA_SHADOW. */
static union {
	struct {
		struct sdma_compl rec[SDMA_RING_SIZE];
		uint8_t pad[SDMA_IOVA_SHADOW - SDMA_IOVA_COMPL - SDMA_RING_SIZE * 32];
		volatile uint32_t shadow_tail;
	};
	uint8_t page[4096];
} compl_page __attribute__((aligned(4096)));

static volatile uint8_t *const bar = (volatile uint8_t *)VMIG_SDMA_BAR0;

uint64_t sdma_read(uint64_t off)
{
	return *(volatile uint64_t *)(bar + off);
}

void sdma_write(uint64_t off, uint64_t v)
{
	*(volatile uint64_t *)(bar + off) = v;
}

static uint64_t field(uint64_t v, unsigned shift, unsigned width)
{
	return (v >> shift) & ((1ull << width) - 1);
}

bool sdma_probe(void)
{
	uint64_t cap = sdma_read(SDMA_REG_CAP);
	struct line l = {.len = 0};

	if (cap == 0 || cap == ~0ull ||
	    field(cap, SDMA_CAP_VERSION_SHIFT, SDMA_CAP_VERSION_WIDTH) != SDMA_VERSION ||
	    field(cap, SDMA_CAP_WQ_LOG2_MAX_SHIFT, SDMA_CAP_WQ_LOG2_MAX_WIDTH) < SDMA_RING_LOG2) {
		line_str(&l, "ERROR sdma: no sdma device at ");
		line_hex(&l, VMIG_SDMA_BAR0);
		line_kx(&l, "cap", cap);
		line_flush(&l);
		return false;
	}
	sdma.cap = cap;
	sdma.present = true;
	sdma.shadow_ok = field(cap, SDMA_CAP_SHADOW_SHIFT, SDMA_CAP_SHADOW_WIDTH);
	sdma.bof_ok = field(cap, SDMA_CAP_BOF_SHIFT, SDMA_CAP_BOF_WIDTH);
	sdma.xfer_log2_max =
	    (unsigned)field(cap, SDMA_CAP_XFER_LOG2_MAX_SHIFT, SDMA_CAP_XFER_LOG2_MAX_WIDTH);
	return true;
}

/* Where the device finds the ring, the records and the MSI doorbell: IOVAs, or GPAs. */
static uint64_t at_ring = SDMA_IOVA_RING, at_compl = SDMA_IOVA_COMPL, at_msi = SDMA_IOVA_MSI;

void sdma_use_gpas(void)
{
	at_ring = (uint64_t)ring;
	at_compl = (uint64_t)&compl_page;
	at_msi = VMIG_MSI_WINDOW | ((uint64_t)cpus[0].apic_id << 12);
}

bool sdma_map_driver(struct smmu_as *as)
{
	uint64_t msi = VMIG_MSI_WINDOW | ((uint64_t)cpus[0].apic_id << 12);
	unsigned rw = SMMU_PROT_READ | SMMU_PROT_WRITE;

	return smmu_map(as, SDMA_IOVA_RING, (uint64_t)ring, PAGE_SIZE, rw) &&
	       smmu_map(as, SDMA_IOVA_COMPL, (uint64_t)&compl_page, PAGE_SIZE, rw) &&
	       smmu_map(as, SDMA_IOVA_MSI, msi, PAGE_SIZE, SMMU_PROT_WRITE | SMMU_PROT_MSI);
}

static bool wait_status(uint64_t mask, uint64_t want)
{
	for (int i = 0; i < 1000; i++)
		if ((sdma_read(SDMA_REG_STATUS) & mask) == want)
			return true;
	return false;
}

bool sdma_start(bool pasid_v, uint32_t pasid)
{
	uint64_t cfg = (uint64_t)SDMA_RING_LOG2 << SDMA_WQ_CFG_LOG2_SIZE_SHIFT;

	sdma_write(SDMA_REG_CTRL, 1ull << SDMA_CTRL_RESET_SHIFT);
	sdma.st.resets++;
	if (pasid_v)
		cfg |= ((uint64_t)pasid << SDMA_WQ_CFG_PASID_SHIFT) |
		       (1ull << SDMA_WQ_CFG_PASID_V_SHIFT);
	sdma.pasid = pasid;
	sdma.pasid_v = pasid_v;
	sdma.tail = 0;
	sdma.submitted_at_start = sdma.st.submitted;
	compl_page.shadow_tail = 0;
	sdma_write(SDMA_REG_WQ_BASE, at_ring);
	sdma_write(SDMA_REG_WQ_CFG, cfg);
	sdma_write(SDMA_REG_WQ_SHADOW,
		   sdma.shadow_ok ? (at_compl + SDMA_IOVA_SHADOW - SDMA_IOVA_COMPL) | 1 : 0);
	sdma_write(SDMA_REG_MSI_ADDR, at_msi);
	sdma_write(SDMA_REG_MSI_DATA, VMIG_VEC_SDMA);
	sdma_write(SDMA_REG_INT_CTRL, 1);
	sdma_write(SDMA_REG_ERR, 1ull << SDMA_ERR_VALID_SHIFT);
	sdma_write(SDMA_REG_CTRL, 1);
	return wait_status(3, 1); /* EN and not HALTED */
}

void sdma_stop(void)
{
	sdma_write(SDMA_REG_CTRL, 0);
}

volatile struct sdma_compl *sdma_compl_of(uint32_t i)
{
	return &compl_page.rec[i % SDMA_RING_SIZE];
}

uint32_t sdma_queue(const struct sdma_desc *d)
{
	uint32_t i = sdma.tail % SDMA_RING_SIZE;
	volatile struct sdma_compl *c = sdma_compl_of(i);

	c->status = SDMA_STATUS_NONE;
	ring[i] = *d;
	ring[i].flags |= SDMA_FLAG_CRAV;
	ring[i].compl_addr = at_compl + (uint64_t)i * sizeof(struct sdma_compl);
	if (d->flags & SDMA_FLAG_RCI)
		sdma.st.irqs_requested++;
	sdma.tail++;
	sdma.st.submitted++;
	return i;
}

void sdma_doorbell(void)
{
	uint32_t t = sdma.tail % SDMA_RING_SIZE;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (sdma.shadow_ok)
		compl_page.shadow_tail = t;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	sdma_write(SDMA_REG_WQ_TAIL, t);
	sdma.st.doorbells++;
}

/*
 * Spin natively first (ring 3 costs nothing extra; a halt and the interrupt that ends it
 * cost milliseconds of emulated ring 0 and host scheduling), then sleep until an interrupt
 * (completion MSI, event MSI, tick).
 */
#define SPIN_BEFORE_HALT (1u << 20)
bool sdma_wait(uint32_t i, uint64_t timeout_ticks)
{
	volatile struct sdma_compl *c = sdma_compl_of(i);
	uint64_t end = now_ticks() + timeout_ticks;

	for (uint32_t spin = 0; !__atomic_load_n(&c->status, __ATOMIC_ACQUIRE); spin++) {
		/* After a halt, something arrived: look at once. */
		if ((spin & 63) == 0 || spin > SPIN_BEFORE_HALT)
			smmu_poll();
		if (now_ticks() > end) {
			sdma.st.timeouts++;
			return false;
		}
		if (spin > SPIN_BEFORE_HALT)
			sys_halt();
	}
	sdma.st.completed++;
	sdma.st.by_status[c->status & 7]++;
	return true;
}

void sdma_dump(const char *why)
{
	struct line l = {.len = 0};

	line_str(&l, "SDMA ");
	line_str(&l, why);
	line_kx(&l, "status", sdma_read(SDMA_REG_STATUS));
	line_kx(&l, "err", sdma_read(SDMA_REG_ERR));
	line_kx(&l, "err_addr", sdma_read(SDMA_REG_ERR_ADDR));
	line_kv(&l, "head", sdma_read(SDMA_REG_WQ_HEAD));
	line_kv(&l, "tail", sdma_read(SDMA_REG_WQ_TAIL));
	line_kv(&l, "completed", sdma_read(SDMA_REG_COMPLETED));
	line_flush(&l);
}
