// SPDX-License-Identifier: Apache-2.0
/* Test credentials (tls_certs.h). */
#include "tls_certs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static void tc_names(struct tc_key *k, const struct tc_spec *spec)
{
	unsigned flags = GNUTLS_FSAN_SET;
	unsigned char addr[4];

	for (int i = 0; i < 3 && spec->dns[i]; i++, flags = GNUTLS_FSAN_APPEND)
		gnutls_x509_crt_set_subject_alt_name(k->crt, GNUTLS_SAN_DNSNAME, spec->dns[i],
						     strlen(spec->dns[i]), flags);
	if (spec->ip && inet_pton(AF_INET, spec->ip, addr) == 1)
		gnutls_x509_crt_set_subject_alt_name(k->crt, GNUTLS_SAN_IPADDRESS, addr,
						     sizeof(addr), flags);
}

static void tc_usage(struct tc_key *k, bool is_ca)
{
	gnutls_x509_crt_set_basic_constraints(k->crt, is_ca, -1);
	gnutls_x509_crt_set_key_usage(k->crt, is_ca ? GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN
						    : GNUTLS_KEY_DIGITAL_SIGNATURE);
	if (!is_ca) {
		gnutls_x509_crt_set_key_purpose_oid(k->crt, GNUTLS_KP_TLS_WWW_SERVER, 0);
		gnutls_x509_crt_set_key_purpose_oid(k->crt, GNUTLS_KP_TLS_WWW_CLIENT, 0);
	}
}

static int tc_key_ids(struct tc_key *k, const struct tc_key *issuer)
{
	unsigned char id[64];
	size_t idlen = sizeof(id);
	int ret = gnutls_x509_crt_get_key_id(k->crt, 0, id, &idlen);

	if (ret == 0)
		ret = gnutls_x509_crt_set_subject_key_id(k->crt, id, idlen);
	if (ret == 0 && issuer) {
		idlen = sizeof(id);
		ret = gnutls_x509_crt_get_subject_key_id(issuer->crt, id, &idlen, NULL);
		if (ret == 0)
			ret = gnutls_x509_crt_set_authority_key_id(k->crt, id, idlen);
	}
	return ret;
}

int tc_make(struct tc_key *k, const struct tc_spec *spec, const struct tc_key *issuer)
{
	time_t now = time(NULL);
	int ret = gnutls_x509_privkey_init(&k->key);

	if (ret == 0)
		ret = gnutls_x509_privkey_generate(
		    k->key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
	if (ret == 0)
		ret = gnutls_x509_crt_init(&k->crt);
	if (ret < 0)
		return ret;
	gnutls_x509_crt_set_version(k->crt, 3);
	gnutls_x509_crt_set_serial(k->crt, &spec->serial, sizeof(spec->serial));
	gnutls_x509_crt_set_activation_time(k->crt, now + spec->from);
	gnutls_x509_crt_set_expiration_time(k->crt, now + spec->until);
	if ((ret = gnutls_x509_crt_set_dn(k->crt, spec->dn, NULL)) < 0 ||
	    (ret = gnutls_x509_crt_set_key(k->crt, k->key)) < 0)
		return ret;
	tc_names(k, spec);
	tc_usage(k, spec->is_ca);
	if ((ret = tc_key_ids(k, issuer)) < 0)
		return ret;
	return gnutls_x509_crt_sign2(k->crt, issuer ? issuer->crt : k->crt,
				     issuer ? issuer->key : k->key, GNUTLS_DIG_SHA256, 0);
}

void tc_drop(struct tc_key *k)
{
	if (k->crt)
		gnutls_x509_crt_deinit(k->crt);
	if (k->key)
		gnutls_x509_privkey_deinit(k->key);
	k->crt = NULL;
	k->key = NULL;
}

static int tc_write(const char *dir, const char *name, const gnutls_datum_t *d)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	size_t n = fwrite(d->data, 1, d->size, f);
	return fclose(f) == 0 && n == d->size ? 0 : -EIO;
}

int tc_put_cert(const char *dir, const char *name, const struct tc_key *k)
{
	gnutls_datum_t d;
	int ret = gnutls_x509_crt_export2(k->crt, GNUTLS_X509_FMT_PEM, &d);

	if (ret < 0)
		return -EINVAL;
	ret = tc_write(dir, name, &d);
	gnutls_free(d.data);
	return ret;
}

int tc_put_key(const char *dir, const char *name, const struct tc_key *k)
{
	gnutls_datum_t d;
	int ret = gnutls_x509_privkey_export2(k->key, GNUTLS_X509_FMT_PEM, &d);

	if (ret < 0)
		return -EINVAL;
	ret = tc_write(dir, name, &d);
	gnutls_free(d.data);
	return ret;
}

int tc_creds_dir(const char *dir, const struct tc_key *trust, const char *who,
		 const struct tc_key *own)
{
	char file[32];
	int ret;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	if ((ret = tc_put_cert(dir, "ca-cert.pem", trust)) < 0)
		return ret;
	snprintf(file, sizeof(file), "%s-cert.pem", who);
	if ((ret = tc_put_cert(dir, file, own)) < 0)
		return ret;
	snprintf(file, sizeof(file), "%s-key.pem", who);
	return tc_put_key(dir, file, own);
}
