// SPDX-License-Identifier: Apache-2.0
/* Command execution (the command queue's consumer) and command builders. */
#include <errno.h>

#include "common/trace.h"
#include "host/iommu/smmu_internal.h"

/* ---- decoding ---- */

/* The address range an invalidation covers: TG=0 one address, else the RIL range. */
static void cmd_range(const struct smmu_cmd *c, uint64_t addr_mask, uint64_t *addr, uint64_t *len)
{
	unsigned tg = (unsigned)F_GET(c->dw[1], CMD1_TG);

	*addr = c->dw[1] & addr_mask & ~(SMMU_PAGE_SIZE - 1);
	if (tg == 0) {
		*len = 1;
		return;
	}
	uint64_t gran = 1ull << (2 * tg + 10);
	uint64_t num = F_GET(c->dw[0], CMD0_NUM) + 1;
	unsigned scale = (unsigned)F_GET(c->dw[0], CMD0_SCALE);
	*len = scale + 2 * tg + 10 + 5 >= 64 ? UINT64_MAX - *addr : (num << scale) * gran;
}

/* The IOTLB selector of a TLBI command. */
static void cmd_tlbi_sel(const struct smmu_cmd *c, unsigned op, struct tlb_inval *sel)
{
	*sel = (struct tlb_inval){0};
	sel->vmid = (uint16_t)F_GET(c->dw[0], CMD0_VMID);
	sel->asid = (uint16_t)F_GET(c->dw[0], CMD0_ASID);
	switch (op) {
	case CMD_TLBI_NH_VA:
		sel->by_asid = true;
		/* fallthrough */
	case CMD_TLBI_NH_VAA:
		sel->by_va = true;
		cmd_range(c, ~0ull, &sel->addr, &sel->len);
		/* fallthrough */
	case CMD_TLBI_NH_ALL:
		sel->by_vmid = sel->s1_only = true;
		break;
	case CMD_TLBI_NH_ASID:
		sel->by_vmid = sel->by_asid = sel->s1_only = true;
		break;
	case CMD_TLBI_S2_IPA:
		sel->by_vmid = sel->by_ipa = sel->s2_only = true;
		cmd_range(c, F_MASK(CMD1_ADDR) & ((1ull << 52) - 1), &sel->addr, &sel->len);
		break;
	case CMD_TLBI_S12_VMALL:
		sel->by_vmid = true;
		break;
	default: /* TLBI_NSNH_ALL */
		break;
	}
	TRACE(smmu_tlbi, "op=%#x vmid=%u asid=%u addr=%#llx len=%#llx", op, sel->vmid, sel->asid,
	      (unsigned long long)sel->addr, (unsigned long long)sel->len);
}

static bool cmd_is_tlbi(unsigned op)
{
	return (op >= CMD_TLBI_NH_ALL && op <= CMD_TLBI_NH_VAA) || op == CMD_TLBI_S12_VMALL ||
	       op == CMD_TLBI_S2_IPA || op == CMD_TLBI_NSNH_ALL;
}

static void cmd_cfgi(struct smmu *s, const struct smmu_cmd *c, unsigned op)
{
	uint32_t sid = (uint32_t)F_GET(c->dw[0], CMD0_SID);

	if (op == CMD_CFGI_STE_RANGE) {
		unsigned range = (unsigned)F_GET(c->dw[1], CMD1_RANGE);
		if (range >= 31) {
			smmu_cfg_invalidate(s, 0, UINT32_MAX);
			return;
		}
		uint32_t n = 1u << (range + 1);
		smmu_cfg_invalidate(s, sid & ~(n - 1), (sid & ~(n - 1)) + n - 1);
		return;
	}
	/* CFGI_STE, CFGI_CD, CFGI_CD_ALL: everything cached for the stream. */
	smmu_cfg_invalidate(s, sid, sid);
}

/* CMD_SYNC: complete earlier work, then the optional MSI write of MSIData to MSIAddr. */
static void cmd_sync(struct smmu *s, const struct smmu_cmd *c)
{
	smmu_sync(s);
	if (F_GET(c->dw[0], CMD0_SYNC_CS) != 1)
		return;
	uint32_t data = (uint32_t)F_GET(c->dw[0], CMD0_MSIDATA);
	uint64_t addr = c->dw[1] & F_MASK(CMD1_MSIADDR);
	if (hostmem_write(s->hm, addr, &data, 4))
		hostmem_doorbell_write(s->hm, addr, &data, 4, 0);
}

