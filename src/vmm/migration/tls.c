// SPDX-License-Identifier: Apache-2.0
/* TLS sessions for migration channels (tls.h). */
#include "vmm/migration/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fnmatch.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/util.h"

/* TLS 1.3 and nothing older: a migration carries the whole of guest memory. */
#define MIG_TLS_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3"

struct mig_tls_creds {
	gnutls_certificate_credentials_t x509;
	bool server;
};

/* Pieces shorter than this are gathered into a record; longer ones go out as they are. */
#define MIG_TLS_DIRECT_MIN 4096u
#define MIG_TLS_RECORD_MAX 16384u /* TLS's largest plaintext record */
/* The listening side's word that it accepted the connecting side (after its authz). */
#define MIG_TLS_ACCEPTED 'V'

struct mig_tls {
	gnutls_session_t s;
	int fd;
	bool timed_out; /* a socket timeout ended a transfer (atomic: two threads) */
	size_t gathered;
	uint8_t gather[MIG_TLS_RECORD_MAX];
	char *peer_dn; /* NULL: none, or unreadable */
};

/* Credentials ----------------------------------------------------------------------------- */

static int tls_path(const char *dir, const char *name, char *out, size_t len)
{
	if (snprintf(out, len, "%s/%s", dir, name) >= (int)len)
		return -ENAMETOOLONG;
	return access(out, R_OK) == 0 ? 0 : -errno;
}

static int tls_load_ca(struct mig_tls_creds *c, const char *dir, char *err, size_t errlen)
{
	char path[4096];
	int ret = tls_path(dir, "ca-cert.pem", path, sizeof(path));

	if (ret < 0) {
		snprintf(err, errlen, "TLS credentials: %s: %s", path, strerror(-ret));
		return ret;
	}
	if (gnutls_certificate_set_x509_trust_file(c->x509, path, GNUTLS_X509_FMT_PEM) <= 0) {
		snprintf(err, errlen, "TLS credentials: %s holds no CA certificate", path);
		return -EINVAL;
	}
	/* A revocation list is optional, as for QEMU. */
	if (tls_path(dir, "ca-crl.pem", path, sizeof(path)) == 0 &&
	    gnutls_certificate_set_x509_crl_file(c->x509, path, GNUTLS_X509_FMT_PEM) < 0) {
		snprintf(err, errlen, "TLS credentials: %s is not a revocation list", path);
		return -EINVAL;
	}
	return 0;
}

static int tls_load_own(struct mig_tls_creds *c, const char *dir, char *err, size_t errlen)
{
	const char *who = c->server ? "server" : "client";
	char cert[4096], key[4096], name[32];
	int ret;

	snprintf(name, sizeof(name), "%s-cert.pem", who);
	ret = tls_path(dir, name, cert, sizeof(cert));
	snprintf(name, sizeof(name), "%s-key.pem", who);
	if (ret == 0)
		ret = tls_path(dir, name, key, sizeof(key));
	if (ret < 0) {
		snprintf(err, errlen, "TLS credentials: %s/%s-cert.pem and %s-key.pem: %s", dir,
			 who, who, strerror(-ret));
		return ret;
	}
	ret = gnutls_certificate_set_x509_key_file(c->x509, cert, key, GNUTLS_X509_FMT_PEM);
	if (ret < 0) {
		snprintf(err, errlen, "TLS credentials: %s with %s: %s", cert, key,
			 gnutls_strerror(ret));
		return -EINVAL;
	}
	return 0;
}

int mig_tls_creds_load(const char *dir, bool server, struct mig_tls_creds **out, char *err,
		       size_t errlen)
{
	struct mig_tls_creds *c = calloc(1, sizeof(*c));
	int ret = c ? 0 : -ENOMEM;

	if (c) {
		c->server = server;
		if (gnutls_certificate_allocate_credentials(&c->x509) < 0)
			ret = -ENOMEM;
	}
	if (ret == 0)
		ret = tls_load_ca(c, dir, err, errlen);
	if (ret == 0)
		ret = tls_load_own(c, dir, err, errlen);
	if (ret < 0) {
		mig_tls_creds_free(c);
		return ret;
	}
	*out = c;
	return 0;
}

void mig_tls_creds_free(struct mig_tls_creds *c)
{
	if (!c)
		return;
	if (c->x509)
		gnutls_certificate_free_credentials(c->x509);
	free(c);
}

/* Transport --------------------------------------------------------------------------------- */

/*
 * vmig's own socket I/O under GnuTLS: a write never raises SIGPIPE, and a socket timeout
 * (SO_RCVTIMEO/SO_SNDTIMEO, the engine's bound on a silent peer) is an error, not GnuTLS's
 * "try again", which on a blocking socket would retry forever.
 */
