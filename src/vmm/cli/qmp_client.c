// SPDX-License-Identifier: Apache-2.0
#include "vmm/cli/qmp_client.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define QMP_CLIENT_LINE_MAX (1024 * 1024) /* a reply larger than this is not from vmig */

/* Appends what the socket has, waiting at most timeout_ms. 0, or a negative errno. */
static int qmp_client_fill(struct qmp_client *q, int timeout_ms)
{
	struct pollfd pfd = {.fd = q->fd, .events = POLLIN};
	int n = poll(&pfd, 1, timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : -errno; /* a signal: the caller looks and goes on */
	if (n == 0)
		return -ETIMEDOUT;
	if (q->in_cap - q->in_len < 4096) {
		size_t ncap = q->in_cap ? q->in_cap * 2 : 8192;
		char *nb = ncap <= QMP_CLIENT_LINE_MAX ? realloc(q->in, ncap) : NULL;
		if (!nb)
			return -E2BIG;
		q->in = nb;
		q->in_cap = ncap;
	}
	ssize_t got = recv(q->fd, q->in + q->in_len, q->in_cap - q->in_len, 0);
	if (got < 0)
		return errno == EINTR ? 0 : -errno;
	if (got == 0)
		return -ECONNRESET;
	q->in_len += (size_t)got;
	return 0;
}

/* A reply can be as large as a server's largest (a timeline: 256 KiB), not a request. */
static const struct json_limits qmp_client_limits = {
    .max_size = 256 * 1024, .max_depth = 32, .max_values = 65536};

/* The next message (one line), parsed. 0 and *msg, or a negative errno. */
static int qmp_client_next(struct qmp_client *q, struct json_value **msg)
{
	char *nl;
	struct json_error jerr;

	while (!(nl = q->in_len ? memchr(q->in, '\n', q->in_len) : NULL)) {
		int ret = qmp_client_fill(q, q->timeout_ms);
		if (ret < 0)
			return ret;
	}
	size_t len = (size_t)(nl - q->in) + 1;
	int ret = json_parse(q->in, len, &qmp_client_limits, msg, &jerr);
	memmove(q->in, q->in + len, q->in_len - len);
	q->in_len -= len;
	return ret < 0 ? -EPROTO : 0;
}

/* The next reply (events are skipped: the client polls for what it needs). */
static int qmp_client_reply(struct qmp_client *q, struct json_value **msg)
{
	for (;;) {
		int ret = qmp_client_next(q, msg);
		if (ret < 0 || !json_object_get(*msg, "event"))
			return ret;
		json_free(*msg);
	}
}

static int qmp_client_send(struct qmp_client *q, const char *text, size_t len)
{
	while (len) {
		ssize_t n = send(q->fd, text, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		text += n;
		len -= (size_t)n;
	}
	return 0;
}

static void qmp_client_strerror(int ret, char *err, size_t errlen)
{
	if (ret == -ECONNRESET || ret == -EPIPE)
		snprintf(err, errlen, "vmig closed the control connection");
	else if (ret == -ETIMEDOUT)
		snprintf(err, errlen, "no reply from vmig within %d ms", 10000);
	else if (ret == -EPROTO)
		snprintf(err, errlen, "vmig sent something that is not JSON");
	else
		snprintf(err, errlen, "%s", strerror(-ret));
}

/* {"error": {"desc": ...}} -> err; a reply without either member is a protocol error. */
static int qmp_client_check_reply(const struct json_value *msg, char *err, size_t errlen)
{
	const struct json_value *e = json_object_get(msg, "error");
	const struct json_value *d = json_object_get(e, "desc");

	if (json_object_get(msg, "return"))
		return 0;
	if (d && d->type == JSON_STRING) {
		snprintf(err, errlen, "%s", d->str.s);
		return -EREMOTEIO;
	}
	snprintf(err, errlen, "vmig sent a reply that is neither a return nor an error");
	return -EPROTO;
}

int qmp_client_execute(struct qmp_client *q, const char *name, const char *args_json,
		       struct json_value **reply, char *err, size_t errlen)
{
	char *text = NULL;
	int n = args_json
		    ? asprintf(&text, "{\"execute\": \"%s\", \"arguments\": %s}\n", name, args_json)
		    : asprintf(&text, "{\"execute\": \"%s\"}\n", name);
	int ret = n < 0 ? -ENOMEM : qmp_client_send(q, text, (size_t)n);

	free(text);
	if (ret == 0)
		ret = qmp_client_reply(q, reply);
	if (ret < 0) {
		qmp_client_strerror(ret, err, errlen);
		return ret;
	}
	ret = qmp_client_check_reply(*reply, err, errlen);
	if (ret < 0) {
		json_free(*reply);
		*reply = NULL;
	}
	return ret;
}

static int qmp_client_open(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

int qmp_client_connect(struct qmp_client *q, const char *path, char *err, size_t errlen)
{
	struct json_value *msg = NULL;
	int ret;

	*q = (struct qmp_client){.fd = qmp_client_open(path), .timeout_ms = 10000};
	if (q->fd < 0) {
		snprintf(err, errlen, "cannot connect to the control socket %s: %s", path,
			 strerror(-q->fd));
		return q->fd;
	}
	ret = qmp_client_next(q, &msg); /* the greeting */
	if (ret == 0 && !json_object_get(msg, "QMP"))
		ret = -EPROTO;
	json_free(msg);
	if (ret < 0) {
		qmp_client_strerror(ret, err, errlen);
		qmp_client_close(q);
		return ret;
	}
	ret = qmp_client_execute(q, "qmp_capabilities", NULL, &msg, err, errlen);
	json_free(msg);
	if (ret < 0)
		qmp_client_close(q);
	return ret;
}

void qmp_client_close(struct qmp_client *q)
{
	if (q->fd >= 0)
		close(q->fd);
	free(q->in);
	*q = (struct qmp_client){.fd = -1};
}
