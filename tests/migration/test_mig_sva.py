#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Live migration with I/O page faults in flight (issue 10): real vmig processes, driven
through QMP. Usage: test_mig_sva.py VMIG CASE

The guest's `sva` step has the device fault page by page (BOF descriptors, stall mode): the
device blocks on a fault until the guest maps the page and answers RESUME. A migration must
stop the device first: hold the guest's register writes, let the device finish while the
vCPUs run and answer its faults (the drain), then P2P, then the vCPUs; the held writes go in
the stream and are replayed on the destination (or here after a roll-back). Every sva round
starts from a reset queue and checks each job and that the device ran each exactly once
(`descs` = `device_descs`).

Cases:
  inflight      dma,remap,sva with secs=: migrated while sva runs, with faults drained at
                the switchover (ping-pong until one drain caught faults); the destination
                finishes clean and handles faults itself
  2level        the same with a 2-level stream table and 2 vCPUs (SSIDs 1, 2 and 1025, the
                last in the second CD leaf); every stream re-installed on the destination
  pingpong      10 migrations back and forth with sva running, then a clean finish
  held          the guest writes the device during the drain (VMIG_TEST_DRAIN_HOLD_MS keeps
                the hold open): its writes travel and run exactly once on the destination;
                then a destination that refuses at post-load: the source replays them
                itself, once
  delayed       the guest answers one fault 2.5 s late; the drain (limit 6 s) waits for it
                with the vCPUs running: the migration completes
  vcpus-first   the negative control: the same with the vCPUs stopped before the drain
                (VMIG_TEST_VCPUS_FIRST=1): the fault cannot be answered, the drain ends at
                its bound, the migration is cancelled and the guest finishes clean here
  no-answer     the guest answers a fault only after 4 s, the drain limit is 1 s: cancelled
                within the bound with the outstanding fault counted; the guest goes on
  refused       the destination's host refuses the stage-1 configuration the source's host
                had in force: post-load fails the migration, the source goes on clean
  post-load     the destination's host translates every SSID of the guest's stream as the
                source's did (host view, sampled IOVAs), the guest flipping its STE every
                round up to the switchover; its negative control (post-load skipped) differs
  hostile-stream  a saved stream with its held writes, attached streams and vSMMU state
                rewritten (checksums valid): each refused with its reason, nothing runs
Exit 77 without /dev/kvm.
"""
import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import migtest as mt  # noqa: E402
from migtest import check, log  # noqa: E402

MEM = "256M"


class Vm:
    """A vmig process with its control socket (a source, or a destination that becomes one)."""

    def __init__(self, rig, args, env=None, incoming=False):
        self.sock = rig.path("vm.sock")
        args = ["run", "--mem", MEM, "--qmp", "unix:" + self.sock, "--timeout",
                str(mt.VMIG_TIMEOUT_S), *args]
        if incoming:
            args += ["--incoming", "defer"]
        self.v = mt.Vmig(rig, f"vm{rig.n}", args, env)
        self.q = mt.Qmp(self.sock, self.v)
        self.uri = None
        if incoming:
            self.uri = f"tcp:127.0.0.1:{mt.free_port()}"
            self.q.cmd("migrate-incoming", uri=self.uri)

    def faults(self):
        """I/O page faults this vmig's host reported and handed to the guest."""
        return self.q.cmd("query-vmig-devices")["faults"]


def source(rig, guest, extra=(), env=None):
    vm = Vm(rig, ["--guest-args", guest, *extra], env)
    check(vm.q.status() == "running", f"{vm.v.name} is not running")
    return vm


def wait_status(vm, status, timeout=30.0):
    deadline = time.monotonic() + timeout
    while vm.q.status() != status:
        check(time.monotonic() < deadline, f"{vm.v.name}: {vm.q.status()}, not {status}")
        time.sleep(0.02)


def hop(rig, src, extra=(), env=None, paused=False, **params):
    """One live migration of src to a fresh destination: (query-migrate, destination).
    paused: the destination's guest stays paused once loaded (stop while inmigrate)."""
    dst = Vm(rig, list(extra), env, incoming=True)
    if paused:
        dst.q.cmd("stop")
    if params:
        mt.set_params(src.q, **params)
    info = mt.migrate(src.q, dst.uri, timeout=90)
    sw = info.get("x-vmig", {}).get("switchover", {})
    log(f"{src.v.name} -> {dst.v.name}: {info['status']}, drain "
        f"{info.get('x-vmig', {}).get('switchover-us', {}).get('drain')} us, {sw}")
    return info, dst


def completed(info, src):
    check(info["status"] == "completed", f"migration {info}")
    mt.quit_source(src.v, src.q)


