// SPDX-License-Identifier: Apache-2.0
#include "vmm/kvm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/bitmap.h"
#include "common/log.h"
#include "common/trace.h"
#include "common/util.h"
#include "vmig/guest_abi.h"
#include "vmm/guest_mem.h"

/* Outside RAM, inside the hole, clear of the devices: where Intel KVM keeps its TSS pages. */
#define VM_TSS_ADDR	     0xFFFBD000ull
#define VM_IDENTITY_MAP_ADDR 0xFFFBC000ull
#define VM_RING_DEFAULT	     16384u

struct vm_cap {
	int cap;
	const char *name;
};

/* Capabilities vmig cannot work without. */
static const struct vm_cap vm_required_caps[] = {
    {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
    {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
    {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
    {KVM_CAP_SIGNAL_MSI, "KVM_CAP_SIGNAL_MSI"},
    {KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD"},
    {KVM_CAP_VCPU_EVENTS, "KVM_CAP_VCPU_EVENTS"},
    {KVM_CAP_XSAVE, "KVM_CAP_XSAVE"},
    {KVM_CAP_XCRS, "KVM_CAP_XCRS"},
    {KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE"},
    {KVM_CAP_DEBUGREGS, "KVM_CAP_DEBUGREGS"},
    {KVM_CAP_ADJUST_CLOCK, "KVM_CAP_ADJUST_CLOCK"},
    {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
    {KVM_CAP_X2APIC_API, "KVM_CAP_X2APIC_API"},
};

static int kvm_open_dev(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int err = -errno;
		if (err == -ENOENT)
			log_error("/dev/kvm does not exist: KVM is not available on this host");
		else if (err == -EACCES || err == -EPERM)
			log_error("/dev/kvm: permission denied (add yourself to the 'kvm' group)");
		else
			log_error("/dev/kvm: %s", strerror(-err));
		return err;
	}
	int api = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (api != KVM_API_VERSION) {
		log_error("/dev/kvm: unsupported KVM API version %d", api);
		close(fd);
		return -ENOTSUP;
	}
	return fd;
}

static int vm_check_ext(const struct vm *vm, int cap)
{
	int r = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, cap);
	return r < 0 ? 0 : r;
}

static int vm_check_required(const struct vm *vm)
{
	for (size_t i = 0; i < ARRAY_SIZE(vm_required_caps); i++) {
		if (!vm_check_ext(vm, vm_required_caps[i].cap)) {
			log_error("KVM lacks a capability vmig needs: %s",
				  vm_required_caps[i].name);
			return -ENOTSUP;
		}
	}
	if ((unsigned)vm_check_ext(vm, KVM_CAP_MAX_VCPUS) < vm->nr_vcpus) {
		log_error("KVM supports at most %d vCPUs", vm_check_ext(vm, KVM_CAP_MAX_VCPUS));
		return -ENOTSUP;
	}
	return 0;
}

static int vm_enable_cap(struct vm *vm, uint32_t cap, uint64_t arg0)
{
	struct kvm_enable_cap ec = {.cap = cap, .args = {arg0}};
	return ioctl(vm->vm_fd, KVM_ENABLE_CAP, &ec) < 0 ? -errno : 0;
}

static int vm_setup_irqchip(struct vm *vm)
{
	/* Intel without unrestricted guest needs these; elsewhere they are harmless. */
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)VM_TSS_ADDR) < 0)
		TRACE(kvm_setup, "KVM_SET_TSS_ADDR: %s", strerror(errno));
	uint64_t idmap = VM_IDENTITY_MAP_ADDR;
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
		TRACE(kvm_setup, "KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		log_error("KVM_CREATE_IRQCHIP: %s", strerror(errno));
		return -errno;
	}
	/* 32-bit x2APIC IDs in MSI addresses and LAPIC state: vCPU ids above 255 work. */
	int ret = vm_enable_cap(vm, KVM_CAP_X2APIC_API, KVM_X2APIC_API_USE_32BIT_IDS);
	if (ret < 0)
		log_error("enabling KVM_CAP_X2APIC_API: %s", strerror(-ret));
	return ret;
}

/* The dirty ring must be chosen before any vCPU exists; manual protect before memslots. */
static int vm_setup_dirty(struct vm *vm, const struct vm_config *cfg)
{
	int ring_acq = vm_check_ext(vm, KVM_CAP_DIRTY_LOG_RING_ACQ_REL);
	int ring_max = ring_acq ? ring_acq : vm_check_ext(vm, KVM_CAP_DIRTY_LOG_RING);
	uint32_t entries = cfg->ring_entries ? cfg->ring_entries : VM_RING_DEFAULT;
	uint64_t bytes = (uint64_t)entries * sizeof(struct kvm_dirty_gfn);

	pthread_mutex_init(&vm->dirty_lock, NULL);
	if (cfg->dirty_mode == VM_DIRTY_RING && (!ring_max || bytes > (uint64_t)ring_max)) {
		log_error("KVM lacks a dirty ring of %u entries (KVM_CAP_DIRTY_LOG_RING)", entries);
		return -ENOTSUP;
	}
	if (cfg->dirty_mode != VM_DIRTY_BITMAP && ring_max && IS_POW2(entries) &&
	    bytes <= (uint64_t)ring_max) {
		int ret = vm_enable_cap(
		    vm, ring_acq ? KVM_CAP_DIRTY_LOG_RING_ACQ_REL : KVM_CAP_DIRTY_LOG_RING, bytes);
		if (ret == 0) {
			vm->ring = true;
			vm->ring_entries = entries;
			return 0;
		}
		if (cfg->dirty_mode == VM_DIRTY_RING)
			return ret;
	}
	int manual = vm_check_ext(vm, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);
	if (manual) {
		uint64_t flags = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE;
		if (manual & KVM_DIRTY_LOG_INITIALLY_SET)
			flags |= KVM_DIRTY_LOG_INITIALLY_SET;
		if (vm_enable_cap(vm, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, flags) == 0) {
			vm->manual_protect = true;
			vm->initially_set = flags & KVM_DIRTY_LOG_INITIALLY_SET;
		}
	}
	return 0;
}

static struct kvm_cpuid2 *vm_get_supported_cpuid(struct vm *vm)
{
	for (unsigned n = 64; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		if (!c)
			return NULL;
		c->nent = n;
		if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			return c;
		free(c);
		if (errno != E2BIG)
			return NULL;
	}
	return NULL;
}

static int vm_setup_cpuid(struct vm *vm)
{
	vm->cpuid = vm_get_supported_cpuid(vm);
	if (!vm->cpuid) {
		log_error("KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
		return -errno ? -errno : -ENOMEM;
	}
	for (uint32_t i = 0; i < vm->cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &vm->cpuid->entries[i];
		/*
		 * KVM fills the APIC id fields from the host CPU this thread ran on: clear them,
		 * or two VMs of one host differ in their CPUID (and refuse each other's state).
		 * vcpu_set_cpuid() puts each vCPU's own id in.
		 */
		if (e->function == 1) {
			e->ecx |= (1u << 21) | (1u << 31); /* x2APIC, hypervisor present */
			e->ebx &= 0x00FFFFFFu;
		} else if (e->function == 0xB || e->function == 0x1F) {
			e->edx = 0;
		}
	}
	int xs = vm_check_ext(vm, KVM_CAP_XSAVE2);
	vm->xsave_size = (uint32_t)MAX(xs, (int)sizeof(struct kvm_xsave));
	return 0;
}

int vm_open(const struct vm_config *cfg, struct vm **out)
{
	if (cfg->nr_vcpus == 0 || cfg->nr_vcpus > VMIG_MAX_VCPUS)
		return -EINVAL;
	struct vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->vm_fd = -1;
	vm->nr_vcpus = cfg->nr_vcpus;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_cond_init(&vm->cond, NULL);
	vm->kvm_fd = kvm_open_dev();
	int ret = vm->kvm_fd;
	if (ret < 0)
		goto fail;
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		ret = -errno;
		log_error("KVM_CREATE_VM: %s", strerror(errno));
		goto fail;
	}
	if ((ret = vm_check_required(vm)) < 0 || (ret = vm_setup_irqchip(vm)) < 0 ||
	    (ret = vm_setup_dirty(vm, cfg)) < 0 || (ret = vm_setup_cpuid(vm)) < 0)
		goto fail;
	vm->vcpus = calloc(vm->nr_vcpus, sizeof(*vm->vcpus));
	if (!vm->vcpus) {
		ret = -ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		if ((ret = vcpu_init(vm, &vm->vcpus[i], i)) < 0)
			goto fail;
	}
	if ((ret = vm_setup_msrs(vm)) < 0)
		goto fail;
	/* Read once now: a vCPU ioctl waits for that vCPU to leave KVM_RUN, which a guest
	 * busy in ring 3 may not do for seconds. */
	int khz = ioctl(vm->vcpus[0].fd, KVM_GET_TSC_KHZ, 0);
	vm->tsc_khz = khz > 0 ? (uint32_t)khz : 0;
	*out = vm;
	return 0;
fail:
	vm_close(vm);
	return ret;
}

void vm_close(struct vm *vm)
{
	if (!vm)
		return;
	vm_request_stop(vm, VM_STOP_REQUEST, 0);
	vm_throttle_fini(vm); /* it kicks vCPU threads: gone before they are joined */
	for (unsigned i = 0; vm->vcpus && i < vm->nr_vcpus; i++) {
		if (vm->vcpus[i].thread_live) {
			pthread_join(vm->vcpus[i].thread, NULL);
			vm->vcpus[i].thread_live = false; /* never signal a joined thread */
		}
	}
	for (unsigned i = 0; vm->vcpus && i < vm->nr_vcpus; i++)
		vcpu_fini(&vm->vcpus[i]);
	free(vm->vcpus);
	for (unsigned i = 0; i < vm->nr_slots; i++)
		free(vm->slots[i].log);
	free(vm->ring_dirty);
	free(vm->cpuid);
	free(vm->msr_index);
	free(vm->msi_routes);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	pthread_mutex_destroy(&vm->lock);
	pthread_cond_destroy(&vm->cond);
	pthread_mutex_destroy(&vm->dirty_lock);
	free(vm);
}

int vm_slot_update(struct vm *vm, struct vm_slot *s)
{
	struct kvm_userspace_memory_region r = {
	    .slot = s->id,
	    .flags = s->flags,
	    .guest_phys_addr = s->gpa,
	    .memory_size = s->size,
	    .userspace_addr = (uint64_t)(uintptr_t)s->host,
	};
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0) {
		int err = -errno;
		log_error("KVM_SET_USER_MEMORY_REGION slot %u: %s", s->id, strerror(errno));
		return err;
	}
	return 0;
}

