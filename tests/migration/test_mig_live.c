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

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tcp_channels),
	    cmocka_unit_test(test_unix),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s GUEST_IMAGE\n", argv[0]);
		return 2;
	}
	rig_image = argv[1];
	sys_require_kvm();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
