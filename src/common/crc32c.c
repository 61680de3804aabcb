// SPDX-License-Identifier: Apache-2.0
#include "common/crc32c.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

static uint32_t crc_table[256];
static bool crc_hw;
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__)
static void crc32c_shift_init(void);
#endif

static void crc32c_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
		crc_table[i] = c;
	}
#if defined(__x86_64__)
	crc_hw = __builtin_cpu_supports("sse4.2");
	if (crc_hw)
		crc32c_shift_init();
#endif
}

static uint32_t crc32c_table(uint32_t crc, const uint8_t *p, size_t len)
{
	while (len--)
		crc = (crc >> 8) ^ crc_table[(crc ^ *p++) & 0xffu];
	return crc;
}

#if defined(__x86_64__)
/*
 * The crc32 instruction takes 3 cycles but one can start every cycle: three independent
 * chains over three blocks of CRC_BLK bytes run about three times faster than one chain.
 * The register update is linear, so crc(r, A|B) = Z(crc(r, A)) ^ crc(0, B), where Z
 * advances a register over CRC_BLK zero bytes; Z is linear too, so four 256-entry tables
 * of Z applied to each byte of the register give it in four look-ups.
 */
#define CRC_BLK 1360 /* 3 * 1360 = 4080: one round per 4 KiB page, 16 bytes left */
static uint32_t crc_shift[4][256];

__attribute__((target("sse4.2"))) static uint32_t crc32c_serial(uint64_t c, const uint8_t *p,
								size_t len)
{
	for (; len >= 8; p += 8, len -= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
	}
	return (uint32_t)c;
}

static void crc32c_shift_init(void)
{
	static const uint8_t zeros[CRC_BLK];

	for (unsigned j = 0; j < 4; j++)
		for (uint32_t b = 0; b < 256; b++)
			crc_shift[j][b] = crc32c_serial((uint64_t)b << (8 * j), zeros, CRC_BLK);
}

static inline uint32_t crc32c_zshift(uint32_t c)
{
	return crc_shift[0][c & 0xff] ^ crc_shift[1][(c >> 8) & 0xff] ^
	       crc_shift[2][(c >> 16) & 0xff] ^ crc_shift[3][c >> 24];
}

__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p,
							    size_t len)
{
	uint64_t c = crc;

	for (; len >= 3 * CRC_BLK; p += 3 * CRC_BLK, len -= 3 * CRC_BLK) {
		uint64_t a = c, b = 0, d = 0;
		for (size_t i = 0; i < CRC_BLK; i += 8) {
			uint64_t wa, wb, wd;
			memcpy(&wa, p + i, 8);
			memcpy(&wb, p + CRC_BLK + i, 8);
			memcpy(&wd, p + 2 * CRC_BLK + i, 8);
			a = __builtin_ia32_crc32di(a, wa);
			b = __builtin_ia32_crc32di(b, wb);
			d = __builtin_ia32_crc32di(d, wd);
		}
		c = crc32c_zshift(crc32c_zshift((uint32_t)a) ^ (uint32_t)b) ^ (uint32_t)d;
	}
	for (; len >= 8; p += 8, len -= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
	}
	crc = (uint32_t)c;
	while (len--)
		crc = __builtin_ia32_crc32qi(crc, *p++);
	return crc;
}
#endif

uint32_t crc32c_portable(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&crc_once, crc32c_init);
	return ~crc32c_table(~crc, buf, len);
}

uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&crc_once, crc32c_init);
	crc = ~crc;
#if defined(__x86_64__)
	if (crc_hw)
		return ~crc32c_hw(crc, buf, len);
#endif
	return ~crc32c_table(crc, buf, len);
}