int vm_attach_memory(struct vm *vm, struct guest_mem *mem)
{
	if (vm->mem || mem->nr_regions > VM_MAX_SLOTS)
		return -EINVAL;
	vm->mem = mem;
	vm->ring_dirty = bitmap_alloc(mem->gpa_pages);
	if (!vm->ring_dirty)
		return -ENOMEM;
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		struct vm_slot *s = &vm->slots[i];
		*s = (struct vm_slot){.id = i,
				      .gpa = mem->regions[i].gpa,
				      .size = mem->regions[i].size,
				      .host = mem->regions[i].host};
		s->log = bitmap_alloc(s->size >> GUEST_PAGE_SHIFT);
		if (!s->log)
			return -ENOMEM;
		vm->nr_slots = i + 1;
		int ret = vm_slot_update(vm, s);
		if (ret < 0)
			return ret;
	}
	return 0;
}

void vm_set_bus(struct vm *vm, struct bus *bus)
{
	vm->bus = bus;
}

int vm_signal_msi(struct vm *vm, uint64_t addr, uint32_t data)
{
	struct kvm_msi msi = {
	    .address_lo = (uint32_t)addr, .address_hi = (uint32_t)(addr >> 32), .data = data};
	int r = ioctl(vm->vm_fd, KVM_SIGNAL_MSI, &msi);
	TRACE(kvm_msi, "addr=%#lx data=%#x -> %d", (unsigned long)addr, data, r);
	/* 0 means the interrupt was blocked (e.g. the LAPIC is disabled): not an error. */
	return r < 0 ? -errno : 0;
}

