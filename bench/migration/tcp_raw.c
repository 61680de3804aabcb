// SPDX-License-Identifier: Apache-2.0
/*
 * Raw loopback TCP, the yardstick for the migration benchmark: N parallel streams push B
 * bytes in total (B / N each) from a non-zero buffer of B bytes into a receive buffer of B
 * bytes, with large send(2)/recv(2) calls. Both buffers are faulted in before the clock
 * starts (as a --mem-prealloc guest's RAM is). The clock runs from the first connect to the
 * last byte received, as a migration's total time runs from connecting to the end.
 *
 * Usage: tcp_raw STREAMS BYTES [CHUNK]   (sizes take K/M/G, powers of 1024)
 * Prints: tcp_raw streams=N bytes=B chunk=C secs=S mbytes_per_s=R
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_STREAMS 64

struct stream {
	pthread_t tx, rx;
	int index;
	int lfd; /* receiver: the listening socket (shared) */
	uint16_t port;
	uint8_t *src, *dst; /* this stream's slices */
	size_t len, chunk;
	int err;
};

static uint8_t *buf_src, *buf_dst;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t parse_size(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 0);

	switch (*end) {
	case 'G':
	case 'g':
		v <<= 10; /* fall through */
	case 'M':
	case 'm':
		v <<= 10; /* fall through */
	case 'K':
	case 'k':
		v <<= 10;
		end++;
		break;
	default:
		break;
	}
	if (*end || !v) {
		fprintf(stderr, "tcp_raw: bad size '%s'\n", s);
		exit(64);
	}
	return (size_t)v;
}

static uint8_t *alloc_filled(size_t len, int seed)
{
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t x = 0x9e3779b97f4a7c15ull * (uint64_t)(seed + 1);

	if (p == MAP_FAILED) {
		perror("tcp_raw: mmap");
		exit(1);
	}
	for (size_t i = 0; i + 8 <= len; i += 8) { /* xorshift64: never zero, faults it all in */
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(p + i, &x, 8);
	}
	return p;
}

static void *tx_main(void *arg)
{
	struct stream *s = arg;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(s->port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	uint32_t idx = (uint32_t)s->index;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    send(fd, &idx, sizeof(idx), 0) != sizeof(idx)) {
		s->err = errno;
		goto out;
	}
	for (size_t off = 0; off < s->len;) {
		size_t n = s->len - off < s->chunk ? s->len - off : s->chunk;
		ssize_t w = send(fd, s->src + off, n, 0);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			s->err = errno ? errno : EPIPE;
			break;
		}
		off += (size_t)w;
	}
out:
	if (fd >= 0)
		close(fd);
	return NULL;
}

static struct stream streams[MAX_STREAMS];

static void *rx_main(void *arg)
{
	struct stream *s = arg;
	int fd = accept(s->lfd, NULL, NULL);
	uint32_t idx;

	if (fd < 0 || recv(fd, &idx, sizeof(idx), MSG_WAITALL) != sizeof(idx) ||
	    idx >= MAX_STREAMS) {
		s->err = errno ? errno : EPROTO;
		goto out;
	}
	/* The connection says which slice it carries: accept order is not connect order. */
	struct stream *t = &streams[idx];
	for (size_t off = 0; off < t->len;) {
		size_t n = t->len - off < t->chunk ? t->len - off : t->chunk;
		ssize_t r = recv(fd, t->dst + off, n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			s->err = r == 0 ? EPIPE : errno;
			break;
		}
		off += (size_t)r;
	}
out:
	if (fd >= 0)
		close(fd);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: tcp_raw STREAMS BYTES [CHUNK]\n");
		return 64;
	}
	int n = atoi(argv[1]);
	size_t bytes = parse_size(argv[2]);
	size_t chunk = argc > 3 ? parse_size(argv[3]) : (size_t)1 << 20;
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof(a);

	if (n < 1 || n > MAX_STREAMS || bytes % (size_t)n) {
		fprintf(stderr, "tcp_raw: STREAMS must be 1..%d and divide BYTES\n", MAX_STREAMS);
		return 64;
	}
	buf_src = alloc_filled(bytes, 1);
	buf_dst = alloc_filled(bytes, 2);

	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(lfd, MAX_STREAMS) < 0 || getsockname(lfd, (struct sockaddr *)&a, &alen) < 0) {
		perror("tcp_raw: listen");
		return 1;
	}
	size_t slice = bytes / (size_t)n;
	for (int i = 0; i < n; i++) {
		streams[i] = (struct stream){.index = i,
					     .lfd = lfd,
					     .port = ntohs(a.sin_port),
					     .src = buf_src + (size_t)i * slice,
					     .dst = buf_dst + (size_t)i * slice,
					     .len = slice,
					     .chunk = chunk};
	}
	double t0 = now_s();
	for (int i = 0; i < n; i++) {
		pthread_create(&streams[i].rx, NULL, rx_main, &streams[i]);
		pthread_create(&streams[i].tx, NULL, tx_main, &streams[i]);
	}
	int err = 0;
	for (int i = 0; i < n; i++) {
		pthread_join(streams[i].tx, NULL);
		pthread_join(streams[i].rx, NULL);
		err = err ? err : streams[i].err;
	}
	double secs = now_s() - t0;
	if (err) {
		fprintf(stderr, "tcp_raw: %s\n", strerror(err));
		return 1;
	}
	if (memcmp(buf_src, buf_dst, bytes) != 0) {
		fprintf(stderr, "tcp_raw: the received bytes differ from the sent ones\n");
		return 1;
	}
	printf("tcp_raw streams=%d bytes=%zu chunk=%zu secs=%.6f mbytes_per_s=%.1f\n", n, bytes,
	       chunk, secs, (double)bytes / secs / 1e6);
	return 0;
}
