#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Device-migration benchmarks (issue 9): one fixed DMA workload migrated with each
device-dirty strategy, real vmig processes on loopback, driven through QMP. Prints
"BENCH <name> <value> <unit>" lines (medians over the repeats) and the command that
reproduces them.

usage: bench_devices.py VMIG

Environment: VMIG_BENCH_REPEATS=N (default 3), VMIG_BENCH_QUICK=1 (1 repeat).

The workload: `workload=dma secs=8` (the device writes its 16 MiB of windows over and over,
the CPU only checks), 256 MiB, 1 vCPU, migrated 2 s after the drivers came up with
max-bandwidth 64 MiB/s (so the pre-copy lasts long enough for many DMA batches) and the
default 300 ms downtime limit (20 s for perpetual, which carries all written RAM in the
downtime by design). Every destination must finish the workload with lost=0.

Figures, per strategy (stage2, device-log, perpetual):
  dev_<s>_marked_pages    pages the strategy marked dirty (all harvests)
  dev_<s>_marked_vs_stage2  marked pages / stage2's marked pages (a different run: its
                          passes and harvests fall elsewhere, so a page written twice
                          between two harvests counts once or twice)
  dev_device-log_marked_vs_written  device-log's marked pages / the pages the device wrote,
                          in the same run: stage 2's exact dirty bits read and cleared at
                          every device-log harvest, only counted (VMIG_BENCH_DIRTY_REFERENCE;
                          a run of its own, so the device-log row does not pay that read)
  dev_<s>_transferred     bytes sent in all
  dev_<s>_downtime        measured downtime
  dev_<s>_harvest_us_per_gib  harvest time per harvest per GiB of guest RAM
the device's stop-copy bytes with PRE_COPY against a device without it (--host-no-precopy:
dev_stop_copy_precopy_vs_not), and the downtime of the same guest with the device idle (workload=idle) and without the
device (--no-devices, idle): dev_idle_downtime, nodev_idle_downtime.
"""
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tests", "migration"))
import migtest as mt  # noqa: E402

MEM = "256M"
GIB = 256 / 1024
BW = 64 << 20
QUICK = os.environ.get("VMIG_BENCH_QUICK") == "1"
REPEATS = int(os.environ.get("VMIG_BENCH_REPEATS", "1" if QUICK else "3"))


def source(rig, args, guest, reference):
    sock = rig.path("src.sock")
    # reference: device-log also reads stage 2's exact dirty bits at each of its harvests,
    # only to count them (the pages the device wrote in the same intervals of the same run).
    # A run of its own: that read costs time the device-log row must not include.
    env = {"VMIG_BENCH_DIRTY_REFERENCE": "1"} if reference else None
    v = mt.Vmig(rig, f"src{rig.n}", ["run", "--mem", MEM, "--qmp", "unix:" + sock,
                                     "--timeout", "120", "--guest-args", guest, *args], env)
    q = mt.Qmp(sock, v)
    if "dma" in guest:
        mt.wait_line(v, "SMMU", timeout=30)  # the drivers are up: DMA is flowing
    time.sleep(2.0)
    return v, q


def one(rig, strategy, guest="workload=dma secs=8", devices=True, extra=(), reference=False):
    args = (["--device-dirty", strategy] if devices else ["--no-devices"]) + list(extra)
    src, q = source(rig, args, guest, reference)
    uri = f"tcp:127.0.0.1:{mt.free_port()}"
    sock = rig.path("dst.sock")
    dst = mt.Vmig(rig, f"dst{rig.n}", ["run", "--mem", MEM, "--timeout", "120", "--qmp",
                                       "unix:" + sock, "--incoming", "defer"] +
                  ([] if devices else ["--no-devices"]))
    dq = mt.Qmp(sock, dst)
    dq.cmd("migrate-incoming", uri=uri)  # answers once it listens
    dq.close()
    limit = 20000 if strategy == "perpetual" else 300
    mt.set_params(q, max_bandwidth=BW, downtime_limit=limit)
    info = mt.migrate(q, uri, timeout=120)
    mt.check(info["status"] == "completed", f"{strategy}: {info}")
    q.cmd("quit")
    q.close()
    src.wait(20)
    if "idle" in guest:
        dst.kill()
    else:
        check_clean(dst)
    return info


def check_clean(dst):
    rc = dst.wait(60)
    r = [x for x in mt.report(dst.guest_lines(), "RESULT") if x.get("workload") == "dma"]
    mt.check(rc == 0 and len(r) == 1 and r[0]["lost"] == "0" and r[0]["mismatches"] == "0",
             f"destination not clean: rc={rc} {r}")


bench = mt.bench


def main():
    rig = mt.bench_rig(__doc__)
    if not rig:
        return 77
    res = {}
    try:
        for _ in range(REPEATS):
            for s in ("stage2", "device-log", "perpetual"):
                res.setdefault(s, []).append(one(rig, s))
            res.setdefault("reference", []).append(one(rig, "device-log", reference=True))
            res.setdefault("noprecopy", []).append(one(rig, "stage2",
                                                       extra=["--host-no-precopy"]))
            res.setdefault("idle", []).append(one(rig, "auto", "workload=idle secs=30"))
            res.setdefault("nodev", []).append(
                one(rig, "auto", "workload=idle secs=30", devices=False))
    finally:
        rig.close(keep=False)
    med = statistics.median
    s2 = med([i["x-vmig"]["device"]["dirty-pages"] for i in res["stage2"]])
    for s in ("stage2", "device-log", "perpetual"):
        infos = res[s]
        dev = [i["x-vmig"]["device"] for i in infos]
        marked = med([d["dirty-pages"] for d in dev])
        bench(f"dev_{s}_marked_pages", marked, "pages")
        bench(f"dev_{s}_marked_vs_stage2", marked / max(s2, 1), "x")
        if s == "device-log":
            ref = [i["x-vmig"]["device"] for i in res["reference"]]
            mt.check(all(d.get("x-reference-pages") for d in ref), f"no reference: {ref}")
            bench(f"dev_{s}_marked_vs_written",
                  med([d["dirty-pages"] / d["x-reference-pages"] for d in ref]), "x")
        bench(f"dev_{s}_transferred", med([i["ram"]["transferred"] for i in infos]) / 2**20,
              "MiB")
        bench(f"dev_{s}_downtime", med([i["x-vmig"]["downtime-us"] / 1000 for i in infos]),
              "ms")
        bench(f"dev_{s}_harvest_us_per_gib",
              med([d["harvest-us"] / max(d["harvests"], 1) / GIB for d in dev]), "us")
    sc = med([i["x-vmig"]["device"]["stop-copy-bytes"] for i in res["stage2"]])
    sc_no = med([i["x-vmig"]["device"]["stop-copy-bytes"] for i in res["noprecopy"]])
    bench("dev_stop_copy_bytes_precopy", sc, "bytes")
    bench("dev_stop_copy_bytes_no_precopy", sc_no, "bytes")
    bench("dev_stop_copy_precopy_vs_not", sc / max(sc_no, 1), "x")
    for k, name in (("idle", "dev_idle_downtime"), ("nodev", "nodev_idle_downtime")):
        bench(name, med([i["x-vmig"]["downtime-us"] / 1000 for i in res[k]]), "ms")
    print(f"reproduce: VMIG_BENCH_REPEATS={REPEATS} python3 bench/migration/bench_devices.py "
          f"build/src/vmm/vmig", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
