// SPDX-License-Identifier: Apache-2.0
/*
 * vCPU threads and the run loop. Each vCPU thread loops on KVM_RUN and dispatches port
 * I/O and MMIO exits to the bus. HLT, the LAPIC timer, IPIs and INIT/SIPI stay in the
 * kernel (in-kernel irqchip), so an idle vCPU costs nothing here.
 *
 * Kicking: vm_pause() and vm_request_stop() set run->immediate_exit on every vCPU and send
 * it VCPU_KICK_SIGNAL. A thread inside KVM_RUN returns -EINTR at once; one about to enter
 * sees immediate_exit and returns -EINTR without running the guest. Either way the loop
 * then looks at pause_req/stop. Before parking, a thread re-enters KVM_RUN once with
 * immediate_exit set if its last exit was I/O, because KVM completes an I/O exit (loads
 * the IN value into RAX, advances RIP) only on the next KVM_RUN: the saved state would
 * otherwise be mid-instruction.
 */
#include "vmm/kvm/vm.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/trace.h"
#include "vmm/bus.h"

#define VCPU_KICK_SIGNAL (SIGRTMIN + 1)

static void vcpu_kick_handler(int sig)
{
	/* Nothing to do: the signal's only job is to make KVM_RUN return -EINTR. */
}

static void vcpu_kick_install_once(void)
{
	struct sigaction sa = {.sa_handler = vcpu_kick_handler, .sa_flags = SA_RESTART};
	sigemptyset(&sa.sa_mask);
	sigaction(VCPU_KICK_SIGNAL, &sa, NULL);
}

static void vcpu_kick_install(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, vcpu_kick_install_once);
}

static int vcpu_set_cpuid(struct vcpu *v)
{
	const struct kvm_cpuid2 *src = v->vm->cpuid;
	size_t bytes = sizeof(*src) + src->nent * sizeof(src->entries[0]);
	struct kvm_cpuid2 *c = malloc(bytes);
	if (!c)
		return -ENOMEM;
	memcpy(c, src, bytes);
	/* Each vCPU reports its own APIC id: leaf 1 (8 bits) and the x2APIC leaves. */
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		if (e->function == 1)
			e->ebx = (e->ebx & 0x00FFFFFFu) | (v->index << 24);
		else if (e->function == 0xB || e->function == 0x1F)
			e->edx = v->index;
	}
	int ret = ioctl(v->fd, KVM_SET_CPUID2, c) < 0 ? -errno : 0;
	free(c);
	if (ret < 0)
		log_error("vcpu %u: KVM_SET_CPUID2: %s", v->index, strerror(-ret));
	return ret;
}

static int vcpu_map_ring(struct vcpu *v)
{
	size_t bytes = (size_t)v->vm->ring_entries * sizeof(struct kvm_dirty_gfn);
	long page = sysconf(_SC_PAGESIZE);
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd,
		       (off_t)KVM_DIRTY_LOG_PAGE_OFFSET * page);
	if (p == MAP_FAILED) {
		log_error("vcpu %u: mapping the dirty ring: %s", v->index, strerror(errno));
		return -errno;
	}
	v->ring = p;
	return 0;
}

int vcpu_init(struct vm *vm, struct vcpu *v, unsigned index)
{
	v->vm = vm;
	v->index = index;
	v->io_settled = true;
	v->run = MAP_FAILED;
	v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
	if (v->fd < 0) {
		log_error("KVM_CREATE_VCPU %u: %s", index, strerror(errno));
		return -errno;
	}
	int size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size <= 0)
		return -EIO;
	v->run_size = (size_t)size;
	v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED)
		return -errno;
	int ret = vcpu_set_cpuid(v);
	if (ret == 0 && vm->ring)
		ret = vcpu_map_ring(v);
	return ret;
}

void vcpu_fini(struct vcpu *v)
{
	if (!v->vm)
		return;
	if (v->ring)
		munmap(v->ring, (size_t)v->vm->ring_entries * sizeof(struct kvm_dirty_gfn));
	if (v->run != MAP_FAILED && v->run)
		munmap(v->run, v->run_size);
	if (v->fd >= 0)
		close(v->fd);
	v->vm = NULL;
}

/* Under vm->lock. */
void vm_kick_all_locked(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		if (!v->run || v->run == MAP_FAILED)
			continue; /* vm_open() failed before this vCPU existed */
		__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		if (v->thread_live)
			pthread_kill(v->thread, VCPU_KICK_SIGNAL);
	}
}

