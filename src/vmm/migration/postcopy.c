// SPDX-License-Identifier: Apache-2.0
/*
 * Post-copy (docs/postcopy.md): the guest runs on the destination right after the
 * switchover; the pages dirty at the switch follow on the main channel, those a fault asks
 * for first.
 *
 * Source: its vCPUs stay stopped and its RAM is the only copy of those pages. Requests from
 * the return path go ahead of the background walk over the dirty bitmap; a request is
 * answered with the page as it is (a page never dirtied is answered too: it is one the
 * first pass skipped as zero or never written). When the walk is over it says PC_DONE and
 * answers requests until the destination says PC_DONE.
 *
 * Destination: the pages to come (DISCARDed, or arrived corrupt) are punched out of guest
 * RAM and RAM is registered with userfaultfd before the vCPUs run; a fault thread turns
 * faults into requests. Each page is received into a buffer and placed whole
 * (mig_uffd_place), never over a page already there. Once the source said PC_DONE and no
 * page is still to come, the registration goes (the holes left are pages that are zero on
 * the source) and the destination says PC_DONE. If the link fails first, the registration
 * stays: the vCPUs wait on their faults and nothing reads a page that is not there.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bitmap.h"
#include "common/log.h"
#include "common/trace.h"
#include "common/util.h"
#include "vmm/machine.h"
#include "vmm/migration/internal.h"
#include "vmm/migration/uffd.h"

#define PC_LAT_MAX (1u << 16) /* destination: the first faults' latencies (percentiles) */
#define PC_POLL_MS 100

struct mig_pc {
	/* Source, under mig->lock: pages asked for and not yet sent, by page (none dropped). */
	uint64_t *asked;
	uint64_t asked_n, asked_from;
	bool dest_done;
	/* Both: figures (atomics). */
	uint64_t bytes, discarded, requests, faults, duplicates;
	/* Destination. */
	struct mig_uffd *uffd;
	uint64_t *needed; /* pages still to come */
	uint64_t needed_n;
	pthread_mutex_t wlock; /* the main channel's write side, requested, req_ns, latencies */
	uint64_t *requested;   /* asked for and not yet placed */
	uint64_t *req_ns;      /* by page: when it was asked for */
	uint64_t *lat_us;
	size_t lat_n;
	uint8_t *buf; /* one record's pages */
	pthread_t fault_thread;
	bool fault_live, fault_stop;
	int fault_err;
	bool src_done;
};

/* Created by the migration thread; query-migrate reads it under mig->lock. */
static struct mig_pc *pc_get(struct migration *mig)
{
	struct mig_pc *pc = mig->pc;

	if (!pc && (pc = calloc(1, sizeof(*pc)))) {
		pthread_mutex_init(&pc->wlock, NULL);
		__atomic_store_n(&mig->pc, pc, __ATOMIC_RELEASE);
	}
	return pc;
}

/* Source ---------------------------------------------------------------------------------- */

bool mig_pc_source_request(struct migration *mig, uint64_t gpa, uint32_t count)
{
	struct mig_pc *pc = mig->pc;

	uint64_t pfn = gpa >> GUEST_PAGE_SHIFT;

	if (!pc || !pc->asked || count != 1 || gpa % GUEST_PAGE_SIZE ||
	    !guest_mem_ptr(mig->m->mem, gpa, GUEST_PAGE_SIZE))
		return false;
	pthread_mutex_lock(&mig->lock);
	if (!bitmap_test(pc->asked, pfn)) {
		bitmap_set_range(pc->asked, pfn, 1);
		pc->asked_n++;
	}
	pthread_cond_broadcast(&mig->cond);
	pthread_mutex_unlock(&mig->lock);
	__atomic_add_fetch(&pc->requests, 1, __ATOMIC_RELAXED);
	return true;
}

bool mig_pc_guest_ran(struct migration *mig)
{
	struct mig_pc *pc = __atomic_load_n(&mig->pc, __ATOMIC_ACQUIRE);

	/* Only a running vCPU faults: one request proves the guest ran there. */
	return mig->postcopy && (mig->rp_msg == MIG_T_RUNNING ||
				 (pc && __atomic_load_n(&pc->requests, __ATOMIC_RELAXED)));
}

