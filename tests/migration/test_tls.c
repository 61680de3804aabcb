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

#include "tls_certs.h"
#include "vmm/migration/tls.h"

#define TIMEOUT_MS 3000
#define DAY	   TC_DAY

#define kc tc_key

static char root[64];
static struct kc ca, other_ca, server, client, expired, stranger;
static const char *client_dn = "CN=source.example,O=vmig tests"; /* as written (RFC 4514) */
/* As GnuTLS prints it from the certificate, and as an authorization list names it (QEMU). */
static const char *client_id = "O=vmig tests,CN=source.example";

/* Credentials ------------------------------------------------------------------------------- */

static void make(struct kc *k, const char *dn, const char *dns, const struct kc *issuer, bool is_ca,
		 long from, long until, unsigned serial)
{
	struct tc_spec spec = {.dn = dn,
			       .dns = {dns, NULL},
			       .is_ca = is_ca,
			       .from = from,
			       .until = until,
			       .serial = serial};

	assert_int_equal(tc_make(k, &spec, issuer), 0);
}

static void put_cert(const char *dir, const char *name, const struct kc *k)
{
	assert_int_equal(tc_put_cert(dir, name, k), 0);
}

/* A credentials directory: its CA, and the endpoint's certificate and key. */
static const char *creds_dir(const char *name, const struct kc *trust, const char *who,
			     const struct kc *own)
{
	static char dirs[8][128];
	static unsigned n;
	char *dir = dirs[n++ % 8];

	snprintf(dir, sizeof(dirs[0]), "%s/%s", root, name);
	assert_int_equal(tc_creds_dir(dir, trust, who, own), 0);
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
	tc_drop(k);
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
	const struct mig_tls_authz *authz;
	int fd, ret;
	uint64_t sent;
	struct mig_tls *t;
	char err[512];
};

static void *server_main(void *arg)
{
	struct side *s = arg;
	struct mig_tls_creds *c;

	s->ret = mig_tls_creds_load(s->dir, true, &c, s->err, sizeof(s->err));
	if (s->ret == 0) {
		s->ret =
		    mig_tls_server(s->fd, c, s->authz, TIMEOUT_MS, &s->t, s->err, sizeof(s->err));
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
	srv->t = cli->t = NULL;
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
	struct iovec v = {.iov_base = buf, .iov_len = sizeof(buf)};
	s->ret = got == sizeof(buf) ? mig_tls_sendv(s->t, &v, 1, &s->sent) : -EIO;
	return NULL;
}

static void test_tls_carries_data(void **state)
{
	struct side srv = server_side(&server), cli = client_side(&ca, &client);
	static char out[1 << 20], back[1 << 20];
	const struct mig_tls_rule rules[] = {{"O=else,CN=someone", false, true},
					     {"O=vmig tests,CN=*", true, false},
					     {client_id, false, true}};
	struct mig_tls_authz authz = {rules, 1, false};
	const struct mig_tls_authz any = {rules + 1, 2, true};
	pthread_t th;
	size_t got = 0;

	srv.authz = &authz;
	handshake(&srv, &cli); /* the first rule does not match, the default denies */
	assert_int_equal(srv.ret, -EPERM);
	assert_int_equal(cli.ret, -EPERM);
	assert_non_null(strstr(cli.err, "authorization list"));
	finish(&srv, &cli);
	authz = (struct mig_tls_authz){rules + 2, 1, false}; /* exact */
	handshake(&srv, &cli);
	assert_int_equal(srv.ret, 0);
	finish(&srv, &cli);
	srv.authz = &any; /* a glob that denies wins over the default that allows */
	handshake(&srv, &cli);
	assert_int_equal(srv.ret, -EPERM);
	finish(&srv, &cli);
	srv.authz = NULL;
	handshake(&srv, &cli);
	assert_int_equal(srv.ret, 0);
	assert_int_equal(cli.ret, 0);
	assert_string_equal(mig_tls_peer_dn(srv.t), client_id);
	assert_string_equal(mig_tls_peer_dn(cli.t), "CN=dest.example");
	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (char)(i * 7 + 3);
	assert_int_equal(pthread_create(&th, NULL, echo_main, &srv), 0);
	/* Small pieces gathered into records, large ones sent as they are: all arrive. */
	struct iovec v[5] = {{out, 32},
			     {out + 32, 4096},
			     {out + 4128, 100},
			     {out + 4228, 300000},
			     {out + 304228, sizeof(out) - 304228}};
	assert_int_equal(mig_tls_sendv(cli.t, v, 5, &cli.sent), 0);
	assert_int_equal(cli.sent, sizeof(out));
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
	assert_int_equal(cli.ret, -EACCES); /* told by the destination's alert */
	assert_non_null(strstr(cli.err, "refused this side's TLS session"));
	finish(&srv, &cli);
	drop(&rogue);
}

static void test_tls_not_authorized(void **state)
{
	struct side srv = server_side(&server), cli = client_side(&ca, &client);
	const struct mig_tls_rule rule = {"O=another org,CN=source.example", false, true};
	const struct mig_tls_authz authz = {&rule, 1, false};

	srv.authz = &authz;
	handshake(&srv, &cli);
	assert_int_equal(srv.ret, -EPERM);
	assert_non_null(strstr(srv.err, "is not on the authorization list"));
	assert_non_null(strstr(srv.err, client_id));
	/* The source knows before it sends anything: the alert names the reason. */
	assert_int_equal(cli.ret, -EPERM);
	assert_non_null(strstr(cli.err, "not on the destination's authorization list"));
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
