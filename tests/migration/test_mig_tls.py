#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Migration over TLS with real vmig processes (issue 13). Usage: test_mig_tls.py VMIG CASE

Credentials are made when the test runs (VMIG_MKCREDS: tests/migration/mkcreds), never
committed. Guests are `dirty,verify` on 2 vCPUs, 512 MiB.

Cases:
  live-1     a live migration over TLS on one channel, set up through QMP as a QEMU client
             does (object-add tls-creds-x509 on both sides, authz-list on the destination,
             tls-creds/tls-hostname/tls-authz): the guest verifies clean on the destination,
             each side names the other's certificate, and a recording proxy between them
             never sees the stream's magic (the negative control: the same proxy on a
             plaintext migration does)
  live-4     the same with 4 multifd channels, driven from the command line (vmig run
             --incoming --tls-creds --tls-authz, vmig migrate --tls-creds): one handshake
             per channel, the guest verifies clean
  refusals   one destination that requires TLS and keeps listening; the source tries a
             plaintext connection, an untrusted, an expired and an unlisted certificate,
             a wrong hostname; then destinations with an untrusted and an expired
             certificate, and one that does not speak TLS. Each attempt fails with its
             reason on the source (no byte of guest state sent where the destination's
             certificate is bad), the source guest runs on, no destination guest runs
             (the listening one counts each refusal); a destination that was not asked to
             keep listening exits with one reason. Finally the guest migrates for real and
             verifies clean
  fuzz       seeded garbage, truncated and bit-flipped TLS records (a real ClientHello from
             Python's ssl), a good handshake followed by garbage, and a silent peer against
             a listening TLS destination: each refused with a reason in bounded time, no
             crash; then a real migration to it verifies clean
VMIG_FUZZ_SEED=N reproduces a run. Exit 77 without /dev/kvm.
"""
import os
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import migtest as mt  # noqa: E402
from migtest import check, log  # noqa: E402

SOURCE_DN = "O=vmig tests,CN=source.example"
MAGIC = b"VMIGSTRM"


def make_creds(rig):
    root = os.path.join(rig.dir, "creds")
    tool = os.environ.get("VMIG_MKCREDS")
    check(tool and os.access(tool, os.X_OK), "VMIG_MKCREDS must name tests/migration/mkcreds")
    subprocess.run([tool, root], check=True, stdout=subprocess.DEVNULL, timeout=60)
    return lambda name: os.path.join(root, name)


def add_creds(q, oid, path, endpoint):
    q.cmd("object-add", **{"qom-type": "tls-creds-x509", "id": oid, "dir": path,
                           "endpoint": endpoint})


def tls_dest(rig, creds_dir, keep=False, authz=(SOURCE_DN,), mem=mt.GUEST_MEM):
    """A destination requiring TLS, set up through QMP: (Vmig, uri, Qmp)."""
    uri = f"tcp:127.0.0.1:{mt.free_port()}"
    sock = rig.path("dst.sock")
    v = mt.Vmig(rig, f"dst{rig.n}", ["run", "--no-devices", "--vcpus", mt.GUEST_VCPUS, "--mem",
                                     mem, "--qmp", "unix:" + sock, "--timeout",
                                     str(mt.VMIG_TIMEOUT_S), "--incoming", "defer"])
    q = mt.Qmp(sock, v)
    add_creds(q, "tls0", creds_dir, "server")
    params = {"tls-creds": "tls0"}
    if authz:
        q.cmd("object-add", **{"qom-type": "authz-list", "id": "auth0", "policy": "deny",
                               "rules": [{"match": dn, "policy": "allow", "format": "exact"}
                                         for dn in authz]})
        params["tls-authz"] = "auth0"
    q.cmd("migrate-set-parameters", **params)
    if keep:
        q.cmd("migrate-set-capabilities",
              capabilities=[{"capability": "x-vmig-keep-listening", "state": True}])
    q.cmd("migrate-incoming", uri=uri)
    v.sock = sock
    return v, uri, q


def source_tls(q, creds_dir, hostname=None, oid="tlsc"):
    """The source's client credentials (a fresh object id each time): tls-creds set."""
    add_creds(q, oid, creds_dir, "client")
    q.cmd("migrate-set-parameters", **{"tls-creds": oid, "tls-hostname": hostname or ""})


def x_vmig(info):
    return info.get("x-vmig", {})


def finish_moved(src, q, dst, timeout=60.0):
    """A completed migration: the source quits, the destination's guest verifies clean."""
    mt.quit_source(src, q)
    r = mt.assert_verified(dst, timeout=timeout)
    log(f"verified clean on {dst.name}: checked={r['checked']}")


# A recording proxy ------------------------------------------------------------------------


class Recorder:
    """Forwards every connection to port; keeps what the source sent, per connection."""

    def __init__(self, port):
        self.port, self.streams, self.threads = port, [], []
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(8)
        self.uri = f"tcp:127.0.0.1:{self.ls.getsockname()[1]}"
        self._spawn(self._accept)

    def _spawn(self, fn, *a):
        t = threading.Thread(target=fn, args=a, daemon=True)
        t.start()
        self.threads.append(t)

    def _accept(self):
        while True:
            try:
                a, _ = self.ls.accept()
            except OSError:
                return
            b = socket.create_connection(("127.0.0.1", self.port))
            rec = bytearray()
            self.streams.append(rec)
            self._spawn(self._pump, a, b, rec)
            self._spawn(self._pump, b, a, None)

    @staticmethod
    def _pump(a, b, rec):
        try:
            while True:
                data = a.recv(1 << 18)
                if not data:
                    break
                if rec is not None and len(rec) < (64 << 20):
                    rec += data
                b.sendall(data)
        except OSError:
            pass
        for s, how in ((b, socket.SHUT_WR), (a, socket.SHUT_RD)):
            try:
                s.shutdown(how)
            except OSError:
                pass

    def close(self):
        self.ls.close()

    def saw_magic(self):
        return sum(bytes(r).count(MAGIC) for r in self.streams)


def migrate_recorded(rig, creds, tls):
    """One migration through a Recorder, TLS or not: (times the magic was seen, info)."""
    src, q = rig.source(12)
    if tls:
        dst, uri, dq = tls_dest(rig, creds("dest"))
        dq.close()
        source_tls(q, creds("source"))
    else:
        dst, uri = rig.dest()
    rec = Recorder(int(uri.rsplit(":", 1)[1]))
    info = mt.migrate(q, rec.uri, timeout=60)
    check(info["status"] == "completed", f"migration {info.get('status')}: {info}")
    rec.close()
    if tls:  # at once, as a client cleaning up on the event: never "in use"
        q.cmd("object-del", id="tlsc")
        q.cmd("migrate-set-parameters", **{"tls-creds": ""})
    finish_moved(src, q, dst)
    return rec.saw_magic(), info


def case_live_1(rig):
    creds = make_creds(rig)
    seen, info = migrate_recorded(rig, creds, tls=True)
    tls = x_vmig(info).get("tls", {})
    check(tls.get("peer") == "CN=dest.example" and tls.get("handshakes") == 1,
          f"source's TLS view {tls}")
    check(seen == 0, f"the stream's magic crossed the wire {seen} times under TLS")
    plain, _ = migrate_recorded(rig, creds, tls=False)
    check(plain > 0, "negative control: a plaintext migration's magic was not seen on the wire")
    log(f"magic on the wire: TLS 0, plaintext {plain}")


def cli_dest(rig, creds_dir, name):
    """A TLS destination from the command line alone: (Vmig, uri)."""
    uri = f"tcp:127.0.0.1:{mt.free_port()}"
    dst = mt.Vmig(rig, name, ["run", "--no-devices", "--vcpus", mt.GUEST_VCPUS, "--mem",
                              mt.GUEST_MEM, "--timeout", str(mt.VMIG_TIMEOUT_S), "--incoming",
                              uri, "--tls-creds", creds_dir, "--tls-authz",
                              "O=someone else,CN=x", "--tls-authz", SOURCE_DN])
    time.sleep(0.5)  # listening
    return dst, uri


def cli_migrate(rig, q, creds, uri):
    return subprocess.run([rig.vmig, "migrate", "--qmp", "unix:" + q.path, "--channels", "4",
                           "--tls-creds", creds("source"), "--tls-hostname", "dest.example",
                           uri], capture_output=True, text=True, timeout=90)


def case_live_4(rig):
    creds = make_creds(rig)
    src, q = rig.source(15)
    # A first attempt the source refuses; the same command again must work (its objects).
    bad, uri = cli_dest(rig, creds("dest-untrusted"), "dst-bad")
    out = cli_migrate(rig, q, creds, uri)
    check(out.returncode == 1 and "issuer is unknown" in out.stderr,
          f"vmig migrate to an untrusted destination: {out.returncode} {out.stderr}")
    mt.assert_never_ran(bad)
    dst, uri = cli_dest(rig, creds("dest"), "dst-cli")
    rec = Recorder(int(uri.rsplit(":", 1)[1]))
    out = cli_migrate(rig, q, creds, rec.uri)
    rec.close()
    log(out.stdout[-1200:])
    check(out.returncode == 0, f"vmig migrate exited {out.returncode}: {out.stderr}")
    check("5 handshakes" in out.stdout and "'CN=dest.example'" in out.stdout,
          f"summary without the TLS line: {out.stdout}")
    info = q.cmd("query-migrate")
    check(x_vmig(info).get("channels") == 5, f"channels {x_vmig(info)}")
    check(len(rec.streams) == 5 and rec.saw_magic() == 0,
          f"{len(rec.streams)} connections, the magic seen {rec.saw_magic()} times")
    finish_moved(src, q, dst)


# Refusals -------------------------------------------------------------------------------


def attempt(q, uri, expect, what):
    """A migration that must fail on the source with `expect` in its reason."""
    info = mt.migrate(q, uri, timeout=40)
    err = info.get("error-desc", "")
    check(info["status"] == "failed" and expect in err,
          f"{what}: {info['status']} '{err}', expected '{expect}'")
    mt.assert_source_running(q, what)
    log(f"{what}: refused: {err}")
    return info


def wait_refused(dq, n, expect, what):
    deadline = time.monotonic() + 15
    while True:
        x = x_vmig(dq.cmd("query-migrate"))
        if x.get("refused-connections", 0) >= n:
            break
        check(time.monotonic() < deadline, f"{what}: the destination counted {x}")
        time.sleep(0.05)
    check(expect in x.get("last-refusal", ""), f"{what}: destination says {x}")
    check(dq.status() == "inmigrate", f"{what}: the destination is {dq.status()}")


SOURCE_SIDE = [  # (source credentials, hostname, source's reason, destination's reason)
    (None, None, "does not speak TLS 1.3", "does not speak TLS 1.3"),
    ("source-untrusted", None, "refused this side's TLS session",
     "sent no certificate signed by a CA this side trusts"),
    ("source-expired", None, "refused this side's TLS session", "expired"),
    ("source-stranger", None, "not on the destination's authorization list",
     "'O=elsewhere,CN=intruder.example' is not on the authorization list"),
    ("source", "other.example", "does not match the expected", "refused this side's TLS"),
]


def refuse_from_source(rig, creds, q):
    dst, uri, dq = tls_dest(rig, creds("dest"), keep=True)
    for n, (cdir, host, src_why, dst_why) in enumerate(SOURCE_SIDE, 1):
        if cdir:
            source_tls(q, creds(cdir), host, oid=f"c{n}")
        else:
            q.cmd("migrate-set-parameters", **{"tls-creds": ""})
        attempt(q, uri, src_why, f"source {cdir or 'plaintext'} {host or ''}")
        wait_refused(dq, n, dst_why, f"source {cdir or 'plaintext'}")
    check(not dst.guest_lines(), "the listening destination's guest ran")
    return dst, uri, dq


def refuse_from_dest(rig, creds, q):
    """Destinations the source must refuse; none was asked to keep listening."""
    source_tls(q, creds("source"), oid="cgood")
    for cdir, why in (("dest-untrusted", "issuer is unknown"), ("dest-expired", "expired")):
        dst, uri, dq = tls_dest(rig, creds(cdir))
        dq.close()
        rec = Recorder(int(uri.rsplit(":", 1)[1]))
        attempt(q, rec.uri, why, f"destination {cdir}")
        rec.close()
        sent = sum(len(r) for r in rec.streams)  # a handshake's few records, no state
        check(sent < 8192, f"{cdir}: the source sent {sent} bytes to a refused destination")
        mt.assert_never_ran(dst)
    plain, uri = rig.dest()  # no TLS at all: the source never falls back
    attempt(q, uri, "TLS (channel 0)", "plaintext destination")
    err = mt.assert_never_ran(plain)
    check("not a vmig migration stream" in err, f"plaintext destination says {err}")


def case_refusals(rig):
    creds = make_creds(rig)
    src, q = rig.source(40)
    refuse_from_dest(rig, creds, q)
    dst, uri, dq = refuse_from_source(rig, creds, q)
    # Not asked to keep listening: the first refusal ends the destination, with its reason.
    once, once_uri, oq = tls_dest(rig, creds("dest"))
    oq.close()
    q.cmd("migrate-set-parameters", **{"tls-creds": ""})
    attempt(q, once_uri, "does not speak TLS", "plaintext to a one-shot destination")
    err = mt.assert_never_ran(once)
    check("does not speak TLS 1.3" in err, f"one-shot destination says {err}")
    # A machine that does not match, over TLS with RAM channels: the destination's reason
    # arrives (the return path reads before the RAM channels connect).
    source_tls(q, creds("source"), oid="cfinal")
    small, small_uri, sq = tls_dest(rig, creds("dest"), mem="256M")
    sq.close()
    mt.set_caps(q, channels=4)
    attempt(q, small_uri, "destination: the source VM has 2 vCPUs and 512 MiB",
            "TLS, 4 channels, a destination of another size")
    mt.assert_never_ran(small)
    mt.set_caps(q, channels=0)
    dq.close()
    info = mt.migrate(q, uri, timeout=60)
    check(info["status"] == "completed", f"the real migration {info}")
    finish_moved(src, q, dst)


# Fuzz ----------------------------------------------------------------------------------


def client_hello(creds):
    """A real TLS 1.3 ClientHello, as the good source would start (Python's ssl)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_verify_locations(os.path.join(creds("source"), "ca-cert.pem"))
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="dest.example")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def good_then_garbage(port, creds, junk):
    """A complete, authorized TLS session whose stream is garbage."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    d = creds("source")
    ctx.load_verify_locations(os.path.join(d, "ca-cert.pem"))
    ctx.load_cert_chain(os.path.join(d, "client-cert.pem"), os.path.join(d, "client-key.pem"))
    with socket.create_connection(("127.0.0.1", port), timeout=15) as raw:
        with ctx.wrap_socket(raw, server_hostname="dest.example") as s:
            check(s.recv(1) == b"V", "the destination did not accept the good source")
            s.sendall(junk)
            s.shutdown(socket.SHUT_WR)  # no close_notify: the stream just ends
            s.settimeout(15)
            try:
                while s.recv(4096):
                    pass
            except (OSError, ssl.SSLError):
                pass


def send_raw(port, data, hold=0.0):
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        if data:
            s.sendall(data)
        time.sleep(hold)
        s.shutdown(socket.SHUT_WR)
        s.settimeout(15)
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass


def fuzz_input(rng, hello):
    kind = rng.choice(["garbage", "truncated", "flipped", "record"])
    if kind == "garbage":
        return kind, bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 3000)))
    if kind == "truncated":
        return kind, hello[:rng.randrange(0, len(hello))]
    if kind == "flipped":
        b = bytearray(hello)
        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        return kind, bytes(b)
    n = rng.randrange(0, 1 << 14)  # a record header promising more than comes
    return kind, bytes([rng.choice([0x14, 0x15, 0x16, 0x17]), 3, 3, n >> 8, n & 0xFF]) + \
        bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 64)))