bool mig_pc_has_holes(struct migration *mig)
{
	return mig->pc && mig->pc->uffd;
}

void mig_pc_source_dest_done(struct migration *mig)
{
	pthread_mutex_lock(&mig->lock);
	if (mig->pc)
		mig->pc->dest_done = true;
	pthread_cond_broadcast(&mig->cond);
	pthread_mutex_unlock(&mig->lock);
}

enum pc_next { PC_IDLE, PC_REQUEST, PC_DEST_DONE, PC_LINK_DOWN };

/* What comes next: a request, the end, a broken return path; waits only if asked to. */
static enum pc_next pc_src_next(struct migration *mig, bool wait, uint64_t *gpa)
{
	struct mig_pc *pc = mig->pc;
	struct timespec dl = realtime_after_ms(PC_POLL_MS);
	enum pc_next n;

	pthread_mutex_lock(&mig->lock);
	if (wait && !pc->asked_n && !pc->dest_done && !mig->rp_done)
		pthread_cond_timedwait(&mig->cond, &mig->lock, &dl);
	if (pc->asked_n) {
		uint64_t pages = mig_ram_pages(mig->ram);
		uint64_t p = bitmap_find_next_set(pc->asked, pages, pc->asked_from);
		if (p >= pages)
			p = bitmap_find_next_set(pc->asked, pages, 0);
		bitmap_clear_range(pc->asked, p, 1);
		pc->asked_n--;
		pc->asked_from = p + 1;
		*gpa = p << GUEST_PAGE_SHIFT;
		n = PC_REQUEST;
	} else {
		n = pc->dest_done ? PC_DEST_DONE : mig->rp_done ? PC_LINK_DOWN : PC_IDLE;
	}
	pthread_mutex_unlock(&mig->lock);
	return n;
}

/* One step: a request, else the walk's next word, else PC_DONE once. 1 when over. */
static int pc_src_step(struct migration *mig, uint64_t *w, bool *done_sent)
{
	struct mig_chan *c = &mig->chans[0];
	uint64_t gpa;
	int ret;

	switch (pc_src_next(mig, *done_sent, &gpa)) {
	case PC_REQUEST:
		return mig_ram_pc_send(mig->ram, c, gpa >> GUEST_PAGE_SHIFT, 1);
	case PC_DEST_DONE:
		return 1;
	case PC_LINK_DOWN:
		return -EPIPE;
	case PC_IDLE:
		break;
	}
	if (*done_sent)
		return 0;
	ret = mig_ram_pc_send_next(mig->ram, c, w);
	if (ret != 0)
		return ret < 0 ? ret : 0;
	*done_sent = true;
	return mig_chan_send(c, MIG_SEC_STREAM, MIG_T_PC_DONE, 0, 0, NULL, 0);
}

static uint64_t pc_bytes_out(struct migration *mig)
{
	return __atomic_load_n(&mig->chans[0].bytes_out, __ATOMIC_RELAXED);
}

int mig_pc_source_run(struct migration *mig)
{
	uint64_t w = 0, b0 = pc_bytes_out(mig);
	bool done_sent = false;
	int ret = 0;

	mig_set_status(mig, MIG_STATUS_DEVICE, MIG_STATUS_POSTCOPY_ACTIVE);
	mig_chan_patient(&mig->chans[0]);
	while (ret == 0) {
		ret = pc_src_step(mig, &w, &done_sent);
		__atomic_store_n(&mig->pc->bytes, pc_bytes_out(mig) - b0, __ATOMIC_RELAXED);
	}
	TRACE(mig_postcopy_source, "ret=%d bytes=%llu requests=%llu", ret,
	      (unsigned long long)mig->pc->bytes, (unsigned long long)mig->pc->requests);
	if (ret < 0 && !mig->error[0])
		mig_set_error(mig, "post-copy: the destination's link failed (%s)",
			      mig_io_strerror(-ret));
	return ret < 0 ? ret : 0;
}

