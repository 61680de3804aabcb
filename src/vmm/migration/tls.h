/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TLS for migration channels (issue 13), on GnuTLS as QEMU uses it: x509 credentials read
 * from a directory in the file names of QEMU's tls-creds-x509 (ca-cert.pem, optional
 * ca-crl.pem; server-cert.pem and server-key.pem for the endpoint that listens,
 * client-cert.pem and client-key.pem for the one that connects), TLS 1.3 only, one session
 * per connected socket. The handshake checks the peer's certificate: it chains to the CA,
 * is valid now, and (client side) names the host asked for; the server side also requires
 * a client certificate and, given an authorization list, its distinguished name on it
 * (compared as QEMU's tls-authz does, in GnuTLS's DN text form). Every refusal says why,
 * on this side and, through a TLS alert, on the peer's.
 *
 * One thread may send while another receives on the same session (the return path).
 */
#ifndef VMIG_VMM_MIGRATION_TLS_H
#define VMIG_VMM_MIGRATION_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct iovec;
struct mig_tls_creds;
struct mig_tls;

/* Loads dir's credentials for one endpoint. -ENOENT (a file missing) or -EINVAL, err says. */
int mig_tls_creds_load(const char *dir, bool server, struct mig_tls_creds **out, char *err,
		       size_t errlen);
void mig_tls_creds_free(struct mig_tls_creds *c);

/*
 * Who may connect (QEMU's authz-simple and authz-list): the first rule whose match equals
 * (or, glob, fnmatch()es) the client's DN decides; none matching, default_allow does.
 */
struct mig_tls_rule {
	const char *match;
	bool glob;
	bool allow;
};
struct mig_tls_authz {
	const struct mig_tls_rule *rules;
	size_t n;
	bool default_allow;
};

/*
 * The connecting side's handshake on fd: the peer's certificate must name hostname (NULL:
 * no name check), and the peer must then accept this side (its authorization), so a refusal
 * is known before anything is sent. -EACCES for a certificate refused (either way), -EPERM
 * for this side not authorized, -EPROTO for a peer that does not speak TLS 1.3,
 * -ETIMEDOUT; err says why.
 */
int mig_tls_client(int fd, const struct mig_tls_creds *c, const char *hostname, int timeout_ms,
		   struct mig_tls **out, char *err, size_t errlen);
/*
 * The listening side's: a client certificate is required; with authz, the client's DN
 * must be allowed (-EPERM otherwise; the client is told with an access_denied alert).
 */
int mig_tls_server(int fd, const struct mig_tls_creds *c, const struct mig_tls_authz *authz,
		   int timeout_ms, struct mig_tls **out, char *err, size_t errlen);

/*
 * All of iov, or -EPIPE (the peer went away or broke the session) or -ETIMEDOUT (the
 * socket's send timeout passed). Pieces of a page (4 KiB) and more are encrypted straight
 * from where they are; smaller ones (record headers) are gathered into records first.
 * Adds the bytes sent to *sent as they go (relaxed atomics).
 */
int mig_tls_sendv(struct mig_tls *t, const struct iovec *iov, int n, uint64_t *sent);
/*
 * Some of buf (> 0), 0 at the peer's orderly end; -EPIPE (the peer went away), -ETIMEDOUT
 * (the socket's receive timeout passed) or -EBADMSG (a record that does not decrypt).
 */
ssize_t mig_tls_recv(struct mig_tls *t, void *buf, size_t len);
/* The peer's certificate DN (after the handshake); "" without one. */
const char *mig_tls_peer_dn(const struct mig_tls *t);
void mig_tls_free(struct mig_tls *t);

#endif