static void vcpu_handle_pio(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool out = run->io.direction == KVM_EXIT_IO_OUT;

	for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size) {
		uint64_t val = 0;
		if (out)
			memcpy(&val, data, run->io.size);
		TRACE(kvm_exit_pio, "vcpu=%u %s port=%#x size=%u val=%#lx", v->index,
		      out ? "out" : "in", run->io.port, run->io.size, (unsigned long)val);
		if (v->vm->bus)
			bus_access(v->vm->bus, BUS_PIO, run->io.port, run->io.size, out, &val);
		if (!out)
			memcpy(data, &val, run->io.size);
	}
}

static void vcpu_handle_mmio(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint64_t val = 0;
	unsigned len = run->mmio.len;

	if (len > sizeof(val))
		len = sizeof(val);
	if (run->mmio.is_write)
		memcpy(&val, run->mmio.data, len);
	TRACE(kvm_exit_mmio, "vcpu=%u %s addr=%#llx len=%u val=%#lx", v->index,
	      run->mmio.is_write ? "write" : "read", (unsigned long long)run->mmio.phys_addr,
	      run->mmio.len, (unsigned long)val);
	if (v->vm->bus)
		bus_access(v->vm->bus, BUS_MMIO, run->mmio.phys_addr, len, run->mmio.is_write,
			   &val);
	else if (!run->mmio.is_write)
		val = 0;
	if (!run->mmio.is_write)
		memcpy(run->mmio.data, &val, len);
}

static const char *vcpu_exit_name(uint32_t reason)
{
	switch (reason) {
	case KVM_EXIT_SHUTDOWN:
		return "triple fault (KVM_EXIT_SHUTDOWN)";
	case KVM_EXIT_FAIL_ENTRY:
		return "VM entry failed (KVM_EXIT_FAIL_ENTRY)";
	case KVM_EXIT_INTERNAL_ERROR:
		return "KVM internal error (KVM_EXIT_INTERNAL_ERROR)";
	case KVM_EXIT_SYSTEM_EVENT:
		return "system event (KVM_EXIT_SYSTEM_EVENT)";
	case KVM_EXIT_HLT:
		return "HLT exit";
	case KVM_EXIT_EXCEPTION:
		return "exception (KVM_EXIT_EXCEPTION)";
	default:
		return "unexpected exit";
	}
}

/* Returns false when the vCPU must stop: the VM was told to stop with a crash report. */
static bool vcpu_handle_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;

	v->exits++;
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		vcpu_handle_pio(v);
		return true;
	case KVM_EXIT_MMIO:
		vcpu_handle_mmio(v);
		return true;
	case KVM_EXIT_DIRTY_RING_FULL:
		vm_dirty_ring_collect(v->vm);
		return true;
	case KVM_EXIT_INTR:
		return true;
	default:
		break;
	}
	vcpu_report(v, vcpu_exit_name(run->exit_reason));
	vm_request_stop(v->vm, VM_STOP_CRASH, VMIG_EXIT_CRASH);
	return false;
}

/* What a kick asks of this thread: park, finish, or sleep for the throttle. */
static bool vcpu_kick_wanted(struct vcpu *v)
{
	return __atomic_load_n(&v->vm->pause_req, __ATOMIC_SEQ_CST) ||
	       __atomic_load_n(&v->vm->stop, __ATOMIC_SEQ_CST) ||
	       __atomic_load_n(&v->throttle_due, __ATOMIC_SEQ_CST);
}

/*
 * immediate_exit says exactly whether something is asked of this thread. A kick whose
 * pause was lifted before this thread saw it (a pause before the threads started, lifted
 * before they ran) leaves it set, and every KVM_RUN would return -EINTR. Cleared first
 * and the requests read after, so a kick that comes meanwhile (its request is set before
 * its immediate_exit: the throttle's next period, a pause) is never lost, nor one whose
 * flag an earlier clear (the throttle's sleep) already took.
 */
static void vcpu_drop_stale_kick(struct vcpu *v)
{
	__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
	if (vcpu_kick_wanted(v))
		__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
}

