// SPDX-License-Identifier: Apache-2.0
#include "vmm/bus.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/trace.h"

/* Few devices: a sorted array per space, binary-searched under a read lock. */
struct bus_table {
	struct bus_region *regions;
	unsigned nr, cap;
};

struct bus {
	pthread_rwlock_t lock;
	struct bus_table tables[2];
	uint64_t unclaimed;
};

int bus_create(struct bus **out)
{
	struct bus *bus = calloc(1, sizeof(*bus));
	if (!bus)
		return -ENOMEM;
	pthread_rwlock_init(&bus->lock, NULL);
	*out = bus;
	return 0;
}

void bus_destroy(struct bus *bus)
{
	if (!bus)
		return;
	for (unsigned i = 0; i < 2; i++)
		free(bus->tables[i].regions);
	pthread_rwlock_destroy(&bus->lock);
	free(bus);
}

static const char *bus_space_name(enum bus_space space)
{
	return space == BUS_MMIO ? "mmio" : "pio";
}

/* Index of the first region whose end is above addr (insertion point for a new base). */
static unsigned bus_table_lower(const struct bus_table *t, uint64_t addr)
{
	unsigned lo = 0, hi = t->nr;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		const struct bus_region *r = &t->regions[mid];
		if (r->base + r->len - 1 < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int bus_table_grow(struct bus_table *t)
{
	if (t->nr < t->cap)
		return 0;
	unsigned cap = t->cap ? t->cap * 2 : 8;
	struct bus_region *r = realloc(t->regions, cap * sizeof(*r));
	if (!r)
		return -ENOMEM;
	t->regions = r;
	t->cap = cap;
	return 0;
}

int bus_register(struct bus *bus, const struct bus_region *region)
{
	if (region->len == 0 || region->base + region->len - 1 < region->base || !region->ops ||
	    (region->space != BUS_MMIO && region->space != BUS_PIO))
		return -EINVAL;
	pthread_rwlock_wrlock(&bus->lock);
	struct bus_table *t = &bus->tables[region->space];
	unsigned at = bus_table_lower(t, region->base);
	int ret = 0;
	if (at < t->nr && t->regions[at].base <= region->base + region->len - 1)
		ret = -EEXIST;
	if (ret == 0)
		ret = bus_table_grow(t);
	if (ret == 0) {
		memmove(&t->regions[at + 1], &t->regions[at], (t->nr - at) * sizeof(*t->regions));
		t->regions[at] = *region;
		t->nr++;
	}
	pthread_rwlock_unlock(&bus->lock);
	TRACE(bus_register, "%s %s [%#lx, +%#lx) -> %d", bus_space_name(region->space),
	      region->name ? region->name : "?", (unsigned long)region->base,
	      (unsigned long)region->len, ret);
	return ret;
}

int bus_unregister(struct bus *bus, enum bus_space space, uint64_t base)
{
	int ret = -ENOENT;

	if (space != BUS_MMIO && space != BUS_PIO)
		return -EINVAL;
	pthread_rwlock_wrlock(&bus->lock);
	struct bus_table *t = &bus->tables[space];
	unsigned at = bus_table_lower(t, base);
	if (at < t->nr && t->regions[at].base == base) {
		memmove(&t->regions[at], &t->regions[at + 1],
			(t->nr - at - 1) * sizeof(*t->regions));
		t->nr--;
		ret = 0;
	}
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

static bool bus_region_accepts(const struct bus_region *r, uint64_t addr, unsigned size)
{
	unsigned sizes = r->sizes ? r->sizes : BUS_SIZES_ANY;

	if (!(sizes & BUS_SIZE(size)))
		return false;
	if (!r->unaligned && (addr & (size - 1)))
		return false;
	/* The whole access must fall inside the region. */
	return addr - r->base <= r->len - size;
}

bool bus_access(struct bus *bus, enum bus_space space, uint64_t addr, unsigned size, bool is_write,
		uint64_t *val)
{
	bool handled = false;

	if (!is_write)
		*val = 0;
	if (size != 1 && size != 2 && size != 4 && size != 8)
		goto unclaimed;
	pthread_rwlock_rdlock(&bus->lock);
	struct bus_table *t = &bus->tables[space];
	unsigned at = bus_table_lower(t, addr);
	if (at < t->nr && t->regions[at].base <= addr) {
		const struct bus_region r = t->regions[at];
		if (bus_region_accepts(&r, addr, size)) {
			if (is_write && r.ops->write)
				r.ops->write(r.opaque, addr - r.base, size, *val);
			else if (r.ops->read)
				r.ops->read(r.opaque, addr - r.base, size, val);
			handled = true;
		} else {
			TRACE(bus_bad_access, "%s %s %s addr=%#lx size=%u refused",
			      bus_space_name(space), r.name ? r.name : "?",
			      is_write ? "write" : "read", (unsigned long)addr, size);
		}
	}
	pthread_rwlock_unlock(&bus->lock);
	if (handled)
		return true;
unclaimed:
	__atomic_fetch_add(&bus->unclaimed, 1, __ATOMIC_RELAXED);
	TRACE(bus_unclaimed, "%s %s addr=%#lx size=%u val=%#lx", bus_space_name(space),
	      is_write ? "write" : "read", (unsigned long)addr, size,
	      is_write ? (unsigned long)*val : 0ul);
	return false;
}

uint64_t bus_unclaimed_count(const struct bus *bus)
{
	return __atomic_load_n(&bus->unclaimed, __ATOMIC_RELAXED);
}
