/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The KVM virtual machine: VM fd, in-kernel irqchip (LAPIC in x2APIC-capable mode, IOAPIC,
 * PIC), memslots over guest_mem, vCPU threads and their run loop, pause/resume, MSI
 * injection, ioeventfds, dirty logging (bitmap or ring) and the VM-wide state (KVM clock,
 * irqchip). vCPU state lives in vcpu_state.h.
 *
 * Life cycle: vm_open() -> vm_attach_memory() -> (load the guest, vcpu_set_*) ->
 * vm_start() -> vm_pause()/vm_resume()... -> vm_wait_stop() -> vm_close().
 */
#ifndef VMIG_VMM_KVM_VM_H
#define VMIG_VMM_KVM_VM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bus;
struct guest_mem;

/* Process exit codes for VMM-side failures (guest exit statuses pass through unchanged). */
#define VMIG_EXIT_USAGE	  64 /* bad command line */
#define VMIG_EXIT_NOINPUT 66 /* a file that must exist does not */
#define VMIG_EXIT_NOKVM	  69 /* /dev/kvm missing or inaccessible, or a capability missing */
#define VMIG_EXIT_CRASH	  70 /* guest crashed (triple fault, KVM internal error, entry failure) */
#define VMIG_EXIT_TIMEOUT 124

enum vm_dirty_mode {
	VM_DIRTY_AUTO,	 /* the ring when KVM offers it, else the bitmap */
	VM_DIRTY_BITMAP, /* KVM_GET_DIRTY_LOG (+ KVM_CLEAR_DIRTY_LOG under manual protect) */
	VM_DIRTY_RING,	 /* KVM_CAP_DIRTY_LOG_RING(_ACQ_REL); -ENOTSUP if absent */
};

struct vm_config {
	unsigned nr_vcpus;
	enum vm_dirty_mode dirty_mode;
	unsigned ring_entries; /* per vCPU, power of two; 0 = default (16384) */
};

enum vm_stop_reason {
	VM_STOP_NONE,	    /* still running */
	VM_STOP_GUEST_EXIT, /* the guest wrote its exit port; exit_status is its value */
	VM_STOP_CRASH,	    /* SHUTDOWN, internal error, failed entry: a report was printed */
	VM_STOP_ERROR,	    /* a VMM-side failure on a vCPU thread */
	VM_STOP_REQUEST,    /* vm_request_stop() from outside */
};

#define VM_MAX_SLOTS 4

#define VM_MSI_GSI_BASE	  24u /* the first GSI above the IOAPIC's pins */
#define VM_MAX_MSI_ROUTES 256u

struct vm_msi_route {
	bool used;
	uint64_t addr;
	uint32_t data;
};

struct vm_slot {
	uint32_t id;
	uint64_t gpa, size;
	void *host;
	uint32_t flags;
	uint64_t *log; /* scratch for KVM_GET_DIRTY_LOG: one bit per page of the slot */
};

struct vcpu {
	struct vm *vm;
	unsigned index;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	pthread_t thread;
	bool thread_live;
	bool io_settled;	    /* no exit awaits completion by a KVM_RUN (safe to park) */
	struct kvm_dirty_gfn *ring; /* dirty ring mapping, NULL in bitmap mode */
	uint32_t ring_next;	    /* next ring entry to collect */
	uint64_t exits;		    /* userspace exits handled (statistics) */
	bool throttle_due;	    /* kicked by the throttle: sleep before the next KVM_RUN */
	int tid;		    /* kernel thread id once running (control socket) */
};

struct vm {
	int kvm_fd, vm_fd;
	unsigned nr_vcpus;
	struct vcpu *vcpus;
	struct guest_mem *mem;
	struct bus *bus;
	struct vm_slot slots[VM_MAX_SLOTS];
	unsigned nr_slots;
	struct kvm_cpuid2 *cpuid; /* supported CPUID, x2APIC and hypervisor bits on */
	uint32_t xsave_size;	  /* bytes of struct kvm_xsave for KVM_GET_XSAVE2 */
	uint32_t tsc_khz;	  /* the vCPUs' TSC rate (KVM_GET_TSC_KHZ); 0 if unknown */
	uint32_t *msr_index;	  /* MSRs saved with the vCPU state (read and write back) */
	unsigned nr_msrs;

	/* Dirty tracking. */
	bool manual_protect, initially_set;
	bool ring;
	uint32_t ring_entries;
	bool logging;
	bool dirty_broken;	    /* a harvest failed part-way: -EIO until the log is restarted */
	pthread_mutex_t dirty_lock; /* one harvester or ring collector at a time */
	uint64_t *ring_dirty;	    /* pages collected from rings, not yet harvested */

	/* MSI routes for irqfds (GSIs from VM_MSI_GSI_BASE), under lock. */
	struct vm_msi_route *msi_routes;
	unsigned nr_msi_routes;

