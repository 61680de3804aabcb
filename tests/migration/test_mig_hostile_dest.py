#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A hostile destination (issue 11): a fake peer that takes the source's stream and answers
on the return path out of protocol. Usage: test_mig_hostile_dest.py VMIG all

One source guest (`dirty,verify`, 2 vCPUs, 512 MiB, VMIG_TEST_ANSWER_MS=3000 so a silent
peer costs 3 s, not a minute) meets, one after another, fake destinations that:
  garbage            answer with random bytes as soon as the stream starts
  closed             close the connection after the stream header
  too-long           after END, a record header announcing 16 MiB (more than any record)
  error-too-long     after END, an ERROR whose reason is longer than any reason
  running-early      RUNNING while the passes still run
  running-first      RUNNING instead of READY after END (before any COMMIT)
  unknown            after END, a record type no destination sends
  silence            nothing after END
  ready-twice        READY, and READY again
  ready-then-silence READY, then nothing (no RUNNING after the COMMIT)
Before COMMIT the source must roll back (failed, the reason in error-desc, the guest
running); once it sent COMMIT it must stay in postmigrate, paused, failed, until `cont`
releases it (the design's "exactly one copy"). Each case checks both and the reason. The
guest then migrates to a real destination and verifies every page (exit 0).

Usage: test_mig_hostile_dest.py VMIG postcopy: in post-copy (postcopy-ram, then
migrate-start-postcopy), fake destinations that
  pc-before-commit   ask for a page right after END, before READY: the source rolls back
  pc-outside         after RUNNING ask for a page far outside guest RAM: the source fails,
                     and stays postmigrate with `cont` refused (the guest ran there)
  pc-unaligned       after RUNNING ask for an unaligned address: the same
"""
import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import migtest as mt  # noqa: E402
from migtest import check, log  # noqa: E402

HDR_LEN, REC = 64, struct.Struct("<HHIQIIII")
SEC_STREAM = 1
T_PASS, T_END, T_READY, T_COMMIT, T_RUNNING, T_ERROR = 2, 3, 5, 6, 7, 8
T_PC_REQ = 12
ANSWER_MS = 3000


class FakeDest:
    """Listens once, reads the source's stream record by record, answers as `how` says."""

    def __init__(self, how, rng):
        self.how, self.rng, self.seq, self.seen = how, rng, 0, []
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(4)
        self.uri = f"tcp:127.0.0.1:{self.ls.getsockname()[1]}"
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def record(self, rtype, length=0, payload=b"", arg=0, count=0):
        h = struct.pack("<HHIQIII", SEC_STREAM, rtype, length, arg, count, mt.crc32c(payload),
                        self.seq)
        self.seq += 1
        return h + struct.pack("<I", mt.crc32c(h)) + payload

    def _read(self, s, n):
        buf = b""
        while len(buf) < n:
            chunk = s.recv(min(n - len(buf), 1 << 20))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def _records(self, s):
        """(section, type) of each record the source sends, until it stops."""
        while True:
            sec, typ, length, *_ = REC.unpack(self._read(s, REC.size))
            self._read(s, length)
            self.seen.append((sec, typ))
            yield sec, typ

    def _run(self):
        try:
            s, _ = self.ls.accept()
        except OSError:
            return
        with s:
            try:
                self._read(s, HDR_LEN)
                self._serve(s)
                s.settimeout(15)
                while s.recv(1 << 20):  # keep reading until the source gives up
                    pass
            except (EOFError, OSError):
                pass

    def _serve(self, s):
        how = self.how
        if how == "garbage":
            return s.sendall(bytes(self.rng.getrandbits(8) for _ in range(64)))
        if how == "closed":
            return s.shutdown(socket.SHUT_RDWR)
        for sec, typ in self._records(s):
            if how == "running-early" and sec == SEC_STREAM and typ == T_PASS:
                return s.sendall(self.record(T_RUNNING))
            if sec == SEC_STREAM and typ == T_END:
                return self._after_end(s)

    def _after_end(self, s):
        how = self.how
        if how == "pc-before-commit":
            return s.sendall(self.record(T_PC_REQ, arg=0, count=1))
        if how.startswith("pc-"):
            return self._postcopy(s)
        answers = {
            "too-long": lambda: struct.pack("<HHIQIII", SEC_STREAM, T_ERROR, 16 << 20, 0, 0, 0,
                                            self.seq),
            "error-too-long": lambda: self.record(T_ERROR, 4000, b"x" * 4000),
            "running-first": lambda: self.record(T_RUNNING),
            "unknown": lambda: self.record(T_PASS),
            "silence": lambda: b"",
            "ready-twice": lambda: self.record(T_READY) + self.record(T_READY),
            "ready-then-silence": lambda: self.record(T_READY),
        }
        data = answers[how]()
        if how == "too-long":  # a header with a good checksum, announcing too much
            data += struct.pack("<I", mt.crc32c(data))
        s.sendall(data)

    def _postcopy(self, s):
        s.sendall(self.record(T_READY))
        for sec, typ in self._records(s):
            if sec == SEC_STREAM and typ == T_COMMIT:
                gpa = 1 << 50 if self.how == "pc-outside" else 0x100800
                return s.sendall(self.record(T_RUNNING) +
                                 self.record(T_PC_REQ, arg=gpa, count=1))

    def close(self):
        self.ls.close()
        self.t.join(20)


# (case, what error-desc must say, whether a COMMIT may have gone out first)
CASES = [
    ("garbage", "the destination sent a corrupt answer", False),
    # Whichever the source notices first: its return path's EOF, or a send refused.
    ("closed", ("the destination closed the connection", "the connection broke"), False),
    ("too-long", "record of 16777216 bytes", False),
    ("error-too-long", "destination: (a reason of 4000 bytes, longer than any reason", False),
    ("running-early", "broke the migration protocol: RUNNING before COMMIT", False),
    ("running-first", "broke the migration protocol: RUNNING before COMMIT", False),
    ("unknown", "broke the migration protocol: a record no destination sends", False),
    ("silence", f"did not answer READY within {ANSWER_MS} ms", False),
    ("ready-twice", "a second READY", True),
    ("ready-then-silence", f"did not answer RUNNING within {ANSWER_MS} ms", True),
]


def failed_with(info, how, expect):
    """The migration failed and error-desc says expect: the error text."""
    err = info.get("error-desc", "")
    expects = expect if isinstance(expect, tuple) else (expect,)
    check(info["status"] == "failed" and any(e in err for e in expects),
          f"{how}: {info['status']} '{err}', expected '{expect}'")
    return err


def one_case(rig, q, how, expect, may_commit):
    fake = FakeDest(how, rig.rng)
    try:
        info = mt.migrate(q, fake.uri, timeout=30)
    finally:
        fake.close()
    err = failed_with(info, how, expect)
    st = q.status()
    if st == "postmigrate":
        check(may_commit, f"{how}: postmigrate although no COMMIT could have gone out")
        time.sleep(1)
        check(q.status() == "postmigrate", f"{how}: the source resumed by itself")
        q.cmd("cont")  # the operator decides: the fake never ran the guest
        mt.assert_source_running(q, f"{how}, after cont")
    else:
        check(st == "running", f"{how}: the source is {st}")
    ended = "END" if (SEC_STREAM, T_END) in fake.seen else "before END"
    log(f"{how}: {st} ({ended}): {err}")


def case_all(rig):
    src, q = rig.source(45, env={"VMIG_TEST_ANSWER_MS": str(ANSWER_MS)})
    for how, expect, may_commit in CASES:
        one_case(rig, q, how, expect, may_commit)
    dst, uri = rig.dest()
    info = mt.migrate(q, uri, timeout=60)
    check(info["status"] == "completed", f"the real migration afterwards: {info}")
    mt.quit_source(src, q)
    r = mt.assert_verified(dst, timeout=90)
    log(f"verified clean on {dst.name} after {len(CASES)} hostile destinations: "
        f"checked={r['checked']}")


PC_CASES = [
    ("pc-before-commit", "a post-copy record outside post-copy", False),
    ("pc-outside", "a page request outside guest RAM", True),
    ("pc-unaligned", "a page request outside guest RAM, or malformed", True),
]


def case_postcopy(rig):
    for how, expect, committed in PC_CASES:
        src, q = rig.source(30, env={"VMIG_TEST_ANSWER_MS": str(ANSWER_MS)})
        q.cmd("migrate-set-capabilities",
              capabilities=[{"capability": "postcopy-ram", "state": True}])
        mt.set_params(q, downtime_limit=0)  # pre-copy never switches by itself
        fake = FakeDest(how, rig.rng)
        try:
            mt.start(q, fake.uri)
            mt.hold(q, time.monotonic() + 0.5)
            q.cmd("migrate-start-postcopy")
            info = mt.wait_final(q, 30)
        finally:
            fake.close()
        err = failed_with(info, how, expect)
        st = q.status()
        log(f"{how}: {st}: {err}")
        if not committed:
            check(st == "running", f"{how}: the source is {st}, not rolled back")
            continue
        check(st == "postmigrate", f"{how}: the source is {st} after RUNNING in post-copy")
        try:
            q.cmd("cont")
            raise mt.Failure(f"{how}: cont resumed a source whose guest ran in post-copy")
        except mt.QmpError as e:
            check("post-copy" in str(e), f"{how}: cont refused for another reason: {e}")
        src.kill()


if __name__ == "__main__":
    sys.exit(mt.main({"all": case_all, "postcopy": case_postcopy}, __doc__))
