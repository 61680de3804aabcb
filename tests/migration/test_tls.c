// SPDX-License-Identifier: Apache-2.0
/*
 * The migration channels' TLS sessions (src/vmm/migration/tls.c) over a socket pair, with
 * credentials this test makes itself (a CA, another CA nobody trusts, server and client
 * certificates, an expired one; no private key is committed): a good handshake carries data
 * both ways; an untrusted, expired or misnamed server certificate, an untrusted client, a
 * client not on the authorization list, a plaintext peer and seeded garbage are each
 * refused with their reason, never a crash or a hang.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vmm/migration/tls.h"

#define TIMEOUT_MS 3000
#define DAY	   (24 * 3600)

struct kc {
	gnutls_x509_privkey_t key;
	gnutls_x509_crt_t crt;
};

static char root[64];
static struct kc ca, other_ca, server, client, expired, stranger;
static const char *client_dn = "CN=source.example,O=vmig tests"; /* as written (RFC 4514) */
/* As GnuTLS prints it from the certificate, and as an authorization list names it (QEMU). */
static const char *client_id = "O=vmig tests,CN=source.example";

/* Credentials ------------------------------------------------------------------------------- */

static void make(struct kc *k, const char *dn, const char *dns, const struct kc *issuer, bool is_ca,
		 long from, long until, unsigned serial)
{
	unsigned char id[64];
	size_t idlen = sizeof(id);
	time_t now = time(NULL);

	assert_int_equal(gnutls_x509_privkey_init(&k->key), 0);
	assert_int_equal(
	    gnutls_x509_privkey_generate(k->key, GNUTLS_PK_ECDSA,
					 GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
	    0);
	assert_int_equal(gnutls_x509_crt_init(&k->crt), 0);
	gnutls_x509_crt_set_version(k->crt, 3);
	gnutls_x509_crt_set_serial(k->crt, &serial, sizeof(serial));
	gnutls_x509_crt_set_activation_time(k->crt, now + from);
	gnutls_x509_crt_set_expiration_time(k->crt, now + until);
	assert_int_equal(gnutls_x509_crt_set_dn(k->crt, dn, NULL), 0);
	assert_int_equal(gnutls_x509_crt_set_key(k->crt, k->key), 0);
	if (dns)
		gnutls_x509_crt_set_subject_alt_name(k->crt, GNUTLS_SAN_DNSNAME, dns, strlen(dns),
						     GNUTLS_FSAN_SET);
	gnutls_x509_crt_set_basic_constraints(k->crt, is_ca, -1);
	gnutls_x509_crt_set_key_usage(k->crt, is_ca ? GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN
						    : GNUTLS_KEY_DIGITAL_SIGNATURE);
	if (!is_ca) {
		gnutls_x509_crt_set_key_purpose_oid(k->crt, GNUTLS_KP_TLS_WWW_SERVER, 0);
		gnutls_x509_crt_set_key_purpose_oid(k->crt, GNUTLS_KP_TLS_WWW_CLIENT, 0);
	}
	assert_int_equal(gnutls_x509_crt_get_key_id(k->crt, 0, id, &idlen), 0);
	gnutls_x509_crt_set_subject_key_id(k->crt, id, idlen);
	if (issuer) {
		idlen = sizeof(id);
		assert_int_equal(gnutls_x509_crt_get_subject_key_id(issuer->crt, id, &idlen, NULL),
				 0);
		gnutls_x509_crt_set_authority_key_id(k->crt, id, idlen);
	}
	assert_int_equal(gnutls_x509_crt_sign2(k->crt, issuer ? issuer->crt : k->crt,
					       issuer ? issuer->key : k->key, GNUTLS_DIG_SHA256, 0),
			 0);
}

static void write_file(const char *dir, const char *name, const gnutls_datum_t *d)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(d->data, 1, d->size, f), d->size);
	fclose(f);
}

static void put_cert(const char *dir, const char *name, const struct kc *k)
{
	gnutls_datum_t d;

	assert_int_equal(gnutls_x509_crt_export2(k->crt, GNUTLS_X509_FMT_PEM, &d), 0);
	write_file(dir, name, &d);
	gnutls_free(d.data);
}

static void put_key(const char *dir, const char *name, const struct kc *k)
{
	gnutls_datum_t d;

	assert_int_equal(gnutls_x509_privkey_export2(k->key, GNUTLS_X509_FMT_PEM, &d), 0);
	write_file(dir, name, &d);
	gnutls_free(d.data);
}

/* A credentials directory: its CA, and the endpoint's certificate and key. */
static const char *creds_dir(const char *name, const struct kc *trust, const char *who,
			     const struct kc *own)
{
	static char dirs[8][128];
	static unsigned n;
	char *dir = dirs[n++ % 8], file[32];

	snprintf(dir, sizeof(dirs[0]), "%s/%s", root, name);
	mkdir(dir, 0700);
	put_cert(dir, "ca-cert.pem", trust);
	snprintf(file, sizeof(file), "%s-cert.pem", who);
	put_cert(dir, file, own);
	snprintf(file, sizeof(file), "%s-key.pem", who);
	put_key(dir, file, own);
	return dir;
}

