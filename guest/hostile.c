// SPDX-License-Identifier: Apache-2.0
// workload=hostile: a guest that misprograms its vSMMUv3 and device on purpose. Every case
// checks that the architectural answer arrives (an event, a GERROR, a command error, a
// failed DMA), then restores a good configuration; one HOSTILE line per case. The VMM-side
// test adds what the guest cannot see: vmig stays up and writes nothing outside guest RAM.
#include "console.h"
#include "iommu_workloads.h"
#include "lib.h"
#include "sdma.h"
#include "user.h"

#define DEV_SID	      VMIG_SDMA_SID
#define HOLE_ADDR     0xE0000000ull /* in the MMIO hole, nothing decodes it */
#define UNMAPPED_IOVA 0x70000000ull
#define BADIPA_IOVA   0x71000000ull
#define CASE_TICKS    (TIMER_HZ / 2)

static uint64_t good_ste[8], good_cd[8];

/* What one case observed. */
struct seen {
	uint64_t by_id[EVT_ID_MAX];
	uint32_t gerror, cerror;
	uint8_t last_event;
	bool last_s2;
	uint8_t dma_status;
	uint64_t fault_addr;
};

static struct seen base, got;

static void seen_begin(void)
{
	smmu_poll();
	memcpy(base.by_id, smmu.st.by_id, sizeof(base.by_id));
	smmu.st.gerror_seen = 0;
	smmu.st.last_cerror = 0;
	smmu.st.last.id = 0;
	got = (struct seen){0};
}

static void seen_end(void)
{
	smmu_gerror_handle();
	smmu_poll();
	for (int i = 0; i < EVT_ID_MAX; i++)
		got.by_id[i] = smmu.st.by_id[i] - base.by_id[i];
	got.gerror = smmu.st.gerror_seen;
	got.cerror = smmu.st.last_cerror;
	got.last_event = smmu.st.last.id;
	got.last_s2 = smmu.st.last.s2;
}

/* Polls events until one of the ids arrived (id 0: any stage-2 fault) or time runs out. */
static bool wait_event(uint8_t a, uint8_t b)
{
	uint64_t end = now_ticks() + CASE_TICKS;

	for (;;) {
		smmu_poll();
		if (smmu.st.by_id[a] != base.by_id[a] || smmu.st.by_id[b] != base.by_id[b])
			return true;
		if (!a && smmu.st.last.id && smmu.st.last.s2)
			return true;
		if (now_ticks() > end)
			return false;
		sys_halt();
	}
}

/* One 64-byte fill to iova; returns the completion status (0: none within the case). */
static uint8_t dma_fill(uint64_t iova)
{
	struct sdma_desc d = {.opcode = SDMA_OP_FILL,
			      .flags = SDMA_FLAG_RCI,
			      .dst = iova,
			      .size = 64,
			      .pattern = 0x1122334455667788ull};
	uint32_t i = sdma_queue(&d);
	volatile struct sdma_compl *c = sdma_compl_of(i);

	sdma_doorbell();
	if (!sdma_wait(i, CASE_TICKS))
		return 0;
	got.fault_addr = c->fault_addr;
	return c->status;
}

/* Good STE, CD of SSID 0, event queue and a freshly started device. */
static void restore(void)
{
	smmu_ste_write_raw(DEV_SID, good_ste);
	smmu_cd_write_raw(DEV_SID, 0, good_cd);
	smmu_cmd(CMD_TLBI_NH_ASID | CMD_ASID(dev_as0()->asid), 0);
	smmu_sync();
	sdma_start(false, 0);
}

/* ---- the cases ------------------------------------------------------------------------- */

static bool case_cmd_illegal(void)
{
	bool synced;

	smmu_cmd(0x7F, 0); /* no such opcode */
	synced = smmu_sync();
	seen_end();
	return !synced && (got.gerror & GERROR_CMDQ_ERR) && got.cerror == CERROR_ILL && smmu_sync();
}

static bool case_cmd_s2_tlbi(void)
{
	bool synced;

	smmu_cmd(CMD_TLBI_S2_IPA, 0); /* stage 2 is not advertised */
	synced = smmu_sync();
	seen_end();
	return !synced && got.cerror == CERROR_ILL && smmu_sync();
}

