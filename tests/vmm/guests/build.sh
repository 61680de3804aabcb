#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Assembles a 32-bit flat Multiboot test guest: build.sh SOURCE.S OUTPUT.bin
set -e
as --64 -o "$2.o" "$1"
ld -m elf_x86_64 -z noexecstack -Ttext=0x100000 --oformat=binary -o "$2" "$2.o"
rm -f "$2.o"
