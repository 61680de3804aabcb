#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The migration soak (issue 11): N live migrations of guests drawn at random, faults drawn
at random, every guest checked by its own verification at the end.

Usage: soak.py VMIG [--expect-loss]
  VMIG_SOAK_N=N         runs (default 10: 20-40 migration attempts)
  VMIG_SOAK_SEED=S      the seed every run's own seed is drawn from (printed; else
                        VMIG_FUZZ_SEED, else a fresh one)
  VMIG_SOAK_REPLAY=R    run only the run whose seed is R (each failure prints its R)
  VMIG_SOAK_TABLE=FILE  also write the result table there (Markdown)
  VMIG_SOAK_KEEP=1      keep every run's files (vmig output), not only a failed run's

A run draws: the workload (`dirty`, `dma`, `remap`, `sva` or all four, each followed by
`verify`), vCPUs, RAM, the device configuration (behind the nested vSMMUv3, its STE in
bypass, or no devices), the device dirty-tracking strategy (forced, or auto on a host that
lacks stage-2 dirty bits, DMA logging or PRE_COPY), RAM channels, downtime limit,
bandwidth, auto-converge, the moment of the migration and the number of hops (ping-pong).
One hop in two at most meets a fault: cancel, the destination killed, the link cut or one
byte flipped (a proxy on the stream), or the drain bound hit (an `sva` guest keeping its
device blocked on a fault). After a fault the source must run on (or wait in postmigrate
after COMMIT), the destination's guest must never have run, and the guest then migrates
again (nothing lost by the failed attempt).

A run passes when the guest ran to its end exactly once (one vmig printed its DONE line,
exit 0), every RESULT line it printed on any host is ok with no mismatch and no lost page,
and no vmig process crashed (a signal we did not send, exit 70, a sanitizer report) or hung
(every wait is bounded). A run whose guest never moved, or ended on its source before a
migration converged, is inconclusive: more than 5% of those (and more than one) fail the
soak too. The table counts runs by configuration and by fault; each failure is listed
with the seed that replays it. Exit status 1 on any failure.

--expect-loss: the negative control. Every source runs with the device's dirty pages
ignored (VMIG_TEST_NO_DEVICE_DIRTY=1) under stage2, device-log and perpetual in turn, only
`dma` and `remap` are drawn, one hop without a fault at 128 MiB/s (passes long enough for
the device to write pages already sent): every
run must fail as "lost", or the soak could not see a lost page; exit 0 only then.
"""
import collections
import os
import random
import re
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "migration"))
import migproxy  # noqa: E402
import migtest as mt  # noqa: E402
from migtest import check, log  # noqa: E402

VMIG_LIFETIME_S = 180  # --timeout of every vmig process: nothing outlives a run for long
MIB = 1 << 20
BAD_FIELDS = ("mismatches", "lost", "pte_lost", "sse_bad", "stale")


class Lost(Exception):
    """The guest's own verification found a page that did not arrive intact."""


class Crash(Exception):
    """A vmig process died of something we did not do to it."""


# Drawing a run ---------------------------------------------------------------------------


