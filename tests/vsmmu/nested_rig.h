/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The modelled host for the nested-bridge tests: host SMMU, iommufd instance and context,
 * a memfd as guest RAM (the VMM's mapping returned by nrig_ram), an IOAS mapping all of it
 * at IOVA = GPA, a bound device with a physical StreamID, a NEST_PARENT stage 2 it is
 * attached to; and the device's DMA through the host SMMU. Kept apart from the vSMMU's own
 * headers (the host's register names are its own).
 */
#ifndef VMIG_TESTS_VSMMU_NESTED_RIG_H
#define VMIG_TESTS_VSMMU_NESTED_RIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "host/iommufd.h"

#define NRIG_PSID 0x105 /* the device's physical StreamID */

enum nrig_dma { NRIG_OK, NRIG_FAULT, NRIG_ABORTED, NRIG_BUS_ERROR, NRIG_STALLED, NRIG_BAD };

struct nrig;

struct nrig *nrig_create(size_t ram_size);
void nrig_destroy(struct nrig *r);
uint8_t *nrig_ram(struct nrig *r);
struct iommufd_ctx *nrig_ctx(struct nrig *r);
uint32_t nrig_dev(struct nrig *r);
uint32_t nrig_parent(struct nrig *r);

/* Device DMA (no blocking on stalls: *stag is set when NRIG_STALLED). */
enum nrig_dma nrig_dma_write(struct nrig *r, bool ssv, uint32_t ssid, uint64_t iova,
			     const void *buf, size_t len, uint16_t *stag);
/* The same, blocking on a stall until the guest answers (the device's block-on-fault). */
enum nrig_dma nrig_dma_write_blocking(struct nrig *r, uint64_t iova, const void *buf, size_t len);
enum nrig_dma nrig_dma_read(struct nrig *r, uint64_t iova, void *buf, size_t len);
/* 0 when the stall was resumed with retry, -ECANCELED when it was failed. */
int nrig_dma_wait(struct nrig *r, uint16_t stag);
/* Events the host's SMMU reported and how many reached a vEVENTQ. */
void nrig_host_stats(struct nrig *r, uint64_t *events, uint64_t *vevents, uint64_t *faults);

#endif
