// SPDX-License-Identifier: Apache-2.0
/*
 * The destination side: accept the main channel, check the header and the machine shape
 * before a byte of RAM is taken, accept the RAM channels, load (RAM straight into guest
 * memory, every other section collected), and once END proved the stream complete: check,
 * apply, post-load, READY; run the guest only on COMMIT, then RUNNING. Any failure sends
 * its reason back to the source and the guest never runs from this stream.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "common/trace.h"
#include "vmm/kvm/shape.h"
#include "vmm/machine.h"
#include "vmm/migration/internal.h"

#define DST_ACCEPT_MS 10000 /* RAM channels, once the main channel is in */
#define DST_SILENCE_S 30    /* the source keeps the main channel alive every second */
#define DST_SHAPE_MAX (1u << 20)
#define DST_LINGER_MS 300 /* after sending ERROR, before closing */
/* A connection's index until its header says which RAM channel it is (not 0: the main). */
#define DST_RAM_PENDING (MIG_MAX_CHANNELS + 1)
#define DST_LAST_MS	1000 /* a connection taken at the RAM channels' deadline */

/*
 * Discards what the source still sends for a moment: closing a socket with unread data
 * makes the kernel answer with a reset, and a reset can throw away the reason below before
 * the source read it.
 */
static void dst_linger(int fd)
{
	uint8_t sink[4096];

	for (int i = 0; i < DST_LINGER_MS / 5; i++) {
		while (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0)
			;
		usleep(5000);
	}
}

/* The reason for failing goes back to the source (best effort: it may be gone). */
static void dst_send_error(struct migration *mig, const char *text)
{
	struct mig_chan *c = &mig->chans[0];
	struct iovec v = {.iov_base = (void *)text, .iov_len = strnlen(text, MIG_ERROR_TEXT_MAX)};

	/*
	 * Without a TLS session the reason goes in plaintext: a plaintext source reads it, a
	 * TLS source refused in its handshake already had its alert and ignores it.
	 */
	if (c->fd < 0 || c->is_file || c->no_plain_reply)
		return;
	if (mig_chan_send(c, MIG_SEC_STREAM, MIG_T_ERROR, 0, 0, &v, 1) == 0) {
		shutdown(c->fd, SHUT_WR);
		dst_linger(c->fd);
	}
}

/* The header of connection c, checked against this machine. */
static int dst_read_hdr(struct migration *mig, struct mig_chan *c, struct mig_hdr *h, char *err,
			size_t errlen)
{
	const struct vm *vm = mig->m->vm;
	int ret = mig_chan_read_all(c, h, sizeof(*h));

	if (ret < 0) {
		snprintf(err, errlen, "the connection closed before a stream header arrived");
		return ret;
	}
	if ((ret = mig_hdr_check(h, err, errlen)) < 0)
		return ret;
	if (h->nr_vcpus != vm->nr_vcpus || h->mem_size != mig->m->mem->size) {
		snprintf(
		    err, errlen,
		    "the source VM has %u vCPUs and %llu MiB of RAM, this one %u and %llu MiB: "
		    "start the destination with --vcpus %u --mem %lluM",
		    h->nr_vcpus, (unsigned long long)(h->mem_size >> 20), vm->nr_vcpus,
		    (unsigned long long)(mig->m->mem->size >> 20), h->nr_vcpus,
		    (unsigned long long)(h->mem_size >> 20));
		return -EPROTO;
	}
	return 0;
}

static void dst_chan_open(struct migration *mig, unsigned i, int fd)
{
	struct mig_chan *c = &mig->chans[i];

	mig_chan_init(c, mig, fd, i);
	c->is_file = mig->uri.kind == MIG_URI_FILE;
}

/*
 * The main channel: a connection, its TLS session (if asked for) and a header for this
 * machine. *refused: a peer connected and was refused before its stream began.
 */
