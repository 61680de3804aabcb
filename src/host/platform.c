// SPDX-License-Identifier: Apache-2.0
/*
 * The modelled host machine: host memory, the host SMMUv3 and its iommufd instance (made
 * the default one iommufd_open() finds), and one sdma device registered with VFIO.
 */
#include <errno.h>
#include <stdlib.h>

#include "host/dev/sdma.h"
#include "host/vfio.h"
#include "host/iommu/iommufd_host.h"
#include "host/iommu/smmu.h"
#include "host/iommu/smmu_dma.h"
#include "vmig/host_platform.h"

struct host_platform {
	struct host_iommu_system sys;
	struct sdma *sdma;
	uint32_t sdma_sid;
};

static void platform_params(const struct host_platform_config *cfg, struct smmu_params *p)
{
	smmu_params_default(p);
	p->no_stall = cfg->no_stall;
	if (cfg->no_httu)
		p->httu = 0;
}

int host_platform_boot(const struct host_platform_config *cfg, struct host_platform **out)
{
	static const struct host_platform_config defaults;
	struct host_platform *hp = calloc(1, sizeof(*hp));
	struct smmu_params params;
	int ret;

	if (!hp)
		return -ENOMEM;
	if (!cfg)
		cfg = &defaults;
	platform_params(cfg, &params);
	ret = host_iommu_system_create(&hp->sys, &params);
	if (ret < 0) {
		free(hp);
		return ret;
	}
	struct sdma_config dc = {
	    .name = cfg->sdma_name ? cfg->sdma_name : HOST_PLATFORM_SDMA_NAME,
	    .smmu = hp->sys.smmu,
	    .sid = cfg->sdma_psid ? cfg->sdma_psid : HOST_PLATFORM_SDMA_PSID,
	    .no_dma_log = cfg->sdma_no_dma_log,
	    .mig_flags = cfg->sdma_no_precopy ? VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P : 0,
	};
	hp->sdma_sid = dc.sid;
	ret = sdma_create(&dc, &hp->sdma);
	if (ret < 0) {
		iommufd_host_set_default(NULL);
		host_iommu_system_destroy(&hp->sys);
		free(hp);
		return ret;
	}
	*out = hp;
	return 0;
}

void host_platform_shutdown(struct host_platform *hp)
{
	if (!hp)
		return;
	sdma_destroy(hp->sdma);
	iommufd_host_set_default(NULL);
	host_iommu_system_destroy(&hp->sys);
	free(hp);
}

/*
 * A read and a write probed: whether a write would succeed is not in the descriptor's write
 * permission bit alone (dirty tracking keeps writable pages clean until written).
 */
int host_platform_probe_dma(struct host_platform *hp, bool ssv, uint32_t ssid, uint64_t iova,
			    struct host_platform_probe *out)
{
	struct smmu_dma_txn txn = {
	    .sid = hp->sdma_sid, .ssid = ssid, .flags = ssv ? SMMU_DMA_SSV : 0};
	struct smmu_probe_out r, w;
	int ret = smmu_probe(hp->sys.smmu, &txn, iova, false, &r);

	if (ret == 0)
		ret = smmu_probe(hp->sys.smmu, &txn, iova, true, &w);
	if (ret < 0)
		return ret;
	*out = (struct host_platform_probe){.status = r.status == SMMU_DMA_OK	   ? 0
						      : r.status == SMMU_DMA_FAULT ? 1
										   : 2,
					    .event = r.event_id,
					    .ipa = r.ipa,
					    .pa = r.pa,
					    .read = r.status == SMMU_DMA_OK,
					    .write = w.status == SMMU_DMA_OK};
	return 0;
}

void host_platform_get_stats(struct host_platform *hp, struct host_platform_stats *st)
{
	struct iommufd_host_stats hs;
	struct sdma_stats ds;

	iommufd_host_get_stats(hp->sys.host, &hs);
	sdma_get_stats(hp->sdma, &ds);
	*st = (struct host_platform_stats){
	    .smmu_events = hs.events,
	    .vevents = hs.vevents,
	    .faults = hs.faults,
	    .stalls_aborted = hs.stalls_aborted,
	    .msis = hs.msis,
	    .msis_lost = hs.msis_lost,
	    .sdma_completed = ds.completed,
	    .sdma_pending = ds.pending,
	};
}
