// SPDX-License-Identifier: Apache-2.0
/*
 * object-add and object-del for the objects a migration's TLS names (QEMU's qom-types
 * tls-creds-x509, authz-simple, authz-list, with their property names), so that a client
 * that sets up a QEMU TLS migration drives vmig's unchanged. Other qom-types are refused.
 */
#include <errno.h>
#include <string.h>

#include "vmm/control/internal.h"
#include "vmm/migration/migration.h"

static const char *obj_str(const struct json_value *args, const char *key, const char *dflt)
{
	const struct json_value *v = json_object_get(args, key);

	return v ? v->str.s : dflt;
}

static int obj_fail(struct control_error *e, int ret, const char *err)
{
	control_error_set(e, "GenericError", "%s", err[0] ? err : strerror(-ret));
	return ret < 0 ? ret : -EINVAL;
}

/* tls-creds-x509: dir, endpoint (client by default, as QEMU), verify-peer (must be on). */
static int obj_add_creds(struct control *c, const struct json_value *args, const char *id,
			 struct control_error *e)
{
	const char *dir = obj_str(args, "dir", NULL),
		   *endpoint = obj_str(args, "endpoint", "client");
	const struct json_value *verify = json_object_get(args, "verify-peer");
	char err[512] = "";

	if (!dir)
		return obj_fail(e, -EINVAL,
				"tls-creds-x509 needs 'dir' (the credentials directory)");
	if (strcmp(endpoint, "client") != 0 && strcmp(endpoint, "server") != 0)
		return obj_fail(e, -EINVAL, "Parameter 'endpoint' expects 'client' or 'server'");
	if (verify && !verify->b)
		return obj_fail(e, -EINVAL,
				"verify-peer=off is not supported: a migration peer is always "
				"verified against the CA");
	int ret = migration_object_add_creds(c->cfg.mig, id, dir, strcmp(endpoint, "server") == 0,
					     err, sizeof(err));
	return ret < 0 ? obj_fail(e, ret, err) : 0;
}

static int obj_policy(const char *text, bool *allow)
{
	*allow = strcmp(text, "allow") == 0;
	return *allow || strcmp(text, "deny") == 0 ? 0 : -EINVAL;
}

/* One authz-list rule: {match, policy, format}, QEMU's QAuthZListRule. */
static int obj_rule(const struct json_value *r, struct mig_tls_rule *out, struct control_error *e)
{
	const struct json_value *m = json_object_get(r, "match");
	const struct json_value *pol = json_object_get(r, "policy");
	const struct json_value *fmt = json_object_get(r, "format");

	if (r->type != JSON_OBJECT || !m || m->type != JSON_STRING || !pol ||
	    pol->type != JSON_STRING || (fmt && fmt->type != JSON_STRING))
		return obj_fail(e, -EINVAL,
				"an authz-list rule is {\"match\": STR, \"policy\": "
				"\"allow\"|\"deny\", \"format\": \"exact\"|\"glob\"}");
	if (obj_policy(pol->str.s, &out->allow) < 0)
		return obj_fail(e, -EINVAL, "a rule's 'policy' expects 'allow' or 'deny'");
	out->glob = fmt && strcmp(fmt->str.s, "glob") == 0;
	if (fmt && !out->glob && strcmp(fmt->str.s, "exact") != 0)
		return obj_fail(e, -EINVAL, "a rule's 'format' expects 'exact' or 'glob'");
	out->match = m->str.s;
	return 0;
}

static int obj_add_list(struct control *c, const struct json_value *args, const char *id,
			struct control_error *e)
{
	const struct json_value *rules = json_object_get(args, "rules");
	struct mig_tls_rule r[16];
	size_t n = rules ? rules->arr.n : 0;
	bool allow;
	char err[256] = "";

	if (obj_policy(obj_str(args, "policy", "deny"), &allow) < 0)
		return obj_fail(e, -EINVAL, "Parameter 'policy' expects 'allow' or 'deny'");
	if (n > sizeof(r) / sizeof(r[0]))
		return obj_fail(e, -EINVAL, "an authz-list has at most 16 rules");
	for (size_t i = 0; i < n; i++)
		if (obj_rule(&rules->arr.items[i], &r[i], e) < 0)
			return -EINVAL;
	int ret = migration_object_add_authz(c->cfg.mig, id, r, n, allow, err, sizeof(err));
	return ret < 0 ? obj_fail(e, ret, err) : 0;
}

/* authz-simple: one identity, the only one allowed. */
static int obj_add_simple(struct control *c, const struct json_value *args, const char *id,
			  struct control_error *e)
{
	const char *identity = obj_str(args, "identity", NULL);
	char err[256] = "";

	if (!identity)
		return obj_fail(e, -EINVAL, "authz-simple needs 'identity' (the allowed DN)");
	struct mig_tls_rule r = {.match = identity, .allow = true};
	int ret = migration_object_add_authz(c->cfg.mig, id, &r, 1, false, err, sizeof(err));
	return ret < 0 ? obj_fail(e, ret, err) : 0;
}

int cmd_object_add(struct control *c, const struct json_value *args, struct json_writer *w,
		   struct control_error *e)
{
	const char *type = obj_str(args, "qom-type", ""), *id = obj_str(args, "id", "");
	int ret;

	if (!c->cfg.mig)
		return obj_fail(e, -ENOTSUP, "this VM has no migration");
	if (strcmp(type, "tls-creds-x509") == 0)
		ret = obj_add_creds(c, args, id, e);
	else if (strcmp(type, "authz-simple") == 0)
		ret = obj_add_simple(c, args, id, e);
	else if (strcmp(type, "authz-list") == 0)
		ret = obj_add_list(c, args, id, e);
	else
		ret = obj_fail(e, -EINVAL,
			       "vmig's object-add makes tls-creds-x509, authz-simple and "
			       "authz-list objects only");
	if (ret < 0)
		return ret;
	json_write_begin_object(w);
	json_write_end_object(w);
	return 0;
}

int cmd_object_del(struct control *c, const struct json_value *args, struct json_writer *w,
		   struct control_error *e)
{
	char err[256] = "";

	if (!c->cfg.mig)
		return obj_fail(e, -ENOTSUP, "this VM has no migration");
	int ret = migration_object_del(c->cfg.mig, obj_str(args, "id", ""), err, sizeof(err));
	if (ret < 0)
		return obj_fail(e, ret, err);
	json_write_begin_object(w);
	json_write_end_object(w);
	return 0;
}
