// SPDX-License-Identifier: Apache-2.0
/* libFuzzer target (-Dfuzz=true): a hostile --kernel image into 8 MiB of guest RAM. */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "vmm/guest_mem.h"
#include "vmm/multiboot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct guest_mem *gm;
	static int null = -1, err = -1;
	struct multiboot_boot b;
	int rc;

	if (!gm) {
		null = open("/dev/null", O_WRONLY);
		err = dup(2);
		if (guest_mem_create(8u << 20, &gm) || null < 0 || err < 0)
			abort();
	}
	dup2(null, 2); /* the loader explains every refusal; libFuzzer reports on stderr */
	rc = multiboot_load(gm, data, size, "fuzz", &b);
	dup2(err, 2);
	if (rc == 0 && (b.image_hi > (8u << 20) || b.info >= (8u << 20)))
		abort();
	return 0;
}
