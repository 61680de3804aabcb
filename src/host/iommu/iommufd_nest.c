// SPDX-License-Identifier: Apache-2.0
/* Nesting: vIOMMU, vDEVICE, nested HWPT from a guest vSTE, invalidation, vEVENTQ. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/trace.h"
#include "host/iommu/iommufd_internal.h"

#define VSTE0_ALLOWED                                                                              \
	(FMASK(STE0_V) | FMASK(STE0_CONFIG) | FMASK(STE0_S1FMT) | FMASK(STE0_S1CTXPTR) |           \
	 FMASK(STE0_S1CDMAX))
#define VSTE1_ALLOWED                                                                              \
	(FMASK(STE1_S1DSS) | FMASK(STE1_S1CIR) | FMASK(STE1_S1COR) | FMASK(STE1_S1CSH) |           \
	 FMASK(STE1_S1STALLD) | FMASK(STE1_EATS))

/* ---- vIOMMU ---- */

int iommufd_viommu_alloc(struct iommufd_ctx *ctx, struct iommu_viommu_alloc *cmd)
{
	if (!ctx || !cmd)
		return -EINVAL;
	if (cmd->flags || cmd->type != IOMMU_VIOMMU_TYPE_ARM_SMMUV3)
		return -EOPNOTSUPP;
	struct ifd_viommu *v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	pthread_mutex_lock(&ctx->lock);
	struct ifd_hwpt_paging *hp =
	    (struct ifd_hwpt_paging *)ifd_obj_get(ctx, cmd->hwpt_id, IFD_HWPT_PAGING);
	int rc = !hp || !ifd_obj_get(ctx, cmd->dev_id, IFD_DEVICE) ? -ENOENT : 0;
	if (!rc && !(hp->flags & IOMMU_HWPT_ALLOC_NEST_PARENT))
		rc = -EINVAL;
	if (!rc)
		rc = ifd_obj_add(ctx, &v->obj, IFD_VIOMMU);
	if (!rc) {
		v->parent = hp;
		hp->obj.users++;
		cmd->out_viommu_id = v->obj.id;
	}
	pthread_mutex_unlock(&ctx->lock);
	if (rc)
		free(v);
	return rc;
}

void ifd_viommu_destroy(struct iommufd_ctx *ctx, struct ifd_viommu *v)
{
	ifd_obj_remove(ctx, &v->obj);
	v->parent->obj.users--;
	free(v);
}

/* ---- vDEVICE ---- */

static bool ifd_vsid_taken(struct iommufd_ctx *ctx, struct ifd_viommu *v, uint64_t virt_id)
{
	for (uint32_t i = 0; i < ctx->nobjs; i++) {
		struct ifd_vdevice *vd = (struct ifd_vdevice *)ctx->objs[i];
		if (vd && vd->obj.type == IFD_VDEVICE && vd->viommu == v && vd->virt_id == virt_id)
			return true;
	}
	return false;
}

static int ifd_vdevice_check(struct iommufd_ctx *ctx, struct iommu_vdevice_alloc *cmd,
			     struct ifd_viommu **v, struct ifd_device **dev)
{
	*v = (struct ifd_viommu *)ifd_obj_get(ctx, cmd->viommu_id, IFD_VIOMMU);
	*dev = (struct ifd_device *)ifd_obj_get(ctx, cmd->dev_id, IFD_DEVICE);
	if (!*v || !*dev)
		return -ENOENT;
	if (cmd->virt_id > UINT32_MAX)
		return -EINVAL;
	if ((*dev)->vdev || ifd_vsid_taken(ctx, *v, cmd->virt_id))
		return -EEXIST;
	return 0;
}

int iommufd_vdevice_alloc(struct iommufd_ctx *ctx, struct iommu_vdevice_alloc *cmd)
{
	struct ifd_viommu *v;
	struct ifd_device *dev;

	if (!ctx || !cmd)
		return -EINVAL;
	struct ifd_vdevice *vd = calloc(1, sizeof(*vd));
	if (!vd)
		return -ENOMEM;
	pthread_mutex_lock(&ctx->lock);
	int rc = ifd_vdevice_check(ctx, cmd, &v, &dev);
	if (!rc)
		rc = ifd_obj_add(ctx, &vd->obj, IFD_VDEVICE);
	if (!rc) {
		vd->viommu = v;
		vd->dev = dev;
		vd->virt_id = cmd->virt_id;
		v->obj.users++;
		dev->obj.users++;
		pthread_mutex_lock(&ctx->host->route_lock);
		dev->vdev = vd;
		pthread_mutex_unlock(&ctx->host->route_lock);
		cmd->out_vdevice_id = vd->obj.id;
	}
	pthread_mutex_unlock(&ctx->lock);
	if (rc)
		free(vd);
	return rc;
}

