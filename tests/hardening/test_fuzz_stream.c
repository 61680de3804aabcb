// SPDX-License-Identifier: Apache-2.0
/*
 * The incoming migration stream from a corrupt, truncated or hostile source: mutated copies
 * of a real stream (a file: migration of a running guest) are loaded into a fresh VM. Half
 * of them are re-stamped after mutation (every checksum made right again) so that the
 * checks behind the checksums are reached too: lengths, sequence numbers, GPAs outside
 * guest RAM, records in the wrong place, missing vCPUs. Each load is refused with a reason
 * or accepted, without a crash, a hang, a write outside guest RAM or a leak (ASan in CI);
 * a refused destination never ran. Afterwards the real stream still loads and runs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/util.h"
#include "fuzz.h"
#include "tests/migration/mig_rig.h"
#include "vmm/kvm/vm.h"
#include "vmm/migration/internal.h"

#define MEM   (32 * MiB)
#define VCPUS 2

static const char *image;
static char good_path[64], try_path[64];

/* The state of a guest that has run (its timer armed, vCPUs in real code). */
static uint8_t *good_stream(size_t *len)
{
	struct sys_vm src;

	sys_vm_create(&src, image, MEM, VCPUS, VM_DIRTY_AUTO, "i 1000");
	assert_int_equal(machine_start(src.m), 0);
	assert_int_equal(machine_wait_mark(src.m, 1, 10000), 0);
	assert_int_equal(rig_save_file(src.m, good_path), 0);
	sys_vm_destroy(&src);
	return rig_read_file(good_path, len);
}

/* Makes every checksum right again, as far as the (mutated) lengths allow. */
static void restamp(uint8_t *buf, size_t len)
{
	struct mig_hdr *h = (struct mig_hdr *)buf;
	size_t off = sizeof(*h);

	if (len < sizeof(*h))
		return;
	h->crc = crc32c(0, h, offsetof(struct mig_hdr, crc));
	while (off + sizeof(struct mig_rec) <= len) {
		struct mig_rec *r = (struct mig_rec *)(buf + off);
		size_t data = MIN((size_t)r->len, len - off - sizeof(*r));
		r->data_crc = crc32c(0, buf + off + sizeof(*r), data);
		r->crc = crc32c(0, r, offsetof(struct mig_rec, crc));
		off += sizeof(*r) + data;
	}
}

static int load(struct sys_vm *dst, const uint8_t *buf, size_t len)
{
	char err[512];
	FILE *f = fopen(try_path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	fclose(f);
	int rc = rig_load_file(dst->m, try_path, err, sizeof(err));
	if (rc < 0)
		assert_true(err[0]); /* a refusal always says why */
	return rc;
}

static void fresh_dst(struct sys_vm *dst)
{
	if (dst->m)
		sys_vm_destroy(dst);
	sys_vm_create_empty(dst, MEM, VCPUS);
}

static void test_fuzz_incoming_stream(void **state)
{
	struct sys_vm dst = {0};
	size_t good_len, len;
	uint8_t *good = good_stream(&good_len);
	uint8_t *buf = malloc(good_len + 4096);
	unsigned accepted = 0, accepted_raw = 0, n = 0;
	struct fuzz z;

	fresh_dst(&dst);
	fuzz_begin(&z, "incoming_stream", 3000);
	while (fuzz_next(&z, 50)) {
		len = good_len;
		memcpy(buf, good, len);
		fuzz_mutate(&z, buf, &len, good_len + 4096);
		bool stamped = n++ % 2;
		if (stamped)
			restamp(buf, len);
		int rc = load(&dst, buf, len);
		assert_true(rc == 0 || rc == -1);
		/* A refused destination never ran; an accepted one runs: start afresh. */
		assert_int_equal(dst.m->vm->started, rc == 0);
		if (rc == 0) {
			accepted++;
			accepted_raw += !stamped;
			fresh_dst(&dst);
		}
	}
	fuzz_end(&z);
	printf("%u streams, %u accepted (%u of them not re-stamped)\n", n, accepted, accepted_raw);
	fresh_dst(&dst);
	assert_int_equal(load(&dst, good, good_len), 0);
	/* The guest goes on where it was: it counts an MSI with its restored IDT and APIC. */
	for (int i = 0; i < 200 && machine_wait_mark(dst.m, 0x101, 50) < 0; i++)
		vm_signal_msi(dst.m->vm, 0xFEE00000, 0x30);
	assert_int_equal(machine_wait_mark(dst.m, 0x101, 0), 0);
	sys_vm_destroy(&dst);
	free(buf);
	free(good);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fuzz_incoming_stream),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s TESTGUEST.bin\n", argv[0]);
		return 1;
	}
	image = argv[1];
	snprintf(good_path, sizeof(good_path), "/tmp/vmig-fuzz-good-%d", getpid());
	snprintf(try_path, sizeof(try_path), "/tmp/vmig-fuzz-try-%d", getpid());
	sys_require_kvm();
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(good_path);
	unlink(try_path);
	return rc;
}
