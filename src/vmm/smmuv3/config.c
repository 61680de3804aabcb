// SPDX-License-Identifier: Apache-2.0
/*
 * The emulation's side of the bridge: pushing stream configurations to the host when the
 * guest invalidates them, and batching the invalidations the host must see.
 */
#include <errno.h>

#include "common/trace.h"
#include "vmm/smmuv3/internal.h"

/* SIDs walked one by one when the bridge cannot enumerate its devices. */
#define VSMMU_SCAN_LIMIT 1024ull

void vsmmu_pre_forward(struct vsmmu *vs, const uint64_t (*cmds)[2], size_t n, uint32_t ste_sid)
{
	if (vs->pre_fwd)
		vs->pre_fwd(vs->pre_fwd_opaque, cmds, n, ste_sid);
}

void vsmmu_set_pre_forward_locked(struct vsmmu *vs, vsmmu_pre_forward_fn fn, void *opaque)
{
	vs->pre_fwd = fn;
	vs->pre_fwd_opaque = opaque;
}

void vsmmu_set_pre_forward(struct vsmmu *vs, vsmmu_pre_forward_fn fn, void *opaque)
{
	vsmmu_lock(vs);
	vsmmu_set_pre_forward_locked(vs, fn, opaque);
	vsmmu_unlock(vs);
}

void vsmmu_host_tlbi_all_locked(struct vsmmu *vs)
{
	uint64_t cmd[2] = {FSET(0, CMD0_OP, CMD_TLBI_NH_ALL), 0};

	vsmmu_fwd_flush(vs); /* the guest's own commands keep their order */
	vsmmu_fwd_queue(vs, cmd);
	vsmmu_fwd_flush(vs);
}

void vsmmu_with_lock(struct vsmmu *vs, void (*fn)(void *opaque), void *opaque)
{
	vsmmu_lock(vs);
	fn(opaque);
	vsmmu_unlock(vs);
}

bool vsmmu_bridge_attached(struct vsmmu *vs, uint32_t sid)
{
	return vs->bridge && vs->bridge->sid_attached &&
	       vs->bridge->sid_attached(vs->bridge_opaque, sid);
}

static void vsmmu_note_install(struct vsmmu *vs, uint32_t sid, bool refused)
{
	unsigned i, free_i = VSMMU_INST_TRACK;

	for (i = 0; i < VSMMU_INST_TRACK; i++) {
		if (vs->inst[i].used && vs->inst[i].vsid == sid)
			break;
		if (!vs->inst[i].used && free_i == VSMMU_INST_TRACK)
			free_i = i;
	}
	if (i == VSMMU_INST_TRACK)
		i = free_i;
	if (i == VSMMU_INST_TRACK)
		return; /* more streams than the bridge can attach: none of them is */
	vs->inst[i].used = true;
	vs->inst[i].vsid = sid;
	vs->inst[i].refused = refused;
}

static bool vsmmu_install_refused(const struct vsmmu *vs, uint32_t sid)
{
	for (unsigned i = 0; i < VSMMU_INST_TRACK; i++)
		if (vs->inst[i].used && vs->inst[i].vsid == sid)
			return vs->inst[i].refused;
	return false;
}

unsigned vsmmu_streams(struct vsmmu *vs, struct vsmmu_stream *out, unsigned max)
{
	uint32_t sid = 0;
	unsigned n = 0;

	vsmmu_lock(vs);
	while (vs->bridge && vs->bridge->sid_next &&
	       vs->bridge->sid_next(vs->bridge_opaque, sid, &sid) == 0) {
		if (n < max)
			out[n] = (struct vsmmu_stream){sid, !vsmmu_install_refused(vs, sid)};
		n++;
		if (sid++ == UINT32_MAX)
			break;
	}
	vsmmu_unlock(vs);
	return n;
}

