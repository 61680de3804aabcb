// SPDX-License-Identifier: Apache-2.0
/*
 * VMM core benchmarks on KVM. Prints "BENCH <name> <value> <unit>" lines (medians) and how
 * to reproduce them. Usage: bench_vmm TESTGUEST.bin [FIRMWARE|-] [WHICH...] where WHICH is
 * any of mmio mmio0 pio doorbell pause harvest rate fwrate fwpause fwprealloc (default:
 * all).
 *
 * The loops run in 64-bit ring 3 of the test guest (tests/vmm/guests/testguest.S), as the
 * firmware's drivers and workloads do; mmio0 runs the MMIO loop in 32-bit ring 0 with
 * paging off for comparison (on kvm_pvm that path is much cheaper per exit than 64-bit
 * ring 3 with paging, although ring-0 code is otherwise emulated instruction by
 * instruction).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/bitmap.h"
#include "common/util.h"
#include "vmm/machine.h"

#define FLAG_GPA 0x200000ull

static const char *image;

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
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

static void bench_print(const char *name, double value, const char *unit, const char *which)
{
	printf("BENCH %s %.3f %s\n", name, value, unit);
	printf("# reproduce: build/bench/vmm/bench_vmm build/tests/vmm/testguest.bin "
	       "build/guest/vmig-guest.elf %s\n",
	       which);
	fflush(stdout);
}

static struct machine *boot(uint64_t mem, unsigned vcpus, enum vm_dirty_mode mode, const char *cmd)
{
	struct machine_config cfg = {.mem_size = mem, .nr_vcpus = vcpus, .dirty_mode = mode};
	struct machine *m;
	FILE *f = fopen(image, "rb");
	static char img[1 << 20];
	size_t n = f ? fread(img, 1, sizeof(img), f) : 0;

	if (f)
		fclose(f);
	if (n == 0 || machine_create(&cfg, &m) < 0 || machine_load_kernel(m, img, n, cmd) < 0) {
		fprintf(stderr, "bench: cannot boot %s\n", image);
		exit(1);
	}
	return m;
}

/* Exit round trip: the device timestamps every BATCH accesses. */
#define BATCH	 1000
#define NBATCHES 9

struct exit_dev {
	struct vm *vm;
	uint64_t n;
	double t[NBATCHES + 1];
};

static void exit_dev_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct exit_dev *d = opaque;

	if (d->n % BATCH == 0)
		d->t[d->n / BATCH] = now_us();
	if (++d->n == (uint64_t)BATCH * NBATCHES + 1)
		vm_request_stop(d->vm, VM_STOP_REQUEST, 0);
}

static const struct bus_device_ops exit_dev_ops = {.write = exit_dev_write};

static void bench_exit(const char *which, const char *cmd, enum bus_space space, uint64_t addr,
		       const char *name)
{
	struct machine *m = boot(64 * MiB, 1, VM_DIRTY_AUTO, cmd);
	struct exit_dev d = {.vm = m->vm};
	struct bus_region r = {"bench", space, addr, 4, 0, false, &exit_dev_ops, &d};
	double per[NBATCHES];

	bus_register(m->bus, &r);
	machine_start(m);
	machine_wait(m, 60000);
	for (int i = 0; i < NBATCHES; i++)
		per[i] = (d.t[i + 1] - d.t[i]) / BATCH;
	bench_print(name, median(per, NBATCHES), "us", which);
	machine_destroy(m);
}

/* Doorbell: guest rings (ioeventfd, no exit to userspace), a host thread acks via RAM. */
struct bell {
	struct machine *m;
	int efd;
	uint32_t n;
	double t[NBATCHES + 1];
};

static void *bell_thread(void *arg)
{
	struct bell *b = arg;
	uint64_t v;

	while (b->n < (uint32_t)BATCH * NBATCHES + 1 && read(b->efd, &v, sizeof(v)) == sizeof(v)) {
		if (b->n % BATCH == 0)
			b->t[b->n / BATCH] = now_us();
		b->n++;
		guest_mem_write(b->m->mem, FLAG_GPA, &b->n, 4);
	}
	vm_request_stop(b->m->vm, VM_STOP_REQUEST, 0);
	return NULL;
}

