/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test and benchmark fixture for the sdma device: host memory with a memfd "guest RAM",
 * the host SMMU under iommufd, the device bound and attached through vfio.h either to the
 * IOAS (stage 2 only: IOVA = GPA) or to a nested HWPT whose stage-1 tables live in guest
 * RAM and map IOVA = GPA + FX_S1_OFFSET. An MSI window sits at GPA FX_MSI_GPA.
 */
#ifndef VMIG_TESTS_HOST_DEV_SDMA_FX_H
#define VMIG_TESTS_HOST_DEV_SDMA_FX_H

#include "host/dev/sdma.h"
#include "hw/sdma_regs.h"
#include "host/iommu/iommufd_host.h"
#include "host/iommu/pgtable_build.h"
#include "host/vfio.h"

#include <stdbool.h>
#include <stdint.h>

#define FX_RAM_SIZE    (64ull << 20)
#define FX_S1_GPA      0x100000ull /* guest stage-1 tables and CD: 1 MiB at 1 MiB */
#define FX_RING_GPA    0x200000ull /* the work queue */
#define FX_COMPL_GPA   0x300000ull /* completion records, one per ring slot */
#define FX_SHADOW_GPA  0x3ff000ull /* shadow tail */
#define FX_DATA_GPA    0x400000ull /* data buffers from here to the end of RAM */
#define FX_MSI_GPA     0xfee00000ull
#define FX_S1_OFFSET   0x100000000ull
#define FX_MSI_DATA    0x4321u
#define FX_PASID       3u
#define FX_PASID_SHIFT (8ull << 20)

enum fx_mode { FX_STAGE2, FX_NESTED };

struct fx_opts {
	enum fx_mode mode;
	bool stall;	  /* nested: CD.S=1 and a fault queue (block on fault) */
	bool s1_sparse;	  /* nested: map only ring/compl/shadow/MSI; data pages by fx_s1_map */
	bool pasid;	  /* nested: a 4-entry CD table; PASID FX_PASID's tables put the data
			   * window at GPA + FX_PASID_SHIFT (untagged traffic uses CD 0) */
	uint32_t sid;	  /* 0 = 0x10 */
	const char *name; /* 0 = "sdma-test" */
	struct sdma_config dev; /* smmu, sid, name filled in by the fixture */
};

struct fx {
	struct fx_opts o;
	struct hostmem *hm;
	struct smmu *smmu;
	struct iommufd_host *host;
	struct iommufd_ctx *ctx;
	int memfd;
	uint8_t *ram; /* the VMM's mapping of guest RAM */
	uint32_t ioas, dev_id, pt;
	int msi_fd, fault_fd;
	struct pgt_buf gbuf;
	struct pgt_mem gmem;
	struct pgtable s1, s1p; /* CD 0 and, with o.pasid, CD FX_PASID */
	uint32_t parent, viommu, vdev, nested, fault_id;
	struct sdma *sdma;
	struct vfio_device *vfio;
	uint32_t ring_log2, tail;
};

/* Full host + device; a second device may share the host (fx_add_device). */
void fx_init(struct fx *f, const struct fx_opts *o);
void fx_fini(struct fx *f);
/* Another device instance on the same host, RAM and translation as f (same IOAS / nest). */
void fx_add_device(struct fx *f, struct fx *g, const struct fx_opts *o);
void fx_remove_device(struct fx *g);

uint64_t fx_iova(const struct fx *f, uint64_t gpa);
void fx_s1_map(struct fx *f, uint64_t gpa, uint64_t len);
void fx_s1_unmap(struct fx *f, uint64_t gpa, uint64_t len);

uint64_t fx_reg_read(struct fx *f, uint32_t off);
void fx_reg_write(struct fx *f, uint32_t off, uint64_t v);
/* Programs ring (2^log2 slots), MSI, interrupts, and enables the queue. */
void fx_ring_setup(struct fx *f, unsigned log2);
/* Completion address (IOVA) of ring slot idx and the record in RAM. */
uint64_t fx_compl_iova(const struct fx *f, uint32_t idx);
struct sdma_compl *fx_compl(struct fx *f, uint32_t idx);
/* Writes d into the next slot (completion record cleared, CRAV set), returns its index;
 * ring=true also writes TAIL (the doorbell). */
uint32_t fx_put(struct fx *f, struct sdma_desc d, bool ring);
void fx_ring(struct fx *f);
/* Polls the completion record of idx; false on timeout. */
bool fx_wait(struct fx *f, uint32_t idx, unsigned timeout_ms);

int fx_set_state(struct fx *f, uint32_t state, int *data_fd);
uint32_t fx_get_state(struct fx *f);

#endif
