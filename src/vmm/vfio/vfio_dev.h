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
 *   SLOW_HOLD    every doorbell write traps and is kept, in order, in a pending list: the
 *                device sees no new work. vfio_dev_doorbell_release_held() replays the list
 *                (roll-back, or the destination after migration); _take_held() hands it to
 *                the migration stream and _push_held() loads it on the destination.
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
 * The most writes the pending list keeps: a device's largest ring (sdma: 4096 slots), each
 * new descriptor announced once. Past it, a write replaces the last one held (counted in
 * doorbells_coalesced), so a guest hammering the doorbell cannot grow VMM memory.
 */
#define VFIO_DEV_HELD_MAX 4096u

/* One held doorbell write: offset in BAR0, access size, value. */
struct vfio_doorbell_write {
	uint32_t offset;
	uint32_t size;
	uint64_t value;
};
/* Replays held writes to the device in order. Returns how many, or a negative errno. */
int vfio_dev_doorbell_release_held(struct vfio_dev *d);
/* Moves up to max held writes (oldest first) into out; returns how many. */
size_t vfio_dev_doorbell_take_held(struct vfio_dev *d, struct vfio_doorbell_write *out, size_t max);
/*
 * Appends writes to the held list (destination side of a migration), all or nothing:
 * -EINVAL bad entry, -ENOMEM.
 */
int vfio_dev_doorbell_push_held(struct vfio_dev *d, const struct vfio_doorbell_write *w, size_t n);
size_t vfio_dev_doorbell_held_count(struct vfio_dev *d);

struct vfio_dev_stats {
	uint64_t bar_reads, bar_writes;	  /* trapped accesses forwarded */
	uint64_t bar_errors;		  /* forwards the host refused */
	uint64_t doorbells_trapped;	  /* doorbell writes that exited to the VMM */
	uint64_t doorbells_held;	  /* of those, kept in the pending list */
	uint64_t doorbells_coalesced;	  /* of those, replaced the last one (list full) */
	uint64_t doorbells_released;	  /* replayed from the pending list */
	uint64_t fast_arms, fast_disarms; /* ioeventfd (re)registrations */
};
void vfio_dev_get_stats(struct vfio_dev *d, struct vfio_dev_stats *st);

#endif
