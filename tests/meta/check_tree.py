#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Project conventions a build cannot see: every source file starts with an SPDX line (after
a shebang), and C sources follow the root .clang-format.

usage: check_tree.py SOURCE_ROOT
Exits 77 (skipped) for the formatting part only when clang-format is not installed."""
import os
import shutil
import subprocess
import sys

ROOT = sys.argv[1]
SPDX = "SPDX-License-Identifier: Apache-2.0"
CHECKED = (".c", ".h", ".S", ".py", ".sh", ".ld")
NAMED = ("meson.build", "meson_options.txt", "run")


def tracked_files():
    out = subprocess.run(["git", "-C", ROOT, "ls-files"], capture_output=True, text=True)
    if out.returncode != 0:  # not a git checkout (a release tarball): walk the tree
        return [os.path.relpath(os.path.join(d, f), ROOT)
                for d, _, fs in os.walk(ROOT) if "/build" not in d for f in fs]
    return out.stdout.split()


def missing_spdx(files):
    bad = []
    for f in files:
        if not (f.endswith(CHECKED) or os.path.basename(f) in NAMED):
            continue
        with open(os.path.join(ROOT, f), errors="replace") as fh:
            head = [fh.readline() for _ in range(2)]
        if SPDX not in head[0] and not (head[0].startswith("#!") and SPDX in head[1]):
            bad.append(f)
    return bad


def misformatted(files):
    c_files = [os.path.join(ROOT, f) for f in files if f.endswith((".c", ".h"))]
    out = subprocess.run(["clang-format", "--dry-run", *c_files], capture_output=True,
                         text=True, cwd=ROOT)
    return sorted({line.split(":")[0] for line in out.stderr.splitlines()
                   if "warning:" in line})


def main():
    files = tracked_files()
    failed = False
    for f in missing_spdx(files):
        print(f"no SPDX line: {f}")
        failed = True
    if not shutil.which("clang-format"):
        print("SKIP formatting: clang-format is not installed (scripts/deps.sh installs it)")
        return 1 if failed else 77
    for f in misformatted(files):
        print(f"not clang-formatted (run: clang-format -i {os.path.relpath(f, ROOT)}): {f}")
        failed = True
    print("FAIL" if failed else f"PASS: {len(files)} files")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