/* Returns true when the thread must finish. */
static bool vcpu_park(struct vcpu *v)
{
	struct vm *vm = v->vm;
	bool finish;

	/* An I/O exit is completed by the next KVM_RUN: do that (immediate_exit is set). */
	if (!v->io_settled)
		return false;
	pthread_mutex_lock(&vm->lock);
	if (vm->pause_req && !vm->stop) {
		vm->parked++;
		pthread_cond_broadcast(&vm->cond);
		while (vm->pause_req && !vm->stop)
			pthread_cond_wait(&vm->cond, &vm->lock);
		vm->parked--;
	}
	finish = vm->stop;
	if (!finish)
		__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&vm->lock);
	return finish;
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct vm *vm = v->vm;
	sigset_t set;

	__atomic_store_n(&v->tid, (int)gettid(), __ATOMIC_RELAXED);
	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	for (;;) {
		if (__atomic_load_n(&vm->pause_req, __ATOMIC_ACQUIRE) ||
		    __atomic_load_n(&vm->stop, __ATOMIC_ACQUIRE)) {
			if (vcpu_park(v))
				break;
			if (v->io_settled)
				continue;
		}
		int r = ioctl(v->fd, KVM_RUN, 0);
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				v->io_settled = true;
				vcpu_throttle_wait(v);
				vcpu_drop_stale_kick(v);
				continue;
			}
			log_error("vcpu %u: KVM_RUN: %s", v->index, strerror(errno));
			vm_request_stop(vm, VM_STOP_ERROR, 1);
			break;
		}
		v->io_settled = false;
		if (!vcpu_handle_exit(v))
			break;
	}
	pthread_mutex_lock(&vm->lock);
	vm->live--;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	return NULL;
}

/*
 * Started means every vCPU thread has said who it is: query-cpus-fast right after a start
 * must not report thread id 0 (a loaded host can take a while to schedule a new thread).
 */
static void vcpu_wait_tids(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		for (int t = 0; t < 2000 && !__atomic_load_n(&vm->vcpus[i].tid, __ATOMIC_RELAXED);
		     t++)
			usleep(500);
	}
}

int vm_start(struct vm *vm)
{
	int ret = 0;

	vcpu_kick_install();
	pthread_mutex_lock(&vm->lock);
	if (vm->started || vm->stop)
		ret = -EBUSY;
	for (unsigned i = 0; ret == 0 && i < vm->nr_vcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		ret = -pthread_create(&v->thread, NULL, vcpu_thread, v);
		if (ret == 0) {
			v->thread_live = true;
			vm->live++;
		}
	}
	if (ret == 0)
		vm->started = true;
	pthread_mutex_unlock(&vm->lock);
	if (ret < 0 && ret != -EBUSY)
		vm_request_stop(vm, VM_STOP_ERROR, 1);
	if (ret == 0)
		vcpu_wait_tids(vm);
	return ret;
}

int vm_pause(struct vm *vm, unsigned owner)
{
	/* A vCPU thread (a device handler) waiting for itself to park would never return. */
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		if (vm->vcpus[i].thread_live && pthread_equal(vm->vcpus[i].thread, pthread_self()))
			return -EDEADLK;
	}
	pthread_mutex_lock(&vm->lock);
	vm->pause_owners |= owner;
	__atomic_store_n(&vm->pause_req, true, __ATOMIC_RELEASE);
	vm_kick_all_locked(vm);
	pthread_cond_broadcast(&vm->cond); /* ends throttle sleeps (throttle.c) */
	while (vm->parked < vm->live)
		pthread_cond_wait(&vm->cond, &vm->lock);
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

