#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Switchover with I/O page faults in flight (issue 10): the same VM migrated while its
device faults page by page (`sva`) and while it is idle, alternately in one run, real vmig
processes on loopback driven through QMP. Prints "BENCH <name> <value> <unit>" lines
(medians over the repeats) and the command that reproduces them.

usage: bench_switchover.py VMIG

Environment: VMIG_BENCH_REPEATS=N (default 5), VMIG_BENCH_QUICK=1 (2 repeats).

Each run: 256 MiB, 1 vCPU, the sdma device behind the nested vSMMUv3, migrated 2 s after
the drivers came up, no bandwidth cap, the default 300 ms downtime limit. `sva` runs
`workload=sva secs=10` (the destination must finish it clean); `idle` runs
`workload=idle secs=30` with the device configured and doing nothing.

Figures, for sva and idle:
  sw_<w>_<phase>_us      each switchover phase (drain, quiesce, vcpu-stop, device-stop,
                         final-sync, last-ram, state, dest-load, post-load, resume)
  sw_<w>_downtime        the measured downtime (source vCPUs stopped -> destination running)
  sw_<w>_drain_plus_downtime  what the guest's device work waits: drain + downtime
  sw_sva_faults_drained  faults the guest answered during the drain
  sw_sva_held            guest register writes held and replayed
  sw_sva_vs_idle_downtime    downtime ratio, sva / idle (medians of the same run)
  sw_post_load_us_per_ste    destination post-load time per STE re-installed
"""
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tests", "migration"))
import migtest as mt  # noqa: E402

MEM = "256M"
QUICK = os.environ.get("VMIG_BENCH_QUICK") == "1"
REPEATS = int(os.environ.get("VMIG_BENCH_REPEATS", "2" if QUICK else "5"))
PHASES = ("drain", "quiesce", "vcpu-stop", "device-stop", "final-sync", "last-ram", "state",
          "dest-load", "post-load", "resume")
GUESTS = {"sva": "workload=sva secs=10", "idle": "workload=idle secs=30"}


def one(rig, which):
    sock = rig.path("src.sock")
    src = mt.Vmig(rig, f"src{rig.n}", ["run", "--mem", MEM, "--qmp", "unix:" + sock,
                                       "--timeout", "120", "--guest-args", GUESTS[which]])
    q = mt.Qmp(sock, src)
    if which == "sva":
        mt.wait_line(src, "SMMU", timeout=30)
    time.sleep(2.0)
    uri = f"tcp:127.0.0.1:{mt.free_port()}"
    dsock = rig.path("dst.sock")
    dst = mt.Vmig(rig, f"dst{rig.n}", ["run", "--mem", MEM, "--timeout", "120", "--qmp",
                                       "unix:" + dsock, "--incoming", "defer"])
    dq = mt.Qmp(dsock, dst)
    dq.cmd("migrate-incoming", uri=uri)
    dq.close()
    info = mt.migrate(q, uri, timeout=120)
    mt.check(info["status"] == "completed", f"{which}: {info}")
    q.cmd("quit")
    q.close()
    src.wait(20)
    if which == "idle":
        dst.kill()
        return info
    rc = dst.wait(90)
    r = [x for x in mt.report(dst.guest_lines(), "RESULT") if x.get("workload") == "sva"]
    mt.check(rc == 0 and len(r) == 1 and r[0]["mismatches"] == "0" and
             r[0]["descs"] == r[0]["device_descs"], f"destination not clean: rc={rc} {r}")
    return info


bench = mt.bench


def report(res):
    med = statistics.median
    for w, infos in res.items():
        sw = [i["x-vmig"]["switchover-us"] for i in infos]
        for p in PHASES:
            bench(f"sw_{w}_{p.replace('-', '_')}_us", med([s[p] for s in sw]), "us")
        down = [i["x-vmig"]["downtime-us"] / 1000 for i in infos]
        bench(f"sw_{w}_downtime", med(down), "ms")
        bench(f"sw_{w}_drain_plus_downtime",
              med([s["drain"] / 1000 + d for s, d in zip(sw, down)]), "ms")
    so = [i["x-vmig"]["switchover"] for i in res["sva"]]
    bench("sw_sva_faults_drained", med([s["faults-drained"] for s in so]), "faults")
    bench("sw_sva_held", med([s["held-submissions"] for s in so]), "writes")
    ratio = med([i["x-vmig"]["downtime-us"] for i in res["sva"]]) / \
        max(med([i["x-vmig"]["downtime-us"] for i in res["idle"]]), 1)
    bench("sw_sva_vs_idle_downtime", ratio, "x")
    per_ste = [i["x-vmig"]["switchover-us"]["post-load"] /
               max(i["x-vmig"]["switchover"]["stes-reinstalled"], 1)
               for w in res for i in res[w]]
    bench("sw_post_load_us_per_ste", med(per_ste), "us")


def main():
    rig = mt.bench_rig(__doc__)
    if not rig:
        return 77
    res = {"sva": [], "idle": []}
    try:
        for _ in range(REPEATS):  # alternately: both see the same machine noise
            for w in res:
                res[w].append(one(rig, w))
    finally:
        rig.close(keep=False)
    report(res)
    print(f"reproduce: VMIG_BENCH_REPEATS={REPEATS} python3 bench/migration/bench_switchover.py "
          f"build/src/vmm/vmig", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
