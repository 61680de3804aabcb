// SPDX-License-Identifier: Apache-2.0
// Ring-3 SMMUv3 driver (guest/smmu.h). Formats: ../shared/reference/smmuv3.md. The protocol
// follows Linux's arm-smmu-v3: batched commands, one CMDQ_PROD write per batch, CMD_SYNC
// with an MSI write into a word the CPU polls, CMDQ errors skipped by overwriting the
// failing command with a CMD_SYNC, event queue drained from page 1.
#include "smmu.h"
#include "console.h"
#include "lib.h"
#include "user.h"

struct smmu smmu;

/* ---- registers ------------------------------------------------------------------------ */

#define R_IDR0		  0x00
#define R_IDR1		  0x04
#define R_IDR3		  0x0C
#define R_IDR5		  0x14
#define R_CR0		  0x20
#define R_CR0ACK	  0x24
#define R_CR1		  0x28
#define R_CR2		  0x2C
#define R_GBPA		  0x44
#define R_IRQ_CTRL	  0x50
#define R_IRQ_CTRLACK	  0x54
#define R_GERROR	  0x60
#define R_GERRORN	  0x64
#define R_GERROR_IRQ_CFG0 0x68
#define R_GERROR_IRQ_CFG1 0x70
#define R_GERROR_IRQ_CFG2 0x74
#define R_STRTAB_BASE	  0x80
#define R_STRTAB_BASE_CFG 0x88
#define R_CMDQ_BASE	  0x90
#define R_CMDQ_PROD	  0x98
#define R_CMDQ_CONS	  0x9C
#define R_EVTQ_BASE	  0xA0
#define R_EVTQ_IRQ_CFG0	  0xB0
#define R_EVTQ_IRQ_CFG1	  0xB8
#define R_EVTQ_IRQ_CFG2	  0xBC
#define R_EVTQ_PROD	  0x100A8 /* page 1, as Linux uses them */
#define R_EVTQ_CONS	  0x100AC

#define CR0_SMMUEN   (1u << 0)
#define CR0_EVENTQEN (1u << 2)
#define CR0_CMDQEN   (1u << 3)
#define GBPA_ABORT   (1u << 20)
#define GBPA_UPDATE  (1u << 31)
#define IRQ_GERROR   (1u << 0)
#define IRQ_EVTQ     (1u << 2)
#define Q_BASE_RWA   (1ull << 62) /* RA for the command queue, WA for the event queue */
#define Q_OVFLG	     (1u << 31)
#define STRTAB_RA    (1ull << 62)

/* CR1: queues and tables inner/outer write-back, inner shareable. */
#define CR1_WB_ISH    ((1u << 0) | (1u << 2) | (3u << 4) | (1u << 6) | (1u << 8) | (3u << 10))
#define CR2_RECINVSID (1u << 1)
#define CR2_PTM	      (1u << 2)

static volatile uint8_t *const regs = (volatile uint8_t *)VMIG_VSMMU_BASE;

uint32_t smmu_read32(uint64_t off)
{
	return *(volatile uint32_t *)(regs + off);
}

void smmu_write32(uint64_t off, uint32_t v)
{
	*(volatile uint32_t *)(regs + off) = v;
}

void smmu_write64(uint64_t off, uint64_t v)
{
	*(volatile uint64_t *)(regs + off) = v;
}

/* Registers answer at once under vmig; bounded anyway so a broken VMM shows up. */
static bool wait_reg(uint64_t off, uint32_t mask, uint32_t want)
{
	for (int i = 0; i < 10000; i++)
		if ((smmu_read32(off) & mask) == want)
			return true;
	return false;
}

static bool cr0_set(uint32_t v)
{
	smmu_write32(R_CR0, v);
	return wait_reg(R_CR0ACK, 0xFFFFFFFFu, v);
}

/* ---- the arena: everything the SMMU reads, in guest RAM -------------------------------- */

#define CMDQ_LOG2     8
#define EVTQ_LOG2     7
#define ST_LIN_LOG2   6 /* 64 STEs: the device's SID 0x10 fits */
#define ST_2L_LOG2    16
#define ST_2L_SPLIT   8
#define CD_MAX_LOG2   11 /* two 64 KiB leaves of 1024 CDs */
#define CD_LEAF_CDS   1024
#define CD_LEAVES     (1u << (CD_MAX_LOG2 - 10))
#define PT_POOL_PAGES 384

