/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A passthrough device bound through host/vfio.h: opened by name, bound to the VMM's
 * iommufd context, BAR0 placed in the guest's MMIO space and forwarded to the VFIO region,
 * and its doorbell on one of three paths the migration engine switches at run time:
 *
 *   FAST         a KVM ioeventfd on the doorbell register signals the device's doorbell
 *                eventfd: the guest's write never leaves the kernel. The device then reads
 *                the tail from the shadow location, so this path is only armed while the
 *                guest has enabled the shadow tail (WQ_SHADOW.EN); until then the register
 *                write is trapped and forwarded (it carries the value the device needs).
 *   SLOW_FORWARD every doorbell write traps into the VMM, which forwards it (value and all).
 *   SLOW_HOLD    every BAR0 write traps and is kept, in order, in a held list: the device
 *                sees no new work and no new configuration (a reset or a queue change
 *                forwarded ahead of held doorbells would run them against the wrong
 *                queue). Reads go to the device, which has seen none of the held
 *                writes (and runs on with what it had: HEAD and COMPLETED advance), so a
 *                driver that writes and then polls for the effect waits for the hold to
 *                end. vfio_dev_doorbell_unhold() replays the list and leaves the
 *                hold in one step (roll-back, or the destination after migration);
 *                _copy_held() gives it to the migration stream, which keeps it until the
 *                migration ends, and _push_held() loads it on the destination.
 *
 * Every other BAR0 access traps and is forwarded with its size (4 or 8 bytes).
 */
#ifndef VMIG_VMM_VFIO_VFIO_DEV_H
#define VMIG_VMM_VFIO_VFIO_DEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bus;
struct vm;
struct iommufd_ctx;
struct vfio_dev;

enum vfio_doorbell_path {
	VFIO_DOORBELL_FAST,
	VFIO_DOORBELL_SLOW_FORWARD,
	VFIO_DOORBELL_SLOW_HOLD,
};

struct vfio_dev_config {
	const char *name; /* the host's VFIO device name, e.g. "sdma0" */
	struct iommufd_ctx *ictx;
	struct vm *vm;		      /* for the fast path's ioeventfd (NULL: always trapped) */
	struct bus *bus;	      /* BAR0 is registered here */
	uint64_t bar0_gpa;	      /* where the guest sees BAR0 */
	enum vfio_doorbell_path path; /* initial path */
};

/* Opens, binds to cfg->ictx, registers BAR0 on the bus. -ENODEV no such device, ... */
int vfio_dev_create(const struct vfio_dev_config *cfg, struct vfio_dev **out);
/* Unregisters BAR0, removes the ioeventfd, drops held doorbells, closes the device. */
void vfio_dev_destroy(struct vfio_dev *d);

/* The device id in the iommufd context (for HWPT allocation, vDEVICE, attach). */
uint32_t vfio_dev_iommufd_id(const struct vfio_dev *d);
/* The host's name for it ("sdma0"). */
const char *vfio_dev_name(const struct vfio_dev *d);
/* VFIO_DEVICE_ATTACH_IOMMUFD_PT: *pt_id in, the HWPT actually attached out. */
int vfio_dev_attach(struct vfio_dev *d, uint32_t *pt_id);
struct vfio_device *vfio_dev_vfio(struct vfio_dev *d);

/* Doorbell paths --------------------------------------------------------------------------- */

/*
 * Switches the path (re-reading the device's shadow-tail state, so it is also the call that
 * re-arms the fast path after the device state was loaded on a migration destination).
 * Leaving SLOW_HOLD keeps the held writes (release them explicitly).
 * Returns 0, -ENOMEM (SLOW_HOLD: no room for the held list), or the KVM error of
 * arming/disarming the ioeventfd; the path is then unchanged.
 */
int vfio_dev_doorbell_set_path(struct vfio_dev *d, enum vfio_doorbell_path path);
enum vfio_doorbell_path vfio_dev_doorbell_get_path(struct vfio_dev *d);
/* Whether the ioeventfd is armed right now (FAST requested and the guest uses the shadow). */
bool vfio_dev_doorbell_fast_armed(struct vfio_dev *d);

/*
 * The most writes the held list keeps: far more than a driver writes while one drain runs.
 * A guest that writes more in a loop breaks the hold (see _hold_broken) rather than grow
 * VMM memory or lose a write.
 */
#define VFIO_DEV_HELD_MAX 4096u

/* One held doorbell write: offset in BAR0, access size, value. */
struct vfio_doorbell_write {
	uint32_t offset;
	uint32_t size;
	uint64_t value;
};
/*
 * Replays held writes to the device in order, each as the guest meant it (a doorbell write
 * with the shadow tail on becomes a valueless kick: the device reads the guest's newest
 * tail). Returns how many, or a negative errno (what was not replayed stays held).
 */
int vfio_dev_doorbell_release_held(struct vfio_dev *d);
/*
 * Leaves SLOW_HOLD for path: the held list replayed, then the path switched, under one lock,
 * so a write the guest traps meanwhile comes after every held one.
 */
int vfio_dev_doorbell_unhold(struct vfio_dev *d, enum vfio_doorbell_path path);
/* Copies up to max held writes (oldest first) into out; the list stays. Returns how many. */
size_t vfio_dev_doorbell_copy_held(struct vfio_dev *d, struct vfio_doorbell_write *out, size_t max);
/* Forgets the held list (a destination whose load failed). */
void vfio_dev_doorbell_drop_held(struct vfio_dev *d);
/*
 * Appends writes to the held list (destination side of a migration), all or nothing:
 * -EINVAL an entry outside BAR0, misaligned or not 4/8 bytes; -ENOSPC more than
 * VFIO_DEV_HELD_MAX in all; -ENOMEM.
 */
int vfio_dev_doorbell_push_held(struct vfio_dev *d, const struct vfio_doorbell_write *w, size_t n);
/* Whether the held list overflowed since SLOW_HOLD was entered (and was flushed). */
bool vfio_dev_doorbell_hold_broken(struct vfio_dev *d);
/*
 * 1 when the device has nothing in flight and nothing it would start by itself (no kick it
 * has yet to read, STATUS.IDLE), 0 while it has, -EIO when it does not answer.
 */
int vfio_dev_quiet(struct vfio_dev *d);
size_t vfio_dev_doorbell_held_count(struct vfio_dev *d);

struct vfio_dev_stats {
	uint64_t bar_reads, bar_writes;	  /* trapped accesses forwarded */
	uint64_t bar_errors;		  /* forwards the host refused */
	uint64_t doorbells_trapped;	  /* doorbell writes that exited to the VMM */
	uint64_t doorbells_held;	  /* of those, kept in the held list */
	uint64_t writes_held;		  /* BAR0 writes held, doorbells included */
	uint64_t hold_overflows;	  /* writes that found the held list full */
	uint64_t doorbells_released;	  /* writes replayed from the held list */
	uint64_t fast_arms, fast_disarms; /* ioeventfd (re)registrations */
};
void vfio_dev_get_stats(struct vfio_dev *d, struct vfio_dev_stats *st);

#endif