static int dst_accept_main_once(struct migration *mig, bool *refused, char *err, size_t errlen)
{
	struct mig_hdr h;
	int fd = mig->listen_fd;

	if (mig->uri.kind != MIG_URI_FILE)
		fd = mig_uri_accept(mig->listen_fd, INT_MAX, &mig->cancel);
	else
		mig->listen_fd = -1; /* the file is the channel */
	if (fd < 0) {
		snprintf(err, errlen, "no source connected: %s", strerror(-fd));
		return fd;
	}
	pthread_mutex_lock(&mig->lock);
	dst_chan_open(mig, 0, fd);
	mig->nr_chans = 1;
	pthread_mutex_unlock(&mig->lock);
	*refused = true;
	int ret = mig_tls_accept(mig, &mig->chans[0], MIG_TLS_SERVER_MS, err, errlen);
	if (ret < 0)
		return ret;
	struct timeval tv = {.tv_sec = DST_SILENCE_S};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ret = dst_read_hdr(mig, &mig->chans[0], &h, err, errlen);
	if (ret == 0 && h.channel != 0) {
		snprintf(err, errlen, "the first connection is RAM channel %u", h.channel);
		ret = -EBADMSG;
	}
	if (ret == 0) {
		memcpy(mig->session, h.session, sizeof(mig->session));
		mig->nr_chans = 1 + h.ram_channels;
	}
	return ret;
}

/* A refused peer is told why and let go; this side keeps listening for the right one. */
static void dst_count_refusal(struct migration *mig, const char *why, const char *still)
{
	log_error("incoming migration: refused a connection: %s (%s)", why, still);
	TRACE(mig_refused, "%s", why);
	pthread_mutex_lock(&mig->lock);
	mig->refused++;
	snprintf(mig->last_refusal, sizeof(mig->last_refusal), "%s", why);
	pthread_mutex_unlock(&mig->lock);
}

static void dst_refuse(struct migration *mig, const char *why)
{
	dst_count_refusal(mig, why, "still listening: x-vmig-keep-listening");
	dst_send_error(mig, why);
	pthread_mutex_lock(&mig->lock);
	mig_chan_close(&mig->chans[0]);
	mig->nr_chans = 0;
	pthread_mutex_unlock(&mig->lock);
}

static int dst_accept_main(struct migration *mig, char *err, size_t errlen)
{
	for (;;) {
		bool refused = false;
		int ret = dst_accept_main_once(mig, &refused, err, errlen);
		if (ret == 0 || !refused || mig->uri.kind == MIG_URI_FILE ||
		    !mig->caps[MIG_CAP_X_VMIG_KEEP_LISTENING] || mig_cancelled(mig))
			return ret;
		dst_refuse(mig, err);
	}
}

/* The source's CPU shape comes first and must fit this VM before anything is loaded. */
static int dst_read_shape(struct migration *mig, char *err, size_t errlen)
{
	struct mig_rec r;
	int ret = mig_chan_recv(&mig->chans[0], &r, err, errlen);

	if (ret < 0)
		return ret;
	if (r.section != MIG_SEC_STREAM || r.type != MIG_T_SHAPE || r.len > DST_SHAPE_MAX) {
		snprintf(err, errlen, "the stream does not start with the machine shape");
		return -EBADMSG;
	}
	void *blob = malloc(r.len ? r.len : 1);
	if (!blob)
		return -ENOMEM;
	ret = mig_chan_recv_payload(&mig->chans[0], &r, blob);
	if (ret < 0)
		snprintf(err, errlen, "the machine shape record is %s",
			 ret == -EBADMSG ? "corrupt" : "cut short");
	if (ret == 0 && vm_shape_check(mig->m->vm, blob, r.len, err, errlen) < 0)
		ret = -EPROTO;
	free(blob);
	return ret;
}

/* One connection that must be a RAM channel of this migration: taken, or refused (closed). */
static int dst_take_ram(struct migration *mig, int fd, int bound_ms, char *err, size_t errlen)
{
	struct mig_chan tmp;
	struct mig_hdr h;

	/* A connection that never says who it is must not hold the destination forever. */
	struct timeval tv = {.tv_sec = bound_ms / 1000, .tv_usec = bound_ms % 1000 * 1000};
	struct timeval none = {0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	mig_chan_init(&tmp, mig, fd, DST_RAM_PENDING);
	int ret = mig_tls_accept(mig, &tmp, MIN(bound_ms, MIG_TLS_SERVER_MS), err, errlen);
	if (ret == 0)
		ret = dst_read_hdr(mig, &tmp, &h, err, errlen);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none)); /* RAM may idle long */
	if (ret == 0 &&
	    (memcmp(h.session, mig->session, sizeof(h.session)) != 0 || h.channel == 0 ||
	     h.channel >= mig->nr_chans || mig->chans[h.channel].fd >= 0)) {
		snprintf(err, errlen,
			 "a connection that is not one of this migration's RAM "
			 "channels (channel %u)",
			 h.channel);
		ret = -EBADMSG;
	}
	if (ret < 0) {
		mig_chan_close(&tmp);
		return ret;
	}
	pthread_mutex_lock(&mig->lock);
	dst_chan_open(mig, h.channel, fd);
	mig->chans[h.channel].tls = tmp.tls;
	mig->chans[h.channel].bytes_in = tmp.bytes_in;
	pthread_mutex_unlock(&mig->lock);
	return 0;
}

