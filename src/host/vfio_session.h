/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Migration data sessions (the data_fd), internal to the VFIO core (vfio.c and
 * vfio_mig_data.c). The device lock is held around every call.
 */
#ifndef VMIG_HOST_VFIO_SESSION_H
#define VMIG_HOST_VFIO_SESSION_H

#include "host/vfio_drv.h"

/* Opens a session and returns the user's end in *fd. */
int vfio_session_begin(struct vfio_device *dev, bool resuming, int *fd);
/* Ends the current session, if any: the device's end closes, the user's fd stays theirs. */
void vfio_session_end(struct vfio_device *dev);
/* True if fd is the user's end of dev's current session. */
bool vfio_session_owns_fd(struct vfio_device *dev, int fd);
/* Finds the device whose session owns fd and returns it with its lock held, or NULL. */
struct vfio_device *vfio_registry_lock_session(int fd);

#endif