void vm_resume(struct vm *vm, unsigned owner)
{
	pthread_mutex_lock(&vm->lock);
	vm->pause_owners &= ~owner;
	__atomic_store_n(&vm->pause_req, vm->pause_owners != 0, __ATOMIC_RELEASE);
	/* Threads clear their own immediate_exit on the way out of vcpu_park(). */
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

unsigned vm_pause_owners(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	unsigned owners = vm->pause_owners;
	pthread_mutex_unlock(&vm->lock);
	return owners;
}

bool vm_is_paused(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	bool paused = vm->pause_req && vm->parked >= vm->live;
	pthread_mutex_unlock(&vm->lock);
	return paused;
}

void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, int status)
{
	pthread_mutex_lock(&vm->lock);
	if (!vm->stop) {
		vm->reason = reason;
		vm->exit_status = status;
		__atomic_store_n(&vm->stop, true, __ATOMIC_RELEASE);
		TRACE(vm_stop, "reason=%d status=%d", reason, status);
	}
	if (vm->vcpus)
		vm_kick_all_locked(vm);
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

int vm_wait_stop(struct vm *vm, int timeout_ms, enum vm_stop_reason *reason, int *status)
{
	struct timespec ts;
	int ret = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (timeout_ms >= 0) {
		ts.tv_sec += timeout_ms / 1000;
		ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&vm->lock);
	while (!vm->stop && ret == 0) {
		if (timeout_ms < 0)
			pthread_cond_wait(&vm->cond, &vm->lock);
		else
			ret = -pthread_cond_timedwait(&vm->cond, &vm->lock, &ts);
	}
	if (vm->stop) {
		ret = 0;
		if (reason)
			*reason = vm->reason;
		if (status)
			*status = vm->exit_status;
	}
	pthread_mutex_unlock(&vm->lock);
	return ret;
}

static void vcpu_set_flat_segment(struct kvm_segment *s, uint16_t sel, uint8_t type)
{
	*s = (struct kvm_segment){.base = 0,
				  .limit = 0xFFFFFFFFu,
				  .selector = sel,
				  .type = type,
				  .present = 1,
				  .dpl = 0,
				  .db = 1,
				  .s = 1,
				  .l = 0,
				  .g = 1};
}

int vcpu_set_boot_state(struct vcpu *v, uint32_t entry, uint32_t eax, uint32_t ebx)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = {.rip = entry, .rax = eax, .rbx = ebx, .rflags = 0x2};

	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	/* Multiboot: flat 4 GiB code and data segments, CR0.PE, paging off, IF clear. */
	vcpu_set_flat_segment(&sregs.cs, 0x10, 0xB);
	vcpu_set_flat_segment(&sregs.ds, 0x18, 0x3);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.cr0 = 0x11; /* PE | ET */
	sregs.cr4 = 0;
	sregs.efer = 0;
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0 || ioctl(v->fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	return 0;
}

static void vcpu_report_seg(const char *name, const struct kvm_segment *s)
{
	fprintf(stderr, "  %-3s sel=%#06x base=%#llx limit=%#x type=%u dpl=%u p=%u l=%u db=%u\n",
		name, s->selector, (unsigned long long)s->base, s->limit, s->type, s->dpl,
		s->present, s->l, s->db);
}

static void vcpu_report_exit(const struct kvm_run *run)
{
	if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR) {
		fprintf(stderr, "  suberror=%u ndata=%u", run->internal.suberror,
			run->internal.ndata);
		for (uint32_t i = 0; i < run->internal.ndata && i < 16; i++)
			fprintf(stderr, " %#llx", (unsigned long long)run->internal.data[i]);
		fputc('\n', stderr);
	} else if (run->exit_reason == KVM_EXIT_FAIL_ENTRY) {
		fprintf(stderr, "  hardware_entry_failure_reason=%#llx\n",
			(unsigned long long)run->fail_entry.hardware_entry_failure_reason);
	} else if (run->exit_reason == KVM_EXIT_SYSTEM_EVENT) {
		fprintf(stderr, "  type=%u\n", run->system_event.type);
	}
}

void vcpu_report(struct vcpu *v, const char *why)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	flockfile(stderr);
	fprintf(stderr, "vmig: error: vcpu %u: %s, exit reason %u\n", v->index, why,
		v->run->exit_reason);
	vcpu_report_exit(v->run);
	if (ioctl(v->fd, KVM_GET_REGS, &r) == 0) {
		fprintf(stderr, "  rip=%#018llx rsp=%#018llx rflags=%#llx\n", r.rip, r.rsp,
			r.rflags);
		fprintf(stderr, "  rax=%#llx rbx=%#llx rcx=%#llx rdx=%#llx\n", r.rax, r.rbx, r.rcx,
			r.rdx);
		fprintf(stderr, "  rsi=%#llx rdi=%#llx rbp=%#llx r8=%#llx\n", r.rsi, r.rdi, r.rbp,
			r.r8);
	}
	if (ioctl(v->fd, KVM_GET_SREGS, &s) == 0) {
		fprintf(stderr,
			"  cr0=%#llx cr2=%#llx cr3=%#llx cr4=%#llx efer=%#llx apic_base=%#llx\n",
			s.cr0, s.cr2, s.cr3, s.cr4, s.efer, s.apic_base);
		vcpu_report_seg("cs", &s.cs);
		vcpu_report_seg("ss", &s.ss);
		vcpu_report_seg("tr", &s.tr);
		fprintf(stderr, "  gdt=%#llx/%#x idt=%#llx/%#x\n", s.gdt.base, s.gdt.limit,
			s.idt.base, s.idt.limit);
	}
	funlockfile(stderr);
}
