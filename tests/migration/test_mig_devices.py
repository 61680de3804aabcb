#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Live migration of a guest that drives the sdma device behind the nested vSMMUv3 (issue 9):
real vmig processes, driven through QMP. Usage: test_mig_devices.py VMIG CASE

The guest runs `dma` with secs=: the device writes every byte of its destination windows
(guard fills and jobs, the CPU only reads them), every checked page keeps a digest that is
checked again before reuse and at the end, so a DMA write the migration did not carry shows
on the destination as lost= or a data mismatch.

Cases:
  dma         migrate mid-workload (device dirty tracking auto = stage2 here): the destination
              finishes the step with mismatches=0 lost=0, the PTEs the SMMU marked accessed
              and dirty still so (httucheck=1, also under device-log and perpetual), the
              device's completed count equal to what was submitted, its device ran jobs
              (MSIs), and query-migrate names the strategy, its reason, the device's bytes
  blind       the negative control: the same with VMIG_TEST_NO_DEVICE_DIRTY=1 on the source
              (harvest, but tell RAM nothing): the destination must report lost DMA writes
  httu        the SMMU's access/dirty updates of the guest's PTEs made long after the CPU last
              wrote the table page (httupace=20) arrive in stage2, device-log and perpetual;
              the negative control (device dirty tracking ignored) finds them lost
  bypass      the device's STE in bypass (guest bypass=1) in every strategy, and device-log's
              negative control
  no-precopy  a device without PRE_COPY: RUNNING_P2P, all its state in the stop-copy, and
              no descriptor lost or run twice
  rollback    the destination has no devices, so it refuses the stream at the first device
              record (in a pass, or after the source stopped its device): the source rolls
              back, its device runs again and the guest finishes clean there; then a second
              migration succeeds
  perpetual   --device-dirty perpetual, then auto on a host without stage-2 dirty bits
              and a device without DMA logging (--host-no-s2-dirty --host-no-dma-log): all RAM the device can reach goes once in
              the stop-copy, the destination is clean; and its negative control loses
  device-log  the device's DMA log: dma with the QMP parameter x-vmig-device-dirty, and auto
              choosing it on a host without stage-2 dirty bits
  remap       remap remapwritten=1 (the guest moves the windows the device just wrote, pages
              left behind keep the data) in every strategy: nothing lost; the negative
              control VMIG_TEST_DEVICE_LOG_CURRENT_ONLY=1 (no records) loses pages
  snapshot-cont  QMP migrate to file: (the device stops and stays stopped), then cont: the
              device runs again and the guest's DMA finishes clean
Exit 77 without /dev/kvm.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import migtest as mt  # noqa: E402
from migtest import check, log  # noqa: E402

MEM = "256M"
STRETCH_BW = 64 << 20  # bytes/s


def source(rig, secs, env=None, extra=(), workload="dma"):
    sock = rig.path("src.sock")
    v = mt.Vmig(rig, f"src{rig.n}", ["run", "--mem", MEM, "--qmp", "unix:" + sock, "--timeout",
                                     str(mt.VMIG_TIMEOUT_S), "--guest-args",
                                     f"workload={workload} secs={secs}", *extra], env)
    q = mt.Qmp(sock, v)
    check(q.status() == "running", f"{v.name} is not running")
    mt.wait_line(v, "SMMU", timeout=20)  # the drivers are up: DMA is flowing
    time.sleep(1.0)
    return v, q


def dest(rig, devices=True):
    """A destination listening on a fresh TCP port when this returns (--incoming defer, then
    QMP migrate-incoming, which answers once it listens)."""
    uri = f"tcp:127.0.0.1:{mt.free_port()}"
    sock = rig.path("dst.sock")
    args = ["run", "--mem", MEM, "--timeout", str(mt.VMIG_TIMEOUT_S), "--qmp", "unix:" + sock,
            "--incoming", "defer"]
    v = mt.Vmig(rig, f"dst{rig.n}", args + ([] if devices else ["--no-devices"]))
    q = mt.Qmp(sock, v)
    q.cmd("migrate-incoming", uri=uri)
    q.close()
    return v, uri


def dma_result(v, workload="dma"):
    r = [x for x in mt.report(v.guest_lines(), "RESULT") if x.get("workload") == workload]
    check(len(r) == 1, f"{v.name}: {len(r)} {workload} RESULT lines {v.tail()}")
    return r[0]


