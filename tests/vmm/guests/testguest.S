/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A tiny 32-bit Multiboot guest for testing and benchmarking the VMM before (and besides)
 * the real firmware: flat binary, Multiboot address fields, paging off. The first
 * character of the command line selects a mode; a number after it is its parameter:
 *   h N   print "hello <cmdline>", check unclaimed MMIO/PIO reads are 0, exit N
 *   m     MMIO write loop to 0xD0200000 (MMIO exit benchmark)
 *   p     port write loop to 0x510
 *   d     doorbell write to 0xD0201000, wait until FLAG == the value, repeat
 *   w N   write one word per page over N pages from 16 MiB, forever
 *         (M, P, D, W: the same loops in 64-bit ring 3 with IOPL 3, after building page
 *         tables (2 MiB pages, first 4 GiB) and entering long mode: under kvm_pvm ring 0
 *         is emulated, ring 3 is not, and only a 64-bit IRETQ gets there)
 *   t N   mark 1, wait FLAG==1, write N pages (16 MiB + k * 12 KiB), mark 2, wait FLAG==2,
 *         mark 3, exit 0 (the dirty-log exactness test; no stack or data writes after
 *         mark 1)
 *   i N   x2APIC timer (periodic, vector 0x20) and MSI (vector 0x30) counting; mark 1 when
 *         ready, mark 0x100+k after the k-th MSI; exit 0 after 5 ticks and N MSIs. The
 *         handlers never IRET (they reset the stack and go back to the idle loop).
 *   c N   rewrite 4096 pages from 16 MiB generation after generation for about N ms of
 *         TSC time (N * 2^21 cycles), mark 0xC0DE halfway, then verify every page against
 *         the last generation and exit 0 (1 on a mismatch): the snapshot round-trip guest
 *   x     triple fault (crash report test)
 * FLAG is the dword at 0x200000, written by the host.
 */
	.code32
	.set FLAG, 0x200000
	.set TOUCH, 0x1000000
	.set PORT_CON, 0xE9
	.set PORT_EXIT, 0xF4
	.set PORT_MARK, 0xF8

	.text
	.globl _start
mbh:
	.long 0x1BADB002, 0x00010000, -(0x1BADB002 + 0x00010000)
	.long mbh, mbh, 0, 0, _start

_start:
	cli
	mov $stack0_top, %esp
	lgdt gdt_desc
	ljmp $0x08, $1f
1:	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov 16(%ebx), %esi		/* Multiboot cmdline */
	mov %esi, cmdline
	call parse_num
	mov %eax, param
	movzbl (%esi), %eax
	cmp $'h', %al
	je mode_hello
	cmp $'t', %al
	je mode_touch
	cmp $'i', %al
	je mode_irq
	cmp $'x', %al
	je mode_crash
	cmp $'c', %al
	je mode_counter
	mov %eax, %ebx
	or $0x20, %eax			/* lower case: the same loop, in ring 0 */
	mov $r3_mmio, %ecx
	mov $r3l_mmio, %esi
	cmp $'m', %al
	je 2f
	mov $r3_pio, %ecx
	mov $r3l_pio, %esi
	cmp $'p', %al
	je 2f
	mov $r3_doorbell, %ecx
	mov $r3l_doorbell, %esi
	cmp $'d', %al
	je 2f
	mov $r3_wloop, %ecx
	mov $r3l_wloop, %esi
	cmp $'w', %al
	je 2f
	mov $99, %eax
	jmp do_exit
2:	cmp %eax, %ebx
	jne enter_long_ring3
	jmp *%ecx

/* eax = the first decimal number in the string at esi (0 if none). */
parse_num:
	push %esi
	xor %eax, %eax
1:	movzbl (%esi), %edx
	test %edx, %edx
	jz 3f
	sub $'0', %edx
	cmp $9, %edx
	jbe 2f
	inc %esi
	jmp 1b
2:	movzbl (%esi), %edx
	sub $'0', %edx
	cmp $9, %edx
	ja 3f
	imul $10, %eax
	add %edx, %eax
	inc %esi
	jmp 2b
3:	pop %esi
	ret

/* Prints the NUL-terminated string at esi. */
puts:
	mov $PORT_CON, %dx
1:	lodsb
	test %al, %al
	jz 2f
	out %al, %dx
	jmp 1b
2:	ret

do_exit:
	mov $PORT_EXIT, %dx
	out %eax, %dx
1:	hlt
	jmp 1b

mode_hello:
	mov $msg_hello, %esi
	call puts
	mov cmdline, %esi
	call puts
	mov $msg_nl, %esi
	call puts
	mov 0xD0F00000, %eax		/* nobody claims this MMIO: reads 0 */
	mov $0x510, %dx
	in %dx, %eax			/* nor this port */
	or 0xD0F00000, %eax
	jnz 1f
	mov param, %eax
	jmp do_exit
1:	mov $msg_bad, %esi
	call puts
	mov $98, %eax
	jmp do_exit

mode_crash:
	lidt null_idt
	int3

