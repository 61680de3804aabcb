// SPDX-License-Identifier: Apache-2.0
/*
 * The source side: setup, iterative pre-copy, switchover, commit, and roll-back on any
 * failure before COMMIT (MIGRATION.md, "Return path and commit"). One thread runs it all;
 * each RAM channel has a worker that sends its share of a pass; the return-path thread
 * reads the destination's answers (PONG, READY, RUNNING, ERROR) on the main channel.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/trace.h"
#include "common/util.h"
#include "vmm/kvm/shape.h"
#include "vmm/machine.h"
#include "vmm/migration/internal.h"

#define SRC_ANSWER_MS	   60000 /* READY and RUNNING must come within this */
#define SRC_KEEPALIVE_S	   1	 /* a PASS record on the main channel while RAM flows elsewhere */
#define SRC_SEND_TIMEOUT_S 30	 /* a peer that stops reading */
#define SRC_REASON_S	   1 /* how long a failed migration waits for the destination's reason */

static uint64_t src_us_since(uint64_t t0)
{
	return (mig_now_ns() - t0) / 1000;
}

static bool src_is_file(const struct migration *mig)
{
	return mig->uri.kind == MIG_URI_FILE;
}

/* Channels and the return path -------------------------------------------------------- */

static int src_open_chan(struct migration *mig, unsigned i)
{
	char err[256];
	struct mig_chan *c = &mig->chans[i];
	int fd = mig_uri_connect(&mig->uri, &mig->cancel, err, sizeof(err));
	struct timeval tv = {.tv_sec = SRC_SEND_TIMEOUT_S};

	if (fd < 0) {
		if (!mig_cancelled(mig)) /* a cancel says "cancelled", not why connect stopped */
			mig_set_error(mig, "%s", err);
		return fd;
	}
	/* Under the lock: a failing return path shuts channels down from its thread. */
	pthread_mutex_lock(&mig->lock);
	mig_chan_init(c, mig, fd, i);
	c->is_file = src_is_file(mig);
	pthread_mutex_unlock(&mig->lock);
	if (!c->is_file)
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	/* Never plaintext when TLS was asked for: the header waits for an accepted session. */
	int ret = mig_tls_connect(mig, c, err, sizeof(err));
	if (ret < 0) {
		if (!mig_cancelled(mig))
			mig_set_error(mig, "%s", err);
		return ret;
	}
	struct mig_hdr h;
	mig_hdr_fill(&h, mig, i, c->is_file ? MIG_HDR_F_FILE : 0);
	struct iovec v = {.iov_base = &h, .iov_len = sizeof(h)};
	return mig_chan_write_all(c, &v, 1);
}

/* READY carries the destination's post-load time and STEs; RUNNING its held replays. */
static void src_rp_note(struct migration *mig, const struct mig_rec *r)
{
	pthread_mutex_lock(&mig->lock);
	mig->rp_msg = r->type;
	if (r->type == MIG_T_READY) {
		mig->rp_ready_ns = mig_now_ns();
		mig->phases.post_load_us = r->arg;
		mig->stes_reinstalled = r->count;
	}
	if (r->type == MIG_T_RUNNING) {
		mig->rp_running_ns = r->arg;
		mig->held_replayed = r->count;
	}
	pthread_cond_broadcast(&mig->cond);
	pthread_mutex_unlock(&mig->lock);
}

/* The destination's reason, as it sent it. */
static void src_rp_error(struct migration *mig, struct mig_chan *c, const struct mig_rec *r)
{
	char text[MIG_ERROR_TEXT_MAX + 1] = "";

	if (r->len > MIG_ERROR_TEXT_MAX)
		snprintf(text, sizeof(text),
			 "(a reason of %u bytes, longer than any reason: a broken or hostile peer)",
			 r->len);
	else if (mig_chan_recv_payload(c, r, text) == 0)
		text[r->len] = 0;
	else
		snprintf(text, sizeof(text), "(unreadable reason)");
	/*
	 * The destination's reason wins over the local failures it caused (a broken pipe), not
	 * over a reason of this side that made the source give up (its stream then just ends).
	 */
	pthread_mutex_lock(&mig->lock);
	if (!mig->error_is_cause)
		snprintf(mig->error, sizeof(mig->error), "destination: %s", text);
	pthread_mutex_unlock(&mig->lock);
	TRACE(mig_error, "destination: %s", text);
	mig_unblock_all(mig);
}

/* This side gave up: the destination's "the source went away" is no reason. */
static void src_own_failure(struct migration *mig)
{
	pthread_mutex_lock(&mig->lock);
	mig->error_is_cause = true;
	pthread_mutex_unlock(&mig->lock);
}

/* What the return path may say now: READY once after END, RUNNING once after COMMIT. */
static const char *src_rp_out_of_order(struct migration *mig, const struct mig_rec *r)
{
	const char *why = NULL;

	pthread_mutex_lock(&mig->lock);
	bool pc_on = mig->postcopy && mig->committed;
	if (r->type == MIG_T_READY && (!mig->end_sent || mig->rp_msg == MIG_T_READY))
		why = "READY before the stream ended, or a second READY";
	else if (r->type == MIG_T_RUNNING && (!mig->committed || mig->rp_msg != MIG_T_READY))
		why = "RUNNING before COMMIT";
	else if ((r->type == MIG_T_PC_REQ || r->type == MIG_T_PC_DONE) && !pc_on)
		why = "a post-copy record outside post-copy";
	else if (r->type == MIG_T_PC_DONE && mig->rp_msg != MIG_T_RUNNING)
		why = "post-copy's end before RUNNING";
	else if (r->type != MIG_T_READY && r->type != MIG_T_RUNNING && r->type != MIG_T_PONG &&
		 r->type != MIG_T_PC_REQ && r->type != MIG_T_PC_DONE)
		why = "a record no destination sends";
	pthread_mutex_unlock(&mig->lock);
	return why;
}

