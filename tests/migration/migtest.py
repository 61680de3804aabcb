# SPDX-License-Identifier: Apache-2.0
"""Shared pieces of the migration system tests (test_mig_faults.py): a QMP client, real
`vmig` processes (output to files, killed at the end whatever happens), a seeded random
source (VMIG_FUZZ_SEED), and the checks every case repeats: a guest that verified clean, a
destination whose guest never ran.

Everything here is bounded in time: a QMP read, a process wait, a migration wait.
"""
import ctypes
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

GUEST_MEM = "512M"
GUEST_VCPUS = "2"
VMIG_TIMEOUT_S = 150  # every vmig process ends by itself after this (--timeout)
FINAL = ("completed", "failed", "cancelled")


class Failure(Exception):
    pass


class Skip(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def log(*a):
    print(*a, flush=True)


# Seeded randomness ---------------------------------------------------------------------


def make_rng():
    """random.Random seeded from VMIG_FUZZ_SEED (decimal or 0x hex), else a fresh seed."""
    text = os.environ.get("VMIG_FUZZ_SEED")
    seed = int(text, 0) if text else random.SystemRandom().getrandbits(32)
    log(f"seed=0x{seed:x} (reproduce: VMIG_FUZZ_SEED=0x{seed:x})")
    return random.Random(seed)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# QMP -----------------------------------------------------------------------------------


class QmpError(Exception):
    def __init__(self, cmd, err):
        super().__init__(f"{cmd}: {err.get('class')}: {err.get('desc')}")
        self.desc = err.get("desc", "")


class Qmp:
    """One QMP connection; events read on the way to a reply are kept in self.events."""

    def __init__(self, path, proc=None, timeout=10.0):
        self.path = path
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                if proc is not None and proc.poll() is not None:
                    raise Failure(f"{proc.name} exited ({proc.rc}) before its QMP socket")
                check(time.monotonic() < deadline, f"no QMP socket at {path}")
                time.sleep(0.02)
        self.s.settimeout(timeout)
        self.buf = b""
        self.events = []
        self._recv()  # the greeting
        self.cmd("qmp_capabilities")

    def close(self):
        self.s.close()

    def _recv(self):
        while b"\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("QMP: the server closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        msg = json.loads(line)
        if "event" in msg:
            msg["t"] = time.monotonic()
            self.events.append(msg)
        return msg

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.s.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            m = self._recv()
            if "return" in m:
                return m["return"]
            if "error" in m:
                raise QmpError(name, m["error"])

    def wait_event(self, pred, timeout):
        """The first kept or new event with pred(event) true; kept events before it stay."""
        deadline = time.monotonic() + timeout
        while True:
            for e in self.events:
                if pred(e):
                    self.events.remove(e)
                    return e
            left = deadline - time.monotonic()
            check(left > 0, "QMP: the awaited event did not come")
            self.s.settimeout(left)
            try:
                self._recv()
            except socket.timeout:
                pass
            finally:
                self.s.settimeout(10.0)

    def status(self):
        return self.cmd("query-status")["status"]


def mig_event(status):
    return lambda e: e["event"] == "MIGRATION" and e["data"]["status"] == status


# vmig processes ------------------------------------------------------------------------

_LIBC = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _die_with_parent():
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Vmig:
    """A vmig process: stdout and stderr go to files (never a pipe that could fill)."""

    def __init__(self, rig, name, args, env=None, prefix=()):
        self.name, self.rig = name, rig
        self.out_path = os.path.join(rig.dir, name + ".out")
        self.err_path = os.path.join(rig.dir, name + ".err")
        full_env = dict(os.environ, **(env or {}))
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.p = subprocess.Popen([*prefix, rig.vmig, *args], stdin=subprocess.DEVNULL,
                                      stdout=out,
                                      stderr=err, env=full_env, preexec_fn=_die_with_parent)
        self.rc = None
        self.timed_out = False  # killed by wait() below: a hang, not a crash
        rig.procs.append(self)

    def poll(self):
        if self.rc is None:
            self.rc = self.p.poll()
        return self.rc

    def wait(self, timeout):
        try:
            self.rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.timed_out = True
            self.kill()
            raise Failure(f"{self.name} still running after {timeout} s: {self.tail()}")
        return self.rc

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.rc = self.p.wait()

    def out(self):
        with open(self.out_path, errors="replace") as f:
            return f.read()

    def err(self):
        with open(self.err_path, errors="replace") as f:
            return f.read()

    def guest_lines(self):
        return [l[7:] for l in self.out().splitlines() if l.startswith("guest: ")]

    def tail(self):
        return f"[{self.name} stdout: {self.out()[-600:]!r} stderr: {self.err()[-600:]!r}]"


def wait_line(v, kind, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not report(v.guest_lines(), kind):
        check(v.poll() is None and time.monotonic() < deadline, f"{v.name}: no {kind} line")
        time.sleep(0.02)


def wait_text(v, text, timeout=60.0):
    """Until a guest console line of v contains text."""
    deadline = time.monotonic() + timeout
    while not any(text in line for line in v.guest_lines()):
        check(v.poll() is None and time.monotonic() < deadline,
              f"{v.name}: no '{text}' {v.tail()}")
        time.sleep(0.02)


def guest_args(secs, ws="32M"):
    return f"workload=dirty,verify secs={secs} ws={ws}"


class Rig:
    """A test's processes, files and randomness; cleanup kills whatever still runs."""

    def __init__(self, vmig, rng):
        self.vmig, self.rng = vmig, rng
        self.dir = tempfile.mkdtemp(prefix="vmig-faults-")
        self.procs = []
        self.n = 0

    def close(self, keep):
        for p in self.procs:
            p.kill()
        if keep:
            log(f"files kept in {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        self.n += 1
        return os.path.join(self.dir, f"{self.n}-{name}")

    def source(self, secs, ws="32M", env=None, extra=()):
        """A running guest with a control socket: (Vmig, Qmp)."""
        sock = self.path("src.sock")
        v = Vmig(self, f"src{self.n}", ["run", "--no-devices", "--vcpus", GUEST_VCPUS, "--mem",
                                        GUEST_MEM, "--qmp", "unix:" + sock, "--timeout",
                                        str(VMIG_TIMEOUT_S), "--guest-args",
                                        guest_args(secs, ws), *extra], env)
        q = Qmp(sock, v)
        check(q.status() == "running", f"{v.name} is not running")
        wait_line(v, "PREPARED")  # the working set is written: the guest is in its stride
        return v, q

    def dest(self, uri=None, env=None):
        """A destination listening on uri (default: a fresh TCP port): (Vmig, uri).
        Through --incoming defer, so it listens when this returns."""
        uri = uri or f"tcp:127.0.0.1:{free_port()}"
        sock = self.path("dst.sock")
        v = Vmig(self, f"dst{self.n}", ["run", "--no-devices", "--vcpus", GUEST_VCPUS, "--mem",
                                        GUEST_MEM, "--qmp", "unix:" + sock, "--timeout",
                                        str(VMIG_TIMEOUT_S), "--incoming", "defer"], env)
        q = Qmp(sock, v)
        check(q.status() == "inmigrate", f"{v.name} is not inmigrate")
        q.cmd("migrate-incoming", uri=uri)
        q.close()
        v.sock = sock
        return v, uri


# Driving a migration -------------------------------------------------------------------


def set_caps(q, channels=0, auto_converge=False):
    q.cmd("migrate-set-capabilities",
          capabilities=[{"capability": "multifd", "state": channels > 0},
                        {"capability": "auto-converge", "state": auto_converge}])
    if channels:
        q.cmd("migrate-set-parameters", **{"multifd-channels": channels})


def set_params(q, **params):
    q.cmd("migrate-set-parameters", **{k.replace("_", "-"): v for k, v in params.items()})


def start(q, uri):
    q.events.clear()
    q.cmd("migrate", uri=uri)
    return time.monotonic()


def wait_final(q, timeout=30.0):
    """query-migrate once the status is final."""
    deadline = time.monotonic() + timeout
    while True:
        info = q.cmd("query-migrate")
        if info.get("status") in FINAL:
            return info
        check(time.monotonic() < deadline, f"migration not over after {timeout} s: {info}")
        time.sleep(0.01)


def hold(q, until):
    """Waits until time.monotonic() reaches until, reading query-migrate meanwhile: vmig drops
    a control client that leaves its events unread. The migration's status at the end."""
    while True:
        info = q.cmd("query-migrate")
        if time.monotonic() >= until:
            return info
        time.sleep(0.02)


def migrate(q, uri, timeout=30.0):
    start(q, uri)
    return wait_final(q, timeout)


# What a guest printed ------------------------------------------------------------------


def report(lines, kind):
    """Report lines 'KIND key=value ...' of that kind, as dicts."""
    out = []
    for l in lines:
        words = l.split()
        if words and words[0] == kind:
            out.append(dict(w.split("=", 1) for w in words[1:] if "=" in w))
    return out


def assert_verified(v, timeout=60.0):
    """The guest ran to its end in v and verified every page it owns."""
    rc = v.wait(timeout)
    lines = v.guest_lines()
    ver = report(lines, "RESULT")
    ver = [r for r in ver if r.get("workload") == "verify"]
    check(rc == 0, f"{v.name} exited {rc} {v.tail()}")
    check(len(ver) == 1, f"{v.name}: {len(ver)} verify RESULT lines {v.tail()}")
    r = ver[0]
    check(r.get("mismatches") == "0" and r.get("sse_bad") == "0" and r.get("status") == "ok"
          and int(r.get("checked", "0")) > 0, f"{v.name}: verify {r}")
    done = report(lines, "DONE")
    check(len(done) == 1 and done[0].get("status") == "0", f"{v.name}: DONE {done}")
    return r


def assert_never_ran(v, timeout=20.0, killed=False):
    """v's guest never ran: it exited non-zero (or was killed) with no guest output."""
    rc = v.wait(timeout)
    if killed:
        check(rc == -signal.SIGKILL, f"{v.name}: exit {rc}, expected SIGKILL")
    else:
        check(rc == 1, f"{v.name}: exit {rc}, expected 1 {v.tail()}")
        errs = [l for l in v.err().splitlines() if "incoming migration failed" in l]
        check(len(errs) == 1, f"{v.name}: no one-line reason {v.tail()}")
    check(not v.guest_lines(), f"{v.name}: its guest ran {v.tail()}")
    return v.err().strip()


def assert_source_running(q, what):
    check(q.status() == "running", f"{what}: the source is {q.status()}, not running")


def quit_source(v, q):
    """A source whose guest moved away: quit, exit 0."""
    check(q.status() == "postmigrate", f"{v.name}: {q.status()} after completion")
    try:
        q.cmd("quit")
    except (EOFError, OSError):
        pass
    q.close()
    check(v.wait(10) == 0, f"{v.name}: exit {v.rc} after quit {v.tail()}")


# Stream records ------------------------------------------------------------------------


def _crc32c_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        t.append(c)
    return t


CRC_T = _crc32c_table()


def crc32c(data):
    """CRC-32C (Castagnoli), as src/common/crc32c.c computes it from 0."""
    crc = 0xFFFFFFFF
    for b in data:
        crc = (crc >> 8) ^ CRC_T[(crc ^ b) & 0xFF]
    return crc ^ 0xFFFFFFFF


# Running a case ------------------------------------------------------------------------


def bench(name, value, unit):
    """A benchmark figure, in the project's format."""
    print(f"BENCH {name} {value:.3f} {unit}", flush=True)


def bench_rig(doc):
    """A benchmark's start (usage: SCRIPT VMIG): its Rig, or None when KVM is not usable
    here (it said SKIP; exit 77)."""
    if len(sys.argv) != 2:
        sys.exit(doc)
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("SKIP: /dev/kvm is not usable here")
        return None
    return Rig(os.path.abspath(sys.argv[1]), None)


def main(cases, doc):
    if len(sys.argv) != 3 or sys.argv[2] not in cases:
        sys.exit(f"usage: {sys.argv[0]} VMIG {{{'|'.join(cases)}}}\n{doc}")
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("SKIP: /dev/kvm is not usable here")
        return 77
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("killed by SIGTERM (meson timeout?)"))
    rig = Rig(os.path.abspath(sys.argv[1]), make_rng())
    t0, ok = time.monotonic(), False
    try:
        cases[sys.argv[2]](rig)
        ok = True
    except Skip as e:
        print(f"SKIP {sys.argv[2]}: {e}", flush=True)
        ok = True  # nothing to keep
        return 77
    except (Failure, QmpError, EOFError, OSError) as e:
        traceback.print_exc(limit=-4, file=sys.stdout)
        print(f"FAIL {sys.argv[2]}: {e}", flush=True)
    finally:
        rig.close(keep=not ok)
    log(f"{'PASS' if ok else 'FAIL'} {sys.argv[2]} in {time.monotonic() - t0:.1f} s")
    return 0 if ok else 1
