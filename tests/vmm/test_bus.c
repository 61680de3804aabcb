// SPDX-License-Identifier: Apache-2.0
/* The MMIO/PIO bus: ranges, overlap refusal, size and alignment checks, unclaimed access. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "vmm/bus.h"

struct dev {
	uint64_t last_off, last_val;
	unsigned last_size, reads, writes;
	uint64_t reg;
};

static void dev_read(void *opaque, uint64_t off, unsigned size, uint64_t *val)
{
	struct dev *d = opaque;
	d->reads++;
	d->last_off = off;
	d->last_size = size;
	*val = d->reg + off;
}

static void dev_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct dev *d = opaque;
	d->writes++;
	d->last_off = off;
	d->last_size = size;
	d->last_val = val;
}

static const struct bus_device_ops dev_ops = {.read = dev_read, .write = dev_write};

static struct bus *new_bus(void)
{
	struct bus *bus;
	assert_int_equal(bus_create(&bus), 0);
	return bus;
}

static void test_dispatch_offsets(void **state)
{
	struct bus *bus = new_bus();
	struct dev d = {.reg = 0x1000};
	struct bus_region r = {"dev", BUS_MMIO, 0xD0000000, 0x100, BUS_SIZE(4) | BUS_SIZE(8),
			       false, &dev_ops, &d};
	uint64_t v = 0x1234;

	assert_int_equal(bus_register(bus, &r), 0);
	assert_true(bus_access(bus, BUS_MMIO, 0xD0000010, 4, true, &v));
	assert_int_equal(d.writes, 1);
	assert_int_equal(d.last_off, 0x10);
	assert_int_equal(d.last_val, 0x1234);
	assert_true(bus_access(bus, BUS_MMIO, 0xD00000F8, 8, false, &v));
	assert_int_equal(v, 0x1000 + 0xF8);
	/* The same address in the other space is not this device. */
	assert_false(bus_access(bus, BUS_PIO, 0xD0000010, 4, false, &v));
	assert_int_equal(v, 0);
	bus_destroy(bus);
}

static void test_refused_sizes_and_alignment(void **state)
{
	struct bus *bus = new_bus();
	struct dev d = {.reg = 7};
	struct bus_region r = {"dev", BUS_MMIO, 0x1000, 0x100, BUS_SIZE(4), false, &dev_ops, &d};
	uint64_t v = 0xFFFF;

	assert_int_equal(bus_register(bus, &r), 0);
	assert_false(bus_access(bus, BUS_MMIO, 0x1000, 2, false, &v)); /* wrong size */
	assert_int_equal(v, 0);
	assert_false(bus_access(bus, BUS_MMIO, 0x1002, 4, true, &v));  /* misaligned */
	assert_false(bus_access(bus, BUS_MMIO, 0x10FE, 4, false, &v)); /* straddles the end */
	assert_false(bus_access(bus, BUS_MMIO, 0x1000, 3, false, &v)); /* no such size */
	assert_int_equal(d.reads + d.writes, 0);
	assert_int_equal(bus_unclaimed_count(bus), 4);
	assert_true(bus_access(bus, BUS_MMIO, 0x10FC, 4, false, &v));
	assert_int_equal(v, 7 + 0xFC);
	bus_destroy(bus);
}

static void test_overlap_and_unregister(void **state)
{
	struct bus *bus = new_bus();
	struct dev a = {0}, b = {0};
	struct bus_region ra = {"a", BUS_PIO, 0x100, 0x10, 0, true, &dev_ops, &a};
	struct bus_region rb = {"b", BUS_PIO, 0x108, 0x10, 0, true, &dev_ops, &b};
	struct bus_region rc = {"c", BUS_PIO, 0xF0, 0x11, 0, true, &dev_ops, &b};
	struct bus_region rd = {"d", BUS_PIO, 0x110, 0x10, 0, true, &dev_ops, &b};
	struct bus_region empty = {"e", BUS_PIO, 0x300, 0, 0, true, &dev_ops, &b};
	struct bus_region wrap = {"w", BUS_MMIO, ~0ull - 4, 0x10, 0, true, &dev_ops, &b};
	uint64_t v = 1;

	assert_int_equal(bus_register(bus, &ra), 0);
	assert_int_equal(bus_register(bus, &rb), -EEXIST);
	assert_int_equal(bus_register(bus, &rc), -EEXIST);
	assert_int_equal(bus_register(bus, &rd), 0); /* adjacent is fine */
	assert_int_equal(bus_register(bus, &empty), -EINVAL);
	assert_int_equal(bus_register(bus, &wrap), -EINVAL);
	assert_true(bus_access(bus, BUS_PIO, 0x10F, 1, true, &v));
	assert_int_equal(a.writes, 1);
	assert_true(bus_access(bus, BUS_PIO, 0x110, 1, true, &v));
	assert_int_equal(b.writes, 1);
	assert_int_equal(bus_unregister(bus, BUS_PIO, 0x100), 0);
	assert_int_equal(bus_unregister(bus, BUS_PIO, 0x100), -ENOENT);
	assert_false(bus_access(bus, BUS_PIO, 0x10F, 1, true, &v));
	assert_int_equal(a.writes, 1);
	/* Unaligned accepted where the device asked for it. */
	assert_true(bus_access(bus, BUS_PIO, 0x111, 4, false, &v));
	bus_destroy(bus);
}

static void test_many_regions_sorted(void **state)
{
	struct bus *bus = new_bus();
	struct dev d[40] = {0};

	/* Registered out of order: the table must stay sorted for the binary search. */
	for (int i = 0; i < 40; i++) {
		int k = (i * 17) % 40;
		struct bus_region r = {"d",	 BUS_MMIO, 0x10000 + (uint64_t)k * 0x1000,
				       0x1000,	 0,	   false,
				       &dev_ops, &d[k]};
		assert_int_equal(bus_register(bus, &r), 0);
	}
	for (int k = 0; k < 40; k++) {
		uint64_t v = (uint64_t)k;
		assert_true(
		    bus_access(bus, BUS_MMIO, 0x10000 + (uint64_t)k * 0x1000 + 8, 8, true, &v));
		assert_int_equal(d[k].writes, 1);
		assert_int_equal(d[k].last_val, (uint64_t)k);
	}
	uint64_t v;
	assert_false(bus_access(bus, BUS_MMIO, 0x10000 + 40 * 0x1000, 4, false, &v));
	bus_destroy(bus);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dispatch_offsets),
	    cmocka_unit_test(test_refused_sizes_and_alignment),
	    cmocka_unit_test(test_overlap_and_unregister),
	    cmocka_unit_test(test_many_regions_sorted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
