#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""End to end on KVM: `vmig run` boots the built-in firmware with the vSMMUv3 and the sdma
device behind it (nested translation on the modelled host) and runs the device workloads
of docs/guest.md. Each case checks the guest's RESULT/HOSTILE lines, its exit status and
vmig's. Exits 77 (skipped) when /dev/kvm is unusable.

usage: test_e2e_devices.py VMIG CASE      (CASE: see CASES; 'list' prints them)"""
import os
import subprocess
import sys

TIMEOUT = 120


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def parse(out):
    """'guest: KIND k=v ...' lines -> list of (kind, {k: v})."""
    rows = []
    for line in out.splitlines():
        if not line.startswith("guest: "):
            continue
        words = line[len("guest: "):].split()
        if words and words[0].isupper():
            rows.append((words[0], dict(w.split("=", 1) for w in words[1:] if "=" in w)))
    return rows


class Run:
    def __init__(self, args, rc, out, err):
        self.args, self.rc, self.out, self.err = args, rc, out, err
        self.rows = parse(out)

    def all(self, kind, **match):
        return [kv for k, kv in self.rows
                if k == kind and all(kv.get(a) == b for a, b in match.items())]

    def result(self, workload, status="ok"):
        found = self.all("RESULT", workload=workload)
        check(len(found) == 1, f"expected one RESULT workload={workload}, got {len(found)}")
        check(found[0]["status"] == status, f"{workload}: {found[0]}")
        return found[0]


def vmig(exe, *args, expect_rc=0):
    cmd = [exe, "run", *args]
    print("+", " ".join(cmd), flush=True)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as e:
        raise Failure(f"vmig still running after {TIMEOUT} s: {e.stdout}")
    print(p.stdout, p.stderr, sep="\n", flush=True)
    check(p.returncode == expect_rc, f"vmig exit {p.returncode}, expected {expect_rc}")
    check("Segmentation" not in p.stderr and "AddressSanitizer" not in p.stderr,
          "vmig crashed")
    return Run(args, p.returncode, p.stdout, p.stderr)


def n(v):
    return int(v, 0)


def device_result(run, workload, faults_wanted=None):
    r = run.result(workload)
    check(n(r["jobs"]) > 0 and n(r["bytes"]) > 0, f"{workload} did nothing: {r}")
    check(r["mismatches"] == "0", f"{workload} mismatches: {r}")
    # Completion MSIs: device -> guest stage 1 -> host stage 2 MSI window -> KVM.
    check(n(r["irqs"]) > 0, f"{workload}: no completion interrupt arrived: {r}")
    if faults_wanted is not None:
        check(faults_wanted(n(r["faults"])), f"{workload} faults: {r}")
    return r


def case_default(exe):
    """`vmig run` with no options: dma+sva on the vSMMUv3, exit 0."""
    run = vmig(exe)
    device_result(run, "dma", lambda f: f == 0)
    device_result(run, "sva", lambda f: f > 0)
    check(len(run.all("BENCH")) >= 2, "BENCH lines")


def case_dma(exe):
    run = vmig(exe, "--guest-args", "workload=dma jobs=512")
    r = device_result(run, "dma", lambda f: f == 0)
    check(r["jobs"] == "512", f"{r}")
    # HTTU: the device's writes set AF and cleared AP[2] in the guest's own PTEs.
    check(n(r["pte_dirty"]) > 0 and n(r["pte_young"]) >= n(r["pte_dirty"]), f"HTTU: {r}")


def case_remap(exe):
    run = vmig(exe, "--guest-args", "workload=remap,dma jobs=256")
    r = device_result(run, "remap", lambda f: f == 0)
    check(n(r["remaps"]) > 0 and r["stale"] == "0", f"{r}")
    device_result(run, "dma", lambda f: f == 0)  # every page back where dma expects it


def case_remap_no_tlbi(exe):
    """Negative control: unmapping without TLB invalidation must be caught (the device
    keeps using stale translations: wrong data where the CPU looks, writes into pages the
    guest took away)."""
    run = vmig(exe, "--guest-args", "workload=remap jobs=1024 tlbi=0", expect_rc=1)
    r = run.result("remap", status="fail")
    check(n(r["mismatches"]) > 0 or n(r["stale"]) > 0, f"stale TLB not detected: {r}")


def case_sva(exe):
    run = vmig(exe, "--guest-args", "workload=sva jobs=96")
    r = device_result(run, "sva", lambda f: f > 0)
    check(n(r["mapped"]) > 0 and n(r["aborted"]) == 3, f"{r}")


def case_hostile(exe):
    """Every case answered architecturally; afterwards the device still works and no
    guest page outside the driver's own changed (verify over all free RAM)."""
    run = vmig(exe, "--mem", "96M", "--guest-args",
               "workload=hostile,dma,verify ws=4M fillram=1 jobs=64")
    r = run.result("hostile")
    check(r["failed"] == "0" and n(r["cases"]) >= 14, f"{r}")
    cases = run.all("HOSTILE")
    check(len(cases) == n(r["cases"]) and all(c["result"] == "ok" for c in cases),
          f"{cases}")
    device_result(run, "dma", lambda f: f == 0)
    v = run.result("verify")
    check(v["mismatches"] == "0", f"stray writes into guest RAM: {v}")


def case_2level_smp(exe):
    run = vmig(exe, "--vcpus", "2", "--guest-args",
               "workload=dma,sva,remap strtab=2level jobs=128")
    check(any(k == "SMMU" and kv.get("strtab") == "2level" for k, kv in run.rows),
          "2-level stream table not used")
    device_result(run, "dma", lambda f: f == 0)
    device_result(run, "sva", lambda f: f > 0)
    device_result(run, "remap", lambda f: f == 0)


def case_no_devices(exe):
    """Without the devices the workloads fail cleanly with one clear line, exit 1."""
    run = vmig(exe, "--no-devices", "--guest-args", "workload=dma,sva", expect_rc=1)
    check("ERROR smmu: no vSMMUv3 at 0xd0000000" in run.out, "missing error line")
    run.result("dma", status="fail")
    run.result("sva", status="fail")


def case_bench(exe):
    """Benchmark (meson test --benchmark): the guest-observed BENCH lines, re-printed as
    `BENCH <name> <value> <unit>` like the host benchmarks."""
    run = vmig(exe, "--guest-args", "workload=dma,remap,sva jobs=1024")
    for w in ("dma", "remap", "sva"):
        device_result(run, w)
    lines = [l[len("guest: "):] for l in run.out.splitlines() if l.startswith("guest: BENCH ")]
    names = {l.split()[1] for l in lines}
    check({"guest_dma_gbps", "guest_inval_batch_us", "guest_fault_roundtrip_us"} <= names,
          f"BENCH lines: {lines}")
    print("\n".join(lines))


CASES = {name[5:].replace("_", "-"): fn for name, fn in globals().items()
         if name.startswith("case_")}


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in CASES and sys.argv[2] != "list":
        sys.exit(f"usage: {sys.argv[0]} VMIG {{{'|'.join(CASES)}|list}}")
    if sys.argv[2] == "list":
        print("\n".join(CASES))
        return 0
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("SKIP: /dev/kvm is not usable")
        return 77
    try:
        CASES[sys.argv[2]](sys.argv[1])
    except Failure as e:
        print(f"FAIL {sys.argv[2]}: {e}")
        return 1
    print(f"PASS {sys.argv[2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
