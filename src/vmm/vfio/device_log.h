/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The device-log strategy of device-DMA dirty tracking (MIGRATION.md): the device's own DMA
 * log (VFIO DMA logging) over the IOVA aperture the vIOMMU reported at start of day, and
 * each logged IOVA turned into guest-physical pages through every stage-1 translation that
 * could have been live since the previous harvest: the guest's tables now and at the last
 * harvest, and every translation that left the tables and whose invalidation has not yet
 * reached the host (device_log.c). A log has no PASID: every context descriptor of the
 * stream is used. Table pages of CDs that let the SMMU update access/dirty bits are marked
 * at every harvest (the device's log cannot see those writes). Every call but
 * device_log_supported() must hold the vSMMU lock.
 */
#ifndef VMIG_VMM_VFIO_DEVICE_LOG_H
#define VMIG_VMM_VFIO_DEVICE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct migration;
struct vfio_device;
struct vsmmu;
struct device_log;

/* Whether the device offers DMA logging (VFIO_DEVICE_FEATURE_PROBE). */
bool device_log_supported(struct vfio_device *vdev);
/*
 * DMA_LOGGING_START over [0, 2^aperture_bits) and the first record. mem: guest RAM (a
 * stream in bypass has IOVA = GPA over all of it). -errno.
 */
struct guest_mem;
int device_log_start(struct vfio_device *vdev, struct vsmmu *vs, uint32_t vsid,
		     const struct guest_mem *mem, unsigned aperture_bits, struct device_log **out);
/*
 * Reads and clears the log, marks the pages it names dirty in mig (unless blind). cmds/n:
 * what is about to be forwarded to the host (a pre-forward harvest); NULL/0 for a harvest
 * of the migration's own. current_only:
 * translate with today's tables alone (test seam, the negative control). *pages: 4 KiB
 * pages marked. -errno: the log is broken (-E2BIG: the guest's tables exceed the bounds);
 * never retry.
 */
int device_log_harvest(struct device_log *l, struct migration *mig, bool blind, bool current_only,
		       const uint64_t (*cmds)[2], size_t n, uint64_t *pages);
void device_log_stop(struct device_log *l);
/* Benchmarks: fn(arg) runs in every harvest right after the log was read and cleared. */
void device_log_on_read(struct device_log *l, void (*fn)(void *), void *arg);

#endif