static void bench_doorbell(const char *which)
{
	struct bell b = {.m = boot(64 * MiB, 1, VM_DIRTY_AUTO, "D")};
	struct vm_ioeventfd io = {.addr = 0xD0201000, .len = 4};
	pthread_t t;
	double per[NBATCHES];

	b.efd = eventfd(0, EFD_CLOEXEC);
	io.fd = b.efd;
	vm_ioeventfd_add(b.m->vm, &io);
	pthread_create(&t, NULL, bell_thread, &b);
	machine_start(b.m);
	machine_wait(b.m, 60000);
	pthread_join(t, NULL);
	for (int i = 0; i < NBATCHES; i++)
		per[i] = (b.t[i + 1] - b.t[i]) / BATCH;
	bench_print("vmm_ioeventfd_doorbell_roundtrip", median(per, NBATCHES), "us", which);
	close(b.efd);
	machine_destroy(b.m);
}

/* Pause (all vCPUs acknowledged) and resume, on 4 vCPUs: the BSP busy in ring 3, the APs
 * blocked in KVM waiting for a SIPI. */
static void bench_pause(const char *which)
{
	enum { N = 100 };
	struct machine *m = boot(64 * MiB, 4, VM_DIRTY_AUTO, "W 1024");
	double p[N], r[N];

	machine_start(m);
	usleep(50000);
	for (int i = 0; i < N; i++) {
		double t0 = now_us();
		vm_pause(m->vm, VM_PAUSE_INTERNAL);
		double t1 = now_us();
		vm_resume(m->vm, VM_PAUSE_INTERNAL);
		double t2 = now_us();
		p[i] = t1 - t0;
		r[i] = t2 - t1;
		usleep(2000);
	}
	bench_print("vmm_pause_all_4vcpus", median(p, N), "us", which);
	bench_print("vmm_resume_all_4vcpus", median(r, N), "us", which);
	vm_request_stop(m->vm, VM_STOP_REQUEST, 0);
	machine_destroy(m);
}

/*
 * Harvest cost, scaled to 1 GiB: a guest that has written all of its 64 MiB working set
 * (every page mapped in KVM; populating is slow under kvm_pvm, hence not a full GiB) is
 * paused; log start makes every page dirty; the first harvest fetches the bitmaps and
 * re-protects every page (all dirty), the second finds nothing (clean). RAM outside the
 * working set is counted in the clean figure only.
 */
static void bench_harvest(const char *which)
{
	enum { N = 5 };
	const uint64_t ws = 64 * MiB, mem = 128 * MiB;
	struct machine *m = boot(mem, 1, VM_DIRTY_BITMAP, "W 16384");
	uint64_t *map = bitmap_alloc(vm_dirty_pages(m->vm));
	double full[N], clean[N];

	machine_start(m);
	sleep(3); /* the guest writes its whole working set (pages mapped in KVM) */
	for (int i = 0; i < N; i++) {
		vm_pause(m->vm, VM_PAUSE_INTERNAL);
		vm_dirty_log_start(m->vm);
		double t0 = now_us();
		vm_dirty_harvest(m->vm, map);
		double t1 = now_us();
		vm_dirty_harvest(m->vm, map);
		double t2 = now_us();
		vm_dirty_log_stop(m->vm);
		vm_resume(m->vm, VM_PAUSE_INTERNAL);
		full[i] = (t1 - t0) / 1e3 * (double)GiB / (double)ws;
		clean[i] = (t2 - t1) / 1e3 * (double)GiB / (double)mem;
		usleep(200000);
	}
	bench_print("vmm_dirty_harvest_all_dirty_per_gib", median(full, N), "ms", which);
	bench_print("vmm_dirty_harvest_clean_per_gib", median(clean, N), "ms", which);
	vm_request_stop(m->vm, VM_STOP_REQUEST, 0);
	free(map);
	machine_destroy(m);
}

/* Dirty rate under logging: harvest every 100 ms, count newly dirtied pages per second. */
static void bench_rate_mode(const char *which, enum vm_dirty_mode mode, const char *name)
{
	enum { N = 10 };
	struct machine *m = boot(512 * MiB, 1, mode, "W 65536"); /* 256 MiB working set */
	uint64_t nbits = vm_dirty_pages(m->vm);
	uint64_t *map = bitmap_alloc(nbits);
	double rate[N];

	machine_start(m);
	usleep(500000);
	vm_dirty_log_start(m->vm);
	vm_dirty_harvest(m->vm, map);
	double t = now_us();
	for (int i = 0; i < N; i++) {
		usleep(100000);
		bitmap_zero(map, nbits);
		long n = vm_dirty_harvest(m->vm, map);
		double t2 = now_us();
		rate[i] = (double)n / ((t2 - t) / 1e6);
		t = t2;
	}
	bench_print(name, median(rate, N) / 1e6, "Mpages/s", which);
	vm_dirty_log_stop(m->vm);
	vm_request_stop(m->vm, VM_STOP_REQUEST, 0);
	free(map);
	machine_destroy(m);
}