/* A peer out of protocol: its own answers count for nothing from here on. */
static bool src_rp_broken(struct migration *mig, const char *why)
{
	mig_set_error(mig,
		      "the destination broke the migration protocol: %s (a broken or hostile peer)",
		      why);
	src_own_failure(mig);
	mig_unblock_all(mig);
	return false;
}

/* One answer; false when the return path is over. */
static bool src_rp_one(struct migration *mig, struct mig_chan *c)
{
	char err[256];
	struct mig_rec r;

	int ret = mig_chan_recv(c, &r, err, sizeof(err));
	if (ret < 0) {
		if (!mig_cancelled(mig))
			mig_set_error(mig, "the destination %s (%s)",
				      ret == -EBADMSG ? "sent a corrupt answer"
				      : ret == -EAGAIN || ret == -ETIMEDOUT
					  ? "stopped answering"
					  : "closed the connection",
				      err);
		mig_unblock_all(mig);
		return false;
	}
	if (r.section != MIG_SEC_STREAM || (r.type != MIG_T_ERROR && r.len))
		return src_rp_broken(mig, "an answer with a payload, or of another section");
	const char *why = r.type == MIG_T_ERROR ? NULL : src_rp_out_of_order(mig, &r);
	if (why)
		return src_rp_broken(mig, why);
	if (r.type == MIG_T_PC_REQ && !mig_pc_source_request(mig, r.arg, r.count))
		return src_rp_broken(mig, "a page request outside guest RAM, or malformed");
	if (r.type == MIG_T_PC_DONE)
		mig_pc_source_dest_done(mig);
	if (r.type == MIG_T_PONG) {
		__atomic_store_n(&mig->rtt_us, (mig_now_ns() - r.arg) / 1000, __ATOMIC_RELAXED);
		__atomic_store_n(&mig->dest_probe_us, r.count, __ATOMIC_RELAXED);
	} else if (r.type == MIG_T_ERROR)
		src_rp_error(mig, c, &r);
	else if (r.type == MIG_T_READY || r.type == MIG_T_RUNNING)
		src_rp_note(mig, &r);
	/* In post-copy the return path goes on after RUNNING: requests, then the end. */
	return r.type != MIG_T_ERROR && r.type != MIG_T_PC_DONE &&
	       !(r.type == MIG_T_RUNNING && !mig->postcopy);
}

static void *src_rp_thread(void *arg)
{
	struct migration *mig = arg;

	while (src_rp_one(mig, &mig->chans[0]))
		;
	pthread_mutex_lock(&mig->lock);
	mig->rp_done = true;
	pthread_cond_broadcast(&mig->cond);
	pthread_mutex_unlock(&mig->lock);
	return NULL;
}

/* Waits for the return path to say msg. */
/*
 * How long READY and RUNNING may take. Test seam (tests/migration/test_mig_hostile_dest.py):
 * VMIG_TEST_ANSWER_MS shortens it, so a silent peer is proven without a minute's wait.
 */
static int src_answer_ms(void)
{
	const char *v = getenv("VMIG_TEST_ANSWER_MS");
	long ms = v ? strtol(v, NULL, 10) : 0;

	return ms > 0 && ms < SRC_ANSWER_MS ? (int)ms : SRC_ANSWER_MS;
}

static int src_wait_answer(struct migration *mig, int msg, const char *what)
{
	int ret = 0;
	int answer_ms = src_answer_ms();
	struct timespec dl = realtime_after_ms((unsigned)answer_ms);

	pthread_mutex_lock(&mig->lock);
	while (mig->rp_msg != msg && !mig->rp_done && !mig_cancelled(mig) && ret == 0)
		ret = pthread_cond_timedwait(&mig->cond, &mig->lock, &dl);
	bool ok = mig->rp_msg == msg;
	pthread_mutex_unlock(&mig->lock);
	if (!ok && ret == ETIMEDOUT)
		mig_set_error(mig, "the destination did not answer %s within %d ms", what,
			      answer_ms);
	return ok ? 0 : mig_cancelled(mig) ? -ECANCELED : -EIO;
}

/* RAM channel workers ------------------------------------------------------------------ */

static void *src_ram_worker(void *arg)
{
	struct mig_chan *ch = arg;
	struct migration *mig = ch->mig;
	uint64_t seen = 0;

	for (;;) {
		pthread_mutex_lock(&mig->lock);
		while (mig->crew_gen == seen && !mig->crew_stop)
			pthread_cond_wait(&mig->cond, &mig->lock);
		bool stop = mig->crew_stop;
		seen = mig->crew_gen;
		pthread_mutex_unlock(&mig->lock);
		if (stop)
			break;
		int ret = mig_ram_send_share(mig->ram, ch, ch->index - 1, mig->nr_chans - 1);
		if (ret < 0 && !mig_cancelled(mig)) {
			mig_set_error(mig, "RAM channel %u: %s", ch->index, mig_io_strerror(-ret));
			mig_unblock_all(mig);
		}
		pthread_mutex_lock(&mig->lock);
		if (ret < 0 && !mig->crew_err)
			mig->crew_err = ret;
		mig->crew_done++;
		pthread_cond_broadcast(&mig->cond);
		pthread_mutex_unlock(&mig->lock);
	}
	return NULL;
}

