// SPDX-License-Identifier: Apache-2.0
/*
 * vmig migrate --timeline FILE: the migration's timeline as JSON lines, one object per
 * line: {"type": "pass", ...} for each pre-copy pass (query-vmig-timeline's members), then
 * {"type": "switchover", ...} with the outcome and the switchover's phases
 * (query-migrate's). scripts/plot-migration draws it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/json.h"
#include "common/log.h"
#include "vmm/cli/cli.h"
#include "vmm/cli/qmp_client.h"

/* One line: {"type": TYPE, then the members of each source object}. */
static int tl_line(FILE *f, const char *type, const struct json_value *const *srcs, size_t n)
{
	struct json_writer w;

	json_writer_init(&w, 64 * 1024);
	json_write_begin_object(&w);
	json_write_key(&w, "type");
	json_write_string(&w, type);
	for (size_t s = 0; s < n; s++) {
		for (size_t i = 0; srcs[s] && srcs[s]->type == JSON_OBJECT && i < srcs[s]->obj.n;
		     i++) {
			json_write_key(&w, srcs[s]->obj.members[i].key);
			json_write_value(&w, &srcs[s]->obj.members[i].value);
		}
	}
	json_write_end_object(&w);
	int ret = json_writer_error(&w) ? -EINVAL : fprintf(f, "%s\n", w.buf) < 0 ? -EIO : 0;
	json_writer_fini(&w);
	return ret;
}

/*
 * The switchover line: query-migrate's own figures (status, times, downtime) with the
 * members of its ram and x-vmig objects lifted beside them (x-vmig's switchover-us, the
 * phases, stays an object).
 */
static int tl_switchover(FILE *f, const struct json_value *info)
{
	struct json_member top[16];
	struct json_value scalars = {.type = JSON_OBJECT, .obj = {top, 0}};

	for (size_t i = 0; i < info->obj.n && scalars.obj.n < 16; i++)
		if (info->obj.members[i].value.type != JSON_OBJECT)
			top[scalars.obj.n++] = info->obj.members[i];
	const struct json_value *all[] = {&scalars, json_object_get(info, "ram"),
					  json_object_get(info, "x-vmig")};
	return tl_line(f, "switchover", all, 3);
}

int cli_timeline_write(struct qmp_client *q, const struct json_value *info, FILE *f)
{
	struct json_value *reply = NULL;
	char err[256];
	int ret = qmp_client_execute(q, "query-vmig-timeline", NULL, &reply, err, sizeof(err));

	if (ret < 0) {
		log_error("--timeline: query-vmig-timeline: %s", err);
		return ret;
	}
	const struct json_value *passes =
	    json_object_get(json_object_get(reply, "return"), "passes");
	for (size_t i = 0; ret == 0 && passes && i < passes->arr.n; i++) {
		const struct json_value *one[] = {&passes->arr.items[i]};
		ret = tl_line(f, "pass", one, 1);
	}
	if (ret == 0 && info)
		ret = tl_switchover(f, info);
	json_free(reply);
	if (ret < 0)
		log_error("--timeline: cannot write the timeline: %s", strerror(-ret));
	return ret;
}