class Config:
    """One run's guest, host and migration settings, drawn from the run's own seed."""

    def __init__(self, rng, expect_loss, index=0):
        self.workload = rng.choice(("dma", "remap") if expect_loss else
                                   ("dirty", "dirty", "dma", "remap", "sva", "all"))
        self.devices = self._devices(rng)
        self.vcpus = rng.choice((1, 2))
        self.mem = rng.choice(("256M", "512M") if self.devices != "none" else
                              ("128M", "256M", "512M"))
        self.secs = rng.randint(3, 5) if self.workload == "all" else rng.randint(6, 10)
        self.strategy, self.host = self._strategy(rng)
        self.channels = rng.choice((0, 1, 2, 4))
        self.limit_ms = 20000 if self.perpetual() else rng.choice((100, 300, 1000))
        # The device rewrites its 16 MiB of windows over and over: 128 MiB/s never moves
        # them within 100 ms (honest non-convergence, not worth a run).
        # Device-log marks whole 2 MiB log pages under remap: the same.
        slow = (128 * MIB,) if self.limit_ms > 100 and self.workload in ("dirty", "dma",
                                                                          "sva") else ()
        self.bandwidth = rng.choice((0, 512 * MIB) + slow)
        self.auto_converge = rng.random() < 0.3
        self.hops = rng.choice((1, 1, 2, 3))
        self.fill = self.mem != "512M" and rng.random() < 0.3  # first touches cost ~90 us
        self.ws = rng.choice(("8M", "16M", "32M"))
        self.seed = rng.getrandbits(32)
        self.httu = self.workload == "dma" and self.devices == "nested" and rng.random() < 0.5
        self.expect_loss = expect_loss
        if expect_loss:  # passes long enough for the device to write after its pages went
            self.bandwidth, self.hops, self.host = 128 * MIB, 1, ()
            self.devices = "nested"
            self.strategy = ("stage2", "device-log", "perpetual")[index % 3]
            self.limit_ms = 20000 if self.strategy == "perpetual" else 1000

    def _devices(self, rng):
        if self.workload == "dirty":
            return rng.choice(("none", "nested"))
        return rng.choice(("nested", "nested", "bypass")) if self.workload == "dma" else \
            "nested"

    def _strategy(self, rng):
        if self.devices == "none":
            return "-", ()
        how = rng.choice(("auto", "auto", "stage2", "device-log", "perpetual"))
        host = []
        if how == "auto" and rng.random() < 0.5:
            host = rng.sample(("--host-no-s2-dirty", "--host-no-dma-log"), rng.randint(1, 2))
        if rng.random() < 0.2:
            host.append("--host-no-precopy")
        return how, tuple(sorted(host))

    def perpetual(self):
        return self.strategy == "perpetual" or {"--host-no-s2-dirty", "--host-no-dma-log"} <= \
            set(self.host)

    def guest_args(self, stall_ms=0):
        steps = {"all": "dirty,dma,remap,sva"}.get(self.workload, self.workload)
        args = [f"workload={steps},verify", f"secs={self.secs}", f"ws={self.ws}",
                f"seed={self.seed}"]
        args += ["fillram=1"] if self.fill else []
        args += ["httucheck=1"] if self.httu else []
        args += ["bypass=1"] if self.devices == "bypass" else []
        args += ["remapwritten=1"] if self.workload in ("remap", "all") else []
        args += [f"stalldelay={stall_ms}"] if stall_ms else []
        return " ".join(args)

    def vm_args(self):
        args = ["--mem", self.mem, "--vcpus", str(self.vcpus), *self.host]
        if self.devices == "none":
            return args + ["--no-devices"]
        return args + ["--device-dirty", self.strategy if self.strategy != "-" else "auto"]

    def label(self):
        host = "+".join(h[len("--host-no-"):] for h in self.host)
        return (f"{self.workload} {self.devices} {self.strategy}{'(no ' + host + ')' if host else ''}"
                f" vcpus={self.vcpus} mem={self.mem} ch={self.channels} limit={self.limit_ms}"
                f" bw={self.bandwidth // MIB}M{' ac' if self.auto_converge else ''}"
                f" hops={self.hops}")


FAULTS = ("cancel", "kill", "cut", "flip", "drain")


def draw_faults(rng, cfg):
    """The fault of each hop, or None: at most one hop in two meets one."""
    if cfg.expect_loss:
        return [None]
    faults = [rng.choice(FAULTS[:-1]) if rng.random() < 0.5 else None for _ in range(cfg.hops)]
    if cfg.workload == "sva" and rng.random() < 0.3:
        faults[0] = "drain"  # the guest holds its first stall: only the first hop can
    return faults


# One guest's life across hosts -----------------------------------------------------------