static uint64_t cmdq[1u << CMDQ_LOG2][2] __attribute__((aligned(4096)));
static uint64_t evtq[1u << EVTQ_LOG2][4] __attribute__((aligned(4096)));
static uint64_t st_linear[1u << ST_LIN_LOG2][8] __attribute__((aligned(4096)));
static uint64_t st_l1[1u << (ST_2L_LOG2 - ST_2L_SPLIT)] __attribute__((aligned(4096)));
static uint64_t st_l2[1u << ST_2L_SPLIT][8] __attribute__((aligned(4096)));
static uint64_t cd_l1[CD_LEAVES] __attribute__((aligned(64)));
static uint64_t cd_leaf[CD_LEAVES][CD_LEAF_CDS][8] __attribute__((aligned(4096)));
static uint64_t pt_pool[PT_POOL_PAGES][512] __attribute__((aligned(4096)));
static uint32_t pt_used;
static volatile uint32_t sync_word __attribute__((aligned(64)));

static uint64_t pa(const volatile void *p)
{
	return (uint64_t)p; /* the identity map: virtual == guest-physical */
}

/* ---- probe ---------------------------------------------------------------------------- */

static uint32_t bits(uint32_t v, unsigned shift, unsigned width)
{
	return (v >> shift) & ((1u << width) - 1);
}

static void print_absent(uint32_t idr0)
{
	struct line l = {.len = 0};

	line_str(&l, "ERROR smmu: no vSMMUv3 at ");
	line_hex(&l, VMIG_VSMMU_BASE);
	line_kx(&l, "idr0", idr0);
	line_flush(&l);
}

bool smmu_probe(void)
{
	uint32_t idr0 = smmu_read32(R_IDR0);

	/* Stage 1, AArch64 tables, 4K granule: anything else is not the vSMMU we drive. */
	if (idr0 == 0 || idr0 == 0xFFFFFFFFu || !bits(idr0, 1, 1) || !(bits(idr0, 2, 2) & 2)) {
		print_absent(idr0);
		return false;
	}
	for (int i = 0; i < 6; i++)
		smmu.idr[i] = smmu_read32((uint64_t)i * 4);
	if (!bits(smmu.idr[5], 4, 1)) {
		print_absent(idr0);
		return false;
	}
	smmu.present = true;
	smmu.ril = bits(smmu.idr[3], 10, 1);
	smmu.httu_dirty = bits(idr0, 6, 2) >= 2;
	smmu.stall_ok = bits(idr0, 24, 2) != 1;
	smmu.msi_ok = bits(idr0, 13, 1);
	smmu.two_level_st = bits(idr0, 27, 2) == 1;
	smmu.sid_bits = bits(smmu.idr[1], 0, 6);
	smmu.ssid_bits = bits(smmu.idr[1], 6, 5);
	smmu.oas_enc = MIN(bits(smmu.idr[5], 0, 3), 5u);
	return true;
}

/* ---- command queue -------------------------------------------------------------------- */

static uint32_t q_idx(uint32_t ptr, unsigned log2)
{
	return ptr & ((1u << log2) - 1);
}

/* Next pointer: index and wrap bit together, modulo 2^(log2+1). */
static uint32_t q_inc(uint32_t ptr, unsigned log2)
{
	return (ptr + 1) & ((2u << log2) - 1);
}

/* Room for a CMD_SYNC after every batch: flush before the queue could fill. */
static void cmd_write(uint64_t w0, uint64_t w1)
{
	uint32_t i = q_idx(smmu.cmdq_prod, smmu.cmdq_log2);

	cmdq[i][0] = w0;
	cmdq[i][1] = w1;
	smmu.cmdq_prod = q_inc(smmu.cmdq_prod, smmu.cmdq_log2);
	smmu.batch++;
	smmu.st.cmds++;
}

void smmu_cmd(uint64_t w0, uint64_t w1)
{
	if (smmu.batch + 2 >= (1u << smmu.cmdq_log2))
		smmu_sync();
	cmd_write(w0, w1);
}

static void cmdq_kick(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	smmu_write32(R_CMDQ_PROD, smmu.cmdq_prod);
}

/*
 * A command error stops the queue with CONS at the bad command. As Linux does, replace it
 * with a CMD_SYNC (no interrupt) and acknowledge CMDQ_ERR: the rest of the batch runs.
 */
