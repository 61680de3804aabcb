// SPDX-License-Identifier: Apache-2.0
/*
 * The RAM section. Source: a dirty bitmap over guest page frames fed by the VM's dirty log
 * (vCPU writes and the VMM's own, vm_dirty_harvest); each pass sends and clears what is set.
 * Destination: pages land straight in guest memory.
 *
 * Channels own RAM by address: bitmap word w (64 pages, 256 KiB) always travels on RAM
 * channel w % N. A page's copies therefore share one ordered connection, so a newer copy can
 * never be overtaken by an older one, and no cross-channel barrier is needed.
 *
 * Checksums under a running guest: a page's checksum is taken after the harvest that
 * cleared its dirty bit, so a guest write that tears the copy on the wire is also a write
 * the next harvest reports. The destination therefore treats a RAM record whose data
 * checksum fails as "must arrive again": such pages are suspect until a good copy comes,
 * and a stream that ends with suspect pages is refused.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/bitmap.h"
#include "common/crc32c.h"
#include "common/log.h"
#include "common/trace.h"
#include "common/util.h"
#include "vmm/machine.h"
#include "vmm/migration/internal.h"

struct mig_ram {
	struct migration *mig;
	struct guest_mem *mem;
	struct vm *vm;
	uint64_t pages; /* bits in every bitmap below */
	/* query-migrate counts the dirty bitmap from the control thread while the engine
	 * allocates and frees it: its life is under this lock. */
	pthread_mutex_t dirty_lock;
	uint64_t *dirty;
	uint64_t *received, *suspect; /* destination */
	uint64_t *discard;	      /* destination: DISCARDed at the switch to post-copy */
	/* Statistics (atomics). */
	uint64_t zero_pages, data_pages, skipped_pages, rechecked_pages;
	uint64_t harvested; /* pages every harvest newly marked (vCPUs and the VMM) */
	/* Pacing to max-bandwidth across every channel of a pass. */
	uint64_t pace_start_ns, pace_bytes;
};

/* A page of zeros, checked without a branch per word. */
static bool mig_page_is_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;

	for (size_t i = 0; i < GUEST_PAGE_SIZE / 8; i += 8) {
		if (w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] |
		    w[i + 7])
			return false;
	}
	return true;
}

uint64_t mig_ram_dirty_pages(struct mig_ram *r)
{
	uint64_t n = 0;

	if (!r)
		return 0;
	pthread_mutex_lock(&r->dirty_lock);
	if (r->dirty)
		n = bitmap_count(r->dirty, r->pages);
	pthread_mutex_unlock(&r->dirty_lock);
	return n;
}

void mig_ram_stats(struct mig_ram *r, struct mig_info *out)
{
	if (!r)
		return;
	out->ram.total = r->mem->size;
	out->ram.duplicate = __atomic_load_n(&r->zero_pages, __ATOMIC_RELAXED);
	out->ram.normal = __atomic_load_n(&r->data_pages, __ATOMIC_RELAXED);
	out->ram.normal_bytes = out->ram.normal * GUEST_PAGE_SIZE;
	out->ram.skipped_pages = __atomic_load_n(&r->skipped_pages, __ATOMIC_RELAXED);
	out->ram.remaining = mig_ram_dirty_pages(r) * GUEST_PAGE_SIZE;
}

/* Sending ------------------------------------------------------------------------------- */

/* max-bandwidth: sleeps until the bytes sent this pass fit the rate. */
static void mig_ram_pace(struct mig_ram *r, uint64_t bytes)
{
	uint64_t limit = __atomic_load_n(&r->mig->params.max_bandwidth, __ATOMIC_RELAXED);
	uint64_t sent = __atomic_add_fetch(&r->pace_bytes, bytes, __ATOMIC_RELAXED);

	if (!limit || mig_get_status(r->mig) == MIG_STATUS_DEVICE)
		return; /* stop-copy runs at full speed: the guest is paused */
	uint64_t due_ns = r->pace_start_ns + sent * 1000000000ull / limit;
	uint64_t now = mig_now_ns();
	if (due_ns > now && !mig_cancelled(r->mig))
		usleep((useconds_t)MIN((due_ns - now) / 1000, 1000000ull));
}

