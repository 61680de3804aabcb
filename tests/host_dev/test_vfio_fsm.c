// SPDX-License-Identifier: Apache-2.0
/*
 * The migration state machine against an independent model: for every supported-feature
 * combination and every (current, requested) pair, the expected arcs are found by
 * enumerating all simple paths over the uAPI's base arcs (plus the direct arcs a device
 * without P2P uses), keeping those whose interior avoids the saving group (unless both
 * ends are in it) and that do not leave STOP_COPY for a PRE_COPY state, and taking the
 * unique shortest. Checked twice:
 * on vfio_mig_next_state() alone, and through VFIO_DEVICE_FEATURE on a recording driver
 * (arcs, data_fd, refused requests leaving the state unchanged, ERROR and reset).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "host/vfio_drv.h"

enum { ERR = 0, STOP = 1, RUN = 2, SCOPY = 3, RES = 4, P2P = 5, PRE = 6, PREP = 7, NS = 8 };

#define F_SC  VFIO_MIGRATION_STOP_COPY
#define F_P2P VFIO_MIGRATION_P2P
#define F_PRE VFIO_MIGRATION_PRE_COPY

static const uint64_t combos[] = {F_SC, F_SC | F_P2P, F_SC | F_PRE, F_SC | F_P2P | F_PRE};

/* The uAPI's base arcs (include/uapi/linux/vfio.h). */
static const int base_arcs[][2] = {
    {P2P, STOP},   {SCOPY, STOP}, {RES, STOP}, {PRE, RUN},  {P2P, RUN},
    {PREP, P2P},   {RUN, P2P},	  {STOP, P2P}, {RUN, PRE},  {P2P, PREP},
    {STOP, SCOPY}, {STOP, RES},	  {PRE, PREP}, {PREP, PRE}, {PREP, SCOPY},
};

static bool model_supported(uint64_t f, int s)
{
	switch (s) {
	case STOP:
	case RUN:
	case SCOPY:
	case RES:
		return true;
	case P2P:
		return f & F_P2P;
	case PRE:
		return f & F_PRE;
	case PREP:
		return (f & F_PRE) && (f & F_P2P);
	default:
		return false;
	}
}

static void model_arcs(uint64_t f, bool arc[NS][NS])
{
	memset(arc, 0, sizeof(bool) * NS * NS);
	for (size_t i = 0; i < sizeof(base_arcs) / sizeof(base_arcs[0]); i++) {
		int a = base_arcs[i][0], b = base_arcs[i][1];

		if (model_supported(f, a) && model_supported(f, b))
			arc[a][b] = true;
	}
	if (!(f & F_P2P)) {
		/* Without RUNNING_P2P: RUNNING <-> STOP, and PRE_COPY -> STOP_COPY directly. */
		arc[RUN][STOP] = arc[STOP][RUN] = true;
		if (f & F_PRE)
			arc[PRE][SCOPY] = true;
	}
}

static bool is_saving(int s)
{
	return s == PRE || s == PREP || s == SCOPY;
}

struct search {
	bool arc[NS][NS];
	int target;
	int path[NS], best[NS];
	int best_len, ties;
};

static void dfs(struct search *sr, int depth)
{
	int at = sr->path[depth];

	if (at == sr->target) {
		if (sr->best_len < 0 || depth < sr->best_len) {
			sr->best_len = depth;
			sr->ties = 1;
			memcpy(sr->best, sr->path, sizeof(sr->path));
		} else if (depth == sr->best_len) {
			sr->ties++;
		}
		return;
	}
	/*
	 * The saving group may start or end a path, never be inside it, unless the path
	 * starts and ends in it (PRE_COPY -> PRE_COPY_P2P -> STOP_COPY never leaves it).
	 */
	if (depth > 0 && is_saving(at) && !(is_saving(sr->path[0]) && is_saving(sr->target)))
		return;
	for (int n = 0; n < NS; n++) {
		bool seen = false;

		if (!sr->arc[at][n])
			continue;
		for (int k = 0; k <= depth; k++)
			seen |= sr->path[k] == n;
		if (!seen && depth + 1 < NS) {
			sr->path[depth + 1] = n;
			dfs(sr, depth + 1);
		}
	}
}

/* Expected arcs cur -> new: length (0 for cur == new) or -1 when the request is invalid. */
static int model_path(uint64_t f, int cur, int target, int *out)
{
	struct search sr = {.target = target, .best_len = -1};

	if (!model_supported(f, cur) || !model_supported(f, target))
		return -1;
	if (cur == SCOPY && (target == PRE || target == PREP))
		return -1;
	model_arcs(f, sr.arc);
	sr.path[0] = cur;
	dfs(&sr, 0);
	if (sr.best_len < 0)
		return -1;
	assert_int_equal(sr.ties, 1); /* the rule must determine a single path */
	memcpy(out, sr.best + 1, sizeof(int) * (size_t)sr.best_len);
	return sr.best_len;
}