class Host:
    """A vmig process with its control socket: the guest's source, or a destination."""

    def __init__(self, rig, cfg, guest=None, env=None):
        self.sock = rig.path("vm.sock")
        args = ["run", *cfg.vm_args(), "--qmp", "unix:" + self.sock, "--timeout",
                str(VMIG_LIFETIME_S)]
        args += ["--guest-args", guest] if guest else ["--incoming", "defer"]
        self.v = mt.Vmig(rig, f"vm{rig.n}", args, env)
        self.q = mt.Qmp(self.sock, self.v)
        self.killed = False
        self.uri = None
        if not guest:
            self.uri = f"tcp:127.0.0.1:{mt.free_port()}"
            self.q.cmd("migrate-incoming", uri=self.uri)

    def kill(self):
        self.killed = True
        self.v.kill()


class Life:
    """The guest of one run, moving from host to host; `seen` collects what happened."""

    def __init__(self, rig, cfg, rng, env):
        self.rig, self.cfg, self.env = rig, cfg, env
        self.hosts = []
        self.seen = []
        self.stall = rng.choice((2500, 4000))
        self.faults = draw_faults(rng, cfg)
        if {"cut", "flip"} & set(self.faults):
            # A RAM channel's header hit makes the destination wait its 10 s bound for the
            # real channel: the guest must outlive that to move afterwards.
            cfg.secs += 3 if cfg.workload == "all" else 12
        self.src = self.boot(stalled="drain" in self.faults)
        self.span = cfg.secs * (4 if cfg.workload == "all" else 1)
        self.end = time.monotonic() + self.span

    def boot(self, stalled):
        guest = self.cfg.guest_args(self.stall if stalled else 0)
        h = Host(self.rig, self.cfg, guest, self.env)
        self.hosts.append(h)
        check(h.q.status() == "running", f"{h.v.name} is not running")
        if self.cfg.workload == "dirty":
            mt.wait_line(h.v, "PREPARED", timeout=30)
        else:
            mt.wait_line(h.v, "SMMU", timeout=30)
        if stalled:
            mt.wait_text(h.v, "sva: holding a stall", timeout=30)
        return h

    def dest(self, env=None):
        h = Host(self.rig, self.cfg, env=env)
        self.hosts.append(h)
        return h

    def time_left(self):
        return self.end - time.monotonic()

    def set_up(self, **extra):
        c = self.cfg
        mt.set_caps(self.src.q, c.channels, c.auto_converge)
        mt.set_params(self.src.q, max_bandwidth=c.bandwidth, downtime_limit=c.limit_ms,
                      x_vmig_drain_limit=extra.get("drain", 5000))

    def moved(self, dst, info):
        mt.quit_source(self.src.v, self.src.q)
        self.src = dst
        check(dst.q.status() == "running", f"{dst.v.name} does not run the guest")
        mt.wait_final(dst.q, timeout=5)
        return f"completed, {info.get('downtime')} ms down"


# Hops and faults -------------------------------------------------------------------------


def clean_hop(life):
    life.set_up()
    dst = life.dest()
    info = mt.migrate(life.src.q, dst.uri, timeout=120)
    check(info["status"] == "completed", f"migration {info.get('status')}: "
          f"{info.get('error-desc')}")
    return life.moved(dst, info)


def after_failure(life, dst, info, what):
    """A failed attempt: the source runs on (or holds in postmigrate after COMMIT: then cont),
    the destination's guest never ran."""
    check(info["status"] in ("failed", "cancelled"), f"{what}: {info}")
    state = life.src.q.status()
    if state == "postmigrate":
        check(info["status"] == "failed", f"{what}: postmigrate after {info['status']}")
        if dest_settled(dst) == "running":
            life.moved(dst, info)  # COMMIT arrived, RUNNING did not: the guest moved
            return "failed after COMMIT, the destination runs it"
        life.src.q.cmd("cont")  # the operator's call once the destination is known dead
        state = "postmigrate, cont"
    else:
        mt.assert_source_running(life.src.q, what)
    if not dst.killed:
        dest_gave_up(dst)
    check(not dst.v.guest_lines(), f"{what}: the destination's guest ran {dst.v.tail()}")
    return f"{info['status']} ({state})"


