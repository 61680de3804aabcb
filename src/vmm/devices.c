// SPDX-License-Identifier: Apache-2.0
/* The passthrough side of the machine: host objects, vSMMU, device, event loop. */
#include "vmm/devices.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/log.h"
#include "common/trace.h"
#include "host/iommufd.h"
#include "vmig/guest_abi.h"

/* vSMMU platform: guest memory through the VMM's helpers, MSIs through KVM ------------- */

static int devices_ram_read(void *opaque, uint64_t gpa, void *buf, size_t len)
{
	struct devices *d = opaque;

	return guest_mem_read(d->m->mem, gpa, buf, len);
}

/* Event records and CMD_SYNC writes: the dirty-marking helper, so migration sees them. */
static int devices_ram_write(void *opaque, uint64_t gpa, const void *buf, size_t len)
{
	struct devices *d = opaque;

	return guest_mem_write(d->m->mem, gpa, buf, len);
}

static bool devices_is_msi_addr(uint64_t addr)
{
	return addr >= VMIG_MSI_WINDOW && addr - VMIG_MSI_WINDOW < VMIG_MSI_WINDOW_SIZE;
}

static int devices_msi_send(void *opaque, uint64_t addr, uint32_t data)
{
	struct devices *d = opaque;

	if (!devices_is_msi_addr(addr))
		return -ENOENT;
	return vm_signal_msi(d->m->vm, addr, data);
}

/* Host memory: guest RAM at IOVA = GPA, and the MSI window ------------------------------ */