static void test_next_state_all_pairs(void **state)
{
	int checked = 0;

	for (size_t c = 0; c < sizeof(combos) / sizeof(combos[0]); c++) {
		for (int cur = 0; cur < NS; cur++) {
			for (int target = 0; target < NS; target++) {
				int exp[NS], n = model_path(combos[c], cur, target, exp);
				uint32_t at = (uint32_t)cur, next;

				if (n < 0) {
					assert_int_equal(
					    vfio_mig_next_state(combos[c], at, target, &next),
					    -EINVAL);
					continue;
				}
				for (int i = 0; i < n; i++) {
					assert_int_equal(
					    vfio_mig_next_state(combos[c], at, target, &next), 0);
					assert_int_equal(next, exp[i]);
					at = next;
				}
				assert_int_equal(at, target);
				checked++;
			}
		}
	}
	/* 4+4+5+5 supported states, squared, minus the STOP_COPY -> PRE_COPY* refusals. */
	/* 4, 5, 5 and 7 supported states: all pairs but STOP_COPY -> PRE_COPY(_P2P). */
	assert_int_equal(checked, 16 + 25 + (25 - 1) + (49 - 2));
}

/* A recording driver -------------------------------------------------------------------- */

struct fake {
	struct vfio_device vdev;
	int arcs[16][2];
	int narcs;
	bool fail_resume;
	int fail_cur, fail_next; /* an arc that fails with -EIO (0, 0: none) */
};

static int fake_arc(struct vfio_device *v, uint32_t cur, uint32_t next)
{
	struct fake *f = (struct fake *)v;
	if (cur == RES && next == STOP && f->fail_resume)
		return -EINVAL;
	if ((int)cur == f->fail_cur && (int)next == f->fail_next)
		return -EIO;
	if (f->narcs < 16) {
		f->arcs[f->narcs][0] = (int)cur;
		f->arcs[f->narcs][1] = (int)next;
	}
	f->narcs++;
	return 0;
}

static ssize_t fake_rw(struct vfio_device *v, uint32_t i, uint64_t off, void *buf, size_t len,
		       bool w)
{
	return (ssize_t)len;
}

static const struct vfio_device_ops fake_ops = {.region_rw = fake_rw, .mig_arc = fake_arc};

static int set_state(struct vfio_device *d, uint32_t st, int *fd)
{
	struct {
		struct vfio_device_feature hdr;
		struct vfio_device_feature_mig_state s;
	} a = {.hdr = {.argsz = sizeof(a),
		       .flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE},
	       .s = {.device_state = st, .data_fd = 1234}};
	int ret = vfio_device_feature(d, &a.hdr);

	*fd = a.s.data_fd;
	return ret;
}

static uint32_t get_state(struct vfio_device *d)
{
	struct {
		struct vfio_device_feature hdr;
		struct vfio_device_feature_mig_state s;
	} a = {.hdr = {.argsz = sizeof(a),
		       .flags = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE}};

	assert_int_equal(vfio_device_feature(d, &a.hdr), 0);
	return a.s.device_state;
}

static bool opens_session(int cur, int next)
{
	if (next == PRE || next == PREP)
		return !is_saving(cur);
	return (next == SCOPY && cur == STOP) || next == RES;
}

/* Moves the device to cur from RUNNING (after a reset), closing any data_fd. */
static void goto_state(struct fake *f, struct vfio_device *d, int cur)
{
	int fd;

	assert_int_equal(vfio_device_reset(d), 0);
	assert_int_equal(get_state(d), RUN);
	assert_int_equal(set_state(d, (uint32_t)cur, &fd), 0);
	if (fd >= 0)
		vfio_mig_data_close(fd);
	assert_int_equal(get_state(d), cur);
	f->narcs = 0;
}