def case_fuzz(rig):
    creds = make_creds(rig)
    dst, uri, dq = tls_dest(rig, creds("dest"), keep=True)
    port, hello, kinds = int(uri.rsplit(":", 1)[1]), client_hello(creds), {}
    n = 0
    for _ in range(40):
        kind, data = fuzz_input(rig.rng, hello)
        t0 = time.monotonic()
        send_raw(port, data)
        n += 1
        wait_refused(dq, n, "", f"fuzz {kind}")
        kinds[kind] = kinds.get(kind, 0) + 1
        check(time.monotonic() - t0 < 12, f"fuzz {kind}: took {time.monotonic() - t0:.1f} s")
    for junk in (b"", bytes(64), os.urandom(200)):
        good_then_garbage(port, creds, junk)
        n += 1
        wait_refused(dq, n, "", "good session, garbage stream")
    t0 = time.monotonic()
    send_raw(port, b"", hold=6)  # silent: the destination's handshake bound (5 s) ends it
    n += 1
    wait_refused(dq, n, "timed out", "silent peer")
    log(f"fuzz: {kinds}, 3 garbage streams in good sessions, 1 silent peer "
        f"({time.monotonic() - t0:.1f} s); refused {n}")
    check(dst.poll() is None and not dst.guest_lines(), f"destination {dst.tail()}")
    check_reasons(dst, n)
    # The real migration, 4 RAM channels, while garbage keeps connecting: it completes.
    src, q = rig.source(15)
    source_tls(q, creds("source"))
    mt.set_caps(q, channels=4)
    dq.close()
    stop = threading.Event()
    hammer = threading.Thread(target=hammer_loop, args=(port, rig.rng.random(), stop),
                              daemon=True)
    hammer.start()
    try:
        info = mt.migrate(q, uri, timeout=60)
    finally:
        stop.set()
        hammer.join(10)
    check(info["status"] == "completed", f"the real migration among garbage {info}")
    finish_moved(src, q, dst)
    ram = sum("waiting on for the RAM channel" in l for l in dst.err().splitlines())
    log(f"hostile connections during it: {hammer_loop.sent}, {ram} of them refused while "
        f"the RAM channels were awaited")