def dest_settled(dst, timeout=10.0):
    """Past COMMIT the destination may still be loading: wait until it runs the guest or
    ended; one still loading then is killed, so that only one copy can ever run."""
    deadline = time.monotonic() + timeout
    while not dst.killed and dst.v.poll() is None and time.monotonic() < deadline:
        if status_of(dst) == "running":
            return "running"
        time.sleep(0.05)
    if not dst.killed and dst.v.poll() is None:
        dst.kill()
    return "gone"


def status_of(h):
    try:
        return h.q.status()
    except (EOFError, OSError, mt.QmpError):
        return None


def dest_gave_up(dst):
    """Exit 1 with a reason, or still waiting for a source (a RAM channel that never came
    is waited for with the time left): then we end it."""
    deadline = time.monotonic() + 3
    while dst.v.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if dst.v.poll() is not None:
        mt.assert_never_ran(dst.v, timeout=1)
        return
    check(dst.q.status() == "inmigrate", f"{dst.v.name}: {dst.q.status()}")
    dst.kill()


def outcome(life, dst, info, what):
    if info["status"] == "completed":
        return life.moved(dst, info)
    return after_failure(life, dst, info, what)


def fault_cancel(life, rng):
    life.set_up()
    dst = life.dest()
    mt.start(life.src.q, dst.uri)
    if rng.random() < 0.3:
        life.src.q.wait_event(lambda e: e["event"] == "MIGRATION" and
                              e["data"]["status"] in ("device",) + mt.FINAL, 60)
        time.sleep(rng.uniform(0, 0.005))
    else:
        time.sleep(rng.uniform(0, 0.3))
    life.src.q.cmd("migrate_cancel")
    return outcome(life, dst, mt.wait_final(life.src.q, 60), "cancel")


def fault_kill(life, rng):
    """The destination holds COMMIT for 3 s (the seam): a kill within 0.4 s of the start
    always comes before it runs the guest, at setup, in a pass, or after READY."""
    life.set_up()
    dst = life.dest(env={"VMIG_TEST_DEST_DELAY_COMMIT_MS": "3000"})
    mt.start(life.src.q, dst.uri)
    time.sleep(rng.uniform(0, 0.4))
    dst.kill()
    return outcome(life, dst, mt.wait_final(life.src.q, 60), "kill")


def proxy_fault(life, rng, kind):
    """A cut or a flipped byte at a random offset of one channel (log-uniform up to 64 MiB,
    so headers and early records are hit as often as page data)."""
    c = life.cfg
    channel = rng.randint(0, c.channels)
    offset = int(2 ** rng.uniform(0, 26)) - 1
    fault = migproxy.Fault(kind, channel, offset, rng.randrange(1, 256))
    life.set_up()
    dst = life.dest()
    proxy = migproxy.Proxy(int(dst.uri.rsplit(":", 1)[1]), fault)
    try:
        info = mt.migrate(life.src.q, f"tcp:127.0.0.1:{proxy.port}", timeout=120)
    finally:
        proxy.close()
    hit = {None: "nothing", "stream-header": "the stream header",
           "record-header": "a record header", "ram-data": "page data"}.get(fault.fired,
                                                                           "a record payload")
    if info["status"] == "completed":
        check(fault.fired is None or (kind == "flip" and fault.fired == "ram-data"),
              f"{kind} of {fault.fired} at {offset} on channel {channel}: completed")
    return f"{kind} of {hit}: " + outcome(life, dst, info, f"{kind} at {offset}")


