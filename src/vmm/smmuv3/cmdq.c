// SPDX-License-Identifier: Apache-2.0
/*
 * The command queue: consumption on CMDQ_PROD writes (every command up to PROD in one
 * call), command semantics, command errors (CERROR_ILL/ABT stop the queue with CONS at the
 * failing command until GERRORN acknowledges CMDQ_ERR).
 */
#include "common/trace.h"
#include "vmm/smmuv3/internal.h"

static unsigned vsmmu_cmdq_log2(const struct vsmmu *vs)
{
	return vsmmu_queue_log2size(vs->r.cmdq.base, vs->cfg.cmdq_bits);
}

static int vsmmu_cmd_fetch(struct vsmmu *vs, uint64_t addr, uint64_t cmd[2])
{
	uint8_t buf[CMD_SIZE];

	if (vs->plat.ram_read(vs->plat.opaque, addr, buf, sizeof(buf)) < 0)
		return -1;
	cmd[0] = cmd[1] = 0;
	for (unsigned i = 0; i < 8; i++) {
		cmd[0] |= (uint64_t)buf[i] << (8 * i);
		cmd[1] |= (uint64_t)buf[8 + i] << (8 * i);
	}
	return 0;
}

static int vsmmu_cmd_sync(struct vsmmu *vs, const uint64_t cmd[2])
{
	unsigned cs = (unsigned)FGET(cmd[0], CMD0_SYNC_CS);
	uint64_t addr = FGET(cmd[1], CMD1_SYNC_MSIADDR) << 2;

	/* Everything before the sync, including what the host must invalidate, completes. */
	vsmmu_fwd_flush(vs);
	vs->stats.syncs++;
	TRACE(vsmmu_cmd_sync, "cs=%u addr=%#llx data=%#x", cs, (unsigned long long)addr,
	      (unsigned)FGET(cmd[0], CMD0_SYNC_MSIDATA));
	if (cs == CMD_SYNC_CS_IRQ) {
		if (vsmmu_msi_write(vs, addr, (uint32_t)FGET(cmd[0], CMD0_SYNC_MSIDATA)) < 0)
			vsmmu_gerror_raise(vs, GERROR_MSI_CMDQ_ABT);
	} else if (cs == CMD_SYNC_CS_SEV) {
		if (vs->plat.sev)
			vs->plat.sev(vs->plat.opaque);
	} else if (cs != CMD_SYNC_CS_NONE) {
		return CMDQ_ERR_ILL;
	}
	return CMDQ_ERR_NONE;
}

static int vsmmu_cmd_cfgi_ste_range(struct vsmmu *vs, const uint64_t cmd[2])
{
	unsigned range = (unsigned)FGET(cmd[1], CMD1_RANGE);
	uint64_t count = 2ull << range;
	uint32_t first = (uint32_t)(FGET(cmd[0], CMD0_SID) & ~(count - 1));

	vsmmu_fwd_flush(vs);
	vsmmu_config_install_range(vs, first, count, true);
	return CMDQ_ERR_NONE;
}

/* CFGI_CD(_ALL) and ATC_INV name a stream: forwarded only when a device is behind it. */
static int vsmmu_cmd_sid_fwd(struct vsmmu *vs, const uint64_t cmd[2])
{
	uint32_t sid = (uint32_t)FGET(cmd[0], CMD0_SID);
	unsigned op = (unsigned)FGET(cmd[0], CMD0_OP);

	/* A SubstreamID this SMMU cannot have is a malformed command. */
	if (op == CMD_CFGI_CD && FGET(cmd[0], CMD0_SSID) >> vs->cfg.ssid_bits)
		return CMDQ_ERR_ILL;
	if (!vsmmu_bridge_attached(vs, sid))
		return CMDQ_ERR_NONE;
	vsmmu_fwd_queue(vs, cmd);
	if (op == CMD_CFGI_CD)
		vsmmu_config_check_cd(vs, sid, false, (uint32_t)FGET(cmd[0], CMD0_SSID));
	else if (op == CMD_CFGI_CD_ALL)
		vsmmu_config_check_cd(vs, sid, true, 0);
	return CMDQ_ERR_NONE;
}

static int vsmmu_cmd_resume(struct vsmmu *vs, const uint64_t cmd[2])
{
	unsigned resp = (unsigned)FGET(cmd[0], CMD0_RESUME_RESP);

	if (resp > CMD_RESUME_ABORT)
		return CMDQ_ERR_ILL;
	/* Invalidations queued before the RESUME must reach the host before the retry. */
	vsmmu_fwd_flush(vs);
	vsmmu_stall_resume(vs, (uint32_t)FGET(cmd[0], CMD0_SID),
			   (uint16_t)FGET(cmd[1], CMD1_RESUME_STAG),
			   resp == CMD_RESUME_RETRY ? VSMMU_RESUME_RETRY : VSMMU_RESUME_FAIL);
	return CMDQ_ERR_NONE;
}