static void check_pair(struct fake *f, struct vfio_device *d, uint64_t flags, int cur, int target)
{
	int exp[NS], n = model_path(flags, cur, target, exp), fd = -2, at = cur;
	int ret;

	goto_state(f, d, cur);
	ret = set_state(d, (uint32_t)target, &fd);
	if (n < 0) {
		assert_int_equal(ret, -EINVAL);
		assert_int_equal(fd, -1);
		assert_int_equal(f->narcs, 0);
		assert_int_equal(get_state(d), cur);
		return;
	}
	assert_int_equal(ret, 0);
	assert_int_equal(f->narcs, n);
	for (int i = 0; i < n; i++) {
		assert_int_equal(f->arcs[i][0], at);
		assert_int_equal(f->arcs[i][1], exp[i]);
		at = exp[i];
	}
	assert_int_equal(get_state(d), target);
	if (n > 0 && opens_session(n > 1 ? exp[n - 2] : cur, target)) {
		assert_true(fd >= 0);
		vfio_mig_data_close(fd);
	} else {
		assert_int_equal(fd, -1);
	}
}

static void test_uapi_all_pairs(void **state)
{
	for (size_t c = 0; c < sizeof(combos) / sizeof(combos[0]); c++) {
		struct fake f = {
		    .vdev = {.ops = &fake_ops, .name = "fsm-fake", .mig_flags = combos[c]}};
		struct vfio_device *d;

		assert_int_equal(vfio_device_register(&f.vdev), 0);
		assert_int_equal(vfio_device_open("fsm-fake", &d), 0);
		for (int cur = STOP; cur < NS; cur++) {
			if (!model_supported(combos[c], cur))
				continue;
			for (int target = 0; target < NS; target++)
				check_pair(&f, d, combos[c], cur, target);
		}
		vfio_device_close(d);
		vfio_device_unregister(&f.vdev);
	}
}

static void test_error_state_and_reset(void **state)
{
	struct fake f = {
	    .vdev = {.ops = &fake_ops, .name = "fsm-err", .mig_flags = F_SC | F_P2P | F_PRE}};
	struct vfio_device *d;
	int fd;

	assert_int_equal(vfio_device_register(&f.vdev), 0);
	assert_int_equal(vfio_device_open("fsm-err", &d), 0);
	assert_int_equal(set_state(d, RES, &fd), 0);
	assert_true(fd >= 0);
	vfio_mig_data_close(fd);
	f.fail_resume = true;
	assert_int_equal(set_state(d, RUN, &fd), -EINVAL);
	assert_int_equal(get_state(d), ERR);
	for (int target = 0; target < NS; target++) {
		assert_int_equal(set_state(d, (uint32_t)target, &fd), -EINVAL);
		assert_int_equal(get_state(d), ERR);
	}
	assert_int_equal(vfio_device_reset(d), 0);
	assert_int_equal(get_state(d), RUN);
	/* Out-of-range requests. */
	assert_int_equal(set_state(d, 8, &fd), -EINVAL);
	assert_int_equal(set_state(d, 0xffffffffu, &fd), -EINVAL);
	assert_int_equal(get_state(d), RUN);
	vfio_device_close(d);
	vfio_device_unregister(&f.vdev);
}

static int count_fds(void)
{
	int n = 0;

	for (int fd = 0; fd < 1024; fd++)
		n += fcntl(fd, F_GETFD) != -1;
	return n;
}

/* A failing arc stops the combination where it is; a session it opened is gone. */
static void test_failed_arc(void **state)
{
	struct fake f = {
	    .vdev = {.ops = &fake_ops, .name = "fsm-fail", .mig_flags = F_SC | F_P2P | F_PRE},
	    .fail_cur = P2P,
	    .fail_next = STOP};
	struct vfio_device *d;
	int fd, before;

	assert_int_equal(vfio_device_register(&f.vdev), 0);
	assert_int_equal(vfio_device_open("fsm-fail", &d), 0);
	assert_int_equal(set_state(d, SCOPY, &fd), -EIO);
	assert_int_equal(fd, -1);
	assert_int_equal(get_state(d), P2P); /* the arcs before the failure happened */
	f.fail_cur = STOP;
	f.fail_next = SCOPY;
	assert_int_equal(set_state(d, STOP, &fd), 0);
	before = count_fds();
	assert_int_equal(set_state(d, SCOPY, &fd), -EIO);
	assert_int_equal(fd, -1);
	assert_int_equal(get_state(d), STOP);
	assert_int_equal(count_fds(), before); /* both ends of the session closed */
	f.fail_cur = f.fail_next = 0;
	assert_int_equal(set_state(d, SCOPY, &fd), 0);
	assert_true(fd >= 0);
	assert_int_equal(count_fds(), before + 2); /* the user end and the device end */
	vfio_mig_data_close(fd);
	vfio_device_close(d);
	vfio_device_unregister(&f.vdev);
}

