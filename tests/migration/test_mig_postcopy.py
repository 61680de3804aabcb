#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Post-copy (issue 12), real vmig processes on loopback through QMP, no devices.

usage: test_mig_postcopy.py VMIG CASE

  dirty     dirty,verify over 64 MiB at 8000 pages/s, pre-copy at 24 MiB/s (it never
            converges), 1 s before the dirtying ends, then migrate-start-postcopy: the destination runs at once,
            its faults fetch pages ahead of the rest, every page arrives; the guest ends
            verified on the destination, both sides completed, the source postmigrate,
            query-migrate's post-copy figures (discarded pages, requests, fault latency)
  negative  the negative control: the same with the destination dropping its userfaultfd
            registration as soon as the guest runs, the pages still to come absent
            (VMIG_TEST_POSTCOPY_UNREGISTER_EARLY=1): the guest must find mismatches
  auto      the same guest moved by `vmig migrate --postcopy-after 2` (x-vmig-postcopy-after):
            the engine switches by itself after two passes over the limit, the summary
            says post-copy; verified clean
  refused   what post-copy cannot do is refused at migrate with a reason (multifd, a file);
            migrate-start-postcopy without the capability or without a migration
  hostile   a proxy between the two rewrites the source's stream: the first pre-copy page
            arrives corrupt (its checksum fails: the destination must ask for it in
            post-copy, not give up), and after the first post-copy page it sends that page
            again, then again with other bytes (both arrive for a page already placed: kept
            as it is, counted as duplicates); the guest verifies clean. In a second
            migration a post-copy page outside guest RAM (the destination fails, says so)