/* No memory writes from here on but the N pages: the dirty-log test counts on it. */
mode_touch:
	mov param, %ecx
	mov $1, %eax
	mov $PORT_MARK, %dx
	out %eax, %dx
1:	cmpl $1, FLAG
	jne 1b
	mov $TOUCH, %edi
2:	mov %ecx, (%edi)
	add $0x3000, %edi
	loop 2b
	mov $2, %eax
	out %eax, %dx
3:	cmpl $2, FLAG
	jne 3b
	mov $3, %eax
	out %eax, %dx
	xor %eax, %eax
	jmp do_exit

/* Interrupt gate for vector eax -> handler edx. */
set_gate:
	lea idt(,%eax,8), %edi
	mov %edx, %ecx
	and $0xFFFF, %ecx
	or $0x00080000, %ecx
	mov %ecx, (%edi)
	and $0xFFFF0000, %edx
	or $0x8E00, %edx
	mov %edx, 4(%edi)
	ret

wrmsr_lo:			/* ecx = MSR, eax = low value */
	xor %edx, %edx
	wrmsr
	ret

mode_irq:
	xor %eax, %eax
1:	mov $isr_other, %edx
	call set_gate
	inc %eax
	cmp $256, %eax
	jb 1b
	mov $0x20, %eax
	mov $isr_timer, %edx
	call set_gate
	mov $0x30, %eax
	mov $isr_msi, %edx
	call set_gate
	mov $0xFF, %eax
	mov $isr_spurious, %edx
	call set_gate
	lidt idt_desc
	mov $0x1B, %ecx			/* IA32_APIC_BASE: EN | EXTD (x2APIC) */
	rdmsr
	or $0xC00, %eax
	wrmsr
	mov $0x80F, %ecx		/* SVR: enable, spurious vector 0xFF */
	mov $0x1FF, %eax
	call wrmsr_lo
	mov $0x83E, %ecx		/* divide by 1 */
	mov $0xB, %eax
	call wrmsr_lo
	mov $0x832, %ecx		/* LVT timer: periodic, vector 0x20 */
	mov $0x20020, %eax
	call wrmsr_lo
	mov $0x838, %ecx		/* initial count: 1 ms at the 1 GHz KVM APIC bus */
	mov $1000000, %eax
	call wrmsr_lo
	mov $1, %eax
	mov $PORT_MARK, %dx
	out %eax, %dx
irq_loop:
	cmpl $5, ticks
	jb 2f
	mov msis, %eax
	cmp param, %eax
	jae 3f
2:	sti
	hlt
	jmp irq_loop
3:	mov $0x832, %ecx		/* timer off */
	mov $0x10000, %eax
	call wrmsr_lo
	mov $msg_irq, %esi
	call puts
	xor %eax, %eax
	jmp do_exit

/* Handlers do not IRET: IF is clear on entry; drop the frame and idle again. */
irq_resume:
	mov $stack0_top, %esp
	jmp irq_loop

eoi:
	mov $0x80B, %ecx
	xor %eax, %eax
	xor %edx, %edx
	wrmsr
	ret

isr_timer:
	incl ticks
	call eoi
	jmp irq_resume

isr_msi:
	incl msis
	mov msis, %eax
	add $0x100, %eax
	mov $PORT_MARK, %dx
	out %eax, %dx
	call eoi
	jmp irq_resume

isr_spurious:
	jmp irq_resume

isr_other:
	mov $97, %eax
	jmp do_exit

/* Ring 3: ecx = entry. IOPL 3 so that port I/O works from there. */
enter_ring3:
	mov $0x23, %ax
	mov %ax, %ds
	mov %ax, %es
	pushl $0x23
	pushl $stack3_top
	pushl $0x3002
	pushl $0x1B
	pushl %ecx
	iret

/* esi = 64-bit ring-3 entry. Identity-maps 4 GiB with 2 MiB user pages, enters long mode. */
enter_long_ring3:
	xor %eax, %eax
1:	mov %eax, %edx
	shl $21, %edx
	or $0x87, %edx			/* P | RW | US | PS */
	mov %edx, pd(,%eax,8)
	inc %eax
	cmp $2048, %eax
	jb 1b
	xor %eax, %eax
2:	mov %eax, %edx
	shl $12, %edx
	add $pd + 7, %edx
	mov %edx, pdpt(,%eax,8)
	inc %eax
	cmp $4, %eax
	jb 2b
	movl $pdpt + 7, pml4
	mov $pml4, %eax
	mov %eax, %cr3
	mov %cr4, %eax
	or $0x20, %eax			/* PAE */
	mov %eax, %cr4
	mov $0xC0000080, %ecx		/* EFER.LME */
	rdmsr
	or $0x100, %eax
	wrmsr
	mov %cr0, %eax
	or $0x80000000, %eax		/* PG */
	mov %eax, %cr0
	ljmp $0x28, $long_entry

	.code64
long_entry:
	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov %esi, %ecx
	pushq $0x23
	pushq $stack3_top
	pushq $0x3002
	pushq $0x33
	pushq %rcx
	iretq

r3l_mmio:
	mov $0xD0200000, %edi
1:	mov %eax, (%rdi)
	inc %eax
	jmp 1b

