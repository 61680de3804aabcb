// SPDX-License-Identifier: Apache-2.0
/*
 * Channels: whole-record I/O on one connection (or file), the stream header and the record
 * header with its checksums and sequence numbers. Payloads go out with writev straight from
 * where they live (guest memory for RAM) and come in with read straight to where they go.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/util.h"
#include "vmm/machine.h"
#include "vmm/migration/internal.h"
#include "vmm/migration/tls.h"

_Static_assert(sizeof(struct mig_hdr) == 64, "stream header is 64 bytes on the wire");
_Static_assert(sizeof(struct mig_rec) == 32, "record header is 32 bytes on the wire");

void mig_rec_get(const struct mig_rec *r, struct mig_rec_view *v)
{
	*v =
	    (struct mig_rec_view){.type = r->type, .len = r->len, .arg = r->arg, .count = r->count};
}

void mig_chan_init(struct mig_chan *c, struct migration *mig, int fd, unsigned index)
{
	*c = (struct mig_chan){.fd = fd, .index = index, .mig = mig};
}

void mig_chan_shutdown(struct mig_chan *c, int how)
{
	if (c->fd >= 0 && !c->is_file)
		shutdown(c->fd, how);
}

void mig_chan_patient(struct mig_chan *c)
{
	struct timeval none = {0};
	int user_ms = MIG_PATIENT_TCP_MS;

	if (c->fd < 0 || c->is_file)
		return;
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof(none));
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
	/* Fails harmlessly on a unix: socket, which has no such timeout. */
	setsockopt(c->fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_ms, sizeof(user_ms));
}

void mig_chan_close(struct mig_chan *c)
{
	mig_tls_free(c->tls);
	c->tls = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static size_t mig_iov_advance(struct iovec **iov, int *n, size_t done)
{
	size_t left = done;

	while (*n > 0 && left >= (*iov)->iov_len) {
		left -= (*iov)->iov_len;
		(*iov)++;
		(*n)--;
	}
	if (*n > 0) {
		(*iov)->iov_base = (char *)(*iov)->iov_base + left;
		(*iov)->iov_len -= left;
	}
	return done;
}

/*
 * A socket write never raises SIGPIPE: a peer that went away, or our own shutdown(2) on
 * cancel, must come back as EPIPE, not end the process with its guest.
 */
static ssize_t mig_chan_writev(struct mig_chan *c, struct iovec *iov, int n)
{
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};

	return c->is_file ? writev(c->fd, iov, n) : sendmsg(c->fd, &msg, MSG_NOSIGNAL);
}

/* iov is consumed (its entries are modified). */
int mig_chan_write_all(struct mig_chan *c, struct iovec *iov, int n)
{
	if (c->tls)
		return mig_tls_sendv(c->tls, iov, n, &c->bytes_out);
	while (n > 0) {
		ssize_t w = mig_chan_writev(c, iov, MIN(n, 1024));
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (w == 0)
			return -EPIPE;
		__atomic_add_fetch(&c->bytes_out, (uint64_t)w, __ATOMIC_RELAXED);
		mig_iov_advance(&iov, &n, (size_t)w);
	}
	return 0;
}

