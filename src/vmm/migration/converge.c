// SPDX-License-Identifier: Apache-2.0
/*
 * The switch-over decision (MIGRATION.md, Pre-copy and convergence), a pure function of
 * measured figures so that it is unit-tested on its own.
 *
 * Switch when stopping now fits the downtime limit AND another pass would not make the
 * downtime meaningfully smaller. Another pass sends what is dirty now; meanwhile the guest
 * dirties about dirty_rate * (that pass's time), which is what would be left after it. It
 * "helps" when that saves at least 1 ms and a tenth of today's estimate: an idle guest
 * switches at once with milliseconds of downtime instead of spending its whole budget. A
 * pass lasts its transfer plus its harvest: when the harvest dominates (a device log read
 * through the guest's tables), the guest dirties during it as much as the pass sends, and
 * counting only the transfer would iterate forever on a pass that never helps.
 * Never switch past the limit: keep iterating (throttling harder with auto-converge) and
 * report the truthful expected downtime. Bytes a section says must go before the
 * switchover (a device's initial pre-copy data) hold it back whatever the figures say.
 */
#include "vmm/migration/internal.h"

#define MIG_HELP_MIN_US 1000ull

static uint64_t mig_transfer_us(uint64_t bytes, uint64_t bandwidth)
{
	if (!bytes)
		return 0;
	if (!bandwidth)
		return UINT64_MAX / 4; /* nothing measured yet: unknown, treat as huge */
	return (uint64_t)((double)bytes * 1e6 / (double)bandwidth);
}

static bool mig_next_pass_helps(const struct mig_converge_in *in, uint64_t expected_us)
{
	uint64_t pass_us = mig_transfer_us(in->remaining_bytes, in->bandwidth) + in->pass_sync_us;
	double next_bytes = (double)in->dirty_rate * (double)pass_us / 1e6;
	uint64_t next_us = mig_transfer_us((uint64_t)next_bytes, in->bandwidth) + in->overhead_us;

	if (next_us >= expected_us)
		return false;
	uint64_t saved = expected_us - next_us;
	return saved >= MIG_HELP_MIN_US && saved * 10 >= expected_us;
}

void mig_converge_decide(const struct mig_converge_in *in, struct mig_converge_out *out)
{
	uint64_t xfer = mig_transfer_us(in->remaining_bytes, in->bandwidth);

	out->expected_us = xfer + in->overhead_us;
	/* A device's initial pre-copy data (QEMU's switchover-ack): never switch before it. */
	if (in->must_precopy_bytes) {
		out->decision = MIG_DECIDE_NEXT_PASS;
		out->why = "a device's initial data has not gone yet";
		return;
	}
	if (out->expected_us <= in->limit_us) {
		bool capped = in->max_passes && in->pass >= in->max_passes;
		if (capped || !mig_next_pass_helps(in, out->expected_us)) {
			out->decision = MIG_DECIDE_SWITCH;
			out->why = capped ? "fits the limit; pass cap reached"
					  : "fits the limit; another pass would not help";
			return;
		}
		out->decision = MIG_DECIDE_NEXT_PASS;
		out->why = "fits the limit, but another pass shrinks the downtime";
		return;
	}
	/* Dirtying at half the link or faster: passes alone will not converge. */
	if (in->auto_converge && in->dirty_rate * 2 >= in->bandwidth &&
	    in->throttle_pct < in->max_throttle_pct) {
		out->decision = MIG_DECIDE_THROTTLE;
		out->why = "over the limit and the guest dirties too fast: throttle";
		return;
	}
	out->decision = MIG_DECIDE_NEXT_PASS;
	out->why = "over the limit: keep iterating";
}
