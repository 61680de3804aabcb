// SPDX-License-Identifier: Apache-2.0
/*
 * Migration data sessions. The data_fd is one end of a non-blocking stream socket pair;
 * the device keeps the other end and a byte buffer. Saving: the driver appends to the
 * buffer and the core pumps it into the socket whenever it can (so plain read() works
 * for what is queued; the wrappers pump again and turn "nothing queued" into ENOMSG in
 * PRE_COPY); at the end of STOP_COPY the device end is shut down, so the reader sees 0.
 * Resuming: the user writes, the core drains the socket into the buffer and lets the
 * driver check the prefix received so far; RESUMING -> STOP hands the driver it all.
 */
#include "host/vfio_session.h"

#include "common/trace.h"
#include "common/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * A migration stream larger than this is refused while resuming (-ENOSPC); saving, it bounds
 * what is queued and not yet in the socket (a long pre-copy may emit more in all).
 */
#define SESSION_MAX_BYTES (1u << 20)

struct vfio_mig_session {
	int user_fd;
	int dev_fd;
	dev_t st_dev;
	ino_t st_ino;
	bool resuming;
	bool end;  /* saving: no more data will be appended */
	bool shut; /* saving: device end shut down (reader sees EOF once drained) */
	uint8_t *buf;
	size_t len;
	size_t cap;
	size_t pumped;	    /* saving: bytes of buf already in the socket */
	size_t dropped;	    /* saving: bytes pumped and dropped from buf before it */
	size_t initial_len; /* saving: end of the pre-copy initial data, counted from the start */
};

int vfio_session_begin(struct vfio_device *dev, bool resuming, int *fd)
{
	struct vfio_mig_session *s = calloc(1, sizeof(*s));
	int sv[2];
	struct stat st;

	if (!s)
		return -ENOMEM;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0 ||
	    fstat(sv[0], &st) < 0) {
		int err = -errno;

		free(s);
		return err;
	}
	s->user_fd = sv[0];
	s->dev_fd = sv[1];
	s->st_dev = st.st_dev;
	s->st_ino = st.st_ino;
	s->resuming = resuming;
	vfio_session_end(dev);
	dev->session = s;
	*fd = s->user_fd;
	TRACE(vfio_mig_session_begin, "%s: fd=%d %s", dev->name, *fd,
	      resuming ? "resuming" : "saving");
	return 0;
}

void vfio_session_end(struct vfio_device *dev)
{
	struct vfio_mig_session *s = dev->session;

	if (!s)
		return;
	TRACE(vfio_mig_session_end, "%s: fd=%d len=%zu pumped=%zu", dev->name, s->user_fd, s->len,
	      s->pumped);
	close(s->dev_fd);
	free(s->buf);
	free(s);
	dev->session = NULL;
}

bool vfio_session_owns_fd(struct vfio_device *dev, int fd)
{
	struct vfio_mig_session *s = dev->session;
	struct stat st;

	if (!s || fd < 0 || s->user_fd != fd)
		return false;
	/* The number may have been closed and reused behind our back: compare identities. */
	return fstat(fd, &st) == 0 && st.st_dev == s->st_dev && st.st_ino == s->st_ino;
}

/* Saving: what is already in the socket leaves the buffer. */
static void session_compact(struct vfio_mig_session *s)
{
	if (s->resuming || !s->pumped)
		return;
	memmove(s->buf, s->buf + s->pumped, s->len - s->pumped);
	s->len -= s->pumped;
	s->dropped += s->pumped;
	s->pumped = 0;
}

static int session_reserve(struct vfio_mig_session *s, size_t more)
{
	size_t cap = s->cap ? s->cap : 4096;
	uint8_t *nb;

	session_compact(s);
	if (more > SESSION_MAX_BYTES || s->len + more > SESSION_MAX_BYTES)
		return -ENOSPC;
	while (cap < s->len + more)
		cap *= 2;
	if (cap == s->cap)
		return 0;
	nb = realloc(s->buf, cap);
	if (!nb)
		return -ENOMEM;
	s->buf = nb;
	s->cap = cap;
	return 0;
}

/* Moves queued saving data into the socket as far as it takes it. */
static void session_pump(struct vfio_mig_session *s)
{
	while (s->pumped < s->len) {
		ssize_t n = send(s->dev_fd, s->buf + s->pumped, s->len - s->pumped,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n <= 0)
			break;
		s->pumped += (size_t)n;
	}
	if (s->end && !s->shut && s->pumped == s->len) {
		shutdown(s->dev_fd, SHUT_WR);
		s->shut = true;
	}
}

/* Moves what the user wrote from the socket into the buffer. */
static int session_drain(struct vfio_mig_session *s)
{
	for (;;) {
		int ret = session_reserve(s, 4096);
		ssize_t n;

		if (ret)
			return ret;
		n = recv(s->dev_fd, s->buf + s->len, 4096, MSG_DONTWAIT);
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
		if (n == 0)
			return 0;
		s->len += (size_t)n;
	}
}

