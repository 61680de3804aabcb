/* SPDX-License-Identifier: Apache-2.0 */
/* The workload steps (docs/guest.md) and their reports. */
#ifndef GUEST_WORKLOADS_H
#define GUEST_WORKLOADS_H

#include <stdbool.h>
#include <stdint.h>

bool workloads_need_ws(void);
/* Checks what needs the memory layout (touch pages); exits with status 2 when wrong. */
void workloads_check_config(void);
uint64_t ram_bytes(void);
void print_layout(void);
/* Every vCPU: prepares the pages and runs all steps (returns unless a step never ends). */
void workloads_run(uint32_t cpu);
/* Boot vCPU: prints the interrupt counts and DONE, then exits the VM (or idles). */
void workloads_finish(void) __attribute__((noreturn));

#endif