/* Several bad commands among good ones in one batch: each is skipped, the rest runs. */
static bool case_cmd_illegal_batch(void)
{
	uint64_t gerrors = smmu.st.gerrors;
	bool synced;

	smmu_cmd(CMD_TLBI_NH_ASID | CMD_ASID(1), 0); /* fine */
	smmu_cmd(CMD_CFGI_STE | CMD_SSEC | CMD_SID(DEV_SID), 1);
	smmu_cmd(CMD_TLBI_NH_ASID | CMD_ASID(1), 0);
	smmu_cmd(CMD_RESUME | CMD_RESP(3) | CMD_SID(DEV_SID), 0);
	smmu_cmd(CMD_SYNC | CMD_RESP(3), 0); /* CS=3 is reserved */
	synced = smmu_sync();
	seen_end();
	return !synced && smmu.st.gerrors - gerrors == 3 && got.cerror == CERROR_ILL && smmu_sync();
}

static bool case_sync_msi_abort(void)
{
	/* CMD_SYNC CS=IRQ whose MSI address is neither RAM nor an interrupt controller. */
	smmu_cmd(CMD_SYNC | CMD_RESP(1), HOLE_ADDR);
	smmu_sync();
	seen_end();
	return (got.gerror & GERROR_MSI_CMDQ_ABT) != 0;
}

static bool case_cmdq_outside_ram(void)
{
	uint32_t cons;

	smmu_cmdq_rebase(HOLE_ADDR);
	smmu_write32(SMMU_R_CMDQ_PROD, 1); /* one command to fetch from nowhere */
	cons = smmu_read32(SMMU_R_CMDQ_CONS);
	/* Back to the real queue before acknowledging: the ack restarts consumption. */
	smmu_cmdq_rebase(0);
	smmu_gerror_handle();
	seen_end();
	got.cerror = (cons >> 24) & 0x7F;
	return got.cerror == CERROR_ABT && smmu_sync();
}

static bool case_dma_unmapped(void)
{
	bool ev;

	got.dma_status = dma_fill(UNMAPPED_IOVA);
	ev = wait_event(EVT_F_TRANSLATION, EVT_F_TRANSLATION);
	seen_end();
	return ev && got.dma_status == SDMA_STATUS_PAGE_FAULT &&
	       smmu.st.last.iova == UNMAPPED_IOVA && !smmu.st.last.stall;
}

static bool case_ipa_outside_ram(uint64_t ipa)
{
	struct smmu_as *as = dev_as0();

	smmu_map(as, BADIPA_IOVA, ipa, PAGE_SIZE, SMMU_PROT_READ | SMMU_PROT_WRITE);
	smmu_sync();
	got.dma_status = dma_fill(BADIPA_IOVA);
	smmu_unmap(as, BADIPA_IOVA, PAGE_SIZE);
	smmu_sync();
	seen_end();
	/*
	 * Stage 2 is the host's and invisible: its fault is not the guest's event (a stage-1
	 * SMMU has no S2 faults to report). What the guest must see is the DMA failing at
	 * that IOVA instead of reaching memory.
	 */
	return got.dma_status == SDMA_STATUS_PAGE_FAULT &&
	       ALIGN_DOWN(got.fault_addr, PAGE_SIZE) == BADIPA_IOVA;
}

static bool case_ipa_hole(void)
{
	return case_ipa_outside_ram(HOLE_ADDR);
}

static bool case_ipa_above_ram(void)
{
	return case_ipa_outside_ram(ALIGN_UP(boot.ram_top, GIB) + 16 * GIB);
}

static bool case_evtq_overflow(void)
{
	smmu.hold_events = true;
	smmu_evtq_resize(1); /* two entries */
	for (int i = 0; i < 6; i++)
		dma_fill(UNMAPPED_IOVA + (uint64_t)i * PAGE_SIZE);
	smmu.hold_events = false;
	{
		uint64_t before = smmu.st.overflows;

		smmu_poll();
		smmu_evtq_resize(7);
		seen_end();
		return smmu.st.overflows > before;
	}
}

static bool case_evtq_outside_ram(void)
{
	uint64_t end = now_ticks() + CASE_TICKS;

	smmu_evtq_rebase(HOLE_ADDR);
	dma_fill(UNMAPPED_IOVA);
	while (!(smmu_gerror_handle() & GERROR_EVTQ_ABT) &&
	       !(smmu.st.gerror_seen & GERROR_EVTQ_ABT) && now_ticks() < end)
		sys_halt();
	smmu_evtq_rebase(0);
	seen_end();
	return (got.gerror & GERROR_EVTQ_ABT) != 0;
}

