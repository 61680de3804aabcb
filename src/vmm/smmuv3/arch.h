/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SMMUv3 architectural formats the vSMMU emulates: register offsets, register fields, stream
 * table entries, context descriptors, commands and event records. Every field is one
 * (shift, width) pair, used with FIELD_GET/FIELD_SET from common/util.h, so each format is
 * decoded in one place. Source: ../shared/reference/smmuv3.md.
 *
 * Tests and drivers may include this header: it holds no emulator state.
 */
#ifndef VMIG_VMM_SMMUV3_ARCH_H
#define VMIG_VMM_SMMUV3_ARCH_H

#include "common/util.h"

/*
 * Field accessors taking one (shift, width) name: the pair is expanded before FIELD_GET and
 * friends see it. FGET(ste[0], STE0_CONFIG).
 */
#define ARCH_EXPAND_(m, ...) m(__VA_ARGS__)
#define FGET(v, f)	     ARCH_EXPAND_(FIELD_GET, v, f)
#define FSET(v, f, x)	     ARCH_EXPAND_(FIELD_SET, v, f, x)
#define FMASK(f)	     ARCH_EXPAND_(FIELD_MASK, f)

/* Register offsets ------------------------------------------------------------------------ */

#define SMMU_PAGE_SIZE 0x10000u
#define SMMU_MMIO_SIZE 0x20000u

#define SMMU_IDR0	     0x00
#define SMMU_IDR1	     0x04
#define SMMU_IDR2	     0x08
#define SMMU_IDR3	     0x0C
#define SMMU_IDR4	     0x10
#define SMMU_IDR5	     0x14
#define SMMU_IIDR	     0x18
#define SMMU_AIDR	     0x1C
#define SMMU_CR0	     0x20
#define SMMU_CR0ACK	     0x24
#define SMMU_CR1	     0x28
#define SMMU_CR2	     0x2C
#define SMMU_STATUSR	     0x40
#define SMMU_GBPA	     0x44
#define SMMU_AGBPA	     0x48
#define SMMU_IRQ_CTRL	     0x50
#define SMMU_IRQ_CTRLACK     0x54
#define SMMU_GERROR	     0x60
#define SMMU_GERRORN	     0x64
#define SMMU_GERROR_IRQ_CFG0 0x68
#define SMMU_GERROR_IRQ_CFG1 0x70
#define SMMU_GERROR_IRQ_CFG2 0x74
#define SMMU_STRTAB_BASE     0x80
#define SMMU_STRTAB_BASE_CFG 0x88
#define SMMU_CMDQ_BASE	     0x90
#define SMMU_CMDQ_PROD	     0x98
#define SMMU_CMDQ_CONS	     0x9C
#define SMMU_EVENTQ_BASE     0xA0
#define SMMU_EVENTQ_PROD_P0  0xA8 /* page-0 alias (some drivers use page 0 only) */
#define SMMU_EVENTQ_CONS_P0  0xAC
#define SMMU_EVENTQ_IRQ_CFG0 0xB0
#define SMMU_EVENTQ_IRQ_CFG1 0xB8
#define SMMU_EVENTQ_IRQ_CFG2 0xBC
#define SMMU_PRIQ_BASE	     0xC0
#define SMMU_PRIQ_PROD_P0    0xC8
#define SMMU_PRIQ_CONS_P0    0xCC
#define SMMU_PRIQ_IRQ_CFG0   0xD0
#define SMMU_PRIQ_IRQ_CFG1   0xD8
#define SMMU_PRIQ_IRQ_CFG2   0xDC
#define SMMU_EVENTQ_PROD     0x100A8
#define SMMU_EVENTQ_CONS     0x100AC
#define SMMU_PRIQ_PROD	     0x100C8
#define SMMU_PRIQ_CONS	     0x100CC

/* Register fields: (shift, width) ---------------------------------------------------------- */

