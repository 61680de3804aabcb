#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The main job: installs what is missing, builds, then runs the built-in guest on KVM and
# moves it, mid-workload, into a second vmig process, where it checks its own memory.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh build >/dev/null
VMIG=build/src/vmm/vmig
snap=$(mktemp /tmp/vmig-demo-XXXXXX.snap)
trap 'rm -f "$snap"' EXIT

echo "== 1. vmig run: the built-in guest on KVM (default workload)"
$VMIG run --vcpus 2 --mem 512M

echo
echo "== 2. a guest dirtying 64 MiB on 2 vCPUs is stopped after 1.5 s and saved"
$VMIG run --vcpus 2 --mem 512M --mem-prealloc --save "$snap" --save-after 1500 \
	--guest-args 'workload=dirty,verify secs=3 ws=64M fillram=1'
echo "   snapshot: $(du -h "$snap" | cut -f1)"

echo
echo "== 3. a second vmig process continues it; the guest verifies every page it owns"
$VMIG restore "$snap"
