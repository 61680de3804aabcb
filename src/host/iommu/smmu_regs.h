/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SMMUv3 formats: one table of (shift, width) per register / descriptor word.
 * Use F_GET(v, STE2_S2T0SZ), F_SET(v, CD0_ASID, asid), F_MASK(PTE_OA).
 * Positions from ../shared/reference/smmuv3.md.
 */
#ifndef VMIG_HOST_IOMMU_SMMU_REGS_H
#define VMIG_HOST_IOMMU_SMMU_REGS_H

#include "common/util.h"

#define F_GET(v, f)	   F_GET_(v, f)
#define F_GET_(v, s, w)	   FIELD_GET(v, s, w)
#define F_SET(v, f, x)	   F_SET_(v, f, x)
#define F_SET_(v, s, w, x) FIELD_SET(v, s, w, x)
#define F_MASK(f)	   F_MASK_(f)
#define F_MASK_(s, w)	   FIELD_MASK(s, w)
/* The field value x shifted into place (for building words with |). */
#define F_VAL(f, x) F_SET_(0, f, x)

/* IDR0..IDR5 */
#define IDR0_S2P	 0, 1
#define IDR0_S1P	 1, 1
#define IDR0_TTF	 2, 2
#define IDR0_COHACC	 4, 1
#define IDR0_HTTU	 6, 2
#define IDR0_ASID16	 12, 1
#define IDR0_MSI	 13, 1
#define IDR0_VMID16	 18, 1
#define IDR0_CD2L	 19, 1
#define IDR0_TTENDIAN	 21, 2
#define IDR0_STALL_MODEL 24, 2
#define IDR0_TERM_MODEL	 26, 1
#define IDR0_ST_LEVEL	 27, 2
#define IDR1_SIDSIZE	 0, 6
#define IDR1_SSIDSIZE	 6, 5
#define IDR1_PRIQS	 11, 5
#define IDR1_EVENTQS	 16, 5
#define IDR1_CMDQS	 21, 5
#define IDR3_RIL	 10, 1
#define IDR5_OAS	 0, 3
#define IDR5_GRAN4K	 4, 1
#define IDR5_STALL_MAX	 16, 16

/* STRTAB_BASE_CFG and the level-1 stream table descriptor */
#define STRTAB_CFG_LOG2SIZE 0, 6
#define STRTAB_CFG_SPLIT    6, 5
#define STRTAB_CFG_FMT	    16, 2
#define STRTAB_FMT_LINEAR   0
#define STRTAB_FMT_2LVL	    1
#define L1STD_SPAN	    0, 5
#define L1STD_L2PTR	    6, 46

/* Stream table entry, dwords 0-3 */
#define STE0_V	      0, 1
#define STE0_CFG      1, 3
#define STE0_S1FMT    4, 2
#define STE0_S1CTXPTR 6, 46
#define STE0_S1CDMAX  59, 5
#define STE1_S1DSS    0, 2
#define STE1_S1CIR    2, 2
#define STE1_S1COR    4, 2
#define STE1_S1CSH    6, 2
#define STE1_MEV      19, 1
#define STE1_S2FWB    25, 1
#define STE1_S1STALLD 27, 1
#define STE1_EATS     28, 2
#define STE1_STRW     30, 2
#define STE1_SHCFG    44, 2
#define STE2_S2VMID   0, 16
#define STE2_S2T0SZ   32, 6
#define STE2_S2SL0    38, 2
#define STE2_S2IR0    40, 2
#define STE2_S2OR0    42, 2
#define STE2_S2SH0    44, 2
#define STE2_S2TG     46, 2
#define STE2_S2PS     48, 3
#define STE2_S2AA64   51, 1
#define STE2_S2ENDI   52, 1
#define STE2_S2AFFD   53, 1
#define STE2_S2PTW    54, 1
#define STE2_S2HD     55, 1
#define STE2_S2HA     56, 1
#define STE2_S2S      57, 1
#define STE2_S2R      58, 1
#define STE3_S2TTB    4, 48

#define STE_CFG_ABORT	    0 /* 0b0xx */
#define STE_CFG_BYPASS	    4
#define STE_CFG_S1	    5
#define STE_CFG_S2	    6
#define STE_CFG_NESTED	    7
#define STE_S1FMT_LINEAR    0
#define STE_S1FMT_2L4K	    1
#define STE_S1FMT_2L64K	    2
#define STE_S1DSS_TERMINATE 0
#define STE_S1DSS_BYPASS    1
#define STE_S1DSS_SSID0	    2