def fault_drain(life, rng):
    """The guest holds its device on a fault longer than the drain bound allows."""
    if not any("holding a stall" in l for l in life.src.v.guest_lines()) or \
            any("answering the held stall" in l for l in life.src.v.guest_lines()):
        return "no stall held: " + clean_hop(life)
    life.set_up(drain=500)
    dst = life.dest()
    info = mt.migrate(life.src.q, dst.uri, timeout=60)
    if info["status"] == "completed":  # the stall was answered just before the switchover
        check(any("answering the held stall" in l for l in life.src.v.guest_lines()),
              f"drain: completed with the stall still held: {info.get('x-vmig')}")
        return life.moved(dst, info) + " (the stall answered in time)"
    check("did not drain within 500 ms" in info.get("error-desc", ""), f"drain: {info}")
    return "drain bound: " + after_failure(life, dst, info, "drain bound")


FAULT_FNS = {"cancel": fault_cancel, "kill": fault_kill, "drain": fault_drain,
             "cut": lambda life, rng: proxy_fault(life, rng, "cut"),
             "flip": lambda life, rng: proxy_fault(life, rng, "flip")}


class GuestEnded(Exception):
    """The guest finished its work on the source while a migration was still under way."""


def hop(life, rng, fault):
    """One hop: a fault first if drawn (then a clean migration, if the guest has time)."""
    try:
        if fault:
            what = FAULT_FNS[fault](life, rng)
            life.seen.append(f"{fault}: {what}")
            if life.time_left() < 2.5:
                return
            fault = None
        life.seen.append(clean_hop(life))
    except (EOFError, OSError):
        if not ended_first(life):
            raise
        if fault:  # the guest ended during the faulty attempt
            life.seen.append(f"{fault}: the guest ended during it")
        raise GuestEnded() from None


def ended_first(life):
    """The source's control socket closed because its guest ended (exit 0, DONE printed):
    a migration that had not converged by then goes down with the source, honestly. Its
    destination must give up, never running the guest."""
    src = life.src.v
    deadline = time.monotonic() + 10
    while src.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if src.poll() != 0 or not mt.report(src.guest_lines(), "DONE"):
        return False
    for h in life.hosts[life.hosts.index(life.src) + 1:]:
        if not h.killed:
            dest_gave_up(h)
    return True


# Checking the end ------------------------------------------------------------------------


def guest_results(life):
    """Every RESULT line the guest printed, on any host, must be ok with nothing lost or
    mismatched; the last host printed verify's."""
    results = [(h.v, r) for h in life.hosts for r in mt.report(h.v.guest_lines(), "RESULT")]
    check(any(r.get("workload") == "verify" for v, r in results if v is life.src.v),
          f"{life.src.v.name}: no verify RESULT")
    for v, r in results:
        bad = {k: r[k] for k in BAD_FIELDS if r.get(k, "0") != "0"}
        if bad:
            raise Lost(f"{v.name}: {r.get('workload')} {bad}")
        check(r.get("status") == "ok", f"{v.name}: {r}")


def crashes(life):
    out = []
    for h in life.hosts:
        rc, err = h.v.poll(), h.v.err()
        if rc == 124 or h.v.timed_out:
            out.append(f"{h.v.name} hung (ended by a timeout)")
        elif (rc is not None and rc < 0 and not h.killed) or rc == 70:
            out.append(f"{h.v.name} exit {rc}")
        if "AddressSanitizer" in err or "runtime error:" in err:
            out.append(f"{h.v.name}: sanitizer report")
    return out


def finish(life):
    """The last host runs the guest to its end; no other vmig does, and none crashed."""
    last = life.src
    last.q.close()
    rc = last.v.wait(max(life.time_left(), 0) + 90)
    guest_results(life)
    check(rc == 0, f"{last.v.name} exit {rc} {last.v.tail()}")
    done = [h.v.name for h in life.hosts if mt.report(h.v.guest_lines(), "DONE")]
    check(done == [last.v.name], f"the guest ran to its end in {done}, not once")
    for h in life.hosts:
        if h is not last:
            check(h.v.wait(10) is not None, f"{h.v.name} still runs")


