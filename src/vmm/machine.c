// SPDX-License-Identifier: Apache-2.0
#include "vmm/machine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/trace.h"
#include "vmig/guest_abi.h"

/* Console -------------------------------------------------------------------------- */

/*
 * One line buffer per vCPU thread, so that vCPUs printing at the same time interleave
 * whole lines, never characters. Lines are printed under m->lock.
 */
struct console_line {
	struct machine *m;
	size_t len;
	char text[512];
};

static __thread struct console_line console_tls;

static void machine_console_emit(struct machine *m, const char *line)
{
	pthread_mutex_lock(&m->lock);
	if (m->cfg.console) {
		m->cfg.console(m->cfg.console_opaque, line);
	} else {
		printf("guest: %s\n", line);
		fflush(stdout);
	}
	pthread_mutex_unlock(&m->lock);
}

/* Prints what this thread has buffered for m, if anything. */
static void machine_console_flush(struct machine *m)
{
	struct console_line *l = &console_tls;

	if (l->m != m || l->len == 0)
		return;
	l->text[l->len] = 0;
	l->len = 0;
	machine_console_emit(m, l->text);
}

static void console_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct machine *m = opaque;
	struct console_line *l = &console_tls;
	char c = (char)val;

	if (l->m != m) {
		l->m = m;
		l->len = 0;
	}
	if (c == '\n') {
		l->text[l->len] = 0;
		l->len = 0;
		machine_console_emit(m, l->text);
	} else if (c != '\r') {
		l->text[l->len++] = c;
		if (l->len == sizeof(l->text) - 1)
			machine_console_flush(m);
	}
}

/* Reading the debugcon port returns 0xE9: how a guest detects it (Bochs convention). */
static void console_read(void *opaque, uint64_t off, unsigned size, uint64_t *val)
{
	*val = VMIG_PORT_CONSOLE;
}

static const struct bus_device_ops console_ops = {.read = console_read, .write = console_write};

/* Exit and checkpoint ports ------------------------------------------------------------ */

static void exit_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct machine *m = opaque;

	TRACE(guest_exit, "status=%u", (unsigned)val);
	machine_console_flush(m); /* a last line without its newline */
	vm_request_stop(m->vm, VM_STOP_GUEST_EXIT, (int)(uint32_t)val);
}

static const struct bus_device_ops exit_ops = {.write = exit_write};

static bool machine_mark_seen_locked(const struct machine *m, uint32_t value)
{
	for (unsigned i = 0; i < m->nr_marks; i++) {
		if (m->marks[i] == value)
			return true;
	}
	return false;
}

static void mark_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct machine *m = opaque;
	uint32_t v = (uint32_t)val;

	TRACE(guest_mark, "value=%#x", v);
	pthread_mutex_lock(&m->lock);
	m->mark_writes++;
	if (!machine_mark_seen_locked(m, v)) {
		if (m->nr_marks == MACHINE_MAX_MARKS) {
			memmove(m->marks, m->marks + 1, sizeof(m->marks) - sizeof(m->marks[0]));
			m->nr_marks--;
		}
		m->marks[m->nr_marks++] = v;
	}
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	if (m->cfg.mark)
		m->cfg.mark(m->cfg.mark_opaque, v);
}

static const struct bus_device_ops mark_ops = {.write = mark_write};

static int machine_add_ports(struct machine *m)
{
	const struct bus_region ports[] = {
	    {"console", BUS_PIO, VMIG_PORT_CONSOLE, 1, BUS_SIZE(1), false, &console_ops, m},
	    {"exit", BUS_PIO, VMIG_PORT_EXIT, 4, BUS_SIZES_ANY, false, &exit_ops, m},
	    {"mark", BUS_PIO, VMIG_PORT_MARK, 4, BUS_SIZE(4), false, &mark_ops, m},
	};
	for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
		int ret = bus_register(m->bus, &ports[i]);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Life cycle ------------------------------------------------------------------------ */

int machine_create(const struct machine_config *cfg, struct machine **out)
{
	struct machine *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->cfg = *cfg;
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cond, NULL);
	struct vm_config vc = {.nr_vcpus = cfg->nr_vcpus, .dirty_mode = cfg->dirty_mode};
	int ret = guest_mem_create(cfg->mem_size, &m->mem);
	if (ret == 0 && cfg->mem_prealloc)
		ret = guest_mem_prealloc(m->mem);
	if (ret == 0)
		ret = bus_create(&m->bus);
	if (ret == 0)
		ret = vm_open(&vc, &m->vm);
	if (ret == 0)
		ret = vm_attach_memory(m->vm, m->mem);
	if (ret == 0)
		ret = machine_add_ports(m);
	if (ret < 0) {
		machine_destroy(m);
		return ret;
	}
	vm_set_bus(m->vm, m->bus);
	*out = m;
	return 0;
}

void machine_destroy(struct machine *m)
{
	if (!m)
		return;
	vm_close(m->vm); /* joins the vCPU threads before their devices go away */
	bus_destroy(m->bus);
	guest_mem_destroy(m->mem);
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->cond);
	free(m);
}

int machine_load_kernel(struct machine *m, const void *image, size_t size, const char *cmdline)
{
	int ret = multiboot_load(m->mem, image, size, cmdline, &m->boot);
	if (ret < 0)
		return ret;
	return vcpu_set_boot_state(&m->vm->vcpus[0], m->boot.entry, MULTIBOOT_BOOTLOADER_MAGIC,
				   m->boot.info);
}

int machine_start(struct machine *m)
{
	return vm_start(m->vm);
}

static void machine_deadline(struct timespec *ts, int timeout_ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += timeout_ms / 1000;
	ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static uint64_t machine_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int machine_wait_mark(struct machine *m, uint32_t value, int timeout_ms)
{
	uint64_t deadline = machine_now_ms() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms);
	int ret = 0;

	pthread_mutex_lock(&m->lock);
	while (!machine_mark_seen_locked(m, value)) {
		if (__atomic_load_n(&m->vm->stop, __ATOMIC_ACQUIRE)) {
			ret = -ESRCH;
			break;
		}
		if (timeout_ms >= 0 && machine_now_ms() >= deadline) {
			ret = -ETIMEDOUT;
			break;
		}
		/* Short slices: a VM stop signals the VM's condition variable, not ours. */
		struct timespec slice;
		machine_deadline(&slice, 10);
		pthread_cond_timedwait(&m->cond, &m->lock, &slice);
	}
	pthread_mutex_unlock(&m->lock);
	return ret;
}

int machine_wait(struct machine *m, int timeout_ms)
{
	enum vm_stop_reason reason = VM_STOP_NONE;
	int status = 0;

	if (vm_wait_stop(m->vm, timeout_ms, &reason, &status) == -ETIMEDOUT) {
		log_error("guest did not finish within %d ms; stopping it", timeout_ms);
		vm_request_stop(m->vm, VM_STOP_REQUEST, VMIG_EXIT_TIMEOUT);
		return VMIG_EXIT_TIMEOUT;
	}
	switch (reason) {
	case VM_STOP_GUEST_EXIT:
		return (unsigned)status > 255 ? 255 : status;
	case VM_STOP_CRASH:
		return VMIG_EXIT_CRASH;
	case VM_STOP_REQUEST:
		return status;
	default:
		return 1;
	}
}
