/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test fixture for the device binding without KVM (no VM: every doorbell traps): the
 * modelled host booted, the sdma device bound through vfio_dev on a bus at VMIG_SDMA_BAR0,
 * guest RAM a memfd mapped at IOVA = GPA in an IOAS the device is attached to (stage 2
 * only), doorbell on the fast path. Failures are cmocka assertions.
 */
#ifndef VMIG_TESTS_E2E_VFIO_FX_H
#define VMIG_TESTS_E2E_VFIO_FX_H

#include <stddef.h>
#include <stdint.h>

struct vfio_fx {
	struct host_platform *hp;
	struct iommufd_ctx *ictx;
	struct bus *bus;
	struct vfio_dev *d;
	int memfd;
	uint8_t *ram;
	size_t ram_size;
	uint32_t ioas, tail;
};

struct vfio_fx *vfio_fx_create(size_t ram_size);
void vfio_fx_destroy(struct vfio_fx *f);

#endif