void ifd_vdevice_destroy(struct iommufd_ctx *ctx, struct ifd_vdevice *vd)
{
	pthread_mutex_lock(&ctx->host->route_lock);
	vd->dev->vdev = NULL;
	pthread_mutex_unlock(&ctx->host->route_lock);
	ifd_obj_remove(ctx, &vd->obj);
	vd->viommu->obj.users--;
	vd->dev->obj.users--;
	free(vd);
}

/* ---- nested HWPT ---- */

/* Linux's rules for a guest vSTE: 0 (possibly rewritten to an abort STE) or -EIO. */
static int ifd_vste_validate(uint64_t vste[2])
{
	if (!FGET(vste[0], STE0_V)) {
		vste[0] = vste[1] = 0;
		return 0;
	}
	if ((vste[0] & ~VSTE0_ALLOWED) || (vste[1] & ~VSTE1_ALLOWED))
		return -EIO;
	unsigned cfg = (unsigned)FGET(vste[0], STE0_CONFIG);
	if (cfg != STE_CFG_ABORT && cfg != STE_CFG_BYPASS && cfg != STE_CFG_S1)
		return -EIO;
	unsigned eats = (unsigned)FGET(vste[1], STE1_EATS);
	if (eats > 1)
		return -EIO;
	vste[1] &= ~FMASK(STE1_EATS); /* no ATS in this model */
	return 0;
}

void ifd_ste_for_nested(const struct ifd_hwpt_nested *hn, uint64_t ste[8])
{
	unsigned cfg =
	    FGET(hn->vste[0], STE0_V) ? (unsigned)FGET(hn->vste[0], STE0_CONFIG) : STE_CFG_ABORT;

	if (cfg == STE_CFG_BYPASS) {
		ifd_ste_for_paging(hn->viommu->parent, ste);
		return;
	}
	memset(ste, 0, 64);
	ste[0] = FVAL(STE0_V, 1) | FVAL(STE0_CONFIG, STE_CFG_ABORT);
	if (cfg != STE_CFG_S1)
		return;
	ifd_ste_for_paging(hn->viommu->parent, ste);
	ste[0] = FSET(hn->vste[0], STE0_CONFIG, STE_CFG_NESTED);
	ste[1] = hn->vste[1] | FVAL(STE1_MEV, 1) | FVAL(STE1_SHCFG, 1);
}

static int ifd_nested_check(struct iommufd_ctx *ctx, const struct iommu_hwpt_alloc *cmd,
			    struct ifd_viommu **v, struct ifd_fault **f)
{
	*v = (struct ifd_viommu *)ifd_obj_get(ctx, cmd->pt_id, IFD_VIOMMU);
	*f = NULL;
	if (!*v || !ifd_obj_get(ctx, cmd->dev_id, IFD_DEVICE))
		return -ENOENT;
	if (cmd->flags & IOMMU_HWPT_FAULT_ID_VALID) {
		*f = (struct ifd_fault *)ifd_obj_get(ctx, cmd->fault_id, IFD_FAULT);
		if (!*f)
			return -ENOENT;
	}
	return 0;
}

int ifd_hwpt_nested_alloc(struct iommufd_ctx *ctx, struct iommu_hwpt_alloc *cmd)
{
	struct iommu_hwpt_arm_smmuv3 data;
	struct ifd_viommu *v;
	struct ifd_fault *f;

	if (cmd->flags & ~IOMMU_HWPT_FAULT_ID_VALID)
		return -EOPNOTSUPP;
	if (cmd->data_len != sizeof(data) || !cmd->data_uptr)
		return -EINVAL;
	memcpy(&data, (const void *)(uintptr_t)cmd->data_uptr, sizeof(data));
	struct ifd_hwpt_nested *hn = calloc(1, sizeof(*hn));
	if (!hn)
		return -ENOMEM;
	pthread_mutex_lock(&ctx->lock);
	int rc = ifd_nested_check(ctx, cmd, &v, &f);
	if (!rc)
		rc = ifd_vste_validate(data.ste);
	if (!rc)
		rc = ifd_obj_add(ctx, &hn->obj, IFD_HWPT_NESTED);
	if (!rc) {
		hn->viommu = v;
		hn->fault = f;
		memcpy(hn->vste, data.ste, sizeof(hn->vste));
		v->obj.users++;
		if (f)
			f->obj.users++;
		cmd->out_hwpt_id = hn->obj.id;
	}
	pthread_mutex_unlock(&ctx->lock);
	if (rc)
		free(hn);
	TRACE(iommufd_nested_alloc, "vste=%#llx,%#llx rc=%d", (unsigned long long)data.ste[0],
	      (unsigned long long)data.ste[1], rc);
	return rc;
}