static void tls_set_errno(struct mig_tls *t, int e)
{
	if (e == EAGAIN || e == EWOULDBLOCK) {
		__atomic_store_n(&t->timed_out, true, __ATOMIC_RELAXED);
		e = ETIMEDOUT;
	}
	/* The session's errno is shared by the two threads; the thread's own is not. */
	errno = e;
	gnutls_transport_set_errno(t->s, e);
}

/* What a failed transfer returns: a timeout says so, anything else is a broken session. */
static int tls_broken(struct mig_tls *t)
{
	return __atomic_load_n(&t->timed_out, __ATOMIC_RELAXED) ? -ETIMEDOUT : -EPIPE;
}

static ssize_t tls_pull(gnutls_transport_ptr_t p, void *buf, size_t len)
{
	struct mig_tls *t = p;
	ssize_t n;

	do
		n = recv(t->fd, buf, len, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		tls_set_errno(t, errno);
	return n;
}

static ssize_t tls_push(gnutls_transport_ptr_t p, const giovec_t *iov, int n)
{
	struct mig_tls *t = p;
	struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n};
	ssize_t w;

	do
		w = sendmsg(t->fd, &msg, MSG_NOSIGNAL);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		tls_set_errno(t, errno);
	return w;
}

/* GnuTLS's bound on the handshake and on the acceptance read (ms; -1 forever). */
static int tls_pull_timeout(gnutls_transport_ptr_t p, unsigned ms)
{
	struct mig_tls *t = p;
	struct pollfd pfd = {.fd = t->fd, .events = POLLIN};
	int r;

	do
		r = poll(&pfd, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int)MIN(ms, INT32_MAX));
	while (r < 0 && errno == EINTR);
	return r;
}

/* Sessions ---------------------------------------------------------------------------------- */

static int tls_session(struct mig_tls **out, int fd, const struct mig_tls_creds *c, unsigned flags,
		       int timeout_ms)
{
	struct mig_tls *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	/* No session tickets: a migration connection is never resumed. */
	if (gnutls_init(&t->s, flags | GNUTLS_NO_TICKETS) < 0) {
		free(t);
		return -ENOMEM;
	}
	t->fd = fd;
	if (gnutls_priority_set_direct(t->s, MIG_TLS_PRIORITY, NULL) < 0 ||
	    gnutls_credentials_set(t->s, GNUTLS_CRD_CERTIFICATE, c->x509) < 0) {
		mig_tls_free(t);
		return -EINVAL;
	}
	gnutls_transport_set_ptr(t->s, t);
	gnutls_transport_set_pull_function(t->s, tls_pull);
	gnutls_transport_set_vec_push_function(t->s, tls_push);
	gnutls_transport_set_pull_timeout_function(t->s, tls_pull_timeout);
	gnutls_handshake_set_timeout(t->s, (unsigned)timeout_ms);
	*out = t;
	return 0;
}

/* Why the peer's certificate was refused, in GnuTLS's words. */
static void tls_verify_reason(struct mig_tls *t, const char *peer, char *err, size_t errlen)
{
	gnutls_datum_t txt = {NULL, 0};
	unsigned status = gnutls_session_get_verify_cert_status(t->s);

	if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &txt, 0) == 0) {
		size_t n = strlen((char *)txt.data);
		while (n && txt.data[n - 1] == ' ') /* GnuTLS ends its sentences with a space */
			txt.data[--n] = 0;
		snprintf(err, errlen, "the %s's certificate is refused: %s", peer, txt.data);
		gnutls_free(txt.data);
	} else {
		snprintf(err, errlen, "the %s's certificate is refused (status %#x)", peer, status);
	}
}

/* The peer said no with an alert: access_denied is its authorization, the rest certificates. */
static int tls_alert_reason(struct mig_tls *t, const char *peer, char *err, size_t errlen)
{
	gnutls_alert_description_t a = gnutls_alert_get(t->s);
	const char *name = gnutls_alert_get_name(a);

	if (a == GNUTLS_A_ACCESS_DENIED) {
		snprintf(err, errlen,
			 "the %s refused this side: its certificate's name is not on the %s's "
			 "authorization list (tls-authz)",
			 peer, peer);
		return -EPERM;
	}
	snprintf(err, errlen, "the %s refused this side's TLS session (alert: %s)", peer,
		 name ? name : "unknown");
	return -EACCES;
}

static bool tls_not_tls(int ret)
{
	return ret == GNUTLS_E_UNEXPECTED_PACKET_LENGTH ||
	       ret == GNUTLS_E_UNSUPPORTED_VERSION_PACKET || ret == GNUTLS_E_UNEXPECTED_PACKET;
}

