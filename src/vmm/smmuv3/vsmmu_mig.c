// SPDX-License-Identifier: Apache-2.0
/* The vSMMU's migration section (vsmmu_mig.h). */
#include "vmm/smmuv3/vsmmu_mig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/migration/migration.h"
#include "vmm/migration/section.h"
#include "vmm/smmuv3/vsmmu.h"

#define VSMMU_MIG_MAX (1u << 20) /* a larger state record is not ours */

enum vsmmu_mig_rec { VSMMU_MIG_T_STATE = 1 };

struct vsmmu_mig {
	struct vsmmu *vs;
	void *buf; /* destination: the state as it arrived */
	uint32_t len;
	int installed; /* post_load: streams re-installed */
};

/*
 * A stall still waiting for the guest would travel as a bare cookie the destination host
 * knows nothing of: the device side must have drained every fault first.
 */
static int vsmmu_mig_save(struct mig_section *s, struct mig_chan *main)
{
	struct vsmmu_mig *m = s->state;
	unsigned stalls = vsmmu_stall_count(m->vs);

	if (stalls) {
		mig_set_error(s->mig,
			      "the vSMMU has %u I/O page faults waiting for the guest at "
			      "the switchover: they cannot move yet",
			      stalls);
		return -EBUSY;
	}
	size_t len = vsmmu_state_size(m->vs);
	void *buf = malloc(len);
	long n = buf ? vsmmu_state_save(m->vs, buf, len) : -ENOMEM;
	int ret = n < 0 ? (int)n
			: mig_chan_send(main, s->id, VSMMU_MIG_T_STATE, 0, 0,
					&(struct iovec){.iov_base = buf, .iov_len = (size_t)n}, 1);
	free(buf);
	return ret;
}

static int vsmmu_mig_load(struct mig_section *s, struct mig_chan *ch, const struct mig_rec *r,
			  char *err, size_t errlen)
{
	struct vsmmu_mig *m = s->state;
	struct mig_rec_view v;

	mig_rec_get(r, &v);
	if (v.type != VSMMU_MIG_T_STATE || m->buf || !v.len || v.len > VSMMU_MIG_MAX) {
		snprintf(err, errlen, "vSMMU: unexpected state record (type %u, %u bytes)", v.type,
			 v.len);
		return -EBADMSG;
	}
	m->buf = malloc(v.len);
	if (!m->buf)
		return -ENOMEM;
	m->len = v.len;
	return mig_chan_recv_payload(ch, r, m->buf);
}

static int vsmmu_mig_load_check(struct mig_section *s, char *err, size_t errlen)
{
	struct vsmmu_mig *m = s->state;

	if (m->buf)
		return 0;
	snprintf(err, errlen,
		 "no vSMMU state arrived: the source has no vSMMUv3 (start this side "
		 "with --no-devices, as the source was)");
	return -ENODATA;
}

static int vsmmu_mig_apply(struct mig_section *s, char *err, size_t errlen)
{
	struct vsmmu_mig *m = s->state;
	int ret = vsmmu_state_load(m->vs, m->buf, m->len);

	if (ret < 0)
		snprintf(err, errlen, "vSMMU: the state does not fit this vSMMU (%s)",
			 strerror(-ret));
	return ret;
}

/* Every guest stage-1 configuration goes into the destination host before a device runs. */
static int vsmmu_mig_post_load(struct mig_section *s, char *err, size_t errlen)
{
	struct vsmmu_mig *m = s->state;
	int ret = vsmmu_post_load(m->vs);

	if (ret < 0) {
		snprintf(err, errlen,
			 "vSMMU: re-installing the guest's stream configurations "
			 "in this host failed (%s)",
			 strerror(-ret));
		return ret;
	}
	m->installed = ret;
	return 0;
}

static void vsmmu_mig_load_cleanup(struct mig_section *s)
{
	struct vsmmu_mig *m = s->state;

	free(m->buf);
	m->buf = NULL;
}

static const struct mig_section_ops vsmmu_mig_ops = {
    .name = "vsmmu",
    .save_complete = vsmmu_mig_save,
    .load = vsmmu_mig_load,
    .load_check = vsmmu_mig_load_check,
    .apply = vsmmu_mig_apply,
    .post_load = vsmmu_mig_post_load,
    .load_cleanup = vsmmu_mig_load_cleanup,
};

int vsmmu_mig_register(struct migration *mig, struct vsmmu *vs, struct vsmmu_mig **out)
{
	struct vsmmu_mig *m = calloc(1, sizeof(*m));
	int ret = -ENOMEM;

	if (m) {
		m->vs = vs;
		ret = migration_register_section(mig, &vsmmu_mig_ops, MIG_SEC_VSMMU, m);
	}
	if (ret < 0) {
		free(m);
		return ret;
	}
	*out = m;
	return 0;
}

void vsmmu_mig_free(struct vsmmu_mig *m)
{
	if (!m)
		return;
	free(m->buf);
	free(m);
}
