// SPDX-License-Identifier: Apache-2.0
/*
 * End-to-end benchmarks of the passthrough side on KVM. Prints "BENCH <name> <value> <unit>".
 * Usage: bench_e2e TESTGUEST.bin FIRMWARE
 *
 * Guest-observed figures come from the firmware's own workloads (its ring-3 drivers time
 * themselves in TSC and print BENCH lines, re-printed here with an e2e_ prefix):
 *   e2e_guest_dma_gbps, e2e_guest_fault_roundtrip_us, e2e_guest_inval_batch_us.
 * VMM-side figures drive the same path from a host thread through the VMM's bus (no vCPU
 * exit cost; add ~16 us per trapped MMIO from guest ring 3 on kvm_pvm):
 *   e2e_vmm_dma_gbps            2 MiB MEMMOVEs through nested translation (S1 + S2)
 *   e2e_vmm_fault_roundtrip_us  device stall -> guest event queue -> page mapped ->
 *                               CMD_RESUME -> completion record
 *   e2e_vmm_inval_batch_us      32 TLBI_NH_VA + CMD_SYNC in one CMDQ_PROD write, forwarded
 *   e2e_doorbell_fast_us, e2e_doorbell_slow_us  guest ring-3 doorbell loop, ioeventfd vs trap:
 *                               doorbell -> engine -> FLAG seen by the guest (host-thread
 *                               wake-up dominated on a loaded 2-core host), and the userspace
 *                               exits per doorbell (_exits_per_doorbell: 0 vs 1)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/e2e/e2e_rig.h"
#include "vmig/guest_abi.h"
#include "arch/smmuv3.h"

static const char *testguest, *firmware;

static void bench_print(const char *name, double value, const char *unit)
{
	printf("BENCH %s %.3f %s\n", name, value, unit);
	printf("# reproduce: build/bench/e2e/bench_e2e build/tests/vmm/testguest.bin "
	       "build/guest/vmig-guest.elf\n");
	fflush(stdout);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The firmware's own figures ------------------------------------------------------------ */

static void reprint_guest_bench(struct e2e *e, const char *name)
{
	char out[96], unit[16];
	const char *p = strstr(e->vm.con.text, name);
	double v;

	if (!p || sscanf(p + strlen(name), " %lf %15s", &v, unit) != 2) {
		printf("# %s: not reported by the firmware\n", name);
		return;
	}
	snprintf(out, sizeof(out), "e2e_%s", name);
	bench_print(out, v, unit);
}

static void bench_firmware(void **state)
{
	struct e2e e;

	e2e_boot_mem(&e, firmware, 256ull << 20, "cpus=1 workload=dma,remap,sva", NULL);
	e2e_start(&e);
	assert_int_equal(machine_wait(e.m, 60000), 0);
	reprint_guest_bench(&e, "guest_dma_gbps");
	reprint_guest_bench(&e, "guest_fault_roundtrip_us");
	reprint_guest_bench(&e, "guest_inval_batch_us");
	e2e_fini(&e);
}

/* VMM-driven figures ------------------------------------------------------------------- */

static void boot_nested(struct e2e *e, bool stall)
{
	e2e_boot(e, testguest, "i 1000", NULL);
	e2e_start(e);
	assert_int_equal(machine_wait_mark(e->m, 1, 10000), 0);
	e2e_setup_nested(e);
	if (stall)
		e2e_smmu_ste_s1(e, VMIG_SDMA_SID, true);
}

static unsigned spin_compl(struct e2e *e, uint32_t slot)
{
	volatile uint8_t *st = e2e_ptr(e, E2E_COMPL + (uint64_t)slot * sizeof(struct sdma_compl));
	double end = e2e_now_us() + 5e6;

	while (!*st && e2e_now_us() < end)
		;
	return *st;
}

static void bench_vmm_dma(void **state)
{
	enum { N = 40, LEN = 2 << 20 };
	struct e2e e;
	double t[N];

	boot_nested(&e, false);
	memset(e2e_ptr(&e, E2E_SRC), 0x5A, LEN);
	for (int i = 0; i < N; i++) {
		uint32_t slot = e2e_sdma_queue(&e,
					       (struct sdma_desc){.opcode = SDMA_OP_MEMMOVE,
								  .src = e2e_iova(E2E_SRC),
								  .dst = e2e_iova(E2E_DST),
								  .size = LEN},
					       e2e_iova(E2E_COMPL));
		double t0 = e2e_now_us();
		e2e_sdma_ring(&e);
		assert_int_equal(spin_compl(&e, slot), SDMA_STATUS_SUCCESS);
		t[i] = e2e_now_us() - t0;
	}
	bench_print("e2e_vmm_dma_gbps", LEN / median(t, N) / 1e3, "GB/s");
	e2e_fini(&e);
}

/* One fault: FILL of an unmapped page, the stall event, map, RESUME, completion. */
static double fault_once(struct e2e *e, uint64_t gpa)
{
	uint64_t evt[4], iova = e2e_iova(gpa) + (64ull << 20);
	uint32_t slot = e2e_sdma_queue(
	    e,
	    (struct sdma_desc){
		.opcode = SDMA_OP_FILL, .flags = SDMA_FLAG_BOF, .dst = iova, .size = 4096},
	    e2e_iova(E2E_COMPL));
	double t0 = e2e_now_us();

	e2e_sdma_ring(e);
	while (!e2e_smmu_evt_pop(e, evt))
		;
	assert_true(FGET(evt[1], EVT1_STALL));
	assert_int_equal(e2e_s1_map(e->s1, iova, gpa, 4096), 0);
	e2e_smmu_cmd(
	    e, FSET(e2e_cmd_op(CMD_RESUME, VMIG_SDMA_SID), CMD0_RESUME_RESP, CMD_RESUME_RETRY),
	    FGET(evt[1], EVT1_STAG));
	assert_true(e2e_smmu_sync(e));
	assert_int_equal(spin_compl(e, slot), SDMA_STATUS_SUCCESS);
	return e2e_now_us() - t0;
}