static int group_setup(void **state)
{
	snprintf(root, sizeof(root), "/tmp/vmig-tls-%d", getpid());
	mkdir(root, 0700);
	make(&ca, "CN=vmig test CA", NULL, NULL, true, -DAY, 30 * DAY, 1);
	make(&other_ca, "CN=someone else's CA", NULL, NULL, true, -DAY, 30 * DAY, 2);
	make(&server, "CN=dest.example", "dest.example", &ca, false, -DAY, 30 * DAY, 3);
	make(&client, client_dn, "source.example", &ca, false, -DAY, 30 * DAY, 4);
	make(&expired, "CN=dest.example", "dest.example", &ca, false, -10 * DAY, -DAY, 5);
	make(&stranger, "CN=dest.example", "dest.example", &other_ca, false, -DAY, 30 * DAY, 6);
	return 0;
}

static void drop(struct kc *k)
{
	gnutls_x509_crt_deinit(k->crt);
	gnutls_x509_privkey_deinit(k->key);
}

static int group_teardown(void **state)
{
	char cmd[128];

	drop(&ca);
	drop(&other_ca);
	drop(&server);
	drop(&client);
	drop(&expired);
	drop(&stranger);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	return system(cmd) == 0 ? 0 : -1;
}

/* One handshake over a socket pair ------------------------------------------------------- */

struct side {
	const char *dir, *hostname;
	const char *const *authz;
	size_t nauthz;
	int fd, ret;
	struct mig_tls *t;
	char err[512];
};

static void *server_main(void *arg)
{
	struct side *s = arg;
	struct mig_tls_creds *c;

	s->ret = mig_tls_creds_load(s->dir, true, &c, s->err, sizeof(s->err));
	if (s->ret == 0) {
		s->ret = mig_tls_server(s->fd, c, s->authz, s->nauthz, TIMEOUT_MS, &s->t, s->err,
					sizeof(s->err));
		mig_tls_creds_free(c);
	}
	return NULL;
}

static void client_run(struct side *s)
{
	struct mig_tls_creds *c;

	s->ret = mig_tls_creds_load(s->dir, false, &c, s->err, sizeof(s->err));
	if (s->ret == 0) {
		s->ret = mig_tls_client(s->fd, c, s->hostname, TIMEOUT_MS, &s->t, s->err,
					sizeof(s->err));
		mig_tls_creds_free(c);
	}
}

/* Both handshakes; the client's side closes its socket when it failed (as vmig does). */
static void handshake(struct side *srv, struct side *cli)
{
	int sv[2];
	pthread_t th;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	srv->fd = sv[0];
	cli->fd = sv[1];
	assert_int_equal(pthread_create(&th, NULL, server_main, srv), 0);
	client_run(cli);
	if (cli->ret < 0)
		shutdown(cli->fd, SHUT_RDWR);
	pthread_join(th, NULL);
	printf("server: %d %s\nclient: %d %s\n", srv->ret, srv->err, cli->ret, cli->err);
}

static void finish(struct side *srv, struct side *cli)
{
	mig_tls_free(srv->t);
	mig_tls_free(cli->t);
	close(srv->fd);
	close(cli->fd);
}

static struct side server_side(const struct kc *own)
{
	return (struct side){.dir = creds_dir("srv", &ca, "server", own)};
}

static struct side client_side(const struct kc *trust, const struct kc *own)
{
	return (struct side){.dir = creds_dir("cli", trust, "client", own),
			     .hostname = "dest.example"};
}

/* Tests ------------------------------------------------------------------------------------ */