#define IDR0_S1P	 1, 1
#define IDR0_TTF	 2, 2
#define IDR0_COHACC	 4, 1
#define IDR0_BTM	 5, 1
#define IDR0_HTTU	 6, 2
#define IDR0_ATS	 10, 1
#define IDR0_ASID16	 12, 1
#define IDR0_MSI	 13, 1
#define IDR0_SEV	 14, 1
#define IDR0_PRI	 16, 1
#define IDR0_CD2L	 19, 1
#define IDR0_TTENDIAN	 21, 2
#define IDR0_STALL_MODEL 24, 2
#define IDR0_TERM_MODEL	 26, 1
#define IDR0_ST_LEVEL	 27, 2

#define IDR1_SIDSIZE  0, 6
#define IDR1_SSIDSIZE 6, 5
#define IDR1_PRIQS    11, 5
#define IDR1_EVENTQS  16, 5
#define IDR1_CMDQS    21, 5

#define IDR3_RIL 10, 1

#define IDR5_OAS       0, 3
#define IDR5_GRAN4K    4, 1
#define IDR5_GRAN16K   5, 1
#define IDR5_GRAN64K   6, 1
#define IDR5_VAX       10, 2
#define IDR5_STALL_MAX 16, 16

#define CR0_SMMUEN   0, 1
#define CR0_PRIQEN   1, 1
#define CR0_EVENTQEN 2, 1
#define CR0_CMDQEN   3, 1
#define CR0_ATSCHK   4, 1

#define CR1_QUEUE_IC 0, 2
#define CR1_QUEUE_OC 2, 2
#define CR1_QUEUE_SH 4, 2
#define CR1_TABLE_IC 6, 2
#define CR1_TABLE_OC 8, 2
#define CR1_TABLE_SH 10, 2

#define CR2_E2H	      0, 1
#define CR2_RECINVSID 1, 1
#define CR2_PTM	      2, 1

#define GBPA_MEMATTR  0, 4
#define GBPA_MTCFG    4, 1
#define GBPA_ALLOCCFG 8, 4
#define GBPA_SHCFG    12, 2
#define GBPA_PRIVCFG  16, 2
#define GBPA_INSTCFG  18, 2
#define GBPA_ABORT    20, 1
#define GBPA_UPDATE   31, 1

#define IRQ_CTRL_GERROR_IRQEN 0, 1
#define IRQ_CTRL_PRIQ_IRQEN   1, 1
#define IRQ_CTRL_EVENTQ_IRQEN 2, 1

/* GERROR / GERRORN bits (bit numbers). */
#define GERROR_CMDQ_ERR	      0
#define GERROR_EVENTQ_ABT     2
#define GERROR_PRIQ_ABT	      3
#define GERROR_MSI_CMDQ_ABT   4
#define GERROR_MSI_EVENTQ_ABT 5
#define GERROR_MSI_PRIQ_ABT   6
#define GERROR_MSI_GERROR_ABT 7
#define GERROR_SFM_ERR	      8

#define IRQ_CFG0_ADDR	 2, 50
#define IRQ_CFG2_MEMATTR 0, 4
#define IRQ_CFG2_SH	 4, 2

#define STRTAB_BASE_ADDR    6, 46
#define STRTAB_BASE_RA	    62, 1
#define STRTAB_CFG_LOG2SIZE 0, 6
#define STRTAB_CFG_SPLIT    6, 5
#define STRTAB_CFG_FMT	    16, 2
#define STRTAB_FMT_LINEAR   0
#define STRTAB_FMT_2LVL	    1

/* CMDQ_BASE, EVENTQ_BASE, PRIQ_BASE. */
#define Q_BASE_LOG2SIZE 0, 5
#define Q_BASE_ADDR	5, 47
#define Q_BASE_WA	62, 1 /* EVENTQ/PRIQ: write-allocate hint */
#define Q_BASE_RA	62, 1 /* CMDQ: read-allocate hint */
#define Q_CONS_ERR	24, 7
#define Q_PROD_OVFLG	31, 1
#define Q_CONS_OVACKFLG 31, 1