struct mig_batch {
	struct iovec iov[2 * MIG_RAM_RUN_PAGES];
	struct mig_rec hdr[MIG_RAM_RUN_PAGES];
	const uint8_t *data[MIG_RAM_RUN_PAGES]; /* hdr[i]'s pages in guest memory, or NULL */
	int n_iov, n_hdr;
	uint64_t bytes;
	bool postcopy; /* post-copy's record types */
};

static void mig_batch_add(struct mig_batch *b, struct mig_chan *ch, uint64_t gpa, uint32_t count,
			  uint8_t *data)
{
	b->data[b->n_hdr] = data;
	struct mig_rec *h = &b->hdr[b->n_hdr++];
	uint32_t len = data ? count * (uint32_t)GUEST_PAGE_SIZE : 0;
	uint32_t crc = data ? crc32c(0, data, len) : 0;

	uint16_t type = b->postcopy ? (data ? MIG_T_RAM_PC_DATA : MIG_T_RAM_PC_ZERO)
				    : (data ? MIG_T_RAM_DATA : MIG_T_RAM_ZERO);

	mig_rec_fill(ch, h, MIG_SEC_RAM, type, gpa, count, len, crc);
	b->iov[b->n_iov++] = (struct iovec){.iov_base = h, .iov_len = sizeof(*h)};
	if (data)
		b->iov[b->n_iov++] = (struct iovec){.iov_base = data, .iov_len = len};
	b->bytes += sizeof(*h) + len;
}

/* One run of dirty pages [pfn, pfn + n) of one word: zero and data records as they come. */
static void mig_ram_batch_run(struct mig_ram *r, struct mig_batch *b, struct mig_chan *ch,
			      uint64_t pfn, uint64_t n)
{
	uint64_t gpa = pfn << GUEST_PAGE_SHIFT;
	uint8_t *host = guest_mem_ptr(r->mem, gpa, n * GUEST_PAGE_SIZE);
	uint64_t i = 0;

	if (!host)
		return; /* the hole: never set; a bit outside RAM would be a harvest bug */
	while (i < n) {
		bool zero = mig_page_is_zero(host + i * GUEST_PAGE_SIZE);
		uint64_t j = i + 1;
		while (j < n && mig_page_is_zero(host + j * GUEST_PAGE_SIZE) == zero)
			j++;
		mig_batch_add(b, ch, gpa + i * GUEST_PAGE_SIZE, (uint32_t)(j - i),
			      zero ? NULL : host + i * GUEST_PAGE_SIZE);
		__atomic_add_fetch(zero ? &r->zero_pages : &r->data_pages, j - i, __ATOMIC_RELAXED);
		i = j;
	}
}

/*
 * While the vCPUs run, a page may change between its checksum and the socket's copy. The
 * next harvest should report such a write, but this project's paravirtual KVM was seen not
 * to for some writes right after a harvest (docs/migration.md): the destination then holds
 * the newer bytes under an older checksum. So the sender checks what it sent once more and
 * marks a page whose bytes moved dirty again itself: it goes in a later pass, and nothing
 * depends on the dirty log catching that write.
 */
static void mig_ram_recheck(struct mig_ram *r, const struct mig_batch *b, uint64_t w)
{
	for (int i = 0; i < b->n_hdr; i++) {
		const struct mig_rec *h = &b->hdr[i];
		uint64_t pfn = h->arg >> GUEST_PAGE_SHIFT;
		if (!h->len || crc32c(0, b->data[i], h->len) == h->data_crc)
			continue;
		uint64_t mask = (h->count == 64 ? ~0ull : ((1ull << h->count) - 1)) << (pfn % 64);
		__atomic_or_fetch(&r->dirty[w], mask, __ATOMIC_RELAXED);
		__atomic_add_fetch(&r->rechecked_pages, h->count, __ATOMIC_RELAXED);
		TRACE(mig_ram_moved, "gpa=%#llx pages=%u changed while sent: again later",
		      (unsigned long long)h->arg, h->count);
	}
}

