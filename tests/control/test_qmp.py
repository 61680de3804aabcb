#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""`vmig run --qmp unix:PATH` driven by QMP clients. Usage: test_qmp.py VMIG CASE

Cases:
  protocol  greeting, negotiation, queries, stop/cont with STOP/RESUME, every kind of bad
            input answered with the right error while the guest keeps running, a second
            client after the first left, quit -> SHUTDOWN and exit status 0
  hostile   a client that floods without reading (dropped), one that leaves mid-message,
            an oversized message, too many clients; the VM is unharmed and exits normally
  wait      --qmp-wait: prelaunch until cont; a paused guest does not advance (its 2 s of
            idling take 2 s of *running* time); guest exit -> SHUTDOWN guest-shutdown
  devices   the default device workload (DMA + SVA through the vSMMUv3): counters from
            query-vmig-devices grow, stop/cont in the middle, the guest still passes
  cli       --help documents --qmp; bad --qmp values are usage errors (64); an unusable
            socket path is exit 1 (needs KVM: the socket is made after the VM)
  restore   `vmig restore --qmp`: a snapshot continued in a new process under control
Exit 77 (skip) without /dev/kvm.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

VMIG = None
FAILS = []


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL:", what, flush=True)
    return cond


class Client:
    """A minimal QMP client: one JSON object per line from the server."""

    def __init__(self, path, negotiate=True):
        # The path appears at bind(), a moment before listen(): refused until then.
        for attempt in range(200):
            self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.s.settimeout(10)
            try:
                self.s.connect(path)
                break
            except ConnectionRefusedError:
                self.s.close()
                if attempt == 199:
                    raise
                time.sleep(0.025)
        self.buf = b""
        self.events = []
        self.greeting = self.recv()
        if negotiate:
            r = self.cmd("qmp_capabilities")
            assert r == {"return": {}}, r

    def send(self, data):
        self.s.sendall(data if isinstance(data, bytes) else data.encode())

    def recv(self):
        while b"\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("server closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def reply(self):
        """The next reply; events seen on the way are kept."""
        while True:
            m = self.recv()
            if "event" in m:
                self.events.append(m)
            else:
                return m

    def cmd(self, name, args=None, **extra):
        msg = {"execute": name}
        if args is not None:
            msg["arguments"] = args
        msg.update(extra)
        self.send(json.dumps(msg))
        return self.reply()

    def event(self, name, timeout=10):
        deadline = time.time() + timeout
        while True:
            for e in self.events:
                if e["event"] == name:
                    self.events.remove(e)
                    return e
            self.s.settimeout(max(0.1, deadline - time.time()))
            m = self.recv()
            if "event" in m:
                self.events.append(m)
            else:
                raise AssertionError("unexpected reply %r" % m)

    def close(self):
        self.s.close()


STARTED = []  # every vmig a case started: killed when the case ends, whatever happened


