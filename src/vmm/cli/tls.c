// SPDX-License-Identifier: Apache-2.0
/*
 * A destination's TLS options on the command line. They make what a QMP client would:
 * a tls-creds-x509 object (endpoint=server) and an authz-list naming each --tls-authz DN,
 * then set tls-creds and tls-authz, and x-vmig-keep-listening.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "vmm/cli/cli.h"
#include "vmm/migration/migration.h"

#define CLI_TLS_CREDS_ID "vmig-cli-tls"
#define CLI_TLS_AUTHZ_ID "vmig-cli-authz"

int cli_tls_dest_add_authz(struct cli_tls_dest *t, const char *dn)
{
	if (t->nr_authz == CLI_TLS_MAX_AUTHZ) {
		log_error("--tls-authz: at most %d names", CLI_TLS_MAX_AUTHZ);
		return -EINVAL;
	}
	if (!dn[0]) {
		log_error("--tls-authz: a distinguished name, e.g. 'O=Example,CN=src1'");
		return -EINVAL;
	}
	t->authz[t->nr_authz++] = dn;
	return 0;
}

int cli_tls_dest_check(const struct cli_tls_dest *t, bool incoming)
{
	if (!incoming && (t->creds_dir || t->keep_listening)) {
		log_error("--tls-creds and --keep-listening are for a destination (--incoming); "
			  "a source takes its credentials with 'vmig migrate --tls-creds DIR'");
		return -EINVAL;
	}
	if (t->nr_authz && !t->creds_dir) {
		log_error("--tls-authz needs --tls-creds DIR (names are checked on certificates)");
		return -EINVAL;
	}
	return 0;
}

static int cli_tls_authz(const struct cli_tls_dest *t, struct migration *mig, struct mig_params *p,
			 unsigned *which)
{
	struct mig_tls_rule rules[CLI_TLS_MAX_AUTHZ];
	char err[256] = "";

	for (unsigned i = 0; i < t->nr_authz; i++)
		rules[i] = (struct mig_tls_rule){.match = t->authz[i], .allow = true};
	if (migration_object_add_authz(mig, CLI_TLS_AUTHZ_ID, rules, t->nr_authz, false, err,
				       sizeof(err)) < 0) {
		log_error("--tls-authz: %s", err);
		return 1;
	}
	snprintf(p->tls_authz, sizeof(p->tls_authz), "%s", CLI_TLS_AUTHZ_ID);
	*which |= MIG_PARAM_TLS_AUTHZ;
	return 0;
}

static int cli_tls_creds(const struct cli_tls_dest *t, struct migration *mig)
{
	struct mig_params p;
	unsigned which = MIG_PARAM_TLS_CREDS;
	char err[512] = "";

	if (migration_object_add_creds(mig, CLI_TLS_CREDS_ID, t->creds_dir, true, err,
				       sizeof(err)) < 0) {
		log_error("--tls-creds %s: %s", t->creds_dir, err);
		return 1;
	}
	migration_get_params(mig, &p);
	snprintf(p.tls_creds, sizeof(p.tls_creds), "%s", CLI_TLS_CREDS_ID);
	if (t->nr_authz && cli_tls_authz(t, mig, &p, &which) != 0)
		return 1;
	if (migration_set_params(mig, &p, which, err, sizeof(err)) < 0) {
		log_error("--tls-creds: %s", err);
		return 1;
	}
	return 0;
}

int cli_tls_dest_apply(const struct cli_tls_dest *t, struct migration *mig)
{
	char err[256] = "";

	if (t->creds_dir && cli_tls_creds(t, mig) != 0)
		return 1;
	if (t->keep_listening &&
	    migration_set_cap(mig, MIG_CAP_X_VMIG_KEEP_LISTENING, true, err, sizeof(err)) < 0) {
		log_error("--keep-listening: %s", err);
		return 1;
	}
	return 0;
}