static int mig_ram_send_word(struct mig_ram *r, struct mig_chan *ch, uint64_t w, uint64_t bits)
{
	struct mig_batch b;

	b.n_iov = b.n_hdr = 0;
	b.bytes = 0;
	b.postcopy = false;
	while (bits) {
		unsigned first = (unsigned)__builtin_ctzll(bits);
		uint64_t run = bits >> first;
		unsigned len = run == ~0ull >> first ? 64 - first : (unsigned)__builtin_ctzll(~run);
		mig_ram_batch_run(r, &b, ch, w * 64 + first, len);
		bits &= len + first >= 64 ? 0 : ~0ull << (first + len);
	}
	int ret = mig_chan_write_all(ch, b.iov, b.n_iov);
	if (ret == 0 && mig_get_status(r->mig) != MIG_STATUS_DEVICE)
		mig_ram_recheck(r, &b, w);
	mig_ram_pace(r, b.bytes);
	return ret;
}

/* Calls fn for each run of set bits of word w. */
static int mig_ram_word_runs(uint64_t w, uint64_t bits, int (*fn)(void *, uint64_t pfn, unsigned n),
			     void *opaque)
{
	int ret = 0;

	while (bits && ret == 0) {
		unsigned first = (unsigned)__builtin_ctzll(bits);
		uint64_t run = bits >> first;
		unsigned len = run == ~0ull >> first ? 64 - first : (unsigned)__builtin_ctzll(~run);
		ret = fn(opaque, w * 64 + first, len);
		bits &= len + first >= 64 ? 0 : ~0ull << (first + len);
	}
	return ret;
}

static int mig_ram_discard_run(void *opaque, uint64_t pfn, unsigned n)
{
	return mig_chan_send(opaque, MIG_SEC_RAM, MIG_T_RAM_DISCARD, pfn << GUEST_PAGE_SHIFT, n,
			     NULL, 0);
}

int mig_ram_send_discards(struct mig_ram *r, struct mig_chan *ch)
{
	int ret = 0;

	for (uint64_t w = 0; w < bitmap_words(r->pages) && ret == 0; w++)
		ret = mig_ram_word_runs(w, r->dirty[w], mig_ram_discard_run, ch);
	return ret;
}

int mig_ram_pc_send(struct mig_ram *r, struct mig_chan *ch, uint64_t pfn, uint64_t n)
{
	struct mig_batch b = {.postcopy = true};

	bitmap_clear_range(r->dirty, pfn, n);
	mig_ram_batch_run(r, &b, ch, pfn, n);
	return mig_chan_write_all(ch, b.iov, b.n_iov);
}

struct mig_pc_run {
	struct mig_ram *r;
	struct mig_chan *ch;
};

static int mig_ram_pc_run(void *opaque, uint64_t pfn, unsigned n)
{
	struct mig_pc_run *a = opaque;

	return mig_ram_pc_send(a->r, a->ch, pfn, n);
}

int mig_ram_pc_send_next(struct mig_ram *r, struct mig_chan *ch, uint64_t *w)
{
	struct mig_pc_run a = {r, ch};

	for (; *w < bitmap_words(r->pages); (*w)++) {
		uint64_t bits = r->dirty[*w];
		if (bits) {
			int ret = mig_ram_word_runs(*w, bits, mig_ram_pc_run, &a);
			return ret < 0 ? ret : 1;
		}
	}
	return 0;
}

uint64_t mig_ram_pages(const struct mig_ram *r)
{
	return r->pages;
}

/* Sends and clears the dirty words w with w % shares == share, on ch. */
int mig_ram_send_share(struct mig_ram *r, struct mig_chan *ch, unsigned share, unsigned shares)
{
	uint64_t words = bitmap_words(r->pages);

	for (uint64_t w = share; w < words; w += shares) {
		if (!__atomic_load_n(&r->dirty[w], __ATOMIC_RELAXED))
			continue;
		uint64_t bits = __atomic_exchange_n(&r->dirty[w], 0, __ATOMIC_ACQ_REL);
		int ret = mig_ram_send_word(r, ch, w, bits);
		if (ret < 0) {
			/* Not sent: a roll-back keeps them dirty (the next try sends all anyway).
			 */
			__atomic_or_fetch(&r->dirty[w], bits, __ATOMIC_RELAXED);
			return ret;
		}
		if (mig_cancelled(r->mig))
			return -ECANCELED;
		/* migrate-start-postcopy: the rest of this pass goes in post-copy, not first
		 * (never the switchover's own last send: it must go whole). */
		if (__atomic_load_n(&r->mig->postcopy_asked, __ATOMIC_ACQUIRE) &&
		    !__atomic_load_n(&r->mig->precopy_over, __ATOMIC_ACQUIRE))
			return 0;
	}
	return 0;
}