static void vsmmu_config_push(struct vsmmu *vs, uint32_t sid, const struct vsmmu_ste *ste,
			      bool report)
{
	struct vsmmu_ste abort_ste = {.kind = VSMMU_STE_ABORT};
	int ret;

	if (!vs->bridge->ste_install)
		return;
	vsmmu_pre_forward(vs, NULL, 0, sid);
	ret = vs->bridge->ste_install(vs->bridge_opaque, sid, ste);
	vs->stats.installs++;
	TRACE(vsmmu_ste_install, "sid=%#x kind=%d w0=%#llx w1=%#llx ret=%d", sid, ste->kind,
	      (unsigned long long)ste->words[0], (unsigned long long)ste->words[1], ret);
	vsmmu_note_install(vs, sid, ret < 0 && ste->kind != VSMMU_STE_ABORT);
	if (ret >= 0 || ste->kind == VSMMU_STE_ABORT) {
		if (ret < 0)
			vs->stats.install_errors++;
		return;
	}
	/* The host refused it: the guest sees a bad STE and the device is blocked. */
	vs->stats.install_errors++;
	if ((ret == -ENOMEM || ret == -ENOSPC) && !vs->install_resource_err)
		vs->install_resource_err = ret;
	if (report)
		vsmmu_event_config(vs, EVT_C_BAD_STE, sid, false, 0, 0);
	abort_ste.words[0] = FSET(0, STE0_V, 1);
	vs->bridge->ste_install(vs->bridge_opaque, sid, &abort_ste);
}

void vsmmu_config_install(struct vsmmu *vs, uint32_t sid, bool report)
{
	struct vsmmu_ste ste;
	uint64_t cfgi_cd_all[2] = {FSET(FSET(0, CMD0_OP, CMD_CFGI_CD_ALL), CMD0_SID, sid), 0};

	if (!vsmmu_bridge_attached(vs, sid))
		return;
	vsmmu_config_resolve(vs, sid, report, &ste);
	vsmmu_config_push(vs, sid, &ste, report);
	if (ste.kind != VSMMU_STE_S1)
		return;
	if (report)
		vsmmu_config_check_cd(vs, sid, true, 0);
	else
		/* A re-install the guest did not ask for (SMMUEN, reset, post-load): whatever
		 * the host cached of this stream's CDs predates it. */
		vsmmu_fwd_queue(vs, cfgi_cd_all);
}

/* Installs every attached stream in [first, first+count); returns how many. */
unsigned vsmmu_config_install_range(struct vsmmu *vs, uint32_t first, uint64_t count, bool report)
{
	uint64_t end = (uint64_t)first + count;
	unsigned n = 0;
	uint32_t sid;

	if (!vs->bridge)
		return 0;
	if (vs->bridge->sid_next) {
		for (uint64_t from = first; from < end; from = (uint64_t)sid + 1) {
			if (vs->bridge->sid_next(vs->bridge_opaque, (uint32_t)from, &sid) < 0 ||
			    sid < from || sid >= end)
				break;
			vsmmu_config_install(vs, sid, report);
			n++;
		}
		return n;
	}
	for (uint64_t s = first; s < end && s < first + VSMMU_SCAN_LIMIT; s++) {
		if (vsmmu_bridge_attached(vs, (uint32_t)s)) {
			vsmmu_config_install(vs, (uint32_t)s, report);
			n++;
		}
	}
	return n;
}

unsigned vsmmu_config_install_all(struct vsmmu *vs, bool report)
{
	return vsmmu_config_install_range(vs, 0, 1ull << 32, report);
}

void vsmmu_fwd_flush(struct vsmmu *vs)
{
	int ret;

	if (vs->fwd_n == 0 || !vs->bridge || !vs->bridge->invalidate) {
		vs->fwd_n = 0;
		return;
	}
	vsmmu_pre_forward(vs, (const uint64_t(*)[2])vs->fwd, vs->fwd_n, 0);
	ret = vs->bridge->invalidate(vs->bridge_opaque, (const uint64_t(*)[2])vs->fwd, vs->fwd_n);
	vs->stats.fwd_batches++;
	vs->stats.fwd_cmds += vs->fwd_n;
	if (ret < 0) {
		/* The guest's commands were legal; a host refusal is the VMM's problem. */
		vs->stats.fwd_errors++;
		TRACE(vsmmu_fwd_error, "n=%u ret=%d", vs->fwd_n, ret);
	}
	TRACE(vsmmu_fwd_flush, "n=%u ret=%d", vs->fwd_n, ret);
	vs->fwd_n = 0;
}

void vsmmu_fwd_queue(struct vsmmu *vs, const uint64_t cmd[2])
{
	if (!vs->bridge || !vs->bridge->invalidate)
		return;
	vs->fwd[vs->fwd_n][0] = cmd[0];
	vs->fwd[vs->fwd_n][1] = cmd[1];
	if (++vs->fwd_n == VSMMU_FWD_BATCH)
		vsmmu_fwd_flush(vs);
}
