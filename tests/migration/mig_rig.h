/* SPDX-License-Identifier: Apache-2.0 */
/* The migration test harness: source and destination VMs in one process (mig_rig.c). */
#ifndef VMIG_TESTS_MIGRATION_MIG_RIG_H
#define VMIG_TESTS_MIGRATION_MIG_RIG_H

#include <pthread.h>

#include "../vmm/sys_util.h"
#include "vmm/migration/migration.h"

#define RIG_WAIT_MS 60000

extern const char *rig_image; /* the guest firmware (argv[1]) */

struct rig_case {
	const char *uri;
	unsigned channels; /* multifd channels; 0: RAM on the main channel */
	uint64_t mem;
	unsigned vcpus;
	enum vm_dirty_mode src_dirty, dst_dirty;
	const char *guest_args; /* cpus= is added */
	unsigned delay_ms;	/* after the guest starts dirtying, before migrate */
};

struct rig_side {
	struct sys_vm vm;
	struct migration *mig;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done; /* destination: 1 running, -1 failed */
	unsigned pass_events;
	char last_event[128];
};

struct rig {
	struct rig_case c;
	struct rig_side src, dst;
};

void rig_source_create(struct rig *r, const struct rig_case *c);
void rig_dest_create(struct rig *r);
void rig_set_channels(struct migration *mig, unsigned channels);
void rig_start(struct rig *r);
bool rig_status_final(enum mig_status s);
enum mig_status rig_wait_final(struct migration *mig, struct mig_info *info, int timeout_ms);
int rig_wait_incoming(struct rig *r, int timeout_ms);
/* The guest ends with status 0 and its verify found every page and register intact. */
void rig_expect_guest_ok(struct sys_vm *vm);
void rig_destroy_side(struct rig_side *s);
/* Destination, start, completed on both sides. */
void rig_migrate_ok(struct rig *r, struct mig_info *info);
/* Source, migrate, source gone, destination verifies. */
void rig_run_case(const struct rig_case *c);
const char *rig_tcp_uri(char *buf, size_t len);
/* m runs: saves it to path (a file: migration; m ends paused). 0 or -1. */
int rig_save_file(struct machine *m, const char *path);
/* The whole file, with 4 KiB of slack at the end (free()). */
uint8_t *rig_read_file(const char *path, size_t *len);
/* m never ran: loads path into it; on success m runs. 0, or -1 with the reason in err. */
int rig_load_file(struct machine *m, const char *path, char *err, size_t errlen);

#endif
