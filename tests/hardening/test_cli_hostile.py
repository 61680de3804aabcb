#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""vmig under hostile command lines and files, randomised (seed printed; VMIG_FUZZ_SEED
reproduces): random options with hostile values, mutated --kernel images, mutated
snapshots for restore. Every run ends by itself within its bound, never by a signal
(crash, abort, sanitizer), and a refusal is one 'vmig: error:' line with a non-zero exit.
Usage: test_cli_hostile.py VMIG TESTGUEST.bin"""
import os
import random
import subprocess
import sys
import tempfile

VMIG, GUEST = sys.argv[1], sys.argv[2]
SEED = int(os.environ.get("VMIG_FUZZ_SEED", "0"), 0) or random.randrange(1 << 32)
rng = random.Random(SEED)
failures = []
print(f"seed VMIG_FUZZ_SEED={SEED:#x}")

HOSTILE = ["", "0", "-1", "1", "x", "0x", "1T", "4097", "99999999999999999999", "1e9",
           "%s%n%x", "-", ",", "*", "a" * 5000, "\t", "64", "65", "0xC0DE", "-5M", "3G"]
OPTIONS = ["--mem", "--vcpus", "--guest-args", "--kernel", "--trace", "--dirty-log",
           "--timeout", "--save", "--save-at-mark", "--save-after", "--mem-prealloc",
           "--no-devices", "--bogus", "-h"]


def run(args, timeout=20):
    try:
        p = subprocess.run([VMIG, *args], capture_output=True, text=True, timeout=timeout,
                           errors="replace")
    except subprocess.TimeoutExpired:
        return None, "", ""
    return p.returncode, p.stdout, p.stderr


def check(cond, what):
    if not cond:
        print("FAIL " + what)
        failures.append(what)


def judge(args, rc, err, what):
    shown = " ".join(a if len(a) < 40 else a[:20] + "..." for a in args)
    check(rc is not None, f"{what}: {shown!r} hangs")
    if rc is None:
        return
    check(rc >= 0, f"{what}: {shown!r} killed by signal {-rc}: {err[-500:]!r}")
    if "vmig: error:" in err:
        check(rc != 0, f"{what}: {shown!r} reports an error but exits 0")
    if rc == 64:
        lines = err.strip().splitlines()
        check(len(lines) == 1 and lines[0].startswith("vmig: error:"),
              f"{what}: {shown!r} bad command line is not one error line: {err!r}")


def random_options(tmp):
    """Random options and values; a run that boots is bounded by --timeout 1."""
    for _ in range(24):
        args = ["run"] if rng.random() < 0.9 else [rng.choice(["restore", "help", "frob"])]
        for _ in range(rng.randrange(1, 5)):
            opt = rng.choice(OPTIONS)
            args.append(opt)
            if opt not in ("--mem-prealloc", "--no-devices", "-h") and rng.random() < 0.9:
                val = rng.choice(HOSTILE)
                if opt == "--save" and rng.random() < 0.5:
                    val = os.path.join(tmp, "s")
                if opt == "--kernel" and rng.random() < 0.5:
                    val = rng.choice([GUEST, tmp, "/dev/null", "/dev/zero"])
                args.append(val)
        if "--timeout" not in args:
            args += ["--timeout", "1"]
        if "--mem" not in args:
            args += ["--mem", "64M"]
        rc, _, err = run(args)
        judge(args, rc, err, "options")


def mutate(data, header_only):
    b = bytearray(data)
    for _ in range(rng.randrange(1, 8)):
        span = min(len(b), 0x400) if header_only else len(b)
        r = rng.random()
        if r < 0.5 and span:
            b[rng.randrange(span)] ^= 1 << rng.randrange(8)
        elif r < 0.8 and span >= 4:
            at = rng.randrange(span - 3) & ~3
            b[at:at + 4] = rng.choice([0, 0xFFFFFFFF, 0x80000000, 0x1000, rng.randrange(1 << 32)
                                       ]).to_bytes(4, "little")
        else:
            del b[rng.randrange(len(b) + 1):]
    return bytes(b)


def hostile_kernels(tmp):
    good = open(GUEST, "rb").read()
    path = os.path.join(tmp, "k")
    for i in range(16):
        blob = mutate(good, True) if i % 4 else bytes(rng.randrange(256) for _ in range(
            rng.randrange(0, 9000)))
        with open(path, "wb") as f:
            f.write(blob)
        args = ["run", "--kernel", path, "--guest-args", "h 3", "--mem", "64M", "--timeout", "2"]
        rc, _, err = run(args)
        judge(args, rc, err, f"kernel #{i}")


def hostile_snapshots(tmp):
    snap = os.path.join(tmp, "snap")
    rc, _, err = run(["run", "--kernel", GUEST, "--mem", "32M", "--guest-args", "c 800",
                      "--save", snap, "--save-after", "100"], timeout=60)
    check(rc == 0, f"a snapshot to mutate (rc {rc}: {err.strip()!r})")
    if rc != 0:
        return
    good = open(snap, "rb").read()
    bad = os.path.join(tmp, "bad")
    for i in range(10):
        with open(bad, "wb") as f:
            f.write(mutate(good, i % 2 == 0))
        args = ["restore", bad, "--timeout", "3"]
        rc, _, err = run(args, timeout=30)
        judge(args, rc, err, f"snapshot #{i}")


def main():
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("skip: /dev/kvm unavailable")
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        random_options(tmp)
        hostile_kernels(tmp)
        hostile_snapshots(tmp)
    print(f"{len(failures)} failures (seed {SEED:#x})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