	/* Run control, under lock. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool started;
	bool pause_req;	       /* pause_owners != 0, read without the lock by vCPU threads */
	unsigned pause_owners; /* VM_PAUSE_* bits: who holds the vCPUs paused */
	unsigned parked;       /* vCPU threads parked (paused or finished) */
	unsigned live;	       /* vCPU threads not yet finished */
	bool stop;
	enum vm_stop_reason reason;
	int exit_status;

	/* Throttling (throttle.c); the thread and its flags under lock. */
	unsigned throttle_pct; /* 0..99, read without the lock */
	pthread_t throttle_thread;
	pthread_cond_t throttle_cond; /* CLOCK_MONOTONIC; only while throttle_live */
	bool throttle_live, throttle_quit;
};

/*
 * Opens /dev/kvm and creates the VM with its irqchip and vCPUs. Errors: -ENOENT or
 * -EACCES (/dev/kvm), -ENOTSUP (a capability is missing; logged by name), others.
 */
int vm_open(const struct vm_config *cfg, struct vm **out);
/* Requests a stop if running, joins the vCPU threads and frees everything. */
void vm_close(struct vm *vm);

/* Memslots for every region of mem (the VM does not own mem). Once, before vm_start(). */
int vm_attach_memory(struct vm *vm, struct guest_mem *mem);
void vm_set_bus(struct vm *vm, struct bus *bus);

/* Starts one thread per vCPU. The BSP's registers must be set (or state restored). */
int vm_start(struct vm *vm);
/*
 * Who holds the vCPUs paused. Each owner pauses and resumes for itself: the vCPUs run
 * only while nobody holds them, so a QMP `cont` during a migration's switchover (or the
 * migration's roll-back after a user's `stop`) cannot restart vCPUs another owner stopped.
 */
enum vm_pause_owner {
	VM_PAUSE_USER = 1u << 0,      /* QMP stop/cont, --qmp-wait, the CLI */
	VM_PAUSE_MIGRATION = 1u << 1, /* the migration engine's switchover */
	VM_PAUSE_INTERNAL = 1u << 2,  /* tests and benchmarks */
};

/*
 * Stops every vCPU outside KVM_RUN with its pending I/O completed (so its state can be
 * read consistently) and returns once all have acknowledged. Pausing twice for the same
 * owner is one pause. Callable before vm_start(). -EDEADLK from a vCPU thread (a device
 * handler): it cannot wait for itself.
 */
int vm_pause(struct vm *vm, unsigned owner);
/* Drops owner's hold; the vCPUs run again when no owner holds them. */
void vm_resume(struct vm *vm, unsigned owner);
bool vm_is_paused(struct vm *vm);
/* The VM_PAUSE_* bits held now. */
unsigned vm_pause_owners(struct vm *vm);

/*
 * Throttling for auto-converge: each vCPU spends pct% (0..99; 0 = off) of every 10 ms
 * period asleep outside KVM_RUN, kicked there by a per-VM thread (started by the first
 * non-zero pct, ended by vm_close()), so even a guest that never exits is slowed down.
 * Independent of vm_pause(): a pause or stop ends a throttle sleep at once, and the
 * percentage survives a pause. -EINVAL above 99.
 */
int vm_set_throttle(struct vm *vm, unsigned pct);
unsigned vm_get_throttle(struct vm *vm);

/* Ends the run (first reason wins); callable from vCPU threads (device handlers). */
void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, int status);
/* Waits for a stop; timeout_ms < 0 waits forever. -ETIMEDOUT. Does not join threads. */
int vm_wait_stop(struct vm *vm, int timeout_ms, enum vm_stop_reason *reason, int *status);

/* Interrupts. addr/data as a device would write them (x2APIC destination in addr_hi). */
int vm_signal_msi(struct vm *vm, uint64_t addr, uint32_t data);

/*
 * irqfd for MSIs: writing to the eventfd injects the MSI (addr, data) inside KVM without
 * waking the VMM. Returns the GSI it routed (> 0) for vm_irqfd_del_msi(), or a negative
 * errno. The GSI routing table keeps KVM's default irqchip routes (GSI 0-23).
 */
int vm_irqfd_add_msi(struct vm *vm, uint64_t addr, uint32_t data, int fd);
int vm_irqfd_del_msi(struct vm *vm, int gsi, int fd);

/* Doorbells: a guest write to [addr, addr + len) signals fd without a userspace exit. */
struct vm_ioeventfd {
	uint64_t addr;
	uint32_t len; /* 0 (any length; MMIO only), 1, 2, 4 or 8 */
	bool pio;
	bool match; /* only a write of exactly datamatch signals */
	uint64_t datamatch;
	int fd; /* an eventfd */
};
int vm_ioeventfd_add(struct vm *vm, const struct vm_ioeventfd *io);
int vm_ioeventfd_del(struct vm *vm, const struct vm_ioeventfd *io);

/*
 * Dirty logging over all memslots. vm_dirty_log_start() counts every RAM page as dirty
 * (the first harvest reports them all: KVM_DIRTY_LOG_INITIALLY_SET in bitmap mode, the
 * same by construction in ring mode), which is what a migration's first pass wants anyway.
 */
