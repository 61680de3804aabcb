/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Console output on VMIG_PORT_CONSOLE, line-buffered: a line leaves in one `rep outsb`, so
 * it costs one VM exit and lines from different vCPUs never interleave. Works in ring 0
 * and in ring 3 (IOPL 3).
 */
#ifndef GUEST_CONSOLE_H
#define GUEST_CONSOLE_H

#include <stdint.h>

/* A line under construction; each vCPU builds its own on its stack. */
struct line {
	char buf[240];
	unsigned len;
};

void line_str(struct line *l, const char *s);
void line_dec(struct line *l, uint64_t v);
void line_hex(struct line *l, uint64_t v);
/* " key=decimal" and " key=0xhex" */
void line_kv(struct line *l, const char *key, uint64_t v);
void line_kx(struct line *l, const char *key, uint64_t v);
/* Appends '\n' and writes the line out, then empties it. */
void line_flush(struct line *l);
/* For fatal paths: a fault may have hit while the lock was held. */
void console_break_lock(void);
/* Convenience: one whole line. */
void console_puts(const char *s);

/* Ends the VM with this status (VMIG_PORT_EXIT); spins if the port does not end it. */
void vm_exit(uint32_t status) __attribute__((noreturn));
void vm_mark(uint32_t value);

#endif
