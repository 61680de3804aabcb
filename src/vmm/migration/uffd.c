// SPDX-License-Identifier: Apache-2.0
/*
 * Post-copy's absent pages: userfaultfd over guest RAM (uffd.h).
 */
#include "vmm/migration/uffd.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/trace.h"

#define UFFD_PAGE 4096ull

struct mig_uffd {
	int fd;
	uintptr_t base;
	uint64_t size;
	struct mig_uffd_stats stats; /* atomics */
};

static int uffd_api(int fd, char *err, size_t errlen)
{
	struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURE_MISSING_SHMEM};

	if (ioctl(fd, UFFDIO_API, &api) == 0)
		return 0;
	int ret = -errno;
	snprintf(err, errlen,
		 "userfaultfd: this kernel cannot catch faults on shared memory (%s): post-copy "
		 "needs Linux 4.11 or later",
		 strerror(-ret));
	return ret;
}

static int uffd_create(char *err, size_t errlen)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd >= 0)
		return fd;
	int ret = -errno;
	if (ret == -EPERM)
		snprintf(err, errlen,
			 "userfaultfd: not permitted to catch KVM's faults: run as root (or with "
			 "CAP_SYS_PTRACE), or set vm.unprivileged_userfaultfd=1");
	else
		snprintf(err, errlen, "userfaultfd: %s", strerror(-ret));
	return ret;
}

static int uffd_register(struct mig_uffd *u, char *err, size_t errlen)
{
	struct uffdio_register reg = {.range = {.start = u->base, .len = u->size},
				      .mode = UFFDIO_REGISTER_MODE_MISSING};

	if (ioctl(u->fd, UFFDIO_REGISTER, &reg) < 0) {
		int ret = -errno;
		snprintf(err, errlen, "userfaultfd: cannot register guest RAM: %s", strerror(-ret));
		return ret;
	}
	if (!(reg.ioctls & (1ull << _UFFDIO_COPY)) || !(reg.ioctls & (1ull << _UFFDIO_ZEROPAGE))) {
		snprintf(err, errlen, "userfaultfd: this kernel cannot place pages into guest RAM");
		return -ENOSYS;
	}
	return 0;
}

int mig_uffd_open(void *base, uint64_t size, struct mig_uffd **out, char *err, size_t errlen)
{
	uintptr_t b = (uintptr_t)base;

	*out = NULL;
	if (!size || (b | size) % UFFD_PAGE) {
		snprintf(err, errlen, "userfaultfd: the range is not page-aligned");
		return -EINVAL;
	}
	struct mig_uffd *u = calloc(1, sizeof(*u));
	if (!u) {
		snprintf(err, errlen, "userfaultfd: out of memory");
		return -ENOMEM;
	}
	*u = (struct mig_uffd){.fd = -1, .base = b, .size = size};
	int ret = u->fd = uffd_create(err, errlen);
	if (ret >= 0)
		ret = uffd_api(u->fd, err, errlen);
	if (ret >= 0)
		ret = uffd_register(u, err, errlen);
	if (ret < 0) {
		mig_uffd_close(u);
		return ret;
	}
	TRACE(mig_uffd_open, "base=%#lx size=%#llx", (unsigned long)b, (unsigned long long)size);
	*out = u;
	return 0;
}

void mig_uffd_close(struct mig_uffd *u)
{
	if (!u)
		return;
	if (u->fd >= 0) {
		struct uffdio_range r = {.start = u->base, .len = u->size};
		ioctl(u->fd, UFFDIO_UNREGISTER, &r); /* wakes every blocked toucher */
		close(u->fd);
	}
	free(u);
}

int mig_uffd_next_fault(struct mig_uffd *u, int timeout_ms, uint64_t *off, bool *write)
{
	struct pollfd p = {.fd = u->fd, .events = POLLIN};
	struct uffd_msg msg;

	for (;;) {
		int n = poll(&p, 1, timeout_ms);
		if (n == 0)
			return -ETIMEDOUT;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || (p.revents & (POLLERR | POLLNVAL)))
			return -EIO;
		ssize_t got = read(u->fd, &msg, sizeof(msg));
		if (got < 0 && errno == EAGAIN)
			continue; /* another reader took it */
		if (got != (ssize_t)sizeof(msg))
			return -EIO;
		if (msg.event != UFFD_EVENT_PAGEFAULT)
			continue; /* no other event was asked for */
		__atomic_add_fetch(&u->stats.faults, 1, __ATOMIC_RELAXED);
		*off = (msg.arg.pagefault.address - u->base) & ~(UFFD_PAGE - 1);
		*write = msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE;
		return 0;
	}
}

/* One page by UFFDIO_COPY or UFFDIO_ZEROPAGE; EAGAIN (the mm changed under it, nothing
 * placed for a single page) is retried a bounded number of times. */
static int uffd_fill(struct mig_uffd *u, uint64_t off, const void *page)
{
	for (unsigned tries = 0;; tries++) {
		int ret;
		if (page) {
			struct uffdio_copy c = {
			    .dst = u->base + off, .src = (uintptr_t)page, .len = UFFD_PAGE};
			ret = ioctl(u->fd, UFFDIO_COPY, &c);
		} else {
			struct uffdio_zeropage z = {
			    .range = {.start = u->base + off, .len = UFFD_PAGE}};
			ret = ioctl(u->fd, UFFDIO_ZEROPAGE, &z);
		}
		if (ret == 0)
			return 0;
		if (errno != EAGAIN || tries == 1000)
			return -errno;
	}
}

/* A page that became present some other way: whoever waits on it must still be woken
 * (a failed UFFDIO_COPY wakes nobody). */
static void uffd_wake(struct mig_uffd *u, uint64_t off)
{
	struct uffdio_range r = {.start = u->base + off, .len = UFFD_PAGE};

	ioctl(u->fd, UFFDIO_WAKE, &r);
}

int mig_uffd_place(struct mig_uffd *u, uint64_t off, const void *page)
{
	if (off % UFFD_PAGE || off >= u->size)
		return -EINVAL;
	int ret = uffd_fill(u, off, page);
	if (ret == -EEXIST) {
		uffd_wake(u, off);
		__atomic_add_fetch(&u->stats.present, 1, __ATOMIC_RELAXED);
	} else if (ret == 0)
		__atomic_add_fetch(page ? &u->stats.placed : &u->stats.zeroed, 1, __ATOMIC_RELAXED);
	return ret;
}

int mig_uffd_discard(struct mig_uffd *u, uint64_t off, uint64_t len)
{
	if ((off | len) % UFFD_PAGE || off >= u->size || len > u->size - off)
		return -EINVAL;
	/* MADV_REMOVE on a shared memfd mapping punches the hole in the file itself. */
	if (len && madvise((void *)(u->base + off), len, MADV_REMOVE) < 0)
		return -errno;
	__atomic_add_fetch(&u->stats.discarded, len / UFFD_PAGE, __ATOMIC_RELAXED);
	return 0;
}

void mig_uffd_stats(const struct mig_uffd *u, struct mig_uffd_stats *out)
{
	out->faults = __atomic_load_n(&u->stats.faults, __ATOMIC_RELAXED);
	out->placed = __atomic_load_n(&u->stats.placed, __ATOMIC_RELAXED);
	out->zeroed = __atomic_load_n(&u->stats.zeroed, __ATOMIC_RELAXED);
	out->present = __atomic_load_n(&u->stats.present, __ATOMIC_RELAXED);
	out->discarded = __atomic_load_n(&u->stats.discarded, __ATOMIC_RELAXED);
}