static void cmdq_skip_error(void)
{
	uint32_t cons = smmu_read32(R_CMDQ_CONS);
	uint32_t i = q_idx(cons, smmu.cmdq_log2);

	smmu.st.last_cerror = bits(cons, 24, 7);
	cmdq[i][0] = CMD_SYNC;
	cmdq[i][1] = 0;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

uint32_t smmu_gerror_handle(void)
{
	uint32_t g = smmu_read32(R_GERROR), n = smmu_read32(R_GERRORN);
	uint32_t active = g ^ n;

	if (!active)
		return 0;
	smmu.st.gerrors++;
	smmu.st.gerror_seen |= active;
	if (active & GERROR_CMDQ_ERR)
		cmdq_skip_error();
	smmu_write32(R_GERRORN, g);
	if (active & GERROR_CMDQ_ERR)
		cmdq_kick(); /* consumption restarts at the replaced command */
	return active;
}

static bool sync_done(uint32_t seq)
{
	return __atomic_load_n(&sync_word, __ATOMIC_ACQUIRE) == seq;
}

/*
 * The MSI write lands when the vSMMU reaches the sync: at once, under the PROD exit. If it
 * has not, a command error holds the queue; each recovery lets the batch run on, maybe into
 * the next bad command, whose GERROR MSI (or, before interrupts are set up, the next wake
 * from a halt) brings us back here.
 */
static bool sync_wait(uint32_t seq)
{
	uint64_t end = now_ticks() + TIMER_HZ;

	for (uint32_t spin = 0; !sync_done(seq); spin++) {
		uint64_t girqs = cpus[0].irq_count[VMIG_VEC_SMMU_GERROR];

		if (spin == 64 || spin > 1000 || girqs != smmu.gerror_irqs_seen) {
			smmu.gerror_irqs_seen = girqs;
			if (smmu_gerror_handle())
				continue;
		}
		if (now_ticks() > end)
			return false;
		if (spin > 1000)
			sys_halt();
	}
	return true;
}

bool smmu_sync(void)
{
	uint32_t seq = ++smmu.sync_seq;
	uint64_t gerrors = smmu.st.gerrors;
	uint64_t w0 = CMD_SYNC | ((uint64_t)seq << 32);

	/* CS=IRQ (MSI into sync_word), MSH inner shareable, MSIAttr write-back. */
	if (smmu.msi_ok)
		w0 |= (1ull << 12) | (3ull << 22) | (0xFull << 24);
	cmd_write(w0, pa(&sync_word) & 0xFFFFFFFFFFFFCull);
	smmu.st.syncs++;
	smmu.st.batches++;
	smmu.batch = 0;
	cmdq_kick();
	if (!smmu.msi_ok) {
		/* CS=SEV has nothing to poll in RAM: wait for CONS to reach PROD. */
		bool ok = wait_reg(R_CMDQ_CONS, (2u << smmu.cmdq_log2) - 1, smmu.cmdq_prod);

		return ok && !smmu_gerror_handle();
	}
	if (!sync_wait(seq)) {
		smmu.st.sync_timeouts++;
		return false;
	}
	return smmu.st.gerrors == gerrors;
}

void smmu_cfgi_ste(uint32_t sid)
{
	smmu_cmd(CMD_CFGI_STE | ((uint64_t)sid << 32), 1);
	smmu.st.cfgi_cmds++;
}

void smmu_cfgi_cd(uint32_t sid, uint32_t ssid)
{
	smmu_cmd(CMD_CFGI_CD | ((uint64_t)ssid << 12) | ((uint64_t)sid << 32), 1);
	smmu.st.cfgi_cmds++;
}

static uint64_t tlbi_va_w0(const struct smmu_as *as, unsigned num, unsigned scale)
{
	return CMD_TLBI_NH_VA | ((uint64_t)num << 12) | ((uint64_t)scale << 20) |
	       ((uint64_t)as->asid << 48);
}

/*
 * Leaf invalidation of [iova, iova+size). With RIL, as Linux: each command covers
 * NUM+1 chunks of 2^SCALE pages, the largest power-of-two chunk of what is left first.
 */
void smmu_tlbi_range(const struct smmu_as *as, uint64_t iova, uint64_t size)
{
	uint64_t pages = ALIGN_UP(size, PAGE_SIZE) / PAGE_SIZE;

	while (pages) {
		uint64_t w1 = 1 | (iova & ~0xFFFull), step = 1;
		uint64_t w0 = tlbi_va_w0(as, 0, 0);

		if (smmu.ril) {
			unsigned scale = (unsigned)__builtin_ctzll(pages);
			uint64_t num = MIN((pages >> scale), 32ull);

			w0 = tlbi_va_w0(as, (unsigned)num - 1, scale);
			w1 |= (3ull << 8) | (1ull << 10); /* TTL level 3, TG 4K */
			step = num << scale;
		}
		smmu_cmd(w0, w1);
		smmu.st.tlbi_cmds++;
		iova += step * PAGE_SIZE;
		pages -= step;
	}
}

/* ---- stream table --------------------------------------------------------------------- */

#define STE0_V		  1ull
#define STE0_CFG_ABORT	  (0ull << 1)
#define STE0_CFG_S1	  (5ull << 1)
#define STE0_CFG_BYPASS	  (4ull << 1)
#define STE0_S1FMT_64K	  (2ull << 4)
#define STE1_S1DSS_SSID0  2ull
#define STE1_S1DSS_BYPASS 1ull
#define STE1_S1_WB_ISH	  ((1ull << 2) | (1ull << 4) | (3ull << 6))

static uint64_t *ste_slot(uint32_t sid)
{
	if (smmu.st_fmt == SMMU_STRTAB_LINEAR)
		return sid < (1u << ST_LIN_LOG2) ? st_linear[sid] : 0;
	return sid < (1u << ST_2L_SPLIT) ? st_l2[sid] : 0;
}

/* Linux's order for a new entry: every other word, then word 0 with V. */
static void ste_write(uint32_t sid, const uint64_t ste[8])
{
	volatile uint64_t *s = ste_slot(sid);

	if (!s)
		return;
	for (int i = 1; i < 8; i++)
		s[i] = ste[i];
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	s[0] = ste[0];
}

void smmu_ste_write_raw(uint32_t sid, const uint64_t ste[8])
{
	ste_write(sid, ste);
	smmu_cfgi_ste(sid);
	smmu_sync();
}

void smmu_ste_read(uint32_t sid, uint64_t ste[8])
{
	const uint64_t *s = ste_slot(sid);

	for (int i = 0; i < 8; i++)
		ste[i] = s ? s[i] : 0;
}

void smmu_attach(uint32_t sid)
{
	uint64_t ste[8] = {0};

	ste[0] = STE0_V | STE0_CFG_S1 | STE0_S1FMT_64K | pa(cd_l1) | ((uint64_t)CD_MAX_LOG2 << 59);
	ste[1] = STE1_S1DSS_SSID0 | STE1_S1_WB_ISH;
	smmu_ste_write_raw(sid, ste);
}

void smmu_ste_untagged(uint32_t sid, bool bypass)
{
	uint64_t ste[8];

	smmu_ste_read(sid, ste);
	ste[1] = (ste[1] & ~3ull) | (bypass ? STE1_S1DSS_BYPASS : STE1_S1DSS_SSID0);
	smmu_ste_write_raw(sid, ste);
}

void smmu_attach_bypass(uint32_t sid)
{
	uint64_t ste[8] = {0};

	ste[0] = STE0_V | STE0_CFG_BYPASS;
	smmu_ste_write_raw(sid, ste);
}

/* Every STE valid and aborting: a stray stream is blocked without events. */
static void strtab_setup(enum smmu_strtab_fmt fmt)
{
	uint64_t cfg;

	smmu.st_fmt = fmt;
	if (fmt == SMMU_STRTAB_LINEAR) {
		for (uint32_t s = 0; s < (1u << ST_LIN_LOG2); s++)
			st_linear[s][0] = STE0_V | STE0_CFG_ABORT;
		smmu_write64(R_STRTAB_BASE, pa(st_linear) | STRTAB_RA);
		cfg = ST_LIN_LOG2;
	} else {
		/* One level-2 table, for SIDs 0-255; the other spans are 0 (invalid). */
		for (uint32_t s = 0; s < (1u << ST_2L_SPLIT); s++)
			st_l2[s][0] = STE0_V | STE0_CFG_ABORT;
		st_l1[0] = pa(st_l2) | (ST_2L_SPLIT + 1);
		smmu_write64(R_STRTAB_BASE, pa(st_l1) | STRTAB_RA);
		cfg = MIN((unsigned)ST_2L_LOG2, smmu.sid_bits) | (ST_2L_SPLIT << 6) | (1u << 16);
	}
	smmu_write32(R_STRTAB_BASE_CFG, (uint32_t)cfg);
}

/* ---- context descriptors -------------------------------------------------------------- */

#define CD0_T0SZ_39 25ull
#define CD0_WB_ISH  ((1ull << 8) | (1ull << 10) | (3ull << 12))
#define CD0_EPD1    (1ull << 30)
#define CD0_V	    (1ull << 31)
#define CD0_AA64    (1ull << 41)
#define CD0_HD	    (1ull << 42)
#define CD0_HA	    (1ull << 43)
#define CD0_S	    (1ull << 44)
#define CD0_R	    (1ull << 45)
#define CD0_A	    (1ull << 46)
#define CD0_ASET    (1ull << 47)
/* MAIR as Linux's io-pgtable: 0 non-cacheable, 1 write-back, 2 device nGnRE, 3 outer. */
#define CD_MAIR (0x44ull | (0xFFull << 8) | (0x04ull << 16) | (0xF4ull << 24))
#define L1CD_V	1ull

/* The CD of ssid; creates its leaf (and the L1 descriptor) on first use. */
static uint64_t *cd_slot(uint32_t ssid, bool *new_leaf)
{
	uint32_t leaf = ssid / CD_LEAF_CDS;

	*new_leaf = false;
	if (leaf >= CD_LEAVES)
		return 0;
	if (!(cd_l1[leaf] & L1CD_V)) {
		cd_l1[leaf] = pa(cd_leaf[leaf]) | L1CD_V;
		*new_leaf = true;
	}
	return cd_leaf[leaf][ssid % CD_LEAF_CDS];
}

static void cd_write(uint32_t sid, uint32_t ssid, const uint64_t cd[8])
{
	bool new_leaf;
	volatile uint64_t *c = cd_slot(ssid, &new_leaf);

	if (!c)
		return;
	c[0] = 0; /* invalid while the other words change */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	for (int i = 1; i < 8; i++)
		c[i] = cd[i];
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	c[0] = cd[0];
	if (new_leaf)
		smmu_cmd(CMD_CFGI_CD_ALL | ((uint64_t)sid << 32), 0), smmu.st.cfgi_cmds++;
	else
		smmu_cfgi_cd(sid, ssid);
	smmu_sync();
}

void smmu_cd_write_raw(uint32_t sid, uint32_t ssid, const uint64_t cd[8])
{
	cd_write(sid, ssid, cd);
}

void smmu_cd_read(uint32_t ssid, uint64_t cd[8])
{
	bool new_leaf;
	const uint64_t *c = cd_slot(ssid, &new_leaf);

	for (int i = 0; i < 8; i++)
		cd[i] = c ? c[i] : 0;
}

static uint64_t *pt_alloc(void)
{
	if (pt_used == PT_POOL_PAGES)
		return 0;
	memset(pt_pool[pt_used], 0, PAGE_SIZE);
	return pt_pool[pt_used++];
}

void smmu_as_init(struct smmu_as *as, uint32_t sid, uint32_t ssid, uint16_t asid, bool stall)
{
	uint64_t cd[8] = {0}, *ttb = pt_alloc();

	if (!ttb)
		kernel_panic("smmu: page-table pool empty", ssid, 0);
	*as = (struct smmu_as){.ssid = ssid,
			       .asid = asid,
			       .stall = stall && smmu.stall_ok,
			       .record = true,
			       .ttb = pa(ttb)};
	cd[0] = CD0_T0SZ_39 | CD0_WB_ISH | CD0_EPD1 | CD0_V | ((uint64_t)smmu.oas_enc << 32) |
		CD0_AA64 | CD0_R | CD0_A | CD0_ASET | ((uint64_t)asid << 48);
	if (smmu.httu_dirty)
		cd[0] |= CD0_HA | CD0_HD;
	if (as->stall)
		cd[0] |= CD0_S;
	cd[1] = as->ttb;
	cd[3] = CD_MAIR;
	cd_write(sid, ssid, cd);
	/* A recycled ASID may still have entries cached from its previous tables. */
	smmu_cmd(CMD_TLBI_NH_ASID | ((uint64_t)asid << 48), 0);
	smmu_sync();
}

/* ---- stage-1 page tables (4K granule, 39-bit IOVA: levels 1-3) ------------------------ */

#define PTE_VALID     1ull
#define PTE_TABLE     3ull /* table (levels 1-2) or page (level 3) */
#define PTE_ATTR(i)   ((uint64_t)(i) << 2)
#define PTE_AP_UNPRIV (1ull << 6)
#define PTE_AP_RDONLY (1ull << 7)
#define PTE_SH_IS     (3ull << 8)
#define PTE_AF	      (1ull << 10)
#define PTE_NG	      (1ull << 11)
#define PTE_DBM	      (1ull << 51)
#define PTE_ADDR      0x0000FFFFFFFFF000ull
#define ATTR_WB	      1
#define ATTR_DEV      2

static volatile uint64_t *pte_ptr(struct smmu_as *as, uint64_t iova, bool alloc)
{
	uint64_t *table = (uint64_t *)as->ttb;

	for (int level = 1; level < 3; level++) {
		unsigned i = (unsigned)(iova >> (39 - 9 * level)) & 511;

		if (!(table[i] & PTE_VALID)) {
			uint64_t *next = alloc ? pt_alloc() : 0;

			if (!next)
				return 0;
			table[i] = pa(next) | PTE_TABLE;
		}
		table = (uint64_t *)(table[i] & PTE_ADDR);
	}
	return &table[(iova >> 12) & 511];
}

/*
 * Data pages start with AF=0 and writable-clean (DBM=1, AP[2]=1) when the SMMU manages
 * both: the device's accesses must set AF and clear AP[2]. Queues, records and the MSI page
 * are mapped accessed and dirty, as Linux maps everything.
 */
static uint64_t pte_make(uint64_t pa_, unsigned prot, bool track)
{
	uint64_t pte = (pa_ & PTE_ADDR) | PTE_TABLE | PTE_AP_UNPRIV | PTE_NG;

	pte |= prot & SMMU_PROT_MSI ? PTE_ATTR(ATTR_DEV) : PTE_ATTR(ATTR_WB) | PTE_SH_IS;
	if (!(prot & SMMU_PROT_WRITE))
		return pte | PTE_AP_RDONLY | PTE_AF;
	if (smmu.httu_dirty && track)
		return pte | PTE_DBM | PTE_AP_RDONLY;
	return pte | (smmu.httu_dirty ? PTE_DBM : 0) | PTE_AF;
}

bool smmu_map(struct smmu_as *as, uint64_t iova, uint64_t pa_, uint64_t size, unsigned prot)
{
	bool track = !(prot & SMMU_PROT_MSI) && (prot & SMMU_PROT_TRACK);

	for (uint64_t off = 0; off < size; off += PAGE_SIZE) {
		volatile uint64_t *p = pte_ptr(as, iova + off, true);

		if (!p)
			return false;
		if (!(*p & PTE_VALID))
			as->mapped_pages++;
		*p = pte_make(pa_ + off, prot, track);
	}
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return true;
}

void smmu_unmap(struct smmu_as *as, uint64_t iova, uint64_t size)
{
	for (uint64_t off = 0; off < size; off += PAGE_SIZE) {
		volatile uint64_t *p = pte_ptr(as, iova + off, false);

		if (p && (*p & PTE_VALID)) {
			*p = 0;
			as->mapped_pages--;
		}
	}
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!smmu.skip_tlbi)
		smmu_tlbi_range(as, iova, size);
}

