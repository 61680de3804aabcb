/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test credentials made on the spot (GnuTLS): CAs, server and client certificates with the
 * names and validity a test asks for, written in the directory layout of QEMU's
 * tls-creds-x509. No private key is ever committed.
 */
#ifndef VMIG_TESTS_MIGRATION_TLS_CERTS_H
#define VMIG_TESTS_MIGRATION_TLS_CERTS_H

#include <gnutls/x509.h>
#include <stdbool.h>

struct tc_key {
	gnutls_x509_privkey_t key;
	gnutls_x509_crt_t crt;
};

/* What a certificate says: its DN, optional DNS and IP names, and its validity. */
struct tc_spec {
	const char *dn;
	const char *dns[3]; /* NULL-ended */
	const char *ip;	    /* an IPv4 address, or NULL */
	bool is_ca;
	long from, until; /* seconds from now */
	unsigned serial;
};

#define TC_DAY (24L * 3600)

/* A key and a certificate signed by issuer (NULL: self-signed). 0 or a GnuTLS error. */
int tc_make(struct tc_key *k, const struct tc_spec *spec, const struct tc_key *issuer);
void tc_drop(struct tc_key *k);
/* dir/name in PEM. 0 or -errno. */
int tc_put_cert(const char *dir, const char *name, const struct tc_key *k);
int tc_put_key(const char *dir, const char *name, const struct tc_key *k);
/* dir (made if missing) holding ca-cert.pem from trust and who's (server, client) pair. */
int tc_creds_dir(const char *dir, const struct tc_key *trust, const char *who,
		 const struct tc_key *own);

#endif