#define CMDQ_ERR_NONE	  0
#define CMDQ_ERR_ILL	  1
#define CMDQ_ERR_ABT	  2
#define CMDQ_ERR_ATC_SYNC 3

/* Stream table --------------------------------------------------------------------------- */

#define STE_SIZE	    64u
#define STE_DWORDS	    8
#define STRTAB_L1_DESC_SIZE 8u
#define STRTAB_L1_SPAN	    0, 5
#define STRTAB_L1_L2PTR	    6, 46

/* dword 0 */
#define STE0_V	      0, 1
#define STE0_CONFIG   1, 3
#define STE0_S1FMT    4, 2
#define STE0_S1CTXPTR 6, 46
#define STE0_S1CDMAX  59, 5
/* dword 1 */
#define STE1_S1DSS    0, 2
#define STE1_S1CIR    2, 2
#define STE1_S1COR    4, 2
#define STE1_S1CSH    6, 2
#define STE1_S1STALLD 27, 1
#define STE1_EATS     28, 2

#define STE_CFG_ABORT  0 /* 0b0xx */
#define STE_CFG_BYPASS 4
#define STE_CFG_S1     5
#define STE_CFG_S2     6
#define STE_CFG_NESTED 7

#define STE_S1FMT_LINEAR 0
#define STE_S1FMT_64K_L2 2 /* 2-level, 64 KiB leaves of 1024 CDs */

#define STE_S1DSS_TERMINATE 0
#define STE_S1DSS_BYPASS    1
#define STE_S1DSS_SSID0	    2

/* Fields a guest may set in a nested vSTE (linux-uapi §3); the rest reach the host as 0. */
#define STE0_GUEST_MASK                                                                            \
	(FMASK(STE0_V) | FMASK(STE0_CONFIG) | FMASK(STE0_S1FMT) | FMASK(STE0_S1CTXPTR) |           \
	 FMASK(STE0_S1CDMAX))
#define STE1_GUEST_MASK                                                                            \
	(FMASK(STE1_S1DSS) | FMASK(STE1_S1CIR) | FMASK(STE1_S1COR) | FMASK(STE1_S1CSH) |           \
	 FMASK(STE1_S1STALLD) | FMASK(STE1_EATS))

/* Context descriptors -------------------------------------------------------------------- */

#define CD_SIZE		64u
#define CD_DWORDS	8
#define CD_L1_DESC_SIZE 8u
#define CD_L2_SPLIT	10 /* 64 KiB leaves: 1024 CDs */
#define CD_L1_V		0, 1
#define CD_L1_L2PTR	12, 40

#define CD0_T0SZ 0, 6
#define CD0_TG0	 6, 2
#define CD0_IR0	 8, 2
#define CD0_OR0	 10, 2
#define CD0_SH0	 12, 2
#define CD0_EPD0 14, 1
#define CD0_ENDI 15, 1
#define CD0_T1SZ 16, 6
#define CD0_TG1	 22, 2
#define CD0_EPD1 30, 1
#define CD0_V	 31, 1
#define CD0_IPS	 32, 3
#define CD0_AFFD 35, 1
#define CD0_WXN	 36, 1
#define CD0_UWXN 37, 1
#define CD0_TBI	 38, 2
#define CD0_PAN	 40, 1
#define CD0_AA64 41, 1
#define CD0_HD	 42, 1
#define CD0_HA	 43, 1
#define CD0_S	 44, 1
#define CD0_R	 45, 1
#define CD0_A	 46, 1
#define CD0_ASET 47, 1
#define CD0_ASID 48, 16
#define CD1_TTB0 4, 48
#define CD2_TTB1 4, 48

/* Commands ------------------------------------------------------------------------------- */

#define CMD_SIZE 16u

