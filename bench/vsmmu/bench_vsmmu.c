// SPDX-License-Identifier: Apache-2.0
/*
 * Cost of a guest invalidation batch through the vSMMU: 64 TLBI_NH_VA + CMD_SYNC (CS=IRQ to
 * its own slot, as Linux issues it), one CMDQ_PROD write per batch, measured per batch:
 *   - emul: the emulation alone (no device behind any stream, nothing forwarded);
 *   - fwd:  with a bridge that accepts the forwarded batch and does nothing (the vSMMU's
 *           share of the nested path, host cost excluded);
 *   - host: through the real nested bridge into the modelled host's iommufd (vIOMMU
 *           invalidation of the host IOTLB for the stream's VMID/ASID) with a device behind
 *           a guest stage-1 STE;
 * and the cost of injecting one host event into the guest event queue.
 *
 * Reproduce: build/bench/vsmmu/bench_vsmmu [batches]
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/vsmmu/nested_rig.h"
#include "vmm/smmuv3/arch.h"
#include "vmm/smmuv3/nested.h"
#include "vmm/smmuv3/vsmmu.h"

#define RAM_SIZE   (4u << 20)
#define STRTAB_GPA 0x80000u
#define CD_GPA	   0xA0000u
#define TTB_GPA	   0xB0000u
#define VSID	   0x10
#define CMDQ_GPA   0x10000u
#define EVTQ_GPA   0x40000u
#define CMDQ_LOG2  10
#define BATCH	   64

struct bench {
	uint8_t *ram;
	bool own_ram;
	struct nrig *rig;
	struct vsmmu_nested *nested;
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

enum bench_mode { BENCH_EMUL, BENCH_FWD, BENCH_HOST };

static void bench_die(const char *what)
{
	fprintf(stderr, "bench_vsmmu: %s failed\n", what);
	exit(1);
}

static void bench_st64(struct bench *b, uint64_t gpa, uint64_t v)
{
	memcpy(b->ram + gpa, &v, 8);
}

/* Host mode: a device behind VSID with a guest stage-1 STE (a CD over an empty table). */
static void bench_host_setup(struct bench *b)
{
	struct vsmmu_nested_params np = {.ctx = nrig_ctx(b->rig),
					 .parent_hwpt_id = nrig_parent(b->rig)};
	uint64_t cd0 = FSET(FSET(FSET(0, CD0_T0SZ, 16), CD0_V, 1), CD0_AA64, 1);

	if (vsmmu_nested_create(b->vs, &np, &b->nested) ||
	    vsmmu_nested_attach(b->nested, VSID, nrig_dev(b->rig)))
		bench_die("nested bridge");
	bench_st64(b, CD_GPA, FSET(FSET(FSET(cd0, CD0_IPS, 5), CD0_R, 1), CD0_ASID, 1));
	bench_st64(b, CD_GPA + 8, FSET(0, CD1_TTB0, TTB_GPA >> 4));
	bench_st64(
	    b, STRTAB_GPA + VSID * STE_SIZE,
	    FSET(FSET(FSET(0, STE0_V, 1), STE0_CONFIG, STE_CFG_S1), STE0_S1CTXPTR, CD_GPA >> 6));
}

