#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""vmig's command line: bad command lines give one error line and a non-zero exit; the
guest's exit status propagates; a snapshot taken from a running guest continues in a
second process (`vmig run --save` then `vmig restore`) and passes the guest's own verify;
corrupt snapshots are refused cleanly. Usage: test_cli.py VMIG TESTGUEST.bin"""
import os
import subprocess
import sys
import tempfile

VMIG, GUEST = sys.argv[1], sys.argv[2]
failures = []


def run(*args, timeout=30):
    p = subprocess.run([VMIG, *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def bad_cmdline(args, code):
    rc, out, err = run(*args)
    lines = err.strip().splitlines()
    check(rc == code and len(lines) == 1 and lines[0].startswith("vmig: error:"),
          f"{' '.join(args)!r} -> one error line, exit {code} (got {rc}: {err.strip()!r})")


def test_bad_cmdlines():
    for args in (["run", "--mem", "0"], ["run", "--mem", "abc"], ["run", "--mem", "4097"],
                 ["run", "--vcpus", "65"], ["run", "--vcpus", "0"], ["run", "--vcpus", "x"],
                 ["run", "--bogus"], ["run", "--mem"], ["run", "stray"], ["frob"], [],
                 ["run", "--save", "/tmp/x"], ["run", "--save-at-mark", "1"],
                 ["run", "--dirty-log", "sometimes"], ["run", "--trace", ","],
                 ["restore"], ["restore", "a", "b"]):
        bad_cmdline(args, 64)
    # Migration: what a user mistypes on either side (docs/migration.md).
    q = ["--qmp", "unix:/tmp/vmig-none.sock"]
    for args in (["migrate"], ["migrate", *q], ["migrate", "tcp:127.0.0.1:4444"],
                 ["migrate", *q, "127.0.0.1:4444"], ["migrate", *q, "tcp:127.0.0.1"],
                 ["migrate", *q, "tcp:h:1", "--channels", "-1"],
                 ["migrate", *q, "tcp:h:1", "--max-bandwidth", "fast"],
                 ["migrate", *q, "tcp:h:1", "--downtime-limit"],
                 ["run", "--incoming"], ["run", "--incoming", "defer", "--no-devices"],
                 ["run", "--incoming", "127.0.0.1:4444", "--no-devices"],
                 ["run", "--incoming", "unix:", "--no-devices"]):
        bad_cmdline(args, 64)
    bad_cmdline(["run", "--kernel", "/nonexistent/vmig-image"], 66)
    bad_cmdline(["restore", "/nonexistent/vmig-snapshot"], 66)


def test_prealloc_too_big():
    rc, out, err = run("run", "--mem", "1T", "--mem-prealloc", "--no-devices", timeout=20)
    lines = err.strip().splitlines()
    check(rc == 1 and len(lines) == 1 and "available" in lines[0],
          f"--mem 1T --mem-prealloc refused at once with one line (rc {rc}: {err.strip()!r})")


def test_no_kvm():
    """/dev/kvm hidden (a private mount namespace) or not accessible (another user)."""
    cases = (("missing", ["unshare", "--mount", "sh", "-c",
                          f"mount -t tmpfs none /dev && exec {VMIG} run"], "does not exist"),
             ("inaccessible", ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                               VMIG, "run"], "permission denied"))
    for name, cmd, want in cases:
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        except OSError:
            print(f"skip /dev/kvm {name}: {cmd[0]} unavailable")
            continue
        if p.returncode != 69 and "vmig:" not in p.stderr:
            print(f"skip /dev/kvm {name}: cannot set it up here ({p.stderr.strip()!r})")
            continue
        lines = p.stderr.strip().splitlines()
        check(p.returncode == 69 and len(lines) == 1 and want in lines[0],
              f"/dev/kvm {name}: one clear line, exit 69 (got {p.returncode}: {p.stderr.strip()!r})")


def test_help():
    rc, out, _ = run("run", "--help")
    opts = ["--mem", "--vcpus", "--guest-args", "--kernel", "--trace", "--dirty-log",
            "--timeout", "--save", "--save-at-mark", "--save-after", "--help"]
    check(rc == 0 and all(o in out for o in opts), "run --help explains every option")
    check("--incoming URI" in out, "run --help explains --incoming")
    rc, out, _ = run("migrate", "--help")
    opts = ["--qmp unix:PATH", "--downtime-limit", "--channels", "--max-bandwidth",
            "--auto-converge", "--max-passes", "--then-quit", "--interval", "--timeout"]
    check(rc == 0 and all(o in out for o in opts), "migrate --help explains every option")
    rc, out, _ = run("help")
    check(rc == 0 and all(c in out for c in ("run", "restore", "migrate")),
          "vmig help lists the commands")


def test_exit_status():
    for status in (0, 3, 42, 255):
        rc, out, _ = run("run", "--kernel", GUEST, "--guest-args", f"h {status}")
        check(rc == status and f"guest: hello h {status}\n" in out,
              f"guest exit status {status} propagates, console prefixed")
    rc, out, _ = run("run", "--kernel", GUEST, "--vcpus", "4", "--mem", "6G",
                     "--guest-args", "h 7")
    check(rc == 7, "4 vCPUs and 6G of RAM (across the hole) boot")
    rc, _, err = run("run", "--kernel", GUEST, "--guest-args", "x")
    check(rc == 70 and "rip=" in err and "KVM_EXIT" in err, "a guest crash is reported, exit 70")
    rc, _, err = run("run", "--kernel", GUEST, "--guest-args", "w 16", "--timeout", "1")
    check(rc == 124, f"--timeout stops a guest that never exits (rc {rc})")
    rc, out, _ = run("run", "--vcpus", "2", "--guest-args", "workload=idle secs=1")
    check(rc == 0 and "guest: DONE status=0" in out, "the built-in firmware boots")
    rc, out, _ = run("run", "--guest-args", "workload=bogus")
    check(rc == 2 and "ERROR cmdline" in out, "the firmware's exit status 2 propagates")
    rc, _, err = run("run", "--kernel", GUEST, "--guest-args", "h 0", "--trace", "kvm_exit_pio")
    check(rc == 0 and "kvm_exit_pio" in err and "port=0xe9" in err, "--trace prints trace points")


def test_snapshot_round_trip(tmp):
    snap = os.path.join(tmp, "snap")
    for vcpus, mode in ((1, "auto"), (2, "bitmap")):
        rc, out, err = run("run", "--kernel", GUEST, "--vcpus", str(vcpus), "--guest-args",
                           "c 1200", "--save", snap, "--save-at-mark", "0xC0DE")
        check(rc == 0 and "verify" not in out and os.path.getsize(snap) > 4096 * 1000,
              f"run --save-at-mark saves a running guest ({vcpus} vCPUs; rc {rc} {err.strip()})")
        rc, out, err = run("restore", "--dirty-log", mode, snap)
        check(rc == 0 and "guest: counter verify ok" in out,
              f"restore in a second process continues and verifies (rc {rc} {err.strip()})")
    # Same again, saved by time rather than by mark.
    rc, _, _ = run("run", "--kernel", GUEST, "--guest-args", "c 1500", "--save", snap,
                   "--save-after", "300")
    rc2, out, _ = run("restore", snap)
    check(rc == 0 and rc2 == 0 and "counter verify ok" in out, "--save-after + restore")
    return snap


def test_firmware_round_trip(tmp):
    """The built-in firmware, paused while dirtying, continued elsewhere, then verify."""
    snap = os.path.join(tmp, "fw")
    for args, save in ((["--vcpus", "2", "--guest-args", "workload=dirty,verify secs=2 ws=32M"],
                        ["--save-after", "1200"]),
                       (["--vcpus", "2", "--mem", "5G", "--guest-args",
                         "workload=dirty,verify secs=1 ws=32M wsbase=0x100000000"],
                        ["--save-at-mark", "0x0D00"]),
                       # no --guest-args: --save implies no devices, and the default
                       # workload must then be one that runs (and verifies) without them
                       ([], ["--save-after", "1000"])):
        rc, out, err = run("run", *args, "--save", snap, *save, timeout=60)
        check(rc == 0 and "RESULT workload=dirty" not in out,
              f"firmware saved mid-dirty ({' '.join(save)}; rc {rc} {err.strip()})")
        rc, out, err = run("restore", snap, timeout=60)
        ok = ("RESULT workload=dirty" in out and "mismatches=0" in out and "sse_bad=0" in out and
              "RESULT workload=verify" in out and "DONE status=0" in out)
        check(rc == 0 and ok, f"restored firmware finishes dirty and passes verify (rc {rc})")


def test_corrupt_snapshots(tmp, snap):
    data = open(snap, "rb").read()
    bad = os.path.join(tmp, "bad")
    cases = {"empty": b"", "header only": data[:24], "truncated in vCPU": data[:200],
             "truncated in RAM": data[: len(data) // 2], "no END": data[:-16],
             "bad magic": b"X" + data[1:], "bad version": data[:8] + b"\x07" + data[9:],
             "bad record type": data[:24] + b"\x63" + data[25:]}
    for name, blob in cases.items():
        with open(bad, "wb") as f:
            f.write(blob)
        rc, _, err = run("restore", bad)
        lines = err.strip().splitlines()
        check(rc == 1 and len(lines) == 1 and lines[0].startswith("vmig: error:"),
              f"corrupt snapshot ({name}) refused with one line (rc {rc}: {err.strip()!r})")


def main():
    test_bad_cmdlines()
    test_prealloc_too_big()
    test_no_kvm()
    test_help()
    test_exit_status()
    with tempfile.TemporaryDirectory() as tmp:
        snap = test_snapshot_round_trip(tmp)
        test_firmware_round_trip(tmp)
        test_corrupt_snapshots(tmp, snap)
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("SKIP: /dev/kvm unavailable")
        sys.exit(77)
    sys.exit(main())