r3l_pio:
	mov $0x510, %dx
1:	out %eax, %dx
	inc %eax
	jmp 1b

r3l_doorbell:
	mov $0xD0201000, %edi
	mov $1, %eax
1:	mov %eax, (%rdi)
2:	pause
	cmp FLAG, %eax
	jne 2b
	inc %eax
	jmp 1b

r3l_wloop:
	mov param, %ecx
	shl $12, %rcx
	add $TOUCH, %rcx
	xor %eax, %eax
1:	mov $TOUCH, %edi
	inc %eax
2:	mov %eax, (%rdi)
	add $0x1000, %rdi
	cmp %rcx, %rdi
	jb 2b
	jmp 1b
	.code32

r3_mmio:
	mov $0xD0200000, %edi
1:	mov %eax, (%edi)
	inc %eax
	jmp 1b

r3_pio:
	mov $0x510, %dx
1:	out %eax, %dx
	inc %eax
	jmp 1b

r3_doorbell:
	mov $1, %eax
1:	mov %eax, 0xD0201000
2:	pause
	cmp FLAG, %eax
	jne 2b
	inc %eax
	jmp 1b

r3_wloop:
	mov param, %ecx
	shl $12, %ecx
	add $TOUCH, %ecx
	xor %eax, %eax
1:	mov $TOUCH, %edi
	inc %eax
2:	mov %eax, (%edi)
	add $0x1000, %edi
	cmp %ecx, %edi
	jb 2b
	jmp 1b

/* ebx = generation; word 0 of a page = gen * 0x9E3779B1 ^ page, word 512 = page + gen. */
tsc_units:			/* eax = TSC >> 21 */
	rdtsc
	shrd $21, %edx, %eax
	ret

mode_counter:
	call tsc_units
	mov %eax, t_start
	mov param, %ecx
	shr $1, %ecx
	add %eax, %ecx
	mov %ecx, t_half
	mov param, %ecx
	add %eax, %ecx
	mov %ecx, t_end
	mov $1, %ebx
1:	mov $TOUCH, %esi
2:	mov %ebx, %eax
	imul $0x9E3779B1, %eax
	xor %esi, %eax
	mov %eax, (%esi)
	lea (%esi,%ebx), %eax
	mov %eax, 2048(%esi)
	add $0x1000, %esi
	cmp $TOUCH + 4096 * 0x1000, %esi
	jb 2b
	call tsc_units
	cmpl $0, marked
	jne 3f
	mov %eax, %ecx
	sub t_half, %ecx
	js 3f
	movl $1, marked
	push %eax
	mov $0xC0DE, %eax
	mov $PORT_MARK, %dx
	out %eax, %dx
	pop %eax
3:	inc %ebx
	sub t_end, %eax
	js 1b
	dec %ebx
	mov $TOUCH, %esi
4:	mov %ebx, %eax
	imul $0x9E3779B1, %eax
	xor %esi, %eax
	cmp %eax, (%esi)
	jne 5f
	lea (%esi,%ebx), %eax
	cmp %eax, 2048(%esi)
	jne 5f
	add $0x1000, %esi
	cmp $TOUCH + 4096 * 0x1000, %esi
	jb 4b
	mov $msg_ok, %esi
	call puts
	xor %eax, %eax
	jmp do_exit
5:	mov $msg_verify_bad, %esi
	call puts
	mov $1, %eax
	jmp do_exit

	.data
	.align 8
gdt:
	.quad 0
	.quad 0x00CF9A000000FFFF	/* 0x08 code, ring 0 */
	.quad 0x00CF92000000FFFF	/* 0x10 data, ring 0 */
	.quad 0x00CFFA000000FFFF	/* 0x18 code, ring 3 */
	.quad 0x00CFF2000000FFFF	/* 0x20 data, ring 3 */
	.quad 0x00AF9A000000FFFF	/* 0x28 64-bit code, ring 0 */
	.quad 0x00AFFA000000FFFF	/* 0x30 64-bit code, ring 3 */
gdt_end:
gdt_desc:
	.word gdt_end - gdt - 1
	.long gdt
	.align 8
null_idt:
	.word 0
	.long 0
idt_desc:
	.word 256 * 8 - 1
	.long idt
cmdline: .long 0
param:	.long 0
ticks:	.long 0
msis:	.long 0
t_start: .long 0
t_half:	.long 0
t_end:	.long 0
marked:	.long 0
msg_hello: .asciz "hello "
msg_nl:	.asciz "\n"
msg_bad: .asciz "unclaimed access did not read as zero\n"
msg_irq: .asciz "timer and MSI interrupts delivered\n"
msg_ok:	.asciz "counter verify ok\n"
msg_verify_bad: .asciz "counter verify FAILED\n"
	.align 4096
idt:	.fill 256, 8, 0
	.align 4096
pml4:	.fill 512, 8, 0
pdpt:	.fill 512, 8, 0
pd:	.fill 4 * 512, 8, 0
	.align 4096
	.fill 1024, 4, 0
stack0_top:
	.fill 1024, 4, 0
stack3_top:
