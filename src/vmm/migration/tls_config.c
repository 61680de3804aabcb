// SPDX-License-Identifier: Apache-2.0
/*
 * The engine's TLS configuration, in QEMU's shape: credentials and authorization lists are
 * objects (object-add tls-creds-x509 / authz-simple / authz-list), the tls-creds, tls-hostname
 * and tls-authz parameters name them, and a run resolves them once at its start. Every
 * channel of a run with tls-creds set is a TLS session, the main channel and each RAM
 * channel alike; the handshake comes before the stream header, so a refused peer never
 * sends or receives a byte of guest state.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/trace.h"
#include "vmm/migration/internal.h"

/* Objects ------------------------------------------------------------------------------------ */

static struct mig_tls_obj *tls_obj_find(struct migration *mig, const char *id)
{
	for (unsigned i = 0; i < MIG_TLS_MAX_OBJECTS; i++)
		if (mig->tls_objs[i].used && !mig->tls_objs[i].retired &&
		    strcmp(mig->tls_objs[i].id, id) == 0)
			return &mig->tls_objs[i];
	return NULL;
}

/* Under lock: a free slot for id, or NULL with the reason. */
static struct mig_tls_obj *tls_obj_slot(struct migration *mig, const char *id, char *err,
					size_t errlen)
{
	if (!id[0] || strlen(id) >= sizeof(mig->tls_objs[0].id)) {
		snprintf(err, errlen, "an object id is 1 to %zu characters",
			 sizeof(mig->tls_objs[0].id) - 1);
		return NULL;
	}
	if (tls_obj_find(mig, id)) {
		snprintf(err, errlen, "an object with id '%s' already exists", id);
		return NULL;
	}
	for (unsigned i = 0; i < MIG_TLS_MAX_OBJECTS; i++)
		if (!mig->tls_objs[i].used)
			return &mig->tls_objs[i];
	snprintf(err, errlen, "at most %u TLS objects: delete one first (object-del)",
		 MIG_TLS_MAX_OBJECTS);
	return NULL;
}

int migration_object_add_creds(struct migration *mig, const char *id, const char *dir, bool server,
			       char *err, size_t errlen)
{
	struct mig_tls_creds *creds;
	int ret = mig_tls_creds_load(dir, server, &creds, err, errlen);

	if (ret < 0)
		return ret;
	pthread_mutex_lock(&mig->lock);
	struct mig_tls_obj *o = tls_obj_slot(mig, id, err, errlen);
	if (o) {
		*o = (struct mig_tls_obj){.used = true, .creds = creds, .server = server};
		snprintf(o->id, sizeof(o->id), "%s", id);
		snprintf(o->dir, sizeof(o->dir), "%s", dir);
	}
	pthread_mutex_unlock(&mig->lock);
	if (!o)
		mig_tls_creds_free(creds);
	TRACE(mig_tls_object, "add creds id=%s dir=%s server=%d -> %d", id, dir, server,
	      o ? 0 : -1);
	return o ? 0 : -EINVAL;
}

static void tls_obj_clear(struct mig_tls_obj *o)
{
	for (size_t i = 0; i < o->authz.n; i++)
		free((char *)o->rules[i].match);
	mig_tls_creds_free(o->creds);
	*o = (struct mig_tls_obj){0};
}

/* The rules are copied (their matches too) before any is taken: all or nothing. */
static int tls_obj_set_rules(struct mig_tls_obj *o, const struct mig_tls_rule *rules, size_t n,
			     bool default_allow)
{
	o->is_authz = true;
	o->authz = (struct mig_tls_authz){.rules = o->rules, .default_allow = default_allow};
	for (size_t i = 0; i < n; i++) {
		o->rules[i] = rules[i];
		o->rules[i].match = strdup(rules[i].match);
		if (!o->rules[i].match)
			return -ENOMEM;
		o->authz.n++;
	}
	return 0;
}

