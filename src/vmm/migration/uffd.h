/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Post-copy's absent pages on the destination (issue 12): guest RAM registered with
 * userfaultfd for missing-page faults. A page nobody placed yet is absent: the first touch
 * through the registered mapping, by a vCPU (KVM reaches guest RAM through it) or by a VMM
 * thread, blocks the toucher and queues a fault here until the page is placed. A page is
 * placed whole in one step (UFFDIO_COPY allocates, fills and maps it before anyone sees
 * it), so nobody ever reads half a page; a page already present is never overwritten.
 *
 * Guest RAM is a shared memfd mapping, so this needs the kernel's shmem support for
 * userfaultfd (Linux >= 4.11) and the right to catch kernel-mode faults (root, or
 * vm.unprivileged_userfaultfd = 1): KVM's accesses are kernel-mode faults.
 *
 * Faults are read by one thread at a time; pages may be placed from any thread.
 */
#ifndef VMIG_VMM_MIGRATION_UFFD_H
#define VMIG_VMM_MIGRATION_UFFD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mig_uffd;

struct mig_uffd_stats {
	uint64_t faults;    /* faults read */
	uint64_t placed;    /* pages placed with content */
	uint64_t zeroed;    /* pages placed as zeros */
	uint64_t present;   /* placements refused: the page was already there */
	uint64_t discarded; /* pages made absent again */
};

/*
 * Registers [base, base + size) (page-aligned, not yet touched where pages are to be
 * absent). -EPERM/-ENOSYS/-EINVAL with err saying why (and what to change, for -EPERM).
 */
int mig_uffd_open(void *base, uint64_t size, struct mig_uffd **out, char *err, size_t errlen);
/*
 * Stops catching faults and frees u (the thread reading faults must have stopped). Every
 * page never placed then reads as zeros and every toucher still blocked goes on with the
 * zero page: only once every page is present, or for a guest that will never run again.
 */
void mig_uffd_close(struct mig_uffd *u);

/*
 * The next fault within timeout_ms (-1: no limit): the faulting page's offset from base
 * and whether it was a write. -ETIMEDOUT, or -EIO if the descriptor failed.
 */
int mig_uffd_next_fault(struct mig_uffd *u, int timeout_ms, uint64_t *off, bool *write);

/*
 * Places the page at off (a multiple of 4 KiB inside the range) with the 4 KiB at page,
 * or zeros if page is NULL, and wakes whoever waits on it. -EEXIST if the page is already
 * present (nothing changed; its waiters are woken too), -EINVAL for an offset outside the
 * range or unaligned. A page is present once anything wrote it, through any mapping of
 * the memfd: the caller keeps every other writer (the device's own mapping) off absent
 * pages, or a zero page written there would stand for good.
 */
int mig_uffd_place(struct mig_uffd *u, uint64_t off, const void *page);

/*
 * Makes [off, off + len) absent again (page-aligned, inside the range): its content is
 * dropped from guest RAM itself (the memfd, so from every mapping of it), and the next
 * touch through the registered mapping faults. For pages the source dirtied again after
 * sending them, at the switch to post-copy: the stale copy must never be read.
 */
int mig_uffd_discard(struct mig_uffd *u, uint64_t off, uint64_t len);

void mig_uffd_stats(const struct mig_uffd *u, struct mig_uffd_stats *out);

#endif