def device_msis(v):
    for line in v.out().splitlines():
        if line.startswith("SUMMARY devices"):
            return int(dict(w.split("=", 1) for w in line.split()[2:])["msis"])
    raise mt.Failure(f"{v.name}: no SUMMARY devices line {v.tail()}")


def migrate_ok(rig, secs, env=None, extra=(), limit_ms=300, workload="dma", bw=STRETCH_BW,
               **params):
    src, q = source(rig, secs, env, extra, workload)
    dst, uri = dest(rig)
    # Stretched passes (~0.4 s for the first): the device runs hundreds of batches while
    # pages are being sent, so a DMA write after a page's last send is certain, not luck.
    mt.set_params(q, max_bandwidth=bw, downtime_limit=limit_ms, **params)
    info = mt.migrate(q, uri, timeout=60)
    check(info["status"] == "completed", f"migration {info}")
    log(f"migrated: {info['total-time']} ms, {info['x-vmig']['passes']} passes, downtime "
        f"{info['downtime']} ms, device dirty pages {info['x-vmig']['device']['dirty-pages']}")
    mt.quit_source(src, q)
    return info, dst


HTTU = "dma httucheck=1"  # also: the SMMU's access/dirty bits in the guest's PTEs arrive


def case_dma(rig):
    info, dst = migrate_ok(rig, 8, workload=HTTU)
    d = info["x-vmig"]["device"]
    log(f"device: {d}")
    check(d["dirty-strategy"] == "stage2" and "stage 2" in d["dirty-why"], f"strategy {d}")
    check(d["devices"] == 1 and d["stop-copy-bytes"] > 0 and d["precopy-bytes"] > 0, f"{d}")
    check(d["harvests"] >= 2 and d["dirty-pages"] > 0, f"device dirty tracking saw nothing {d}")
    check(info["x-vmig"]["switchover-us"]["device-stop"] > 0, f"phases {info['x-vmig']}")
    rc = dst.wait(60)
    r = dma_result(dst)
    log(f"destination: {r}")
    check(rc == 0 and r["status"] == "ok" and r["mismatches"] == "0" and r["lost"] == "0" and
          r["pte_lost"] == "0", f"destination {r} rc={rc} {dst.tail()}")
    check(device_msis(dst) > 0, "the device completed no job on the destination")
    check(r["descs"] == r["device_descs"],
          f"descriptors submitted {r['descs']}, the device completed {r['device_descs']}: "
          f"some were lost or ran twice")


HTTU_PACED = "dma httucheck=1 httupace=20"  # each table page updated over ~200 ms


def migrate_late(rig, env, extra, hold_s=1.5):
    """A migration held in pre-copy for hold_s (downtime limit 0, then 300 ms): the SMMU
    goes on updating table pages the passes already sent, and the switchover comes long
    after their last send."""
    src, q = source(rig, 6, env, extra, HTTU_PACED)
    dst, uri = dest(rig)
    mt.set_params(q, max_bandwidth=STRETCH_BW, downtime_limit=0)
    mt.start(q, uri)
    info = mt.hold(q, time.monotonic() + hold_s)
    check(info["status"] == "active", f"the migration ended early: {info}")
    mt.set_params(q, downtime_limit=20000 if "perpetual" in extra else 300)
    info = mt.wait_final(q, 60)
    check(info["status"] == "completed", f"migration {info}")
    log(f"migrated: {info['total-time']} ms, {info['x-vmig']['passes']} passes")
    mt.quit_source(src, q)
    return dst


def case_httu(rig):
    """The SMMU's own access/dirty updates of the guest's PTEs, made long after the CPU last
    wrote the table page (httupace) and long before the switchover: every strategy carries
    them (pte_lost=0). The negative control: with device dirty tracking ignored the
    destination finds PTEs of pages the device wrote still clean."""
    for how in ("stage2", "device-log", "perpetual"):
        check_clean(migrate_late(rig, None, ["--device-dirty", how]))
    # A stop right after a round's clean finds nothing to lose (about one time in 64): a
    # second try then.
    for attempt in range(2):
        dst = migrate_late(rig, {"VMIG_TEST_NO_DEVICE_DIRTY": "1"},
                           ["--device-dirty", "stage2"])
        dst.wait(60)
        r = dma_result(dst)
        log(f"destination (device dirty tracking ignored, try {attempt + 1}): {r}")
        if int(r["pte_lost"]) > 0:
            return
    raise mt.Failure(f"no SMMU update of a PTE was lost in two tries: {r}")