static int src_crew_start(struct migration *mig)
{
	mig->crew_gen = 0;
	mig->crew_stop = false;
	mig->crew_err = 0;
	for (unsigned i = 1; i < mig->nr_chans; i++) {
		struct mig_chan *c = &mig->chans[i];
		int ret = -pthread_create(&c->thread, NULL, src_ram_worker, c);
		if (ret < 0)
			return ret;
		c->thread_live = true;
	}
	return 0;
}

static void src_crew_stop(struct migration *mig)
{
	pthread_mutex_lock(&mig->lock);
	mig->crew_stop = true;
	pthread_cond_broadcast(&mig->cond);
	pthread_mutex_unlock(&mig->lock);
	for (unsigned i = 1; i < mig->nr_chans; i++) {
		if (mig->chans[i].thread_live)
			pthread_join(mig->chans[i].thread, NULL);
		mig->chans[i].thread_live = false;
	}
}

/* Waits for the crew's pass, keeping the main channel alive meanwhile. */
static int src_crew_wait(struct migration *mig)
{
	int ret = 0;

	pthread_mutex_lock(&mig->lock);
	while (mig->crew_done < mig->nr_chans - 1 && ret == 0) {
		struct timespec dl;
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_sec += SRC_KEEPALIVE_S;
		if (pthread_cond_timedwait(&mig->cond, &mig->lock, &dl) != ETIMEDOUT)
			continue;
		pthread_mutex_unlock(&mig->lock);
		ret = mig_chan_send(&mig->chans[0], MIG_SEC_STREAM, MIG_T_PASS, mig->passes, 0,
				    NULL, 0);
		if (ret < 0)
			mig_unblock_all(mig); /* the workers must not wait on a dead peer */
		pthread_mutex_lock(&mig->lock);
	}
	while (mig->crew_done < mig->nr_chans - 1) /* after a failed keep-alive */
		pthread_cond_wait(&mig->cond, &mig->lock);
	if (ret == 0)
		ret = mig->crew_err;
	pthread_mutex_unlock(&mig->lock);
	return ret;
}

/* Every dirty page once: on the main channel, or shared among the RAM channels. */
static int src_send_ram(struct migration *mig)
{
	mig_ram_pace_reset(mig->ram);
	if (mig->nr_chans == 1)
		return mig_ram_send_share(mig->ram, &mig->chans[0], 0, 1);
	pthread_mutex_lock(&mig->lock);
	mig->crew_gen++;
	mig->crew_done = 0;
	pthread_cond_broadcast(&mig->cond);
	pthread_mutex_unlock(&mig->lock);
	return src_crew_wait(mig);
}

/* Sections ------------------------------------------------------------------------------ */

enum src_hook { SRC_LOG_START, SRC_SETUP, SRC_LOG_SYNC, SRC_DRAIN, SRC_QUIESCE, SRC_STOP };

static int (*src_hook_fn(const struct mig_section_ops *o, enum src_hook h))(struct mig_section *)
{
	switch (h) {
	case SRC_LOG_START:
		return o->log_start;
	case SRC_SETUP:
		return o->setup;
	case SRC_LOG_SYNC:
		return o->log_sync;
	case SRC_DRAIN:
		return o->drain;
	case SRC_QUIESCE:
		return o->quiesce;
	case SRC_STOP:
		return o->stop;
	}
	return NULL;
}

