// SPDX-License-Identifier: Apache-2.0
/* sdma: creation, teardown and the VFIO driver ops that glue the device to the core. */
#include "host/dev/sdma_internal.h"

#include "common/trace.h"
#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SDMA_DEFAULT_LOG_RANGES 4
#define SDMA_DEFAULT_WQ_LOG2	12
#define SDMA_DEFAULT_XFER_LOG2	26
#define SDMA_DEFAULT_QUIESCE_MS 1000

static ssize_t sdma_vfio_region_rw(struct vfio_device *vdev, uint32_t index, uint64_t offset,
				   void *buf, size_t len, bool write)
{
	return sdma_bar_rw(sdma_from_vdev(vdev), offset, buf, len, write);
}

/* Function-level reset: stop everything, terminate stalls, registers to their defaults. */
static int sdma_vfio_reset(struct vfio_device *vdev)
{
	struct sdma *s = sdma_from_vdev(vdev);

	sdma_engine_quiesce(s, true);
	pthread_mutex_lock(&s->lock);
	sdma_regs_reset(s);
	s->run_allowed = true;
	pthread_mutex_unlock(&s->lock);
	TRACE(sdma_reset, "%s: function reset", s->name);
	return 0;
}

static int sdma_vfio_log_start(struct vfio_device *vdev, const struct vfio_log_range *ranges,
			       uint32_t n, uint64_t *page_size)
{
	return dma_log_start(&sdma_from_vdev(vdev)->log, ranges, n, page_size);
}

static int sdma_vfio_log_stop(struct vfio_device *vdev)
{
	return dma_log_stop(&sdma_from_vdev(vdev)->log);
}

static int sdma_vfio_log_report(struct vfio_device *vdev, uint64_t iova, uint64_t length,
				uint64_t page_size, uint64_t *bitmap)
{
	return dma_log_report(&sdma_from_vdev(vdev)->log, iova, length, page_size, bitmap);
}

static int sdma_vfio_get_doorbell(struct vfio_device *vdev, uint32_t *region, uint64_t *offset,
				  uint32_t *width, int *eventfd)
{
	struct sdma *s = sdma_from_vdev(vdev);

	*region = VFIO_PCI_BAR0_REGION_INDEX;
	*offset = SDMA_REG_WQ_TAIL;
	*width = 4;
	*eventfd = s->doorbell_fd;
	return 0;
}

#define SDMA_OPS_COMMON                                                                            \
	.region_rw = sdma_vfio_region_rw, .reset = sdma_vfio_reset, .mig_arc = sdma_mig_arc,       \
	.mig_data_size = sdma_mig_data_size, .mig_precopy_refresh = sdma_mig_precopy_refresh,      \
	.mig_resume_check = sdma_mig_resume_check, .get_doorbell = sdma_vfio_get_doorbell

static const struct vfio_device_ops sdma_ops_log = {
    SDMA_OPS_COMMON,
    .log_start = sdma_vfio_log_start,
    .log_stop = sdma_vfio_log_stop,
    .log_report = sdma_vfio_log_report,
};

static const struct vfio_device_ops sdma_ops_nolog = {
    SDMA_OPS_COMMON,
};

static uint64_t sdma_make_cap(const struct sdma_config *c)
{
	uint64_t cap = FIELD_SET(0, SDMA_CAP_VERSION_SHIFT, SDMA_CAP_VERSION_WIDTH, SDMA_VERSION);

	cap = FIELD_SET(cap, SDMA_CAP_OPS_SHIFT, SDMA_CAP_OPS_WIDTH, (1u << SDMA_OP_COUNT) - 1);
	cap =
	    FIELD_SET(cap, SDMA_CAP_WQ_LOG2_MAX_SHIFT, SDMA_CAP_WQ_LOG2_MAX_WIDTH, c->wq_log2_max);
	cap = FIELD_SET(cap, SDMA_CAP_BOF_SHIFT, SDMA_CAP_BOF_WIDTH, !c->no_bof);
	cap = FIELD_SET(cap, SDMA_CAP_DMA_LOG_SHIFT, SDMA_CAP_DMA_LOG_WIDTH, !c->no_dma_log);
	cap = FIELD_SET(cap, SDMA_CAP_SHADOW_SHIFT, SDMA_CAP_SHADOW_WIDTH, 1);
	return FIELD_SET(cap, SDMA_CAP_XFER_LOG2_MAX_SHIFT, SDMA_CAP_XFER_LOG2_MAX_WIDTH,
			 c->xfer_log2_max);
}