void smmu_pte_clean(struct smmu_as *as, uint64_t iova, uint64_t size)
{
	for (uint64_t off = 0; off < size; off += PAGE_SIZE) {
		volatile uint64_t *p = pte_ptr(as, iova + off, false);

		if (p && (*p & PTE_VALID) && (*p & PTE_DBM))
			*p = (*p & ~PTE_AF) | PTE_AP_RDONLY;
	}
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	smmu_tlbi_range(as, iova, size);
}

uint64_t smmu_pte(const struct smmu_as *as, uint64_t iova)
{
	volatile uint64_t *p = pte_ptr((struct smmu_as *)as, iova, false);

	return p ? *p : 0;
}

bool smmu_pte_dirty(uint64_t pte)
{
	return (pte & (PTE_AP_RDONLY | PTE_DBM)) == PTE_DBM;
}

bool smmu_pte_young(uint64_t pte)
{
	return pte & PTE_AF;
}

/* ---- event queue ---------------------------------------------------------------------- */

static void evtq_setup(unsigned log2)
{
	smmu.evtq_log2 = MIN(log2, bits(smmu.idr[1], 16, 5));
	smmu.evtq_cons = smmu.evtq_cons_published = 0;
	memset(evtq, 0, sizeof(evtq));
	smmu_write64(R_EVTQ_BASE, pa(evtq) | Q_BASE_RWA | smmu.evtq_log2);
	smmu_write32(R_EVTQ_PROD, 0);
	smmu_write32(R_EVTQ_CONS, 0);
}

