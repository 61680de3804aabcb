// SPDX-License-Identifier: Apache-2.0
/*
 * Live migration of the real guest between two VMs of this process: `dirty,verify` on two
 * vCPUs moves while it dirties memory, and its own verify on the destination must find
 * every page and every SSE register it owns intact. Over TCP with 0, 1, 2 and 4 RAM
 * channels, over a UNIX socket, to a file and back, with RAM above 4 GiB, and with the
 * bitmap and the ring dirty log on either side.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/util.h"
#include "mig_rig.h"

#define LIVE_ARGS "workload=dirty,verify secs=4 ws=32M"

static struct rig_case live_case(const char *uri, unsigned channels)
{
	return (struct rig_case){.uri = uri,
				 .channels = channels,
				 .mem = 256 * MiB,
				 .vcpus = 2,
				 .src_dirty = VM_DIRTY_AUTO,
				 .dst_dirty = VM_DIRTY_AUTO,
				 .guest_args = LIVE_ARGS,
				 .delay_ms = 500};
}

static void test_tcp_channels(void **state)
{
	const unsigned channels[] = {0, 1, 2, 4};
	char uri[64];

	for (size_t i = 0; i < ARRAY_SIZE(channels); i++) {
		printf("--- tcp, %u RAM channels\n", channels[i]);
		struct rig_case c = live_case(rig_tcp_uri(uri, sizeof(uri)), channels[i]);
		rig_run_case(&c);
	}
}

static void test_unix(void **state)
{
	char uri[64];

	snprintf(uri, sizeof(uri), "unix:/tmp/vmig-mig-test-%d.sock", getpid());
	struct rig_case c = live_case(uri, 2);
	rig_run_case(&c);
}

/* RAM above 4 GiB: the working set straddles the MMIO hole. */
static void test_ram_above_4g(void **state)
{
	char uri[64];
	struct rig_case c = live_case(rig_tcp_uri(uri, sizeof(uri)), 2);

	c.mem = 4 * GiB + 512 * MiB;
	c.guest_args = "workload=dirty,verify secs=4 ws=32M wsbase=0xBF000000";
	rig_run_case(&c);
}

/* Either dirty log on either side (the destination's mode is its own business). */
static void test_dirty_modes(void **state)
{
	const enum vm_dirty_mode modes[][2] = {{VM_DIRTY_BITMAP, VM_DIRTY_RING},
					       {VM_DIRTY_RING, VM_DIRTY_BITMAP}};
	char uri[64];

	for (size_t i = 0; i < ARRAY_SIZE(modes); i++) {
		struct rig_case c = live_case(rig_tcp_uri(uri, sizeof(uri)), 1);
		c.src_dirty = modes[i][0];
		c.dst_dirty = modes[i][1];
		printf("--- source %s, destination %s\n", i ? "ring" : "bitmap",
		       i ? "bitmap" : "ring");
		rig_run_case(&c);
	}
}

/* To a file while it runs (the guest stops for the save), and back into a fresh VM. */
static void test_file_round_trip(void **state)
{
	char path[64], err[256];
	struct rig r;
	struct rig_case c = live_case("file:unused", 0);

	snprintf(path, sizeof(path), "/tmp/vmig-mig-file-%d", getpid());
	rig_source_create(&r, &c);
	usleep(300000);
	assert_int_equal(rig_save_file(r.src.vm.m, path), 0);
	assert_true(vm_is_paused(r.src.vm.m->vm));
	rig_destroy_side(&r.src);
	sys_vm_create_mode(&r.dst.vm, c.mem, c.vcpus, VM_DIRTY_AUTO);
	if (rig_load_file(r.dst.vm.m, path, err, sizeof(err)) < 0)
		fail_msg("load %s: %s", path, err);
	rig_expect_guest_ok(&r.dst.vm);
	sys_vm_destroy(&r.dst.vm);
	unlink(path);
}

/*
 * migrate_cancel at several moments of one source's life (setup, early and late passes),
 * each followed by a fresh destination that never ran; then a last migration completes
 * and the guest verifies clean. A cancel that lands too late (after COMMIT) is refused.
 */
