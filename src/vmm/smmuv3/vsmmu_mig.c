// SPDX-License-Identifier: Apache-2.0
/* The vSMMU's migration section (vsmmu_mig.h). */
#include "vmm/smmuv3/vsmmu_mig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "vmm/migration/migration.h"
#include "vmm/migration/section.h"
#include "vmm/smmuv3/vsmmu.h"

#define VSMMU_MIG_MAX (1u << 20) /* a larger state record is not ours */

enum vsmmu_mig_rec {
	VSMMU_MIG_T_STATE = 1,
	VSMMU_MIG_T_STREAMS = 2, /* count: attached streams; {u32 vsid, u32 in force} each */
};

#define VSMMU_MIG_STREAMS_MAX 64u /* the bridge attaches fewer */

struct vsmmu_mig_stream_wire {
	uint32_t vsid;
	uint32_t in_force;
};

struct vsmmu_mig {
	struct vsmmu *vs;
	void *buf; /* destination: the state as it arrived */
	uint32_t len;
	int installed; /* post_load: streams re-installed */
	struct vsmmu_mig_stream_wire streams[VSMMU_MIG_STREAMS_MAX]; /* destination: source's */
	uint32_t nr_streams;
	bool got_streams;
	/* Source: stalls delivered and waiting when the drain began; drained at the stop. */
	uint64_t stalls_at_drain, waiting_at_drain, drained;
	bool draining;
};

static uint64_t vsmmu_mig_stalls_delivered(struct vsmmu *vs)
{
	struct vsmmu_stats st;

	vsmmu_get_stats(vs, &st);
	return st.stalls;
}

/* A new migration from this side: figures of an earlier one (as a destination) go. */
static int vsmmu_mig_setup(struct mig_section *s)
{
	struct vsmmu_mig *m = s->state;
	struct vsmmu_stream st[1];
	unsigned n = vsmmu_streams(m->vs, st, 0);

	/* Known now: refused before anything stopped, not after the switchover. */
	if (n > VSMMU_MIG_STREAMS_MAX) {
		mig_set_error(s->mig, "vSMMU: %u attached streams, at most %u can migrate", n,
			      VSMMU_MIG_STREAMS_MAX);
		return -E2BIG;
	}

	__atomic_store_n(&m->installed, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&m->drained, 0, __ATOMIC_RELAXED);
	m->draining = false;
	return 0;
}

/* The devices drain now: every fault the guest answers from here on is one drained. */
static int vsmmu_mig_drain(struct mig_section *s)
{
	struct vsmmu_mig *m = s->state;

	m->waiting_at_drain = vsmmu_stall_count(m->vs);
	m->stalls_at_drain = vsmmu_mig_stalls_delivered(m->vs);
	m->draining = true;
	return 0;
}

/* vCPUs stopped: no fault can be answered any more, the drain's count is final. */
static int vsmmu_mig_stop(struct mig_section *s)
{
	struct vsmmu_mig *m = s->state;
	uint64_t delivered = vsmmu_mig_stalls_delivered(m->vs) - m->stalls_at_drain;
	uint64_t waiting = vsmmu_stall_count(m->vs);
	uint64_t owed = m->waiting_at_drain + delivered;

	if (m->draining)
		__atomic_store_n(&m->drained, owed > waiting ? owed - waiting : 0,
				 __ATOMIC_RELAXED);
	m->draining = false;
	return 0;
}

static void vsmmu_mig_query(struct mig_section *s, struct mig_info *out)
{
	struct vsmmu_mig *m = s->state;

	out->switchover.faults_drained += __atomic_load_n(&m->drained, __ATOMIC_RELAXED);
	out->switchover.faults_outstanding += vsmmu_stall_count(m->vs);
	out->switchover.stes_reinstalled +=
	    (uint64_t)__atomic_load_n(&m->installed, __ATOMIC_RELAXED);
}

/* Which streams the source's host had in force: the destination's must take them too. */
static int vsmmu_mig_send_streams(struct vsmmu_mig *m, struct mig_section *s, struct mig_chan *main)
{
	struct vsmmu_stream st[VSMMU_MIG_STREAMS_MAX];
	struct vsmmu_mig_stream_wire w[VSMMU_MIG_STREAMS_MAX];
	unsigned n = vsmmu_streams(m->vs, st, VSMMU_MIG_STREAMS_MAX);

	if (n > VSMMU_MIG_STREAMS_MAX) {
		mig_set_error(s->mig, "vSMMU: %u attached streams, at most %u can migrate", n,
			      VSMMU_MIG_STREAMS_MAX);
		return -E2BIG;
	}
	for (unsigned i = 0; i < n; i++)
		w[i] = (struct vsmmu_mig_stream_wire){st[i].vsid, st[i].in_force};
	return mig_chan_send(main, s->id, VSMMU_MIG_T_STREAMS, 0, n,
			     &(struct iovec){.iov_base = w, .iov_len = n * sizeof(w[0])}, 1);
}

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
	return ret < 0 ? ret : vsmmu_mig_send_streams(m, s, main);
}

