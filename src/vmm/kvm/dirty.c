// SPDX-License-Identifier: Apache-2.0
/*
 * Dirty page tracking with KVM, two ways, chosen when the VM is created:
 *
 * Bitmap: KVM_MEM_LOG_DIRTY_PAGES on every memslot. Under manual protect
 * (KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) KVM_GET_DIRTY_LOG only copies the bitmap out and
 * KVM_CLEAR_DIRTY_LOG re-protects the pages we name; we clear chunk by chunk, skipping
 * clean chunks, so the MMU lock is never held over a whole slot. Without manual protect,
 * KVM_GET_DIRTY_LOG fetches and re-protects atomically.
 *
 * Ring: each vCPU has a ring of (slot, offset) entries that KVM fills as the vCPU dirties
 * pages. We collect DIRTY entries (acquire), mark them RESET (release), and then
 * KVM_RESET_DIRTY_RINGS re-protects them. A full ring exits to userspace
 * (KVM_EXIT_DIRTY_RING_FULL) and that vCPU thread collects into vm->ring_dirty itself.
 *
 * Either way the result is a bitmap over guest page frame numbers merged with the pages
 * the VMM wrote (guest_mem_take_dirty()).
 */
#include "vmm/kvm/vm.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "common/bitmap.h"
#include "common/log.h"
#include "common/trace.h"
#include "common/util.h"
#include "vmm/guest_mem.h"

uint64_t vm_dirty_pages(const struct vm *vm)
{
	return vm->mem ? vm->mem->gpa_pages : 0;
}

const char *vm_dirty_mode_name(const struct vm *vm)
{
	if (vm->ring)
		return "ring";
	return vm->manual_protect ? "bitmap+manual-protect" : "bitmap";
}

static int vm_dirty_set_flag(struct vm *vm, bool on)
{
	for (unsigned i = 0; i < vm->nr_slots; i++) {
		struct vm_slot *s = &vm->slots[i];
		uint32_t old = s->flags;
		s->flags = on ? (old | KVM_MEM_LOG_DIRTY_PAGES) : (old & ~KVM_MEM_LOG_DIRTY_PAGES);
		int ret = vm_slot_update(vm, s);
		if (ret < 0) {
			s->flags = old;
			return ret;
		}
	}
	return 0;
}

/* Every RAM page is dirty at log start: ring mode sets them by hand (INITIALLY_SET's rule). */
static void vm_dirty_mark_all(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nr_slots; i++) {
		struct vm_slot *s = &vm->slots[i];
		bitmap_set_range(vm->ring_dirty, s->gpa >> GUEST_PAGE_SHIFT,
				 s->size >> GUEST_PAGE_SHIFT);
	}
}

int vm_dirty_log_start(struct vm *vm)
{
	if (!vm->mem)
		return -EINVAL;
	pthread_mutex_lock(&vm->dirty_lock);
	int ret = vm->logging ? 0 : vm_dirty_set_flag(vm, true);
	if (ret == 0 && !vm->logging) {
		vm->logging = true;
		vm->dirty_broken = false; /* every page counts as dirty again: nothing is lost */
		if (vm->ring || !vm->initially_set)
			vm_dirty_mark_all(vm);
	}
	pthread_mutex_unlock(&vm->dirty_lock);
	TRACE(kvm_dirty_log, "start mode=%s -> %d", vm_dirty_mode_name(vm), ret);
	return ret;
}

int vm_dirty_log_stop(struct vm *vm)
{
	pthread_mutex_lock(&vm->dirty_lock);
	int ret = vm->logging ? vm_dirty_set_flag(vm, false) : 0;
	if (ret == 0)
		vm->logging = false;
	pthread_mutex_unlock(&vm->dirty_lock);
	TRACE(kvm_dirty_log, "stop -> %d", ret);
	return ret;
}

/* ORs a slot-relative bitmap into the GPA-indexed one. Slots start on 64-page boundaries. */
static size_t vm_dirty_merge_slot(uint64_t *dst, const struct vm_slot *s, const uint64_t *log)
{
	uint64_t pages = s->size >> GUEST_PAGE_SHIFT;
	uint64_t *d = dst + ((s->gpa >> GUEST_PAGE_SHIFT) / BITMAP_WORD_BITS);
	size_t count = 0;

	for (size_t w = 0; w < bitmap_words(pages); w++) {
		uint64_t bits = log[w];
		if (!bits)
			continue;
		count += (size_t)__builtin_popcountll(bits & ~d[w]);
		d[w] |= bits;
	}
	return count;
}

unsigned vm_dirty_fail_clear_nth;

/* KVM_CLEAR_DIRTY_LOG, or the failure a test asked for. */
static int vm_dirty_clear_ioctl(struct vm *vm, struct kvm_clear_dirty_log *c)
{
	unsigned nth = __atomic_load_n(&vm_dirty_fail_clear_nth, __ATOMIC_RELAXED);
	if (nth && __atomic_sub_fetch(&vm_dirty_fail_clear_nth, 1, __ATOMIC_RELAXED) == 0)
		return -EIO;
	return ioctl(vm->vm_fd, KVM_CLEAR_DIRTY_LOG, c) < 0 ? -errno : 0;
}

