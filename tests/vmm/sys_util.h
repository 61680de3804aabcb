/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers for the VMM system tests: boot an image from a file with the console captured. */
#ifndef VMIG_TESTS_VMM_SYS_UTIL_H
#define VMIG_TESTS_VMM_SYS_UTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/machine.h"

struct sys_console {
	pthread_mutex_t lock;
	char text[16384];
	size_t len;
};

struct sys_vm {
	struct machine *m;
	struct sys_console con;
};

/* Exits the test program with 77 (meson's "skipped") when /dev/kvm cannot be opened. */
void sys_require_kvm(void);
/* Creates and loads; does not start. Asserts on failure. */
void sys_vm_create(struct sys_vm *s, const char *image_path, uint64_t mem, unsigned vcpus,
		   enum vm_dirty_mode mode, const char *cmdline);
/* A machine with nothing loaded (to restore state into). */
void sys_vm_create_empty(struct sys_vm *s, uint64_t mem, unsigned vcpus);
void sys_vm_create_mode(struct sys_vm *s, uint64_t mem, unsigned vcpus, enum vm_dirty_mode mode);
void sys_vm_destroy(struct sys_vm *s);
bool sys_console_has(struct sys_vm *s, const char *needle);
/* True if a console line containing `line_has` also contains `needle`. */
bool sys_console_line_has(struct sys_vm *s, const char *line_has, const char *needle);
/* The number after `key` on the first line containing `line_has`; -1 if absent. */
long long sys_console_value(struct sys_vm *s, const char *line_has, const char *key);

#endif
