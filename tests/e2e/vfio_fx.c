// SPDX-License-Identifier: Apache-2.0
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "host/iommufd.h"
#include "tests/e2e/vfio_fx.h"
#include "vmig/guest_abi.h"
#include "vmig/host_platform.h"
#include "vmm/bus.h"
#include "vmm/vfio/vfio_dev.h"

/* Guest RAM: a memfd, mapped by the test and at IOVA = GPA = 0 in a fresh IOAS. */
static void vfio_fx_map_ram(struct vfio_fx *f)
{
	uint64_t iova = 0;

	assert_int_equal(iommufd_ioas_alloc(f->ictx, &f->ioas), 0);
	f->memfd = memfd_create("ram", MFD_CLOEXEC);
	assert_int_equal(ftruncate(f->memfd, (off_t)f->ram_size), 0);
	f->ram = mmap(NULL, f->ram_size, PROT_READ | PROT_WRITE, MAP_SHARED, f->memfd, 0);
	assert_true(f->ram != MAP_FAILED);
	assert_int_equal(iommufd_ioas_map_file(f->ictx, f->ioas, f->memfd, 0, f->ram_size, &iova,
					       IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
						   IOMMU_IOAS_MAP_WRITEABLE),
			 0);
}

struct vfio_fx *vfio_fx_create(size_t ram_size)
{
	struct vfio_fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->ram_size = ram_size;
	assert_int_equal(host_platform_boot(NULL, &f->hp), 0);
	assert_int_equal(iommufd_open(&f->ictx), 0);
	vfio_fx_map_ram(f);
	assert_int_equal(bus_create(&f->bus), 0);
	struct vfio_dev_config c = {.name = HOST_PLATFORM_SDMA_NAME,
				    .ictx = f->ictx,
				    .bus = f->bus,
				    .bar0_gpa = VMIG_SDMA_BAR0,
				    .path = VFIO_DOORBELL_FAST};
	assert_int_equal(vfio_dev_create(&c, &f->d), 0);
	uint32_t pt = f->ioas;
	assert_int_equal(vfio_dev_attach(f->d, &pt), 0);
	return f;
}

void vfio_fx_destroy(struct vfio_fx *f)
{
	vfio_dev_destroy(f->d);
	bus_destroy(f->bus);
	iommufd_close(f->ictx);
	host_platform_shutdown(f->hp);
	munmap(f->ram, f->ram_size);
	close(f->memfd);
	free(f);
}