static int cmd_exec_one(struct smmu *s, const struct smmu_cmd *c)
{
	unsigned op = (unsigned)F_GET(c->dw[0], CMD0_OP);
	uint32_t sid = (uint32_t)F_GET(c->dw[0], CMD0_SID);

	switch (op) {
	case CMD_PREFETCH_CONFIG:
	case CMD_PREFETCH_ADDR:
	case CMD_ATC_INV:
	case CMD_PRI_RESP:
		return 0; /* no prefetch effects, no ATS, no PRI in this model */
	case CMD_CFGI_STE:
	case CMD_CFGI_STE_RANGE:
	case CMD_CFGI_CD:
	case CMD_CFGI_CD_ALL:
		if (F_GET(c->dw[0], CMD0_SSEC))
			return -EINVAL;
		cmd_cfgi(s, c, op);
		return 0;
	case CMD_RESUME:
		smmu_stall_answer(s, sid, (uint16_t)F_GET(c->dw[1], CMD1_STAG),
				  (unsigned)F_GET(c->dw[0], CMD0_RESP));
		return 0;
	case CMD_STALL_TERM:
		smmu_stall_term_sid(s, sid);
		return 0;
	case CMD_SYNC:
		cmd_sync(s, c);
		return 0;
	default:
		return -EINVAL;
	}
}

#define TLBI_BATCH 32

/*
 * Executes in order, except that runs of consecutive TLBIs are applied in one IOTLB pass
 * (they complete before the next non-TLBI command, so the order is still observed).
 */
unsigned smmu_cmd_exec(struct smmu *s, const struct smmu_cmd *cmds, unsigned n, unsigned *cerror)
{
	struct tlb_inval sel[TLBI_BATCH];
	unsigned nsel = 0, i;

	for (i = 0; i < n; i++) {
		unsigned op = (unsigned)F_GET(cmds[i].dw[0], CMD0_OP);
		if (cmd_is_tlbi(op)) {
			cmd_tlbi_sel(&cmds[i], op, &sel[nsel++]);
			if (nsel == TLBI_BATCH) {
				smmu_tlb_invalidate(&s->tlb, sel, nsel);
				nsel = 0;
			}
			continue;
		}
		if (nsel) {
			smmu_tlb_invalidate(&s->tlb, sel, nsel);
			nsel = 0;
		}
		if (cmd_exec_one(s, &cmds[i]))
			break;
	}
	if (nsel)
		smmu_tlb_invalidate(&s->tlb, sel, nsel);
	if (i < n)
		TRACE(smmu_cmd_error, "op=%#llx index=%u",
		      (unsigned long long)(cmds[i].dw[0] & 0xff), i);
	if (cerror)
		*cerror = i < n ? CERROR_ILL : CERROR_NONE;
	return i;
}

int smmu_cmd_one(struct smmu *s, struct smmu_cmd cmd)
{
	return smmu_cmd_exec(s, &cmd, 1, NULL) == 1 ? 0 : -EINVAL;
}

/* ---- builders ---- */

static struct smmu_cmd cmd_op(unsigned op)
{
	return (struct smmu_cmd){{F_VAL(CMD0_OP, op), 0}};
}

static struct smmu_cmd cmd_op_sid(unsigned op, uint32_t sid)
{
	struct smmu_cmd c = cmd_op(op);
	c.dw[0] |= F_VAL(CMD0_SID, sid);
	return c;
}

struct smmu_cmd smmu_cmd_cfgi_ste(uint32_t sid)
{
	struct smmu_cmd c = cmd_op_sid(CMD_CFGI_STE, sid);
	c.dw[1] = F_VAL(CMD1_LEAF, 1);
	return c;
}

struct smmu_cmd smmu_cmd_cfgi_ste_range(uint32_t sid, unsigned range)
{
	struct smmu_cmd c = cmd_op_sid(CMD_CFGI_STE_RANGE, sid);
	c.dw[1] = F_VAL(CMD1_RANGE, range);
	return c;
}

struct smmu_cmd smmu_cmd_cfgi_all(void)
{
	return smmu_cmd_cfgi_ste_range(0, 31);
}

