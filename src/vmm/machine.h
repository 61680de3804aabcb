/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A whole vmig machine: guest RAM (memfd), the bus, the KVM VM, and the fixed ports of
 * guest_abi.h (console 0xE9, exit 0xF4, checkpoint mark 0xF8). This is what `vmig run`,
 * the tests and later the migration code build on. Devices (vSMMU, VFIO) register on
 * m->bus; MSIs go through vm_signal_msi(m->vm, ...); RAM writes through guest_mem_write().
 */
#ifndef VMIG_VMM_MACHINE_H
#define VMIG_VMM_MACHINE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/bus.h"
#include "vmm/guest_mem.h"
#include "vmm/kvm/vm.h"
#include "vmm/multiboot.h"

struct machine_config {
	uint64_t mem_size;
	unsigned nr_vcpus;
	enum vm_dirty_mode dirty_mode;
	bool mem_prealloc; /* populate all of guest RAM before the guest starts */
	/* One console line (without '\n'); NULL prints "guest: <line>" on stdout. */
	void (*console)(void *opaque, const char *line);
	void *console_opaque;
	/* Called on the vCPU thread for every checkpoint write (after it is recorded). */
	void (*mark)(void *opaque, uint32_t value);
	void *mark_opaque;
};

#define MACHINE_MAX_MARKS 64

struct machine {
	struct machine_config cfg;
	struct guest_mem *mem;
	struct bus *bus;
	struct vm *vm;
	struct multiboot_boot boot;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint32_t marks[MACHINE_MAX_MARKS]; /* distinct checkpoint values seen, oldest first */
	unsigned nr_marks;
	uint64_t mark_writes;
};

int machine_create(const struct machine_config *cfg, struct machine **out);
/* Frees everything (stops the VM first if it runs). */
void machine_destroy(struct machine *m);

/* Loads a Multiboot image and points the boot vCPU at it. */
int machine_load_kernel(struct machine *m, const void *image, size_t size, const char *cmdline);
int machine_start(struct machine *m);

/*
 * Waits until the guest has written checkpoint value `value` (at any time since start).
 * -ETIMEDOUT, or -ESRCH if the VM stopped without writing it.
 */
int machine_wait_mark(struct machine *m, uint32_t value, int timeout_ms);

/*
 * Waits for the VM to stop and returns vmig's exit code for it: the guest's exit status
 * (clamped to 255), VMIG_EXIT_CRASH, 1 on a VMM error; VMIG_EXIT_TIMEOUT after timeout_ms
 * (then the VM is stopped). timeout_ms < 0 waits forever.
 */
int machine_wait(struct machine *m, int timeout_ms);

#endif
