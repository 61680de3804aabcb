// SPDX-License-Identifier: Apache-2.0
/* Migration URIs: tcp:HOST:PORT, unix:PATH, file:PATH; connecting, listening, accepting. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmm/migration/internal.h"

#define MIG_SOCK_BUF (4u << 20) /* deep socket buffers: fewer wake-ups per byte */

/* The URI's fault, said as what was expected (QMP puts "Parameter 'uri' expects" before). */
static int mig_uri_expect(char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "%s", what);
	return -EINVAL;
}

/* tcp:HOST:PORT, HOST possibly a bracketed IPv6 address; the port a number up to 65535. */
static int mig_uri_parse_tcp(const char *rest, struct mig_uri *u, char *err, size_t errlen)
{
	const char *colon = strrchr(rest, ':');
	const char *host = rest, *host_end = colon;
	char *end;

	if (!colon || colon == rest)
		return mig_uri_expect(err, errlen, "tcp:HOST:PORT");
	if (rest[0] == '[') { /* [::1]:4444 */
		host = rest + 1;
		host_end = colon - 1;
		if (*host_end != ']')
			return mig_uri_expect(err, errlen, "tcp:[IPV6]:PORT");
	}
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (colon[1] < '0' || colon[1] > '9' || *end || port > 65535)
		return mig_uri_expect(err, errlen,
				      "a port number from 0 to 65535 in tcp:HOST:PORT");
	if (host_end - host >= (long)sizeof(u->host))
		return mig_uri_expect(err, errlen, "tcp:HOST:PORT with a shorter HOST");
	memcpy(u->host, host, (size_t)(host_end - host));
	u->host[host_end - host] = 0;
	snprintf(u->port, sizeof(u->port), "%lu", port);
	u->kind = MIG_URI_TCP;
	return 0;
}

static int mig_uri_parse_path(const char *rest, enum mig_uri_kind kind, struct mig_uri *u,
			      char *err, size_t errlen)
{
	if (!rest[0] || strlen(rest) >= sizeof(u->path))
		return mig_uri_expect(err, errlen,
				      kind == MIG_URI_UNIX
					  ? "unix:PATH with a path of 1 to 107 bytes"
					  : "file:PATH with a path of 1 to 107 bytes");
	snprintf(u->path, sizeof(u->path), "%s", rest);
	u->kind = kind;
	return 0;
}

int mig_uri_parse(const char *text, struct mig_uri *u, char *err, size_t errlen)
{
	*u = (struct mig_uri){0};
	if (strncmp(text, "tcp:", 4) == 0)
		return mig_uri_parse_tcp(text + 4, u, err, errlen);
	if (strncmp(text, "unix:", 5) == 0)
		return mig_uri_parse_path(text + 5, MIG_URI_UNIX, u, err, errlen);
	if (strncmp(text, "file:", 5) == 0)
		return mig_uri_parse_path(text + 5, MIG_URI_FILE, u, err, errlen);
	/* exec: and rdma: are QEMU's too, but vmig has neither: say what it has. */
	return mig_uri_expect(err, errlen, "a valid migration protocol (tcp:, unix:, file:)");
}

int migration_check_uri(const char *uri, char *expect, size_t len)
{
	struct mig_uri u;
	return mig_uri_parse(uri, &u, expect, len);
}

/*
 * A link that dies leaves sent data unacknowledged: TCP gives the connection up after
 * MIG_TCP_USER_TIMEOUT_MS and every call on it fails. SO_SNDTIMEO alone does not bound a
 * writer: each send that moved a byte restarts it.
 */
#define MIG_TCP_USER_TIMEOUT_MS 20000

static void mig_sock_tune(int fd, bool tcp)
{
	int one = 1, buf = (int)MIG_SOCK_BUF, user_ms = MIG_TCP_USER_TIMEOUT_MS;

	if (tcp) {
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_ms, sizeof(user_ms));
	}
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
}

static int mig_unix_addr(const struct mig_uri *u, struct sockaddr_un *sa)
{
	*sa = (struct sockaddr_un){.sun_family = AF_UNIX};
	snprintf(sa->sun_path, sizeof(sa->sun_path), "%s", u->path);
	return 0;
}

#define MIG_CONNECT_MS 10000

/*
 * connect(2) bounded in time and abandoned on cancel: a blocking connect to a host that
 * drops SYNs would hold a cancel (and quit) for the kernel's two minutes of retries.
 * 0, or -errno (errno set).
 */
static int mig_connect(int fd, const struct sockaddr *sa, socklen_t len, const bool *cancel)
{
	int flags = fcntl(fd, F_GETFL), soerr = 0;
	socklen_t sl = sizeof(soerr);

	fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	int ret = connect(fd, sa, len) < 0 ? -errno : 0;
	for (int waited = 0; ret == -EINPROGRESS && waited < MIG_CONNECT_MS; waited += 100) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		if (cancel && __atomic_load_n(cancel, __ATOMIC_ACQUIRE))
			ret = -ECANCELED;
		else if (poll(&p, 1, 100) > 0)
			ret =
			    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 ? -errno : -soerr;
	}
	if (ret == -EINPROGRESS)
		ret = -ETIMEDOUT;
	fcntl(fd, F_SETFL, flags);
	errno = -ret;
	return ret;
}