/* The switch (source): POSTCOPY, then a DISCARD for every page still dirty. */
int mig_pc_source_switch(struct migration *mig)
{
	struct mig_pc *pc = pc_get(mig);
	uint64_t *asked = pc ? bitmap_alloc(mig_ram_pages(mig->ram)) : NULL;
	int ret = asked
		      ? mig_chan_send(&mig->chans[0], MIG_SEC_STREAM, MIG_T_POSTCOPY, 0, 0, NULL, 0)
		      : -ENOMEM;

	if (asked) {
		pthread_mutex_lock(&mig->lock); /* the return path reads it */
		pc->asked = asked;
		pthread_mutex_unlock(&mig->lock);
	}
	if (ret == 0) {
		pc->discarded = mig_ram_dirty_pages(mig->ram);
		ret = mig_ram_send_discards(mig->ram, &mig->chans[0]);
	}
	return ret;
}

/* Destination ----------------------------------------------------------------------------- */

static uint64_t pc_off_to_gpa(const struct guest_mem *gm, uint64_t off)
{
	for (unsigned i = 0; i < gm->nr_regions; i++) {
		const struct guest_mem_region *r = &gm->regions[i];
		if (off >= r->offset && off - r->offset < r->size)
			return r->gpa + (off - r->offset);
	}
	return UINT64_MAX;
}

static uint64_t pc_gpa_to_off(const struct guest_mem *gm, uint64_t gpa)
{
	return (uint64_t)((uint8_t *)guest_mem_ptr(gm, gpa, GUEST_PAGE_SIZE) - gm->host);
}

static int pc_send_locked(struct migration *mig, uint16_t type, uint64_t arg, uint32_t count)
{
	return mig_chan_send(&mig->chans[0], MIG_SEC_STREAM, type, arg, count, NULL, 0);
}

int mig_pc_send(struct migration *mig, uint16_t type, uint64_t arg, uint32_t count)
{
	struct mig_pc *pc = mig->pc;

	if (!pc)
		return pc_send_locked(mig, type, arg, count);
	pthread_mutex_lock(&pc->wlock);
	int ret = pc_send_locked(mig, type, arg, count);
	pthread_mutex_unlock(&pc->wlock);
	return ret;
}

/* Asks for page pfn unless it was asked for already (with wlock held). */
static int pc_request_locked(struct migration *mig, uint64_t pfn)
{
	struct mig_pc *pc = mig->pc;

	if (bitmap_test(pc->requested, pfn))
		return 0;
	bitmap_set_range(pc->requested, pfn, 1);
	pc->req_ns[pfn] = mig_now_ns();
	__atomic_add_fetch(&pc->requests, 1, __ATOMIC_RELAXED);
	return pc_send_locked(mig, MIG_T_PC_REQ, pfn << GUEST_PAGE_SHIFT, 1);
}

static void *pc_fault_thread(void *arg)
{
	struct migration *mig = arg;
	struct mig_pc *pc = mig->pc;
	int ret = 0;

	while (ret == 0 && !__atomic_load_n(&pc->fault_stop, __ATOMIC_ACQUIRE)) {
		uint64_t off;
		bool write;
		ret = mig_uffd_next_fault(pc->uffd, PC_POLL_MS, &off, &write);
		if (ret == -ETIMEDOUT) {
			ret = 0;
			continue;
		}
		uint64_t gpa = ret == 0 ? pc_off_to_gpa(mig->m->mem, off) : UINT64_MAX;
		if (ret == 0 && gpa == UINT64_MAX)
			ret = -EFAULT;
		__atomic_add_fetch(&pc->faults, 1, __ATOMIC_RELAXED);
		pthread_mutex_lock(&pc->wlock);
		if (ret == 0)
			ret = pc_request_locked(mig, gpa >> GUEST_PAGE_SHIFT);
		pthread_mutex_unlock(&pc->wlock);
	}
	pc->fault_err = ret;
	TRACE(mig_postcopy_faults, "fault thread ends: %d", ret);
	return NULL;
}