/* One hook of every section, in order; the first failure stops and names the section. */
static int src_sections(struct migration *mig, enum src_hook h)
{
	for (unsigned i = 0; i < mig->nr_sections; i++) {
		struct mig_section *s = &mig->sections[i];
		int (*fn)(struct mig_section *) = src_hook_fn(s->ops, h);
		int ret = fn ? fn(s) : 0;
		if (ret < 0) {
			mig_set_error(mig, "%s: %s", s->ops->name, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

/* Pre-copy data of the sections other than RAM (devices), on the main channel. */
static int src_save_passes(struct migration *mig)
{
	for (unsigned i = 0; i < mig->nr_sections; i++) {
		struct mig_section *s = &mig->sections[i];
		int ret = s->ops->save_pass ? s->ops->save_pass(s, &mig->chans[0]) : 0;
		if (ret < 0) {
			mig_set_error(mig, "%s: %s", s->ops->name, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

/* Bytes still to send; *must: of those, what has to go before the switchover. */
static uint64_t src_pending(struct migration *mig, uint64_t *must)
{
	uint64_t total = 0;

	*must = 0;
	for (unsigned i = 0; i < mig->nr_sections; i++) {
		struct mig_section *s = &mig->sections[i];
		uint64_t m = 0;
		if (s->ops->pending)
			total += s->ops->pending(s, &m);
		*must += m;
	}
	return total;
}

static int src_save_complete(struct migration *mig)
{
	for (unsigned i = 0; i < mig->nr_sections; i++) {
		struct mig_section *s = &mig->sections[i];
		int ret = s->ops->save_complete ? s->ops->save_complete(s, &mig->chans[0]) : 0;
		if (ret < 0) {
			mig_set_error(mig, "saving %s: %s", s->ops->name, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

/* Setup --------------------------------------------------------------------------------- */

/*
 * Stopping the vCPUs is part of every downtime and its cost depends on the host (a vCPU
 * busy in guest code must be kicked out): measure it once, with a pause the guest sees as
 * one short stall, instead of assuming it.
 */
static void src_probe_stop(struct migration *mig)
{
	uint64_t t0 = mig_now_ns();

	if (vm_pause(mig->m->vm, VM_PAUSE_MIGRATION) == 0)
		vm_resume(mig->m->vm, VM_PAUSE_MIGRATION);
	mig->stop_probe_us = (mig_now_ns() - t0) / 1000;
}

/* The CPU shape goes first: a destination that cannot take it refuses before any RAM. */
static int src_send_shape(struct migration *mig)
{
	void *blob;
	size_t len;
	int ret = vm_shape_save(mig->m->vm, &blob, &len);

	if (ret < 0) {
		mig_set_error(mig, "cannot describe this VM's CPU shape: %s", strerror(-ret));
		return ret;
	}
	struct iovec v = {.iov_base = blob, .iov_len = len};
	ret = mig_chan_send(&mig->chans[0], MIG_SEC_STREAM, MIG_T_SHAPE, 0, 0, &v, 1);
	free(blob);
	return ret;
}

static int src_setup(struct migration *mig)
{
	int ret = src_open_chan(mig, 0);

	/*
	 * The destination accepts the RAM channels once the shape fits: a TLS handshake on
	 * one needs that side to be accepting already. The return path reads from then on,
	 * so a destination that refused the shape is heard, not a RAM channel's reset.
	 */
	if (ret == 0)
		ret = src_send_shape(mig);
	if (ret == 0 && !src_is_file(mig)) {
		ret = -pthread_create(&mig->rp_thread, NULL, src_rp_thread, mig);
		mig->rp_live = ret == 0;
	}
	/* A destination that already refused (its reason on the return path) gets no more. */
	for (unsigned i = 1; i < mig->nr_chans && ret == 0 && !mig_failing(mig); i++)
		ret = src_open_chan(mig, i);
	if (ret == 0 && mig_failing(mig))
		ret = -ECANCELED;
	if (ret == 0 && !src_is_file(mig))
		ret = mig_chan_send(&mig->chans[0], MIG_SEC_STREAM, MIG_T_PING, mig_now_ns(), 0,
				    NULL, 0);
	/* Every log starts before any first pass is planned: a write in between is logged. */
	if (ret == 0)
		ret = src_sections(mig, SRC_LOG_START);
	if (ret == 0)
		ret = src_sections(mig, SRC_SETUP);
	if (ret == 0)
		ret = src_crew_start(mig);
	if (ret == 0)
		src_probe_stop(mig);
	return ret;
}

/* Pre-copy ------------------------------------------------------------------------------- */

struct src_pass {
	uint64_t bandwidth; /* bytes/s, best recent estimate */
	uint64_t dirty_rate;
	uint64_t t0_ns, sent, us; /* the last pass: its start, bytes, length */
	uint64_t remaining;	  /* what the decision saw left (src_decide) */
};

static uint64_t src_bytes_out(struct migration *mig)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < mig->nr_chans; i++)
		sum += __atomic_load_n(&mig->chans[i].bytes_out, __ATOMIC_RELAXED);
	return sum;
}

/* Sends one pass and harvests; fills the measured figures. */
static int src_one_pass(struct migration *mig, struct src_pass *p)
{
	uint64_t pass = __atomic_add_fetch(&mig->passes, 1, __ATOMIC_RELAXED);
	uint64_t b0 = src_bytes_out(mig), t0 = mig_now_ns();
	int ret;

	mig_emit(mig, "MIGRATION_PASS", "{\"pass\": %llu}", (unsigned long long)pass);
	if ((ret = mig_chan_send(&mig->chans[0], MIG_SEC_STREAM, MIG_T_PASS, pass, 0, NULL, 0)) <
		0 ||
	    (ret = src_send_ram(mig)) < 0 || (ret = src_save_passes(mig)) < 0)
		return ret;
	uint64_t sent = src_bytes_out(mig) - b0, t1 = mig_now_ns();
	p->t0_ns = t0;
	p->sent = sent;
	__atomic_add_fetch(&mig->precopy_bytes, sent, __ATOMIC_RELAXED);
	if ((ret = src_sections(mig, SRC_LOG_SYNC)) < 0)
		return ret;
	mig->last_sync_us = src_us_since(t1);
	p->us = src_us_since(t0);
	double secs = (double)(mig_now_ns() - t0) / 1e9;
	/* The link's rate, over the sending alone: the decision adds the harvest itself. */
	double send_secs = (double)(t1 - t0) / 1e9;
	uint64_t bw = (uint64_t)((double)sent / (send_secs > 1e-6 ? send_secs : 1e-6));
	/* A tiny pass measures latency, not the link: keep the better estimate then. */
	p->bandwidth = sent >= (4u << 20) || bw > p->bandwidth ? bw : p->bandwidth;
	uint64_t must;
	p->dirty_rate = (uint64_t)((double)src_pending(mig, &must) / (secs > 1e-6 ? secs : 1e-6));
	mig->mbps = (double)bw * 8 / 1e6;
	__atomic_store_n(&mig->dirty_pages_rate, p->dirty_rate / 4096, __ATOMIC_RELAXED);
	return 0;
}

static void src_throttle_up(struct migration *mig)
{
	struct mig_params pr;
	migration_get_params(mig, &pr);
	uint64_t pct = mig->throttle_pct ? mig->throttle_pct + pr.cpu_throttle_increment
					 : pr.cpu_throttle_initial;
	pct = MIN(pct, pr.max_cpu_throttle);
	__atomic_store_n(&mig->throttle_pct, pct, __ATOMIC_RELAXED);
	vm_set_throttle(mig->m->vm, (unsigned)pct);
	TRACE(mig_throttle, "vCPUs throttled to %llu%%", (unsigned long long)pct);
}

/*
 * The switchover's fixed costs, each measured: stopping the vCPUs (probed at setup), the
 * last harvest (as long as the latest one), the destination applying the CPU state (its
 * own probe, in PONG), and the messages END, READY, COMMIT, RUNNING (two round trips).
 */
static uint64_t src_overhead_us(struct migration *mig)
{
	return mig->stop_probe_us + mig->last_sync_us +
	       __atomic_load_n(&mig->dest_probe_us, __ATOMIC_RELAXED) +
	       2 * __atomic_load_n(&mig->rtt_us, __ATOMIC_RELAXED);
}

static void src_decide(struct migration *mig, struct src_pass *p, struct mig_converge_out *out)
{
	struct mig_params pr;
	uint64_t must;
	migration_get_params(mig, &pr);
	struct mig_converge_in in = {
	    .remaining_bytes = src_pending(mig, &must),
	    .must_precopy_bytes = must,
	    .bandwidth = p->bandwidth,
	    .dirty_rate = p->dirty_rate,
	    .overhead_us = src_overhead_us(mig),
	    .pass_sync_us = mig->last_sync_us,
	    .limit_us = pr.downtime_limit_ms * 1000,
	    .pass = mig->passes,
	    .max_passes = pr.x_vmig_max_passes,
	    .auto_converge = migration_get_cap(mig, MIG_CAP_AUTO_CONVERGE),
	    .throttle_pct = mig->throttle_pct,
	    .max_throttle_pct = pr.max_cpu_throttle,
	};
	mig_converge_decide(&in, out);
	p->remaining = in.remaining_bytes;
	__atomic_store_n(&mig->expected_downtime_ms, (out->expected_us + 999) / 1000,
			 __ATOMIC_RELAXED);
	TRACE(mig_decide,
	      "pass=%llu remaining=%llu bw=%llu dirty-rate=%llu overhead=%lluus "
	      "expected=%lluus limit=%lluus -> %s",
	      (unsigned long long)in.pass, (unsigned long long)in.remaining_bytes,
	      (unsigned long long)in.bandwidth, (unsigned long long)in.dirty_rate,
	      (unsigned long long)in.overhead_us, (unsigned long long)out->expected_us,
	      (unsigned long long)in.limit_us, out->why);
}

static const char *const src_decision_names[] = {[MIG_DECIDE_NEXT_PASS] = "iterate",
						 [MIG_DECIDE_SWITCH] = "switch",
						 [MIG_DECIDE_THROTTLE] = "throttle"};

/* The pass just decided, into the timeline. */
static void src_record_pass(struct migration *mig, const struct src_pass *p,
			    const struct mig_converge_out *out)
{
	struct mig_pass_record r = {
	    .t_ms = p->t0_ns > mig->start_ns ? (p->t0_ns - mig->start_ns) / 1000000 : 0,
	    .pass = mig->passes,
	    .duration_us = p->us,
	    .bytes = p->sent,
	    .bandwidth = p->bandwidth,
	    .remaining = p->remaining, /* asking the sections again costs their queries */
	    .dirty_rate = p->dirty_rate,
	    .expected_downtime_us = out->expected_us,
	    .throttle_pct = mig->throttle_pct,
	};
	snprintf(r.decision, sizeof(r.decision), "%s", src_decision_names[out->decision]);
	snprintf(r.why, sizeof(r.why), "%s", out->why);
	mig_timeline_note(mig, &r);
}

/* migrate-start-postcopy was said (with postcopy-ram, checked there): switch now. */
static bool src_postcopy_now(struct migration *mig)
{
	if (!__atomic_load_n(&mig->postcopy_asked, __ATOMIC_ACQUIRE))
		return false;
	mig->postcopy = true;
	TRACE(mig_postcopy, "switching to post-copy after pass %llu",
	      (unsigned long long)mig->passes);
	return true;
}

/*
 * The switchover is decided: from here migrate-start-postcopy is refused. One asked for
 * after the last look but before this still counts (both under the lock).
 */
static int src_precopy_over(struct migration *mig)
{
	pthread_mutex_lock(&mig->lock);
	if (__atomic_load_n(&mig->postcopy_asked, __ATOMIC_ACQUIRE))
		mig->postcopy = true;
	__atomic_store_n(&mig->precopy_over, true, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&mig->lock);
	return 0;
}

/* x-vmig-postcopy-after: N passes in a row over the downtime limit ask for post-copy. */
static void src_postcopy_auto(struct migration *mig, const struct mig_converge_out *out,
			      uint64_t *over)
{
	struct mig_params pr;

	migration_get_params(mig, &pr);
	*over = out->expected_us > pr.downtime_limit_ms * 1000 ? *over + 1 : 0;
	if (pr.x_vmig_postcopy_after && *over >= pr.x_vmig_postcopy_after &&
	    migration_get_cap(mig, MIG_CAP_POSTCOPY_RAM))
		__atomic_store_n(&mig->postcopy_asked, true, __ATOMIC_RELEASE);
}

/* Passes until the switchover fits; deadline_ns (0: none) bounds them. */
static int src_iterate(struct migration *mig, uint64_t deadline_ns)
{
	struct src_pass p = {0};
	uint64_t over = 0;

	for (;;) {
		int ret = src_one_pass(mig, &p);
		if (ret < 0)
			return ret;
		if (mig_cancelled(mig))
			return -ECANCELED;
		if (deadline_ns && mig_now_ns() >= deadline_ns)
			return -ETIME; /* not -ETIMEDOUT: a channel's send timeout is that */
		struct mig_converge_out out;
		src_decide(mig, &p, &out);
		src_record_pass(mig, &p, &out);
		src_postcopy_auto(mig, &out, &over);
		if (src_postcopy_now(mig) || out.decision == MIG_DECIDE_SWITCH)
			return src_precopy_over(mig);
		if (out.decision == MIG_DECIDE_THROTTLE)
			src_throttle_up(mig);
	}
}

/* Switchover ---------------------------------------------------------------------------- */

static int src_end_channels(struct migration *mig)
{
	int ret = 0;

	for (unsigned i = 1; i < mig->nr_chans && ret == 0; i++)
		ret = mig_chan_send(&mig->chans[i], MIG_SEC_STREAM, MIG_T_EOS,
				    mig->chans[i].seq_out, 0, NULL, 0);
	return ret;
}

/*
 * vCPUs stopped: the devices stop (nothing writes guest RAM any more), then the last
 * harvest, the last dirty pages, every section's final state, END.
 */
static int src_stop_copy(struct migration *mig)
{
	uint64_t t = mig_now_ns(), b0 = src_bytes_out(mig);
	int ret = src_sections(mig, SRC_STOP);

	mig->phases.device_stop_us = src_us_since(t);
	t = mig_now_ns();
	if (ret == 0)
		ret = src_sections(mig, SRC_LOG_SYNC);

	mig->phases.final_sync_us = src_us_since(t);
	t = mig_now_ns();
	if (ret == 0)
		ret = mig->postcopy ? mig_pc_source_switch(mig) : src_send_ram(mig);
	if (ret == 0)
		ret = src_end_channels(mig);
	mig->phases.last_ram_us = src_us_since(t);
	t = mig_now_ns();
	if (ret == 0)
		ret = src_save_complete(mig);
	pthread_mutex_lock(&mig->lock);
	mig->end_sent = ret == 0; /* before END goes: a prompt READY must find it set */
	pthread_mutex_unlock(&mig->lock);
	if (ret == 0)
		ret = mig_chan_send(&mig->chans[0], MIG_SEC_STREAM, MIG_T_END, 0, 0, NULL, 0);
	mig->end_sent_ns = mig_now_ns();
	mig->phases.state_us = src_us_since(t);
	__atomic_store_n(&mig->downtime_bytes, src_bytes_out(mig) - b0, __ATOMIC_RELAXED);
	return ret;
}

static int src_stop_vcpus(struct migration *mig)
{
	uint64_t t = mig_now_ns();
	int ret;

	mig->stop_ns = mig_realtime_ns();
	if ((ret = vm_pause(mig->m->vm, VM_PAUSE_MIGRATION)) < 0)
		return ret;
	vm_set_throttle(mig->m->vm, 0);
	mig->phases.vcpu_stop_us = src_us_since(t);
	if (__atomic_load_n(&mig->m->vm->stop, __ATOMIC_ACQUIRE)) {
		mig_set_error(mig, "the guest stopped during the migration");
		return -ESRCH;
	}
	return 0;
}

/*
 * Downtime: from the source stopping its vCPUs to the destination running them. RUNNING
 * carries the destination's CLOCK_REALTIME; on one host that is exact. A clock that is
 * off (another host) is caught by the bound: no later than RUNNING's arrival minus half a
 * round trip.
 */
static void src_downtime(struct migration *mig, uint64_t running_arrived_rt)
{
	uint64_t rtt_half = __atomic_load_n(&mig->rtt_us, __ATOMIC_RELAXED) * 500;
	uint64_t upper =
	    running_arrived_rt - mig->stop_ns - MIN(rtt_half, running_arrived_rt - mig->stop_ns);
	uint64_t dest = mig->rp_running_ns;
	uint64_t ns =
	    dest > mig->stop_ns && dest <= running_arrived_rt ? dest - mig->stop_ns : upper;
	mig->downtime_us = ns / 1000;
}

/* END sent -> READY received, as the return path saw it (READY may come before we wait). */
static void src_note_dest_load(struct migration *mig)
{
	pthread_mutex_lock(&mig->lock);
	uint64_t us =
	    mig->rp_ready_ns > mig->end_sent_ns ? (mig->rp_ready_ns - mig->end_sent_ns) / 1000 : 0;
	mig->phases.dest_load_us = us ? us : 1;
	pthread_mutex_unlock(&mig->lock);
}

static int src_commit(struct migration *mig)
{
	int ret = src_wait_answer(mig, MIG_T_READY, "READY");

	if (ret < 0)
		return ret;
	src_note_dest_load(mig);
	pthread_mutex_lock(&mig->lock);
	/* From here the destination may run: never resume this copy by itself. A peer already
	 * found out of protocol gets no COMMIT (this side rolls back instead). */
	mig->committed = !mig->cancel && !mig->error[0];
	pthread_mutex_unlock(&mig->lock);
	if (!mig->committed)
		return -ECANCELED;
	uint64_t t = mig_now_ns();
	ret = mig_chan_send(&mig->chans[0], MIG_SEC_STREAM, MIG_T_COMMIT, 0, 0, NULL, 0);
	if (ret == 0)
		ret = src_wait_answer(mig, MIG_T_RUNNING, "RUNNING");
	mig->phases.resume_us = src_us_since(t);
	if (ret == 0)
		src_downtime(mig, mig_realtime_ns());
	return ret;
}

/* The faults the guest still owes, from the sections that know (the vSMMU). */
static uint64_t src_faults_outstanding(struct migration *mig)
{
	struct mig_info info = {0};

	mig_query_sections(mig, &info);
	return info.switchover.faults_outstanding;
}

/* The drain's bound from now (the drain itself, then the faults the quiesce waits for). */
static uint64_t src_arm_drain_deadline(struct migration *mig)
{
	pthread_mutex_lock(&mig->lock);
	uint64_t limit_ms = mig->params.x_vmig_drain_limit_ms;
	pthread_mutex_unlock(&mig->lock);
	mig->drain_deadline_ns = mig_now_ns() + limit_ms * 1000000ull;
	return limit_ms;
}

/* A throttled guest would answer its device's faults at the throttle's pace. */
static void src_throttle_off(struct migration *mig)
{
	__atomic_store_n(&mig->throttle_pct, 0, __ATOMIC_RELAXED);
	vm_set_throttle(mig->m->vm, 0);
}

static void src_drain_failed(struct migration *mig, int ret, const char *who, uint64_t limit_ms)
{
	if (ret == -ETIMEDOUT)
		mig_set_error(mig,
			      "the devices did not drain within %llu ms (x-vmig-drain-limit): %llu "
			      "I/O page faults outstanding that the guest did not answer; the "
			      "guest goes on here",
			      (unsigned long long)limit_ms,
			      (unsigned long long)src_faults_outstanding(mig));
	else
		mig_set_error(mig, "%s: %s", who, strerror(-ret));
	src_own_failure(mig);
}

/*
 * Device first (MIGRATION.md, "vIOMMU and faults in flight"): the devices take no new work
 * and finish what they have while the vCPUs still run and answer I/O page faults. A drain
 * that does not finish in time cancels the migration; nothing has stopped yet.
 */
static int src_drain(struct migration *mig)
{
	uint64_t t = mig_now_ns(), limit_ms;
	int ret = 0;
	unsigned i;

	limit_ms = src_arm_drain_deadline(mig);
	src_throttle_off(mig);
	for (i = 0; i < mig->nr_sections && ret == 0; i++) {
		struct mig_section *s = &mig->sections[i];
		ret = s->ops->drain ? s->ops->drain(s) : 0;
	}
	mig->phases.drain_us = src_us_since(t);
	if (ret < 0)
		src_drain_failed(mig, ret, mig->sections[i - 1].ops->name, limit_ms);
	return ret;
}

static bool src_has_drain(const struct migration *mig)
{
	for (unsigned i = 0; i < mig->nr_sections; i++)
		if (mig->sections[i].ops->drain)
			return true;
	return false;
}

/*
 * The vCPUs ran through the drain and dirtied memory: more passes (the devices still held)
 * until the switchover fits the downtime limit again, never past it silently.
 */
static int src_drain_catch_up(struct migration *mig)
{
	if (src_is_file(mig) || !src_has_drain(mig))
		return 0;
	/* The device is held meanwhile: the guest's I/O waits, so the passes are bounded too. */
	uint64_t limit_ms = src_arm_drain_deadline(mig);
	int ret = src_iterate(mig, mig->drain_deadline_ns);
	if (ret == -ETIME) {
		mig_set_error(mig,
			      "after the device drain, pre-copy did not fit the downtime limit "
			      "again within %llu ms (x-vmig-drain-limit) while the guest's device "
			      "work was held; the guest goes on here",
			      (unsigned long long)limit_ms);
		src_own_failure(mig);
	}
	return ret;
}

/*
 * Test seam (tests/migration/test_mig_sva.py, negative control): VMIG_TEST_VCPUS_FIRST=1
 * stops the vCPUs before the devices drain, the order that deadlocks on a fault only the
 * guest can answer. Unset in production.
 */
static bool src_test_vcpus_first(void)
{
	const char *v = getenv("VMIG_TEST_VCPUS_FIRST");

	return v && *v == '1';
}

/* Status "device" from the moment the devices stop running, as QEMU's clients expect. */
static int src_enter_device(struct migration *mig)
{
	return mig_set_status(mig, MIG_STATUS_ACTIVE, MIG_STATUS_DEVICE) ? 0 : -ECANCELED;
}

static int src_drain_and_quiesce(struct migration *mig)
{
	bool vcpus_first = src_test_vcpus_first();
	int ret = vcpus_first ? src_stop_vcpus(mig) : 0;

	if (ret == 0)
		ret = src_drain(mig);
	if (ret == 0 && !vcpus_first)
		ret = src_drain_catch_up(mig);
	if (ret == 0)
		ret = src_enter_device(mig);
	src_arm_drain_deadline(mig);
	src_throttle_off(mig);
	uint64_t t = mig_now_ns();
	if (ret == 0 && (ret = src_sections(mig, SRC_QUIESCE)) < 0)
		src_own_failure(mig);
	mig->phases.quiesce_us = src_us_since(t);
	if (ret == 0 && !vcpus_first)
		ret = src_stop_vcpus(mig);
	return ret;
}

static int src_switchover(struct migration *mig)
{
	int ret = src_drain_and_quiesce(mig);

	if (ret == 0)
		ret = src_stop_copy(mig);
	if (ret == 0 && src_is_file(mig)) {
		ret = fsync(mig->chans[0].fd) < 0 ? -errno : 0;
		if (ret == 0)
			ret = mig_uri_file_finish(&mig->uri, true);
		mig->downtime_us = (mig_realtime_ns() - mig->stop_ns) / 1000;
	} else if (ret == 0) {
		ret = src_commit(mig);
	}
	if (ret == 0 && mig->postcopy)
		ret = mig_pc_source_run(mig);
	return ret;
}

/* The end -------------------------------------------------------------------------------- */

static void src_cleanup_sections(struct migration *mig, bool failed)
{
	for (unsigned i = mig->nr_sections; i-- > 0;) {
		struct mig_section *s = &mig->sections[i];
		if (s->ops->cleanup)
			s->ops->cleanup(s, failed);
	}
}

/* A destination that failed sends its reason, then closes: give it a moment to arrive. */
static void src_rp_grace(struct migration *mig)
{
	struct timespec dl;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += SRC_REASON_S;
	pthread_mutex_lock(&mig->lock);
	while (mig->rp_live && !mig->rp_done && !mig->cancel &&
	       pthread_cond_timedwait(&mig->cond, &mig->lock, &dl) == 0)
		;
	pthread_mutex_unlock(&mig->lock);
}

static void src_close(struct migration *mig)
{
	mig_unblock_all(mig);
	src_crew_stop(mig);
	src_rp_grace(mig);
	mig_unblock_hard(mig);
	if (mig->rp_live)
		pthread_join(mig->rp_thread, NULL);
	mig->rp_live = false;
	pthread_mutex_lock(&mig->lock);
	for (unsigned i = 0; i < mig->nr_chans; i++)
		mig_chan_close(&mig->chans[i]);
	pthread_mutex_unlock(&mig->lock);
}

static void src_set_final(struct migration *mig, enum mig_status to)
{
	enum mig_status from = mig_get_status(mig);

	while (!mig_set_status(mig, from, to))
		from = mig_get_status(mig);
}

/* Failed after COMMIT: say so, the operator has to decide which copy runs. */
static void src_note_committed(struct migration *mig)
{
	char why[sizeof(mig->error)];

	pthread_mutex_lock(&mig->lock);
	snprintf(why, sizeof(why), "%s", mig->error);
	if (mig_pc_guest_ran(mig))
		snprintf(mig->error, sizeof(mig->error),
			 "post-copy stopped before every page reached the destination (%.250s): "
			 "the guest ran there and may wait for pages only this copy has; keep "
			 "this process (postmigrate, cont is refused)",
			 why);
	else
		snprintf(mig->error, sizeof(mig->error),
			 "COMMIT was sent but the destination never confirmed RUNNING (%.300s): "
			 "the guest may run there; this copy stays stopped (postmigrate) until "
			 "cont or quit",
			 why);
	pthread_mutex_unlock(&mig->lock);
}

static void src_finish(struct migration *mig, int ret)
{
	bool committed = mig->committed;

	if (ret < 0 && !mig->error[0])
		mig_set_error(mig, "%s", mig_cancelled(mig) ? "cancelled" : mig_io_strerror(-ret));
	if (ret < 0 && committed)
		src_note_committed(mig);
	src_close(mig);
	if (ret < 0 && src_is_file(mig))
		mig_uri_file_finish(&mig->uri, false);
	vm_set_throttle(mig->m->vm, 0);
	/* A roll-back switches device paths and replays held writes with the vCPUs stopped. */
	if (ret < 0 && !committed)
		vm_pause(mig->m->vm, VM_PAUSE_MIGRATION);
	src_cleanup_sections(mig, ret < 0 && !committed);
	mig->end_ns = mig_now_ns();
	pthread_mutex_lock(&mig->lock);
	mig->postmigrate = ret == 0 || committed;
	pthread_mutex_unlock(&mig->lock);
	if (ret < 0 && !committed)
		vm_resume(mig->m->vm, VM_PAUSE_MIGRATION); /* roll back: the guest goes on here */
	TRACE(mig_source_end, "ret=%d committed=%d downtime=%lluus error=%s", ret, committed,
	      (unsigned long long)mig->downtime_us, mig->error);
	if (ret == 0)
		src_set_final(mig, MIG_STATUS_COMPLETED);
	else
		src_set_final(mig, mig_cancelled(mig) && !committed ? MIG_STATUS_CANCELLED
								    : MIG_STATUS_FAILED);
}

void *mig_source_thread(void *arg)
{
	struct migration *mig = arg;
	int ret;

	/* migration_start() set setup already; its event goes out from here, in order. */
	mig_emit(mig, "MIGRATION", "{\"status\": \"setup\"}");
	ret = src_setup(mig);
	mig->setup_ns = mig_now_ns() - mig->start_ns;
	if (ret == 0 && !mig_set_status(mig, MIG_STATUS_SETUP, MIG_STATUS_ACTIVE))
		ret = -ECANCELED;
	/* A file is not live: the guest stops at once and everything goes in one pass. */
	if (ret == 0 && !src_is_file(mig))
		ret = src_iterate(mig, 0);
	if (ret == 0)
		ret = src_switchover(mig);
	src_finish(mig, ret);
	mig_tls_run_end(mig);
	return NULL;
}
