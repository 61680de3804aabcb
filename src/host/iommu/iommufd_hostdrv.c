// SPDX-License-Identifier: Apache-2.0
/*
 * The host SMMU driver under iommufd: owns the 2-level stream table, VMIDs, command
 * issue (every batch ends in CMD_SYNC), and the event-queue interrupt that routes events
 * to vEVENTQs and stalls to fault queues.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/bitmap.h"
#include "common/log.h"
#include "common/trace.h"
#include "host/iommu/iommufd_internal.h"

static pthread_mutex_t default_lock = PTHREAD_MUTEX_INITIALIZER;
static struct iommufd_host *default_host;

/* ---- stream table ---- */

static int ifd_l2_ensure(struct iommufd_host *h, uint32_t l1)
{
	unsigned pages = (64u << h->split) / 4096;
	uint64_t pa, desc;

	if (h->l2_pa[l1])
		return 0;
	int rc = hostmem_pages_alloc(h->hm, pages, &pa);
	if (rc)
		return rc;
	h->l2_pa[l1] = pa;
	desc = FVAL(STRTAB_L1_SPAN, h->split + 1) | (pa & FMASK(STRTAB_L1_L2PTR));
	hostmem_write(h->hm, h->l1_pa + l1 * 8ull, &desc, 8);
	return 0;
}