/* Punches every page still to come out of guest RAM (its stale or corrupt copy). */
static int pc_punch(struct migration *mig)
{
	struct mig_pc *pc = mig->pc;
	const struct guest_mem *gm = mig->m->mem;
	uint64_t pages = mig_ram_pages(mig->ram);
	int ret = 0;

	/* By runs: this is downtime (no run spans the hole, whose bits are never set). */
	for (uint64_t p = bitmap_find_next_set(pc->needed, pages, 0); p < pages && ret == 0;
	     p = bitmap_find_next_set(pc->needed, pages, p)) {
		uint64_t end = bitmap_find_next_clear(pc->needed, pages, p);
		ret = mig_uffd_discard(pc->uffd, pc_gpa_to_off(gm, p << GUEST_PAGE_SHIFT),
				       (end - p) << GUEST_PAGE_SHIFT);
		pc->needed_n += end - p;
		p = end;
	}
	return ret;
}

static int pc_dest_alloc(struct migration *mig, struct mig_pc *pc)
{
	uint64_t pages = mig_ram_pages(mig->ram);

	pc->needed = mig_ram_pc_needed(mig->ram);
	pc->requested = bitmap_alloc(pages);
	pc->req_ns = calloc(pages, sizeof(*pc->req_ns));
	pc->lat_us = calloc(PC_LAT_MAX, sizeof(*pc->lat_us));
	pc->buf = malloc(MIG_RAM_RUN_PAGES * GUEST_PAGE_SIZE);
	return pc->needed && pc->requested && pc->req_ns && pc->lat_us && pc->buf ? 0 : -ENOMEM;
}

int mig_pc_dest_collect(struct migration *mig, char *err, size_t errlen)
{
	struct mig_pc *pc = pc_get(mig);
	int ret = pc ? pc_dest_alloc(mig, pc) : -ENOMEM;

	if (ret < 0)
		snprintf(err, errlen, "post-copy: %s", strerror(-ret));
	return ret;
}

int mig_pc_dest_prepare(struct migration *mig, char *err, size_t errlen)
{
	const struct guest_mem *gm = mig->m->mem;
	struct mig_pc *pc = mig->pc;
	int ret = mig_uffd_open(gm->host, gm->size, &pc->uffd, err, errlen);

	if (ret == 0 && (ret = pc_punch(mig)) < 0)
		snprintf(err, errlen, "post-copy: making stale pages absent: %s", strerror(-ret));
	pc->discarded = pc->needed_n;
	if (ret < 0 && !err[0])
		snprintf(err, errlen, "post-copy: %s", strerror(-ret));
	TRACE(mig_postcopy_dest, "pages to come=%llu: %d", (unsigned long long)pc->needed_n, ret);
	return ret;
}

int mig_pc_dest_start(struct migration *mig)
{
	struct mig_pc *pc = mig->pc;
	int ret = -pthread_create(&pc->fault_thread, NULL, pc_fault_thread, mig);

	pc->fault_live = ret == 0;
	return ret;
}

/* A page arrived and is in place now (with wlock held): the latency of its fault. */
static void pc_placed_locked(struct mig_pc *pc, uint64_t pfn)
{
	if (bitmap_test(pc->needed, pfn)) {
		bitmap_clear_range(pc->needed, pfn, 1);
		__atomic_sub_fetch(&pc->needed_n, 1, __ATOMIC_RELAXED);
	}
	if (!bitmap_test(pc->requested, pfn))
		return;
	bitmap_clear_range(pc->requested, pfn, 1);
	if (pc->lat_n < PC_LAT_MAX)
		pc->lat_us[pc->lat_n++] = (mig_now_ns() - pc->req_ns[pfn]) / 1000;
}