static void bench_setup(struct bench *b, enum bench_mode mode)
{
	struct vsmmu_platform p = {
	    .ram_read = bench_ram_read, .ram_write = bench_ram_write, .opaque = b};

	memset(b, 0, sizeof(*b));
	if (mode == BENCH_HOST) {
		b->rig = nrig_create(RAM_SIZE);
		b->ram = b->rig ? nrig_ram(b->rig) : NULL;
	} else {
		b->ram = calloc(1, RAM_SIZE);
		b->own_ram = true;
	}
	if (!b->ram)
		bench_die("guest RAM");
	b->vs = vsmmu_create(NULL, &p, mode == BENCH_FWD ? &bench_bridge : NULL, b);
	if (!b->vs)
		bench_die("vsmmu_create");
	if (mode == BENCH_HOST)
		bench_host_setup(b);
	vsmmu_mmio_write(b->vs, SMMU_STRTAB_BASE, 8, STRTAB_GPA);
	vsmmu_mmio_write(b->vs, SMMU_STRTAB_BASE_CFG, 4, 8);
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

static void bench_teardown(struct bench *b)
{
	vsmmu_nested_destroy(b->nested);
	vsmmu_destroy(b->vs);
	if (b->own_ram)
		free(b->ram);
	if (b->rig)
		nrig_destroy(b->rig);
}

static double bench_batches(enum bench_mode mode, unsigned iters, uint64_t *fwd)
{
	struct vsmmu_nested_stats ns;
	struct bench b;
	double t0, t1;

	bench_setup(&b, mode);
	if (mode == BENCH_HOST) {
		/* The guest enables its stream: a CFGI_STE installs the nested HWPT. */
		bench_cmd(&b, FSET(FSET(0, CMD0_OP, CMD_CFGI_STE), CMD0_SID, VSID), 0);
		vsmmu_mmio_write(b.vs, SMMU_CMDQ_PROD, 4, b.prod);
		if (!vsmmu_sid_translating(b.vs, VSID))
			bench_die("guest STE");
	}
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
	if (mode == BENCH_HOST) {
		vsmmu_nested_get_stats(b.nested, &ns);
		*fwd = ns.inv_cmds;
		if (ns.inv_errors)
			bench_die("host invalidation");
	}
	bench_teardown(&b);
	return (t1 - t0) / iters;
}

static double bench_events(unsigned iters)
{
	uint64_t evt[4] = {FSET(FSET(0, EVT0_ID, EVT_F_TRANSLATION), EVT0_SID, 0x10), 0, 0, 0};
	struct bench b;
	double t0, t1;

	bench_setup(&b, BENCH_EMUL);
	t0 = bench_now_ns();
	for (unsigned i = 0; i < iters; i++) {
		vsmmu_event_inject(b.vs, evt);
		/* The guest consumes at once: CONS follows PROD. */
		uint64_t prod;
		vsmmu_mmio_read(b.vs, SMMU_EVENTQ_PROD, 4, &prod);
		vsmmu_mmio_write(b.vs, SMMU_EVENTQ_CONS, 4, prod);
	}
	t1 = bench_now_ns();
	bench_teardown(&b);
	return (t1 - t0) / iters;
}

/* The next guest event record (the guest's event-queue consumer), false if none. */
static bool bench_evt_pop(struct bench *b, uint64_t evt[4])
{
	uint64_t prod, cons;
	const uint32_t mask = (2u << 8) - 1;

	vsmmu_mmio_read(b->vs, SMMU_EVENTQ_PROD, 4, &prod);
	vsmmu_mmio_read(b->vs, SMMU_EVENTQ_CONS, 4, &cons);
	if (((prod ^ cons) & mask) == 0)
		return false;
	memcpy(evt, b->ram + EVTQ_GPA + (cons & 0xFF) * EVT_SIZE, EVT_SIZE);
	vsmmu_mmio_write(b->vs, SMMU_EVENTQ_CONS, 4, ((cons + 1) & mask) | (prod & (1u << 31)));
	return true;
}

/*
 * The vSMMU's part of a fault round trip: a device write stalls on the host, the bridge
 * turns the fault into a guest event, the guest answers with RESUME, the host releases the
 * transaction. No vCPU or interrupt latency: the guest's side is run inline.
 */
static double bench_stall_round_trip(unsigned iters)
{
	struct bench b;
	uint64_t evt[4], w0;
	uint32_t v = 1;
	uint16_t stag;
	double t0;

	bench_setup(&b, BENCH_HOST);
	bench_st64(&b, CD_GPA,
		   FSET(FSET(FSET(FSET(FSET(0, CD0_T0SZ, 16), CD0_V, 1), CD0_AA64, 1), CD0_S, 1),
			CD0_R, 1));
	bench_cmd(&b, FSET(FSET(0, CMD0_OP, CMD_CFGI_STE), CMD0_SID, VSID), 0);
	vsmmu_mmio_write(b.vs, SMMU_CMDQ_PROD, 4, b.prod);
	w0 = FSET(FSET(FSET(0, CMD0_OP, CMD_RESUME), CMD0_SID, VSID), CMD0_RESUME_RESP,
		  CMD_RESUME_ABORT);
	t0 = bench_now_ns();
	for (unsigned i = 0; i < iters; i++) {
		if (nrig_dma_write(b.rig, false, 0, 0x40000000, &v, 4, &stag) != NRIG_STALLED ||
		    vsmmu_nested_poll(b.nested) != 1 || !bench_evt_pop(&b, evt))
			bench_die("stall");
		bench_cmd(&b, w0, FSET(0, CMD1_RESUME_STAG, FGET(evt[1], EVT1_STAG)));
		vsmmu_mmio_write(b.vs, SMMU_CMDQ_PROD, 4, b.prod);
		if (nrig_dma_wait(b.rig, stag) != -ECANCELED)
			bench_die("resume");
	}
	t0 = (bench_now_ns() - t0) / iters;
	bench_teardown(&b);
	return t0;
}

int main(int argc, char **argv)
{
	unsigned iters = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 0) : 20000;
	uint64_t fwd, hostfwd;
	double emul, viabridge, viahost;

	if (iters == 0)
		iters = 1;
	emul = bench_batches(BENCH_EMUL, iters, &fwd);
	viabridge = bench_batches(BENCH_FWD, iters, &fwd);
	/* The host model's invalidations cost far more: fewer rounds there. */
	unsigned host_iters = iters / 20 ? iters / 20 : 1;
	viahost = bench_batches(BENCH_HOST, host_iters, &hostfwd);
	if (fwd != (uint64_t)(iters + 100) * BATCH ||
	    hostfwd < (uint64_t)(host_iters + 100) * BATCH) {
		fprintf(stderr, "bench_vsmmu: forwarded %llu/%llu commands, expected %llu\n",
			(unsigned long long)fwd, (unsigned long long)hostfwd,
			(unsigned long long)(iters + 100) * BATCH);
		return 1;
	}
	printf("# %u batches of %u TLBI_NH_VA + CMD_SYNC(CS=IRQ), one CMDQ_PROD write each\n",
	       iters, BATCH);
	printf("BENCH vsmmu_inval_batch_emul %.0f ns\n", emul);
	printf("BENCH vsmmu_inval_batch_fwd %.0f ns\n", viabridge);
	printf("BENCH vsmmu_inval_batch_host %.0f ns\n", viahost);
	printf("# host: %u batches through the nested bridge into the host model's iommufd\n",
	       host_iters);
	printf("BENCH vsmmu_inval_cmd_emul %.1f ns\n", emul / (BATCH + 1));
	printf("BENCH vsmmu_event_inject %.0f ns\n", bench_events(iters * 4));
	printf("BENCH vsmmu_stall_round_trip %.2f us\n", bench_stall_round_trip(host_iters) / 1e3);
	printf("# reproduce: build/bench/vsmmu/bench_vsmmu %u\n", iters);
	return 0;
}