#define CMD0_OP		  0, 8
#define CMD0_SSEC	  10, 1
#define CMD0_SSV	  11, 1
#define CMD0_SSID	  12, 20
#define CMD0_SID	  32, 32
#define CMD0_VMID	  32, 16
#define CMD0_ASID	  48, 16
#define CMD0_TLBI_NUM	  12, 5
#define CMD0_TLBI_SCALE	  20, 5
#define CMD0_ATC_GLOBAL	  9, 1
#define CMD0_RESUME_RESP  12, 2
#define CMD0_SYNC_CS	  12, 2
#define CMD0_SYNC_MSH	  22, 2
#define CMD0_SYNC_MSIATTR 24, 4
#define CMD0_SYNC_MSIDATA 32, 32

#define CMD1_LEAF	   0, 1
#define CMD1_RANGE	   0, 5
#define CMD1_TLBI_TTL	   8, 2
#define CMD1_TLBI_TG	   10, 2
#define CMD1_ADDR	   12, 52
#define CMD1_PREFETCH_SIZE 0, 5
#define CMD1_ATC_SIZE	   0, 6
#define CMD1_PRI_PRGIDX	   0, 9
#define CMD1_PRI_RESP	   12, 2
#define CMD1_RESUME_STAG   0, 16
#define CMD1_SYNC_MSIADDR  2, 50

#define CMD_PREFETCH_CONFIG 0x01
#define CMD_PREFETCH_ADDR   0x02
#define CMD_CFGI_STE	    0x03
#define CMD_CFGI_STE_RANGE  0x04
#define CMD_CFGI_CD	    0x05
#define CMD_CFGI_CD_ALL	    0x06
#define CMD_TLBI_NH_ALL	    0x10
#define CMD_TLBI_NH_ASID    0x11
#define CMD_TLBI_NH_VA	    0x12
#define CMD_TLBI_NH_VAA	    0x13
#define CMD_TLBI_S12_VMALL  0x28
#define CMD_TLBI_S2_IPA	    0x2A
#define CMD_TLBI_NSNH_ALL   0x30
#define CMD_ATC_INV	    0x40
#define CMD_PRI_RESP	    0x41
#define CMD_RESUME	    0x44
#define CMD_STALL_TERM	    0x45
#define CMD_SYNC	    0x46

#define CMD_SYNC_CS_NONE 0
#define CMD_SYNC_CS_IRQ	 1
#define CMD_SYNC_CS_SEV	 2

#define CMD_RESUME_TERM	 0
#define CMD_RESUME_RETRY 1
#define CMD_RESUME_ABORT 2

/* Events ---------------------------------------------------------------------------------- */

#define EVT_SIZE   32u
#define EVT_DWORDS 4

#define EVT0_ID		0, 8
#define EVT0_SSV	11, 1
#define EVT0_SSID	12, 20
#define EVT0_SID	32, 32
#define EVT1_STAG	0, 16
#define EVT1_STALL	31, 1
#define EVT1_PNU	33, 1
#define EVT1_IND	34, 1
#define EVT1_RNW	35, 1
#define EVT1_S2		39, 1
#define EVT1_CLASS	40, 2
#define EVT3_FETCH_ADDR 3, 49 /* F_STE_FETCH / F_CD_FETCH: the address that failed */
#define EVT3_IPA	12, 40

#define EVT_CLASS_CD 0
#define EVT_CLASS_TT 1
#define EVT_CLASS_IN 2

#define EVT_F_UUT	       0x01
#define EVT_C_BAD_STREAMID     0x02
#define EVT_F_STE_FETCH	       0x03
#define EVT_C_BAD_STE	       0x04
#define EVT_F_BAD_ATS_TREQ     0x05
#define EVT_F_STREAM_DISABLED  0x06
#define EVT_F_TRANSL_FORBIDDEN 0x07
#define EVT_C_BAD_SUBSTREAMID  0x08
#define EVT_F_CD_FETCH	       0x09
#define EVT_C_BAD_CD	       0x0A
#define EVT_F_WALK_EABT	       0x0B
#define EVT_F_TRANSLATION      0x10
#define EVT_F_ADDR_SIZE	       0x11
#define EVT_F_ACCESS	       0x12
#define EVT_F_PERMISSION       0x13

#endif