void ifd_hwpt_nested_destroy(struct iommufd_ctx *ctx, struct ifd_hwpt_nested *hn)
{
	ifd_obj_remove(ctx, &hn->obj);
	hn->viommu->obj.users--;
	if (hn->fault)
		hn->fault->obj.users--;
	free(hn);
}

/* ---- invalidation ---- */

static int ifd_vsid_to_sid(struct iommufd_ctx *ctx, struct ifd_viommu *v, uint32_t vsid,
			   uint32_t *sid)
{
	for (uint32_t i = 0; i < ctx->nobjs; i++) {
		struct ifd_vdevice *vd = (struct ifd_vdevice *)ctx->objs[i];
		if (vd && vd->obj.type == IFD_VDEVICE && vd->viommu == v && vd->virt_id == vsid) {
			*sid = vd->dev->sid;
			return 0;
		}
	}
	return -EIO;
}

/* Rewrites one guest command for the host, or -EIO when it is not allowed. */
static int ifd_inv_convert(struct iommufd_ctx *ctx, struct ifd_viommu *v, struct smmu_cmd *c)
{
	unsigned op = (unsigned)FGET(c->dw[0], CMD0_OP);
	uint32_t sid;

	switch (op) {
	case CMD_TLBI_NSNH_ALL:
		c->dw[0] = FVAL(CMD0_OP, CMD_TLBI_NH_ALL);
		c->dw[1] = 0;
		/* fallthrough */
	case CMD_TLBI_NH_VA:
	case CMD_TLBI_NH_VAA:
	case CMD_TLBI_NH_ALL:
	case CMD_TLBI_NH_ASID:
		c->dw[0] = FSET(c->dw[0], CMD0_VMID, v->parent->vmid);
		return 0;
	case CMD_ATC_INV:
	case CMD_CFGI_CD:
	case CMD_CFGI_CD_ALL:
		if (ifd_vsid_to_sid(ctx, v, (uint32_t)FGET(c->dw[0], CMD0_SID), &sid))
			return -EIO;
		c->dw[0] = FSET(c->dw[0], CMD0_SID, sid);
		return 0;
	default:
		return -EIO;
	}
}

#define IFD_INV_BATCH 64u

/*
 * Converts every allowed command (stopping at the first refused one) and runs them in
 * batches of IFD_INV_BATCH, each followed by CMD_SYNC: on the stack, so any entry_num
 * costs no allocation (the kernel, too, copies the array entry by entry).
 */
static int ifd_inv_run(struct iommufd_ctx *ctx, struct ifd_viommu *v,
		       struct iommu_hwpt_invalidate *cmd)
{
	const uint8_t *src = (const uint8_t *)(uintptr_t)cmd->data_uptr;
	struct smmu_cmd c[IFD_INV_BATCH + 1];
	uint32_t n = 0;
	int rc = 0;

	while (n < cmd->entry_num && rc == 0) {
		unsigned k = 0;

		for (; k < IFD_INV_BATCH && n < cmd->entry_num; k++, n++) {
			memcpy(&c[k], src + (size_t)n * cmd->entry_len, sizeof(c[k]));
			rc = ifd_inv_convert(ctx, v, &c[k]);
			if (rc)
				break;
		}
		c[k] = smmu_cmd_sync();
		if (smmu_cmd_exec(ctx->host->smmu, c, k + 1, NULL) != k + 1)
			rc = -EIO; /* cannot happen: every converted command is legal */
	}
	cmd->entry_num = n;
	return rc;
}

int iommufd_hwpt_invalidate(struct iommufd_ctx *ctx, struct iommu_hwpt_invalidate *cmd)
{
	if (!ctx || !cmd)
		return -EINVAL;
	if (cmd->data_type != IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3 || cmd->__reserved)
		return -EINVAL;
	if (cmd->entry_num == 0)
		return 0;
	if (cmd->entry_len < sizeof(struct iommu_viommu_arm_smmuv3_invalidate) || !cmd->data_uptr)
		return -EINVAL;
	pthread_mutex_lock(&ctx->lock);
	struct ifd_viommu *v = (struct ifd_viommu *)ifd_obj_get(ctx, cmd->hwpt_id, IFD_VIOMMU);
	int rc;
	if (v)
		rc = ifd_inv_run(ctx, v, cmd);
	else
		rc = ifd_obj_get(ctx, cmd->hwpt_id, 0) ? -EOPNOTSUPP : -ENOENT;
	pthread_mutex_unlock(&ctx->lock);
	if (!v)
		cmd->entry_num = 0;
	return rc;
}

