/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small QMP client over a UNIX socket (what `vmig migrate` drives a vmig with): connect,
 * read the greeting, negotiate, then one command at a time. Events arriving between
 * replies are skipped; replies are read with a time limit so that a hung peer cannot
 * hang the client.
 */
#ifndef VMIG_VMM_CLI_QMP_CLIENT_H
#define VMIG_VMM_CLI_QMP_CLIENT_H

#include <stddef.h>

#include "common/json.h"

struct qmp_client {
	int fd;
	char *in; /* received, not yet parsed */
	size_t in_len, in_cap;
	int timeout_ms; /* for one reply */
};

/* Connects to the socket at path and negotiates. 0, or a negative errno and err. */
int qmp_client_connect(struct qmp_client *q, const char *path, char *err, size_t errlen);
void qmp_client_close(struct qmp_client *q);

/*
 * Runs one command; args_json is the text of the "arguments" object or NULL. 0 and *reply
 * (the whole reply message: json_free it; its "return" member is the result). An error
 * reply: -EREMOTEIO with its desc in err. Others (connection lost, timeout, garbage):
 * negative errno and err.
 */
int qmp_client_execute(struct qmp_client *q, const char *name, const char *args_json,
		       struct json_value **reply, char *err, size_t errlen);

#endif