static int devices_map_ram(struct devices *d)
{
	const struct guest_mem *gm = d->m->mem;
	uint32_t flags =
	    IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;

	for (unsigned i = 0; i < gm->nr_regions; i++) {
		const struct guest_mem_region *r = &gm->regions[i];
		uint64_t iova = r->gpa;
		int ret = iommufd_ioas_map_file(d->ictx, d->ioas_id, gm->fd, r->offset, r->size,
						&iova, flags);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int devices_host_memory(struct devices *d)
{
	int ret = iommufd_open(&d->ictx);

	if (ret == 0)
		ret = iommufd_ioas_alloc(d->ictx, &d->ioas_id);
	if (ret == 0)
		ret = devices_map_ram(d);
	if (ret == 0)
		ret = iommufd_ioas_map_msi_window(d->ictx, d->ioas_id, VMIG_MSI_WINDOW,
						  VMIG_MSI_WINDOW_SIZE, &d->msi_fd);
	if (ret == 0 && fcntl(d->msi_fd, F_SETFL, O_NONBLOCK) < 0)
		ret = -errno;
	return ret;
}

/* Stage 2: NEST_PARENT, with DIRTY_TRACKING when the host can (migration wants it). */
static int devices_parent_hwpt(struct devices *d, bool want_dirty)
{
	struct iommu_hwpt_alloc a = {.size = sizeof(a),
				     .flags = IOMMU_HWPT_ALLOC_NEST_PARENT,
				     .dev_id = vfio_dev_iommufd_id(d->sdma),
				     .pt_id = d->ioas_id};
	int ret = -EOPNOTSUPP;

	if (want_dirty) {
		a.flags |= IOMMU_HWPT_ALLOC_DIRTY_TRACKING;
		ret = iommufd_hwpt_alloc(d->ictx, &a);
		d->dirty_tracking = ret == 0;
	}
	if (ret < 0) {
		a.flags = IOMMU_HWPT_ALLOC_NEST_PARENT;
		ret = iommufd_hwpt_alloc(d->ictx, &a);
	}
	if (ret == 0)
		d->parent_hwpt_id = a.out_hwpt_id;
	return ret;
}

static int devices_sdma(struct devices *d, const struct devices_config *cfg)
{
	struct vfio_dev_config vc = {
	    .name = cfg->sdma_name ? cfg->sdma_name : "sdma0",
	    .ictx = d->ictx,
	    .vm = d->m->vm,
	    .bus = d->m->bus,
	    .bar0_gpa = cfg->sdma_bar0_gpa ? cfg->sdma_bar0_gpa : VMIG_SDMA_BAR0,
	    .path = cfg->path,
	};
	uint32_t pt;
	int ret = vfio_dev_create(&vc, &d->sdma);

	if (ret == 0)
		ret = devices_parent_hwpt(d, !cfg->no_dirty_tracking);
	pt = d->parent_hwpt_id;
	if (ret == 0)
		ret = vfio_dev_attach(d->sdma, &pt);
	return ret;
}

/* The vSMMU: configured from what the host SMMU can do for a nested guest. */
static int devices_vsmmu(struct devices *d)
{
	struct vsmmu_platform plat = {.ram_read = devices_ram_read,
				      .ram_write = devices_ram_write,
				      .msi_send = devices_msi_send,
				      .opaque = d};
	struct vsmmu_nested_params np = {.ctx = d->ictx, .parent_hwpt_id = d->parent_hwpt_id};
	struct vsmmu_config cfg;
	int ret;

	vsmmu_config_default(&cfg);
	ret = vsmmu_nested_config_from_host(d->ictx, vfio_dev_iommufd_id(d->sdma), &cfg);
	if (ret < 0)
		return ret;
	d->vsmmu = vsmmu_create(&cfg, &plat, NULL, NULL);
	if (!d->vsmmu)
		return -EINVAL;
	ret = vsmmu_nested_create(d->vsmmu, &np, &d->nested);
	if (ret == 0)
		ret = vsmmu_nested_attach(d->nested, d->sdma_vsid, vfio_dev_iommufd_id(d->sdma));
	return ret;
}

static const struct bus_device_ops devices_vsmmu_ops = {
    .read = vsmmu_bus_read,
    .write = vsmmu_bus_write,
};

static int devices_vsmmu_register(struct devices *d)
{
	struct bus_region r = {"vsmmu",
			       BUS_MMIO,
			       VMIG_VSMMU_BASE,
			       VMIG_VSMMU_SIZE,
			       BUS_SIZE(4) | BUS_SIZE(8),
			       false,
			       &devices_vsmmu_ops,
			       d->vsmmu};
	int ret = bus_register(d->m->bus, &r);

	d->vsmmu_on_bus = ret == 0;
	return ret;
}

/* Start of day: what the VFIO layer needs to know about the vIOMMU in front of the device. */
static void devices_query_viommu(struct devices *d)
{
	vsmmu_get_attrs(d->vsmmu, &d->attrs);
	TRACE(vfio_viommu_attrs,
	      "vsid=0x%x translating=%d input=%u output=%u ssid=%u nesting=%d stall=%d dirty=%d "
	      "s2_dirty_tracking=%d",
	      d->sdma_vsid, vsmmu_sid_translating(d->vsmmu, d->sdma_vsid), d->attrs.input_bits,
	      d->attrs.output_bits, d->attrs.ssid_bits, d->attrs.nesting, d->attrs.stall,
	      d->attrs.httu_dirty, d->dirty_tracking);
}

/* Event loop ------------------------------------------------------------------------------ */

/* Injects every record queued on the MSI window's fd. */
static void devices_drain_msis(struct devices *d)
{
	struct iommufd_msi_record rec;
	ssize_t n;

	while ((n = read(d->msi_fd, &rec, sizeof(rec))) == (ssize_t)sizeof(rec)) {
		int ret = devices_is_msi_addr(rec.iova)
			      ? vm_signal_msi(d->m->vm, rec.iova, rec.data)
			      : -EINVAL;
		if (ret < 0)
			__atomic_add_fetch(&d->msi_errors, 1, __ATOMIC_RELAXED);
		else
			__atomic_add_fetch(&d->msis, 1, __ATOMIC_RELAXED);
		TRACE(vfio_msi, "ipa=0x%llx data=0x%x psid=0x%x ret=%d",
		      (unsigned long long)rec.iova, rec.data, rec.sid, ret);
	}
	if (n > 0) /* pipe records are written whole; a short one means a broken producer */
		__atomic_add_fetch(&d->msi_errors, 1, __ATOMIC_RELAXED);
}

/*
 * A wake-up on stop_fd: quit (true), or park while the migration holds the loop (a parked
 * loop touches nothing guest-visible, so what the guest sees can be saved consistently).
 */
static bool devices_loop_control(struct devices *d)
{
	eventfd_t v;
	bool quit;

	eventfd_read(d->stop_fd, &v);
	pthread_mutex_lock(&d->loop_lock);
	if (d->loop_park && !d->loop_quit) {
		d->loop_parked = true;
		pthread_cond_broadcast(&d->loop_cond);
		while (d->loop_park && !d->loop_quit)
			pthread_cond_wait(&d->loop_cond, &d->loop_lock);
		d->loop_parked = false;
	}
	quit = d->loop_quit;
	pthread_mutex_unlock(&d->loop_lock);
	return quit;
}

static void *devices_loop(void *arg)
{
	struct devices *d = arg;
	int vev_fd, fault_fd;

	vsmmu_nested_fds(d->nested, &vev_fd, &fault_fd);
	for (;;) {
		struct pollfd p[4] = {{d->stop_fd, POLLIN, 0},
				      {d->msi_fd, POLLIN, 0},
				      {vev_fd, POLLIN, 0},
				      {fault_fd, POLLIN, 0}};
		if (poll(p, 4, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("devices: poll: %s", strerror(errno));
			break;
		}
		if (p[0].revents && devices_loop_control(d))
			break;
		if (p[0].revents)
			continue; /* back from parking: look at the fds afresh */
		if (p[1].revents)
			devices_drain_msis(d);
		if (p[2].revents || p[3].revents)
			vsmmu_nested_poll(d->nested);
	}
	return NULL;
}

void devices_quiesce(struct devices *d)
{
	pthread_mutex_lock(&d->loop_lock);
	d->loop_park = true;
	eventfd_write(d->stop_fd, 1);
	while (d->loop_live && !d->loop_parked)
		pthread_cond_wait(&d->loop_cond, &d->loop_lock);
	pthread_mutex_unlock(&d->loop_lock);
	TRACE(devices_quiesce, "event loop parked");
}

void devices_drain(struct devices *d)
{
	devices_drain_msis(d);
	vsmmu_nested_poll(d->nested);
}

void devices_resume(struct devices *d)
{
	pthread_mutex_lock(&d->loop_lock);
	d->loop_park = false;
	pthread_cond_broadcast(&d->loop_cond);
	pthread_mutex_unlock(&d->loop_lock);
	TRACE(devices_quiesce, "event loop running");
}

static int devices_loop_start(struct devices *d)
{
	d->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (d->stop_fd < 0)
		return -errno;
	int ret = pthread_create(&d->loop, NULL, devices_loop, d);
	if (ret)
		return -ret;
	d->loop_live = true;
	return 0;
}

/* Life cycle ------------------------------------------------------------------------------ */

int devices_create(struct machine *m, const struct devices_config *cfg, struct devices **out)
{
	static const struct devices_config defaults;
	struct devices *d = calloc(1, sizeof(*d));
	int ret;

	if (!d)
		return -ENOMEM;
	if (!cfg)
		cfg = &defaults;
	d->m = m;
	d->msi_fd = -1;
	d->stop_fd = -1;
	pthread_mutex_init(&d->loop_lock, NULL);
	pthread_cond_init(&d->loop_cond, NULL);
	d->sdma_vsid = cfg->sdma_vsid ? cfg->sdma_vsid : VMIG_SDMA_SID;
	ret = devices_host_memory(d);
	if (ret == 0)
		ret = devices_sdma(d, cfg);
	if (ret == 0)
		ret = devices_vsmmu(d);
	if (ret == 0)
		ret = devices_vsmmu_register(d);
	if (ret == 0)
		ret = devices_loop_start(d);
	if (ret < 0) {
		log_error("devices: setting up the vSMMU and the sdma device failed: %s",
			  strerror(-ret));
		devices_destroy(d);
		return ret;
	}
	devices_query_viommu(d);
	*out = d;
	return 0;
}

void devices_destroy(struct devices *d)
{
	if (!d)
		return;
	if (d->loop_live) {
		pthread_mutex_lock(&d->loop_lock);
		d->loop_quit = true;
		pthread_cond_broadcast(&d->loop_cond);
		pthread_mutex_unlock(&d->loop_lock);
		eventfd_write(d->stop_fd, 1);
		pthread_join(d->loop, NULL);
	}
	devices_migration_free(d);
	if (d->vsmmu_on_bus)
		bus_unregister(d->m->bus, BUS_MMIO, VMIG_VSMMU_BASE);
	/* The device back on stage 2 alone (no guest tables in use), then closed. */
	vsmmu_nested_destroy(d->nested);
	vfio_dev_destroy(d->sdma);
	vsmmu_destroy(d->vsmmu);
	if (d->ictx)
		iommufd_close(d->ictx);
	if (d->msi_fd >= 0)
		close(d->msi_fd);
	if (d->stop_fd >= 0)
		close(d->stop_fd);
	pthread_mutex_destroy(&d->loop_lock);
	pthread_cond_destroy(&d->loop_cond);
	free(d);
}

void devices_get_stats(struct devices *d, struct devices_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->msis = __atomic_load_n(&d->msis, __ATOMIC_RELAXED);
	st->msi_errors = __atomic_load_n(&d->msi_errors, __ATOMIC_RELAXED);
	vsmmu_get_stats(d->vsmmu, &st->vsmmu);
	vsmmu_nested_get_stats(d->nested, &st->nested);
	vfio_dev_get_stats(d->sdma, &st->sdma);
}
