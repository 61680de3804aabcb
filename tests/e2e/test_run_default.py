#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""`vmig run` with no options: the built-in firmware runs dma,sva on the vSMMUv3 and sdma,
vmig prints the summary and exits 0. Usage: test_run_default.py VMIG"""
import re
import subprocess
import sys

def main():
    vmig = sys.argv[1]
    p = subprocess.run([vmig, "run"], capture_output=True, text=True, timeout=120)
    if p.returncode == 77 or "/dev/kvm" in p.stderr and p.returncode == 69:
        return 77
    out = p.stdout
    fails = []
    def check(cond, what):
        if not cond:
            fails.append(what)
    check(p.returncode == 0, f"exit status 0 (got {p.returncode})")
    check("workload=dma,sva" in out, "the default command line is workload=dma,sva")
    for w in ("dma", "sva"):
        m = re.search(rf"RESULT workload={w} .*", out)
        check(m is not None, f"a RESULT line for {w}")
        if m:
            line = m.group(0)
            check("status=ok" in line and " mismatches=0 " in line, f"{w}: ok, 0 mismatches")
            if w == "sva":
                f = re.search(r" faults=(\d+)", line)
                check(f is not None and int(f.group(1)) > 0, "sva handled faults")
    s = re.search(r"^SUMMARY devices .*", out, re.M)
    check(s is not None, "the SUMMARY line")
    if s:
        msis = re.search(r" msis=(\d+)", s.group(0))
        check(msis is not None and int(msis.group(1)) > 0, "MSIs through the MSI window")
    for f in fails:
        print("FAIL:", f)
    if fails:
        print(out)
        print(p.stderr)
        return 1
    print("ok: vmig run (no options)")
    return 0

if __name__ == "__main__":
    sys.exit(main())