static int feature(struct vfio_device *d, uint32_t flags, uint32_t argsz)
{
	struct {
		struct vfio_device_feature hdr;
		uint64_t data[4];
	} a = {.hdr = {.argsz = argsz, .flags = flags}};

	return vfio_device_feature(d, &a.hdr);
}

static void test_feature_checks(void **state)
{
	struct fake f = {.vdev = {.ops = &fake_ops, .name = "fsm-feat", .mig_flags = F_SC | F_P2P}};
	const uint32_t G = VFIO_DEVICE_FEATURE_GET, S = VFIO_DEVICE_FEATURE_SET,
		       P = VFIO_DEVICE_FEATURE_PROBE;
	struct {
		struct vfio_device_feature hdr;
		struct vfio_device_feature_migration m;
	} mig = {.hdr = {.argsz = sizeof(mig), .flags = G | VFIO_DEVICE_FEATURE_MIGRATION}};
	struct vfio_device *d;

	assert_int_equal(vfio_device_register(&f.vdev), 0);
	struct fake dup = {.vdev = {.ops = &fake_ops, .name = "fsm-feat", .mig_flags = F_SC}};

	assert_int_equal(vfio_device_register(&dup.vdev), -EEXIST);
	assert_int_equal(vfio_device_open("fsm-feat", &d), 0);
	assert_int_equal(vfio_device_open("fsm-feat", &d), -EBUSY);
	assert_int_equal(vfio_device_open("nope", &d), -ENODEV);
	d = &f.vdev;
	assert_int_equal(vfio_device_feature(d, &mig.hdr), 0);
	assert_int_equal(mig.m.flags, F_SC | F_P2P);
	/* Header checks. */
	assert_int_equal(feature(d, G | 1, 4), -EINVAL);
	assert_int_equal(feature(d, G | 1 | (1u << 20), 40), -EINVAL);
	assert_int_equal(feature(d, G | S | 1, 40), -EINVAL);
	/* Per-feature checks: wrong op, small argsz, probes. */
	assert_int_equal(feature(d, S | VFIO_DEVICE_FEATURE_MIGRATION, 40), -EINVAL);
	assert_int_equal(feature(d, G | VFIO_DEVICE_FEATURE_MIGRATION, 8 + 4), -EINVAL);
	assert_int_equal(feature(d, VFIO_DEVICE_FEATURE_MIGRATION, 40), -EINVAL);
	assert_int_equal(feature(d, P | G | VFIO_DEVICE_FEATURE_MIGRATION, 8), 0);
	assert_int_equal(feature(d, P | S | VFIO_DEVICE_FEATURE_MIGRATION, 8), -EINVAL);
	assert_int_equal(feature(d, P | G | S | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, 8), 0);
	assert_int_equal(feature(d, G | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, 8 + 4), -EINVAL);
	/* Not offered by this device: DMA logging, unknown features. */
	assert_int_equal(feature(d, P | S | VFIO_DEVICE_FEATURE_DMA_LOGGING_START, 8), -ENOTTY);
	assert_int_equal(feature(d, G | VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, 40), -ENOTTY);
	assert_int_equal(feature(d, G | 0x1234, 40), -ENOTTY);
	assert_int_equal(feature(d, G | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, 40), -ENOTTY);
	vfio_device_unregister(&f.vdev);
}

static void test_combine_ranges(void **state)
{
	struct vfio_log_range r[] = {
	    {0x0000, 0x1000},	{0x3000, 0x1000}, {0x100000, 0x1000}, {0x101000 + 0x1000, 0x1000},
	    {0x900000, 0x2000},
	};

	/* Gaps: 0x2000, 0xfc000, 0x1000, 0x7fd000: the 0x1000 gap goes first, then 0x2000. */
	assert_int_equal(vfio_log_combine_ranges(r, 5, 4), 4);
	assert_int_equal(r[2].iova, 0x100000);
	assert_int_equal(r[2].length, 0x3000);
	assert_int_equal(vfio_log_combine_ranges(r, 4, 3), 3);
	assert_int_equal(r[0].iova, 0);
	assert_int_equal(r[0].length, 0x4000);
	assert_int_equal(vfio_log_combine_ranges(r, 3, 1), 1);
	assert_int_equal(r[0].iova, 0);
	assert_int_equal(r[0].length, 0x902000);
	assert_int_equal(vfio_log_combine_ranges(r, 1, 0), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_next_state_all_pairs),  cmocka_unit_test(test_uapi_all_pairs),
	    cmocka_unit_test(test_error_state_and_reset), cmocka_unit_test(test_failed_arc),
	    cmocka_unit_test(test_feature_checks),	  cmocka_unit_test(test_combine_ranges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