static int vsmmu_mig_load_streams(struct vsmmu_mig *m, struct mig_chan *ch, const struct mig_rec *r,
				  const struct mig_rec_view *v, char *err, size_t errlen)
{
	int ret = -EBADMSG;

	if (!m->got_streams && v->count <= VSMMU_MIG_STREAMS_MAX &&
	    v->len == v->count * sizeof(m->streams[0]))
		ret = v->len ? mig_chan_recv_payload(ch, r, m->streams) : 0;
	for (uint32_t i = 0; ret == 0 && i < v->count; i++)
		if (m->streams[i].in_force > 1)
			ret = -EBADMSG;
	if (ret == -EBADMSG)
		snprintf(err, errlen, "vSMMU: malformed list of attached streams (%u, %u bytes)",
			 v->count, v->len);
	m->nr_streams = ret == 0 ? v->count : 0;
	m->got_streams = ret == 0;
	return ret;
}

static int vsmmu_mig_load(struct mig_section *s, struct mig_chan *ch, const struct mig_rec *r,
			  char *err, size_t errlen)
{
	struct vsmmu_mig *m = s->state;
	struct mig_rec_view v;

	mig_rec_get(r, &v);
	if (v.type == VSMMU_MIG_T_STREAMS)
		return vsmmu_mig_load_streams(m, ch, r, &v, err, errlen);
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

/*
 * The whole state checked before anything is applied. A stall in it would be a cookie of
 * the source's host, meaningless here: a guest RESUME could answer an unrelated fault of
 * this host. The source drains them all; a stream that carries one is refused.
 */
static int vsmmu_mig_load_check(struct mig_section *s, char *err, size_t errlen)
{
	struct vsmmu_mig *m = s->state;
	unsigned stalls = 0;
	int ret;

	if (!m->buf) {
		snprintf(err, errlen,
			 "no vSMMU state arrived: the source has no vSMMUv3 (start this side "
			 "with --no-devices, as the source was)");
		return -ENODATA;
	}
	if (!m->got_streams) {
		snprintf(err, errlen, "vSMMU: the list of attached streams is missing");
		return -ENODATA;
	}
	ret = vsmmu_state_check(m->vs, m->buf, m->len, &stalls);
	if (ret < 0)
		snprintf(err, errlen, "vSMMU: the state does not fit this vSMMU (%s)",
			 strerror(-ret));
	else if (stalls) {
		snprintf(err, errlen,
			 "vSMMU: the state holds %u stalled faults of the source's host; "
			 "they cannot be answered here",
			 stalls);
		ret = -EBADMSG;
	}
	return ret;
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

static bool vsmmu_mig_in_force(const struct vsmmu_stream *st, unsigned n, uint32_t vsid)
{
	for (unsigned i = 0; i < n; i++)
		if (st[i].vsid == vsid)
			return st[i].in_force;
	return false;
}

/*
 * Every stream the source's host had in force is attached here and this host took its
 * configuration: otherwise the device that worked there would abort here, so the
 * migration fails (and the source goes on) instead.
 */
static int vsmmu_mig_check_streams(struct vsmmu_mig *m, char *err, size_t errlen)
{
	struct vsmmu_stream st[VSMMU_MIG_STREAMS_MAX];
	unsigned n = MIN(vsmmu_streams(m->vs, st, VSMMU_MIG_STREAMS_MAX), VSMMU_MIG_STREAMS_MAX);

	for (uint32_t i = 0; i < m->nr_streams; i++) {
		uint32_t vsid = m->streams[i].vsid;
		if (!m->streams[i].in_force || vsmmu_mig_in_force(st, n, vsid))
			continue;
		snprintf(err, errlen,
			 "vSMMU: this host refused the guest's configuration of stream %#x (or has "
			 "no device there), which the source's host had in force",
			 vsid);
		return -EPROTO;
	}
	return 0;
}

/*
 * Test seam (tests/migration/test_mig_sva.py, post-load's negative control):
 * VMIG_TEST_SKIP_POST_LOAD=1 installs nothing here. Unset in production.
 */
static bool vsmmu_mig_test_skip(void)
{
	const char *v = getenv("VMIG_TEST_SKIP_POST_LOAD");

	return v && *v == '1';
}

/* Every guest stage-1 configuration goes into the destination host before a device runs. */
static int vsmmu_mig_post_load(struct mig_section *s, char *err, size_t errlen)
{
	struct vsmmu_mig *m = s->state;

	if (vsmmu_mig_test_skip())
		return 0;
	int ret = vsmmu_post_load(m->vs);

	if (ret < 0) {
		snprintf(err, errlen,
			 "vSMMU: re-installing the guest's stream configurations "
			 "in this host failed (%s)",
			 strerror(-ret));
		return ret;
	}
	__atomic_store_n(&m->installed, ret, __ATOMIC_RELAXED);
	return vsmmu_mig_check_streams(m, err, errlen);
}

static void vsmmu_mig_load_cleanup(struct mig_section *s)
{
	struct vsmmu_mig *m = s->state;

	free(m->buf);
	m->buf = NULL;
	m->got_streams = false;
	m->nr_streams = 0;
}

static const struct mig_section_ops vsmmu_mig_ops = {
    .name = "vsmmu",
    .setup = vsmmu_mig_setup,
    .drain = vsmmu_mig_drain,
    .stop = vsmmu_mig_stop,
    .save_complete = vsmmu_mig_save,
    .query = vsmmu_mig_query,
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