/* Context descriptor, dwords 0-3; level-1 CD descriptor */
#define CD0_T0SZ   0, 6
#define CD0_TG0	   6, 2
#define CD0_IR0	   8, 2
#define CD0_OR0	   10, 2
#define CD0_SH0	   12, 2
#define CD0_EPD0   14, 1
#define CD0_ENDI   15, 1
#define CD0_T1SZ   16, 6
#define CD0_TG1	   22, 2
#define CD0_EPD1   30, 1
#define CD0_V	   31, 1
#define CD0_IPS	   32, 3
#define CD0_AFFD   35, 1
#define CD0_WXN	   36, 1
#define CD0_UWXN   37, 1
#define CD0_TBI	   38, 2
#define CD0_PAN	   40, 1
#define CD0_AA64   41, 1
#define CD0_HD	   42, 1
#define CD0_HA	   43, 1
#define CD0_S	   44, 1
#define CD0_R	   45, 1
#define CD0_A	   46, 1
#define CD0_ASET   47, 1
#define CD0_ASID   48, 16
#define CD1_TTB0   4, 48
#define L1CD_V	   0, 1
#define L1CD_L2PTR 12, 40

/* Commands */
#define CMD0_OP	     0, 8
#define CMD0_SSEC    10, 1
#define CMD0_SSV     11, 1
#define CMD0_SSID    12, 20
#define CMD0_SID     32, 32
#define CMD0_VMID    32, 16
#define CMD0_ASID    48, 16
#define CMD0_NUM     12, 5
#define CMD0_SCALE   20, 5
#define CMD0_RESP    12, 2
#define CMD0_SYNC_CS 12, 2
#define CMD0_MSIDATA 32, 32
#define CMD1_LEAF    0, 1
#define CMD1_TTL     8, 2
#define CMD1_TG	     10, 2
#define CMD1_ADDR    12, 52
#define CMD1_RANGE   0, 5
#define CMD1_STAG    0, 16
#define CMD1_MSIADDR 2, 50

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
#define CMD_TLBI_S2_IPA	    0x2a
#define CMD_TLBI_NSNH_ALL   0x30
#define CMD_ATC_INV	    0x40
#define CMD_PRI_RESP	    0x41
#define CMD_RESUME	    0x44
#define CMD_STALL_TERM	    0x45
#define CMD_SYNC	    0x46

#define CMD_RESUME_TERM	 0
#define CMD_RESUME_RETRY 1
#define CMD_RESUME_ABORT 2

#define CERROR_NONE 0
#define CERROR_ILL  1
#define CERROR_ABT  2

/* Events */
#define EVT0_ID	   0, 8
#define EVT0_SSV   11, 1
#define EVT0_SSID  12, 20
#define EVT0_SID   32, 32
#define EVT1_STAG  0, 16
#define EVT1_STALL 31, 1
#define EVT1_PNU   33, 1
#define EVT1_IND   34, 1
#define EVT1_RNW   35, 1
#define EVT1_S2	   39, 1
#define EVT1_CLASS 40, 2
#define EVT1_TTRNW 44, 1
#define EVT3_IPA   12, 40

#define EVT_F_UUT	       0x01
#define EVT_C_BAD_STREAMID     0x02
#define EVT_F_STE_FETCH	       0x03
#define EVT_C_BAD_STE	       0x04
#define EVT_F_STREAM_DISABLED  0x06
#define EVT_F_TRANSL_FORBIDDEN 0x07
#define EVT_C_BAD_SUBSTREAMID  0x08
#define EVT_F_CD_FETCH	       0x09
#define EVT_C_BAD_CD	       0x0a
#define EVT_F_WALK_EABT	       0x0b
#define EVT_F_TRANSLATION      0x10
#define EVT_F_ADDR_SIZE	       0x11
#define EVT_F_ACCESS	       0x12
#define EVT_F_PERMISSION       0x13

#define EVT_CLASS_CD 0
#define EVT_CLASS_TT 1
#define EVT_CLASS_IN 2

/* VMSAv8-64 descriptors, 4 KiB granule */
#define PTE_TYPE    0, 2
#define PTE_OA	    12, 36 /* [47:12] */
#define PTE_AP1	    6, 1
#define PTE_AP2	    7, 1 /* stage 1: read-only */
#define PTE_S2AP_R  6, 1
#define PTE_S2AP_W  7, 1
#define PTE_SH	    8, 2
#define PTE_AF	    10, 1
#define PTE_NG	    11, 1
#define PTE_DBM	    51, 1
#define PTE_CONTIG  52, 1
#define PTE_XN	    54, 1
#define PTE_APTABLE 61, 2

#define PTE_TYPE_BLOCK 1
#define PTE_TYPE_TABLE 3 /* or page at level 3 */

#define PTE_BIT_AP2    (1ull << 7)
#define PTE_BIT_S2AP_R (1ull << 6)
#define PTE_BIT_S2AP_W (1ull << 7)
#define PTE_BIT_AF     (1ull << 10)
#define PTE_BIT_DBM    (1ull << 51)
#define PTE_OA_MASK    F_MASK(PTE_OA)

#endif