static void bench_vmm_fault(void **state)
{
	enum { N = 200 };
	struct e2e e;
	double t[N];

	boot_nested(&e, true);
	for (int i = 0; i < N; i++)
		t[i] = fault_once(&e, E2E_DST + (uint64_t)(i % 512) * 4096);
	bench_print("e2e_vmm_fault_roundtrip_us", median(t, N), "us");
	e2e_fini(&e);
}

static void bench_vmm_inval(void **state)
{
	enum { N = 200, BATCH = 32 };
	struct e2e e;
	struct devices_stats st0, st1;
	double t[N];

	boot_nested(&e, false);
	devices_get_stats(e.dev, &st0);
	for (int i = 0; i < N; i++) {
		for (int k = 0; k < BATCH; k++) {
			uint64_t va = e2e_iova(E2E_DST) + (uint64_t)k * 4096;
			e2e_smmu_cmd(&e, FSET(e2e_cmd_op(CMD_TLBI_NH_VA, 0), CMD0_ASID, 1),
				     FSET(0, CMD1_ADDR, va >> 12) | 1);
		}
		double t0 = e2e_now_us();
		assert_true(e2e_smmu_sync(&e));
		t[i] = e2e_now_us() - t0;
	}
	devices_get_stats(e.dev, &st1);
	assert_true(st1.nested.inv_cmds - st0.nested.inv_cmds >= (uint64_t)N * BATCH);
	bench_print("e2e_vmm_inval_batch_us", median(t, N), "us");
	e2e_fini(&e);
}

/* The test guest's doorbell loop (see tests/e2e/test_e2e_wiring.c). */
#define DB_BAR	     (0xD0201000ull - SDMA_REG_WQ_TAIL)
#define DB_RING	     0x3000000ull
#define DB_RING_LOG2 12

static uint32_t flag_read(struct e2e *e)
{
	return __atomic_load_n((uint32_t *)e2e_ptr(e, E2E_FLAG), __ATOMIC_ACQUIRE);
}

static double doorbell_rate(struct e2e *e, uint32_t count)
{
	uint32_t f0 = flag_read(e);
	double t0 = e2e_now_us();

	while (flag_read(e) < f0 + count && e2e_now_us() - t0 < 10e6)
		;
	return (e2e_now_us() - t0) / (flag_read(e) - f0);
}

static void bench_doorbell(void **state)
{
	struct devices_config dc = {.sdma_bar0_gpa = DB_BAR};
	struct e2e e;

	e2e_boot(&e, testguest, "D", &dc);
	for (uint32_t i = 0; i < (1u << DB_RING_LOG2); i++) {
		struct sdma_desc d = {.opcode = SDMA_OP_FILL,
				      .dst = E2E_FLAG,
				      .size = 8,
				      .pattern = (uint64_t)(i + 1) | ((uint64_t)(i + 2) << 32)};
		memcpy(e2e_ptr(&e, DB_RING + i * sizeof(d)), &d, sizeof(d));
	}
	uint32_t init[2] = {0, 1};
	memcpy(e2e_ptr(&e, E2E_FLAG), init, sizeof(init));
	e2e_wr(&e, e.bar + SDMA_REG_WQ_BASE, 8, DB_RING);
	e2e_wr(&e, e.bar + SDMA_REG_WQ_CFG, 8, DB_RING_LOG2);
	e2e_wr(&e, e.bar + SDMA_REG_WQ_SHADOW, 8, (E2E_FLAG + 4) | 1);
	e2e_wr(&e, e.bar + SDMA_REG_CTRL, 8, 1);
	e2e_start(&e);
	doorbell_rate(&e, 100); /* warm up */
	uint64_t x0 = e.m->vm->vcpus[0].exits;
	uint32_t f0 = flag_read(&e);
	bench_print("e2e_doorbell_fast_us", doorbell_rate(&e, 1500), "us");
	bench_print("e2e_doorbell_fast_exits_per_doorbell",
		    (double)(e.m->vm->vcpus[0].exits - x0) / (flag_read(&e) - f0), "exits");
	assert_int_equal(vfio_dev_doorbell_set_path(e.dev->sdma, VFIO_DOORBELL_SLOW_FORWARD), 0);
	x0 = e.m->vm->vcpus[0].exits;
	f0 = flag_read(&e);
	bench_print("e2e_doorbell_slow_us", doorbell_rate(&e, 500), "us");
	bench_print("e2e_doorbell_slow_exits_per_doorbell",
		    (double)(e.m->vm->vcpus[0].exits - x0) / (flag_read(&e) - f0), "exits");
	e2e_fini(&e);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest benches[] = {
	    cmocka_unit_test(bench_firmware),  cmocka_unit_test(bench_vmm_dma),
	    cmocka_unit_test(bench_vmm_fault), cmocka_unit_test(bench_vmm_inval),
	    cmocka_unit_test(bench_doorbell),
	};

	if (argc < 3) {
		fprintf(stderr, "usage: %s TESTGUEST.bin FIRMWARE\n", argv[0]);
		return 1;
	}
	testguest = argv[1];
	firmware = argv[2];
	e2e_require_kvm();
	return cmocka_run_group_tests(benches, NULL, NULL);
}