static int tls_failure(struct mig_tls *t, int ret, const char *peer, char *err, size_t errlen)
{
	if (ret == GNUTLS_E_FATAL_ALERT_RECEIVED)
		return tls_alert_reason(t, peer, err, errlen);
	if (ret == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
		tls_verify_reason(t, peer, err, errlen);
		return -EACCES;
	}
	if (ret == GNUTLS_E_TIMEDOUT) {
		snprintf(err, errlen, "TLS handshake with the %s timed out", peer);
		return -ETIMEDOUT;
	}
	if (tls_not_tls(ret)) {
		snprintf(err, errlen,
			 "the %s does not speak TLS 1.3 (%s): a plaintext peer? This side "
			 "requires TLS (tls-creds)",
			 peer, gnutls_strerror(ret));
		return -EPROTO;
	}
	if (ret == GNUTLS_E_CERTIFICATE_REQUIRED || ret == GNUTLS_E_NO_CERTIFICATE_FOUND) {
		snprintf(err, errlen,
			 "the %s sent no certificate signed by a CA this side trusts (%s)", peer,
			 gnutls_strerror(ret));
		return -EACCES;
	}
	snprintf(err, errlen, "TLS handshake with the %s failed: %s", peer, gnutls_strerror(ret));
	return -EPROTO;
}

static int tls_handshake(struct mig_tls *t, const char *peer, char *err, size_t errlen)
{
	int ret;

	do
		ret = gnutls_handshake(t->s);
	while (ret < 0 && !gnutls_error_is_fatal(ret));
	if (ret == 0)
		return 0;
	/* The peer learns why too (best effort), unless it was the one that said no. */
	if (ret != GNUTLS_E_FATAL_ALERT_RECEIVED && !tls_not_tls(ret))
		gnutls_alert_send_appropriate(t->s, ret);
	return tls_failure(t, ret, peer, err, errlen);
}

/* The peer certificate's DN, whatever its length (a DN that cannot be read stays NULL). */
static void tls_note_peer(struct mig_tls *t)
{
	unsigned n = 0;
	const gnutls_datum_t *certs = gnutls_certificate_get_peers(t->s, &n);
	gnutls_x509_crt_t crt;
	gnutls_datum_t dn = {NULL, 0};

	if (!certs || !n || gnutls_x509_crt_init(&crt) < 0)
		return;
	if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) == 0 &&
	    gnutls_x509_crt_get_dn2(crt, &dn) == 0) {
		t->peer_dn = strndup((const char *)dn.data, dn.size);
		gnutls_free(dn.data);
	}
	gnutls_x509_crt_deinit(crt);
}

/*
 * In TLS 1.3 the client's handshake ends before the server checked the client's
 * certificate: the server's one-byte acceptance (or its alert) is awaited here, bounded.
 */
static int tls_await_acceptance(struct mig_tls *t, int timeout_ms, char *err, size_t errlen)
{
	uint8_t b = 0;
	ssize_t n;

	gnutls_record_set_timeout(t->s, (unsigned)timeout_ms);
	do
		n = gnutls_record_recv(t->s, &b, 1);
	while (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED);
	gnutls_record_set_timeout(t->s, 0);
	if (n == 1 && b == MIG_TLS_ACCEPTED)
		return 0;
	if (n == 0 || n == 1) {
		snprintf(err, errlen, "the destination ended the TLS session without accepting");
		return -EPROTO;
	}
	if (n == GNUTLS_E_PREMATURE_TERMINATION || n == GNUTLS_E_PULL_ERROR) {
		snprintf(err, errlen,
			 "the destination closed the connection after the TLS handshake "
			 "(it refused this source?)");
		return -EACCES;
	}
	return tls_failure(t, (int)n, "destination", err, errlen);
}

static bool tls_is_ip(const char *host)
{
	uint8_t addr[16];

	return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
}

int mig_tls_client(int fd, const struct mig_tls_creds *c, const char *hostname, int timeout_ms,
		   struct mig_tls **out, char *err, size_t errlen)
{
	struct mig_tls *t;
	int ret = tls_session(&t, fd, c, GNUTLS_CLIENT, timeout_ms);

	if (ret < 0)
		return ret;
	/* Server name indication carries DNS names only; an address is checked all the same. */
	if (hostname && !tls_is_ip(hostname))
		gnutls_server_name_set(t->s, GNUTLS_NAME_DNS, hostname, strlen(hostname));
	/* Chain, validity and (given) the name are checked inside the handshake. */
	gnutls_session_set_verify_cert(t->s, hostname, 0);
	ret = tls_handshake(t, "destination", err, errlen);
	if (ret == 0)
		ret = tls_await_acceptance(t, timeout_ms, err, errlen);
	if (ret < 0) {
		mig_tls_free(t);
		return ret;
	}
	tls_note_peer(t);
	*out = t;
	return 0;
}