static int vm_dirty_clear_chunks(struct vm *vm, struct vm_slot *s)
{
	uint64_t pages = s->size >> GUEST_PAGE_SHIFT;

	for (uint64_t first = 0; first < pages; first += VM_DIRTY_CLEAR_CHUNK) {
		uint64_t n = MIN((uint64_t)VM_DIRTY_CLEAR_CHUNK, pages - first);
		if (!bitmap_test_range_any(s->log, first, n))
			continue;
		struct kvm_clear_dirty_log c = {.slot = s->id,
						.num_pages = (uint32_t)n,
						.first_page = first,
						.dirty_bitmap = &s->log[first / BITMAP_WORD_BITS]};
		int ret = vm_dirty_clear_ioctl(vm, &c);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/*
 * Each slot's bits reach the caller's bitmap before KVM re-protects those pages, so a
 * failure part-way loses nothing the caller was not told about. It still leaves KVM's log
 * in a state no later harvest can trust (some chunks re-armed, some not; earlier slots
 * already fetched), so the log is marked broken: see vm_dirty_harvest().
 */
static long vm_dirty_harvest_bitmap(struct vm *vm, uint64_t *bitmap)
{
	long total = 0;

	for (unsigned i = 0; i < vm->nr_slots; i++) {
		struct vm_slot *s = &vm->slots[i];
		struct kvm_dirty_log log = {.slot = s->id, .dirty_bitmap = s->log};
		if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
			return -errno;
		total += (long)vm_dirty_merge_slot(bitmap, s, s->log);
		if (vm->manual_protect) {
			int ret = vm_dirty_clear_chunks(vm, s);
			if (ret < 0)
				return ret;
		}
	}
	return total;
}

static const struct vm_slot *vm_slot_by_id(const struct vm *vm, uint32_t id)
{
	for (unsigned i = 0; i < vm->nr_slots; i++) {
		if (vm->slots[i].id == id)
			return &vm->slots[i];
	}
	return NULL;
}

/* Under dirty_lock. Returns the number of entries collected. */
static unsigned vcpu_ring_collect(struct vcpu *v)
{
	struct vm *vm = v->vm;
	unsigned n = 0;

	for (;;) {
		struct kvm_dirty_gfn *e = &v->ring[v->ring_next & (vm->ring_entries - 1)];
		uint32_t flags = __atomic_load_n(&e->flags, __ATOMIC_ACQUIRE);
		if (!(flags & KVM_DIRTY_GFN_F_DIRTY))
			break;
		const struct vm_slot *s = vm_slot_by_id(vm, e->slot & 0xFFFF);
		if (s && (e->offset << GUEST_PAGE_SHIFT) < s->size)
			bitmap_set(vm->ring_dirty, (s->gpa >> GUEST_PAGE_SHIFT) + e->offset);
		__atomic_store_n(&e->flags, KVM_DIRTY_GFN_F_RESET, __ATOMIC_RELEASE);
		v->ring_next++;
		n++;
	}
	return n;
}

static void vm_dirty_ring_collect_locked(struct vm *vm)
{
	unsigned n = 0;

	if (!vm->ring)
		return;
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		n += vcpu_ring_collect(&vm->vcpus[i]);
	if (n && ioctl(vm->vm_fd, KVM_RESET_DIRTY_RINGS, 0) < 0)
		log_warn("KVM_RESET_DIRTY_RINGS: %s", strerror(errno));
	TRACE(kvm_dirty_ring, "collected %u entries", n);
}

void vm_dirty_ring_collect(struct vm *vm)
{
	if (!vm->ring)
		return;
	pthread_mutex_lock(&vm->dirty_lock);
	vm_dirty_ring_collect_locked(vm);
	pthread_mutex_unlock(&vm->dirty_lock);
}

static long vm_dirty_take_ring(struct vm *vm, uint64_t *bitmap)
{
	long count = 0;

	vm_dirty_ring_collect_locked(vm);
	for (size_t w = 0; w < bitmap_words(vm->mem->gpa_pages); w++) {
		uint64_t bits = vm->ring_dirty[w];
		if (!bits)
			continue;
		vm->ring_dirty[w] = 0;
		count += __builtin_popcountll(bits & ~bitmap[w]);
		bitmap[w] |= bits;
	}
	return count;
}

long vm_dirty_harvest(struct vm *vm, uint64_t *bitmap)
{
	long ret = 0;

	if (!vm->mem)
		return -EINVAL;
	pthread_mutex_lock(&vm->dirty_lock);
	if (vm->dirty_broken) {
		pthread_mutex_unlock(&vm->dirty_lock);
		return -EIO;
	}
	if (vm->logging && !vm->ring)
		ret = vm_dirty_harvest_bitmap(vm, bitmap);
	if (ret < 0) {
		vm->dirty_broken = true;
		log_error("dirty log harvest failed (%s): the log is lost until it is restarted",
			  strerror((int)-ret));
	}
	/* ring_dirty also holds the log-start "all dirty" marks in bitmap mode without them. */
	if (ret >= 0)
		ret += vm_dirty_take_ring(vm, bitmap);
	pthread_mutex_unlock(&vm->dirty_lock);
	if (ret >= 0)
		ret += (long)guest_mem_take_dirty(vm->mem, bitmap);
	TRACE(kvm_dirty_harvest, "mode=%s pages=%ld", vm_dirty_mode_name(vm), ret);
	return ret;
}