def start(sock, *args):
    p = subprocess.Popen([VMIG, "run", "--qmp", "unix:" + sock] + list(args),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    STARTED.append(p)
    for _ in range(200):
        if os.path.exists(sock) or p.poll() is not None:
            break
        time.sleep(0.025)
    return p


def finish(p, timeout=30):
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        check(False, "vmig did not exit")
    return p.returncode, out, err


def status(c):
    r = c.cmd("query-status")
    return r["return"]["status"] if "return" in r else r


def expect_error(c, raw, cls, desc_part, what, id_=None):
    c.send(raw)
    r = c.reply()
    ok = check("error" in r and r["error"]["class"] == cls and desc_part in r["error"]["desc"],
               "%s: got %r" % (what, r))
    if ok and id_ is not None:
        check(r.get("id") == id_, "%s: the id is echoed (%r)" % (what, r))


def bad_inputs(c):
    G, N = "GenericError", "CommandNotFound"
    expect_error(c, "{\"execute\": }", G, "JSON parse error at byte 12", "malformed JSON")
    expect_error(c, "{\"execute\": \"stop\" \"id\": 1}", G, "expected ','", "missing comma")
    expect_error(c, "{\"a\": 1, \"a\": 2}", G, "duplicate key", "duplicate key")
    expect_error(c, b"{\"execute\": \"\xff\"}", G, "UTF-8", "invalid UTF-8")
    expect_error(c, "[\"execute\", \"stop\"]", G, "must be a JSON object", "an array")
    expect_error(c, "42\n", G, "must be a JSON object", "a number")
    expect_error(c, "bogus\n", G, "JSON parse error", "a bare word")
    expect_error(c, "{\"id\": 7}", G, "lacks member 'execute'", "no execute", 7)
    expect_error(c, "{\"execute\": 5, \"id\": \"a\"}", G, "'execute' must be a string",
                 "execute not a string", "a")
    expect_error(c, "{\"execute\": \"stop\", \"arguments\": []}", G,
                 "'arguments' must be an object", "arguments not an object")
    expect_error(c, "{\"execute\": \"stop\", \"bogus\": 1}", G, "member 'bogus' is unexpected",
                 "extra envelope member")
    expect_error(c, "{\"execute\": \"no-such-command\", \"id\": [1, {\"x\": null}]}", N,
                 "The command no-such-command has not been found", "unknown command",
                 [1, {"x": None}])
    expect_error(c, "{\"execute\": \"stop\", \"arguments\": {\"force\": true}}", G,
                 "Parameter 'force' is unexpected", "extra argument")
    expect_error(c, "{\"execute\": \"vmig-trace\", \"arguments\": {\"patterns\": 1}}", G,
                 "Invalid parameter type for 'patterns', expected: string", "wrong type")
    expect_error(c, "{\"execute\": \"vmig-trace\", \"arguments\": {\"patterns\": \",,\"}}", G,
                 "not a comma-separated list", "bad trace patterns")
    expect_error(c, "{\"execute\": \"qmp_capabilities\"}", N, "already complete",
                 "negotiating twice")
    expect_error(c, "{\"execute\": \"query-status\", \"id\": 1e999}", G, "out of range",
                 "number out of range")
    expect_error(c, "[" * 100 + "]" * 100, G, "nesting too deep", "deep nesting")
    # An unterminated string ends at the end of the line: the client hears about it.
    expect_error(c, "{\"execute\": \"query-status\n", G, "JSON parse error", "open string")


def case_protocol(sock):
    p = start(sock, "--no-devices", "--vcpus", "2", "--guest-args", "workload=idle secs=30")
    c = Client(sock, negotiate=False)
    g = c.greeting
    check("QMP" in g and g["QMP"]["capabilities"] == [] and
          "major" in g["QMP"]["version"]["qemu"], "greeting %r" % g)
    r = c.cmd("query-status", id="early")
    check(r.get("error", {}).get("class") == "CommandNotFound" and
          "qmp_capabilities" in r["error"]["desc"] and r.get("id") == "early",
          "commands before negotiation are refused: %r" % r)
    r = c.cmd("qmp_capabilities", {"enable": ["oob"]})
    check(r.get("error", {}).get("class") == "GenericError", "no oob capability: %r" % r)
    r = c.cmd("qmp_capabilities", id=1)
    check(r == {"return": {}, "id": 1}, "negotiation: %r" % r)
    r = c.cmd("query-status")
    check(r == {"return": {"running": True, "status": "running"}}, "running: %r" % r)
    v = c.cmd("query-version")["return"]
    check(v["package"].startswith("vmig") and isinstance(v["qemu"]["major"], int), "version")
    names = [x["name"] for x in c.cmd("query-commands")["return"]]
    for n in ("qmp_capabilities", "query-status", "stop", "cont", "quit", "query-cpus-fast",
              "vmig-trace", "query-vmig-devices", "query-version", "query-commands"):
        check(n in names, "query-commands lists " + n)
    cpus = c.cmd("query-cpus-fast")["return"]
    check(len(cpus) == 2 and [x["cpu-index"] for x in cpus] == [0, 1] and
          all(x["thread-id"] > 0 and x["thread-id"] != p.pid for x in cpus),
          "query-cpus-fast: two vCPUs with their thread ids: %r" % cpus)
    check(os.path.exists("/proc/%d/task/%d" % (p.pid, cpus[1]["thread-id"])),
          "thread-id is a thread of vmig")
    r = c.cmd("query-vmig-devices")
    check(r.get("error", {}).get("class") == "GenericError", "no devices: %r" % r)
    r = c.cmd("vmig-trace", {"patterns": "guest_mark,-kvm_*"})
    check(r == {"return": {"patterns": "guest_mark,-kvm_*"}}, "vmig-trace sets: %r" % r)
    r = c.cmd("vmig-trace")
    check(r == {"return": {"patterns": "guest_mark,-kvm_*"}}, "vmig-trace queries: %r" % r)
    c.cmd("vmig-trace", {"patterns": ""})

    # stop -> STOP, paused; stop again: nothing; cont -> RESUME, running.
    check(c.cmd("stop", id="s") == {"return": {}, "id": "s"}, "stop")
    check([e["event"] for e in c.events] == ["STOP"], "STOP comes before stop's reply")
    e = c.event("STOP")
    check("seconds" in e["timestamp"] and "microseconds" in e["timestamp"], "event timestamp")
    check(c.cmd("query-status") == {"return": {"running": False, "status": "paused"}},
          "paused")
    check(c.cmd("stop") == {"return": {}}, "stop while paused")
    check(c.cmd("cont") == {"return": {}}, "cont")
    c.event("RESUME")
    check(status(c) == "running", "running again")
    check(c.cmd("cont") == {"return": {}} and not c.events, "cont while running: no event")

    bad_inputs(c)
    check(status(c) == "running", "the VM still runs after all the bad input")
    check(p.poll() is None, "vmig still running")

    # Several commands in one write, and one command split over many writes.
    c.send("{\"execute\": \"query-status\", \"id\": 1}{\"execute\": \"query-kvm\", \"id\": 2}")
    check(c.reply().get("id") == 1 and c.reply().get("id") == 2, "two commands in one write")
    for ch in "{\"execute\": \"query-status\", \"id\": 3}":
        c.send(ch)
    check(c.reply().get("id") == 3, "one command byte by byte")

    # A second client while the first is connected, then a third after both left.
    c2 = Client(sock)
    check(c2.cmd("stop") == {"return": {}}, "second client stops")
    check(c.event("STOP") is not None and c2.event("STOP") is not None,
          "both negotiated clients see STOP")
    c2.cmd("cont")
    c.close()
    c2.close()
    time.sleep(0.1)
    c3 = Client(sock)
    check(status(c3) == "running", "a client after the first ones left")
    r = c3.cmd("quit", id="q")
    check(r == {"return": {}, "id": "q"}, "quit: %r" % r)
    e = c3.event("SHUTDOWN")
    check(e["data"]["guest"] is False and e["data"]["reason"] == "host-qmp-quit" and
          e["data"]["vmig-exit-status"] == 0, "SHUTDOWN after quit: %r" % e)
    code, out, err = finish(p)
    check(code == 0, "quit exits 0 (got %d): %s" % (code, err))
    check(not os.path.exists(sock), "the socket file is removed")


def case_hostile(sock):
    p = start(sock, "--no-devices", "--guest-args", "workload=dirty,verify secs=6 ws=16M")
    good = Client(sock)

    # A flood of commands from a client that never reads: dropped once its output is full.
    flood = Client(sock)
    flood.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    msg = b"{\"execute\": \"query-commands\"}" * 256
    dropped = False
    t0 = time.time()
    try:
        while time.time() - t0 < 10:
            flood.s.sendall(msg)
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        dropped = True
    check(dropped, "a client that never reads is dropped")
    flood.close()
    check(status(good) == "running", "the VM runs on after the flood")

    # Gone mid-message; an oversized message (error, then the stream resynchronises).
    mid = Client(sock)
    mid.send("{\"execute\": \"query-st")
    mid.close()
    big = Client(sock)
    big.send("{\"execute\": \"query-status\", \"id\": \"" + "x" * (70 * 1024) + "\"}")
    r = big.reply()
    check(r.get("error", {}).get("class") == "GenericError" and "exceeds" in r["error"]["desc"],
          "oversized message: %r" % r)
    check(big.cmd("query-status", id=9).get("id") == 9, "the stream goes on after it")
    big.close()

    # Too many at once: the fifth of five concurrent clients is refused, not queued.
    extra = [Client(sock, negotiate=False) for _ in range(3)]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(sock)
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    check(b"too many" in data, "a fifth client is refused: %r" % data)
    s.close()
    for x in extra:
        x.close()

    check(status(good) == "running", "still running after every hostile client")
    e = good.event("SHUTDOWN", timeout=30)
    check(e["data"]["guest"] is True and e["data"]["reason"] == "guest-shutdown" and
          e["data"]["vmig-exit-status"] == 0, "SHUTDOWN when the guest exits: %r" % e)
    code, out, err = finish(p)
    check(code == 0, "the guest's dirty+verify passed (exit %d)" % code)
    check("RESULT workload=verify" in out and "mismatches=0" in out, "verify ok")


def case_wait(sock):
    p = start(sock, "--no-devices", "--qmp-wait", "--guest-args", "workload=idle secs=2")
    c = Client(sock)
    check(c.cmd("query-status") == {"return": {"running": False, "status": "prelaunch"}},
          "prelaunch before cont")
    time.sleep(1.0)
    check(c.cmd("stop") == {"return": {}} and not c.events, "stop in prelaunch: no event")
    cpus = c.cmd("query-cpus-fast")["return"]
    check(cpus[0]["vmig-exits"] == 0, "no guest instruction ran before cont: %r" % cpus)
    c.cmd("cont")
    c.event("RESUME")
    time.sleep(0.5)
    c.cmd("stop")
    c.event("STOP")
    # Paused for longer than the guest's whole workload: it must not finish meanwhile.
    time.sleep(3.0)
    check(p.poll() is None and status(c) == "paused", "a paused guest does not advance")
    t0 = time.time()
    c.cmd("cont")
    c.event("RESUME")
    e = c.event("SHUTDOWN", timeout=20)
    ran = time.time() - t0
    check(e["data"]["reason"] == "guest-shutdown" and e["data"]["vmig-exit-status"] == 0,
          "SHUTDOWN guest-shutdown: %r" % e)
    check(ran > 0.8, "the guest still had its remaining idle time to run (%.2f s)" % ran)
    code, out, err = finish(p)
    check(code == 0, "exit 0 (got %d)" % code)


def case_devices(sock):
    p = start(sock, "--guest-args", "workload=dma,sva secs=4")
    c = Client(sock)
    time.sleep(1.0)
    d1 = c.cmd("query-vmig-devices")
    check("return" in d1, "query-vmig-devices: %r" % d1)
    d1 = d1.get("return", {})
    for k in ("vsmmu-cmds", "vsmmu-events", "nested-hwpts", "faults", "msis", "doorbell-path",
              "doorbells-trapped"):
        check(k in d1, "query-vmig-devices has " + k)
    check(c.cmd("stop") == {"return": {}}, "stop during DMA")
    c.event("STOP")
    check(status(c) == "paused", "paused during DMA")
    time.sleep(0.5)
    check(c.cmd("cont") == {"return": {}}, "cont")
    c.event("RESUME")
    time.sleep(1.0)
    d2 = c.cmd("query-vmig-devices").get("return", {})
    check(d2.get("sdma-completed", 0) > d1.get("sdma-completed", 0) and
          d2.get("msis", 0) > d1.get("msis", 0), "DMA completions and MSIs grow: %r" % d2)
    check(d2.get("nested-hwpts", 0) > 0, "nested HWPTs were made")
    e = c.event("SHUTDOWN", timeout=30)
    check(e["data"]["reason"] == "guest-shutdown", "SHUTDOWN: %r" % e)
    code, out, err = finish(p)
    check(code == 0, "the device workloads passed across stop/cont (exit %d)\n%s" % (code, out))
    check("SUMMARY devices" in out, "the summary is still printed")


def case_cli(sock):
    h = subprocess.run([VMIG, "run", "--help"], capture_output=True, text=True, timeout=10)
    check("--qmp unix:PATH" in h.stdout and "--qmp-wait" in h.stdout, "run --help shows --qmp")
    h = subprocess.run([VMIG, "restore", "--help"], capture_output=True, text=True, timeout=10)
    check("--qmp unix:PATH" in h.stdout, "restore --help shows --qmp")
    for args in (["run", "--qmp", "tcp:1234"], ["run", "--qmp", "unix:"],
                 ["run", "--qmp-wait"], ["run", "--qmp", "unix:" + "x" * 200],
                 ["restore", "--qmp", "stdio", "f"], ["restore", "--qmp-wait", "f"]):
        r = subprocess.run([VMIG] + args, capture_output=True, text=True, timeout=10)
        check(r.returncode == 64 and r.stderr.count("\n") == 1,
              "%r: usage error (%d, %r)" % (args, r.returncode, r.stderr))
    r = subprocess.run([VMIG, "run", "--no-devices", "--qmp", "unix:/nonexistent/dir/s"],
                       capture_output=True, text=True, timeout=20)
    check(r.returncode == 1 and "cannot listen" in r.stderr,
          "unusable socket path: exit 1 (%d, %r)" % (r.returncode, r.stderr))
    # Not a socket: never replaced.
    with open(sock, "w") as f:
        f.write("keep")
    r = subprocess.run([VMIG, "run", "--no-devices", "--qmp", "unix:" + sock],
                       capture_output=True, text=True, timeout=20)
    check(r.returncode == 1 and open(sock).read() == "keep", "a regular file is not replaced")


def case_restore(sock):
    snap = sock + ".snap"
    r = subprocess.run([VMIG, "run", "--no-devices", "--guest-args",
                        "workload=dirty,verify secs=3 ws=16M", "--save", snap,
                        "--save-after", "500"], capture_output=True, text=True, timeout=30)
    if not check(r.returncode == 0, "snapshot saved (%d): %s" % (r.returncode, r.stderr)):
        return
    p = subprocess.Popen([VMIG, "restore", "--qmp", "unix:" + sock, "--qmp-wait", snap],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    STARTED.append(p)
    for _ in range(200):
        if os.path.exists(sock) or p.poll() is not None:
            break
        time.sleep(0.025)
    c = Client(sock)
    # Loading the file comes first (run state inmigrate); a loaded machine can take a while.
    for _ in range(800):
        if status(c) != "inmigrate":
            break
        time.sleep(0.025)
    check(status(c) == "prelaunch", "restored guest waits for cont (%s)" % status(c))
    c.cmd("cont")
    c.event("RESUME")
    check(status(c) == "running", "restored guest runs")
    e = c.event("SHUTDOWN", timeout=30)
    check(e["data"]["reason"] == "guest-shutdown" and e["data"]["vmig-exit-status"] == 0,
          "SHUTDOWN of the restored guest: %r" % e)
    code, out, err = finish(p)
    check(code == 0 and "mismatches=0" in out, "restored guest verified (exit %d)" % code)


def main():
    global VMIG
    VMIG = sys.argv[1]
    case = sys.argv[2]
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("skip: no /dev/kvm")
        return 77
    with tempfile.TemporaryDirectory(prefix="vmig-qmp-") as d:
        sock = os.path.join(d, "qmp.sock")
        try:
            {"protocol": case_protocol, "hostile": case_hostile, "wait": case_wait,
             "devices": case_devices, "restore": case_restore,
             "cli": case_cli}[case](sock)
        finally:
            for p in STARTED:  # a failed case must not leave a guest running for minutes
                if p.poll() is None:
                    p.kill()
                    p.communicate()
    if FAILS:
        print("%d check(s) failed" % len(FAILS))
        return 1
    print("ok: qmp", case)
    return 0


if __name__ == "__main__":
    sys.exit(main())