/*
 * A never-written extent of the memfd reads as zeros on a fresh destination: drop it from
 * the first pass. Runs after the first harvest, so a guest write to such a page after the
 * scan is in the next harvest.
 */
static void mig_ram_skip_holes(struct mig_ram *r)
{
	const struct guest_mem *gm = r->mem;

	for (unsigned i = 0; i < gm->nr_regions; i++) {
		const struct guest_mem_region *g = &gm->regions[i];
		uint64_t off = 0;
		while (off < g->size) {
			off_t data = lseek(gm->fd, (off_t)(g->offset + off), SEEK_DATA);
			uint64_t end =
			    data < 0 ? g->size : MIN(g->size, (uint64_t)data - g->offset);
			end = ALIGN_DOWN(end, GUEST_PAGE_SIZE);
			uint64_t first = (g->gpa + off) >> GUEST_PAGE_SHIFT;
			uint64_t n = (end - off) >> GUEST_PAGE_SHIFT;
			bitmap_clear_range(r->dirty, first, n);
			r->skipped_pages += n;
			if (data < 0)
				break;
			off_t hole = lseek(gm->fd, data, SEEK_HOLE);
			off = hole < 0 ? g->size
				       : MIN(g->size,
					     ALIGN_UP((uint64_t)hole - g->offset, GUEST_PAGE_SIZE));
		}
	}
}

/* Test seam for the negative control: keep the dirty log of an earlier, failed attempt. */
static bool mig_ram_keep_old_log(void)
{
	const char *v = getenv("VMIG_TEST_KEEP_DIRTY_LOG");
	return v && strcmp(v, "1") == 0;
}

/*
 * Every migration starts its dirty log afresh: log start counts every page dirty, so the
 * first pass sends everything a fresh destination needs, whatever an earlier failed
 * attempt harvested and never sent.
 */
static int mig_ram_setup(struct mig_section *s)
{
	struct mig_ram *r = s->state;
	uint64_t *dirty = bitmap_alloc(r->pages);
	int ret;

	if (!dirty)
		return -ENOMEM;
	pthread_mutex_lock(&r->dirty_lock);
	__atomic_store_n(&r->dirty, dirty, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&r->dirty_lock);
	r->zero_pages = r->data_pages = r->skipped_pages = 0;
	if (!mig_ram_keep_old_log() && (ret = vm_dirty_log_stop(r->vm)) < 0)
		return ret;
	if ((ret = vm_dirty_log_start(r->vm)) < 0)
		return ret;
	long n = vm_dirty_harvest(r->vm, r->dirty);
	if (n > 0)
		__atomic_add_fetch(&r->harvested, (uint64_t)n, __ATOMIC_RELAXED);
	if (n < 0)
		return (int)n;
	mig_ram_skip_holes(r);
	TRACE(mig_ram_setup, "pages=%llu first-pass=%zu never-written=%llu",
	      (unsigned long long)r->pages, bitmap_count(r->dirty, r->pages),
	      (unsigned long long)r->skipped_pages);
	return 0;
}

static int mig_ram_log_sync(struct mig_section *s)
{
	struct mig_ram *r = s->state;
	long n = vm_dirty_harvest(r->vm, r->dirty);
	if (n > 0)
		__atomic_add_fetch(&r->harvested, (uint64_t)n, __ATOMIC_RELAXED);

	TRACE(mig_ram_sync, "harvested=%ld dirty=%zu", n, bitmap_count(r->dirty, r->pages));
	return n < 0 ? (int)n : 0;
}