KNOWN_REASONS = ("TLS: TLS handshake with the source failed: ",
                 "TLS: TLS handshake with the source timed out",
                 "TLS: the source does not speak TLS 1.3 (",
                 "not a vmig migration stream", "the connection closed before a stream header",
                 "stream header has a bad checksum")


def check_reasons(dst, n):
    """One refusal line per refusal, each a reason of the known kinds (not empty)."""
    lines = [l.split("refused a connection: ", 1)[1] for l in dst.err().splitlines()
             if "refused a connection: " in l]
    check(len(lines) == n, f"{len(lines)} refusal lines for {n} refusals")
    for why in lines:
        check(why.startswith(KNOWN_REASONS) and len(why) > 20, f"an unclear refusal: {why}")
    for why in sorted({l.split(" (")[0] for l in lines}):
        log(f"  refused: {why}")


def hammer_loop(port, seed, stop):
    """Garbage connections every few ms until stop; counts them in hammer_loop.sent."""
    import random
    rng, hammer_loop.sent = random.Random(seed), 0
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 400))))
            hammer_loop.sent += 1
        except OSError:
            pass
        time.sleep(0.005)


if __name__ == "__main__":
    sys.exit(mt.main({"live-1": case_live_1, "live-4": case_live_4, "refusals": case_refusals,
                      "fuzz": case_fuzz}, __doc__))