/* ---- vEVENTQ ---- */

int iommufd_veventq_alloc(struct iommufd_ctx *ctx, struct iommu_veventq_alloc *cmd)
{
	int p[2];

	if (!ctx || !cmd)
		return -EINVAL;
	if (cmd->flags || cmd->__reserved || cmd->type != IOMMU_VEVENTQ_TYPE_ARM_SMMUV3)
		return -EOPNOTSUPP;
	if (!cmd->veventq_depth || cmd->veventq_depth > 65536)
		return -EINVAL;
	struct ifd_veventq *q = calloc(1, sizeof(*q));
	if (!q || pipe2(p, O_CLOEXEC)) {
		free(q);
		return -ENOMEM;
	}
	fcntl(p[1], F_SETFL, O_NONBLOCK);
	fcntl(p[1], F_SETPIPE_SZ, (int)MIN(1u << 20, cmd->veventq_depth * 48u + 4096));
	pthread_mutex_lock(&ctx->lock);
	struct ifd_viommu *v = (struct ifd_viommu *)ifd_obj_get(ctx, cmd->viommu_id, IFD_VIOMMU);
	int rc = !v ? -ENOENT : v->veventq ? -EEXIST : ifd_obj_add(ctx, &q->obj, IFD_VEVENTQ);
	if (!rc) {
		*q = (struct ifd_veventq){.obj = q->obj,
					  .viommu = v,
					  .rfd = p[0],
					  .wfd = p[1],
					  .depth = cmd->veventq_depth};
		v->obj.users++;
		pthread_mutex_lock(&ctx->host->route_lock);
		v->veventq = q;
		pthread_mutex_unlock(&ctx->host->route_lock);
		cmd->out_veventq_id = q->obj.id;
		cmd->out_veventq_fd = p[0];
	}
	pthread_mutex_unlock(&ctx->lock);
	if (rc) {
		close(p[0]);
		close(p[1]);
		free(q);
	}
	return rc;
}

void ifd_veventq_destroy(struct iommufd_ctx *ctx, struct ifd_veventq *q)
{
	pthread_mutex_lock(&ctx->host->route_lock);
	q->viommu->veventq = NULL;
	pthread_mutex_unlock(&ctx->host->route_lock);
	ifd_obj_remove(ctx, &q->obj);
	q->viommu->obj.users--;
	close(q->wfd); /* the reader owns rfd and closes it */
	free(q);
}

struct ifd_vevent_rec {
	struct iommufd_vevent_header hdr;
	struct iommu_vevent_arm_smmuv3 evt;
};

/* Appends an event (StreamID replaced by the vSID); called with route_lock held. */
void ifd_veventq_push(struct iommufd_host *host, struct ifd_veventq *q, uint64_t vsid,
		      const struct smmu_event *ev)
{
	struct {
		struct iommufd_vevent_header lost;
		struct ifd_vevent_rec rec;
	} __attribute__((packed)) buf;
	int queued = 0;
	uint32_t seq = q->seq++;

	ioctl(q->rfd, FIONREAD, &queued);
	if ((uint32_t)queued / sizeof(struct ifd_vevent_rec) >= q->depth) {
		q->lost = true;
		host->stats.vevents_lost++;
		return;
	}
	buf.lost = (struct iommufd_vevent_header){IOMMU_VEVENTQ_FLAG_LOST_EVENTS, seq};
	buf.rec.hdr = (struct iommufd_vevent_header){0, seq};
	memcpy(buf.rec.evt.evt, ev->dw, sizeof(buf.rec.evt.evt));
	buf.rec.evt.evt[0] = FSET(buf.rec.evt.evt[0], EVT0_SID, vsid);
	const char *p = q->lost ? (const char *)&buf : (const char *)&buf.rec;
	size_t len = q->lost ? sizeof(buf) : sizeof(buf.rec);
	if (write(q->wfd, p, len) == (ssize_t)len) {
		q->lost = false;
		host->stats.vevents++;
	} else {
		q->lost = true;
		host->stats.vevents_lost++;
	}
}