static bool case_ste_bad(void)
{
	uint64_t ste[8] = {0};
	bool ev;

	ste[0] = 1 | (6ull << 1); /* V, Config = stage 2 only: not advertised */
	smmu_ste_write_raw(DEV_SID, ste);
	ev = wait_event(EVT_C_BAD_STE, EVT_C_BAD_STE);
	restore();
	seen_end();
	return ev;
}

static bool case_ste_outside_ram(void)
{
	bool ev;

	smmu_strtab_rebase(HOLE_ADDR);
	smmu_cfgi_ste(DEV_SID);
	smmu_sync();
	ev = wait_event(EVT_F_STE_FETCH, EVT_C_BAD_STREAMID);
	smmu_strtab_rebase(0);
	restore();
	seen_end();
	return ev;
}

static bool case_cd_outside_ram(void)
{
	uint64_t ste[8];
	bool ev;

	memcpy(ste, good_ste, sizeof(ste));
	ste[0] = (ste[0] & ~0x000FFFFFFFFFFFC0ull) | HOLE_ADDR;
	smmu_ste_write_raw(DEV_SID, ste);
	got.dma_status = dma_fill(UNMAPPED_IOVA);
	ev = wait_event(EVT_F_CD_FETCH, 0);
	restore();
	seen_end();
	return ev;
}

static bool case_cd_bad(void)
{
	uint64_t cd[8];
	bool ev;

	memcpy(cd, good_cd, sizeof(cd));
	cd[0] &= ~(1ull << 41); /* AA64 = 0: AArch32 tables, not advertised */
	smmu_cd_write_raw(DEV_SID, 0, cd);
	got.dma_status = dma_fill(UNMAPPED_IOVA);
	ev = wait_event(EVT_C_BAD_CD, EVT_C_BAD_CD);
	restore();
	seen_end();
	return ev;
}

static bool case_pt_outside_ram(void)
{
	uint64_t cd[8];
	bool ev;

	memcpy(cd, good_cd, sizeof(cd));
	cd[1] = HOLE_ADDR;
	smmu_cd_write_raw(DEV_SID, 0, cd);
	got.dma_status = dma_fill(UNMAPPED_IOVA);
	ev = wait_event(EVT_F_WALK_EABT, 0);
	restore();
	seen_end();
	return ev && got.dma_status != SDMA_STATUS_SUCCESS;
}

struct hostile_case {
	const char *name;
	bool (*run)(void);
};

static const struct hostile_case cases[] = {
    {"cmd_illegal_opcode", case_cmd_illegal},
    {"cmd_stage2_tlbi", case_cmd_s2_tlbi},
    {"cmd_illegal_batch", case_cmd_illegal_batch},
    {"cmd_sync_msi_abort", case_sync_msi_abort},
    {"cmdq_outside_ram", case_cmdq_outside_ram},
    {"dma_unmapped_no_stall", case_dma_unmapped},
    {"s1_to_ipa_in_hole", case_ipa_hole},
    {"s1_to_ipa_above_ram", case_ipa_above_ram},
    {"evtq_overflow", case_evtq_overflow},
    {"evtq_outside_ram", case_evtq_outside_ram},
    {"ste_bad_config", case_ste_bad},
    {"strtab_outside_ram", case_ste_outside_ram},
    {"cd_table_outside_ram", case_cd_outside_ram},
    {"cd_bad", case_cd_bad},
    {"pgtable_outside_ram", case_pt_outside_ram},
};

static void case_report(const char *name, bool ok)
{
	struct line l = {.len = 0};

	line_str(&l, "HOSTILE case=");
	line_str(&l, name);
	line_str(&l, ok ? " result=ok" : " result=fail");
	line_kx(&l, "event", got.last_event);
	line_kv(&l, "s2", got.last_s2);
	line_kx(&l, "gerror", got.gerror);
	line_kv(&l, "cerror", got.cerror);
	line_kv(&l, "dma", got.dma_status);
	line_flush(&l);
}

bool step_hostile_run(void)
{
	uint64_t events0;

	dev_result = (struct dev_result){0};
	if (!devices_up())
		return false;
	events0 = smmu.st.events;
	smmu_ste_read(DEV_SID, good_ste);
	smmu_cd_read(0, good_cd);
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool ok;

		seen_begin();
		ok = cases[i].run();
		case_report(cases[i].name, ok);
		dev_result.cases++;
		dev_result.passed += ok;
		restore();
	}
	dev_result.faults = smmu.st.events - events0;
	return dev_result.passed == dev_result.cases;
}
