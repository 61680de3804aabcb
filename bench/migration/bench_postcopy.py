#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Post-copy against pre-copy (issue 12): the same dirtying guest migrated both ways, real
vmig processes on loopback through QMP, no devices. Prints "BENCH <name> <value> <unit>"
lines (medians over the repeats) and the command that reproduces them.

usage: bench_postcopy.py VMIG

Environment: VMIG_BENCH_REPEATS=N (default 3), VMIG_BENCH_QUICK=1 (1 repeat).

The guest: `workload=dirty,verify,idle`, 2 vCPUs, 512 MiB, rewriting a 64 MiB working set
at 4000 pages/s for 8 s (then it verifies every page and idles 8 s). Each repeat migrates
one such guest with pre-copy (max-bandwidth 48 MiB/s, 300 ms downtime limit: it converges
in a few passes) and one with post-copy (the same, migrate-start-postcopy once the first
pass is over; post-copy's own pages are not paced), both 1.5 s into the dirtying. Every
destination must verify clean.

Figures: pre/post downtime and total time (ms), post over pre for each (ratios per repeat,
then the median), the pages post-copy carried after the switch and the faults they cost.
That guest rewrites pages in order, behind the pages post-copy still owes, so it rarely
faults; a third run per repeat (FAULT_GUEST: pre-copy cannot move it, the switch comes
1 s before its dirtying ends and its verify then touches every page) gives the
destination's vCPU fault latency (fault read to page placed), median and 99th percentile
(the median over the repeats of each), in us.
"""
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tests", "migration"))
import migtest as mt  # noqa: E402

QUICK = os.environ.get("VMIG_BENCH_QUICK") == "1"
REPEATS = int(os.environ.get("VMIG_BENCH_REPEATS", "1" if QUICK else "3"))
GUEST = "workload=dirty,verify,idle secs=8 ws=64M rate=4000"
BW = 48 << 20  # bytes/s, both ways: pre-copy converges (the guest dirties 16 MB/s)
# The fault-latency run: the guest of tests/migration/test_mig_postcopy.py (8000 pages/s over
# 24 MiB/s, which pre-copy never converges), switched 1 s before its dirtying ends, so
# that its verify touches every page, most of them not there yet.
FAULT_GUEST = "workload=dirty,verify,idle secs=8 ws=64M rate=8000"
FAULT_BW, FAULT_SWITCH_AT = 24 << 20, 7.0


def source(rig, guest=GUEST):
    sock = rig.path("src.sock")
    v = mt.Vmig(rig, f"src{rig.n}", ["run", "--no-devices", "--vcpus", mt.GUEST_VCPUS, "--mem",
                                     mt.GUEST_MEM, "--qmp", "unix:" + sock, "--timeout", "120",
                                     "--guest-args", guest])
    q = mt.Qmp(sock, v)
    mt.wait_line(v, "PREPARED")
    return v, q, time.monotonic()


def one(rig, postcopy):
    src, q, t0 = source(rig)
    dst, uri = rig.dest()
    if postcopy:
        q.cmd("migrate-set-capabilities",
              capabilities=[{"capability": "postcopy-ram", "state": True}])
    mt.set_params(q, max_bandwidth=BW)
    mt.hold(q, t0 + 1.5)
    mt.start(q, uri)
    while postcopy:  # the switch once the first pass is over
        info = q.cmd("query-migrate")
        if info.get("x-vmig", {}).get("passes", 0) >= 2 or info["status"] in mt.FINAL:
            q.cmd("migrate-start-postcopy")
            break
        time.sleep(0.005)
    info = mt.wait_final(q, 60)
    mt.check(info["status"] == "completed", f"{'post' if postcopy else 'pre'}-copy: {info}")
    dq = mt.Qmp(dst.sock, dst)
    dinfo = dq.cmd("query-migrate")
    dq.close()
    mt.quit_source(src, q)
    mt.assert_verified(dst)
    return info, dinfo


def faults(rig):
    src, q, t0 = source(rig, FAULT_GUEST)
    dst, uri = rig.dest()
    q.cmd("migrate-set-capabilities",
          capabilities=[{"capability": "postcopy-ram", "state": True}])
    mt.set_params(q, max_bandwidth=FAULT_BW)
    mt.start(q, uri)
    mt.hold(q, t0 + FAULT_SWITCH_AT)
    q.cmd("migrate-start-postcopy")
    info = mt.wait_final(q, 60)
    mt.check(info["status"] == "completed", f"post-copy (faults): {info}")
    dq = mt.Qmp(dst.sock, dst)
    pc = dq.cmd("query-migrate")["x-vmig"]["postcopy"]
    dq.close()
    mt.quit_source(src, q)
    mt.assert_verified(dst)
    return pc


bench = mt.bench


def main():
    rig = mt.bench_rig(__doc__)
    if not rig:
        return 77
    pre, post, flt = [], [], []
    try:
        for _ in range(REPEATS):
            pre.append(one(rig, False))
            post.append(one(rig, True))
            flt.append(faults(rig))
    finally:
        rig.close(keep=False)
    med = statistics.median
    for key, name in (("downtime", "downtime"), ("total-time", "total_time")):
        a = [i[key] for i, _ in pre]
        b = [i[key] for i, _ in post]
        bench(f"postcopy_pre_{name}", med(a), "ms")
        bench(f"postcopy_post_{name}", med(b), "ms")
        bench(f"postcopy_{name}_post_vs_pre", med([y / max(x, 1) for x, y in zip(a, b)]), "x")
    pc = [d["x-vmig"]["postcopy"] for _, d in post]
    bench("postcopy_pages_after_switch", med([p["discarded-pages"] for p in pc]), "pages")
    bench("postcopy_faults", med([p["faults"] for p in pc]), "faults")
    bench("postcopy_faultrun_pages_after_switch", med([p["discarded-pages"] for p in flt]),
          "pages")
    bench("postcopy_faultrun_faults", med([p["faults"] for p in flt]), "faults")
    bench("postcopy_fault_us_p50", med([p["fault-us-p50"] for p in flt]), "us")
    bench("postcopy_fault_us_p99", med([p["fault-us-p99"] for p in flt]), "us")
    print(f"reproduce: VMIG_BENCH_REPEATS={REPEATS} python3 bench/migration/bench_postcopy.py "
          f"build/src/vmm/vmig", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