def case_blind(rig):
    _, dst = migrate_ok(rig, 6, env={"VMIG_TEST_NO_DEVICE_DIRTY": "1"})
    rc = dst.wait(60)
    r = dma_result(dst)
    log(f"destination (device dirty tracking ignored): {r}")
    check(rc != 0 and r["status"] != "ok" and (int(r["lost"]) > 0 or int(r["mismatches"]) > 0),
          f"the negative control lost nothing: {r} rc={rc}")


def check_clean(dst, workload="dma"):
    rc = dst.wait(60)
    r = dma_result(dst, workload)
    log(f"destination: {r}")
    check(rc == 0 and r["status"] == "ok" and r["mismatches"] == "0" and r["lost"] == "0",
          f"destination {r} rc={rc} {dst.tail()}")


def case_perpetual(rig):
    """Forced, and chosen by auto on a host without stage-2 dirty bits: every page the device
    can reach goes once in the stop-copy (the downtime pays); its negative control loses."""
    big = 20000  # ms: the whole RAM in the downtime, at the stretched rate it is measured at
    info, dst = migrate_ok(rig, 6, extra=["--device-dirty", "perpetual"], limit_ms=big,
                           workload=HTTU)
    d = info["x-vmig"]["device"]
    check(d["dirty-strategy"] == "perpetual" and d["dirty-why"] == "forced", f"{d}")
    check(4096 < d["dirty-pages"] < 65536, f"perpetual marks the RAM that holds data: {d}")
    check(info["ram"]["downtime-bytes"] > 8 << 20, f"the pages go in the downtime: {info['ram']}")
    check_clean(dst)
    info, dst = migrate_ok(rig, 6, extra=["--host-no-s2-dirty", "--host-no-dma-log"],
                           limit_ms=big)
    d = info["x-vmig"]["device"]
    check(d["dirty-strategy"] == "perpetual" and "no dirty bits" in d["dirty-why"], f"{d}")
    check_clean(dst)
    _, dst = migrate_ok(rig, 6, env={"VMIG_TEST_NO_DEVICE_DIRTY": "1"},
                        extra=["--device-dirty", "perpetual"], limit_ms=big)
    rc = dst.wait(60)
    r = dma_result(dst)
    log(f"destination (perpetual ignored): {r}")
    check(rc != 0 and int(r["lost"]) + int(r["mismatches"]) > 0, f"nothing lost: {r}")


def case_device_log(rig):
    """The device's DMA log, translated through the guest's stage 1, chosen by the QMP
    parameter, then by auto on a host without stage-2 dirty bits."""
    info, dst = migrate_ok(rig, 6, x_vmig_device_dirty="device-log", workload=HTTU)
    d = info["x-vmig"]["device"]
    check(d["dirty-strategy"] == "device-log" and d["dirty-pages"] > 0, f"{d}")
    check_clean(dst)
    info, dst = migrate_ok(rig, 4, extra=["--host-no-s2-dirty"])
    d = info["x-vmig"]["device"]
    check(d["dirty-strategy"] == "device-log" and "logs its DMA" in d["dirty-why"],
          f"auto without stage-2 dirty bits: {d}")
    check_clean(dst)


REMAP = "remap remapwritten=1"  # the device's windows are moved right after it wrote them
REMAP_BW = 512 << 20  # every remap is a harvest: passes at this rate keep up with them


def remap_lost(dst):
    rc = dst.wait(60)
    r = dma_result(dst, "remap")
    log(f"destination: {r}")
    return rc != 0 and int(r["lost"]) + int(r["mismatches"]) > 0


def case_remap(rig):
    """The adversarial remap: the guest remaps IOVAs between the device's writes and the
    next harvest (its invalidation is that harvest), over and over, while pages left behind
    keep what the device wrote; every strategy loses nothing. The negative control: the
    device log translated with today's tables only (not the records) loses pages."""
    for how, limit in (("stage2", 300), ("device-log", 300), ("perpetual", 20000)):
        info, dst = migrate_ok(rig, 6, extra=["--device-dirty", how], workload=REMAP,
                               bw=REMAP_BW, limit_ms=limit)
        d = info["x-vmig"]["device"]
        check(d["dirty-strategy"] == how, f"{d}")
        if how == "device-log":
            check(d["harvests"] > info["x-vmig"]["passes"] + 1,
                  f"no harvest before a forwarded invalidation: {d}")
        check_clean(dst, "remap")
    _, dst = migrate_ok(rig, 6, env={"VMIG_TEST_DEVICE_LOG_CURRENT_ONLY": "1"},
                        extra=["--device-dirty", "device-log"], workload=REMAP, bw=REMAP_BW)
    check(remap_lost(dst), "translating with today's tables only lost nothing")