static void bench_rate(const char *which)
{
	bench_rate_mode(which, VM_DIRTY_BITMAP, "vmm_guest_dirty_rate_bitmap");
	struct vm_config probe = {.nr_vcpus = 1, .dirty_mode = VM_DIRTY_RING};
	struct vm *vm;
	if (vm_open(&probe, &vm) == 0) {
		vm_close(vm);
		bench_rate_mode(which, VM_DIRTY_RING, "vmm_guest_dirty_rate_ring");
	}
}

/*
 * The firmware's own dirty workload (2 vCPUs, 64 MiB working set, unpaced): its reported
 * write rate (one write = one page) without logging, and with bitmap logging harvested
 * every 100 ms as a migration would, plus the distinct pages/s the harvests saw.
 */
static const char *fw_image;
static double fw_rate;

static void fw_console(void *opaque, const char *line)
{
	const char *r = strstr(line, "RESULT workload=dirty");
	const char *v = r ? strstr(r, " rate=") : NULL;
	if (v)
		fw_rate = strtod(v + 6, NULL);
}

/* Creates a machine from cfg and loads the firmware image with a guest command line. */
static int fw_boot(const struct machine_config *cfg, const char *cmdline, struct machine **m)
{
	static char img[8 << 20];
	FILE *f = fopen(fw_image, "rb");
	size_t n = f ? fread(img, 1, sizeof(img), f) : 0;

	if (f)
		fclose(f);
	if (!n || machine_create(cfg, m) < 0)
		return -1;
	if (machine_load_kernel(*m, img, n, cmdline) < 0) {
		machine_destroy(*m);
		return -1;
	}
	return 0;
}

static void bench_fw_rate_one(bool logging, const char *which)
{
	struct machine_config cfg = {.mem_size = 256 * MiB,
				     .nr_vcpus = 2,
				     .dirty_mode = VM_DIRTY_BITMAP,
				     .console = fw_console};
	struct machine *m;
	if (fw_boot(&cfg, "cpus=2 workload=dirty secs=3 ws=64M", &m) < 0)
		exit(1);
	uint64_t nbits = vm_dirty_pages(m->vm), pages = 0;
	uint64_t *map = bitmap_alloc(nbits);
	fw_rate = 0;
	machine_start(m);
	machine_wait_mark(m, 0x0D00, 60000);
	double t0 = now_us();
	if (logging) {
		vm_dirty_log_start(m->vm);
		vm_dirty_harvest(m->vm, map);
		while (vm_wait_stop(m->vm, 100, NULL, NULL) == -ETIMEDOUT) {
			bitmap_zero(map, nbits);
			pages += (uint64_t)vm_dirty_harvest(m->vm, map);
		}
	}
	machine_wait(m, 60000);
	double secs = (now_us() - t0) / 1e6;
	if (logging) {
		bench_print("vmm_fw_dirty_rate_logging", fw_rate / 1e6, "Mwrites/s", which);
		bench_print("vmm_fw_dirty_pages_harvested", (double)pages / secs / 1e6, "Mpages/s",
			    which);
	} else {
		bench_print("vmm_fw_dirty_rate_no_logging", fw_rate / 1e6, "Mwrites/s", which);
	}
	free(map);
	machine_destroy(m);
}

static void bench_fw_rate(const char *which)
{
	if (!fw_image) {
		printf("# fwrate: skipped (no firmware image given)\n");
		return;
	}
	bench_fw_rate_one(false, which);
	bench_fw_rate_one(true, which);
}

