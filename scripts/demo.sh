#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The main job: installs what is missing, builds, then
#  1. runs the built-in guest on KVM with its passthrough-style DMA device behind the nested
#     vSMMUv3: the guest owns stage 1, the (modelled) host owns stage 2; DMA jobs checked by
#     the CPU, I/O page faults resolved by the guest, completion MSIs through both stages;
#  2. stops a guest mid-workload and continues it in a second vmig process, where it checks
#     every page it owns (the core of live migration; the device does not travel yet).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh build >/dev/null
VMIG=build/src/vmm/vmig
snap=$(mktemp /tmp/vmig-demo-XXXXXX.snap)
trap 'rm -f "$snap"' EXIT

echo "== 1. vmig run: DMA and shared virtual addressing through the nested vSMMUv3"
$VMIG run --vcpus 2 --mem 512M

echo
echo "== 2. a guest dirtying 64 MiB on 2 vCPUs is stopped after 1.5 s and saved"
$VMIG run --vcpus 2 --mem 512M --mem-prealloc --save "$snap" --save-after 1500 \
	--guest-args 'workload=dirty,verify secs=3 ws=64M fillram=1'
echo "   snapshot: $(du -h "$snap" | cut -f1)"

echo
echo "== 3. a second vmig process continues it; the guest verifies every page it owns"
$VMIG restore "$snap"
