// SPDX-License-Identifier: Apache-2.0
/* TLS sessions for migration channels (tls.h). */
#include "vmm/migration/tls.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* TLS 1.3 and nothing older: a migration carries the whole of guest memory. */
#define MIG_TLS_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3"

struct mig_tls_creds {
	gnutls_certificate_credentials_t x509;
	bool server;
};

struct mig_tls {
	gnutls_session_t s;
	char peer_dn[512];
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

/* Sessions ---------------------------------------------------------------------------------- */

static int tls_session(struct mig_tls **out, int fd, const struct mig_tls_creds *c, unsigned flags,
		       int timeout_ms)
{
	struct mig_tls *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	if (gnutls_init(&t->s, flags) < 0) {
		free(t);
		return -ENOMEM;
	}
	if (gnutls_priority_set_direct(t->s, MIG_TLS_PRIORITY, NULL) < 0 ||
	    gnutls_credentials_set(t->s, GNUTLS_CRD_CERTIFICATE, c->x509) < 0) {
		mig_tls_free(t);
		return -EINVAL;
	}
	gnutls_transport_set_int(t->s, fd);
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
		snprintf(err, errlen, "the %s's certificate is refused: %s", peer, txt.data);
		gnutls_free(txt.data);
	} else {
		snprintf(err, errlen, "the %s's certificate is refused (status %#x)", peer, status);
	}
}

static int tls_handshake(struct mig_tls *t, const char *peer, char *err, size_t errlen)
{
	int ret;

	do
		ret = gnutls_handshake(t->s);
	while (ret < 0 && !gnutls_error_is_fatal(ret));
	if (ret == 0)
		return 0;
	if (ret == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
		tls_verify_reason(t, peer, err, errlen);
		return -EACCES;
	}
	if (ret == GNUTLS_E_TIMEDOUT) {
		snprintf(err, errlen, "TLS handshake with the %s timed out", peer);
		return -ETIMEDOUT;
	}
	if (ret == GNUTLS_E_UNEXPECTED_PACKET_LENGTH ||
	    ret == GNUTLS_E_UNSUPPORTED_VERSION_PACKET || ret == GNUTLS_E_UNEXPECTED_PACKET) {
		snprintf(err, errlen, "the %s does not speak TLS 1.3 (%s): a plaintext peer?", peer,
			 gnutls_strerror(ret));
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

static void tls_note_peer(struct mig_tls *t)
{
	unsigned n = 0;
	const gnutls_datum_t *certs = gnutls_certificate_get_peers(t->s, &n);
	gnutls_x509_crt_t crt;
	size_t len = sizeof(t->peer_dn);

	t->peer_dn[0] = 0;
	if (!certs || !n || gnutls_x509_crt_init(&crt) < 0)
		return;
	if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) < 0 ||
	    gnutls_x509_crt_get_dn(crt, t->peer_dn, &len) < 0)
		t->peer_dn[0] = 0;
	gnutls_x509_crt_deinit(crt);
}

int mig_tls_client(int fd, const struct mig_tls_creds *c, const char *hostname, int timeout_ms,
		   struct mig_tls **out, char *err, size_t errlen)
{
	struct mig_tls *t;
	int ret = tls_session(&t, fd, c, GNUTLS_CLIENT, timeout_ms);

	if (ret < 0)
		return ret;
	if (hostname)
		gnutls_server_name_set(t->s, GNUTLS_NAME_DNS, hostname, strlen(hostname));
	/* Chain, validity and (given) the name are checked inside the handshake. */
	gnutls_session_set_verify_cert(t->s, hostname, 0);
	ret = tls_handshake(t, "destination", err, errlen);
	if (ret < 0) {
		mig_tls_free(t);
		return ret;
	}
	tls_note_peer(t);
	*out = t;
	return 0;
}

static bool tls_authorized(const struct mig_tls *t, const char *const *authz, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(authz[i], t->peer_dn) == 0)
			return true;
	return n == 0;
}

int mig_tls_server(int fd, const struct mig_tls_creds *c, const char *const *authz, size_t n,
		   int timeout_ms, struct mig_tls **out, char *err, size_t errlen)
{
	struct mig_tls *t;
	int ret = tls_session(&t, fd, c, GNUTLS_SERVER, timeout_ms);

	if (ret < 0)
		return ret;
	gnutls_certificate_server_set_request(t->s, GNUTLS_CERT_REQUIRE);
	gnutls_session_set_verify_cert(t->s, NULL, 0);
	ret = tls_handshake(t, "source", err, errlen);
	if (ret == 0) {
		tls_note_peer(t);
		if (!tls_authorized(t, authz, n)) {
			snprintf(err, errlen, "the source '%s' is not on the authorization list",
				 t->peer_dn);
			ret = -EPERM;
		}
	}
	if (ret < 0) {
		mig_tls_free(t);
		return ret;
	}
	*out = t;
	return 0;
}

/* Records ----------------------------------------------------------------------------------- */

int mig_tls_send_all(struct mig_tls *t, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = gnutls_record_send(t->s, p, len);
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			continue;
		if (n <= 0)
			return -EPIPE;
		p += n;
		len -= (size_t)n;
	}
	return 0;
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
			   ? -EPIPE
			   : -EBADMSG;
	}
}

void mig_tls_cork(struct mig_tls *t)
{
	gnutls_record_cork(t->s);
}

int mig_tls_uncork(struct mig_tls *t)
{
	return gnutls_record_uncork(t->s, GNUTLS_RECORD_WAIT) < 0 ? -EPIPE : 0;
}

const char *mig_tls_peer_dn(const struct mig_tls *t)
{
	return t->peer_dn;
}

void mig_tls_free(struct mig_tls *t)
{
	if (!t)
		return;
	gnutls_deinit(t->s);
	free(t);
}