"""
import os
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import migtest as mt  # noqa: E402
from migtest import check, log  # noqa: E402

PC_CAP = [{"capability": "postcopy-ram", "state": True}]
BW = 24 << 20  # bytes/s: 6144 pages/s, less than the guest dirties
RATE = 8000  # pages/s the guest rewrites: a sweep over its 16384 pages takes 2 s
SECS = 8  # of dirtying; post-copy starts at SWITCH_AT, so the destination rewrites only a
SWITCH_AT = 7.0  # part of the pages (at most RATE per second) before verify reads them all


def source(rig):
    """The guest dirties its 64 MiB at RATE pages/s for SECS s, verifies every page, then
    idles SECS s (the destination stays up until post-copy is over)."""
    sock = rig.path("src.sock")
    v = mt.Vmig(rig, f"src{rig.n}", ["run", "--no-devices", "--vcpus", mt.GUEST_VCPUS, "--mem",
                                     mt.GUEST_MEM, "--qmp", "unix:" + sock, "--timeout",
                                     str(mt.VMIG_TIMEOUT_S), "--guest-args",
                                     f"workload=dirty,verify,idle secs={SECS} ws=64M rate={RATE}"])
    q = mt.Qmp(sock, v)
    mt.wait_line(v, "PREPARED")
    return v, q, time.monotonic()


def postcopy_migration(rig, dst_env=None):
    """A 64 MiB dirtying guest that pre-copy cannot move at BW, moved in post-copy close to
    the end of its dirtying: verify then reads most pages as post-copy delivered them."""
    src, q, t0 = source(rig)
    dst, uri = rig.dest(env=dst_env)
    q.cmd("migrate-set-capabilities", capabilities=PC_CAP)
    mt.set_params(q, max_bandwidth=BW)
    mt.start(q, uri)
    info = mt.hold(q, t0 + SWITCH_AT)
    check(info["status"] == "active" and info["x-vmig"]["passes"] >= 2 and
          info["expected-downtime"] > 300, f"pre-copy converged or is stuck: {info}")
    log(f"pre-copy: {info['x-vmig']['passes']} passes, expected downtime "
        f"{info['expected-downtime']} ms, {info['ram']['remaining']} bytes dirty")
    q.cmd("migrate-start-postcopy")
    return src, q, dst, mt.wait_final(q, 60)


def dest_figures(dst):
    dq = mt.Qmp(dst.sock, dst)
    info = dq.cmd("query-migrate")
    dq.close()
    check(info["status"] == "completed", f"destination: {info}")
    return info["x-vmig"]["postcopy"]


def case_dirty(rig):
    src, q, dst, info = postcopy_migration(rig)
    check(info["status"] == "completed", f"source: {info}")
    pc = info["x-vmig"].get("postcopy", {})
    log(f"source: downtime {info['downtime']} ms, post-copy {pc}")
    check(pc.get("discarded-pages", 0) > 0 and pc.get("bytes", 0) > 0, f"source {pc}")
    check(info["ram"]["postcopy-bytes"] == pc["bytes"], f"postcopy-bytes {info['ram']}")
    pc = dest_figures(dst)
    log(f"destination post-copy: {pc}")
    check(pc["faults"] > 0 and pc["requests"] > 0 and pc["fault-us-p50"] > 0 and
          pc["fault-us-p99"] >= pc["fault-us-p50"], f"no fault was served: {pc}")
    mt.quit_source(src, q)
    mt.assert_verified(dst)


def case_auto(rig):
    src, q, t0 = source(rig)
    dst, uri = rig.dest()
    cli = subprocess.run([rig.vmig, "migrate", "--qmp", "unix:" + q.path, "--max-bandwidth",
                          str(BW), "--postcopy-after", "2", "--timeout", "60", uri],
                         capture_output=True, text=True, timeout=90)
    log(f"vmig migrate: exit {cli.returncode}\n{cli.stdout[-600:]}{cli.stderr[-300:]}")
    check(cli.returncode == 0 and "migration completed" in cli.stdout and
          "post-copy" in cli.stdout, "vmig migrate --postcopy-after did not complete in post-copy")
    info = q.cmd("query-migrate")
    tl = q.cmd("query-vmig-timeline")["passes"]
    over = [r for r in tl if r["expected-downtime-us"] > 300000]
    log(f"switched by itself after {len(tl)} passes ({len(over)} over the limit): "
        f"{info['x-vmig']['postcopy']}")
    check(len(over) >= 2, f"the switch came before two passes over the limit: {tl}")
    mt.quit_source(src, q)
    mt.assert_verified(dst)


def case_negative(rig):
    _, _, dst, info = postcopy_migration(
        rig, dst_env={"VMIG_TEST_POSTCOPY_UNREGISTER_EARLY": "1"})
    log(f"source: {info['status']} {info.get('error-desc', '')}")
    rc = dst.wait(60)
    ver = [r for r in mt.report(dst.guest_lines(), "RESULT") if r.get("workload") == "verify"]
    log(f"destination (registration dropped early): rc={rc} {ver} {dst.tail()[-300:]}")
    # Zeros where pages belong: a mismatch, or a guest that crashed on zeroed structures.
    check(rc != 0 and (not ver or int(ver[0]["mismatches"]) > 0),
          f"the pages read before they arrived went unnoticed: rc={rc} {ver}")


REC = struct.Struct("<HHIQIII")  # struct mig_rec without its crc
SEC_RAM, T_RAM_DATA, T_PC_DATA, T_PC_ZERO = 2, 1, 4, 5


class RecordProxy:
    """Forwards one migration connection, rewriting the source's records: after the first
    post-copy page it sends `inject(header, payload)`'s records too, and renumbers every
    record after them (a record's sequence number and crc are per channel)."""

    def __init__(self, target_uri, inject, corrupt=False):
        self.inject, self.injected, self.error = inject, 0, None
        self.corrupt = corrupt  # flip a byte of the first pre-copy page (its crc then fails)
        self.target = ("127.0.0.1", int(target_uri.rsplit(":", 1)[1]))
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(1)
        self.uri = f"tcp:127.0.0.1:{self.ls.getsockname()[1]}"
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    @staticmethod
    def _read(s, n):
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    @staticmethod
    def rec(fields, payload):
        h = REC.pack(*fields)
        return h + struct.pack("<I", mt.crc32c(h)) + payload

    def _down(self, d, s):
        try:
            while True:
                data = d.recv(1 << 16)
                if not data:
                    break
                s.sendall(data)
        except OSError:
            pass
        self._shut(s, d)

    @staticmethod
    def _shut(*socks):
        for x in socks:
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _up(self, s, d):
        d.sendall(self._read(s, 64))
        while True:
            fields = list(REC.unpack(self._read(s, REC.size)))
            self._read(s, 4)
            payload = self._read(s, fields[2])
            if self.corrupt and fields[0] == SEC_RAM and fields[1] == T_RAM_DATA:
                payload = bytes([payload[0] ^ 1]) + payload[1:]
                self.corrupt = False
            fields[6] += self.injected
            d.sendall(self.rec(fields, payload))
            if fields[0] == SEC_RAM and fields[1] in (T_PC_DATA, T_PC_ZERO) and \
                    not self.injected:
                extra = self.inject(fields, payload)
                for i, (f, p) in enumerate(extra):
                    f[6] = fields[6] + 1 + i
                    d.sendall(self.rec(f, p))
                self.injected = len(extra)

    def _run(self):
        try:
            s, _ = self.ls.accept()
            d = socket.create_connection(self.target)
        except OSError:
            return
        threading.Thread(target=self._down, args=(d, s), daemon=True).start()
        try:
            self._up(s, d)
        except (EOFError, OSError) as e:
            self.error = repr(e)
        self._shut(s, d)

    def close(self):
        self.ls.close()
        self.t.join(30)


def again_and_tampered(fields, payload):
    """The same page again, then again with other bytes (a valid record each)."""
    other = bytes(b ^ 0x5A for b in payload)
    tampered = list(fields)
    tampered[5] = mt.crc32c(other)
    return [(list(fields), payload), (tampered, other)]


def outside_ram(fields, payload):
    far = list(fields)
    far[3] = 1 << 46
    return [(far, payload)]


def proxied_migration(rig, inject, corrupt=False):
    src, q, t0 = source(rig)
    dst, uri = rig.dest()
    proxy = RecordProxy(uri, inject, corrupt)
    q.cmd("migrate-set-capabilities", capabilities=PC_CAP)
    mt.set_params(q, max_bandwidth=BW)
    mt.start(q, proxy.uri)
    mt.hold(q, t0 + SWITCH_AT)
    q.cmd("migrate-start-postcopy")
    info = mt.wait_final(q, 60)
    proxy.close()
    check(proxy.injected, f"the proxy saw no post-copy page: {info} {proxy.error}")
    return src, q, dst, info


def case_hostile(rig):
    src, q, dst, info = proxied_migration(rig, again_and_tampered, corrupt=True)
    check(info["status"] == "completed", f"source: {info}")
    pc = dest_figures(dst)
    log(f"destination post-copy with a page sent again and tampered: {pc}")
    check(pc["duplicates"] >= 2, f"the injected arrivals were not refused as duplicates: {pc}")
    mt.quit_source(src, q)
    mt.assert_verified(dst)
    src, q, dst, info = proxied_migration(rig, outside_ram)
    dq = mt.Qmp(dst.sock, dst)
    dinfo = mt.wait_final(dq, 30)
    dq.close()
    log(f"page outside RAM: destination {dinfo['status']}: {dinfo.get('error-desc')}")
    check(dinfo["status"] == "failed" and "outside guest RAM" in dinfo.get("error-desc", ""),
          f"destination: {dinfo}")
    check(info["status"] == "failed", f"source: {info}")
    src.kill()
    dst.kill()


def refused(q, uri, what):
    try:
        q.cmd("migrate", uri=uri)
    except mt.QmpError as e:
        log(f"{what}: refused: {e}")
        check("postcopy-ram" in str(e), f"{what}: the reason does not name post-copy: {e}")
        return
    raise mt.Failure(f"{what}: migrate was accepted")


def case_refused(rig):
    src, q = rig.source(6)
    try:
        q.cmd("migrate-start-postcopy")
        raise mt.Failure("migrate-start-postcopy without a migration was accepted")
    except mt.QmpError as e:
        log(f"no migration: {e}")
    q.cmd("migrate-set-capabilities",
          capabilities=PC_CAP + [{"capability": "multifd", "state": True}])
    refused(q, f"tcp:127.0.0.1:{mt.free_port()}", "multifd")
    q.cmd("migrate-set-capabilities", capabilities=[{"capability": "multifd", "state": False}])
    refused(q, "file:" + rig.path("snap"), "file")
    q.cmd("migrate-set-capabilities",
          capabilities=[{"capability": "postcopy-ram", "state": False}])
    dst, uri = rig.dest()
    mt.set_params(q, max_bandwidth=8 << 20)
    mt.start(q, uri)
    try:
        q.cmd("migrate-start-postcopy")
        raise mt.Failure("migrate-start-postcopy without postcopy-ram was accepted")
    except mt.QmpError as e:
        log(f"without the capability: {e}")
        check("postcopy-ram" in str(e), f"{e}")
    mt.set_params(q, max_bandwidth=0)
    info = mt.wait_final(q, 60)
    check(info["status"] == "completed" and "postcopy" not in info["x-vmig"], f"{info}")
    mt.quit_source(src, q)
    mt.assert_verified(dst)


if __name__ == "__main__":
    sys.exit(mt.main({"dirty": case_dirty, "negative": case_negative, "refused": case_refused,
                      "hostile": case_hostile, "auto": case_auto}, __doc__))
