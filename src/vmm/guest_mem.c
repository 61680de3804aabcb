// SPDX-License-Identifier: Apache-2.0
#include "vmm/guest_mem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "common/bitmap.h"
#include "common/log.h"
#include "common/util.h"
#include "vmig/guest_abi.h"

static void guest_mem_layout(struct guest_mem *gm)
{
	uint64_t low = MIN(gm->size, VMIG_MMIO_HOLE_START);

	gm->regions[0] =
	    (struct guest_mem_region){.gpa = 0, .size = low, .offset = 0, .host = gm->host};
	gm->nr_regions = 1;
	if (gm->size > low) {
		gm->regions[1] = (struct guest_mem_region){.gpa = VMIG_MMIO_HOLE_END,
							   .size = gm->size - low,
							   .offset = low,
							   .host = gm->host + low};
		gm->nr_regions = 2;
	}
	const struct guest_mem_region *last = &gm->regions[gm->nr_regions - 1];
	gm->gpa_pages = (last->gpa + last->size) >> GUEST_PAGE_SHIFT;
}

int guest_mem_create(uint64_t size, struct guest_mem **out)
{
	if (size == 0 || size > GUEST_MEM_MAX || !IS_ALIGNED(size, GUEST_PAGE_SIZE))
		return -EINVAL;
	struct guest_mem *gm = calloc(1, sizeof(*gm));
	if (!gm)
		return -ENOMEM;
	gm->size = size;
	gm->host = MAP_FAILED;
	gm->fd = memfd_create("vmig-guest-ram", MFD_CLOEXEC);
	if (gm->fd < 0 || ftruncate(gm->fd, (off_t)size) < 0)
		goto fail;
	/* MAP_NORESERVE: RAM is sparse until touched; a 6 GiB guest costs what it uses. */
	gm->host = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, gm->fd, 0);
	if (gm->host == MAP_FAILED)
		goto fail;
	guest_mem_layout(gm);
	gm->vmm_dirty = bitmap_alloc(gm->gpa_pages);
	if (!gm->vmm_dirty) {
		errno = ENOMEM;
		goto fail;
	}
	*out = gm;
	return 0;
fail:;
	int err = -errno;
	guest_mem_destroy(gm);
	return err;
}

/* Kernels before 5.14 lack MADV_POPULATE_WRITE: touch each page instead (RAM is zero). */
static void guest_mem_touch_all(struct guest_mem *gm)
{
	volatile uint8_t *p = gm->host;

	for (uint64_t off = 0; off < gm->size; off += GUEST_PAGE_SIZE)
		p[off] = p[off];
}

/* What the host can still back without swapping: MemAvailable, else free RAM. */
static uint64_t guest_mem_host_available(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	unsigned long long kib = 0;
	char line[128];
	struct sysinfo si;

	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1)
			break;
	}
	if (f)
		fclose(f);
	if (kib)
		return (uint64_t)kib * 1024;
	return sysinfo(&si) == 0 ? (uint64_t)si.freeram * si.mem_unit : UINT64_MAX;
}

int guest_mem_prealloc(struct guest_mem *gm)
{
	/* Populating more than the host has would end in the OOM killer, not an error. */
	uint64_t avail = guest_mem_host_available();

	if (gm->size > avail) {
		log_error("--mem-prealloc: %llu MiB of guest RAM, but the host has only %llu MiB "
			  "available; use a smaller --mem or drop --mem-prealloc",
			  (unsigned long long)(gm->size >> 20), (unsigned long long)(avail >> 20));
		return -ENOMEM;
	}
#ifdef MADV_POPULATE_WRITE
	if (madvise(gm->host, gm->size, MADV_POPULATE_WRITE) == 0)
		return 0;
	if (errno != EINVAL)
		return -errno; /* ENOMEM: the host cannot back all of RAM */
#endif
	guest_mem_touch_all(gm);
	return 0;
}

void guest_mem_destroy(struct guest_mem *gm)
{
	if (!gm)
		return;
	if (gm->host != MAP_FAILED && gm->host)
		munmap(gm->host, gm->size);
	if (gm->fd >= 0)
		close(gm->fd);
	free(gm->vmm_dirty);
	free(gm);
}

static const struct guest_mem_region *guest_mem_find(const struct guest_mem *gm, uint64_t gpa)
{
	for (unsigned i = 0; i < gm->nr_regions; i++) {
		const struct guest_mem_region *r = &gm->regions[i];
		if (gpa >= r->gpa && gpa - r->gpa < r->size)
			return r;
	}
	return NULL;
}

bool guest_mem_is_ram(const struct guest_mem *gm, uint64_t gpa)
{
	return guest_mem_find(gm, gpa) != NULL;
}