static int pc_place_one(struct migration *mig, uint64_t gpa, const uint8_t *data, char *err,
			size_t errlen)
{
	struct mig_pc *pc = mig->pc;
	uint64_t pfn = gpa >> GUEST_PAGE_SHIFT;

	if (!pc->uffd)
		return 0; /* the test seam's: nothing is placed any more */
	int ret = mig_uffd_place(pc->uffd, pc_gpa_to_off(mig->m->mem, gpa), data);

	pthread_mutex_lock(&pc->wlock);
	if (ret == 0) {
		pc_placed_locked(pc, pfn);
	} else if (ret == -EEXIST && !bitmap_test(pc->needed, pfn)) {
		ret = 0; /* asked for twice, or by a fault on a page already placed: kept */
		__atomic_add_fetch(&pc->duplicates, 1, __ATOMIC_RELAXED);
	} else if (ret == -EEXIST) {
		snprintf(err, errlen,
			 "post-copy: GPA %#llx, still to come, was present already: something "
			 "wrote guest RAM behind post-copy's back",
			 (unsigned long long)gpa);
	}
	pthread_mutex_unlock(&pc->wlock);
	return ret;
}

/* A record of pages: into the buffer, then each placed whole. */
static int pc_dest_pages(struct migration *mig, const struct mig_rec *r, char *err, size_t errlen)
{
	struct mig_pc *pc = mig->pc;
	bool data = r->type == MIG_T_RAM_PC_DATA;
	int ret = data ? mig_chan_recv_payload(&mig->chans[0], r, pc->buf) : 0;

	if (ret == -EBADMSG) { /* corrupt on the way: ask again, nothing placed */
		pthread_mutex_lock(&pc->wlock);
		for (uint32_t i = 0; i < r->count && ret == -EBADMSG; i++) {
			uint64_t pfn = (r->arg >> GUEST_PAGE_SHIFT) + i;
			bitmap_clear_range(pc->requested, pfn, 1);
			if (pc_request_locked(mig, pfn) < 0)
				ret = -EIO;
		}
		pthread_mutex_unlock(&pc->wlock);
		return ret == -EIO ? ret : 0;
	}
	for (uint32_t i = 0; i < r->count && ret == 0; i++)
		ret = pc_place_one(mig, r->arg + i * GUEST_PAGE_SIZE,
				   data ? pc->buf + i * GUEST_PAGE_SIZE : NULL, err, errlen);
	return ret;
}

/* The source's walk is over: whatever is still to come is asked for (corrupt pages). */
static int pc_dest_src_done(struct migration *mig)
{
	struct mig_pc *pc = mig->pc;
	uint64_t pages = mig_ram_pages(mig->ram);
	int ret = 0;

	pc->src_done = true;
	pthread_mutex_lock(&pc->wlock);
	for (uint64_t p = bitmap_find_next_set(pc->needed, pages, 0); p < pages && ret == 0;
	     p = bitmap_find_next_set(pc->needed, pages, p + 1))
		ret = pc_request_locked(mig, p);
	pthread_mutex_unlock(&pc->wlock);
	return ret;
}

static int pc_dest_rec(struct migration *mig, char *err, size_t errlen)
{
	struct mig_chan *c = &mig->chans[0];
	struct mig_rec r;
	int ret = mig_chan_recv(c, &r, err, errlen);

	if (ret < 0)
		return ret;
	if (r.section == MIG_SEC_STREAM && r.type == MIG_T_PC_DONE && !r.len)
		return pc_dest_src_done(mig);
	if ((ret = mig_ram_pc_check(mig->ram, &r, err, errlen)) < 0)
		return ret;
	__atomic_add_fetch(&mig->pc->bytes, sizeof(r) + r.len, __ATOMIC_RELAXED);
	return pc_dest_pages(mig, &r, err, errlen);
}

static void pc_stop_faults(struct mig_pc *pc)
{
	__atomic_store_n(&pc->fault_stop, true, __ATOMIC_RELEASE);
	if (pc->fault_live)
		pthread_join(pc->fault_thread, NULL);
	pc->fault_live = false;
}

void mig_pc_dest_stop(struct migration *mig)
{
	if (mig->pc)
		pc_stop_faults(mig->pc);
}

static void pc_unregister(struct mig_pc *pc)
{
	pc_stop_faults(pc);
	mig_uffd_close(pc->uffd);
	pc->uffd = NULL;
}

