// SPDX-License-Identifier: Apache-2.0
/* Devices: bind a physical StreamID to a context, attach/replace/detach its domain. */
#include <errno.h>
#include <stdlib.h>

#include "common/trace.h"
#include "host/iommu/iommufd_internal.h"

static bool ifd_sid_bound(struct iommufd_host *h, uint32_t sid)
{
	bool bound = false;

	pthread_mutex_lock(&h->route_lock);
	for (struct ifd_device *d = h->routes; d && !bound; d = d->route_next)
		bound = d->sid == sid;
	pthread_mutex_unlock(&h->route_lock);
	return bound;
}

int iommufd_device_bind(struct iommufd_ctx *ctx, uint32_t sid, uint32_t *dev_id)
{
	if (!ctx || !dev_id || (ctx->host->sid_bits < 32 && (sid >> ctx->host->sid_bits)))
		return -EINVAL;
	struct ifd_device *dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	dev->sid = sid;
	pthread_mutex_lock(&ctx->lock);
	int rc = ifd_sid_bound(ctx->host, sid) ? -EBUSY : ifd_obj_add(ctx, &dev->obj, IFD_DEVICE);
	if (!rc) {
		ifd_route_add(ctx->host, dev);
		ifd_ste_clear(ctx->host, sid); /* bound but not attached: blocked */
		*dev_id = dev->obj.id;
	}
	pthread_mutex_unlock(&ctx->lock);
	if (rc)
		free(dev);
	TRACE(iommufd_bind, "sid=%#x rc=%d", sid, rc);
	return rc;
}

/* The HWPT pt_id names, making or reusing an automatic one for an IOAS. */
static int ifd_resolve_pt(struct iommufd_ctx *ctx, uint32_t pt_id, struct ifd_obj **out)
{
	struct ifd_obj *o = ifd_obj_get(ctx, pt_id, 0);

	if (!o)
		return -ENOENT;
	if (o->type == IFD_HWPT_PAGING || o->type == IFD_HWPT_NESTED) {
		*out = o;
		return 0;
	}
	if (o->type != IFD_IOAS)
		return -EINVAL;
	for (uint32_t i = 0; i < ctx->nobjs; i++) {
		struct ifd_hwpt_paging *hp = (struct ifd_hwpt_paging *)ctx->objs[i];
		if (hp && hp->obj.type == IFD_HWPT_PAGING && hp->auto_domain &&
		    hp->ioas == (struct ifd_ioas *)o) {
			*out = &hp->obj;
			return 0;
		}
	}
	struct ifd_hwpt_paging *hp;
	int rc = ifd_hwpt_paging_new(ctx, (struct ifd_ioas *)o, 0, true, &hp);
	if (!rc)
		*out = &hp->obj;
	return rc;
}

/* An automatic HWPT goes away with its last device. */
static void ifd_put_pt(struct iommufd_ctx *ctx, struct ifd_obj *o)
{
	o->users--;
	if (o->type == IFD_HWPT_PAGING && !o->users && ((struct ifd_hwpt_paging *)o)->auto_domain)
		ifd_hwpt_paging_destroy(ctx, (struct ifd_hwpt_paging *)o);
}

static void ifd_install(struct iommufd_ctx *ctx, struct ifd_device *dev, struct ifd_obj *to)
{
	uint64_t ste[8];

	if (to->type == IFD_HWPT_PAGING) {
		ifd_ste_for_paging((struct ifd_hwpt_paging *)to, ste);
		ifd_ste_write(ctx->host, dev->sid, ste);
		return;
	}
	struct ifd_hwpt_nested *hn = (struct ifd_hwpt_nested *)to;
	ifd_ste_for_nested(hn, ste);
	ifd_ste_write(ctx->host, dev->sid, ste);
	/* Combined S1+S2 entries of the VMID may describe the previous stage 1: drop them
	 * once the new STE is in (entries made before it cannot come back). */
	ifd_cmd(ctx->host, smmu_cmd_tlbi_nh_all(hn->viommu->parent->vmid));
	ifd_sync(ctx->host);
}