static int mig_tcp_connect(const struct mig_uri *u, const bool *cancel, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
	int rc = getaddrinfo(u->host, u->port, &hints, &res), fd = -1, saved = 0;

	if (rc != 0) {
		snprintf(err, errlen, "cannot resolve %s: %s", u->host, gai_strerror(rc));
		return -EHOSTUNREACH;
	}
	for (ai = res; ai && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0)
			mig_sock_tune(fd, true);
		if (fd >= 0 && mig_connect(fd, ai->ai_addr, ai->ai_addrlen, cancel) < 0) {
			saved = errno;
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0)
		snprintf(err, errlen, "cannot connect to %s:%s: %s", u->host, u->port,
			 strerror(saved ? saved : EHOSTUNREACH));
	return fd < 0 ? -(saved ? saved : EHOSTUNREACH) : fd;
}

static int mig_unix_connect(const struct mig_uri *u, const bool *cancel, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	mig_unix_addr(u, &sa);
	if (fd >= 0)
		mig_sock_tune(fd, false);
	if (fd < 0 || mig_connect(fd, (struct sockaddr *)&sa, sizeof(sa), cancel) < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot connect to %s: %s", u->path, strerror(e));
		if (fd >= 0)
			close(fd);
		return -e;
	}
	return fd;
}

int mig_uri_connect(const struct mig_uri *u, const bool *cancel, char *err, size_t errlen)
{
	if (u->kind == MIG_URI_TCP)
		return mig_tcp_connect(u, cancel, err, errlen);
	if (u->kind == MIG_URI_UNIX)
		return mig_unix_connect(u, cancel, err, errlen);
	char part[sizeof(u->path) + 16];
	snprintf(part, sizeof(part), "%s.partial", u->path);
	int fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot create %s: %s", part, strerror(e));
		return -e;
	}
	return fd;
}

/*
 * A file: save is written to PATH.partial and takes PATH's place only once complete: a
 * failed or cancelled save leaves an earlier file at PATH intact.
 */
int mig_uri_file_finish(const struct mig_uri *u, bool ok)
{
	char part[sizeof(u->path) + 16];

	snprintf(part, sizeof(part), "%s.partial", u->path);
	if (ok)
		return rename(part, u->path) < 0 ? -errno : 0;
	unlink(part);
	return 0;
}

static int mig_listen_on(int fd, const struct sockaddr *sa, socklen_t len)
{
	int one = 1;

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, sa, len) < 0 || listen(fd, (int)MIG_MAX_CHANNELS + 1) < 0)
		return -errno;
	return 0;
}

static int mig_tcp_listen(const struct mig_uri *u, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res;
	const char *host = u->host[0] && strcmp(u->host, "0") != 0 ? u->host : NULL;
	int rc = getaddrinfo(host, u->port, &hints, &res);

	if (rc != 0) {
		snprintf(err, errlen, "cannot resolve %s: %s", u->host, gai_strerror(rc));
		return -EINVAL;
	}
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int ret = fd < 0 ? -errno : mig_listen_on(fd, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	if (ret < 0) {
		snprintf(err, errlen, "cannot listen on %s:%s: %s", u->host, u->port,
			 strerror(-ret));
		if (fd >= 0)
			close(fd);
		return ret;
	}
	return fd;
}

static int mig_unix_listen(const struct mig_uri *u, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	mig_unix_addr(u, &sa);
	unlink(u->path); /* a stale socket from an earlier run */
	int ret = fd < 0 ? -errno : mig_listen_on(fd, (struct sockaddr *)&sa, sizeof(sa));
	if (ret < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", u->path, strerror(-ret));
		if (fd >= 0)
			close(fd);
	}
	return ret < 0 ? ret : fd;
}

int mig_uri_listen(const struct mig_uri *u, char *err, size_t errlen)
{
	if (u->kind == MIG_URI_TCP)
		return mig_tcp_listen(u, err, errlen);
	if (u->kind == MIG_URI_UNIX)
		return mig_unix_listen(u, err, errlen);
	int fd = open(u->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot open %s: %s", u->path, strerror(e));
		return -e;
	}
	return fd;
}

int mig_uri_accept(int listen_fd, int timeout_ms, const bool *cancel)
{
	for (int waited = 0; waited < timeout_ms; waited += 100) {
		struct pollfd p = {.fd = listen_fd, .events = POLLIN};
		if (__atomic_load_n(cancel, __ATOMIC_ACQUIRE))
			return -ECANCELED;
		int n = poll(&p, 1, 100);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n <= 0)
			continue;
		int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0) {
			mig_sock_tune(fd, true);
			return fd;
		}
		if (errno != EINTR && errno != ECONNABORTED && errno != EAGAIN)
			return -errno;
	}
	return -ETIMEDOUT;
}