/*
 * The bitmap device dirty tracking marks into, from the vCPU thread that forwards a guest
 * invalidation (device-log) as well as from the engine. The device-dirty section cleans
 * up before RAM (sections clean up in reverse) and unhooks that path under the vSMMU
 * lock, so no mark outlives the bitmap; a mark before RAM's setup finds none, harmlessly
 * (the first pass sends every page).
 */
static uint64_t *mig_ram_marking(struct mig_ram *r)
{
	return r ? __atomic_load_n(&r->dirty, __ATOMIC_ACQUIRE) : NULL;
}

void mig_dirty_mark_bitmap(struct migration *mig, uint64_t gpa, const uint64_t *bits,
			   uint64_t npages)
{
	struct mig_ram *r = mig->ram;
	uint64_t *dirty = mig_ram_marking(r);
	uint64_t first = gpa >> GUEST_PAGE_SHIFT;

	if (!dirty || first >= r->pages)
		return;
	npages = MIN(npages, r->pages - first);
	for (uint64_t i = 0; i < npages; i++) {
		uint64_t word = bits[i / 64] >> (i % 64);
		if (!word) {
			i |= 63; /* the rest of this source word is clear */
			continue;
		}
		if (word & 1)
			__atomic_or_fetch(&dirty[(first + i) / 64], 1ull << ((first + i) % 64),
					  __ATOMIC_RELAXED);
	}
}

void mig_dirty_mark(struct migration *mig, uint64_t gpa, uint64_t pages)
{
	struct mig_ram *r = mig->ram;
	uint64_t *dirty = mig_ram_marking(r);
	uint64_t first = gpa >> GUEST_PAGE_SHIFT;

	if (!dirty || first >= r->pages)
		return;
	pages = MIN(pages, r->pages - first);
	for (uint64_t p = first; p < first + pages; p++)
		__atomic_or_fetch(&dirty[p / 64], 1ull << (p % 64), __ATOMIC_RELAXED);
}

static uint64_t mig_ram_pending(struct mig_section *s, uint64_t *must_precopy)
{
	*must_precopy = 0;
	return mig_ram_dirty_pages(s->state) * GUEST_PAGE_SIZE;
}

static void mig_ram_cleanup(struct mig_section *s, bool failed)
{
	struct mig_ram *r = s->state;

	/* Failed: the guest runs on here; logging costs it write faults for nothing. */
	if (!(failed && mig_ram_keep_old_log()))
		vm_dirty_log_stop(r->vm);
	pthread_mutex_lock(&r->dirty_lock);
	uint64_t *dirty = r->dirty;
	__atomic_store_n(&r->dirty, NULL, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&r->dirty_lock);
	free(dirty);
}

void mig_ram_pace_reset(struct mig_ram *r)
{
	r->pace_start_ns = mig_now_ns();
	r->pace_bytes = 0;
}

/* Receiving ----------------------------------------------------------------------------- */

static int mig_ram_load_setup(struct mig_section *s)
{
	struct mig_ram *r = s->state;

	r->received = bitmap_alloc(r->pages);
	r->suspect = bitmap_alloc(r->pages);
	r->discard = bitmap_alloc(r->pages);
	return r->received && r->suspect && r->discard ? 0 : -ENOMEM;
}

/* The RAM channel that owns pfn's word, as a channel index. */
static unsigned mig_ram_owner(const struct migration *mig, uint64_t pfn)
{
	unsigned shares = mig->nr_chans - 1;
	return shares ? 1 + (unsigned)((pfn / 64) % shares) : 0;
}

