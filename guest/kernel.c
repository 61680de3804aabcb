// SPDX-License-Identifier: Apache-2.0
// Ring-0 part of the guest firmware (boot, interrupts, system calls).
#include <stdint.h>
#include "console.h"
#include "layout.h"
#include "x86.h"

void kernel_main_bsp(uint32_t magic, uint32_t info);
void kernel_main_ap(uint32_t index);
void isr_dispatch(void *frame);

void kernel_main_bsp(uint32_t magic, uint32_t info)
{
	struct line l = {.len = 0};

	line_str(&l, "vmig-guest: boot");
	line_kx(&l, "magic", magic);
	line_kx(&l, "info", info);
	line_flush(&l);
	vm_exit(magic == 0x2BADB002 ? 0 : 1);
}

void kernel_main_ap(uint32_t index)
{
	(void)index;
}

void isr_dispatch(void *frame)
{
	(void)frame;
	vm_exit(99);
}
