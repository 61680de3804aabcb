// SPDX-License-Identifier: Apache-2.0
// Line-buffered console and the exit/mark ports (see console.h).
#include "console.h"
#include "x86.h"
#include "vmig/guest_abi.h"

/* Serialises whole lines between vCPUs; a plain spin lock usable from any ring. */
static volatile uint32_t console_lock;

static void line_putc(struct line *l, char c)
{
	if (l->len < sizeof(l->buf) - 1)
		l->buf[l->len++] = c;
}

void line_str(struct line *l, const char *s)
{
	while (*s)
		line_putc(l, *s++);
}

void line_dec(struct line *l, uint64_t v)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		line_putc(l, tmp[--n]);
}

void line_hex(struct line *l, uint64_t v)
{
	char tmp[16];
	int n = 0;

	line_str(l, "0x");
	do {
		tmp[n++] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	while (n)
		line_putc(l, tmp[--n]);
}

void line_kv(struct line *l, const char *key, uint64_t v)
{
	line_putc(l, ' ');
	line_str(l, key);
	line_putc(l, '=');
	line_dec(l, v);
}

void line_kx(struct line *l, const char *key, uint64_t v)
{
	line_putc(l, ' ');
	line_str(l, key);
	line_putc(l, '=');
	line_hex(l, v);
}

void line_flush(struct line *l)
{
	l->buf[l->len++] = '\n';
	while (__atomic_exchange_n(&console_lock, 1, __ATOMIC_ACQUIRE))
		cpu_relax();
	outsb(VMIG_PORT_CONSOLE, l->buf, l->len);
	__atomic_store_n(&console_lock, 0, __ATOMIC_RELEASE);
	l->len = 0;
}

void console_break_lock(void)
{
	__atomic_store_n(&console_lock, 0, __ATOMIC_RELEASE);
}

void console_puts(const char *s)
{
	struct line l = {.len = 0};

	line_str(&l, s);
	line_flush(&l);
}

void vm_exit(uint32_t status)
{
	outl(VMIG_PORT_EXIT, status);
	for (;;)
		cpu_relax();
}

void vm_mark(uint32_t value)
{
	outl(VMIG_PORT_MARK, value);
}