int vfio_mig_emit(struct vfio_device *dev, const void *data, size_t len)
{
	struct vfio_mig_session *s = dev->session;
	int ret;

	if (!s || s->resuming || s->end)
		return -EINVAL;
	ret = session_reserve(s, len);
	if (ret)
		return ret;
	memcpy(s->buf + s->len, data, len);
	s->len += len;
	session_pump(s);
	return 0;
}

void vfio_mig_emit_mark_initial(struct vfio_device *dev)
{
	if (dev->session)
		dev->session->initial_len = dev->session->dropped + dev->session->len;
}

void vfio_mig_emit_end(struct vfio_device *dev)
{
	if (dev->session && !dev->session->resuming) {
		dev->session->end = true;
		session_pump(dev->session);
	}
}

int vfio_mig_resume_data(struct vfio_device *dev, const uint8_t **data, size_t *len)
{
	struct vfio_mig_session *s = dev->session;
	int ret;

	if (!s || !s->resuming)
		return -EINVAL;
	ret = session_drain(s);
	if (ret)
		return ret;
	*data = s->buf;
	*len = s->len;
	return 0;
}

static bool state_is_precopy(uint32_t state)
{
	return state == VFIO_DEVICE_STATE_PRE_COPY || state == VFIO_DEVICE_STATE_PRE_COPY_P2P;
}

static ssize_t session_read_locked(struct vfio_device *dev, void *buf, size_t len)
{
	struct vfio_mig_session *s = dev->session;
	ssize_t n;

	session_pump(s);
	n = read(s->user_fd, buf, len);
	if (n >= 0)
		return n;
	if (errno != EAGAIN)
		return -errno;
	if (!state_is_precopy(dev->mig_state))
		return -EAGAIN;
	/* Temporary end of the pre-copy data: maybe the device has something new. */
	if (dev->ops->mig_precopy_refresh)
		dev->ops->mig_precopy_refresh(dev);
	session_pump(s);
	n = read(s->user_fd, buf, len);
	if (n >= 0)
		return n;
	return errno == EAGAIN ? -ENOMSG : -errno;
}

ssize_t vfio_mig_data_read(int data_fd, void *buf, size_t len)
{
	struct vfio_device *dev = vfio_registry_lock_session(data_fd);
	ssize_t n;

	if (!dev) {
		/* Session over (or not ours): whatever is left in the socket, then EOF. */
		n = read(data_fd, buf, len);
		return n < 0 ? -errno : n;
	}
	n = dev->session->resuming ? -EINVAL : session_read_locked(dev, buf, len);
	pthread_mutex_unlock(&dev->lock);
	return n;
}

static ssize_t session_write_locked(struct vfio_device *dev, const void *buf, size_t len)
{
	struct vfio_mig_session *s = dev->session;
	int ret = session_drain(s);

	if (!ret)
		ret = session_reserve(s, len);
	if (ret)
		return ret;
	memcpy(s->buf + s->len, buf, len);
	s->len += len;
	ret = dev->ops->mig_resume_check ? dev->ops->mig_resume_check(dev, s->buf, s->len) : 0;
	if (ret) {
		s->len -= len;
		TRACE(vfio_mig_resume_reject, "%s: %d at %zu bytes", dev->name, ret, s->len + len);
		return ret;
	}
	return (ssize_t)len;
}

ssize_t vfio_mig_data_write(int data_fd, const void *buf, size_t len)
{
	struct vfio_device *dev = vfio_registry_lock_session(data_fd);
	ssize_t n;

	if (!dev) {
		n = write(data_fd, buf, len);
		return n < 0 ? -errno : n;
	}
	n = dev->session->resuming ? session_write_locked(dev, buf, len) : -EINVAL;
	pthread_mutex_unlock(&dev->lock);
	return n;
}

static void precopy_info_fill(struct vfio_mig_session *s, struct vfio_precopy_info *info)
{
	int queued = 0;
	size_t unread, consumed;

	if (ioctl(s->user_fd, FIONREAD, &queued) < 0 || queued < 0)
		queued = 0;
	unread = (s->len - s->pumped) + (size_t)queued;
	consumed = s->dropped + s->len - unread;
	info->initial_bytes = s->initial_len > consumed ? s->initial_len - consumed : 0;
	info->dirty_bytes = unread - info->initial_bytes;
}

int vfio_mig_get_precopy_info(int data_fd, struct vfio_precopy_info *info)
{
	struct vfio_device *dev;
	int ret = 0;

	if (!info)
		return -EFAULT;
	if (info->argsz < sizeof(*info))
		return -EINVAL;
	dev = vfio_registry_lock_session(data_fd);
	if (!dev)
		return -EINVAL;
	if (dev->session->resuming || !state_is_precopy(dev->mig_state)) {
		ret = -EINVAL;
	} else {
		if (dev->ops->mig_precopy_refresh)
			dev->ops->mig_precopy_refresh(dev);
		session_pump(dev->session);
		precopy_info_fill(dev->session, info);
	}
	pthread_mutex_unlock(&dev->lock);
	return ret;
}

int vfio_mig_data_close(int data_fd)
{
	struct vfio_device *dev = vfio_registry_lock_session(data_fd);

	if (dev) {
		dev->session->user_fd = -1;
		pthread_mutex_unlock(&dev->lock);
	}
	return close(data_fd) < 0 ? -errno : 0;
}