int vm_dirty_log_start(struct vm *vm);
int vm_dirty_log_stop(struct vm *vm);
/*
 * Harvests and re-arms: ORs every page dirtied since the previous harvest into bitmap
 * (indexed by GPA >> 12, vm_dirty_pages(vm) bits; the hole is never set) - pages KVM saw
 * vCPUs write and pages the VMM wrote through guest_mem_write(). Returns the number of
 * bits it set, or a negative errno. Under manual protect the re-arm is done in chunks of
 * VM_DIRTY_CLEAR_CHUNK pages so the guest is never held on the MMU lock for long.
 * Safe while vCPUs run; copy page contents only after the harvest that reported them.
 *
 * A harvest that fails part-way has already put every page it fetched into bitmap, but
 * KVM's log is then half re-armed: the harvest returns its error and every later one
 * -EIO (a migration must fail, never retry) until vm_dirty_log_stop() and
 * vm_dirty_log_start() (which counts every page as dirty again).
 */
#define VM_DIRTY_CLEAR_CHUNK (32u * 1024u) /* pages: 128 MiB */
long vm_dirty_harvest(struct vm *vm, uint64_t *bitmap);
uint64_t vm_dirty_pages(const struct vm *vm);
const char *vm_dirty_mode_name(const struct vm *vm);

/* Test seam: when non-zero, the n-th KVM_CLEAR_DIRTY_LOG from now fails with -EIO. */
extern unsigned vm_dirty_fail_clear_nth;

/* Called by vCPU threads on KVM_EXIT_DIRTY_RING_FULL and by the harvest. */
void vm_dirty_ring_collect(struct vm *vm);

/* VM-wide state. */
int vm_clock_get(struct vm *vm, struct kvm_clock_data *clock);
int vm_clock_set(struct vm *vm, const struct kvm_clock_data *clock);

/*
 * One clock reference at the stop, taken once with the VM paused: the KVM clock and every
 * vCPU's TSC against one (host realtime, host TSC) pair. vm_clock_state_set() advances
 * both by the real time that passed since the save (so the guest's time neither goes back
 * nor stalls by the downtime) and leaves the vCPUs' TSCs in step with each other.
 *
 * Order on load: vcpu_state_set() on every vCPU FIRST, then vm_clock_state_set(): the
 * IA32_TSC in each vCPU state is a per-vCPU reading from a different moment, and the later
 * call overwrites it. Fixed size, plain data: it travels as is, checked for its exact size
 * and version. -EPROTO if this host's TSC rate differs (vmig does not scale TSCs).
 */
#define VM_CLOCK_STATE_VERSION 1u
#define VM_CLOCK_MAX_VCPUS     64u /* VMIG_MAX_VCPUS */
enum vm_clock_tsc_source {
	VM_CLOCK_TSC_OFFSET_ATTR = 1, /* KVM_VCPU_TSC_OFFSET: exact */
	VM_CLOCK_TSC_MSR = 2,	      /* IA32_TSC read back-to-back against host TSC reads */
};
struct vm_clock_state {
	uint32_t version; /* VM_CLOCK_STATE_VERSION */
	uint32_t nr_vcpus;
	uint32_t kvm_flags;   /* what KVM_GET_CLOCK reported (KVM_CLOCK_*) */
	uint32_t tsc_source;  /* enum vm_clock_tsc_source used at the save */
	uint64_t clock_ns;    /* the KVM clock */
	uint64_t realtime_ns; /* host CLOCK_REALTIME at clock_ns (KVM's own when it gave one) */
	uint64_t host_tsc;    /* host TSC at the same moment */
	uint32_t tsc_khz;     /* the guest TSC rate */
	uint32_t reserved;
	uint64_t guest_tsc[VM_CLOCK_MAX_VCPUS]; /* each vCPU's TSC at host_tsc */
};
int vm_clock_state_get(struct vm *vm, struct vm_clock_state *st);
int vm_clock_state_set(struct vm *vm, const struct vm_clock_state *st);

#define VM_NR_IRQCHIPS 3 /* PIC master, PIC slave, IOAPIC */
int vm_irqchip_get(struct vm *vm, struct kvm_irqchip chips[VM_NR_IRQCHIPS]);
int vm_irqchip_set(struct vm *vm, const struct kvm_irqchip chips[VM_NR_IRQCHIPS]);

/* Multiboot entry state on a vCPU: 32-bit flat protected mode, paging off. */
int vcpu_set_boot_state(struct vcpu *vcpu, uint32_t entry, uint32_t eax, uint32_t ebx);
/* Prints registers and the exit to stderr (crash report). */
void vcpu_report(struct vcpu *vcpu, const char *why);

/* Internal to src/vmm/kvm. */
int vm_slot_update(struct vm *vm, struct vm_slot *slot);
int vm_setup_msrs(struct vm *vm);
int vcpu_init(struct vm *vm, struct vcpu *vcpu, unsigned index);
void vcpu_fini(struct vcpu *vcpu);
void vm_kick_all_locked(struct vm *vm);
void vm_throttle_fini(struct vm *vm);
void vcpu_throttle_wait(struct vcpu *vcpu);

#endif
