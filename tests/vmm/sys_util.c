// SPDX-License-Identifier: Apache-2.0
#include "sys_util.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

void sys_require_kvm(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		printf("SKIP: /dev/kvm unavailable (%s)\n", strerror(errno));
		exit(77);
	}
	close(fd);
}

static void sys_console_line(void *opaque, const char *line)
{
	struct sys_console *c = opaque;

	pthread_mutex_lock(&c->lock);
	int n = snprintf(c->text + c->len, sizeof(c->text) - c->len, "%s\n", line);
	if (n > 0 && (size_t)n < sizeof(c->text) - c->len)
		c->len += (size_t)n;
	pthread_mutex_unlock(&c->lock);
	printf("guest: %s\n", line);
}

static void *sys_read_file(const char *path, size_t *size)
{
	struct stat st;
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	void *buf = malloc((size_t)st.st_size);
	assert_non_null(buf);
	assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
	close(fd);
	*size = (size_t)st.st_size;
	return buf;
}

void sys_vm_create_mode(struct sys_vm *s, uint64_t mem, unsigned vcpus, enum vm_dirty_mode mode)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->con.lock, NULL);
	struct machine_config cfg = {.mem_size = mem,
				     .nr_vcpus = vcpus,
				     .dirty_mode = mode,
				     .console = sys_console_line,
				     .console_opaque = &s->con};
	assert_int_equal(machine_create(&cfg, &s->m), 0);
}

void sys_vm_create_empty(struct sys_vm *s, uint64_t mem, unsigned vcpus)
{
	sys_vm_create_mode(s, mem, vcpus, VM_DIRTY_AUTO);
}

void sys_vm_create(struct sys_vm *s, const char *image_path, uint64_t mem, unsigned vcpus,
		   enum vm_dirty_mode mode, const char *cmdline)
{
	sys_vm_create_mode(s, mem, vcpus, mode);
	size_t size;
	void *img = sys_read_file(image_path, &size);
	assert_int_equal(machine_load_kernel(s->m, img, size, cmdline), 0);
	free(img);
}

void sys_vm_destroy(struct sys_vm *s)
{
	machine_destroy(s->m);
	pthread_mutex_destroy(&s->con.lock);
	s->m = NULL;
}

bool sys_console_has(struct sys_vm *s, const char *needle)
{
	pthread_mutex_lock(&s->con.lock);
	bool found = strstr(s->con.text, needle) != NULL;
	pthread_mutex_unlock(&s->con.lock);
	return found;
}

/* Copies the first line containing line_has into out; false if there is none. */
static bool sys_console_find_line(struct sys_vm *s, const char *line_has, char *out, size_t n)
{
	bool found = false;

	pthread_mutex_lock(&s->con.lock);
	const char *p = strstr(s->con.text, line_has);
	if (p) {
		while (p > s->con.text && p[-1] != '\n')
			p--;
		const char *end = strchr(p, '\n');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len >= n)
			len = n - 1;
		memcpy(out, p, len);
		out[len] = 0;
		found = true;
	}
	pthread_mutex_unlock(&s->con.lock);
	return found;
}

bool sys_console_line_has(struct sys_vm *s, const char *line_has, const char *needle)
{
	char line[1024];
	return sys_console_find_line(s, line_has, line, sizeof(line)) && strstr(line, needle);
}

long long sys_console_value(struct sys_vm *s, const char *line_has, const char *key)
{
	char line[1024];
	if (!sys_console_find_line(s, line_has, line, sizeof(line)))
		return -1;
	const char *v = strstr(line, key);
	return v ? strtoll(v + strlen(key), NULL, 0) : -1;
}
