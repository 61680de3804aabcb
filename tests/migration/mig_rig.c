// SPDX-License-Identifier: Apache-2.0
/*
 * The migration test harness (the shape of QEMU's migration tests): a source VM running the
 * real guest firmware, a fresh destination VM, both in this process, one migration between
 * them, with hooks for the moment after start and an expected outcome. "Success" means more
 * than a completed status: the guest finishes on the destination and its own verify found
 * every page it owns intact (mismatches=0, sse_bad=0).
 */
#include "mig_rig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/util.h"
#include "vmig/guest_abi.h"

const char *rig_image;

static void rig_event(void *opaque, const char *name, const char *data)
{
	struct rig_side *s = opaque;

	pthread_mutex_lock(&s->lock);
	if (strcmp(name, "MIGRATION_PASS") == 0)
		s->pass_events++;
	else
		snprintf(s->last_event, sizeof(s->last_event), "%s", data);
	pthread_mutex_unlock(&s->lock);
}

static void rig_incoming_done(void *opaque, bool ok)
{
	struct rig_side *s = opaque;

	pthread_mutex_lock(&s->lock);
	s->done = ok ? 1 : -1;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static void rig_side_init(struct rig_side *s)
{
	s->done = 0; /* a side is reused: a cancelled destination left -1 */
	s->pass_events = 0;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	struct mig_hooks h = {.event = rig_event, .incoming_done = rig_incoming_done, .opaque = s};
	assert_int_equal(migration_create(s->vm.m, &h, &s->mig), 0);
}

void rig_source_create(struct rig *r, const struct rig_case *c)
{
	char cmd[512];

	memset(r, 0, sizeof(*r));
	r->c = *c;
	snprintf(cmd, sizeof(cmd), "cpus=%u %s", c->vcpus, c->guest_args);
	sys_vm_create(&r->src.vm, rig_image, c->mem, c->vcpus, c->src_dirty, cmd);
	rig_side_init(&r->src);
	assert_int_equal(machine_start(r->src.vm.m), 0);
	assert_int_equal(machine_wait_mark(r->src.vm.m, VMIG_MARK_DIRTY, RIG_WAIT_MS), 0);
}

void rig_dest_create(struct rig *r)
{
	char err[256] = "";

	sys_vm_create_mode(&r->dst.vm, r->c.mem, r->c.vcpus, r->c.dst_dirty);
	rig_side_init(&r->dst);
	int ret = migration_incoming(r->dst.mig, r->c.uri, err, sizeof(err));
	if (ret < 0)
		fail_msg("incoming %s: %s", r->c.uri, err);
}

void rig_set_channels(struct migration *mig, unsigned channels)
{
	char err[256];
	struct mig_params p = {.multifd_channels = channels ? channels : 1};

	assert_int_equal(migration_set_cap(mig, MIG_CAP_MULTIFD, channels > 0, err, sizeof(err)),
			 0);
	assert_int_equal(
	    migration_set_params(mig, &p, MIG_PARAM_MULTIFD_CHANNELS, err, sizeof(err)), 0);
}

void rig_start(struct rig *r)
{
	char err[256] = "";

	rig_set_channels(r->src.mig, r->c.channels);
	if (migration_start(r->src.mig, r->c.uri, err, sizeof(err)) < 0)
		fail_msg("migrate %s: %s", r->c.uri, err);
}

static uint64_t rig_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

bool rig_status_final(enum mig_status s)
{
	return s == MIG_STATUS_COMPLETED || s == MIG_STATUS_FAILED || s == MIG_STATUS_CANCELLED;
}

enum mig_status rig_wait_final(struct migration *mig, struct mig_info *info, int timeout_ms)
{
	uint64_t end = rig_ms() + (uint64_t)timeout_ms;

	for (;;) {
		migration_query(mig, info);
		if (rig_status_final(info->status) || rig_ms() > end)
			return info->status;
		usleep(20000);
	}
}

/* Destination: waits for incoming_done. */
int rig_wait_incoming(struct rig *r, int timeout_ms)
{
	uint64_t end = rig_ms() + (uint64_t)timeout_ms;

	pthread_mutex_lock(&r->dst.lock);
	while (!r->dst.done && rig_ms() < end) {
		pthread_mutex_unlock(&r->dst.lock);
		usleep(10000);
		pthread_mutex_lock(&r->dst.lock);
	}
	int done = r->dst.done;
	pthread_mutex_unlock(&r->dst.lock);
	return done;
}

/*
 * Exit status 0 is the guest's own verdict (every step passed). A console line the guest
 * was printing at the switchover starts on the source and ends here, so the verify line
 * is matched by its tail.
 */
void rig_expect_guest_ok(struct sys_vm *vm)
{
	assert_int_equal(machine_wait(vm->m, RIG_WAIT_MS), 0);
	assert_true(sys_console_line_has(vm, "load=verify", "mismatches=0"));
	assert_true(sys_console_line_has(vm, "load=verify", "sse_bad=0"));
}

void rig_destroy_side(struct rig_side *s)
{
	migration_destroy(s->mig);
	s->mig = NULL;
	if (s->vm.m)
		sys_vm_destroy(&s->vm);
	s->vm.m = NULL;
}

void rig_migrate_ok(struct rig *r, struct mig_info *info)
{
	rig_dest_create(r);
	rig_start(r);
	enum mig_status st = rig_wait_final(r->src.mig, info, RIG_WAIT_MS);
	if (st != MIG_STATUS_COMPLETED)
		fail_msg("migration ended %s: %s", migration_status_name(st), info->error_desc);
	assert_int_equal(rig_wait_incoming(r, RIG_WAIT_MS), 1);
	assert_true(migration_source_done(r->src.mig));
	printf("migrated: %llu ms (setup %llu ms), %llu passes, downtime %llu us, %llu bytes, "
	       "%llu zero, %llu skipped\n",
	       (unsigned long long)info->total_time_ms, (unsigned long long)info->setup_time_ms,
	       (unsigned long long)info->passes, (unsigned long long)info->downtime_us,
	       (unsigned long long)info->ram.transferred, (unsigned long long)info->ram.duplicate,
	       (unsigned long long)info->ram.skipped_pages);
}

void rig_run_case(const struct rig_case *c)
{
	struct rig r;
	struct mig_info info;

	rig_source_create(&r, c);
	usleep(c->delay_ms * 1000);
	rig_migrate_ok(&r, &info);
	rig_destroy_side(&r.src);
	rig_expect_guest_ok(&r.dst.vm);
	rig_destroy_side(&r.dst);
}

static int rig_port = 0;

const char *rig_tcp_uri(char *buf, size_t len)
{
	if (!rig_port)
		rig_port = 20000 + (getpid() % 20000);
	snprintf(buf, len, "tcp:127.0.0.1:%d", rig_port++);
	return buf;
}

int rig_save_file(struct machine *m, const char *path)
{
	struct migration *mig = NULL;
	struct mig_info info;
	char uri[256], err[256];

	snprintf(uri, sizeof(uri), "file:%s", path);
	if (migration_create(m, NULL, &mig) < 0)
		return -1;
	int ret = migration_start(mig, uri, err, sizeof(err));
	if (ret == 0 && rig_wait_final(mig, &info, RIG_WAIT_MS) != MIG_STATUS_COMPLETED)
		ret = -1;
	migration_destroy(mig);
	return ret;
}

static void rig_load_done(void *opaque, bool ok)
{
	__atomic_store_n((int *)opaque, ok ? 1 : -1, __ATOMIC_RELEASE);
}

int rig_load_file(struct machine *m, const char *path, char *err, size_t errlen)
{
	struct migration *mig = NULL;
	struct mig_info info;
	char uri[256];
	int done = 0;
	struct mig_hooks h = {.incoming_done = rig_load_done, .opaque = &done};

	snprintf(uri, sizeof(uri), "file:%s", path);
	int ret = migration_create(m, &h, &mig);
	if (ret == 0)
		ret = migration_incoming(mig, uri, err, errlen);
	for (int i = 0; ret == 0 && !__atomic_load_n(&done, __ATOMIC_ACQUIRE) && i < 6000; i++)
		usleep(10000);
	if (ret == 0) {
		migration_query(mig, &info);
		snprintf(err, errlen, "%s", info.error_desc);
		ret = __atomic_load_n(&done, __ATOMIC_ACQUIRE) == 1 ? 0 : -1;
	}
	migration_destroy(mig);
	return ret;
}

uint8_t *rig_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	rewind(f);
	uint8_t *buf = malloc(*len + 4096); /* room to grow for mutations */
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, *len, f), *len);
	fclose(f);
	return buf;
}
