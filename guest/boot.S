# SPDX-License-Identifier: Apache-2.0
#
# Boot code of the vmig guest firmware: the Multiboot v1 header, the 32-bit entry that
# switches the bootstrap processor to long mode, the real-mode trampoline that brings the
# application processors to long mode, the interrupt entry stubs and the drop to ring 3.
#
# Ring-0 instructions are expensive on paravirtual KVM (each one is emulated), so the boot
# path maps the low 4 GiB with as few page-table writes as it can: four 1 GiB entries when
# the CPU has PDPE1GB, otherwise 2048 2 MiB entries.

#include "layout.h"

	.set MB_MAGIC, 0x1BADB002
	# bit 1: we want the memory map; bit 16: the address fields below are valid, so
	# loaders (QEMU among them) need not parse the ELF headers at all.
	.set MB_FLAGS, 0x00010002

	.section .multiboot, "a"
	.balign 4
mb_header:
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)
	.long mb_header		# header_addr
	.long __image_start	# load_addr
	.long __load_end	# load_end_addr
	.long __image_end	# bss_end_addr
	.long _start		# entry_addr

# ---------------------------------------------------------------------------------------
# 32-bit entry (Multiboot): EAX = magic, EBX = info; paging off, interrupts off.
	.text
	.code32
	.globl _start
_start:
	cli
	cld
	movl %eax, boot_magic
	movl %ebx, boot_info
	movl $(bsp_stack + BOOT_STACK_SIZE), %esp
	call map_low_4g
	call enter_long_mode
	ljmp $SEL_KCODE, $bsp_long_entry

# Identity-map [0, 4 GiB) in boot_pdpt, user-accessible; the MMIO hole's GiB uncached.
map_low_4g:
	movl $(boot_pdpt + PTE_P + PTE_RW + PTE_US), boot_pml4
	movl $0x80000001, %eax
	cpuid
	testl $(1 << 26), %edx	# PDPE1GB
	jz map_low_4g_2m
	movl $1, boot_has_1g
	movl $(PTE_P + PTE_RW + PTE_US + PTE_PS), boot_pdpt
	movl $(0x40000000 + PTE_P + PTE_RW + PTE_US + PTE_PS), boot_pdpt + 8
	movl $(0x80000000 + PTE_P + PTE_RW + PTE_US + PTE_PS), boot_pdpt + 16
	movl $(0xC0000000 + PTE_P + PTE_RW + PTE_US + PTE_PS + PTE_UC), boot_pdpt + 24
	ret
map_low_4g_2m:
	movl $(boot_pd + PTE_P + PTE_RW + PTE_US), boot_pdpt
	movl $(boot_pd + 0x1000 + PTE_P + PTE_RW + PTE_US), boot_pdpt + 8
	movl $(boot_pd + 0x2000 + PTE_P + PTE_RW + PTE_US), boot_pdpt + 16
	movl $(boot_pd + 0x3000 + PTE_P + PTE_RW + PTE_US), boot_pdpt + 24
	movl $boot_pd, %edi
	movl $(PTE_P + PTE_RW + PTE_US + PTE_PS), %eax
1:	movl %eax, (%edi)
	addl $8, %edi
	addl $0x200000, %eax
	cmpl $(boot_pd + 0x3000), %edi
	jne 2f
	orl $PTE_UC, %eax	# the last GiB is the MMIO hole
2:	testl $0xFFE00000, %eax	# wrapped past 4 GiB?
	jnz 1b
	ret

# Shared by the BSP and the APs: PAE + SSE on, CR3, EFER.LME, paging on, final GDT.
enter_long_mode:
	movl %cr4, %eax
	orl $(CR4_PAE + CR4_OSFXSR + CR4_OSXMMEXCPT), %eax
	movl %eax, %cr4
	movl $boot_pml4, %eax
	movl %eax, %cr3
	movl $MSR_EFER, %ecx
	rdmsr
	orl $EFER_LME, %eax
	wrmsr
	movl %cr0, %eax
	andl $~(CR0_EM), %eax
	orl $(CR0_PG + CR0_PE + CR0_MP + CR0_WP), %eax
	movl %eax, %cr0
	lgdt gdt_desc
	ret

	.code64
bsp_long_entry:
	movl $SEL_KDATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	xorl %eax, %eax
	movl %eax, %fs
	movl %eax, %gs
	movl boot_magic, %edi
	movl boot_info, %esi
	call kernel_main_bsp
	jmp halt_forever