int migration_object_add_authz(struct migration *mig, const char *id,
			       const struct mig_tls_rule *rules, size_t n, bool default_allow,
			       char *err, size_t errlen)
{
	int ret = -EINVAL;

	if (n > MIG_TLS_MAX_RULES) {
		snprintf(err, errlen, "an authorization list has at most %u rules",
			 MIG_TLS_MAX_RULES);
		return -EINVAL;
	}
	pthread_mutex_lock(&mig->lock);
	struct mig_tls_obj *o = tls_obj_slot(mig, id, err, errlen);
	if (o) {
		*o = (struct mig_tls_obj){.used = true};
		snprintf(o->id, sizeof(o->id), "%s", id);
		ret = tls_obj_set_rules(o, rules, n, default_allow);
		if (ret < 0) {
			tls_obj_clear(o);
			snprintf(err, errlen, "%s", strerror(-ret));
		}
	}
	pthread_mutex_unlock(&mig->lock);
	TRACE(mig_tls_object, "add authz id=%s rules=%zu -> %d", id, n, ret);
	return ret;
}

/* Under lock: the run going on (or ending) still holds it in its sessions. */
static bool tls_obj_held(struct migration *mig, const struct mig_tls_obj *o)
{
	return (o->creds && mig->tls_creds == o->creds) ||
	       (o->is_authz && mig->tls_authz == &o->authz);
}

int migration_object_del(struct migration *mig, const char *id, char *err, size_t errlen)
{
	int ret = 0;

	pthread_mutex_lock(&mig->lock);
	struct mig_tls_obj *o = tls_obj_find(mig, id);
	if (!o) {
		snprintf(err, errlen, "object '%s' not found", id);
		ret = -ENOENT;
	} else if (tls_obj_held(mig, o)) {
		/* Gone by name now; freed once the run's sessions are (mig_tls_run_end). */
		o->retired = true;
		o->id[0] = 0;
	} else {
		tls_obj_clear(o);
	}
	pthread_mutex_unlock(&mig->lock);
	return ret;
}

void mig_tls_objects_free(struct migration *mig)
{
	for (unsigned i = 0; i < MIG_TLS_MAX_OBJECTS; i++)
		if (mig->tls_objs[i].used)
			tls_obj_clear(&mig->tls_objs[i]);
}

/* Parameters ------------------------------------------------------------------------------- */

static int tls_check_ref(struct migration *mig, const char *param, const char *id, bool authz,
			 char *err, size_t errlen)
{
	const struct mig_tls_obj *o = id[0] ? tls_obj_find(mig, id) : NULL;

	if (!id[0] || (o && o->is_authz == authz))
		return 0;
	snprintf(err, errlen, "Parameter '%s': no %s object with id '%s' (object-add it first)",
		 param, authz ? "authz-simple or authz-list" : "tls-creds-x509", id);
	return -EINVAL;
}

int mig_tls_params_check(struct migration *mig, const struct mig_params *p, unsigned which,
			 char *err, size_t errlen)
{
	int ret = 0;

	if (which & MIG_PARAM_TLS_CREDS)
		ret = tls_check_ref(mig, "tls-creds", p->tls_creds, false, err, errlen);
	if (ret == 0 && (which & MIG_PARAM_TLS_AUTHZ))
		ret = tls_check_ref(mig, "tls-authz", p->tls_authz, true, err, errlen);
	return ret;
}

/* A run -------------------------------------------------------------------------------------- */

/* The name the destination's certificate must carry: tls-hostname, else the URI's host. */
static int tls_resolve_hostname(struct migration *mig, char *err, size_t errlen)
{
	const char *name = mig->params.tls_hostname;

	if (!name[0] && mig->uri.kind == MIG_URI_TCP)
		name = mig->uri.host;
	if (!name[0]) {
		snprintf(err, errlen,
			 "the URI names no host: set tls-hostname (the name the destination's "
			 "certificate has)");
		return -EINVAL;
	}
	snprintf(mig->tls_hostname, sizeof(mig->tls_hostname), "%s", name);
	return 0;
}

static int tls_resolve_creds(struct migration *mig, bool source, char *err, size_t errlen)
{
	const struct mig_tls_obj *o = tls_obj_find(mig, mig->params.tls_creds);

	if (!o || o->is_authz) {
		snprintf(err, errlen, "tls-creds: no tls-creds-x509 object with id '%s'",
			 mig->params.tls_creds);
		return -EINVAL;
	}
	if (o->server == source) {
		snprintf(err, errlen,
			 "tls-creds '%s' is made for endpoint=%s; a migration %s needs "
			 "endpoint=%s",
			 o->id, o->server ? "server" : "client", source ? "source" : "destination",
			 source ? "client" : "server");
		return -EINVAL;
	}
	if (mig->uri.kind == MIG_URI_FILE) {
		snprintf(err, errlen,
			 "TLS protects network channels: a file: migration cannot "
			 "use it (clear tls-creds)");
		return -EINVAL;
	}
	mig->tls_creds = o->creds;
	return 0;
}