void smmu_evtq_resize(unsigned log2)
{
	uint32_t cr0 = smmu_read32(R_CR0);

	cr0_set(cr0 & ~CR0_EVENTQEN);
	evtq_setup(log2);
	cr0_set(cr0 | CR0_EVENTQEN);
}

static void event_decode(const volatile uint64_t *e, struct smmu_event *ev)
{
	uint64_t w0 = e[0], w1 = e[1];

	*ev = (struct smmu_event){
	    .id = (uint8_t)w0,
	    .ssv = (w0 >> 11) & 1,
	    .ssid = (uint32_t)(w0 >> 12) & 0xFFFFF,
	    .sid = (uint32_t)(w0 >> 32),
	    .stag = (uint16_t)w1,
	    .stall = (w1 >> 31) & 1,
	    .write = !((w1 >> 35) & 1),
	    .s2 = (w1 >> 39) & 1,
	    .class_ = (uint8_t)((w1 >> 40) & 3),
	    .iova = e[2],
	    .ipa = e[3] & PTE_ADDR,
	};
}

/* A stalled fault: map it through the workload's handler, then RESUME retry or abort. */
static void event_stall(const struct smmu_event *ev)
{
	bool ok = smmu.on_stall && smmu.on_stall(ev);
	uint64_t resp = ok ? RESUME_RETRY : RESUME_ABORT;

	smmu.st.stalls++;
	if (ok)
		smmu.st.retries++;
	else
		smmu.st.aborts++;
	smmu_cmd(CMD_RESUME | (resp << 12) | ((uint64_t)ev->sid << 32), ev->stag);
}

