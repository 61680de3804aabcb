// SPDX-License-Identifier: Apache-2.0
/*
 * query-vmig-host-translation: the host administrator's view of the device's translations
 * (what Linux's IOMMU debugfs shows): what the host SMMU would do with a DMA of the sdma
 * device, walked through its current configuration and tables without any effect. A
 * migration test compares it on both sides: post-load must leave the destination's host
 * translating every stream and SSID exactly as the source's did.
 */
#include <errno.h>

#include "vmig/host_platform.h"
#include "vmm/control/internal.h"

#define HOST_VIEW_MAX 1024 /* translations per call */

struct host_view_req {
	bool ssv;
	uint32_t ssid;
	uint64_t iova, count, step;
};

static bool host_view_uint(const struct json_value *args, const char *key, uint64_t max,
			   uint64_t *out)
{
	const struct json_value *v = json_object_get(args, key);

	if (!v)
		return true;
	if (v->i < 0 || (uint64_t)v->i > max)
		return false;
	*out = (uint64_t)v->i;
	return true;
}

static int host_view_parse(const struct json_value *args, struct host_view_req *r,
			   struct control_error *e)
{
	uint64_t ssid = 0;

	*r = (struct host_view_req){.count = 1, .step = 4096};
	r->ssv = json_object_get(args, "ssid") != NULL;
	if (!host_view_uint(args, "iova", (1ull << 48) - 1, &r->iova) ||
	    !host_view_uint(args, "ssid", (1u << 20) - 1, &ssid) ||
	    !host_view_uint(args, "count", HOST_VIEW_MAX, &r->count) ||
	    !host_view_uint(args, "step", 1ull << 40, &r->step) || !r->count) {
		control_error_set(e, "GenericError",
				  "iova 0..2^48-1, ssid 0..2^20-1, count 1..%u, step 0..2^40",
				  HOST_VIEW_MAX);
		return -EINVAL;
	}
	r->ssid = (uint32_t)ssid;
	return 0;
}

static void host_view_write_one(struct json_writer *w, uint64_t iova,
				const struct host_platform_probe *p)
{
	static const char *const status[] = {"ok", "fault", "abort"};

	json_write_begin_object(w);
	json_write_key(w, "iova");
	json_write_uint(w, iova);
	json_write_key(w, "status");
	json_write_string(w, status[p->status < 3 ? p->status : 2]);
	json_write_key(w, "read");
	json_write_bool(w, p->read);
	json_write_key(w, "write");
	json_write_bool(w, p->write);
	if (p->status == 0) {
		json_write_key(w, "ipa");
		json_write_uint(w, p->ipa);
	} else if (p->status == 1) {
		json_write_key(w, "event");
		json_write_uint(w, p->event);
	}
	json_write_end_object(w);
}

int cmd_query_vmig_host_translation(struct control *c, const struct json_value *args,
				    struct json_writer *w, struct control_error *e)
{
	struct host_view_req r;
	struct host_platform_probe p;
	int ret;

	if (!c->cfg.hp || !c->cfg.dev) {
		control_error_set(e, "GenericError", "This VM has no passthrough devices");
		return -ENODEV;
	}
	if ((ret = host_view_parse(args, &r, e)) < 0)
		return ret;
	json_write_begin_array(w);
	for (uint64_t i = 0; i < r.count; i++) {
		uint64_t iova = r.iova + i * r.step;
		if (host_platform_probe_dma(c->cfg.hp, r.ssv, r.ssid, iova, &p) < 0)
			p = (struct host_platform_probe){.status = 2};
		host_view_write_one(w, iova, &p);
	}
	json_write_end_array(w);
	return 0;
}
