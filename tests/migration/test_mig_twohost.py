#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Two hosts on a real network stack (issue 11). Usage: test_mig_twohost.py VMIG all

The destination runs in a network namespace of its own, joined to the source's by a veth
pair whose both ends are rate-limited by tc's token bucket (tbf, 200 Mbit/s). Then:
  across     a guest (`dirty,verify`) migrates across the link and verifies clean there
  mid-pass   another guest starts migrating; once a pass is well under way the link goes
             down: the source rolls back (failed, its guest runs on), the destination gives
             up with a clear error within its bound, its guest never ran
  mid-switchover  the link goes down once the source stopped its vCPUs for the switchover
             (status "device", a large downtime limit keeps that phase long): the same
  after      the link comes back up; the same guest migrates across and verifies clean
The test makes and removes its namespace and veth pair itself; it skips (exit 77) with
the reason where it may not create them (not root, no netns or tbf support).
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import migtest as mt  # noqa: E402
from migtest import check, log  # noqa: E402

RATE = "200mbit"
GIVE_UP_S = 45  # both sides' silence bounds (30 s) and some slack


def sh(*cmd):
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=20)


class Link:
    """A namespace `ns` with one end of a veth pair; the other end stays here."""

    def __init__(self):
        tag = os.getpid() % 100000
        self.ns, self.here, self.there = f"vmig{tag}", f"vms{tag}", f"vmd{tag}"
        net = 10 + tag % 200
        self.ip_here, self.ip_there = f"10.{net}.77.1", f"10.{net}.77.2"
        steps = [
            ("ip", "netns", "add", self.ns),
            ("ip", "link", "add", self.here, "type", "veth", "peer", "name", self.there),
            ("ip", "link", "set", self.there, "netns", self.ns),
            ("ip", "addr", "add", self.ip_here + "/24", "dev", self.here),
            ("ip", "-n", self.ns, "addr", "add", self.ip_there + "/24", "dev", self.there),
            ("ip", "link", "set", self.here, "up"),
            ("ip", "-n", self.ns, "link", "set", self.there, "up"),
            ("ip", "-n", self.ns, "link", "set", "lo", "up"),
            ("tc", "qdisc", "add", "dev", self.here, "root", "tbf", "rate", RATE, "burst",
             "256kb", "latency", "50ms"),
            ("tc", "-n", self.ns, "qdisc", "add", "dev", self.there, "root", "tbf", "rate",
             RATE, "burst", "256kb", "latency", "50ms"),
        ]
        for cmd in steps:
            r = sh(*cmd)
            if r.returncode != 0:
                self.close()
                raise mt.Skip(f"cannot set up the namespaced link ({' '.join(cmd)}: "
                              f"{r.stderr.strip()})")
        log(f"link: {self.here} {self.ip_here} <-> {self.ns}/{self.there} {self.ip_there}, "
            f"tbf {RATE} both ways")

    def set(self, up):
        r = sh("ip", "link", "set", self.here, "up" if up else "down")
        check(r.returncode == 0, f"link {'up' if up else 'down'}: {r.stderr}")

    def close(self):
        sh("ip", "link", "del", self.here)
        sh("ip", "netns", "del", self.ns)


def dest(rig, link):
    """A destination in the namespace, listening on its end of the link: (Vmig, uri)."""
    port = mt.free_port()
    uri = f"tcp:{link.ip_there}:{port}"
    rig.path("dst")
    v = mt.Vmig(rig, f"dst{rig.n}", ["run", "--no-devices", "--vcpus", mt.GUEST_VCPUS,
                                     "--mem", mt.GUEST_MEM, "--timeout",
                                     str(mt.VMIG_TIMEOUT_S), "--incoming", uri],
                prefix=("ip", "netns", "exec", link.ns))
    deadline = time.monotonic() + 10
    # Listening? Asked of the kernel (a test connection would be taken for the source).
    while f"{link.ip_there}:{port}" not in sh("ip", "netns", "exec", link.ns, "ss",
                                               "-ltnH").stdout:
        check(v.poll() is None and time.monotonic() < deadline, f"{v.name} never listened")
        time.sleep(0.05)
    return v, uri


def converge(q):
    """The guest dirties faster than the link carries: auto-converge, a second's pause."""
    mt.set_caps(q, auto_converge=True)
    mt.set_params(q, downtime_limit=1000)


def across(rig, link):
    src, q = rig.source(30)
    converge(q)
    dst, uri = dest(rig, link)
    info = mt.migrate(q, uri, timeout=60)
    check(info["status"] == "completed", f"across the link: {info}")
    log(f"across: {info['ram']['transferred']} bytes in {info['total-time']} ms, "
        f"downtime {info['downtime']} ms")
    mt.quit_source(src, q)
    mt.assert_verified(dst, timeout=60)


def cut(rig, link, q, when, what):
    """Starts a migration, cuts the link once when(q, info) holds; checks both sides."""
    dst, uri = dest(rig, link)
    mt.start(q, uri)
    deadline = time.monotonic() + 30
    while True:
        info = q.cmd("query-migrate")
        check(info.get("status") not in mt.FINAL, f"{what}: ended before the cut: {info}")
        if when(info):
            break
        check(time.monotonic() < deadline, f"{what}: the moment never came: {info}")
        time.sleep(0.005)
    t0 = time.monotonic()
    link.set(False)
    info = mt.wait_final(q, timeout=GIVE_UP_S)
    took = time.monotonic() - t0
    err = info.get("error-desc", "")
    check(info["status"] == "failed" and err, f"{what}: {info}")
    mt.assert_source_running(q, what)
    check("dead link" in err or "stopped answering" in err, f"{what}: source says {err}")
    why = mt.assert_never_ran(dst, timeout=GIVE_UP_S)
    check("dead link" in why, f"{what}: destination says {why}")
    log(f"{what}: source rolled back after {took:.1f} s: {err}; destination: {why}")
    link.set(True)


def case_all(rig):
    link = Link()
    try:
        across(rig, link)
        src, q = rig.source(100)
        mt.set_params(q, max_bandwidth=0)
        cut(rig, link, q, lambda i: i.get("status") == "active" and
            i.get("ram", {}).get("transferred", 0) > (8 << 20), "mid-pass")
        mt.set_params(q, downtime_limit=4000)
        cut(rig, link, q, lambda i: i.get("status") == "device", "mid-switchover")
        converge(q)
        dst, uri = dest(rig, link)
        info = mt.migrate(q, uri, timeout=60)
        check(info["status"] == "completed", f"after the link came back: {info}")
        mt.quit_source(src, q)
        r = mt.assert_verified(dst, timeout=200)
        log(f"after: verified clean across the link, checked={r['checked']}")
    finally:
        link.close()


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("SKIP: network namespaces need root")
        sys.exit(77)
    sys.exit(mt.main({"all": case_all}, __doc__))