static int ifd_attach_locked(struct iommufd_ctx *ctx, uint32_t dev_id, uint32_t *pt_id,
			     bool replace)
{
	struct ifd_device *dev = (struct ifd_device *)ifd_obj_get(ctx, dev_id, IFD_DEVICE);
	struct ifd_obj *to;

	if (!dev)
		return -ENOENT;
	if (!replace && dev->attached)
		return -EBUSY;
	if (replace && !dev->attached)
		return -EINVAL;
	int rc = ifd_resolve_pt(ctx, *pt_id, &to);
	if (rc)
		return rc;
	to->users++;
	ifd_install(ctx, dev, to);
	pthread_mutex_lock(&ctx->host->route_lock);
	struct ifd_obj *old = dev->attached;
	dev->attached = to;
	pthread_mutex_unlock(&ctx->host->route_lock);
	if (old)
		ifd_put_pt(ctx, old);
	*pt_id = to->id;
	return 0;
}

int iommufd_device_attach(struct iommufd_ctx *ctx, uint32_t dev_id, uint32_t *pt_id)
{
	if (!ctx || !pt_id)
		return -EINVAL;
	pthread_mutex_lock(&ctx->lock);
	int rc = ifd_attach_locked(ctx, dev_id, pt_id, false);
	pthread_mutex_unlock(&ctx->lock);
	TRACE(iommufd_attach, "dev=%u pt=%u rc=%d", dev_id, *pt_id, rc);
	return rc;
}

int iommufd_device_replace(struct iommufd_ctx *ctx, uint32_t dev_id, uint32_t *pt_id)
{
	if (!ctx || !pt_id)
		return -EINVAL;
	pthread_mutex_lock(&ctx->lock);
	int rc = ifd_attach_locked(ctx, dev_id, pt_id, true);
	pthread_mutex_unlock(&ctx->lock);
	TRACE(iommufd_replace, "dev=%u pt=%u rc=%d", dev_id, *pt_id, rc);
	return rc;
}

static void ifd_detach_locked(struct iommufd_ctx *ctx, struct ifd_device *dev)
{
	ifd_ste_clear(ctx->host, dev->sid);
	pthread_mutex_lock(&ctx->host->route_lock);
	struct ifd_obj *old = dev->attached;
	dev->attached = NULL;
	pthread_mutex_unlock(&ctx->host->route_lock);
	ifd_put_pt(ctx, old);
}

int iommufd_device_detach(struct iommufd_ctx *ctx, uint32_t dev_id)
{
	if (!ctx)
		return -EINVAL;
	pthread_mutex_lock(&ctx->lock);
	struct ifd_device *dev = (struct ifd_device *)ifd_obj_get(ctx, dev_id, IFD_DEVICE);
	int rc = !dev ? -ENOENT : !dev->attached ? -EINVAL : 0;
	if (!rc)
		ifd_detach_locked(ctx, dev);
	pthread_mutex_unlock(&ctx->lock);
	return rc;
}

/* Detach, drop the vDEVICE, forget the SID. Caller holds ctx->lock. */
int ifd_device_destroy(struct iommufd_ctx *ctx, struct ifd_device *dev)
{
	if (dev->attached)
		ifd_detach_locked(ctx, dev);
	if (dev->vdev)
		ifd_vdevice_destroy(ctx, dev->vdev);
	/* The STE goes back to invalid-for-this-context: keep it blocked (abort). */
	ifd_route_del(ctx->host, dev);
	ifd_obj_remove(ctx, &dev->obj);
	free(dev);
	return 0;
}

int iommufd_device_unbind(struct iommufd_ctx *ctx, uint32_t dev_id)
{
	if (!ctx)
		return -EINVAL;
	pthread_mutex_lock(&ctx->lock);
	struct ifd_device *dev = (struct ifd_device *)ifd_obj_get(ctx, dev_id, IFD_DEVICE);
	int rc = dev ? ifd_device_destroy(ctx, dev) : -ENOENT;
	pthread_mutex_unlock(&ctx->lock);
	return rc;
}
