// SPDX-License-Identifier: Apache-2.0
/*
 * MSI routes for irqfds. KVM takes the whole GSI routing table at once, so the table is
 * rebuilt on every change: KVM's default in-kernel irqchip routes (IOAPIC pins 0-23 and
 * PIC pins 0-15, as KVM sets them up by itself) followed by our MSI routes.
 */
#include "vmm/kvm/vm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "common/trace.h"

#define VM_IOAPIC_PINS 24u
#define VM_PIC_PINS    16u

static unsigned vm_routing_default(struct kvm_irq_routing_entry *e)
{
	unsigned n = 0;

	for (uint32_t gsi = 0; gsi < VM_IOAPIC_PINS; gsi++) {
		e[n++] = (struct kvm_irq_routing_entry){.gsi = gsi,
							.type = KVM_IRQ_ROUTING_IRQCHIP,
							.u.irqchip = {KVM_IRQCHIP_IOAPIC, gsi}};
		if (gsi < VM_PIC_PINS)
			e[n++] = (struct kvm_irq_routing_entry){
			    .gsi = gsi,
			    .type = KVM_IRQ_ROUTING_IRQCHIP,
			    .u.irqchip = {gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
					  gsi % 8}};
	}
	return n;
}

/* Under vm->lock. */
static int vm_routing_commit(struct vm *vm)
{
	size_t max = VM_IOAPIC_PINS + VM_PIC_PINS + vm->nr_msi_routes;
	struct kvm_irq_routing *r = calloc(1, sizeof(*r) + max * sizeof(r->entries[0]));
	if (!r)
		return -ENOMEM;
	unsigned n = vm_routing_default(r->entries);
	for (unsigned i = 0; i < vm->nr_msi_routes; i++) {
		const struct vm_msi_route *m = &vm->msi_routes[i];
		if (!m->used)
			continue;
		r->entries[n++] = (struct kvm_irq_routing_entry){
		    .gsi = VM_MSI_GSI_BASE + i,
		    .type = KVM_IRQ_ROUTING_MSI,
		    .u.msi = {.address_lo = (uint32_t)m->addr,
			      .address_hi = (uint32_t)(m->addr >> 32),
			      .data = m->data}};
	}
	r->nr = n;
	int ret = ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, r) < 0 ? -errno : 0;
	free(r);
	return ret;
}

static int vm_msi_route_alloc(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nr_msi_routes; i++) {
		if (!vm->msi_routes[i].used)
			return (int)i;
	}
	if (vm->nr_msi_routes == VM_MAX_MSI_ROUTES)
		return -ENOSPC;
	struct vm_msi_route *r =
	    realloc(vm->msi_routes, (vm->nr_msi_routes + 1) * sizeof(*vm->msi_routes));
	if (!r)
		return -ENOMEM;
	vm->msi_routes = r;
	memset(&r[vm->nr_msi_routes], 0, sizeof(*r));
	return (int)vm->nr_msi_routes++;
}

static int vm_irqfd_ioctl(struct vm *vm, int fd, uint32_t gsi, bool del)
{
	struct kvm_irqfd k = {
	    .fd = (uint32_t)fd, .gsi = gsi, .flags = del ? KVM_IRQFD_FLAG_DEASSIGN : 0};
	return ioctl(vm->vm_fd, KVM_IRQFD, &k) < 0 ? -errno : 0;
}

int vm_irqfd_add_msi(struct vm *vm, uint64_t addr, uint32_t data, int fd)
{
	pthread_mutex_lock(&vm->lock);
	int slot = vm_msi_route_alloc(vm), ret = slot;
	if (slot >= 0) {
		vm->msi_routes[slot] = (struct vm_msi_route){true, addr, data};
		ret = vm_routing_commit(vm);
		if (ret == 0)
			ret = vm_irqfd_ioctl(vm, fd, VM_MSI_GSI_BASE + (uint32_t)slot, false);
		if (ret < 0) {
			vm->msi_routes[slot].used = false;
			vm_routing_commit(vm);
		}
	}
	pthread_mutex_unlock(&vm->lock);
	TRACE(kvm_irqfd, "add addr=%#lx data=%#x fd=%d -> gsi %d (%d)", (unsigned long)addr, data,
	      fd, slot >= 0 ? (int)VM_MSI_GSI_BASE + slot : -1, ret);
	return ret < 0 ? ret : (int)VM_MSI_GSI_BASE + slot;
}

int vm_irqfd_del_msi(struct vm *vm, int gsi, int fd)
{
	int slot = gsi - (int)VM_MSI_GSI_BASE;

	pthread_mutex_lock(&vm->lock);
	int ret = -ENOENT;
	if (slot >= 0 && (unsigned)slot < vm->nr_msi_routes && vm->msi_routes[slot].used) {
		ret = vm_irqfd_ioctl(vm, fd, (uint32_t)gsi, true);
		vm->msi_routes[slot].used = false;
		int r2 = vm_routing_commit(vm);
		if (ret == 0)
			ret = r2;
	}
	pthread_mutex_unlock(&vm->lock);
	return ret;
}