def drive(life, rng):
    """The hops, from a random moment of the guest's work on (while it holds its stall,
    for the drain bound)."""
    stalled = life.faults[0] == "drain"
    time.sleep(rng.uniform(0, 0.3) if stalled else rng.uniform(0.05, 0.4) * life.span)
    try:
        for fault in life.faults:
            if life.time_left() < 3:
                life.seen.append("(guest near its end: no more hops)")
                return
            hop(life, rng, fault)
    except GuestEnded:
        life.seen.append("the guest ended on its source before the migration converged")


def live(rig, cfg, rng, env):
    """The run; an exception carries the life it ended (what happened until then)."""
    life = Life(rig, cfg, rng, env)
    try:
        drive(life, rng)
        finish(life)
        bad = crashes(life)
        if bad:
            raise Crash("; ".join(bad))
    except Exception as e:
        bad = crashes(life)
        e.life = life
        if bad and not isinstance(e, Crash):
            raise Crash("; ".join(bad)) from e
        raise
    return life


# Runs and the table ----------------------------------------------------------------------

HANG_WORDS = ("still running after", "not over after", "did not come", "no QMP socket",
              "hung (ended by a timeout)", "timed out")


def classify(e):
    if isinstance(e, Lost):
        return "lost"
    if any(w in str(e) for w in HANG_WORDS):
        return "hang"
    if isinstance(e, Crash):
        return "crash"
    return "error"


def inconclusive(life):
    """A run whose guest never moved, or ended on a source mid-migration, proved nothing
    about a page arriving."""
    return all(not moved_by(s) for s in life.seen) or any(
        s.startswith("the guest ended") for s in life.seen)


def moved_by(s):
    return s.startswith("completed") or ": completed" in s or "destination runs it" in s


def run_one(vmig, seed, index, expect_loss):
    rng = random.Random(seed)
    cfg = Config(rng, expect_loss, index)
    env = {"VMIG_TEST_NO_DEVICE_DIRTY": "1"} if expect_loss else None
    rig = mt.Rig(vmig, rng)
    t0, verdict, life, why = time.monotonic(), "ok", None, ""
    try:
        life = live(rig, cfg, rng, env)
        verdict = "inconclusive" if inconclusive(life) else "ok"
    except (mt.Failure, mt.QmpError, Lost, Crash, EOFError, OSError) as e:
        verdict, why, life = classify(e), str(e), getattr(e, "life", None)
        traceback.print_exc(limit=-3, file=sys.stdout)
    finally:
        rig.close(keep=os.environ.get("VMIG_SOAK_KEEP") == "1" or
                  verdict not in ("ok", "inconclusive") and not expect_loss)
    return cfg, verdict, life, why, time.monotonic() - t0


class Table:
    def __init__(self):
        self.by = collections.defaultdict(lambda: collections.defaultdict(lambda: [0, 0, 0]))
        self.failures = []
        self.verdicts = collections.Counter()
        self.migrations = 0

    def add(self, seed, cfg, verdict, life, why):
        seen = life.seen if life else []
        self.verdicts[verdict] += 1
        self.migrations += sum(1 for s in seen if s.startswith("completed") or
                               s.split(":")[0] in FAULTS)
        keys = {"workload": cfg.workload, "devices": cfg.devices, "strategy": cfg.strategy,
                "channels": str(cfg.channels), "hops": str(cfg.hops),
                "limit (ms)": str(cfg.limit_ms)}
        for s in seen:
            if ": " in s and s.split(":")[0] in FAULTS:
                keys.setdefault("fault", [])
                keys["fault"].append(s.split(":")[0] + ": " + fault_result(s))
        if verdict not in ("ok", "inconclusive"):  # what was drawn; it may not have happened
            keys["fault"] = [f"{f or 'none'} (drawn)" for f in (life.faults if life else [])]
        keys.setdefault("fault", ["none"])
        moved = sum(1 for s in seen if moved_by(s))
        keys["guest moved"] = [f"{moved} times" + (", then ended mid-migration" if any(
            s.startswith("the guest ended") for s in seen) else "")]
        for dim, vals in keys.items():
            for v in vals if isinstance(vals, list) else [vals]:
                self.by[dim][v][0] += 1
                self.by[dim][v][1] += verdict not in ("ok", "inconclusive")
                self.by[dim][v][2] += verdict == "inconclusive"
        if verdict not in ("ok", "inconclusive"):
            self.failures.append((seed, verdict, cfg.label(), why))

    def lines(self, n, master, elapsed):
        out = [f"soak: {n} runs (seed 0x{master:x}), {self.migrations} migration attempts, "
               f"{elapsed / 60:.1f} min: " +
               ", ".join(f"{v} {k}" for k, v in sorted(self.verdicts.items())), ""]
        for dim, vals in self.by.items():
            out.append(f"| {dim} | runs | failed | inconclusive |")
            out.append("|---|---:|---:|---:|")
            out += [f"| {k} | {r} | {f} | {i} |"
                    for k, (r, f, i) in sorted(vals.items(), key=natural)]
            out.append("")
        for seed, verdict, label, why in self.failures:
            out.append(f"FAILED {verdict}: VMIG_SOAK_REPLAY=0x{seed:x} ({label}): {why}")
        return out


