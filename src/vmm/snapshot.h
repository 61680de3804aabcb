/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A machine snapshot file: everything needed to continue a paused guest in a fresh VM in
 * another process - RAM, every vCPU's state, the irqchip and the KVM clock. It is the
 * vCPU/RAM half of live migration without the iteration, and what `vmig run --save` and
 * `vmig restore` exchange.
 *
 * Format: header {char magic[8] "VMIGSNAP", u32 version, u32 vcpus, u64 mem_size}, then
 * records {u32 type, u32 zero, u64 length, payload}: CLOCK (struct kvm_clock_data), IRQCHIP
 * (3 x struct kvm_irqchip), VCPU (a vcpu_state blob, one per vCPU), RAM (u64 gpa then whole
 * pages; all-zero pages are left out), END. Everything is length-checked on load; a corrupt
 * or truncated file is refused with a message.
 */
#ifndef VMIG_VMM_SNAPSHOT_H
#define VMIG_VMM_SNAPSHOT_H

#include <stdio.h>

struct machine;
struct machine_config;

/* The VM must be paused (vm_pause()). */
int snapshot_save(struct machine *m, const char *path);
/*
 * Creates a machine sized as the snapshot says (base supplies the console and mark hooks
 * and the dirty mode) and loads the snapshot into it; then machine_start() continues it.
 */
int snapshot_restore(const char *path, const struct machine_config *base, struct machine **out);

/*
 * The machine state without RAM - KVM clock, irqchip, every vCPU - as the same records
 * followed by END: what a migration stream carries once the vCPUs are stopped (use
 * fmemopen()/open_memstream() for a buffer). write: the VM is paused. read: into a machine
 * that has not run; requires the clock, the irqchip and every vCPU exactly once (RAM
 * records are accepted too, and written as they come); -EINVAL on anything malformed, and
 * then no CPU, irqchip or clock state was changed (it is applied only after END).
 */
int snapshot_write_state(struct machine *m, FILE *f);
int snapshot_read_state(struct machine *m, FILE *f);

#endif
