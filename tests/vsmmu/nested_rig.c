// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "host/iommu/iommufd_host.h"
#include "tests/vsmmu/nested_rig.h"

struct nrig {
	struct hostmem *hm;
	struct smmu *smmu;
	struct iommufd_host *host;
	struct iommufd_ctx *ctx;
	int memfd;
	uint8_t *ram;
	size_t ram_size;
	uint32_t ioas, dev, parent;
};

static int nrig_host_setup(struct nrig *r)
{
	struct iommu_hwpt_alloc pa = {.size = sizeof(pa), .flags = IOMMU_HWPT_ALLOC_NEST_PARENT};
	uint64_t iova = 0;
	uint32_t pt;

	if (iommufd_ioas_alloc(r->ctx, &r->ioas) ||
	    iommufd_ioas_map_file(r->ctx, r->ioas, r->memfd, 0, r->ram_size, &iova,
				  IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE |
				      IOMMU_IOAS_MAP_WRITEABLE) ||
	    iommufd_device_bind(r->ctx, NRIG_PSID, &r->dev))
		return -1;
	pa.dev_id = r->dev;
	pa.pt_id = r->ioas;
	if (iommufd_hwpt_alloc(r->ctx, &pa))
		return -1;
	r->parent = pa.out_hwpt_id;
	pt = r->parent;
	return iommufd_device_attach(r->ctx, r->dev, &pt);
}

struct nrig *nrig_create(size_t ram_size)
{
	struct nrig *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->ram_size = ram_size;
	r->hm = hostmem_create();
	r->smmu = r->hm ? smmu_create(r->hm, NULL) : NULL;
	r->host = r->smmu ? iommufd_host_create(r->smmu) : NULL;
	r->memfd = memfd_create("vsmmu-guest-ram", MFD_CLOEXEC);
	if (!r->host || r->memfd < 0 || ftruncate(r->memfd, (off_t)ram_size) ||
	    iommufd_open_host(r->host, &r->ctx))
		abort();
	r->ram = mmap(NULL, ram_size, PROT_READ | PROT_WRITE, MAP_SHARED, r->memfd, 0);
	if (r->ram == MAP_FAILED || nrig_host_setup(r))
		abort();
	return r;
}

void nrig_destroy(struct nrig *r)
{
	iommufd_close(r->ctx);
	iommufd_host_destroy(r->host);
	smmu_destroy(r->smmu);
	hostmem_destroy(r->hm);
	munmap(r->ram, r->ram_size);
	close(r->memfd);
	free(r);
}

uint8_t *nrig_ram(struct nrig *r)
{
	return r->ram;
}

struct iommufd_ctx *nrig_ctx(struct nrig *r)
{
	return r->ctx;
}

uint32_t nrig_dev(struct nrig *r)
{
	return r->dev;
}

uint32_t nrig_parent(struct nrig *r)
{
	return r->parent;
}

static enum nrig_dma nrig_status(int rc, const struct smmu_dma_result *res)
{
	if (rc)
		return NRIG_BAD;
	switch (res->status) {
	case SMMU_DMA_OK:
		return NRIG_OK;
	case SMMU_DMA_FAULT:
		return NRIG_FAULT;
	case SMMU_DMA_ABORTED:
		return NRIG_ABORTED;
	case SMMU_DMA_BUS_ERROR:
		return NRIG_BUS_ERROR;
	case SMMU_DMA_STALLED:
		return NRIG_STALLED;
	}
	return NRIG_BAD;
}

enum nrig_dma nrig_dma_write(struct nrig *r, bool ssv, uint32_t ssid, uint64_t iova,
			     const void *buf, size_t len, uint16_t *stag)
{
	struct smmu_dma_txn txn = {.sid = NRIG_PSID, .ssid = ssid, .flags = ssv ? SMMU_DMA_SSV : 0};
	struct smmu_dma_result res;
	int rc = smmu_dma_write(r->smmu, &txn, iova, buf, len, &res);

	if (stag)
		*stag = res.stag;
	return nrig_status(rc, &res);
}

enum nrig_dma nrig_dma_write_blocking(struct nrig *r, uint64_t iova, const void *buf, size_t len)
{
	struct smmu_dma_txn txn = {.sid = NRIG_PSID, .flags = SMMU_DMA_BLOCK_ON_STALL};
	struct smmu_dma_result res;

	return nrig_status(smmu_dma_write(r->smmu, &txn, iova, buf, len, &res), &res);
}

enum nrig_dma nrig_dma_read(struct nrig *r, uint64_t iova, void *buf, size_t len)
{
	struct smmu_dma_txn txn = {.sid = NRIG_PSID};
	struct smmu_dma_result res;

	return nrig_status(smmu_dma_read(r->smmu, &txn, iova, buf, len, &res), &res);
}

int nrig_dma_wait(struct nrig *r, uint16_t stag)
{
	return smmu_dma_wait(r->smmu, NRIG_PSID, stag);
}

void nrig_host_stats(struct nrig *r, uint64_t *events, uint64_t *vevents, uint64_t *faults)
{
	struct iommufd_host_stats st;

	iommufd_host_get_stats(r->host, &st);
	*events = st.events;
	*vevents = st.vevents;
	*faults = st.faults;
}
