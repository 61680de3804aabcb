// SPDX-License-Identifier: Apache-2.0
/*
 * One clock reference for a stopped VM: the KVM clock and every vCPU's TSC, all expressed
 * against one (host realtime, host TSC) pair, and restored advanced by the real time that
 * passed between the save and the load, so the guest's time neither jumps back nor stalls
 * by the downtime.
 *
 * Guest TSCs are read as offsets from the host TSC (KVM_VCPU_TSC_OFFSET, the vCPU device
 * attribute) when KVM has it, which is exact and needs no timing; otherwise as IA32_TSC
 * read back-to-back, each bracketed by host TSC reads. vmig never enables TSC scaling, so a
 * guest TSC is host TSC + offset.
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <x86intrin.h>

#include "common/log.h"
#include "common/trace.h"
#include "vmig/guest_abi.h"
#include "vmm/kvm/vm.h"

#define MSR_IA32_TSC 0x10u

_Static_assert(VM_CLOCK_MAX_VCPUS == VMIG_MAX_VCPUS, "every VM's vCPUs fit the clock state");
_Static_assert(sizeof(struct vm_clock_state) == 48 + 8 * VM_CLOCK_MAX_VCPUS,
	       "the clock state travels as is: no padding");

static uint64_t clock_realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool vm_clock_has_tsc_attr(struct vm *vm)
{
	struct kvm_device_attr a = {.group = KVM_VCPU_TSC_CTRL, .attr = KVM_VCPU_TSC_OFFSET};
	return ioctl(vm->vcpus[0].fd, KVM_HAS_DEVICE_ATTR, &a) == 0;
}

static int vcpu_tsc_offset_io(struct vcpu *v, unsigned long req, uint64_t *offset)
{
	struct kvm_device_attr a = {.group = KVM_VCPU_TSC_CTRL,
				    .attr = KVM_VCPU_TSC_OFFSET,
				    .addr = (uint64_t)(uintptr_t)offset};
	return ioctl(v->fd, req, &a) < 0 ? -errno : 0;
}

static int vcpu_tsc_msr_io(struct vcpu *v, unsigned long req, uint64_t *val)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} m = {.hdr = {.nmsrs = 1}, .e = {.index = MSR_IA32_TSC, .data = *val}};
	int r = ioctl(v->fd, req, &m);
	*val = m.e.data;
	return r == 1 ? 0 : (r < 0 ? -errno : -EIO);
}

/* KVM's clock, and the (realtime, host TSC) pair it was read at. */
static int vm_clock_read(struct vm *vm, struct vm_clock_state *st)
{
	struct kvm_clock_data c = {0};
	const uint32_t both = KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC;

	if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &c) < 0)
		return -errno;
	st->kvm_flags = c.flags;
	st->clock_ns = c.clock;
	if ((c.flags & both) == both) {
		st->realtime_ns = c.realtime;
		st->host_tsc = c.host_tsc;
		return 0;
	}
	/* This KVM gives no pair (no stable master clock): take one right away. */
	st->host_tsc = __rdtsc();
	st->realtime_ns = clock_realtime_ns();
	return 0;
}

/* Each guest TSC as it was at st->host_tsc. */
static int vm_clock_read_tscs(struct vm *vm, struct vm_clock_state *st)
{
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		uint64_t off = 0, val = 0;
		int ret;
		if (st->tsc_source == VM_CLOCK_TSC_OFFSET_ATTR) {
			ret = vcpu_tsc_offset_io(&vm->vcpus[i], KVM_GET_DEVICE_ATTR, &off);
		} else {
			uint64_t before = __rdtsc();
			ret = vcpu_tsc_msr_io(&vm->vcpus[i], KVM_GET_MSRS, &val);
			off = val - (before + (__rdtsc() - before) / 2);
		}
		if (ret < 0)
			return ret;
		st->guest_tsc[i] = st->host_tsc + off;
	}
	return 0;
}

int vm_clock_state_get(struct vm *vm, struct vm_clock_state *st)
{
	int khz = (int)vm->tsc_khz;
	int ret;

	memset(st, 0, sizeof(*st));
	if (vm->nr_vcpus > VM_CLOCK_MAX_VCPUS || khz <= 0)
		return khz <= 0 ? -ENOTSUP : -EINVAL;
	st->version = VM_CLOCK_STATE_VERSION;
	st->nr_vcpus = vm->nr_vcpus;
	st->tsc_khz = (uint32_t)khz;
	st->tsc_source = vm_clock_has_tsc_attr(vm) ? VM_CLOCK_TSC_OFFSET_ATTR : VM_CLOCK_TSC_MSR;
	if ((ret = vm_clock_read(vm, st)) < 0 || (ret = vm_clock_read_tscs(vm, st)) < 0)
		return ret;
	TRACE(vm_clock_save, "clock=%llu flags=%#x tsc via %s", (unsigned long long)st->clock_ns,
	      st->kvm_flags, st->tsc_source == VM_CLOCK_TSC_MSR ? "msr" : "offset");
	return 0;
}

/* Sets every guest TSC to its saved value plus `cycles`, as of host TSC `now`. */
static int vm_clock_write_tscs(struct vm *vm, const struct vm_clock_state *st, uint64_t now,
			       uint64_t cycles, bool attr)
{
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		uint64_t target = st->guest_tsc[i] + cycles;
		uint64_t off = target - now;
		int ret = attr ? vcpu_tsc_offset_io(&vm->vcpus[i], KVM_SET_DEVICE_ATTR, &off) : 0;
		if (!attr) {
			uint64_t val = __rdtsc() + off;
			ret = vcpu_tsc_msr_io(&vm->vcpus[i], KVM_SET_MSRS, &val);
		}
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* KVM advances the clock by the realtime delta itself when it takes KVM_CLOCK_REALTIME. */
static int vm_clock_write(struct vm *vm, const struct vm_clock_state *st, uint64_t elapsed_ns)
{
	struct kvm_clock_data c = {.clock = st->clock_ns};
	int caps = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_ADJUST_CLOCK);

	if (caps > 0 && (caps & KVM_CLOCK_REALTIME)) {
		c.flags = KVM_CLOCK_REALTIME;
		c.realtime = st->realtime_ns;
	} else {
		c.clock += elapsed_ns;
	}
	return ioctl(vm->vm_fd, KVM_SET_CLOCK, &c) < 0 ? -errno : 0;
}

int vm_clock_state_set(struct vm *vm, const struct vm_clock_state *st)
{
	if (st->version != VM_CLOCK_STATE_VERSION || st->nr_vcpus != vm->nr_vcpus ||
	    st->nr_vcpus > VM_CLOCK_MAX_VCPUS || !st->tsc_khz)
		return -EINVAL;
	if (vm->tsc_khz != st->tsc_khz)
		return -EPROTO; /* without TSC scaling the guest would see its TSC rate change */
	uint64_t now = __rdtsc(), real = clock_realtime_ns();
	uint64_t elapsed = real > st->realtime_ns ? real - st->realtime_ns : 0;
	uint64_t cycles = (uint64_t)((unsigned __int128)elapsed * st->tsc_khz / 1000000u);
	int ret = vm_clock_write_tscs(vm, st, now, cycles, vm_clock_has_tsc_attr(vm));
	if (ret == 0)
		ret = vm_clock_write(vm, st, elapsed);
	TRACE(vm_clock_load, "advanced by %llu ns -> %d", (unsigned long long)elapsed, ret);
	return ret;
}
