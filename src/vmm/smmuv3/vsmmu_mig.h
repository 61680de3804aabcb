/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The vSMMU's migration section: its registers and queue state travel in the stop-copy
 * (guest tables and queues are guest RAM and travel as RAM); the destination loads them
 * after every check passed, then post_load re-installs the host nested configuration of
 * every attached stream before any device runs (MIGRATION.md, "vIOMMU and faults in
 * flight").
 */
#ifndef VMIG_VMM_SMMUV3_VSMMU_MIG_H
#define VMIG_VMM_SMMUV3_VSMMU_MIG_H

struct migration;
struct vsmmu;
struct vsmmu_mig;

int vsmmu_mig_register(struct migration *mig, struct vsmmu *vs, struct vsmmu_mig **out);
void vsmmu_mig_free(struct vsmmu_mig *m);

#endif
