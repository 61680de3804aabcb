// SPDX-License-Identifier: Apache-2.0
/*
 * mkcreds ROOT: the credentials the TLS migration tests and benchmark use, made now (no key
 * is committed), one directory per endpoint in QEMU's tls-creds-x509 layout:
 *   dest, source             the good pair (the destination's certificate names
 *                            dest.example, localhost and 127.0.0.1)
 *   dest-untrusted           a destination certificate from a CA the source does not trust
 *   dest-expired             an expired destination certificate
 *   source-untrusted         a source certificate from a CA the destination does not trust
 *   source-expired           an expired source certificate
 *   source-stranger          a trusted source certificate whose DN is on no list
 * It prints the DNs an authorization list would name: "source O=vmig tests,CN=source.example".
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "tls_certs.h"

enum { CA, OTHER_CA, DEST, SOURCE, DEST_BAD_CA, DEST_OLD, SOURCE_BAD_CA, SOURCE_OLD, STRANGER, N };

#define DEST_NAMES .dns = {"dest.example", "localhost", NULL}, .ip = "127.0.0.1"
#define VALID	   .from = -TC_DAY, .until = 30 * TC_DAY
#define EXPIRED	   .from = -10 * TC_DAY, .until = -TC_DAY

static const struct tc_spec specs[N] = {
    [CA] = {.dn = "CN=vmig test CA", .is_ca = true, VALID, .serial = 1},
    [OTHER_CA] = {.dn = "CN=someone else's CA", .is_ca = true, VALID, .serial = 2},
    [DEST] = {.dn = "CN=dest.example", DEST_NAMES, VALID, .serial = 3},
    [SOURCE] = {.dn = "CN=source.example,O=vmig tests", VALID, .serial = 4},
    [DEST_BAD_CA] = {.dn = "CN=dest.example", DEST_NAMES, VALID, .serial = 5},
    [DEST_OLD] = {.dn = "CN=dest.example", DEST_NAMES, EXPIRED, .serial = 6},
    [SOURCE_BAD_CA] = {.dn = "CN=source.example,O=vmig tests", VALID, .serial = 7},
    [SOURCE_OLD] = {.dn = "CN=source.example,O=vmig tests", EXPIRED, .serial = 8},
    [STRANGER] = {.dn = "CN=intruder.example,O=elsewhere", VALID, .serial = 9},
};

static const struct {
	const char *dir, *who;
	int own, issuer;
} dirs[] = {
    {"dest", "server", DEST, CA},
    {"source", "client", SOURCE, CA},
    {"dest-untrusted", "server", DEST_BAD_CA, OTHER_CA},
    {"dest-expired", "server", DEST_OLD, CA},
    {"source-untrusted", "client", SOURCE_BAD_CA, OTHER_CA},
    {"source-expired", "client", SOURCE_OLD, CA},
    {"source-stranger", "client", STRANGER, CA},
};

static int make_all(struct tc_key *k)
{
	for (int i = 0; i < N; i++) {
		int issuer = i == CA || i == OTHER_CA		      ? -1
			     : i == DEST_BAD_CA || i == SOURCE_BAD_CA ? OTHER_CA
								      : CA;
		if (tc_make(&k[i], &specs[i], issuer < 0 ? NULL : &k[issuer]) < 0) {
			fprintf(stderr, "mkcreds: cannot make %s\n", specs[i].dn);
			return 1;
		}
	}
	return 0;
}

static int write_all(const char *root, struct tc_key *k)
{
	char path[512];

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", root, dirs[i].dir);
		/* Each endpoint trusts the good CA: only its own certificate is bad. */
		if (tc_creds_dir(path, &k[CA], dirs[i].who, &k[dirs[i].own]) < 0) {
			fprintf(stderr, "mkcreds: cannot write %s\n", path);
			return 1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct tc_key k[N] = {0};
	int ret;

	if (argc != 2) {
		fprintf(stderr, "usage: mkcreds ROOT\n");
		return 64;
	}
	mkdir(argv[1], 0700);
	ret = make_all(k);
	if (ret == 0)
		ret = write_all(argv[1], k);
	for (int i = 0; i < N; i++)
		tc_drop(&k[i]);
	if (ret == 0)
		printf("source O=vmig tests,CN=source.example\n"
		       "stranger O=elsewhere,CN=intruder.example\n");
	return ret;
}