/*
 * The next RAM channel. Another peer that connects meanwhile (a stray or hostile
 * connection, one the TLS handshake refuses) is refused and counted without harm to the
 * migration, which waits on for its channel until the bound.
 */
static int dst_accept_one_ram(struct migration *mig, char *err, size_t errlen)
{
	uint64_t deadline = mig_now_ns() + (uint64_t)DST_ACCEPT_MS * 1000000;
	char why[MIG_ERROR_TEXT_MAX] = "";
	int fd = -ETIMEDOUT;

	/* Each peer gets the time left (the last one at least DST_LAST_MS), then one more try. */
	for (bool last = false; !last;) {
		uint64_t now = mig_now_ns();
		int left = now < deadline ? (int)((deadline - now) / 1000000) : 0;
		last = left == 0;
		fd = mig_uri_accept(mig->listen_fd, MAX(left, 1), &mig->cancel);
		if (fd < 0)
			break;
		if (dst_take_ram(mig, fd, MAX(left, DST_LAST_MS), why, sizeof(why)) == 0)
			return 0;
		dst_count_refusal(mig, why, "waiting on for the RAM channel");
		fd = -ETIMEDOUT;
	}
	snprintf(err, errlen, "a RAM channel did not connect: %s%s%s", strerror(-fd),
		 why[0] ? "; refused meanwhile: " : "", why);
	return fd;
}

static void *dst_ram_thread(void *arg)
{
	struct mig_chan *c = arg;
	struct migration *mig = c->mig;
	char err[256] = "";
	struct mig_rec r;
	int ret;

	while ((ret = mig_chan_recv(c, &r, err, sizeof(err))) == 0) {
		if (r.section == MIG_SEC_STREAM && r.type == MIG_T_EOS && !r.len)
			break;
		if (r.section != MIG_SEC_RAM) {
			snprintf(err, sizeof(err),
				 "channel %u: a record of section %u on a RAM "
				 "channel",
				 c->index, r.section);
			ret = -EBADMSG;
			break;
		}
		if ((ret = mig_ram_load_rec(mig->ram, c, &r, err, sizeof(err))) < 0)
			break;
	}
	c->thread_ret = ret;
	if (ret < 0) {
		mig_set_error(mig, "%s", err);
		mig_unblock_all(mig);
	}
	pthread_mutex_lock(&mig->lock);
	mig->crew_done++;
	pthread_cond_broadcast(&mig->cond);
	pthread_mutex_unlock(&mig->lock);
	return NULL;
}

static int dst_start_ram(struct migration *mig, char *err, size_t errlen)
{
	for (unsigned i = 1; i < mig->nr_chans; i++) {
		int ret = dst_accept_one_ram(mig, err, errlen);
		if (ret < 0)
			return ret;
	}
	for (unsigned i = 1; i < mig->nr_chans; i++) {
		struct mig_chan *c = &mig->chans[i];
		int ret = -pthread_create(&c->thread, NULL, dst_ram_thread, c);
		if (ret < 0) {
			snprintf(err, errlen, "cannot start a RAM channel thread");
			return ret;
		}
		c->thread_live = true;
	}
	return 0;
}

/*
 * After END every RAM channel has sent its EOS already (the source ends them first): give
 * them DST_SILENCE_S to be read to the end, then cut them off, so a source that never
 * ends a channel cannot hold the destination.
 */
static void dst_wait_ram(struct migration *mig)
{
	struct timespec dl;
	int ret = 0;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += DST_SILENCE_S;
	pthread_mutex_lock(&mig->lock);
	while (mig->crew_done < mig->nr_chans - 1 && ret == 0)
		ret = pthread_cond_timedwait(&mig->cond, &mig->lock, &dl);
	pthread_mutex_unlock(&mig->lock);
	if (ret == ETIMEDOUT) {
		mig_set_error(mig, "a RAM channel did not end within %d s of the end marker",
			      DST_SILENCE_S);
		mig_unblock_all(mig);
	}
}

