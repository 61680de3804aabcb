// SPDX-License-Identifier: Apache-2.0
/*
 * vCPU throttling for auto-converge. A guest that computes in ring 3 makes no userspace
 * exits, so slowing it down has to come from the VMM: one thread per VM (started by the
 * first non-zero percentage, ended by vm_close) kicks every vCPU once per period, the same
 * way vm_pause() does (immediate_exit + VCPU_KICK_SIGNAL, see vcpu.c), and each kicked
 * vCPU thread then sleeps pct% of the period outside KVM_RUN before it enters again.
 *
 * A pause or stop always wins: the sleep ends as soon as pause_req or stop is set (both
 * broadcast vm->cond), and the thread never clears an immediate_exit that a pause or stop
 * asked for (it decides under vm->lock, where those are set).
 */
#include <errno.h>
#include <time.h>

#include "common/log.h"
#include "common/trace.h"
#include "vmm/kvm/vm.h"

#define VM_THROTTLE_PERIOD_NS 10000000L /* 10 ms */
#define VM_THROTTLE_MAX_PCT   99u

static void throttle_add_ns(struct timespec *ts, long ns)
{
	ts->tv_nsec += ns;
	while (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Under vm->lock: every vCPU leaves KVM_RUN and owes one throttle sleep. */
static void vm_throttle_kick_locked(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		__atomic_store_n(&vm->vcpus[i].throttle_due, true, __ATOMIC_RELEASE);
	vm_kick_all_locked(vm);
}

static void *vm_throttle_thread(void *arg)
{
	struct vm *vm = arg;
	struct timespec next;

	clock_gettime(CLOCK_MONOTONIC, &next);
	pthread_mutex_lock(&vm->lock);
	while (!vm->throttle_quit) {
		throttle_add_ns(&next, VM_THROTTLE_PERIOD_NS);
		while (!vm->throttle_quit &&
		       pthread_cond_clockwait(&vm->throttle_cond, &vm->lock, CLOCK_MONOTONIC,
					      &next) != ETIMEDOUT)
			;
		/* A paused or stopping VM is already out of KVM_RUN: no kick needed. */
		if (!vm->throttle_quit && !vm->pause_req && !vm->stop && vm->started &&
		    __atomic_load_n(&vm->throttle_pct, __ATOMIC_RELAXED))
			vm_throttle_kick_locked(vm);
	}
	pthread_mutex_unlock(&vm->lock);
	return NULL;
}

/* Under vm->lock. */
static int vm_throttle_start_locked(struct vm *vm)
{
	pthread_condattr_t attr;

	if (vm->throttle_live)
		return 0;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&vm->throttle_cond, &attr);
	pthread_condattr_destroy(&attr);
	vm->throttle_quit = false;
	int ret = -pthread_create(&vm->throttle_thread, NULL, vm_throttle_thread, vm);
	if (ret < 0) {
		pthread_cond_destroy(&vm->throttle_cond);
		return ret;
	}
	vm->throttle_live = true;
	return 0;
}

int vm_set_throttle(struct vm *vm, unsigned pct)
{
	int ret = 0;

	if (pct > VM_THROTTLE_MAX_PCT)
		return -EINVAL;
	pthread_mutex_lock(&vm->lock);
	if (pct)
		ret = vm_throttle_start_locked(vm);
	if (ret == 0)
		__atomic_store_n(&vm->throttle_pct, pct, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&vm->lock);
	TRACE(vm_throttle, "pct=%u -> %d", pct, ret);
	return ret;
}

unsigned vm_get_throttle(struct vm *vm)
{
	return __atomic_load_n(&vm->throttle_pct, __ATOMIC_RELAXED);
}

void vm_throttle_fini(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	bool live = vm->throttle_live;
	vm->throttle_quit = true;
	if (live)
		pthread_cond_broadcast(&vm->throttle_cond);
	pthread_mutex_unlock(&vm->lock);
	if (!live)
		return;
	pthread_join(vm->throttle_thread, NULL);
	pthread_cond_destroy(&vm->throttle_cond);
	vm->throttle_live = false;
}

void vcpu_throttle_wait(struct vcpu *v)
{
	struct vm *vm = v->vm;
	struct timespec until;

	if (!__atomic_exchange_n(&v->throttle_due, false, __ATOMIC_ACQ_REL))
		return;
	unsigned pct = vm_get_throttle(vm);
	clock_gettime(CLOCK_MONOTONIC, &until);
	throttle_add_ns(&until, VM_THROTTLE_PERIOD_NS / 100 * (long)pct);
	pthread_mutex_lock(&vm->lock);
	if (!vm->pause_req && !vm->stop) {
		/* Only the throttle's kick is pending: the next KVM_RUN may run the guest. */
		__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
		while (pct && !vm->pause_req && !vm->stop &&
		       pthread_cond_clockwait(&vm->cond, &vm->lock, CLOCK_MONOTONIC, &until) !=
			   ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&vm->lock);
}
