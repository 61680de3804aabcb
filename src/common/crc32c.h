/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CRC-32C (Castagnoli, reflected 0x82F63B78), chainable: crc32c(crc32c(0, a), b) = crc of ab.
 * The device model (sdma's CRC32C descriptors) and the migration stream both use it. On x86
 * with SSE4.2 it runs on the CRC32 instruction (several GB/s); elsewhere a table.
 */
#ifndef VMIG_COMMON_CRC32C_H
#define VMIG_COMMON_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t crc32c(uint32_t crc, const void *buf, size_t len);
/* The same by table only: the reference the fast path is tested against. */
uint32_t crc32c_portable(uint32_t crc, const void *buf, size_t len);

#endif