static void test_cancel_then_again(void **state)
{
	const unsigned delays_us[] = {0, 2000, 20000, 60000};
	char uri[64];
	struct rig_case c = live_case(rig_tcp_uri(uri, sizeof(uri)), 2);
	struct mig_info info;
	struct rig r;

	c.guest_args = "workload=dirty,verify secs=8 ws=64M";
	rig_source_create(&r, &c);
	for (size_t i = 0; i < ARRAY_SIZE(delays_us); i++) {
		r.c.uri = rig_tcp_uri(uri, sizeof(uri));
		rig_dest_create(&r);
		rig_start(&r);
		usleep(delays_us[i]);
		int ret = migration_cancel(r.src.mig);
		enum mig_status st = rig_wait_final(r.src.mig, &info, RIG_WAIT_MS);
		printf("cancel after %u us: %d, %s (%s)\n", delays_us[i], ret,
		       migration_status_name(st), info.error_desc);
		if (st == MIG_STATUS_COMPLETED) /* the migration won the race: it is over */
			break;
		assert_int_equal(st, MIG_STATUS_CANCELLED);
		assert_false(migration_source_done(r.src.mig));
		assert_false(vm_is_paused(r.src.vm.m->vm));
		assert_int_equal(rig_wait_incoming(&r, RIG_WAIT_MS), -1);
		assert_false(r.dst.vm.m->vm->started);
		rig_destroy_side(&r.dst);
	}
	if (info.status != MIG_STATUS_COMPLETED) {
		r.c.uri = rig_tcp_uri(uri, sizeof(uri));
		rig_migrate_ok(&r, &info);
	}
	assert_int_equal(migration_cancel(r.src.mig), -ENOENT);
	rig_destroy_side(&r.src);
	rig_expect_guest_ok(&r.dst.vm);
	rig_destroy_side(&r.dst);
}

/* A control client that keeps asking, flat out from the switchover on (the narrow part). */
struct query_hammer {
	struct migration *mig;
	bool stop; /* atomic */
	unsigned long queries;
};

static void *hammer_queries(void *arg)
{
	struct query_hammer *h = arg;
	struct mig_info info;

	while (!__atomic_load_n(&h->stop, __ATOMIC_ACQUIRE)) {
		migration_query(h->mig, &info);
		h->queries++;
		if (info.status == MIG_STATUS_ACTIVE || info.status == MIG_STATUS_SETUP)
			usleep(500);
	}
	return NULL;
}

/*
 * query-migrate from another thread while migrations end: CI once caught a query counting
 * the RAM section's dirty bitmap as the engine freed it. Under ASan (CI runs this test
 * there too) a query that reads state the end of a migration freed fails the test.
 */
static void test_query_while_ending(void **state)
{
	char uri[64];

	for (unsigned i = 0; i < 6; i++) {
		struct rig_case c = live_case(rig_tcp_uri(uri, sizeof(uri)), i % 3);
		struct query_hammer h = {0};
		struct mig_info info;
		struct rig r;
		pthread_t t;

		c.guest_args = "workload=dirty,verify secs=2 ws=8M";
		c.delay_ms = 200;
		rig_source_create(&r, &c);
		h.mig = r.src.mig;
		assert_int_equal(pthread_create(&t, NULL, hammer_queries, &h), 0);
		rig_migrate_ok(&r, &info);
		usleep(50000);
		__atomic_store_n(&h.stop, true, __ATOMIC_RELEASE);
		pthread_join(t, NULL);
		assert_true(h.queries > 0);
		rig_destroy_side(&r.src);
		rig_expect_guest_ok(&r.dst.vm);
		rig_destroy_side(&r.dst);
	}
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tcp_channels),       cmocka_unit_test(test_unix),
	    cmocka_unit_test(test_ram_above_4g),       cmocka_unit_test(test_dirty_modes),
	    cmocka_unit_test(test_file_round_trip),    cmocka_unit_test(test_cancel_then_again),
	    cmocka_unit_test(test_query_while_ending),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s GUEST_IMAGE\n", argv[0]);
		return 2;
	}
	rig_image = argv[1];
	sys_require_kvm();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
