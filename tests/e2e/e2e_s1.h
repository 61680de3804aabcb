/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The guest's stage 1 for the end-to-end tests: VMSAv8-64 4 KiB-granule page tables and
 * context descriptors built in guest RAM (through the VMM's mapping of it), as a guest
 * driver would. Built on the host model's test page-table builder, kept in its own file
 * because the host's register names clash with the vSMMU's.
 */
#ifndef VMIG_TESTS_E2E_S1_H
#define VMIG_TESTS_E2E_S1_H

#include <stdbool.h>
#include <stdint.h>

struct e2e_s1;

/* Tables are allocated from [pool_gpa, pool_gpa + size) of guest RAM, host view ram. */
struct e2e_s1 *e2e_s1_create(void *pool_host, uint64_t pool_gpa, uint64_t size);
void e2e_s1_destroy(struct e2e_s1 *s);
/* 4 KiB pages, read/write. 0 or -errno. */
int e2e_s1_map(struct e2e_s1 *s, uint64_t iova, uint64_t ipa, uint64_t len);
int e2e_s1_unmap(struct e2e_s1 *s, uint64_t iova, uint64_t len);
/* A valid 48-bit CD for these tables (record faults; stall when asked). */
void e2e_s1_cd(struct e2e_s1 *s, uint16_t asid, bool stall, uint64_t cd[8]);
/* A free zeroed chunk from the pool (CD tables): its GPA, or 0. */
uint64_t e2e_s1_alloc(struct e2e_s1 *s, uint64_t size, uint64_t align);

#endif