def case_bypass(rig):
    """The device behind the vSMMUv3 with its STE in bypass (the guest's bypass=1: IOVA =
    GPA, the vIOMMU there for MSIs only): every strategy carries the DMA; device-log with
    the log ignored loses (its negative control)."""
    for how, limit in (("stage2", 300), ("device-log", 300), ("perpetual", 20000)):
        info, dst = migrate_ok(rig, 5, extra=["--device-dirty", how], workload="dma bypass=1",
                               bw=REMAP_BW, limit_ms=limit)
        check(info["x-vmig"]["device"]["dirty-pages"] > 0, f"{how}: {info['x-vmig']}")
        check_clean(dst)
    _, dst = migrate_ok(rig, 5, env={"VMIG_TEST_NO_DEVICE_DIRTY": "1"},
                        extra=["--device-dirty", "device-log"], workload="dma bypass=1",
                        bw=REMAP_BW)
    rc = dst.wait(60)
    r = dma_result(dst)
    log(f"destination (device log ignored): {r}")
    check(rc != 0 and int(r["lost"]) + int(r["mismatches"]) > 0, f"nothing lost: {r}")


def case_no_precopy(rig):
    """A device whose migration has no PRE_COPY (--host-no-precopy): RUNNING_P2P at the
    switchover, all its state in the stop-copy; descriptors in flight: none lost, none run
    twice (the device's COMPLETED counter equals what the guest submitted)."""
    info, dst = migrate_ok(rig, 6, extra=["--host-no-precopy"])
    d = info["x-vmig"]["device"]
    log(f"device: {d}")
    check(d["precopy-bytes"] == 0 and d["stop-copy-bytes"] > 0, f"{d}")
    check_clean(dst)
    r = dma_result(dst)
    check(r["descs"] == r["device_descs"], f"descriptors lost or run twice: {r}")


def case_rollback(rig):
    src, q = source(rig, 10)
    dst, uri = dest(rig, devices=False)
    info = mt.migrate(q, uri, timeout=60)
    log(f"refused: {info.get('error-desc')}")
    check(info["status"] == "failed" and "destination" in info.get("error-desc", ""),
          f"migration {info}")
    # The refusal comes with the first device record: in a pass (the device was in PRE_COPY)
    # or after the switchover stopped it (STOP_COPY); either way it must run again here.
    log(f"device stopped before the refusal: "
        f"{info['x-vmig'].get('switchover-us', {}).get('device-stop', 0) > 0}")
    mt.assert_source_running(q, "after the refused migration")
    check(dst.wait(20) == 1, f"{dst.name}: exit {dst.rc} {dst.tail()}")
    time.sleep(1.0)
    dst2, uri2 = dest(rig)
    info = mt.migrate(q, uri2, timeout=60)
    check(info["status"] == "completed", f"second migration {info}")
    mt.quit_source(src, q)
    rc = dst2.wait(60)
    r = dma_result(dst2)
    check(rc == 0 and r["status"] == "ok" and r["lost"] == "0", f"destination {r} rc={rc}")


def case_snapshot_cont(rig):
    src, q = source(rig, 8)
    info = mt.migrate(q, "file:" + rig.path("snap.vmig"), timeout=60)
    check(info["status"] == "completed", f"snapshot {info}")
    check(q.status() == "postmigrate", f"after the snapshot: {q.status()}")
    q.cmd("cont")
    mt.assert_source_running(q, "after cont")
    rc = src.wait(60)
    r = dma_result(src)
    check(rc == 0 and r["status"] == "ok" and r["lost"] == "0", f"source after cont {r} rc={rc}")


if __name__ == "__main__":
    sys.exit(mt.main({"dma": case_dma, "blind": case_blind, "rollback": case_rollback,
                      "snapshot-cont": case_snapshot_cont, "perpetual": case_perpetual,
                      "device-log": case_device_log, "remap": case_remap,
                      "bypass": case_bypass, "no-precopy": case_no_precopy,
                      "httu": case_httu},
                     __doc__))