/* Pages within one bitmap word, inside guest RAM, length matching the type. */
static int mig_ram_check_span(struct mig_ram *r, unsigned chan, const struct mig_rec *rec,
			      bool data, char *err, size_t errlen)
{
	uint64_t gpa = rec->arg, pfn = gpa >> GUEST_PAGE_SHIFT;

	if (!rec->count || rec->count > MIG_RAM_RUN_PAGES ||
	    rec->len != (data ? rec->count * GUEST_PAGE_SIZE : 0) || gpa % GUEST_PAGE_SIZE) {
		snprintf(err, errlen,
			 "channel %u: malformed RAM record (type %u, %u pages, %u bytes)", chan,
			 rec->type, rec->count, rec->len);
		return -EBADMSG;
	}
	if ((pfn % 64) + rec->count > 64 ||
	    !guest_mem_ptr(r->mem, gpa, (uint64_t)rec->count * GUEST_PAGE_SIZE)) {
		snprintf(err, errlen,
			 "channel %u: RAM record for GPA %#llx + %u pages is outside "
			 "guest RAM",
			 chan, (unsigned long long)gpa, rec->count);
		return -EBADMSG;
	}
	return 0;
}

static int mig_ram_check_rec(struct mig_ram *r, const struct mig_chan *ch,
			     const struct mig_rec *rec, char *err, size_t errlen)
{
	uint64_t pfn = rec->arg >> GUEST_PAGE_SHIFT;
	bool discard = rec->type == MIG_T_RAM_DISCARD;

	if (rec->type != MIG_T_RAM_DATA && rec->type != MIG_T_RAM_ZERO && !discard) {
		snprintf(err, errlen, "channel %u: RAM record of type %u %s", ch->index, rec->type,
			 rec->type == MIG_T_RAM_PC_DATA || rec->type == MIG_T_RAM_PC_ZERO
			     ? "(a post-copy page) before the switch"
			     : "(no such type)");
		return -EBADMSG;
	}
	int ret = mig_ram_check_span(r, ch->index, rec, rec->type == MIG_T_RAM_DATA, err, errlen);
	if (ret < 0)
		return ret;
	if (discard && (ch->index != 0 || !r->mig->postcopy)) {
		snprintf(err, errlen, "channel %u: DISCARD %s", ch->index,
			 ch->index ? "on a RAM channel" : "without a switch to post-copy");
		return -EBADMSG;
	}
	if (!discard && mig_ram_owner(r->mig, pfn) != ch->index) {
		snprintf(err, errlen, "channel %u: GPA %#llx belongs to channel %u", ch->index,
			 (unsigned long long)rec->arg, mig_ram_owner(r->mig, pfn));
		return -EBADMSG;
	}
	return 0;
}

static int mig_ram_load_data(struct mig_ram *r, struct mig_chan *ch, const struct mig_rec *rec)
{
	uint64_t pfn = rec->arg >> GUEST_PAGE_SHIFT;
	int ret = mig_chan_recv_payload(ch, rec, guest_mem_ptr(r->mem, rec->arg, rec->len));

	if (ret == -EBADMSG) {
		/* Its bytes are in guest RAM now: a later zero run must clear them. */
		bitmap_set_range(r->suspect, pfn, rec->count);
		bitmap_set_range(r->received, pfn, rec->count);
		TRACE(mig_ram_suspect, "gpa=%#llx pages=%u", (unsigned long long)rec->arg,
		      rec->count);
		return 0;
	}
	if (ret == 0) {
		bitmap_clear_range(r->suspect, pfn, rec->count);
		bitmap_set_range(r->received, pfn, rec->count);
		__atomic_add_fetch(&r->data_pages, rec->count, __ATOMIC_RELAXED);
	}
	return ret;
}

static void mig_ram_load_zero(struct mig_ram *r, const struct mig_rec *rec)
{
	uint64_t pfn = rec->arg >> GUEST_PAGE_SHIFT;
	uint8_t *host = guest_mem_ptr(r->mem, rec->arg, rec->count * GUEST_PAGE_SIZE);

	for (uint32_t i = 0; i < rec->count; i++) {
		/* A page this destination never wrote is zero already: touching it costs RAM. */
		if (bitmap_test(r->received, pfn + i))
			memset(host + i * GUEST_PAGE_SIZE, 0, GUEST_PAGE_SIZE);
	}
	bitmap_clear_range(r->received, pfn, rec->count);
	bitmap_clear_range(r->suspect, pfn, rec->count);
	__atomic_add_fetch(&r->zero_pages, rec->count, __ATOMIC_RELAXED);
}

