// SPDX-License-Identifier: Apache-2.0
#include "vmm/cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/trace.h"
#include "vmm/control/control.h"
#include "vmm/machine.h"

int cli_parse_uint(const char *opt, const char *text, uint64_t max, uint64_t *out)
{
	char *end;

	errno = 0;
	unsigned long long v = text && *text >= '0' && *text <= '9' ? strtoull(text, &end, 0) : 0;
	if (!text || *text < '0' || *text > '9' || errno || *end) {
		log_error("%s: '%s' is not a number", opt, text ? text : "");
		return -EINVAL;
	}
	if (v > max) {
		log_error("%s: %llu is too large (at most %llu)", opt, v, (unsigned long long)max);
		return -ERANGE;
	}
	*out = v;
	return 0;
}

int cli_parse_dirty_mode(const char *text, enum vm_dirty_mode *out)
{
	if (strcmp(text, "auto") == 0)
		*out = VM_DIRTY_AUTO;
	else if (strcmp(text, "bitmap") == 0)
		*out = VM_DIRTY_BITMAP;
	else if (strcmp(text, "ring") == 0)
		*out = VM_DIRTY_RING;
	else {
		log_error("--dirty-log: '%s' is not one of auto, bitmap, ring", text);
		return -EINVAL;
	}
	return 0;
}

int cli_set_trace(const char *patterns)
{
	int ret = trace_enable(patterns);
	if (ret < 0)
		log_error("--trace: malformed pattern list '%s'", patterns);
	return ret;
}

int cli_control_start(const struct control_config *base, const char *spec, bool wait,
		      struct control **out)
{
	struct control_config cfg = *base;

	cfg.start_paused = wait;
	*out = NULL;
	if (!spec)
		return 0;
	if (control_parse_address(spec, &cfg.path) < 0)
		return VMIG_EXIT_USAGE;
	/* Paused before the vCPU threads exist: they park before running any guest code. */
	if (wait)
		vm_pause(cfg.m->vm, VM_PAUSE_USER);
	return control_start(&cfg, out) < 0 ? 1 : 0;
}

#ifdef VMIG_EMBEDDED_GUEST
extern const unsigned char VMIG_EMBED_START[];
extern const unsigned char VMIG_EMBED_END[];
#endif

static int cli_image_read(const char *path, void **data, size_t *size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;

	if (fd < 0 || fstat(fd, &st) < 0) {
		int err = -errno;
		log_error("--kernel %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return err;
	}
	if (!S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > (off_t)(256u << 20)) {
		log_error("--kernel %s: not a regular file of a plausible size", path);
		close(fd);
		return -EINVAL;
	}
	*size = (size_t)st.st_size;
	*data = malloc(*size);
	ssize_t got = *data ? read(fd, *data, *size) : -1;
	close(fd);
	if (got != (ssize_t)*size) {
		log_error("--kernel %s: short read", path);
		free(*data);
		return -EIO;
	}
	return 0;
}

int cli_image_get(const char *path, void **data, size_t *size, int *free_it)
{
	*free_it = 0;
	if (path) {
		*free_it = 1;
		return cli_image_read(path, data, size);
	}
#ifdef VMIG_EMBEDDED_GUEST
	*data = (void *)VMIG_EMBED_START;
	*size = (size_t)(VMIG_EMBED_END - VMIG_EMBED_START);
	return 0;
#else
	log_error("this vmig has no built-in guest image: use --kernel IMAGE");
	return -ENOENT;
#endif
}
