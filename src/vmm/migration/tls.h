/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TLS for migration channels (issue 13), on GnuTLS as QEMU uses it: x509 credentials read
 * from a directory in the file names of QEMU's tls-creds-x509 (ca-cert.pem, optional
 * ca-crl.pem; server-cert.pem and server-key.pem for the endpoint that listens,
 * client-cert.pem and client-key.pem for the one that connects), TLS 1.3 only, one session
 * per connected socket. The handshake checks the peer's certificate: it chains to the CA,
 * is valid now, and (client side) names the host asked for; the server side also requires
 * a client certificate and, given an authorization list, its distinguished name on it
 * (compared as QEMU's tls-authz does, in GnuTLS's DN text form). Every refusal says why.
 *
 * One thread may send while another receives on the same session (the return path).
 */
#ifndef VMIG_VMM_MIGRATION_TLS_H
#define VMIG_VMM_MIGRATION_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct mig_tls_creds;
struct mig_tls;

/* Loads dir's credentials for one endpoint. -ENOENT (a file missing) or -EINVAL, err says. */
int mig_tls_creds_load(const char *dir, bool server, struct mig_tls_creds **out, char *err,
		       size_t errlen);
void mig_tls_creds_free(struct mig_tls_creds *c);

/*
 * The connecting side's handshake on fd: the peer's certificate must name hostname (NULL:
 * no name check). -EACCES for a certificate refused, -EPROTO for a peer that does not
 * speak TLS 1.3, -ETIMEDOUT; err says why.
 */
int mig_tls_client(int fd, const struct mig_tls_creds *c, const char *hostname, int timeout_ms,
		   struct mig_tls **out, char *err, size_t errlen);
/*
 * The listening side's: a client certificate is required; with authz (n DNs), the
 * client's DN must be one of them (-EPERM otherwise).
 */
int mig_tls_server(int fd, const struct mig_tls_creds *c, const char *const *authz, size_t n,
		   int timeout_ms, struct mig_tls **out, char *err, size_t errlen);

/* All of buf, or -EPIPE (the peer went away or broke the session). */
int mig_tls_send_all(struct mig_tls *t, const void *buf, size_t len);
/* Some of buf (> 0), 0 at the peer's orderly end, -EPIPE/-EBADMSG otherwise. */
ssize_t mig_tls_recv(struct mig_tls *t, void *buf, size_t len);
/* Batches sends into full records until uncork (a record header and the pages after it). */
void mig_tls_cork(struct mig_tls *t);
int mig_tls_uncork(struct mig_tls *t);
/* The peer's certificate DN (after the handshake); "" without one. */
const char *mig_tls_peer_dn(const struct mig_tls *t);
void mig_tls_free(struct mig_tls *t);

#endif