struct smmu_cmd smmu_cmd_cfgi_cd(uint32_t sid, uint32_t ssid)
{
	struct smmu_cmd c = cmd_op_sid(CMD_CFGI_CD, sid);
	c.dw[0] |= F_VAL(CMD0_SSID, ssid);
	c.dw[1] = F_VAL(CMD1_LEAF, 1);
	return c;
}

struct smmu_cmd smmu_cmd_cfgi_cd_all(uint32_t sid)
{
	return cmd_op_sid(CMD_CFGI_CD_ALL, sid);
}

struct smmu_cmd smmu_cmd_tlbi_nh_all(uint16_t vmid)
{
	struct smmu_cmd c = cmd_op(CMD_TLBI_NH_ALL);
	c.dw[0] |= F_VAL(CMD0_VMID, vmid);
	return c;
}

struct smmu_cmd smmu_cmd_tlbi_nh_asid(uint16_t vmid, uint16_t asid)
{
	struct smmu_cmd c = cmd_op(CMD_TLBI_NH_ASID);
	c.dw[0] |= F_VAL(CMD0_VMID, vmid) | F_VAL(CMD0_ASID, asid);
	return c;
}

/* Encodes [addr, addr + pages*4K) as TG=4K, NUM, SCALE (rounded up: over-invalidates). */
static void cmd_set_range(struct smmu_cmd *c, uint64_t addr, uint64_t pages)
{
	c->dw[1] |= addr & ~(SMMU_PAGE_SIZE - 1);
	if (pages == 0)
		return;
	unsigned scale = 0;
	while (scale < 31 && ((pages + (1ull << scale) - 1) >> scale) > 32)
		scale++;
	uint64_t num = (pages + (1ull << scale) - 1) >> scale;
	c->dw[0] |= F_VAL(CMD0_NUM, num - 1) | F_VAL(CMD0_SCALE, scale);
	c->dw[1] |= F_VAL(CMD1_TG, 1);
}

struct smmu_cmd smmu_cmd_tlbi_nh_va(uint16_t vmid, uint16_t asid, uint64_t va, uint64_t num_pages)
{
	struct smmu_cmd c = cmd_op(CMD_TLBI_NH_VA);
	c.dw[0] |= F_VAL(CMD0_VMID, vmid) | F_VAL(CMD0_ASID, asid);
	cmd_set_range(&c, va, num_pages);
	return c;
}

struct smmu_cmd smmu_cmd_tlbi_nh_vaa(uint16_t vmid, uint64_t va, uint64_t num_pages)
{
	struct smmu_cmd c = cmd_op(CMD_TLBI_NH_VAA);
	c.dw[0] |= F_VAL(CMD0_VMID, vmid);
	cmd_set_range(&c, va, num_pages);
	return c;
}

struct smmu_cmd smmu_cmd_tlbi_s2_ipa(uint16_t vmid, uint64_t ipa, uint64_t num_pages)
{
	struct smmu_cmd c = cmd_op(CMD_TLBI_S2_IPA);
	c.dw[0] |= F_VAL(CMD0_VMID, vmid);
	cmd_set_range(&c, ipa, num_pages);
	return c;
}

struct smmu_cmd smmu_cmd_tlbi_s12_vmall(uint16_t vmid)
{
	struct smmu_cmd c = cmd_op(CMD_TLBI_S12_VMALL);
	c.dw[0] |= F_VAL(CMD0_VMID, vmid);
	return c;
}

struct smmu_cmd smmu_cmd_tlbi_nsnh_all(void)
{
	return cmd_op(CMD_TLBI_NSNH_ALL);
}

struct smmu_cmd smmu_cmd_resume(uint32_t sid, uint16_t stag, unsigned resp)
{
	struct smmu_cmd c = cmd_op_sid(CMD_RESUME, sid);
	c.dw[0] |= F_VAL(CMD0_RESP, resp);
	c.dw[1] = F_VAL(CMD1_STAG, stag);
	return c;
}

struct smmu_cmd smmu_cmd_stall_term(uint32_t sid)
{
	return cmd_op_sid(CMD_STALL_TERM, sid);
}

struct smmu_cmd smmu_cmd_sync(void)
{
	return cmd_op(CMD_SYNC);
}