def sva_result(vm):
    rc = vm.v.wait(120)
    r = [x for x in mt.report(vm.v.guest_lines(), "RESULT") if x.get("workload") == "sva"]
    check(len(r) >= 1, f"{vm.v.name}: no sva RESULT {vm.v.tail()}")
    r = r[-1]
    log(f"{vm.v.name}: {r}")
    check(rc == 0 and r["status"] == "ok" and r["mismatches"] == "0" and
          int(r["faults"]) > 0 and r["descs"] == r["device_descs"],
          f"{vm.v.name}: sva {r} rc={rc} {vm.v.tail()}")
    return r


def migrate_inflight(rig, src, tries=4, extra=()):
    """Hops until one switchover drained faults; returns the last destination."""
    for i in range(tries):
        info, dst = hop(rig, src, extra)
        completed(info, src)
        if info["x-vmig"]["switchover"]["faults-drained"] > 0:
            return info, dst
        src = dst
    raise mt.Failure(f"{tries} migrations with sva running and no fault in flight")


def case_inflight(rig):
    src = source(rig, "workload=dma,remap,sva secs=4")
    mt.wait_text(src.v, "RESULT workload=remap")
    time.sleep(0.5)
    check(src.faults() > 0, "the source handled no fault before the migration")
    info, dst = migrate_inflight(rig, src)
    sw = info["x-vmig"]["switchover"]
    check(sw["faults-outstanding"] == 0 and sw["stes-reinstalled"] >= 1, f"{sw}")
    check(info["x-vmig"]["switchover-us"]["drain"] > 0, f"{info['x-vmig']}")
    time.sleep(0.5)
    check(dst.faults() > 0, "the destination handled no fault of its own")
    sva_result(dst)


def case_2level(rig):
    extra = ["--vcpus", "2"]
    src = source(rig, "workload=sva secs=8 strtab=2level", extra)
    mt.wait_line(src.v, "SMMU", timeout=20)
    time.sleep(1.0)
    info, dst = migrate_inflight(rig, src, extra=extra)
    check(info["x-vmig"]["switchover"]["stes-reinstalled"] >= 1, f"{info['x-vmig']}")
    r = sva_result(dst)
    check(int(r["aborted"]) == 3, f"every SSID's abort case ran: {r}")


def case_pingpong(rig):
    src = source(rig, "workload=sva secs=40")
    mt.wait_line(src.v, "SMMU", timeout=20)
    drained = 0
    for i in range(10):
        time.sleep(0.3)
        info, dst = hop(rig, src)
        completed(info, src)
        drained += info["x-vmig"]["switchover"]["faults-drained"]
        src = dst
    log(f"faults drained over 10 migrations: {drained}")
    check(drained > 0, "ten migrations with sva running and never a fault in flight")
    sva_result(src)


def case_held(rig):
    env = {"VMIG_TEST_DRAIN_HOLD_MS": "400"}
    src = source(rig, "workload=sva secs=10", env=env)
    mt.wait_line(src.v, "SMMU", timeout=20)
    time.sleep(1.0)
    info, dst = hop(rig, src, env=env)
    completed(info, src)
    sw = info["x-vmig"]["switchover"]
    check(sw["held-submissions"] > 0 and sw["held-replayed"] == sw["held-submissions"],
          f"the guest's writes during the drain were not carried and replayed: {sw}")
    # Roll-back after the drain: the destination's host refuses the guest's stage 1 at
    # post-load (the last step before COMMIT).
    time.sleep(1.0)
    bad = Vm(rig, [], env={"VMIG_TEST_HOST_REFUSE_S1": "1"}, incoming=True)
    info = mt.migrate(dst.q, bad.uri, timeout=90)
    sw = info["x-vmig"]["switchover"]
    log(f"refused: {info.get('error-desc')} {sw}")
    check(info["status"] == "failed" and sw["held-replayed"] > 0,
          f"the source did not replay the held writes itself: {info}")
    mt.assert_source_running(dst.q, "after the refused migration")
    sva_result(dst)


def stall_guest(rig, delay_ms, env=None):
    src = source(rig, f"workload=sva secs=8 stalldelay={delay_ms}", env=env)
    mt.wait_text(src.v, "sva: holding a stall")
    return src


def case_delayed(rig):
    src = stall_guest(rig, 2500)
    info, dst = hop(rig, src, x_vmig_drain_limit=6000)
    completed(info, src)
    check(info["x-vmig"]["switchover"]["faults-drained"] >= 1, f"{info['x-vmig']}")
    sva_result(dst)


def drain_cancelled(src, info, limit_ms):
    err = info.get("error-desc", "")
    drain_ms = info["x-vmig"]["switchover-us"]["drain"] / 1000
    log(f"cancelled after a {drain_ms:.0f} ms drain: {err}")
    check(info["status"] == "failed" and f"did not drain within {limit_ms} ms" in err and
          "1 I/O page faults outstanding" in err, f"migration {info}")
    check(limit_ms <= drain_ms < limit_ms + 1000, f"the drain took {drain_ms} ms")
    mt.assert_source_running(src.q, "after the drain bound")
    sva_result(src)