/* Pause/resume with every vCPU busy: the firmware's dirty workload on 4 vCPUs. */
static void bench_fw_pause(const char *which)
{
	enum { N = 100 };
	struct machine_config cfg = {.mem_size = 256 * MiB, .nr_vcpus = 4};
	struct machine *m;
	double p[N], r[N];

	if (!fw_image) {
		printf("# fwpause: skipped (no firmware image given)\n");
		return;
	}
	if (fw_boot(&cfg, "cpus=4 workload=dirty secs=60 ws=16M", &m) < 0)
		exit(1);
	machine_start(m);
	machine_wait_mark(m, 0x0D00, 60000);
	for (int i = 0; i < N; i++) {
		double t0 = now_us();
		vm_pause(m->vm, VM_PAUSE_INTERNAL);
		double t1 = now_us();
		vm_resume(m->vm, VM_PAUSE_INTERNAL);
		r[i] = now_us() - t1;
		p[i] = t1 - t0;
		usleep(5000);
	}
	bench_print("vmm_pause_all_4vcpus_busy", median(p, N), "us", which);
	bench_print("vmm_resume_all_4vcpus_busy", median(r, N), "us", which);
	vm_request_stop(m->vm, VM_STOP_REQUEST, 0);
	machine_destroy(m);
}

/* Seconds for the firmware to fill and verify all of a 256 MiB guest's RAM. */
static double fw_fill_secs(bool prealloc)
{
	struct machine_config cfg = {
	    .mem_size = 256 * MiB, .nr_vcpus = 2, .mem_prealloc = prealloc};
	struct machine *m;

	double t0 = now_us(); /* preallocation is part of the cost being compared */
	if (fw_boot(&cfg, "cpus=2 workload=verify fillram=1", &m) < 0)
		exit(1);
	machine_start(m);
	int status = machine_wait(m, 120000);
	double secs = (now_us() - t0) / 1e6;
	machine_destroy(m);
	if (status != 0)
		exit(1);
	return secs;
}

/* First-touch cost of guest RAM with and without --mem-prealloc, runs alternated. */
static void bench_fw_prealloc(const char *which)
{
	enum { N = 3 };
	double plain[N], pre[N], ratio[N];

	if (!fw_image) {
		printf("# fwprealloc: skipped (no firmware image given)\n");
		return;
	}
	for (int i = 0; i < N; i++) {
		plain[i] = fw_fill_secs(false);
		pre[i] = fw_fill_secs(true);
		ratio[i] = plain[i] / pre[i];
	}
	bench_print("vmm_fw_fill_256m_secs", median(plain, N), "s", which);
	bench_print("vmm_fw_fill_256m_prealloc_secs", median(pre, N), "s", which);
	bench_print("vmm_fw_fill_prealloc_speedup", median(ratio, N), "x", which);
}

static bool wanted(int argc, char **argv, const char *name)
{
	if (argc <= 3)
		return true;
	for (int i = 3; i < argc; i++) {
		if (strcmp(argv[i], name) == 0)
			return true;
	}
	return false;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr,
			"usage: %s TESTGUEST.bin [mmio|mmio0|pio|doorbell|pause|harvest|rate]...\n",
			argv[0]);
		return 2;
	}
	image = argv[1];
	fw_image = argc > 2 && strcmp(argv[2], "-") != 0 ? argv[2] : NULL;
	if (access("/dev/kvm", R_OK | W_OK) != 0) {
		printf("SKIP: /dev/kvm unavailable\n");
		return 77;
	}
	if (wanted(argc, argv, "mmio"))
		bench_exit("mmio", "M", BUS_MMIO, 0xD0200000, "vmm_mmio_exit_roundtrip_ring3");
	if (wanted(argc, argv, "mmio0"))
		bench_exit("mmio0", "m", BUS_MMIO, 0xD0200000,
			   "vmm_mmio_exit_roundtrip_ring0_nopaging");
	if (wanted(argc, argv, "pio"))
		bench_exit("pio", "P", BUS_PIO, 0x510, "vmm_pio_exit_roundtrip_ring3");
	if (wanted(argc, argv, "doorbell"))
		bench_doorbell("doorbell");
	if (wanted(argc, argv, "pause"))
		bench_pause("pause");
	if (wanted(argc, argv, "harvest"))
		bench_harvest("harvest");
	if (wanted(argc, argv, "rate"))
		bench_rate("rate");
	if (wanted(argc, argv, "fwrate"))
		bench_fw_rate("fwrate");
	if (wanted(argc, argv, "fwpause"))
		bench_fw_pause("fwpause");
	if (wanted(argc, argv, "fwprealloc"))
		bench_fw_prealloc("fwprealloc");
	return 0;
}
