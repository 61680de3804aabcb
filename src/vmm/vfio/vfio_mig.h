/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A VFIO device's migration section: the device's own state through the VFIO migration v2
 * protocol (host/vfio.h), as MIGRATION.md's switchover orders it.
 *
 *   source: setup PRE_COPY (or stays RUNNING without pre-copy); every pass sends the
 *           pre-copy data there is; the device's initial bytes must have gone before the
 *           switchover; quiesce PRE_COPY_P2P (RUNNING_P2P) while the vCPUs still run; stop
 *           STOP_COPY once they stopped; save_complete reads the data to EOF; a failure
 *           before COMMIT takes the device back to RUNNING (the guest's DMA goes on).
 *   destination: RESUMING at load setup, data written as it arrives, STOP after END (the
 *           driver validates the whole stream), RUNNING on COMMIT.
 */
#ifndef VMIG_VMM_VFIO_VFIO_MIG_H
#define VMIG_VMM_VFIO_VFIO_MIG_H

struct migration;
struct vfio_dev;

/*
 * Joins mig as device `index` (0..7; its section id is MIG_SEC_VFIO + index). The section
 * state is freed by vfio_dev_destroy's caller through vfio_dev_mig_free().
 */
struct vfio_dev_mig;
int vfio_dev_mig_register(struct migration *mig, struct vfio_dev *d, unsigned index,
			  struct vfio_dev_mig **out);
void vfio_dev_mig_free(struct vfio_dev_mig *vm);

#endif
