// SPDX-License-Identifier: Apache-2.0
/*
 * Circular queue index arithmetic shared by the command and event queues. A PROD or CONS
 * value holds the index in [log2size-1:0] and the wrap bit at [log2size]; bits above are not
 * part of the pointer (flags such as CONS.ERR or PROD.OVFLG live there).
 */
#include "vmm/smmuv3/internal.h"

/* LOG2SIZE as programmed, capped at what IDR1 advertises (a larger value acts as the cap). */
unsigned vsmmu_queue_log2size(uint64_t base, unsigned max_bits)
{
	unsigned l = (unsigned)FGET(base, Q_BASE_LOG2SIZE);

	return l > max_bits ? max_bits : l;
}

uint32_t vsmmu_queue_ptr_mask(unsigned log2size)
{
	return (uint32_t)((2ull << log2size) - 1);
}

bool vsmmu_queue_empty(uint32_t prod, uint32_t cons, unsigned log2size)
{
	return ((prod ^ cons) & vsmmu_queue_ptr_mask(log2size)) == 0;
}

bool vsmmu_queue_full(uint32_t prod, uint32_t cons, unsigned log2size)
{
	return ((prod ^ cons) & vsmmu_queue_ptr_mask(log2size)) == (1u << log2size);
}

uint32_t vsmmu_queue_inc(uint32_t ptr, unsigned log2size)
{
	return (ptr + 1) & vsmmu_queue_ptr_mask(log2size);
}

uint64_t vsmmu_queue_slot(uint64_t base, uint32_t ptr, unsigned log2size, unsigned entry)
{
	uint64_t addr = FGET(base, Q_BASE_ADDR) << 5;
	uint64_t idx = ptr & ((1u << log2size) - 1);

	return addr + idx * entry;
}
