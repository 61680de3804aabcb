// SPDX-License-Identifier: Apache-2.0
/*
 * Crafted incoming streams, one case each (found by the adversarial review of the engine).
 * A RAM data record whose payload fails its checksum (torn on the wire), then a zero run
 * for the same pages (the guest zeroed them before the next pass): the destination must
 * end with zeros there, or refuse the stream. It used to keep the torn bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/util.h"
#include "tests/migration/mig_rig.h"
#include "vmm/kvm/vm.h"
#include "vmm/machine.h"
#include "vmm/guest_mem.h"
#include "vmm/migration/internal.h"

#define MEM   (32 * MiB)
#define VCPUS 2
static const char *image;

static void test_suspect_then_zero(void **state)
{
	struct sys_vm src, dst;
	char good_path[64], bad_path[64];
	size_t len;

	snprintf(good_path, sizeof(good_path), "/tmp/vmig-crafted-good-%d", getpid());
	snprintf(bad_path, sizeof(bad_path), "/tmp/vmig-crafted-bad-%d", getpid());
	sys_vm_create(&src, image, MEM, VCPUS, VM_DIRTY_AUTO, "i 1000");
	assert_int_equal(machine_start(src.m), 0);
	assert_int_equal(machine_wait_mark(src.m, 1, 10000), 0);
	assert_int_equal(rig_save_file(src.m, good_path), 0);
	sys_vm_destroy(&src);
	uint8_t *good = rig_read_file(good_path, &len);
	uint8_t *out = malloc(len + 4096);
	size_t off = sizeof(struct mig_hdr), o = off;
	memcpy(out, good, off);
	int inserted = 0;
	uint64_t gpa = 0;
	uint32_t count = 0;
	while (off < len) {
		struct mig_rec r;
		memcpy(&r, good + off, sizeof(r));
		size_t tot = sizeof(r) + r.len;
		r.seq += inserted;
		r.crc = crc32c(0, &r, offsetof(struct mig_rec, crc));
		memcpy(out + o, &r, sizeof(r));
		memcpy(out + o + sizeof(r), good + off + sizeof(r), r.len);
		if (!inserted && r.section == MIG_SEC_RAM && r.type == 1) {
			out[o + sizeof(r) + 17] ^= 0x40; /* torn on the wire: data crc fails */
			gpa = r.arg;
			count = r.count;
			o += tot;
			struct mig_rec z = {.section = MIG_SEC_RAM,
					    .type = 2,
					    .len = 0,
					    .arg = r.arg,
					    .count = r.count,
					    .data_crc = 0,
					    .seq = r.seq + 1};
			z.crc = crc32c(0, &z, offsetof(struct mig_rec, crc));
			memcpy(out + o, &z, sizeof(z));
			o += sizeof(z);
			inserted = 1;
		} else {
			o += tot;
		}
		off += tot;
	}
	assert_int_equal(inserted, 1);
	FILE *f = fopen(bad_path, "wb");
	fwrite(out, 1, o, f);
	fclose(f);

	sys_vm_create_empty(&dst, MEM, VCPUS);
	vm_pause(dst.m->vm, VM_PAUSE_USER); /* the guest must not touch anything after the load */
	char err[512] = "";
	int rc = rig_load_file(dst.m, bad_path, err, sizeof(err));
	printf("load rc=%d err='%s' gpa=%#llx pages=%u\n", rc, err, (unsigned long long)gpa, count);
	if (rc == 0) {
		const uint8_t *p = guest_mem_ptr(dst.m->mem, gpa, (uint64_t)count * 4096);
		size_t nz = 0;
		for (size_t i = 0; i < (size_t)count * 4096; i++)
			nz += p[i] != 0;
		printf("destination bytes non-zero where the stream said zero: %zu\n", nz);
		assert_int_equal(nz, 0);
	}
	sys_vm_destroy(&dst);
	unlink(good_path);
	unlink(bad_path);
	free(good);
	free(out);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_suspect_then_zero)};
	if (argc < 2) {
		fprintf(stderr, "usage: %s TESTGUEST.bin\n", argv[0]);
		return 1;
	}
	image = argv[1];
	sys_require_kvm();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
