// SPDX-License-Identifier: Apache-2.0
/* iommufd contexts: the object table, IOMMU_DESTROY, close, hw_info. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "host/iommu/iommufd_internal.h"

int iommufd_open_host(struct iommufd_host *host, struct iommufd_ctx **out)
{
	struct iommufd_ctx *ctx;

	if (!host || !out)
		return -EINVAL;
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	ctx->host = host;
	pthread_mutex_init(&ctx->lock, NULL);
	*out = ctx;
	return 0;
}

int ifd_obj_add(struct iommufd_ctx *ctx, struct ifd_obj *obj, enum ifd_type type)
{
	uint32_t i;

	for (i = 0; i < ctx->nobjs && ctx->objs[i]; i++)
		;
	if (i == ctx->nobjs) {
		struct ifd_obj **n = realloc(ctx->objs, (ctx->nobjs + 16) * sizeof(*n));
		if (!n)
			return -ENOMEM;
		memset(n + ctx->nobjs, 0, 16 * sizeof(*n));
		ctx->objs = n;
		ctx->nobjs += 16;
	}
	obj->type = type;
	obj->id = i + 1;
	obj->users = 0;
	obj->ctx = ctx;
	ctx->objs[i] = obj;
	return 0;
}

struct ifd_obj *ifd_obj_get(struct iommufd_ctx *ctx, uint32_t id, enum ifd_type type)
{
	if (id == 0 || id > ctx->nobjs || !ctx->objs[id - 1])
		return NULL;
	struct ifd_obj *o = ctx->objs[id - 1];
	return (type == 0 || o->type == type) ? o : NULL;
}

void ifd_obj_remove(struct iommufd_ctx *ctx, struct ifd_obj *obj)
{
	ctx->objs[obj->id - 1] = NULL;
}

/* Destroys one unused object. Caller holds ctx->lock. */
static int ifd_destroy_locked(struct iommufd_ctx *ctx, struct ifd_obj *o)
{
	if (o->users)
		return -EBUSY;
	switch (o->type) {
	case IFD_IOAS:
		ifd_ioas_destroy(ctx, (struct ifd_ioas *)o);
		return 0;
	case IFD_HWPT_PAGING:
		ifd_hwpt_paging_destroy(ctx, (struct ifd_hwpt_paging *)o);
		return 0;
	case IFD_HWPT_NESTED:
		ifd_hwpt_nested_destroy(ctx, (struct ifd_hwpt_nested *)o);
		return 0;
	case IFD_VIOMMU:
		ifd_viommu_destroy(ctx, (struct ifd_viommu *)o);
		return 0;
	case IFD_VDEVICE:
		ifd_vdevice_destroy(ctx, (struct ifd_vdevice *)o);
		return 0;
	case IFD_VEVENTQ:
		ifd_veventq_destroy(ctx, (struct ifd_veventq *)o);
		return 0;
	case IFD_FAULT:
		ifd_fault_destroy(ctx, (struct ifd_fault *)o);
		return 0;
	case IFD_DEVICE:
		return -EINVAL; /* devices go away with iommufd_device_unbind */
	}
	return -EINVAL;
}

int iommufd_destroy(struct iommufd_ctx *ctx, uint32_t id)
{
	pthread_mutex_lock(&ctx->lock);
	struct ifd_obj *o = ifd_obj_get(ctx, id, 0);
	int rc = o ? ifd_destroy_locked(ctx, o) : -ENOENT;
	pthread_mutex_unlock(&ctx->lock);
	return rc;
}

void iommufd_close(struct iommufd_ctx *ctx)
{
	if (!ctx)
		return;
	pthread_mutex_lock(&ctx->lock);
	for (uint32_t i = 0; i < ctx->nobjs; i++)
		if (ctx->objs[i] && ctx->objs[i]->type == IFD_DEVICE)
			ifd_device_destroy(ctx, (struct ifd_device *)ctx->objs[i]);
	/* Dependents first: repeat until everything unused has gone. */
	bool progress = true;
	while (progress) {
		progress = false;
		for (uint32_t i = ctx->nobjs; i-- > 0;)
			if (ctx->objs[i] && ifd_destroy_locked(ctx, ctx->objs[i]) == 0)
				progress = true;
	}
	pthread_mutex_unlock(&ctx->lock);
	free(ctx->objs);
	pthread_mutex_destroy(&ctx->lock);
	free(ctx);
}

bool ifd_host_dirty(struct iommufd_ctx *ctx)
{
	uint32_t regs[8];

	smmu_read_idr(ctx->host->smmu, regs);
	return FGET(regs[0], IDR0_HTTU) >= 2;
}

int iommufd_get_hw_info(struct iommufd_ctx *ctx, struct iommu_hw_info *cmd)
{
	struct iommu_hw_info_arm_smmuv3 info = {0};
	uint32_t regs[8];

	if (!ctx || !cmd)
		return -EINVAL;
	if (cmd->flags || cmd->__reserved)
		return -EOPNOTSUPP;
	pthread_mutex_lock(&ctx->lock);
	bool ok = ifd_obj_get(ctx, cmd->dev_id, IFD_DEVICE) != NULL;
	pthread_mutex_unlock(&ctx->lock);
	if (!ok)
		return -ENOENT;
	smmu_read_idr(ctx->host->smmu, regs);
	memcpy(info.idr, regs, sizeof(info.idr));
	info.iidr = regs[6];
	info.aidr = regs[7];
	/* Like the kernel: copy what fits, report the full length. */
	if (cmd->data_len && cmd->data_uptr)
		memcpy((void *)(uintptr_t)cmd->data_uptr, &info, MIN(cmd->data_len, sizeof(info)));
	cmd->data_len = sizeof(info);
	cmd->out_data_type = IOMMU_HW_INFO_TYPE_ARM_SMMUV3;
	/* Only an SMMU with hardware dirty state (HTTU >= 2) can track: say so honestly. */
	cmd->out_capabilities = ifd_host_dirty(ctx) ? IOMMU_HW_CAP_DIRTY_TRACKING : 0;
	return 0;
}