def natural(item):
    """Table rows in order, numbers by value: 100 before 1000."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", item[0])]


def fault_result(s):
    """'cut: cut of page data: failed (running)' -> 'cut of page data: failed (running)';
    'cancel: completed, 3 ms down' -> 'completed'."""
    what = s.split(": ", 1)[1]
    return re.sub(r", \d+ ms down", "", what)


def seeds():
    replay = os.environ.get("VMIG_SOAK_REPLAY")
    text = os.environ.get("VMIG_SOAK_SEED") or os.environ.get("VMIG_FUZZ_SEED")
    master = int(text, 0) if text else random.SystemRandom().getrandbits(32)
    if replay:
        return master, [int(replay, 0)]
    n = int(os.environ.get("VMIG_SOAK_N", "10"))
    rng = random.Random(master)
    return master, [rng.getrandbits(32) for _ in range(n)]


def main():
    if len(sys.argv) not in (2, 3) or sys.argv[2:] not in ([], ["--expect-loss"]):
        sys.exit(__doc__)
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("SKIP: /dev/kvm is not usable here")
        return 77
    vmig, expect_loss = os.path.abspath(sys.argv[1]), len(sys.argv) == 3
    master, run_seeds = seeds()
    log(f"soak seed 0x{master:x} (VMIG_SOAK_SEED=0x{master:x}), {len(run_seeds)} runs")
    table, t0 = Table(), time.monotonic()
    for i, seed in enumerate(run_seeds):
        cfg, verdict, life, why, took = run_one(vmig, seed, i, expect_loss)
        seen = life.seen if life else []
        log(f"run {i + 1}/{len(run_seeds)} seed=0x{seed:x} {cfg.label()}: {verdict} "
            f"in {took:.0f} s [{'; '.join(seen)}]{' ' + why if why else ''}")
        table.add(seed, cfg, verdict, life, why)
    lines = table.lines(len(run_seeds), master, time.monotonic() - t0)
    log("\n".join(lines))
    if os.environ.get("VMIG_SOAK_TABLE"):
        with open(os.environ["VMIG_SOAK_TABLE"], "w") as f:
            f.write("\n".join(lines) + "\n")
    if expect_loss:
        lost = table.verdicts["lost"]
        log(f"negative control: {lost} of {len(run_seeds)} runs lost pages (all must)")
        return 0 if lost == len(run_seeds) else 1
    # A few guests may end before a migration converges; many would hide hangs.
    too_many = table.verdicts["inconclusive"] > max(1, len(run_seeds) // 20)
    if too_many:
        log(f"{table.verdicts['inconclusive']} inconclusive runs: more than 5%")
    return 0 if not table.failures and not too_many else 1


if __name__ == "__main__":
    sys.exit(main())