int mig_ram_load_rec(struct mig_ram *r, struct mig_chan *ch, const struct mig_rec *rec, char *err,
		     size_t errlen)
{
	int ret = mig_ram_check_rec(r, ch, rec, err, errlen);

	if (ret < 0)
		return ret;
	if (rec->type == MIG_T_RAM_ZERO) {
		mig_ram_load_zero(r, rec);
		return 0;
	}
	if (rec->type == MIG_T_RAM_DISCARD) {
		bitmap_set_range(r->discard, rec->arg >> GUEST_PAGE_SHIFT, rec->count);
		return 0;
	}
	ret = mig_ram_load_data(r, ch, rec);
	if (ret < 0)
		snprintf(err, errlen, "channel %u: %s", ch->index,
			 ret == -EPIPE ? "the stream ended inside a RAM record"
				       : mig_io_strerror(-ret));
	return ret;
}

static int mig_ram_load(struct mig_section *s, struct mig_chan *ch, const struct mig_rec *r,
			char *err, size_t errlen)
{
	return mig_ram_load_rec(s->state, ch, r, err, errlen);
}

static int mig_ram_load_check(struct mig_section *s, char *err, size_t errlen)
{
	struct mig_ram *r = s->state;
	size_t bad = bitmap_count(r->suspect, r->pages);

	if (!bad)
		return 0;
	snprintf(err, errlen,
		 "%zu pages arrived corrupt and were never sent again (first at GPA %#llx)", bad,
		 (unsigned long long)bitmap_find_next_set(r->suspect, r->pages, 0)
		     << GUEST_PAGE_SHIFT);
	return -EBADMSG;
}

static void mig_ram_load_cleanup(struct mig_section *s)
{
	struct mig_ram *r = s->state;

	free(r->received);
	free(r->suspect);
	free(r->discard);
	r->received = r->suspect = r->discard = NULL;
}

int mig_ram_pc_check(struct mig_ram *r, const struct mig_rec *rec, char *err, size_t errlen)
{
	if (rec->section != MIG_SEC_RAM ||
	    (rec->type != MIG_T_RAM_PC_DATA && rec->type != MIG_T_RAM_PC_ZERO)) {
		snprintf(err, errlen, "record (section %u, type %u) in post-copy, not a page",
			 rec->section, rec->type);
		return -EBADMSG;
	}
	return mig_ram_check_span(r, 0, rec, rec->type == MIG_T_RAM_PC_DATA, err, errlen);
}

uint64_t *mig_ram_pc_needed(struct mig_ram *r)
{
	uint64_t *needed = bitmap_alloc(r->pages);

	if (!needed)
		return NULL;
	for (uint64_t w = 0; w < bitmap_words(r->pages); w++) {
		needed[w] = r->discard[w] | r->suspect[w];
		r->received[w] &= ~needed[w];
		r->suspect[w] = 0;
	}
	return needed;
}

static const struct mig_section_ops mig_ram_ops = {
    .name = "ram",
    .setup = mig_ram_setup,
    .log_sync = mig_ram_log_sync,
    .pending = mig_ram_pending,
    .cleanup = mig_ram_cleanup,
    .load_setup = mig_ram_load_setup,
    .load = mig_ram_load,
    .load_check = mig_ram_load_check,
    .load_cleanup = mig_ram_load_cleanup,
};

int mig_ram_register(struct migration *mig)
{
	struct mig_ram *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->mig = mig;
	r->mem = mig->m->mem;
	r->vm = mig->m->vm;
	r->pages = r->mem->gpa_pages;
	pthread_mutex_init(&r->dirty_lock, NULL); /* a default mutex holds no resource */
	int ret = mig_register(mig, &mig_ram_ops, MIG_SEC_RAM, r);
	if (ret < 0)
		free(r);
	else
		mig->ram = r;
	return ret;
}

void mig_ram_dirty_sources(struct mig_ram *r, uint64_t *vcpus, uint64_t *vmm)
{
	uint64_t all = __atomic_load_n(&r->harvested, __ATOMIC_RELAXED);

	*vmm = __atomic_load_n(&r->mem->vmm_dirty_taken, __ATOMIC_RELAXED);
	*vcpus = all > *vmm ? all - *vmm : 0;
}
