// SPDX-License-Identifier: Apache-2.0
/*
 * Cost of a guest invalidation batch through the vSMMU: 64 TLBI_NH_VA + CMD_SYNC (CS=IRQ to
 * its own slot, as Linux issues it), one CMDQ_PROD write per batch, measured per batch:
 *   - emul: the emulation alone (no device behind any stream, nothing forwarded);
 *   - fwd:  with a bridge that accepts the forwarded batch and does nothing (the vSMMU's
 *           share of the nested path, host cost excluded);
 * and the cost of injecting one host event into the guest event queue.
 *
 * Reproduce: build/bench/vsmmu/bench_vsmmu [batches]
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vmm/smmuv3/arch.h"
#include "vmm/smmuv3/vsmmu.h"

#define RAM_SIZE  (1u << 20)
#define CMDQ_GPA  0x10000u
#define EVTQ_GPA  0x40000u
#define CMDQ_LOG2 10
#define BATCH	  64

struct bench {
	uint8_t *ram;
	struct vsmmu *vs;
	uint32_t prod;
	uint64_t fwd;
};

static int bench_ram_read(void *o, uint64_t gpa, void *buf, size_t len)
{
	struct bench *b = o;

	if (gpa >= RAM_SIZE || len > RAM_SIZE - gpa)
		return -14;
	memcpy(buf, b->ram + gpa, len);
	return 0;
}

static int bench_ram_write(void *o, uint64_t gpa, const void *buf, size_t len)
{
	struct bench *b = o;

	if (gpa >= RAM_SIZE || len > RAM_SIZE - gpa)
		return -14;
	memcpy(b->ram + gpa, buf, len);
	return 0;
}

static bool bench_attached(void *o, uint32_t sid)
{
	return sid == 0x10;
}

static int bench_invalidate(void *o, const uint64_t (*cmds)[2], size_t n)
{
	((struct bench *)o)->fwd += n;
	return 0;
}

static const struct vsmmu_bridge_ops bench_bridge = {
    .sid_attached = bench_attached,
    .invalidate = bench_invalidate,
};

static double bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void bench_cmd(struct bench *b, uint64_t w0, uint64_t w1)
{
	uint64_t slot = CMDQ_GPA + (uint64_t)(b->prod & ((1u << CMDQ_LOG2) - 1)) * CMD_SIZE;

	memcpy(b->ram + slot, &w0, 8);
	memcpy(b->ram + slot + 8, &w1, 8);
	b->prod = (b->prod + 1) & ((2u << CMDQ_LOG2) - 1);
}

static void bench_setup(struct bench *b, bool bridge)
{
	struct vsmmu_platform p = {
	    .ram_read = bench_ram_read, .ram_write = bench_ram_write, .opaque = b};

	memset(b, 0, sizeof(*b));
	b->ram = calloc(1, RAM_SIZE);
	b->vs = vsmmu_create(NULL, &p, bridge ? &bench_bridge : NULL, b);
	if (!b->ram || !b->vs) {
		fprintf(stderr, "bench_vsmmu: setup failed\n");
		exit(1);
	}
	vsmmu_mmio_write(b->vs, SMMU_CMDQ_BASE, 8, CMDQ_GPA | CMDQ_LOG2);
	vsmmu_mmio_write(b->vs, SMMU_EVENTQ_BASE, 8, EVTQ_GPA | 8);
	vsmmu_mmio_write(b->vs, SMMU_CR0, 4,
			 FMASK(CR0_CMDQEN) | FMASK(CR0_EVENTQEN) | FMASK(CR0_SMMUEN));
}

/* One guest batch: 64 VA invalidations and a sync the guest polls. Returns false on error. */
static bool bench_batch(struct bench *b, unsigned n)
{
	uint64_t w0 = FSET(FSET(0, CMD0_OP, CMD_TLBI_NH_VA), CMD0_ASID, 1);
	uint64_t sync = FSET(FSET(0, CMD0_OP, CMD_SYNC), CMD0_SYNC_CS, CMD_SYNC_CS_IRQ);
	uint64_t slot;
	uint32_t word;

	for (unsigned i = 0; i < BATCH; i++)
		bench_cmd(b, w0, (0x100000ull + ((uint64_t)n * BATCH + i) * 4096) | 1);
	slot = CMDQ_GPA + (uint64_t)(b->prod & ((1u << CMDQ_LOG2) - 1)) * CMD_SIZE;
	bench_cmd(b, sync, FSET(0, CMD1_SYNC_MSIADDR, slot >> 2));
	vsmmu_mmio_write(b->vs, SMMU_CMDQ_PROD, 4, b->prod);
	memcpy(&word, b->ram + slot, 4);
	return word == 0;
}

static double bench_batches(bool bridge, unsigned iters, uint64_t *fwd)
{
	struct bench b;
	double t0, t1;

	bench_setup(&b, bridge);
	for (unsigned i = 0; i < 100; i++)
		bench_batch(&b, i);
	t0 = bench_now_ns();
	for (unsigned i = 0; i < iters; i++) {
		if (!bench_batch(&b, i)) {
			fprintf(stderr, "bench_vsmmu: CMD_SYNC did not complete\n");
			exit(1);
		}
	}
	t1 = bench_now_ns();
	*fwd = b.fwd;
	vsmmu_destroy(b.vs);
	free(b.ram);
	return (t1 - t0) / iters;
}

static double bench_events(unsigned iters)
{
	uint64_t evt[4] = {FSET(FSET(0, EVT0_ID, EVT_F_TRANSLATION), EVT0_SID, 0x10), 0, 0, 0};
	struct bench b;
	double t0, t1;

	bench_setup(&b, false);
	t0 = bench_now_ns();
	for (unsigned i = 0; i < iters; i++) {
		vsmmu_event_inject(b.vs, evt);
		/* The guest consumes at once: CONS follows PROD. */
		uint64_t prod;
		vsmmu_mmio_read(b.vs, SMMU_EVENTQ_PROD, 4, &prod);
		vsmmu_mmio_write(b.vs, SMMU_EVENTQ_CONS, 4, prod);
	}
	t1 = bench_now_ns();
	vsmmu_destroy(b.vs);
	free(b.ram);
	return (t1 - t0) / iters;
}

int main(int argc, char **argv)
{
	unsigned iters = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 0) : 20000;
	uint64_t fwd;
	double emul, viabridge;

	if (iters == 0)
		iters = 1;
	emul = bench_batches(false, iters, &fwd);
	viabridge = bench_batches(true, iters, &fwd);
	if (fwd != (uint64_t)(iters + 100) * BATCH) {
		fprintf(stderr, "bench_vsmmu: forwarded %llu commands, expected %llu\n",
			(unsigned long long)fwd, (unsigned long long)(iters + 100) * BATCH);
		return 1;
	}
	printf("# %u batches of %u TLBI_NH_VA + CMD_SYNC(CS=IRQ), one CMDQ_PROD write each\n",
	       iters, BATCH);
	printf("BENCH vsmmu_inval_batch_emul %.0f ns\n", emul);
	printf("BENCH vsmmu_inval_batch_fwd %.0f ns\n", viabridge);
	printf("BENCH vsmmu_inval_cmd_emul %.1f ns\n", emul / (BATCH + 1));
	printf("BENCH vsmmu_event_inject %.0f ns\n", bench_events(iters * 4));
	printf("# reproduce: build/bench/vsmmu/bench_vsmmu %u\n", iters);
	return 0;
}