static void sdma_config_defaults(struct sdma_config *c)
{
	if (!c->mig_flags)
		c->mig_flags =
		    VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY;
	if (!c->log_max_ranges)
		c->log_max_ranges = SDMA_DEFAULT_LOG_RANGES;
	if (!c->wq_log2_max)
		c->wq_log2_max = SDMA_DEFAULT_WQ_LOG2;
	if (!c->xfer_log2_max)
		c->xfer_log2_max = SDMA_DEFAULT_XFER_LOG2;
	if (!c->quiesce_ms)
		c->quiesce_ms = SDMA_DEFAULT_QUIESCE_MS;
}

static void sdma_init_vdev(struct sdma *s)
{
	struct vfio_device *v = &s->vdev;

	v->ops = s->cfg.no_dma_log ? &sdma_ops_nolog : &sdma_ops_log;
	snprintf(v->name, sizeof(v->name), "%s", s->name);
	v->num_regions = 1;
	v->regions[0] = (struct vfio_region_info){
	    .argsz = sizeof(struct vfio_region_info),
	    .flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE,
	    .index = VFIO_PCI_BAR0_REGION_INDEX,
	    .size = SDMA_BAR0_SIZE,
	};
	v->mig_flags = s->cfg.mig_flags;
	v->log_max_ranges = s->cfg.log_max_ranges;
	v->sid = s->cfg.sid;
}

static int sdma_check_config(const struct sdma_config *c)
{
	if (!c->name || !c->name[0] || strlen(c->name) >= 32 || !c->smmu)
		return -EINVAL;
	if (!(c->mig_flags & VFIO_MIGRATION_STOP_COPY) ||
	    (c->mig_flags &
	     ~(uint64_t)(VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY)))
		return -EINVAL;
	if (c->wq_log2_max > 20 || c->xfer_log2_max > 40)
		return -EINVAL;
	return 0;
}

int sdma_create(const struct sdma_config *cfg, struct sdma **out)
{
	struct sdma *s = calloc(1, sizeof(*s));
	int ret;

	if (!s)
		return -ENOMEM;
	s->cfg = *cfg;
	sdma_config_defaults(&s->cfg);
	ret = sdma_check_config(&s->cfg);
	if (ret) {
		free(s);
		return ret;
	}
	snprintf(s->name, sizeof(s->name), "%s", cfg->name);
	s->cap = sdma_make_cap(&s->cfg);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	dma_log_init(&s->log);
	s->run_allowed = true;
	sdma_init_vdev(s);
	ret = sdma_engine_start(s);
	if (!ret) {
		ret = vfio_device_register(&s->vdev);
		if (ret)
			sdma_engine_stop(s);
	}
	if (ret) {
		dma_log_destroy(&s->log);
		pthread_cond_destroy(&s->cond);
		pthread_mutex_destroy(&s->lock);
		free(s);
		return ret;
	}
	TRACE(sdma_create, "%s: sid=%u mig=%#llx log=%d", s->name, s->cfg.sid,
	      (unsigned long long)s->cfg.mig_flags, !s->cfg.no_dma_log);
	*out = s;
	return 0;
}

void sdma_destroy(struct sdma *s)
{
	if (!s)
		return;
	vfio_device_unregister(&s->vdev);
	sdma_engine_stop(s);
	dma_log_destroy(&s->log);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
