/* SPDX-License-Identifier: Apache-2.0 */
/*
 * MMIO and port-I/O dispatch by address range. Devices register a range with a handler;
 * vCPU threads dispatch every trapped access here. The bus checks what the device declared
 * (access sizes, natural alignment) before calling it, so a handler only ever sees accesses
 * it accepts. An access nobody claims, or one a device refuses, is traced (bus_unclaimed,
 * bus_bad_access) and ignored; reads then return zero. A guest mistake never reaches a
 * handler in a shape it did not ask for and never stops the VMM.
 *
 * Handlers run on vCPU threads, possibly several at once: they do their own locking.
 * Registration may happen while vCPUs run (a read-write lock guards the tables), but not
 * from inside a handler: handlers are called with the read lock held, which is what makes
 * bus_unregister() a guarantee that no vCPU is still inside the device afterwards.
 */
#ifndef VMIG_VMM_BUS_H
#define VMIG_VMM_BUS_H

#include <stdbool.h>
#include <stdint.h>

enum bus_space { BUS_MMIO, BUS_PIO };

/* Access sizes a device accepts, ORed: BUS_SIZE(4) | BUS_SIZE(8). */
#define BUS_SIZE(n)   (1u << (n))
#define BUS_SIZES_ANY (BUS_SIZE(1) | BUS_SIZE(2) | BUS_SIZE(4) | BUS_SIZE(8))

struct bus_device_ops {
	/* offset is relative to the region base; *val is zero-extended on return. */
	void (*read)(void *opaque, uint64_t offset, unsigned size, uint64_t *val);
	void (*write)(void *opaque, uint64_t offset, unsigned size, uint64_t val);
};

struct bus_region {
	const char *name;
	enum bus_space space;
	uint64_t base, len;
	unsigned sizes; /* BUS_SIZE() mask; 0 means any */
	bool unaligned; /* accept accesses that are not naturally aligned */
	const struct bus_device_ops *ops;
	void *opaque;
};

struct bus;

int bus_create(struct bus **out);
void bus_destroy(struct bus *bus);

/* -EEXIST if the range overlaps a registered one, -EINVAL if empty or wrapping. */
int bus_register(struct bus *bus, const struct bus_region *region);
/* Removes the region registered at (space, base). -ENOENT if there is none. */
int bus_unregister(struct bus *bus, enum bus_space space, uint64_t base);

/*
 * Dispatches one access of size 1, 2, 4 or 8. On a read, *val is set (zero when unclaimed
 * or refused). Returns true if a device handled it.
 */
bool bus_access(struct bus *bus, enum bus_space space, uint64_t addr, unsigned size, bool is_write,
		uint64_t *val);

/* Counters for tests: accesses nobody claimed and accesses a device refused. */
uint64_t bus_unclaimed_count(const struct bus *bus);

#endif