/*
 * Test seam (tests/migration/test_mig_postcopy.py, negative control):
 * VMIG_TEST_POSTCOPY_UNREGISTER_EARLY=1 drops the registration as soon as the guest runs,
 * with the pages still to come absent, and then ignores them as they arrive: the guest must
 * find those pages wrong (zeros). Unset in production.
 */
static void pc_test_unregister_early(struct mig_pc *pc)
{
	const char *v = getenv("VMIG_TEST_POSTCOPY_UNREGISTER_EARLY");

	if (!v || strcmp(v, "1") != 0)
		return;
	pc_unregister(pc);
	__atomic_store_n(&pc->needed_n, 0, __ATOMIC_RELAXED);
	log_warn("post-copy: test seam: the registration went with pages still to come");
}

int mig_pc_dest_run(struct migration *mig, char *err, size_t errlen)
{
	struct mig_pc *pc = mig->pc;
	int ret = 0;

	mig_chan_patient(&mig->chans[0]);
	pc_test_unregister_early(pc);
	while (ret == 0 && !(pc->src_done && !__atomic_load_n(&pc->needed_n, __ATOMIC_RELAXED)))
		ret = pc_dest_rec(mig, err, errlen);
	if (ret == 0 && pc->fault_err)
		ret = pc->fault_err;
	if (ret < 0) {
		/* The registration stays: a vCPU waits on its fault, nothing reads a hole. The
		 * fault thread stops: the main channel is the error's from here. */
		pc_stop_faults(pc);
		if (!err[0])
			snprintf(err, errlen, "%s", mig_io_strerror(-ret));
		size_t len = strlen(err);
		snprintf(err + len, errlen - len,
			 " (post-copy: %llu pages still on the source; the guest waits for them)",
			 (unsigned long long)pc->needed_n);
		return ret;
	}
	if (pc->uffd)
		pc_unregister(pc); /* every page is there: the holes left are zeros */
	return mig_pc_send(mig, MIG_T_PC_DONE, 0, 0);
}

/* Both --------------------------------------------------------------------------------- */

static int pc_u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void pc_latencies(struct mig_pc *pc, struct mig_info *o)
{
	pthread_mutex_lock(&pc->wlock);
	size_t n = pc->lat_n;
	uint64_t *v = n ? malloc(n * sizeof(*v)) : NULL;
	if (v)
		memcpy(v, pc->lat_us, n * sizeof(*v));
	pthread_mutex_unlock(&pc->wlock);
	if (!v)
		return;
	qsort(v, n, sizeof(*v), pc_u64_cmp);
	o->postcopy.fault_us_p50 = v[n / 2];
	o->postcopy.fault_us_p99 = v[MIN(n - 1, n * 99 / 100)];
	o->postcopy.fault_us_max = v[n - 1];
	free(v);
}

void mig_pc_query(struct migration *mig, struct mig_info *o)
{
	struct mig_pc *pc = __atomic_load_n(&mig->pc, __ATOMIC_ACQUIRE);

	if (!pc)
		return;
	o->postcopy.active = true;
	o->postcopy.bytes = __atomic_load_n(&pc->bytes, __ATOMIC_RELAXED);
	o->postcopy.discarded = pc->discarded;
	o->postcopy.requests = __atomic_load_n(&pc->requests, __ATOMIC_RELAXED);
	o->postcopy.faults = __atomic_load_n(&pc->faults, __ATOMIC_RELAXED);
	o->postcopy.duplicates = __atomic_load_n(&pc->duplicates, __ATOMIC_RELAXED);
	if (pc->lat_us)
		pc_latencies(pc, o);
}

void mig_pc_free(struct migration *mig, bool destroying)
{
	struct mig_pc *pc = mig->pc;

	if (!pc)
		return;
	pc_stop_faults(pc);
	/* A registration still here has holes the guest needs: it stays for the VM's life. */
	if (pc->uffd && !destroying)
		return;
	if (pc->uffd)
		mig_uffd_close(pc->uffd);
	free(pc->asked);
	free(pc->needed);
	free(pc->requested);
	free(pc->req_ns);
	free(pc->lat_us);
	free(pc->buf);
	pthread_mutex_destroy(&pc->wlock);
	free(pc);
	mig->pc = NULL;
}