/* Writes an STE (dword 0 last, atomically) and makes the SMMU forget the old one. */
int ifd_ste_write(struct iommufd_host *h, uint32_t sid, const uint64_t ste[8])
{
	pthread_mutex_lock(&h->lock);
	int rc = ifd_l2_ensure(h, sid >> h->split);
	if (!rc) {
		uint64_t pa = h->l2_pa[sid >> h->split] + (sid & ((1u << h->split) - 1)) * 64ull;
		uint64_t *p = hostmem_ptr(h->hm, pa, 64);
		for (int i = 7; i >= 0; i--)
			__atomic_store_n(&p[i], ste[i], __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&h->lock);
	if (!rc) {
		ifd_cmd(h, smmu_cmd_cfgi_ste(sid));
		ifd_sync(h);
	}
	return rc;
}

/* Abort STE: V=1, Config=abort (a bound device that is not attached is blocked). */
void ifd_ste_clear(struct iommufd_host *h, uint32_t sid)
{
	uint64_t ste[8] = {FVAL(STE0_V, 1) | FVAL(STE0_CONFIG, STE_CFG_ABORT)};
	ifd_ste_write(h, sid, ste);
}

void ifd_cmd(struct iommufd_host *h, struct smmu_cmd cmd)
{
	if (smmu_cmd_one(h->smmu, cmd))
		log_error("host smmu: illegal command %#llx", (unsigned long long)cmd.dw[0]);
}

void ifd_sync(struct iommufd_host *h)
{
	ifd_cmd(h, smmu_cmd_sync());
}

/* ---- VMIDs ---- */

int ifd_vmid_alloc(struct iommufd_host *h, uint16_t *vmid)
{
	pthread_mutex_lock(&h->lock);
	size_t v = bitmap_find_next_clear(h->vmids, 65536, 1);
	if (v < 65536)
		bitmap_set(h->vmids, v);
	pthread_mutex_unlock(&h->lock);
	if (v >= 65536)
		return -ENOSPC;
	*vmid = (uint16_t)v;
	return 0;
}

void ifd_vmid_free(struct iommufd_host *h, uint16_t vmid)
{
	pthread_mutex_lock(&h->lock);
	bitmap_clear(h->vmids, vmid);
	pthread_mutex_unlock(&h->lock);
}

/* ---- event routing ---- */

void ifd_route_add(struct iommufd_host *h, struct ifd_device *dev)
{
	pthread_mutex_lock(&h->route_lock);
	dev->route_next = h->routes;
	h->routes = dev;
	pthread_mutex_unlock(&h->route_lock);
}

void ifd_route_del(struct iommufd_host *h, struct ifd_device *dev)
{
	pthread_mutex_lock(&h->route_lock);
	for (struct ifd_device **pp = &h->routes; *pp; pp = &(*pp)->route_next) {
		if (*pp == dev) {
			*pp = dev->route_next;
			break;
		}
	}
	pthread_mutex_unlock(&h->route_lock);
}

static struct ifd_device *ifd_route_find(struct iommufd_host *h, uint32_t sid)
{
	for (struct ifd_device *d = h->routes; d; d = d->route_next)
		if (d->sid == sid)
			return d;
	return NULL;
}

/* The events Linux forwards to a vEVENTQ (stage-1 / configuration ones). */
static bool ifd_event_forwardable(uint8_t id)
{
	switch (id) {
	case EVT_C_BAD_STE:
	case EVT_F_STREAM_DISABLED:
	case EVT_C_BAD_SUBSTREAMID:
	case EVT_C_BAD_CD:
	case EVT_F_TRANSLATION:
	case EVT_F_ADDR_SIZE:
	case EVT_F_ACCESS:
	case EVT_F_PERMISSION:
		return true;
	default:
		return false;
	}
}

static struct ifd_hwpt_nested *ifd_dev_nested(struct ifd_device *dev)
{
	if (!dev || !dev->attached || dev->attached->type != IFD_HWPT_NESTED)
		return NULL;
	return (struct ifd_hwpt_nested *)dev->attached;
}

/*
 * Forwards a stage-1 / configuration event to the guest's vEVENTQ (with its vSID). A stall
 * nobody will answer goes there as a plain (terminated) fault. Under route_lock.
 */
static void ifd_event_to_guest(struct iommufd_host *h, struct ifd_device *dev,
			       struct ifd_hwpt_nested *hn, const struct smmu_event *ev)
{
	struct smmu_event plain = *ev;

	if (!hn || FGET(ev->dw[1], EVT1_S2) || !ifd_event_forwardable(smmu_event_id(ev)) ||
	    !hn->viommu->veventq || !dev->vdev)
		return;
	plain.dw[1] &= ~(FMASK(EVT1_STALL) | FMASK(EVT1_STAG));
	ifd_veventq_push(h, hn->viommu->veventq, dev->vdev->virt_id, &plain);
}

/* The event-queue interrupt: runs on the faulting DMA thread. */
static void ifd_on_event(void *opaque, const struct smmu_event *ev)
{
	struct iommufd_host *h = opaque;
	uint32_t sid = (uint32_t)FGET(ev->dw[0], EVT0_SID);
	bool stall = FGET(ev->dw[1], EVT1_STALL), s2 = FGET(ev->dw[1], EVT1_S2);
	bool answered = false;

	__atomic_fetch_add(&h->stats.events, 1, __ATOMIC_RELAXED);
	pthread_mutex_lock(&h->route_lock);
	struct ifd_device *dev = ifd_route_find(h, sid);
	struct ifd_hwpt_nested *hn = ifd_dev_nested(dev);
	if (stall)
		answered = hn && hn->fault && !s2 && ifd_fault_deliver(h, hn->fault, dev, ev);
	if (!answered)
		ifd_event_to_guest(h, dev, hn, ev);
	pthread_mutex_unlock(&h->route_lock);
	TRACE(iommufd_event, "sid=%#x id=%#x stall=%d s2=%d", sid, smmu_event_id(ev), stall, s2);
	if (stall && !answered) {
		/* Nobody can answer it: fail the transaction rather than hang the device. */
		__atomic_fetch_add(&h->stats.stalls_aborted, 1, __ATOMIC_RELAXED);
		ifd_cmd(h, smmu_cmd_resume(sid, (uint16_t)FGET(ev->dw[1], EVT1_STAG),
					   CMD_RESUME_ABORT));
	}
}

/* ---- instance ---- */

struct iommufd_host *iommufd_host_create(struct smmu *smmu)
{
	uint32_t idr[8];
	struct iommufd_host *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->smmu = smmu;
	h->hm = smmu_hostmem(smmu);
	smmu_read_idr(smmu, idr);
	h->sid_bits = (unsigned)FGET(idr[1], IDR1_SIDSIZE);
	h->split = MIN(IFD_SPLIT, h->sid_bits);
	pthread_mutex_init(&h->lock, NULL);
	pthread_mutex_init(&h->route_lock, NULL);
	size_t nl1 = 1ull << (h->sid_bits - h->split);
	h->l2_pa = calloc(nl1, sizeof(*h->l2_pa));
	h->vmids = bitmap_alloc(65536);
	if (!h->l2_pa || !h->vmids || nl1 * 8 > 512 * 4096 ||
	    hostmem_pages_alloc(h->hm, (unsigned)MAX(1, nl1 * 8 / 4096), &h->l1_pa) ||
	    smmu_set_strtab(smmu, h->l1_pa,
			    (uint32_t)(FVAL(STRTAB_CFG_LOG2SIZE, h->sid_bits) |
				       FVAL(STRTAB_CFG_SPLIT, h->split) |
				       FVAL(STRTAB_CFG_FMT, STRTAB_FMT_2LVL)))) {
		free(h->l2_pa);
		free(h->vmids);
		free(h);
		return NULL;
	}
	bitmap_set(h->vmids, 0); /* VMID 0 stays unused */
	smmu_set_event_handler(smmu, ifd_on_event, h);
	smmu_set_enable(smmu, true);
	return h;
}

void iommufd_host_destroy(struct iommufd_host *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&default_lock);
	if (default_host == h)
		default_host = NULL;
	pthread_mutex_unlock(&default_lock);
	ifd_svc_stop(h);
	smmu_set_enable(h->smmu, false);
	smmu_set_event_handler(h->smmu, NULL, NULL);
	size_t nl1 = 1ull << (h->sid_bits - h->split);
	for (size_t i = 0; i < nl1; i++)
		if (h->l2_pa[i])
			hostmem_pages_free(h->hm, h->l2_pa[i], (64u << h->split) / 4096);
	hostmem_pages_free(h->hm, h->l1_pa, (unsigned)MAX(1, nl1 * 8 / 4096));
	free(h->l2_pa);
	free(h->vmids);
	pthread_mutex_destroy(&h->lock);
	pthread_mutex_destroy(&h->route_lock);
	free(h);
}