int mig_chan_read_all(struct mig_chan *c, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t r = c->tls ? mig_tls_recv(c->tls, p, len) : read(c->fd, p, len);
		if (r < 0 && !c->tls && errno == EINTR)
			continue;
		if (r < 0)
			return c->tls ? (int)r : -errno;
		if (r == 0)
			return -EPIPE; /* the peer went away, or the file ended early */
		__atomic_add_fetch(&c->bytes_in, (uint64_t)r, __ATOMIC_RELAXED);
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

void mig_rec_fill(struct mig_chan *c, struct mig_rec *r, uint16_t section, uint16_t type,
		  uint64_t arg, uint32_t count, uint32_t len, uint32_t data_crc)
{
	*r = (struct mig_rec){.section = section,
			      .type = type,
			      .len = len,
			      .arg = arg,
			      .count = count,
			      .data_crc = data_crc,
			      .seq = c->seq_out++};
	r->crc = crc32c(0, r, offsetof(struct mig_rec, crc));
}

int mig_chan_send(struct mig_chan *c, uint16_t section, uint16_t type, uint64_t arg, uint32_t count,
		  const struct iovec *iov, int n)
{
	struct iovec v[8];
	struct mig_rec r;
	uint32_t crc = 0;
	size_t len = 0;

	if (n > 7)
		return -E2BIG;
	for (int i = 0; i < n; i++) {
		crc = crc32c(crc, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
		v[i + 1] = iov[i];
	}
	if (len > MIG_MAX_PAYLOAD)
		return -E2BIG;
	mig_rec_fill(c, &r, section, type, arg, count, (uint32_t)len, crc);
	v[0] = (struct iovec){.iov_base = &r, .iov_len = sizeof(r)};
	return mig_chan_write_all(c, v, n + 1);
}

const char *mig_io_strerror(int err)
{
	if (err == EAGAIN || err == EWOULDBLOCK || err == ETIMEDOUT)
		return "no progress within the channel's timeout (a dead link or a stalled peer)";
	if (err == ECONNRESET || err == EPIPE)
		return "the connection broke (a dead link, or the peer went away)";
	return strerror(err);
}

int mig_chan_recv(struct mig_chan *c, struct mig_rec *r, char *err, size_t errlen)
{
	int ret = mig_chan_read_all(c, r, sizeof(*r));

	if (ret < 0) {
		snprintf(err, errlen, "channel %u: %s", c->index,
			 ret == -EPIPE ? "the stream ended before its end marker"
				       : mig_io_strerror(-ret));
		return ret;
	}
	if (crc32c(0, r, offsetof(struct mig_rec, crc)) != r->crc) {
		snprintf(err, errlen, "channel %u: record %u has a bad checksum", c->index,
			 c->seq_in);
		return -EBADMSG;
	}
	if (r->seq != c->seq_in) {
		snprintf(err, errlen, "channel %u: record %u arrived where %u was due (lost sync)",
			 c->index, r->seq, c->seq_in);
		return -EBADMSG;
	}
	if (r->len > MIG_MAX_PAYLOAD) {
		snprintf(err, errlen, "channel %u: record of %u bytes (at most %u)", c->index,
			 r->len, MIG_MAX_PAYLOAD);
		return -EBADMSG;
	}
	c->seq_in++;
	return 0;
}

int mig_chan_recv_payload(struct mig_chan *c, const struct mig_rec *r, void *buf)
{
	int ret = mig_chan_read_all(c, buf, r->len);

	if (ret < 0)
		return ret;
	return crc32c(0, buf, r->len) == r->data_crc ? 0 : -EBADMSG;
}

void mig_hdr_fill(struct mig_hdr *h, const struct migration *mig, unsigned channel, uint32_t flags)
{
	*h = (struct mig_hdr){.version = MIG_VERSION,
			      .channel = channel,
			      .ram_channels = mig->nr_chans - 1,
			      .nr_vcpus = mig->m->vm->nr_vcpus,
			      .mem_size = mig->m->mem->size,
			      .flags = flags};
	memcpy(h->magic, MIG_MAGIC, sizeof(h->magic));
	memcpy(h->session, mig->session, sizeof(h->session));
	h->crc = crc32c(0, h, offsetof(struct mig_hdr, crc));
}

int mig_hdr_check(const struct mig_hdr *h, char *err, size_t errlen)
{
	if (memcmp(h->magic, MIG_MAGIC, sizeof(h->magic)) != 0) {
		snprintf(err, errlen, "not a vmig migration stream (bad magic)");
		return -EBADMSG;
	}
	if (crc32c(0, h, offsetof(struct mig_hdr, crc)) != h->crc) {
		snprintf(err, errlen, "stream header has a bad checksum");
		return -EBADMSG;
	}
	if (h->version != MIG_VERSION) {
		snprintf(err, errlen, "stream format version %u, this vmig reads %u", h->version,
			 MIG_VERSION);
		return -EPROTO;
	}
	if (h->ram_channels > MIG_MAX_CHANNELS || h->channel > h->ram_channels ||
	    h->flags & ~MIG_HDR_F_FILE || h->reserved[0] || h->reserved[1]) {
		snprintf(err, errlen, "stream header is malformed");
		return -EBADMSG;
	}
	return 0;
}
