#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Boots the vmig guest firmware under QEMU and checks its report lines and exit status.

usage: qemu_guest_test.py IMAGE CASE      (CASE: see CASES below; 'list' prints them)

Runs under KVM with `-cpu host,-arch-capabilities` (plain `-cpu host` makes QEMU abort on
the IA32_ARCH_CAPABILITIES MSR on some paravirtual hosts, this project's included). Where KVM
is not usable (no /dev/kvm, no access, or QEMU cannot initialise it) the case prints SKIP and
exits 77 (Meson's "skipped"): it never falls back to TCG and passes there. Also 77 when QEMU
is not installed. VMIG_QEMU_ACCEL=tcg runs a case under TCG on purpose (said on every run).
The guest's status comes back through isa-debug-exit: QEMU exits with (status << 1) | 1.
"""
import fcntl
import os
import re
import shutil
import subprocess
import sys
import time

QEMU = "qemu-system-x86_64"
BOOT_TIMEOUT = 25  # seconds; every case is far shorter
LINE_TIMES = {}  # first word of a report line -> host time it was last seen


def parse(lines):
    """Report lines 'KIND key=value ...' -> list of (kind, {key: value})."""
    out = []
    for line in lines:
        words = line.split()
        if not words or not words[0].isupper():
            continue
        kv = dict(w.split("=", 1) for w in words[1:] if "=" in w)
        out.append((words[0], kv))
    return out


def num(v):
    return int(v, 0)


class Run:
    def __init__(self, lines, status, accel):
        self.lines, self.status, self.accel = lines, status, accel
        self.report = parse(lines)

    def all(self, kind, **match):
        return [kv for k, kv in self.report if k == kind and
                all(kv.get(a) == b for a, b in match.items())]

    def one(self, kind, **match):
        found = self.all(kind, **match)
        check(len(found) == 1, f"expected one {kind} {match} line, got {len(found)}")
        return found[0]

    def result(self, workload):
        r = self.one("RESULT", workload=workload)
        check(r.get("status") == "ok", f"{workload}: status={r.get('status')}")
        return r


class Failure(Exception):
    pass


class Skip(Exception):
    """KVM is not usable here: the case cannot say anything (exit 77)."""


def check(cond, what):
    if not cond:
        raise Failure(what)


KVM_GET_API_VERSION = 0xAE00
KVM_API_VERSION = 12
# What QEMU says when it cannot bring KVM up (a host problem, not the guest's).
QEMU_NO_KVM = re.compile(r"(failed to initialize kvm|Could not access KVM|"
                         r"KVM is not supported|kvm accelerator not found)", re.I)


def kvm_unusable():
    """Why KVM cannot be used here, or None."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        return f"/dev/kvm: {e.strerror}"
    try:
        version = fcntl.ioctl(fd, KVM_GET_API_VERSION)
    except OSError as e:
        return f"KVM_GET_API_VERSION: {e.strerror}"
    finally:
        os.close(fd)
    return None if version == KVM_API_VERSION else f"KVM API version {version}"


def pick_accel():
    forced = os.environ.get("VMIG_QEMU_ACCEL")
    if forced:
        print(f"NOTE: accel={forced} forced by VMIG_QEMU_ACCEL")
        return forced
    why = kvm_unusable()
    if why:
        raise Skip(f"KVM is not usable here ({why}); not falling back to TCG")
    return "kvm"


def qemu_cmd(image, accel, smp, mem, args):
    cpu = ["-cpu", "host,-arch-capabilities"] if accel == "kvm" else ["-cpu", "max"]
    return [QEMU, "-accel", accel, *cpu, "-machine", "pc", "-display", "none",
            "-nodefaults", "-no-reboot", "-smp", str(smp), "-m", mem,
            "-kernel", image, "-append", args, "-debugcon", "stdio",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=4"]


def boot(image, accel, smp, mem, args, stop_at=None):
    """Runs one guest; returns (lines, guest status or None, qemu stderr)."""
    cmd = qemu_cmd(image, accel, smp, mem, args)
    print("+", " ".join(cmd), flush=True)
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, errors="replace")
    lines, deadline = [], time.monotonic() + BOOT_TIMEOUT
    try:
        for line in proc.stdout:
            line = line.rstrip("\n")
            print("guest:", line, flush=True)
            lines.append(line)
            LINE_TIMES[line.split(" ", 1)[0]] = time.monotonic()
            if stop_at and line.startswith(stop_at):
                proc.kill()
                break
            if time.monotonic() > deadline:
                proc.kill()
                raise Failure(f"guest still running after {BOOT_TIMEOUT} s")
        rc = proc.wait(timeout=BOOT_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise Failure(f"QEMU did not exit within {BOOT_TIMEOUT} s")
    err = proc.stderr.read()
    status = (rc - 1) >> 1 if rc > 0 and rc & 1 else None
    return lines, status, err


def run_guest(image, smp, mem, args, expect_status=0, stop_at=None):
    accel = pick_accel()
    lines, status, err = boot(image, accel, smp, mem, args, stop_at)
    if accel == "kvm" and not lines and status is None and QEMU_NO_KVM.search(err):
        raise Skip(f"QEMU cannot use KVM here ({err.strip()}); not falling back to TCG")
    print(f"accel={accel} guest_status={status}")
    if stop_at is None:
        check(status == expect_status,
              f"guest exit status {status}, expected {expect_status}; qemu: {err.strip()}")
    return Run(lines, status, accel)


def check_timer(run, vcpus):
    irqs = run.all("IRQS")
    check(len(irqs) == vcpus, f"{len(irqs)} IRQS lines for {vcpus} vCPUs")
    for kv in irqs:
        check(num(kv["timer"]) > 0, f"no timer interrupts on cpu {kv['cpu']}")


def case_idle_1(img):
    run = run_guest(img, 1, "64M", "workload=idle secs=1 cpus=1")
    check(run.one("BOOT")["vcpus"] == "1", "vcpus")
    ticks = num(run.result("idle")["ticks"])
    check(ticks == 100, f"idle secs=1 took {ticks} ticks at 100 Hz")
    # The guest's clock is its APIC timer (assumed 1 GHz): it must agree with the host's.
    wall = LINE_TIMES["RESULT"] - LINE_TIMES["LAYOUT"]
    check(0.7 <= wall <= 3.0, f"idle secs=1 took {wall:.2f} s of host time")
    check_timer(run, 1)
    check(run.one("DONE")["status"] == "0", "DONE status")


def case_idle_ipi_2(img):
    run = run_guest(img, 2, "64M", "workload=idle,ipi secs=1 cpus=2 ipis=25")
    check(run.one("BOOT")["vcpus"] == "2", "vcpus")
    run.result("idle")
    r = run.result("ipi")
    check(r["self_sent"] == r["self_received"] == "50", f"self IPIs {r}")
    check(r["cross_sent"] == r["cross_received"] == "1", f"cross IPIs {r}")
    check_timer(run, 2)
    cpu1 = run.one("IRQS", cpu="1")
    check(cpu1.get("vec0x41") == "1" and cpu1.get("vec0x40") == "25", f"cpu1 {cpu1}")


def case_discover_2(img):
    run = run_guest(img, 2, "64M", "workload=idle secs=1")
    check(run.one("BOOT")["vcpus"] == "2", "the guest did not find both vCPUs itself")
    check_timer(run, 2)


def dirty_verify(img, vcpus):
    run = run_guest(img, vcpus, "128M",
                    f"workload=dirty,verify ws=8M secs=1 fillram=1 cpus={vcpus} seed=7")
    lay = run.one("LAYOUT")
    check(num(lay["ws_pages"]) == 2048, "ws_pages")
    check(num(lay["fill_pages"]) > 10000, "fillram filled too little")
    d = run.result("dirty")
    check(num(d["writes"]) >= 2048, f"dirty wrote only {d['writes']} pages")
    v = run.result("verify")
    check(v["mismatches"] == "0" and v["sse_bad"] == "0", f"{v}")
    check(num(v["checked"]) == 2048 + num(lay["fill_pages"]), "verify skipped pages")
    check_timer(run, vcpus)


def case_dirty_verify_1(img):
    dirty_verify(img, 1)


def case_dirty_verify_2(img):
    dirty_verify(img, 2)


def case_smp_4(img):
    run = run_guest(img, 4, "128M", "workload=dirty,verify,ipi ws=8M secs=1 cpus=4")
    check(run.one("BOOT")["vcpus"] == "4", "vcpus")
    run.result("dirty")
    check(run.result("verify")["mismatches"] == "0", "mismatches")
    r = run.result("ipi")
    check(r["cross_received"] == "3" and r["self_received"] == "40", f"{r}")
    check_timer(run, 4)
    ids = sorted(num(kv["apic_id"]) for kv in run.all("IRQS"))
    check(ids == [0, 1, 2, 3], f"APIC ids {ids}")


def case_rate(img):
    run = run_guest(img, 2, "64M", "workload=dirty ws=4M rate=20000 secs=1 cpus=2")
    writes = num(run.result("dirty")["writes"])
    check(15000 <= writes <= 25000, f"rate=20000 secs=1 wrote {writes} pages")


def case_iters(img):
    run = run_guest(img, 2, "64M", "workload=dirty,verify ws=1M iters=3 cpus=2")
    d = run.result("dirty")
    check(d["writes"] == str(3 * 256) and d["passes"] == "3", f"iters=3: {d}")
    run.result("verify")


def case_corrupt(img):
    run = run_guest(img, 2, "64M", "workload=dirty,corrupt,verify ws=1M iters=1 fillram=1",
                    expect_status=1)
    v = run.one("RESULT", workload="verify")
    check(v["mismatches"] == "2" and v["status"] == "fail", f"verify missed corruption: {v}")
    check(v["sse_bad"] == "1", f"verify missed the damaged SSE register: {v}")
    check(len(run.all("MISMATCH")) == 2, "MISMATCH lines")
    check(run.one("DONE")["status"] == "1", "DONE status")


def case_cmdline(img):
    # QEMU puts the image path in front, as Multiboot loaders do; the guest skips it.
    for bad, why in [("workload=dirty bogus=1", "unknown option 'bogus'"),
                     ("workload=nosuch", "unknown workload 'nosuch'"),
                     ("ws=12Q", "bad value for option 'ws'"),
                     ("secs=", "bad value for option 'secs'"),
                     ("workload=touch", "needs touch="),
                     ("secs=1 idle", "expected key=value, got 'idle'")]:
        run = run_guest(img, 1, "64M", bad, expect_status=2)
        errors = [l for l in run.lines if l.startswith("ERROR cmdline: ")]
        check(len(errors) == 1 and why in errors[0], f"'{bad}': want '{why}' in {errors}")


def case_hole(img):
    run = run_guest(img, 2, "5G",
                    "workload=dirty,verify wsbase=0xBFC00000 ws=8M secs=1 cpus=2")
    boot_line, lay = run.one("BOOT"), run.one("LAYOUT")
    check(num(boot_line["ram_top"]) > 1 << 32, "no RAM above 4 GiB")
    check(lay["ws_extents"] == "2", "working set does not straddle the hole")
    check(num(lay["ws_start"]) < 0xC0000000 < (1 << 32) < num(lay["ws_end"]), f"{lay}")
    run.result("dirty")
    check(run.result("verify")["mismatches"] == "0", "mismatches")


def case_touch(img):
    run = run_guest(img, 2, "64M", "workload=touch touch=0x2000000,8,0x2000 cpus=2",
                    stop_at="RESULT workload=touch")
    r = run.result("touch")
    check(r["pages"] == "8" and r["base"] == "0x2000000" and r["last"] == "0x200e000", f"{r}")


def case_irqwait_timeout(img):
    run = run_guest(img, 1, "64M", "workload=irqwait irq=0x30 secs=1", expect_status=1)
    check(run.one("IRQWAIT")["vector"] == "0x30", "IRQWAIT line")
    r = run.one("RESULT", workload="irqwait")
    check(r["status"] == "timeout" and r["received"] == "0", f"{r}")


def case_no_vsmmu(img):
    """QEMU has neither the vSMMUv3 nor the sdma: the device workloads fail cleanly."""
    run = run_guest(img, 1, "64M", "workload=dma,remap,sva,hostile cpus=1", expect_status=1)
    errors = [l for l in run.lines if l.startswith("ERROR smmu: ")]
    check(errors == ["ERROR smmu: no vSMMUv3 at 0xd0000000 idr0=0x0"] or
          (len(errors) == 1 and "no vSMMUv3 at 0xd0000000" in errors[0]), f"{errors}")
    for w in ("dma", "remap", "sva", "hostile"):
        r = run.one("RESULT", workload=w)
        check(r["status"] == "fail", f"{w}: {r}")
    check(run.one("DONE")["status"] == "1", "DONE status")


def case_cmdline_devices(img):
    for bad, why in [("workload=dma strtab=3level", "strtab wants linear or 2level"),
                     ("workload=dma jobs=0", "jobs and jobsize must be positive"),
                     ("workload=dma jobsize=1M", "bad value for option 'jobsize'")]:
        run = run_guest(img, 1, "64M", bad, expect_status=2)
        errors = [l for l in run.lines if l.startswith("ERROR cmdline: ")]
        check(len(errors) == 1 and why in errors[0], f"'{bad}': want '{why}' in {errors}")


CASES = {name[5:].replace("_", "-"): fn for name, fn in globals().items()
         if name.startswith("case_")}


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in CASES and sys.argv[2] != "list":
        sys.exit(f"usage: {sys.argv[0]} IMAGE {{{'|'.join(CASES)}|list}}")
    if sys.argv[2] == "list":
        print("\n".join(CASES))
        return 0
    if not shutil.which(QEMU):
        print(f"SKIP: {QEMU} is not installed (apt-get install qemu-system-x86)")
        return 77
    try:
        CASES[sys.argv[2]](os.path.abspath(sys.argv[1]))
    except Skip as e:
        print(f"SKIP {sys.argv[2]}: {e}")
        return 77
    except Failure as e:
        print(f"FAIL {sys.argv[2]}: {e}")
        return 1
    print(f"PASS {sys.argv[2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