static int dst_join_ram(struct migration *mig)
{
	int ret = 0;

	for (unsigned i = 1; i < mig->nr_chans; i++) {
		struct mig_chan *c = &mig->chans[i];
		if (c->thread_live)
			pthread_join(c->thread, NULL);
		c->thread_live = false;
		if (c->thread_ret < 0 && ret == 0)
			ret = c->thread_ret;
	}
	return ret;
}

/* Sections ------------------------------------------------------------------------------ */

static int dst_sections_setup(struct migration *mig, char *err, size_t errlen)
{
	for (unsigned i = 0; i < mig->nr_sections; i++) {
		struct mig_section *s = &mig->sections[i];
		int ret = s->ops->load_setup ? s->ops->load_setup(s) : 0;
		if (ret < 0) {
			snprintf(err, errlen, "%s: %s", s->ops->name, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

/* The source switches to post-copy: its pages then come on the main channel alone. */
static int dst_postcopy_switch(struct migration *mig, char *err, size_t errlen)
{
	bool devices = mig_section_find(mig, MIG_SEC_VFIO) || mig_section_find(mig, MIG_SEC_VSMMU);

	if (mig->chans[0].is_file || mig->nr_chans != 1 || devices) {
		snprintf(err, errlen, "post-copy %s: not something a vmig source sends",
			 mig->chans[0].is_file ? "in a file"
			 : devices	       ? "with devices"
					       : "over multifd channels");
		return -EBADMSG;
	}
	mig->postcopy = true;
	return 0;
}

/* A record of the main channel; 1 at END. */
static int dst_main_rec(struct migration *mig, const struct mig_rec *r, char *err, size_t errlen)
{
	struct mig_chan *c = &mig->chans[0];

	if (r->section == MIG_SEC_STREAM && !r->len) {
		if (r->type == MIG_T_END)
			return 1;
		if (r->type == MIG_T_PASS)
			return 0;
		if (r->type == MIG_T_POSTCOPY)
			return dst_postcopy_switch(mig, err, errlen);
		if (r->type == MIG_T_PING && !c->is_file)
			return mig_chan_send(c, MIG_SEC_STREAM, MIG_T_PONG, r->arg,
					     (uint32_t)mig_cpu_apply_probe_us(mig), NULL, 0);
	}
	struct mig_section *s = mig_section_find(mig, r->section);
	bool ram_here = r->section != MIG_SEC_RAM || mig->nr_chans == 1;
	if (!s && r->section != MIG_SEC_RAM) {
		snprintf(err, errlen,
			 "the source sends state of a component this VM does not have "
			 "(section %u): start the destination with the source's device options "
			 "(--no-devices on both sides, or on neither)",
			 r->section);
		return -EBADMSG;
	}
	if (!s || !s->ops->load || !ram_here) {
		snprintf(err, errlen, "unexpected record (section %u, type %u) on the main channel",
			 r->section, r->type);
		return -EBADMSG;
	}
	return s->ops->load(s, c, r, err, errlen);
}

/* A file ends at END: anything after it is not this stream. */
static int dst_check_eof(struct migration *mig, char *err, size_t errlen)
{
	uint8_t byte;

	if (!mig->chans[0].is_file || read(mig->chans[0].fd, &byte, 1) == 0)
		return 0;
	snprintf(err, errlen, "data after the end of the stream");
	return -EBADMSG;
}

static int dst_main_loop(struct migration *mig, char *err, size_t errlen)
{
	struct mig_rec r;
	int ret;

	for (;;) {
		if ((ret = mig_chan_recv(&mig->chans[0], &r, err, errlen)) < 0)
			return ret;
		if ((ret = dst_main_rec(mig, &r, err, errlen)) != 0)
			return ret < 0 ? ret : dst_check_eof(mig, err, errlen);
	}
}

enum dst_hook { DST_CHECK, DST_APPLY, DST_POST_LOAD };

static int dst_section_hook(struct mig_section *s, enum dst_hook h, char *err, size_t errlen)
{
	const struct mig_section_ops *o = s->ops;

	if (h == DST_CHECK)
		return o->load_check ? o->load_check(s, err, errlen) : 0;
	if (h == DST_APPLY)
		return o->apply ? o->apply(s, err, errlen) : 0;
	return o->post_load ? o->post_load(s, err, errlen) : 0;
}

/* Every section checked before any applies; post-load once all applied. */
static int dst_finish_load(struct migration *mig, char *err, size_t errlen)
{
	dst_wait_ram(mig);
	int ret = dst_join_ram(mig);
	if (ret < 0)
		snprintf(err, errlen, "%.400s", mig->error);
	if (ret == 0 && mig->postcopy)
		ret = mig_pc_dest_collect(mig, err, errlen);

	for (enum dst_hook h = DST_CHECK; ret == 0 && h <= DST_POST_LOAD; h++) {
		uint64_t t = mig_now_ns();
		for (unsigned i = 0; ret == 0 && i < mig->nr_sections; i++)
			ret = dst_section_hook(&mig->sections[i], h, err, errlen);
		if (h == DST_POST_LOAD)
			mig->phases.post_load_us = (mig_now_ns() - t) / 1000;
	}
	/* Every pre-copy page landed and nothing else touches RAM before COMMIT: the pages
	 * still to come go absent now. */
	if (ret == 0 && mig->postcopy)
		ret = mig_pc_dest_prepare(mig, err, errlen);
	return ret;
}

/* Commit and run ------------------------------------------------------------------------ */

/*
 * Test seam (tests/migration/test_mig_faults.py): VMIG_TEST_DEST_DELAY_COMMIT_MS=N sleeps
 * N ms (at most 60 s) after READY went out, before COMMIT is read: the source has then
 * committed, and a test kills this destination inside the window. Unset in production.
 */
static void dst_test_delay_commit(void)
{
	const char *v = getenv("VMIG_TEST_DEST_DELAY_COMMIT_MS");
	unsigned long ms = v ? strtoul(v, NULL, 10) : 0;

	if (ms)
		usleep((useconds_t)(ms < 60000 ? ms : 60000) * 1000);
}

static int dst_wait_commit(struct migration *mig, char *err, size_t errlen)
{
	struct mig_chan *c = &mig->chans[0];
	struct mig_info info = {0};
	struct mig_rec r;

	mig_query_sections(mig, &info);
	int ret = mig_chan_send(c, MIG_SEC_STREAM, MIG_T_READY, mig->phases.post_load_us,
				(uint32_t)info.switchover.stes_reinstalled, NULL, 0);

	if (ret == 0)
		dst_test_delay_commit();
	if (ret == 0)
		ret = mig_chan_recv(c, &r, err, errlen);
	if (ret == 0 && (r.section != MIG_SEC_STREAM || r.type != MIG_T_COMMIT || r.len)) {
		snprintf(err, errlen, "the source sent something else than COMMIT");
		ret = -EBADMSG;
	}
	if (ret < 0 && !err[0])
		snprintf(err, errlen, "the source went away before COMMIT: %s", strerror(-ret));
	return ret;
}

static int dst_run(struct migration *mig, char *err, size_t errlen)
{
	for (unsigned i = 0; i < mig->nr_sections; i++) {
		struct mig_section *s = &mig->sections[i];
		int ret = s->ops->resume ? s->ops->resume(s) : 0;
		if (ret < 0) {
			snprintf(err, errlen, "resuming %s: %s", s->ops->name, strerror(-ret));
			return ret;
		}
	}
	__atomic_store_n(&mig->incoming_pending, false, __ATOMIC_RELEASE);
	/* Faults ask the source from now on (it takes requests once it committed). */
	int ret = mig->postcopy ? mig_pc_dest_start(mig) : 0;
	if (ret < 0) {
		snprintf(err, errlen, "post-copy: cannot start the fault thread: %s",
			 strerror(-ret));
		return ret;
	}
	ret = machine_start(mig->m);
	uint64_t now = mig_realtime_ns();
	if (ret < 0)
		mig_pc_dest_stop(mig); /* the error goes out on the main channel next */
	if (ret < 0) {
		snprintf(err, errlen, "cannot start the vCPUs: %s", strerror(-ret));
		return ret;
	}
	/* Completed before RUNNING goes out: whoever hears of RUNNING may use this host. In
	 * post-copy the pages still to come follow. */
	mig->end_ns = mig_now_ns();
	mig_set_status(mig, MIG_STATUS_ACTIVE,
		       mig->postcopy ? MIG_STATUS_POSTCOPY_ACTIVE : MIG_STATUS_COMPLETED);
	struct mig_info info = {0};
	mig_query_sections(mig, &info);
	if (!mig->chans[0].is_file)
		mig_pc_send(mig, MIG_T_RUNNING, now, (uint32_t)info.switchover.held_replayed);
	return 0;
}

/* The guest runs here now: whoever waits for the incoming migration hears it once. */
static void dst_incoming_done(struct migration *mig, bool ok)
{
	if (mig->hooks.incoming_done && !mig->incoming_told)
		mig->hooks.incoming_done(mig->hooks.opaque, ok);
	mig->incoming_told = true;
}

/* Post-copy: the pages still to come, while the guest runs. */
static int dst_postcopy(struct migration *mig, char *err, size_t errlen)
{
	dst_incoming_done(mig, true);
	int ret = mig_pc_dest_run(mig, err, errlen);
	if (ret == 0) {
		mig->end_ns = mig_now_ns();
		mig_set_status(mig, MIG_STATUS_POSTCOPY_ACTIVE, MIG_STATUS_COMPLETED);
	} else if (mig_pc_has_holes(mig)) {
		/* Pages of this guest are still on the source only: it cannot move on. */
		migration_add_blocker(mig, "post-copy did not finish: pages of this guest are "
					   "still on its source only, so it cannot migrate on");
	}
	return ret;
}

static int dst_load(struct migration *mig, char *err, size_t errlen)
{
	int ret = dst_accept_main(mig, err, errlen);

	if (ret == 0 && !mig_set_status(mig, MIG_STATUS_SETUP, MIG_STATUS_ACTIVE))
		ret = -ECANCELED;
	if (ret == 0)
		ret = dst_read_shape(mig, err, errlen);
	if (ret == 0)
		ret = dst_sections_setup(mig, err, errlen);
	if (ret == 0)
		ret = dst_start_ram(mig, err, errlen);
	if (ret == 0)
		ret = dst_main_loop(mig, err, errlen);
	if (ret < 0) {
		mig_unblock_all(mig);
		dst_join_ram(mig);
		return ret;
	}
	ret = dst_finish_load(mig, err, errlen);
	if (ret == 0 && !mig->chans[0].is_file)
		ret = dst_wait_commit(mig, err, errlen);
	if (ret == 0)
		ret = dst_run(mig, err, errlen);
	if (ret == 0 && mig->postcopy)
		ret = dst_postcopy(mig, err, errlen);
	return ret;
}

static void dst_cleanup(struct migration *mig)
{
	mig_pc_dest_stop(mig); /* its fault thread writes the main channel */
	for (unsigned i = 0; i < mig->nr_sections; i++) {
		struct mig_section *s = &mig->sections[i];
		if (s->ops->load_cleanup)
			s->ops->load_cleanup(s);
	}
	pthread_mutex_lock(&mig->lock);
	for (unsigned i = 0; i < mig->nr_chans; i++)
		mig_chan_close(&mig->chans[i]);
	pthread_mutex_unlock(&mig->lock);
	if (mig->listen_fd >= 0)
		close(mig->listen_fd);
	mig->listen_fd = -1;
	if (mig->uri.kind == MIG_URI_UNIX)
		unlink(mig->uri.path);
}

void *mig_dest_thread(void *arg)
{
	struct migration *mig = arg;
	char err[MIG_ERROR_TEXT_MAX] = "";

	mig_set_status(mig, MIG_STATUS_NONE, MIG_STATUS_SETUP);
	int ret = dst_load(mig, err, sizeof(err));
	if (ret < 0) {
		mig_set_error(mig, "%s", err[0] ? err : strerror(-ret));
		dst_send_error(mig, mig->error); /* the caller reports it here */
	}
	dst_cleanup(mig);
	if (ret < 0) {
		mig->end_ns = mig_now_ns();
		mig_set_status(mig, mig_get_status(mig), MIG_STATUS_FAILED);
	}
	TRACE(mig_dest_end, "ret=%d error=%s", ret, mig->error);
	mig_tls_run_end(mig);
	dst_incoming_done(mig, ret == 0);
	return NULL;
}