/* The first few events that are not stalls, for whoever reads the console. */
static void event_print(const struct smmu_event *ev)
{
	struct line l = {.len = 0};

	if (smmu.st.events - smmu.st.stalls > 16 || !smmu.verbose)
		return;
	line_str(&l, "EVENT");
	line_kx(&l, "id", ev->id);
	line_kx(&l, "sid", ev->sid);
	line_kv(&l, "ssv", ev->ssv);
	line_kx(&l, "ssid", ev->ssid);
	line_kv(&l, "stall", ev->stall);
	line_kv(&l, "s2", ev->s2);
	line_kv(&l, "class", ev->class_);
	line_kx(&l, "iova", ev->iova);
	line_kx(&l, "ipa", ev->ipa);
	line_flush(&l);
}

static void event_handle(const volatile uint64_t *e)
{
	struct smmu_event ev;

	event_decode(e, &ev);
	if (!ev.stall)
		event_print(&ev);
	smmu.st.events++;
	smmu.st.by_id[ev.id % EVT_ID_MAX]++;
	smmu.st.last = ev;
	if (ev.stall)
		event_stall(&ev);
}

/*
 * Cheap check first (ring 3, no exit): an event MSI arrived, or the next slot (zeroed when
 * consumed) holds a record. Only then read EVTQ_PROD, once per batch.
 */
