#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Boots the same guest image with the same command line under vmig and under QEMU and
checks that both print the same workload report: the firmware is the common workload for
side-by-side comparisons, so what it measures must not depend on which VMM runs it.

usage: same_report_test.py VMIG IMAGE

Only keys that are deterministic for a given command line are compared (counts of pages,
writes, passes, checks, mismatches, statuses); times, tick counts and addresses that
depend on the loader are not. QEMU runs under KVM only (qemu_guest_test.py): exits 77
(skipped) when KVM is not usable or QEMU is not installed.
"""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qemu_guest_test as qg  # noqa: E402

# fillram is left out: how many free pages it fills depends on each loader's memory map.
ARGS = "workload=dirty,verify ws=2M iters=4 seed=9 cpus=2"
STABLE = {
    "LAYOUT": ("ws_pages", "ws_extents"),
    "RESULT": ("workload", "vcpus", "pages", "writes", "passes", "checked", "mismatches",
               "sse_bad", "status"),
    "DONE": ("status",),
}


def stable_report(lines):
    out = []
    for kind, kv in qg.parse(lines):
        if kind in STABLE:
            out.append((kind, tuple((k, kv.get(k)) for k in STABLE[kind] if k in kv)))
    return out


def run_vmig(vmig, image):
    cmd = [vmig, "run", "--vcpus", "2", "--mem", "64M", "--kernel", image,
           "--guest-args", ARGS, "--timeout", "60"]
    print("+", " ".join(cmd), flush=True)
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=90)
    lines = [l[len("guest: "):] for l in p.stdout.splitlines() if l.startswith("guest: ")]
    for l in lines:
        print("vmig guest:", l)
    qg.check(p.returncode == 0, f"vmig exited {p.returncode}: {p.stderr.strip()}")
    return lines


def main():
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} VMIG IMAGE")
    vmig, image = sys.argv[1], os.path.abspath(sys.argv[2])
    if not shutil.which(qg.QEMU):
        print(f"SKIP: {qg.QEMU} is not installed (apt-get install qemu-system-x86)")
        return 77
    try:
        qg.pick_accel()  # SKIP before vmig runs when KVM is not usable
        under_vmig = stable_report(run_vmig(vmig, image))
        under_qemu = stable_report(qg.run_guest(image, 2, "64M", ARGS).lines)
        qg.check(any(k == "RESULT" for k, _ in under_vmig), "vmig printed no RESULT line")
        for a, b in zip(under_vmig, under_qemu):
            print(f"vmig {a}\nqemu {b}")
        qg.check(under_vmig == under_qemu, "the reports differ (see above)")
    except qg.Skip as e:
        print(f"SKIP: {e}")
        return 77
    except (qg.Failure, subprocess.TimeoutExpired) as e:
        print(f"FAIL: {e}")
        return 1
    print("PASS: same report under vmig and QEMU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