static bool tls_authorized(const struct mig_tls *t, const struct mig_tls_authz *a)
{
	if (!a)
		return true;
	if (!t->peer_dn) /* no name to match: a list must never let it through */
		return false;
	for (size_t i = 0; i < a->n; i++) {
		const struct mig_tls_rule *r = &a->rules[i];
		if (r->glob ? fnmatch(r->match, t->peer_dn, 0) == 0
			    : strcmp(r->match, t->peer_dn) == 0)
			return r->allow;
	}
	return a->default_allow;
}

static int tls_accept(struct mig_tls *t, const struct mig_tls_authz *authz, char *err,
		      size_t errlen)
{
	static const uint8_t yes = MIG_TLS_ACCEPTED;

	tls_note_peer(t);
	if (!tls_authorized(t, authz)) {
		snprintf(err, errlen,
			 "the source '%s' is not on the authorization list (tls-authz)",
			 mig_tls_peer_dn(t));
		gnutls_alert_send(t->s, GNUTLS_AL_FATAL, GNUTLS_A_ACCESS_DENIED);
		return -EPERM;
	}
	if (gnutls_record_send(t->s, &yes, 1) != 1) {
		snprintf(err, errlen, "the source went away after the TLS handshake");
		return -EPIPE;
	}
	return 0;
}

int mig_tls_server(int fd, const struct mig_tls_creds *c, const struct mig_tls_authz *authz,
		   int timeout_ms, struct mig_tls **out, char *err, size_t errlen)
{
	struct mig_tls *t;
	int ret = tls_session(&t, fd, c, GNUTLS_SERVER, timeout_ms);

	if (ret < 0)
		return ret;
	gnutls_certificate_server_set_request(t->s, GNUTLS_CERT_REQUIRE);
	gnutls_session_set_verify_cert(t->s, NULL, 0);
	ret = tls_handshake(t, "source", err, errlen);
	if (ret == 0)
		ret = tls_accept(t, authz, err, errlen);
	if (ret < 0) {
		mig_tls_free(t);
		return ret;
	}
	*out = t;
	return 0;
}

/* Records ----------------------------------------------------------------------------------- */

static int tls_send_all(struct mig_tls *t, const void *buf, size_t len, uint64_t *sent)
{
	const char *p = buf;

	while (len) {
		ssize_t n = gnutls_record_send(t->s, p, len);
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			continue;
		if (n <= 0)
			return tls_broken(t);
		__atomic_add_fetch(sent, (uint64_t)n, __ATOMIC_RELAXED);
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int tls_flush(struct mig_tls *t, uint64_t *sent)
{
	size_t len = t->gathered;

	t->gathered = 0;
	return len ? tls_send_all(t, t->gather, len, sent) : 0;
}

/* Gathers a short piece; a full record goes out at once. */
static int tls_gather(struct mig_tls *t, const uint8_t *p, size_t len, uint64_t *sent)
{
	int ret = 0;

	while (len && ret == 0) {
		size_t take = MIN(len, sizeof(t->gather) - t->gathered);
		memcpy(t->gather + t->gathered, p, take);
		t->gathered += take;
		p += take;
		len -= take;
		if (t->gathered == sizeof(t->gather))
			ret = tls_flush(t, sent);
	}
	return ret;
}

int mig_tls_sendv(struct mig_tls *t, const struct iovec *iov, int n, uint64_t *sent)
{
	int ret = 0;

	for (int i = 0; i < n && ret == 0; i++) {
		if (iov[i].iov_len < MIG_TLS_DIRECT_MIN) {
			ret = tls_gather(t, iov[i].iov_base, iov[i].iov_len, sent);
			continue;
		}
		ret = tls_flush(t, sent);
		if (ret == 0)
			ret = tls_send_all(t, iov[i].iov_base, iov[i].iov_len, sent);
	}
	if (ret == 0)
		ret = tls_flush(t, sent);
	t->gathered = 0;
	return ret;
}

ssize_t mig_tls_recv(struct mig_tls *t, void *buf, size_t len)
{
	for (;;) {
		ssize_t n = gnutls_record_recv(t->s, buf, len);
		if (n >= 0)
			return n;
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			continue;
		/* A peer gone without its close_notify is the same as one gone. */
		return n == GNUTLS_E_PREMATURE_TERMINATION || n == GNUTLS_E_PUSH_ERROR ||
			       n == GNUTLS_E_PULL_ERROR
			   ? tls_broken(t)
			   : -EBADMSG;
	}
}

const char *mig_tls_peer_dn(const struct mig_tls *t)
{
	return t->peer_dn ? t->peer_dn : "";
}

void mig_tls_free(struct mig_tls *t)
{
	if (!t)
		return;
	gnutls_deinit(t->s);
	free(t->peer_dn);
	free(t);
}
