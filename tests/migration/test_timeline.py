#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The migration timeline (issue 11). Usage: test_timeline.py VMIG CASE

Cases:
  plot    scripts/plot-migration renders the recorded demo timelines
          (tests/migration/data/demo-timeline-*.jsonl) into an SVG (well-formed XML, an
          <svg> root, the title, a bar per timeline) and a PNG (the signature, the size
          asked for); a file that is not a timeline is refused with exit 1 and its reason
  record  a live migration driven by `vmig migrate --timeline FILE` (a dirtying guest under
          max-bandwidth and auto-converge, so several passes): one pass line per pass
          (numbered 1..N, in time order), the bytes of the passes add up to the pre-copy
          bytes query-migrate reports, the dirty pages split by writer (the vCPUs' after the
          first pass), the last decision "switch", then the switchover line (completed, the
          measured downtime, its phases); the guest verifies clean; the file is plotted
"""
import json
import os
import struct
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import migtest as mt  # noqa: E402
from migtest import check, log  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PLOT = os.path.join(HERE, "..", "..", "scripts", "plot-migration")
DATA = [os.path.join(HERE, "data", f"demo-timeline-{k}.jsonl") for k in ("dma", "sva")]


def plot(args):
    return subprocess.run([sys.executable, PLOT, *args], capture_output=True, text=True,
                          timeout=120)


def check_svg(path, title, bars):
    root = ET.parse(path).getroot()
    check(root.tag.endswith("svg"), f"{path}: root <{root.tag}>")
    check(title in "".join(root.itertext()), f"{path}: no title '{title}' in its text")
    check(sum("ms down)" in (t.text or "") for t in root.iter()) == bars,
          f"{path}: not {bars} switchover bars")


def check_png(path, w, h):
    with open(path, "rb") as f:
        head = f.read(24)
    check(head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR",
          f"{path}: not a PNG")
    check(struct.unpack(">II", head[16:24]) == (w, h), f"{path}: size {head[16:24]!r}")


def render(tmp, files, bars):
    svg, png = os.path.join(tmp, "t.svg"), os.path.join(tmp, "t.png")
    for out in (svg, png):
        r = plot(["-o", out, "--title", "timeline test", *files])
        check(r.returncode == 0, f"plot-migration -o {out}: {r.returncode} {r.stderr}")
    check_svg(svg, "timeline test", bars)
    check_png(png, 1000, 900)


def case_plot(vmig):
    with tempfile.TemporaryDirectory(prefix="vmig-plot-test-") as tmp:
        render(tmp, DATA, 2)
        render(tmp, DATA[:1], 1)
        bad = os.path.join(tmp, "bad.jsonl")
        with open(bad, "w") as f:
            f.write('{"status": "completed"}\n')
        r = plot(["-o", os.path.join(tmp, "x.svg"), bad])
        check(r.returncode == 1 and "no pass records" in r.stderr, f"bad input: {r}")
        r = plot(["-o", os.path.join(tmp, "x.pdf"), DATA[0]])
        check(r.returncode != 0 and ".svg or .png" in r.stderr, f"bad output name: {r}")
    log("plot: SVG and PNG of 1 and 2 recorded timelines, bad input refused")
    return 0


def passes_and_end(path):
    with open(path) as f:
        recs = [json.loads(line) for line in f if line.strip()]
    check(recs and recs[-1].get("type") == "switchover", "no switchover line at the end")
    check(all(r.get("type") == "pass" for r in recs[:-1]), "stray lines before the end")
    return recs[:-1], recs[-1]


def check_record(passes, end, info):
    check(len(passes) >= 2, f"{len(passes)} passes: the guest should have needed several")
    check([p["pass"] for p in passes] == list(range(1, len(passes) + 1)), "pass numbers")
    check(all(a["t-ms"] <= b["t-ms"] for a, b in zip(passes, passes[1:])), "time order")
    check(sum(p["bytes"] for p in passes) == end["precopy-bytes"],
          f"pass bytes {sum(p['bytes'] for p in passes)} != precopy-bytes "
          f"{end['precopy-bytes']}")
    check(all(p["dirty-vcpu-pages"] > 0 for p in passes[1:]), "a pass with no vCPU writes")
    check(passes[-1]["decision"] == "switch" and
          all(p["decision"] in ("iterate", "throttle") for p in passes[:-1]), "decisions")
    check(end["status"] == "completed" and end["downtime-us"] == info["x-vmig"]["downtime-us"]
          and "last-ram" in end["switchover-us"], f"switchover line {end}")


def case_record(vmig):
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("SKIP: /dev/kvm is not usable here")
        return 77
    rig = mt.Rig(vmig, mt.make_rng())
    ok = False
    try:
        src, q = rig.source(20, ws="64M")
        dst, uri = rig.dest()
        tl = os.path.join(rig.dir, "timeline.jsonl")
        r = subprocess.run([vmig, "migrate", "--qmp", "unix:" + q.path, "--max-bandwidth",
                            "200M", "--auto-converge", "--timeline", tl, uri],
                           capture_output=True, text=True, timeout=90)
        check(r.returncode == 0, f"vmig migrate: {r.returncode} {r.stderr}")
        passes, end = passes_and_end(tl)
        check_record(passes, end, q.cmd("query-migrate"))
        log(f"record: {len(passes)} passes, {end['precopy-bytes']} bytes, "
            f"downtime {end['downtime-us']} us")
        mt.quit_source(src, q)
        mt.assert_verified(dst, timeout=60)
        render(rig.dir, [tl], 1)
        ok = True
    except (mt.Failure, mt.QmpError, OSError, EOFError, KeyError, ValueError) as e:
        print(f"FAIL record: {e}", flush=True)
    finally:
        rig.close(keep=not ok)
    return 0 if ok else 1


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in ("plot", "record"):
        sys.exit(__doc__)
    try:
        return {"plot": case_plot, "record": case_record}[sys.argv[2]](sys.argv[1])
    except mt.Failure as e:
        print(f"FAIL {sys.argv[2]}: {e}", flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