static bool events_hint(void)
{
	uint64_t irqs = cpus[0].irq_count[VMIG_VEC_SMMU_EVTQ];

	if (irqs != smmu.evtq_irqs_seen) {
		smmu.evtq_irqs_seen = irqs;
		return true;
	}
	return evtq[q_idx(smmu.evtq_cons, smmu.evtq_log2)][0] != 0;
}

static unsigned events_drain(void)
{
	uint32_t prod = smmu_read32(R_EVTQ_PROD), mask = (2u << smmu.evtq_log2) - 1;
	uint32_t cons = smmu.evtq_cons & mask, ovack = smmu.evtq_cons & Q_OVFLG;
	unsigned n = 0, before = (unsigned)smmu.st.stalls;

	if ((prod & Q_OVFLG) != ovack)
		smmu.st.overflows++;
	while (cons != (prod & mask)) {
		volatile uint64_t *e = evtq[q_idx(cons, smmu.evtq_log2)];

		event_handle(e);
		e[0] = 0;
		cons = q_inc(cons, smmu.evtq_log2);
		n++;
	}
	smmu.evtq_cons = cons | (prod & Q_OVFLG);
	/*
	 * CONS only tells the SMMU there is room: publish it once a quarter of the queue is
	 * consumed (or to acknowledge an overflow), which saves an exit per stall.
	 */
	if (((cons - smmu.evtq_cons_published) & mask) >= (1u << smmu.evtq_log2) / 4 ||
	    (prod & Q_OVFLG) != (smmu.evtq_cons_published & Q_OVFLG)) {
		smmu_write32(R_EVTQ_CONS, smmu.evtq_cons);
		smmu.evtq_cons_published = smmu.evtq_cons;
	}
	if (smmu.st.stalls != before)
		smmu_sync(); /* the RESUMEs (and the TLBIs the handler queued) in one batch */
	return n;
}

unsigned smmu_poll(void)
{
	uint64_t girqs = cpus[0].irq_count[VMIG_VEC_SMMU_GERROR];

	if (girqs != smmu.gerror_irqs_seen) {
		smmu.gerror_irqs_seen = girqs;
		smmu_gerror_handle();
	}
	if (smmu.hold_events)
		return 0;
	return events_hint() ? events_drain() : 0;
}

/* ---- bring-up ------------------------------------------------------------------------- */

static uint64_t msi_address(void)
{
	return VMIG_MSI_WINDOW | ((uint64_t)cpus[0].apic_id << 12);
}

static bool irqs_setup(void)
{
	smmu_write32(R_IRQ_CTRL, 0);
	if (!wait_reg(R_IRQ_CTRLACK, 0xFFFFFFFFu, 0))
		return false;
	smmu_write64(R_GERROR_IRQ_CFG0, msi_address());
	smmu_write32(R_GERROR_IRQ_CFG1, VMIG_VEC_SMMU_GERROR);
	smmu_write32(R_GERROR_IRQ_CFG2, 0);
	smmu_write64(R_EVTQ_IRQ_CFG0, msi_address());
	smmu_write32(R_EVTQ_IRQ_CFG1, VMIG_VEC_SMMU_EVTQ);
	smmu_write32(R_EVTQ_IRQ_CFG2, 0);
	smmu_write32(R_IRQ_CTRL, IRQ_GERROR | IRQ_EVTQ);
	return wait_reg(R_IRQ_CTRLACK, 0xFFFFFFFFu, IRQ_GERROR | IRQ_EVTQ);
}