void *guest_mem_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	const struct guest_mem_region *r = guest_mem_find(gm, gpa);

	if (!r || len > r->size - (gpa - r->gpa))
		return NULL;
	return r->host + (gpa - r->gpa);
}

/* Walks [gpa, gpa + len) region by region; fn gets each piece. Stops at the first error. */
static int guest_mem_walk(const struct guest_mem *gm, uint64_t gpa, size_t len,
			  int (*fn)(uint8_t *host, size_t n, size_t done, void *arg), void *arg)
{
	size_t done = 0;

	while (done < len) {
		const struct guest_mem_region *r = guest_mem_find(gm, gpa + done);
		if (!r)
			return -EFAULT;
		uint64_t off = gpa + done - r->gpa;
		size_t n = (size_t)MIN((uint64_t)(len - done), r->size - off);
		int ret = fn(r->host + off, n, done, arg);
		if (ret < 0)
			return ret;
		done += n;
	}
	return 0;
}

static int walk_check(uint8_t *host, size_t n, size_t done, void *arg)
{
	return 0;
}

static int walk_read(uint8_t *host, size_t n, size_t done, void *arg)
{
	memcpy((uint8_t *)arg + done, host, n);
	return 0;
}

static int walk_write(uint8_t *host, size_t n, size_t done, void *arg)
{
	memcpy(host, (const uint8_t *)arg + done, n);
	return 0;
}

int guest_mem_read(const struct guest_mem *gm, uint64_t gpa, void *buf, size_t len)
{
	int ret = guest_mem_walk(gm, gpa, len, walk_check, NULL);
	return ret < 0 ? ret : guest_mem_walk(gm, gpa, len, walk_read, buf);
}

int guest_mem_write(struct guest_mem *gm, uint64_t gpa, const void *buf, size_t len)
{
	/* Check first so that a bad range writes nothing at all. */
	int ret = guest_mem_walk(gm, gpa, len, walk_check, NULL);
	if (ret < 0)
		return ret;
	guest_mem_walk(gm, gpa, len, walk_write, (void *)buf);
	/* Marked after the copy: a harvest that sees the bit then copies the new data. */
	guest_mem_mark_dirty(gm, gpa, len);
	return 0;
}

void guest_mem_mark_dirty(struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	if (len == 0)
		return;
	uint64_t first = gpa >> GUEST_PAGE_SHIFT;
	uint64_t last = (gpa + len - 1) >> GUEST_PAGE_SHIFT;

	__atomic_thread_fence(__ATOMIC_RELEASE);
	for (uint64_t pfn = first; pfn <= last && pfn < gm->gpa_pages; pfn++) {
		if (guest_mem_is_ram(gm, pfn << GUEST_PAGE_SHIFT))
			bitmap_set_atomic(gm->vmm_dirty, pfn);
	}
}

size_t guest_mem_take_dirty(struct guest_mem *gm, uint64_t *dst)
{
	size_t count = 0;
	size_t words = bitmap_words(gm->gpa_pages);

	for (size_t w = 0; w < words; w++) {
		if (!__atomic_load_n(&gm->vmm_dirty[w], __ATOMIC_RELAXED))
			continue;
		uint64_t bits = bitmap_take_word_atomic(gm->vmm_dirty, w);
		count += (size_t)__builtin_popcountll(bits & ~dst[w]);
		dst[w] |= bits;
	}
	__atomic_add_fetch(&gm->vmm_dirty_taken, count, __ATOMIC_RELAXED);
	return count;
}

/* Multiplier for a K/M/G/T suffix (optionally followed by "iB" or "B"); 0 if malformed. */
static uint64_t guest_mem_size_suffix(const char *end)
{
	static const char units[] = "kmgt";
	const char *u = *end ? strchr(units, *end | 0x20) : NULL;
	uint64_t mult = 1;

	if (u) {
		mult = KiB << (10 * (u - units));
		end++;
	}
	if (end[0] == 'i' && end[1] == 'B' && mult != 1)
		end += 2;
	else if (end[0] == 'B' && mult != 1)
		end++;
	return *end ? 0 : mult;
}

int guest_mem_parse_size(const char *text, uint64_t *out)
{
	char *end;

	if (!text || *text < '0' || *text > '9')
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(text, &end, 10);
	uint64_t mult = guest_mem_size_suffix(end);
	if (errno || end == text || mult == 0 || v == 0 || v > GUEST_MEM_MAX / mult)
		return -EINVAL;
	v *= mult;
	if (!IS_ALIGNED(v, GUEST_PAGE_SIZE))
		return -EINVAL;
	*out = v;
	return 0;
}