void iommufd_host_set_default(struct iommufd_host *h)
{
	pthread_mutex_lock(&default_lock);
	default_host = h;
	pthread_mutex_unlock(&default_lock);
}

void iommufd_host_get_stats(struct iommufd_host *h, struct iommufd_host_stats *st)
{
	pthread_mutex_lock(&h->route_lock);
	*st = h->stats;
	pthread_mutex_unlock(&h->route_lock);
}

int iommufd_open(struct iommufd_ctx **out)
{
	pthread_mutex_lock(&default_lock);
	struct iommufd_host *h = default_host;
	pthread_mutex_unlock(&default_lock);
	if (!h)
		return -ENODEV;
	return iommufd_open_host(h, out);
}

int host_iommu_system_create(struct host_iommu_system *sys, const struct smmu_params *params)
{
	*sys = (struct host_iommu_system){0};
	sys->hm = hostmem_create();
	sys->smmu = sys->hm ? smmu_create(sys->hm, params) : NULL;
	sys->host = sys->smmu ? iommufd_host_create(sys->smmu) : NULL;
	if (!sys->host) {
		host_iommu_system_destroy(sys);
		return -ENOMEM;
	}
	iommufd_host_set_default(sys->host);
	return 0;
}

void host_iommu_system_destroy(struct host_iommu_system *sys)
{
	iommufd_host_destroy(sys->host);
	smmu_destroy(sys->smmu);
	hostmem_destroy(sys->hm);
	*sys = (struct host_iommu_system){0};
}