int mig_tls_resolve(struct migration *mig, bool source, char *err, size_t errlen)
{
	const struct mig_tls_obj *a = tls_obj_find(mig, mig->params.tls_authz);
	int ret = 0;

	mig->tls_creds = NULL;
	mig->tls_authz = NULL;
	mig->tls_hostname[0] = 0;
	mig->tls_peer[0] = 0;
	mig->tls_handshakes = mig->tls_handshake_us_sum = mig->tls_handshake_us_max = 0;
	mig->tls_enabled = false;
	if (!mig->params.tls_creds[0])
		return 0;
	ret = tls_resolve_creds(mig, source, err, errlen);
	if (ret == 0 && source)
		ret = tls_resolve_hostname(mig, err, errlen);
	/* Checked when set and kept from object-del; never open by a missing list all the same. */
	if (ret == 0 && !source && mig->params.tls_authz[0] && (!a || !a->is_authz)) {
		snprintf(err, errlen,
			 "tls-authz: no authz-simple or authz-list object with id '%s'",
			 mig->params.tls_authz);
		ret = -EINVAL;
	}
	if (ret == 0 && !source && a)
		mig->tls_authz = &a->authz;
	if (ret < 0)
		mig->tls_creds = NULL;
	mig->tls_enabled = mig->tls_creds != NULL;
	return ret;
}

void mig_tls_forget(struct migration *mig)
{
	mig->tls_creds = NULL;
	mig->tls_authz = NULL;
	for (unsigned i = 0; i < MIG_TLS_MAX_OBJECTS; i++)
		if (mig->tls_objs[i].used && mig->tls_objs[i].retired)
			tls_obj_clear(&mig->tls_objs[i]);
}

void mig_tls_run_end(struct migration *mig)
{
	pthread_mutex_lock(&mig->lock);
	mig_tls_forget(mig);
	pthread_mutex_unlock(&mig->lock);
}

/* Handshakes ------------------------------------------------------------------------------- */

static void tls_note_handshake(struct migration *mig, struct mig_chan *c, uint64_t t0)
{
	uint64_t us = (mig_now_ns() - t0) / 1000, max;

	__atomic_add_fetch(&mig->tls_handshakes, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&mig->tls_handshake_us_sum, us, __ATOMIC_RELAXED);
	max = __atomic_load_n(&mig->tls_handshake_us_max, __ATOMIC_RELAXED);
	while (us > max && !__atomic_compare_exchange_n(&mig->tls_handshake_us_max, &max, us, true,
							__ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
	if (c->index == 0) {
		pthread_mutex_lock(&mig->lock);
		snprintf(mig->tls_peer, sizeof(mig->tls_peer), "%s", mig_tls_peer_dn(c->tls));
		pthread_mutex_unlock(&mig->lock);
	}
	TRACE(mig_tls_handshake, "channel=%u us=%llu peer=%s", c->index, (unsigned long long)us,
	      mig_tls_peer_dn(c->tls));
}

int mig_tls_connect(struct migration *mig, struct mig_chan *c, char *err, size_t errlen)
{
	uint64_t t0 = mig_now_ns();
	char why[384];
	int ret;

	if (!mig->tls_creds)
		return 0;
	ret = mig_tls_client(c->fd, mig->tls_creds, mig->tls_hostname, MIG_TLS_CLIENT_MS, &c->tls,
			     why, sizeof(why));
	if (ret < 0) {
		snprintf(err, errlen, "TLS (channel %u): %s", c->index, why);
		return ret;
	}
	tls_note_handshake(mig, c, t0);
	return 0;
}

int mig_tls_accept(struct migration *mig, struct mig_chan *c, int timeout_ms, char *err,
		   size_t errlen)
{
	uint64_t t0 = mig_now_ns();
	char why[384];
	int ret;

	if (!mig->tls_creds)
		return 0;
	ret = mig_tls_server(c->fd, mig->tls_creds, mig->tls_authz, timeout_ms, &c->tls, why,
			     sizeof(why));
	if (ret < 0) {
		/* Only a plaintext peer reads a plaintext reason (and a DN stays off the wire). */
		c->no_plain_reply = ret != -EPROTO;
		snprintf(err, errlen, "TLS: %s", why);
		return ret;
	}
	tls_note_handshake(mig, c, t0);
	return 0;
}