def case_vcpus_first(rig):
    src = stall_guest(rig, 2500, env={"VMIG_TEST_VCPUS_FIRST": "1"})
    info, dst = hop(rig, src, x_vmig_drain_limit=6000)
    drain_cancelled(src, info, 6000)


def case_no_answer(rig):
    src = stall_guest(rig, 4000)
    info, dst = hop(rig, src, x_vmig_drain_limit=1000)
    drain_cancelled(src, info, 1000)


def case_refused(rig):
    """The destination's host refuses the guest's stage-1 configuration that the source's
    host had in force (VMIG_TEST_HOST_REFUSE_S1=1 there): post-load fails the migration
    before COMMIT, the source goes on and its guest finishes clean."""
    src = source(rig, "workload=sva secs=6")
    mt.wait_line(src.v, "SMMU", timeout=20)
    time.sleep(1.0)
    info, dst = hop(rig, src, env={"VMIG_TEST_HOST_REFUSE_S1": "1"})
    err = info.get("error-desc", "")
    check(info["status"] == "failed" and "refused the guest's configuration of stream" in err,
          f"migration {info}")
    check(dst.v.wait(20) == 1, f"{dst.v.name}: exit {dst.v.rc} {dst.v.tail()}")
    check(not dst.v.guest_lines(), f"{dst.v.name}: its guest ran {dst.v.tail()}")
    mt.assert_source_running(src.q, "after the refused post-load")
    sva_result(src)


# What the host translates: the source's host (stopped after the migration) against the
# destination's, sampled over every SSID the guest configured.
SAMPLES = [(ssid, iova, count, step) for ssid in (None, 1, 2, 1025)
           for iova, count, step in ((0x10000000, 32, 4096),)] + \
    [(None, 0x40000000, 1024, 16384), (None, 0x50000000, 1024, 16384)]


def translations(vm):
    out = []
    for ssid, iova, count, step in SAMPLES:
        args = dict(iova=iova, count=count, step=step)
        if ssid is not None:
            args["ssid"] = ssid
        out += [(ssid, t["iova"], t["status"], t.get("ipa"), t.get("read"), t.get("write"),
                 t.get("event")) for t in vm.q.cmd("query-vmig-host-translation", **args)]
    return out


def post_load_hop(rig, guest, env=None):
    src = source(rig, guest)
    mt.wait_text(src.v, "RESULT workload=dma")
    time.sleep(1.5)  # sva has set up SSIDs 1, 2 and 1025
    info, dst = hop(rig, src, env=env, paused=True)
    check(info["status"] == "completed", f"migration {info}")
    wait_status(dst, "paused")
    before, after = translations(src), translations(dst)
    dst.q.cmd("cont")
    mt.quit_source(src.v, src.q)
    ok = sum(1 for t in before if t[2] == "ok")
    untagged = [t for t in before if t[0] is None and t[1] == 0x50000000][0]
    log(f"{len(before)} sampled translations, {ok} mapped on the source; untagged DMA "
        f"{'through SSID 0' if untagged[2] == 'ok' else 'in bypass'}")
    check(ok >= 9, f"too few mapped translations to compare: {ok}")
    return dst, before, after


def case_post_load(rig):
    """Post-load leaves the destination's host translating every SSID of the guest's stream
    exactly as the source's host did (same stage-1 output, permissions, faults), sampled
    over the driver pages of each SSID and the DMA windows, while the guest flips its STE
    every sva round (stetoggle=1: the last STE written before the switchover must be the
    one in force there); its negative control (the destination skips post-load:
    VMIG_TEST_SKIP_POST_LOAD=1) differs."""
    dst, before, after = post_load_hop(rig, "workload=dma,sva secs=6 stetoggle=1")
    diff = [(b, a) for b, a in zip(before, after) if b != a]
    check(not diff, f"{len(diff)} translations differ, e.g. {diff[:3]}")
    r = sva_result(dst)
    check(int(r.get("ste_toggles", "0")) > 0, f"the guest never changed its STE: {r}")
    dst, before, after = post_load_hop(rig, "workload=dma,sva secs=6",
                                       env={"VMIG_TEST_SKIP_POST_LOAD": "1"})
    diff = [(b, a) for b, a in zip(before, after) if b != a]
    log(f"without post-load: {len(diff)} of {len(before)} differ, e.g. {diff[:1]}")
    check(len(diff) > 1000, "without post-load the translations still match")
    dst.v.kill()


# Hostile streams: records of the vSMMU and device sections rewritten with valid checksums.