static bool init_fail(const char *what)
{
	struct line l = {.len = 0};

	line_str(&l, "ERROR smmu: ");
	line_str(&l, what);
	line_flush(&l);
	return false;
}

static bool cmdq_setup(void)
{
	smmu.cmdq_log2 = MIN((unsigned)CMDQ_LOG2, bits(smmu.idr[1], 21, 5));
	smmu.cmdq_prod = 0;
	smmu.batch = 0;
	smmu_write64(R_CMDQ_BASE, pa(cmdq) | Q_BASE_RWA | smmu.cmdq_log2);
	smmu_write32(R_CMDQ_PROD, 0);
	smmu_write32(R_CMDQ_CONS, 0);
	return cr0_set(CR0_CMDQEN);
}

bool smmu_init(enum smmu_strtab_fmt fmt)
{
	if (fmt == SMMU_STRTAB_2LVL && !smmu.two_level_st)
		return init_fail("2-level stream table not supported");
	if (!cr0_set(0))
		return init_fail("CR0ACK does not follow CR0");
	smmu_write32(R_GBPA, GBPA_ABORT | GBPA_UPDATE);
	if (!wait_reg(R_GBPA, GBPA_UPDATE, 0))
		return init_fail("GBPA update never completes");
	smmu_write32(R_CR1, CR1_WB_ISH);
	smmu_write32(R_CR2, CR2_RECINVSID | CR2_PTM);
	smmu.gerrorn = smmu_read32(R_GERROR);
	smmu_write32(R_GERRORN, smmu.gerrorn); /* nothing carried over from before */
	strtab_setup(fmt);
	if (!cmdq_setup())
		return init_fail("command queue does not enable");
	smmu_cmd(CMD_CFGI_STE_RANGE, 31); /* CFGI_ALL: Range 31 */
	smmu_cmd(CMD_TLBI_NSNH_ALL, 0);
	if (!smmu_sync())
		return init_fail("CMD_SYNC does not complete");
	evtq_setup(EVTQ_LOG2);
	if (!cr0_set(CR0_CMDQEN | CR0_EVENTQEN))
		return init_fail("event queue does not enable");
	smmu.evtq_irqs_seen = cpus[0].irq_count[VMIG_VEC_SMMU_EVTQ];
	smmu.gerror_irqs_seen = cpus[0].irq_count[VMIG_VEC_SMMU_GERROR];
	if (!irqs_setup())
		return init_fail("IRQ_CTRLACK does not follow IRQ_CTRL");
	if (!cr0_set(CR0_CMDQEN | CR0_EVENTQEN | CR0_SMMUEN))
		return init_fail("SMMUEN does not enable");
	return true;
}

/* ---- hostile-test helpers: point a queue or the stream table somewhere else ------------ */

/* Re-creates the command queue at base (0: the driver's own), CMDQEN cycled. */
void smmu_cmdq_rebase(uint64_t base)
{
	uint32_t cr0 = smmu_read32(R_CR0);

	cr0_set(cr0 & ~CR0_CMDQEN);
	smmu_write64(R_CMDQ_BASE, (base ? base : pa(cmdq)) | Q_BASE_RWA | smmu.cmdq_log2);
	smmu_write32(R_CMDQ_PROD, 0);
	smmu_write32(R_CMDQ_CONS, 0);
	smmu.cmdq_prod = 0;
	smmu.batch = 0;
	cr0_set(cr0);
}

/* Re-creates the event queue at base (0: the driver's own), EVENTQEN cycled. */
void smmu_evtq_rebase(uint64_t base)
{
	uint32_t cr0 = smmu_read32(R_CR0);

	cr0_set(cr0 & ~CR0_EVENTQEN);
	if (base) {
		smmu_write64(R_EVTQ_BASE, base | Q_BASE_RWA | smmu.evtq_log2);
		smmu_write32(R_EVTQ_PROD, 0);
		smmu_write32(R_EVTQ_CONS, 0);
		smmu.evtq_cons = smmu.evtq_cons_published = 0;
	} else {
		evtq_setup(EVTQ_LOG2);
	}
	cr0_set(cr0);
}

/* Moves the stream table base (0: the driver's own) with SMMUEN off meanwhile. */
void smmu_strtab_rebase(uint64_t base)
{
	uint32_t cr0 = smmu_read32(R_CR0);
	uint64_t own = smmu.st_fmt == SMMU_STRTAB_LINEAR ? pa(st_linear) : pa(st_l1);

	cr0_set(cr0 & ~CR0_SMMUEN);
	smmu_write64(R_STRTAB_BASE, (base ? base : own) | STRTAB_RA);
	cr0_set(cr0);
}
