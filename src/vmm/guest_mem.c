// SPDX-License-Identifier: Apache-2.0
#include "vmm/guest_mem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/bitmap.h"
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