static int vm_ioeventfd_ioctl(struct vm *vm, const struct vm_ioeventfd *io, bool del)
{
	struct kvm_ioeventfd k = {
	    .datamatch = io->datamatch, .addr = io->addr, .len = io->len, .fd = io->fd};
	if (io->len != 0 && io->len != 1 && io->len != 2 && io->len != 4 && io->len != 8)
		return -EINVAL;
	if (io->len == 0 && (io->pio || io->match))
		return -EINVAL;
	if (io->match)
		k.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
	if (io->pio)
		k.flags |= KVM_IOEVENTFD_FLAG_PIO;
	if (del)
		k.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
	int r = ioctl(vm->vm_fd, KVM_IOEVENTFD, &k);
	TRACE(kvm_ioeventfd, "%s %s addr=%#lx len=%u match=%d/%#lx fd=%d -> %d",
	      del ? "del" : "add", io->pio ? "pio" : "mmio", (unsigned long)io->addr, io->len,
	      io->match, (unsigned long)io->datamatch, io->fd, r);
	return r < 0 ? -errno : 0;
}

int vm_ioeventfd_add(struct vm *vm, const struct vm_ioeventfd *io)
{
	return vm_ioeventfd_ioctl(vm, io, false);
}

int vm_ioeventfd_del(struct vm *vm, const struct vm_ioeventfd *io)
{
	return vm_ioeventfd_ioctl(vm, io, true);
}

int vm_clock_get(struct vm *vm, struct kvm_clock_data *clock)
{
	memset(clock, 0, sizeof(*clock));
	return ioctl(vm->vm_fd, KVM_GET_CLOCK, clock) < 0 ? -errno : 0;
}

int vm_clock_set(struct vm *vm, const struct kvm_clock_data *clock)
{
	/* Only the clock value travels; realtime/host_tsc are this host's business. */
	struct kvm_clock_data c = {.clock = clock->clock};
	return ioctl(vm->vm_fd, KVM_SET_CLOCK, &c) < 0 ? -errno : 0;
}

int vm_irqchip_get(struct vm *vm, struct kvm_irqchip chips[VM_NR_IRQCHIPS])
{
	for (unsigned i = 0; i < VM_NR_IRQCHIPS; i++) {
		memset(&chips[i], 0, sizeof(chips[i]));
		chips[i].chip_id = i;
		if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &chips[i]) < 0)
			return -errno;
	}
	return 0;
}

int vm_irqchip_set(struct vm *vm, const struct kvm_irqchip chips[VM_NR_IRQCHIPS])
{
	for (unsigned i = 0; i < VM_NR_IRQCHIPS; i++) {
		if (chips[i].chip_id != i)
			return -EINVAL;
		if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &chips[i]) < 0)
			return -errno;
	}
	return 0;
}