/* Executes one command: CMDQ_ERR_NONE or the CONS.ERR code that stops the queue. */
static int vsmmu_cmd_exec(struct vsmmu *vs, const uint64_t cmd[2])
{
	unsigned op = (unsigned)FGET(cmd[0], CMD0_OP);

	TRACE(vsmmu_cmd, "op=%#x w0=%#llx w1=%#llx", op, (unsigned long long)cmd[0],
	      (unsigned long long)cmd[1]);
	/* A non-secure programming interface: secure stream commands are illegal. */
	if (FGET(cmd[0], CMD0_SSEC))
		return CMDQ_ERR_ILL;
	switch (op) {
	case CMD_PREFETCH_CONFIG:
	case CMD_PREFETCH_ADDR:
		return CMDQ_ERR_NONE; /* hints: nothing is cached here */
	case CMD_CFGI_STE:
		vsmmu_fwd_flush(vs);
		vsmmu_config_install(vs, (uint32_t)FGET(cmd[0], CMD0_SID), true);
		return CMDQ_ERR_NONE;
	case CMD_CFGI_STE_RANGE:
		return vsmmu_cmd_cfgi_ste_range(vs, cmd);
	case CMD_CFGI_CD:
	case CMD_CFGI_CD_ALL:
	case CMD_ATC_INV:
		return vsmmu_cmd_sid_fwd(vs, cmd);
	case CMD_TLBI_NH_ALL:
	case CMD_TLBI_NH_ASID:
	case CMD_TLBI_NH_VA:
	case CMD_TLBI_NH_VAA:
	case CMD_TLBI_NSNH_ALL:
		vsmmu_fwd_queue(vs, cmd);
		return CMDQ_ERR_NONE;
	case CMD_RESUME:
		return vs->cfg.stall ? vsmmu_cmd_resume(vs, cmd) : CMDQ_ERR_ILL;
	case CMD_STALL_TERM:
		if (!vs->cfg.stall)
			return CMDQ_ERR_ILL; /* no stall model, no stall commands */
		vsmmu_fwd_flush(vs);
		vsmmu_stall_terminate(vs, (uint32_t)FGET(cmd[0], CMD0_SID));
		return CMDQ_ERR_NONE;
	case CMD_SYNC:
		return vsmmu_cmd_sync(vs, cmd);
	default:
		/* Unknown, stage-2 TLBIs (no S2P), PRI_RESP (no PRI), EL2/EL3 TLBIs. */
		return CMDQ_ERR_ILL;
	}
}

static void vsmmu_cmdq_error(struct vsmmu *vs, unsigned err)
{
	vs->r.cmdq.cons = (uint32_t)FSET(vs->r.cmdq.cons, Q_CONS_ERR, err);
	vs->stats.cmd_errors++;
	TRACE(vsmmu_cmdq_error, "err=%u cons=%#x prod=%#x", err, vs->r.cmdq.cons, vs->r.cmdq.prod);
	vsmmu_gerror_raise(vs, GERROR_CMDQ_ERR);
}

/*
 * Consumes commands from CONS to PROD. At most one queue's worth per call, which bounds the
 * work a single MMIO exit can cause even if PROD and CONS are inconsistent.
 */
void vsmmu_cmdq_process(struct vsmmu *vs)
{
	unsigned l2 = vsmmu_cmdq_log2(vs), err = CMDQ_ERR_NONE;
	uint32_t mask = vsmmu_queue_ptr_mask(l2), budget = 1u << l2, done = 0;
	uint32_t cons = vs->r.cmdq.cons;
	uint64_t cmd[2];

	if (!FGET(vs->r.cr0, CR0_CMDQEN) || vsmmu_gerror_active(vs, GERROR_CMDQ_ERR))
		return;
	while (!vsmmu_queue_empty(vs->r.cmdq.prod, cons, l2) && done < budget) {
		if (vsmmu_cmd_fetch(vs, vsmmu_queue_slot(vs->r.cmdq.base, cons, l2, CMD_SIZE),
				    cmd) < 0)
			err = CMDQ_ERR_ABT;
		else
			err = (unsigned)vsmmu_cmd_exec(vs, cmd);
		if (err != CMDQ_ERR_NONE)
			break;
		cons = (cons & ~mask) | vsmmu_queue_inc(cons & mask, l2);
		vs->r.cmdq.cons = cons;
		done++;
	}
	vs->stats.cmds += done;
	if (done)
		vs->stats.kicks++;
	if (err != CMDQ_ERR_NONE)
		vsmmu_cmdq_error(vs, err);
}