# APs arrive here from the trampoline, already in long mode on the final page tables.
ap_long_entry:
	movl $SEL_KDATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	xorl %eax, %eax
	movl %eax, %fs
	movl %eax, %gs
	movl $1, %edi
	lock xaddl %edi, ap_next_index	# our CPU index (the BSP is 0)
	movl %edi, %eax
	incl %eax
	imull $KSTACK_SIZE, %eax
	leaq kstacks(%rax), %rsp
	call kernel_main_ap
	jmp halt_forever

	.globl halt_forever
halt_forever:
	cli
	hlt
	jmp halt_forever

# ---------------------------------------------------------------------------------------
# AP trampoline: copied to TRAMPOLINE_ADDR (below 1 MiB); the SIPI vector is its page
# number. Runs in real mode, so every address is computed relative to its copy.
	.code16
	.globl trampoline_start, trampoline_end
trampoline_start:
	cli
	cld
	xorw %ax, %ax
	movw %ax, %ds
	lgdtl (TRAMPOLINE_ADDR + tramp_gdt_desc - trampoline_start)
	movl %cr0, %eax
	orl $CR0_PE, %eax
	movl %eax, %cr0
	ljmpl $SEL_KCODE32, $(TRAMPOLINE_ADDR + tramp_prot - trampoline_start)
	.code32
tramp_prot:
	movl $SEL_KDATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	# A scratch stack in the trampoline page: APs started by one broadcast SIPI share it,
	# but they only ever push the same return address there.
	movl $(TRAMPOLINE_ADDR + 0x1000), %esp
	movl $enter_long_mode, %eax	# absolute: this code runs from its copy
	call *%eax
	ljmp $SEL_KCODE, $ap_long_entry
	.balign 8
tramp_gdt_desc:
	.word GDT_ENTRIES * 8 - 1
	.long gdt
trampoline_end:

# ---------------------------------------------------------------------------------------
# Interrupt entry: one 16-byte stub per vector pushes (a dummy error code and) the vector
# and joins isr_common, which saves the general registers and calls isr_dispatch(frame).
	.code64
	.balign 16
	.globl isr_stubs
isr_stubs:
	.set vec, 0
	.rept 256
	.balign 16
	.if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
	pushq $vec
	.else
	pushq $0
	pushq $vec
	.endif
	jmp isr_common
	.set vec, vec + 1
	.endr

isr_common:
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, %rdi
	call isr_dispatch
	.globl isr_return
isr_return:
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rbp
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rbx
	popq %rax
	addq $16, %rsp
	iretq

# enter_user(rip, rsp, arg): iretq to ring 3 with IOPL 3 and interrupts on; never returns.
	.globl enter_user
enter_user:
	movq %rdx, %rax
	pushq $SEL_UDATA
	pushq %rsi
	pushq $(RFLAGS_IF + RFLAGS_IOPL3 + 2)
	pushq $SEL_UCODE
	pushq %rdi
	movl $SEL_UDATA, %ecx
	movl %ecx, %ds
	movl %ecx, %es
	movq %rax, %rdi
	iretq

# ---------------------------------------------------------------------------------------
	.data
	.balign 16
	.globl gdt
gdt:
	.quad 0
	.quad 0x00AF9A000000FFFF	# SEL_KCODE: 64-bit ring 0 code
	.quad 0x00CF92000000FFFF	# SEL_KDATA
	.quad 0x00CFF2000000FFFF	# SEL_UDATA (| 3)
	.quad 0x00AFFA000000FFFF	# SEL_UCODE (| 3): 64-bit ring 3 code
	.quad 0x00CF9A000000FFFF	# SEL_KCODE32: the trampoline's protected mode
	.fill 2 * VMIG_MAX_VCPUS, 8, 0	# one 16-byte TSS descriptor per CPU
gdt_desc:
	.word GDT_ENTRIES * 8 - 1
	.quad gdt

	.globl boot_magic, boot_info, boot_has_1g, ap_next_index
boot_magic:	.long 0
boot_info:	.long 0
boot_has_1g:	.long 0
ap_next_index:	.long 1

	.bss
	.balign 4096
	.globl boot_pml4, boot_pdpt, boot_pd
boot_pml4:	.skip 4096
boot_pdpt:	.skip 4096
boot_pd:	.skip 4 * 4096
	.globl bsp_stack, kstacks
bsp_stack:	.skip BOOT_STACK_SIZE
kstacks:	.skip (VMIG_MAX_VCPUS + 1) * KSTACK_SIZE