HDR_LEN, REC = 64, struct.Struct("<HHIQIIII")  # mig_hdr; mig_rec (28 bytes + crc)


def records(data):
    """(offset, section, type, len, arg, count, seq) of every record after the header."""
    off, out = HDR_LEN, []
    while off + REC.size <= len(data):
        sec, typ, ln, arg, cnt, _dcrc, seq, _crc = REC.unpack_from(data, off)
        out.append((off, sec, typ, ln, arg, cnt, seq))
        off += REC.size + ln
    return out


def rewrite(data, rec, payload, count=None):
    """data with record rec replaced by one carrying payload (and count), checksums valid."""
    off, sec, typ, ln, arg, cnt, seq = rec
    cnt = cnt if count is None else count
    head = struct.pack("<HHIQIII", sec, typ, len(payload), arg, cnt, mt.crc32c(payload), seq)
    return data[:off] + head + struct.pack("<I", mt.crc32c(head)) + payload + \
        data[off + REC.size + ln:]


def find(recs, sec, typ):
    r = [x for x in recs if x[1] == sec and x[2] == typ]
    check(len(r) == 1, f"{len(r)} records of section {sec} type {typ}")
    return r[0]


def payload(data, rec):
    return data[rec[0] + REC.size:rec[0] + REC.size + rec[3]]


def hostile_variants(data):
    recs = records(data)
    held, streams, st = find(recs, 8, 3), find(recs, 4, 2), find(recs, 4, 1)
    hp, sp, vp = payload(data, held), payload(data, streams), payload(data, st)
    out = struct.pack("<IIQ", 0x100000, 8, 0)  # a write outside BAR0
    stall = struct.pack("<IIIII", 0, 5, 0x10, 0, 77)  # ssv, stag, vsid, ssid, cookie
    vs = bytearray(vp[:-4]) + struct.pack("<I", 1) + stall
    struct.pack_into("<I", vs, 8, len(vs))
    bits = bytearray(vp)
    struct.pack_into("<I", bits, 16, struct.unpack_from("<I", bits, 16)[0] + 1)
    return [
        ("held write outside BAR0", rewrite(data, held, out + hp[16:]),
         "held register writes are not writes this device takes"),
        ("too many held writes", rewrite(data, held, out * 4097, count=4097),
         "malformed held register writes"),
        ("held count and length disagree", rewrite(data, held, hp, count=held[5] + 1),
         "malformed held register writes"),
        ("bad stream flag", rewrite(data, streams, sp[:4] + struct.pack("<I", 7) + sp[8:]),
         "malformed list of attached streams"),
        ("a stall in the vSMMU state", rewrite(data, st, bytes(vs)),
         "stalled faults of the source's host"),
        ("another vSMMU", rewrite(data, st, bytes(bits)), "does not fit this vSMMU"),
    ]


def case_hostile_stream(rig):
    """A saved stream whose vSMMU and device records are rewritten (checksums recomputed):
    held writes outside the device, too many, inconsistent; a bad attached-stream flag; a
    vSMMU state with a stall in it or for another vSMMU. Each is refused with its reason
    and the guest never runs; the untouched stream loads and runs."""
    src = source(rig, "workload=sva secs=6", env={"VMIG_TEST_DRAIN_HOLD_MS": "400"})
    mt.wait_line(src.v, "SMMU", timeout=20)
    time.sleep(1.0)
    path = rig.path("snap.vmig")
    info = mt.migrate(src.q, "file:" + path, timeout=90)
    check(info["status"] == "completed" and
          info["x-vmig"]["switchover"]["held-submissions"] > 0, f"snapshot {info}")
    src.q.cmd("quit")
    with open(path, "rb") as f:
        data = f.read()
    for what, bad, reason in hostile_variants(data):
        bad_path = rig.path("bad.vmig")
        with open(bad_path, "wb") as f:
            f.write(bad)
        v = mt.Vmig(rig, f"bad{rig.n}", ["run", "--mem", MEM, "--timeout", "60", "--incoming",
                                         "file:" + bad_path])
        err = mt.assert_never_ran(v)
        log(f"{what}: {err}")
        check(reason in err, f"{what}: {err}")
    good = mt.Vmig(rig, "good", ["run", "--mem", MEM, "--timeout", "60", "--incoming",
                                 "file:" + path])
    check(good.wait(60) == 0, f"the untouched stream: {good.tail()}")


if __name__ == "__main__":
    sys.exit(mt.main({"inflight": case_inflight, "2level": case_2level,
                      "pingpong": case_pingpong, "held": case_held, "delayed": case_delayed,
                      "vcpus-first": case_vcpus_first, "no-answer": case_no_answer,
                      "refused": case_refused, "hostile-stream": case_hostile_stream,
                      "post-load": case_post_load},
                     __doc__))