static void *echo_main(void *arg)
{
	struct side *s = arg;
	static char buf[1 << 20];
	size_t got = 0;

	while (got < sizeof(buf)) {
		ssize_t n = mig_tls_recv(s->t, buf + got, sizeof(buf) - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	s->ret = got == sizeof(buf) ? mig_tls_send_all(s->t, buf, sizeof(buf)) : -EIO;
	return NULL;
}

static void test_tls_carries_data(void **state)
{
	struct side srv = server_side(&server), cli = client_side(&ca, &client);
	static char out[1 << 20], back[1 << 20];
	const char *authz[] = {"O=else,CN=someone", client_id};
	pthread_t th;
	size_t got = 0;

	srv.authz = authz;
	srv.nauthz = 2;
	handshake(&srv, &cli);
	assert_int_equal(srv.ret, 0);
	assert_int_equal(cli.ret, 0);
	assert_string_equal(mig_tls_peer_dn(srv.t), client_id);
	assert_string_equal(mig_tls_peer_dn(cli.t), "CN=dest.example");
	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (char)(i * 7 + 3);
	assert_int_equal(pthread_create(&th, NULL, echo_main, &srv), 0);
	mig_tls_cork(cli.t);
	assert_int_equal(mig_tls_send_all(cli.t, out, 100), 0);
	assert_int_equal(mig_tls_send_all(cli.t, out + 100, sizeof(out) - 100), 0);
	assert_int_equal(mig_tls_uncork(cli.t), 0);
	while (got < sizeof(back)) {
		ssize_t n = mig_tls_recv(cli.t, back + got, sizeof(back) - got);
		assert_true(n > 0);
		got += (size_t)n;
	}
	pthread_join(th, NULL);
	assert_int_equal(srv.ret, 0);
	assert_memory_equal(out, back, sizeof(out));
	finish(&srv, &cli);
}

static void expect_client_refused(const struct kc *own, const char *hostname, const char *why)
{
	struct side srv = server_side(own), cli = client_side(&ca, &client);

	cli.hostname = hostname;
	handshake(&srv, &cli);
	assert_int_equal(cli.ret, -EACCES);
	assert_non_null(strstr(cli.err, "the destination's certificate is refused"));
	assert_non_null(strstr(cli.err, why));
	assert_int_not_equal(srv.ret, 0);
	finish(&srv, &cli);
}

static void test_tls_untrusted_server(void **state)
{
	expect_client_refused(&stranger, "dest.example", "issuer is unknown");
}

static void test_tls_expired_server(void **state)
{
	expect_client_refused(&expired, "dest.example", "expired");
}

static void test_tls_wrong_hostname(void **state)
{
	expect_client_refused(&server, "other.example", "does not match");
}

static void test_tls_untrusted_client(void **state)
{
	struct side srv = server_side(&server), cli = client_side(&ca, &client);

	/* The client's certificate from a CA the destination does not trust. */
	struct kc rogue;
	make(&rogue, client_dn, "source.example", &other_ca, false, -DAY, DAY, 7);
	cli.dir = creds_dir("rogue", &ca, "client", &rogue);
	handshake(&srv, &cli);
	assert_int_equal(srv.ret, -EACCES);
	assert_non_null(strstr(srv.err, "sent no certificate signed by a CA this side trusts"));
	finish(&srv, &cli);
	drop(&rogue);
}

static void test_tls_not_authorized(void **state)
{
	struct side srv = server_side(&server), cli = client_side(&ca, &client);
	const char *authz[] = {"O=another org,CN=source.example"};

	srv.authz = authz;
	srv.nauthz = 1;
	handshake(&srv, &cli);
	assert_int_equal(srv.ret, -EPERM);
	assert_non_null(strstr(srv.err, "is not on the authorization list"));
	assert_non_null(strstr(srv.err, client_id));
	finish(&srv, &cli);
}

static void test_tls_creds_missing(void **state)
{
	struct mig_tls_creds *c;
	char err[512], dir[128];

	snprintf(dir, sizeof(dir), "%s/empty", root);
	mkdir(dir, 0700);
	assert_int_equal(mig_tls_creds_load(dir, true, &c, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "ca-cert.pem"));
	put_cert(dir, "ca-cert.pem", &ca);
	assert_int_equal(mig_tls_creds_load(dir, true, &c, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "server-cert.pem"));
}

/* A peer that writes what it likes and hangs up: the server refuses, in time. */
static void server_against(const void *bytes, size_t len, struct side *srv)
{
	int sv[2];
	pthread_t th;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	srv->fd = sv[0];
	assert_int_equal(pthread_create(&th, NULL, server_main, srv), 0);
	if (len)
		assert_int_equal(write(sv[1], bytes, len), (ssize_t)len);
	shutdown(sv[1], SHUT_WR);
	pthread_join(th, NULL);
	assert_true(srv->ret < 0);
	assert_null(srv->t);
	close(sv[0]);
	close(sv[1]);
}

static void test_tls_plaintext_peer(void **state)
{
	struct side srv = server_side(&server);
	char hdr[64] = "VMIGSTRM";

	server_against(hdr, sizeof(hdr), &srv);
	printf("plaintext: %d %s\n", srv.ret, srv.err);
	assert_int_equal(srv.ret, -EPROTO);
	assert_non_null(strstr(srv.err, "does not speak TLS"));
}

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Seeded garbage, some of it behind a plausible TLS record header: refused, no crash. */
static void test_tls_garbage(void **state)
{
	const char *env = getenv("VMIG_FUZZ_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL), s = seed | 1;
	static unsigned char buf[4096];

	printf("seed=%#llx (reproduce: VMIG_FUZZ_SEED=%#llx)\n", (unsigned long long)seed,
	       (unsigned long long)seed);
	for (int i = 0; i < 60; i++) {
		struct side srv = server_side(&server);
		size_t len = rng_next(&s) % sizeof(buf);
		for (size_t k = 0; k < len; k++)
			buf[k] = (unsigned char)rng_next(&s);
		if (i % 3 == 0 && len >= 5) { /* a handshake record header, random length */
			buf[0] = 0x16;
			buf[1] = 3;
			buf[2] = 1;
		}
		server_against(buf, len, &srv);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tls_carries_data),
	    cmocka_unit_test(test_tls_untrusted_server),
	    cmocka_unit_test(test_tls_expired_server),
	    cmocka_unit_test(test_tls_wrong_hostname),
	    cmocka_unit_test(test_tls_untrusted_client),
	    cmocka_unit_test(test_tls_not_authorized),
	    cmocka_unit_test(test_tls_creds_missing),
	    cmocka_unit_test(test_tls_plaintext_peer),
	    cmocka_unit_test(test_tls_garbage),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
