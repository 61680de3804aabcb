#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The main job: installs what is missing, builds, then
#  1. runs the built-in guest on KVM with its passthrough-style DMA device behind the nested
#     vSMMUv3: the guest owns stage 1, the (modelled) host owns stage 2; DMA jobs checked by
#     the CPU, I/O page faults resolved by the guest, completion MSIs through both stages;
#  2. live-migrates that guest, its device busy with DMA, to a second vmig process over
#     loopback TCP (2 RAM channels), with live progress and a summary (device dirty
#     tracking on the host's stage 2, the device's own state through VFIO migration v2,
#     the vSMMU re-installed on the destination); there the device goes on with the jobs,
#     and the guest checks every DMA result it ever checked again (lost=0);
#  3. migrates it on to a third vmig while the device faults page by page through the
#     guest's shared virtual address spaces (I/O page faults in flight): the device drains
#     first while the guest answers its faults, the guest's register writes meanwhile are
#     held and replayed on the destination (the summary's "faults in flight" line); the
#     guest then finishes its jobs there and verifies every page it owns;
#  4. draws both migrations' timelines into build/demo/timeline.svg.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh build >/dev/null
VMIG=build/src/vmm/vmig
work=$(mktemp -d /tmp/vmig-demo-XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

echo "== 1. vmig run: DMA and shared virtual addressing through the nested vSMMUv3"
$VMIG run --vcpus 2 --mem 512M

echo
echo "== 2. live migration: the guest and its DMA device move to a second vmig mid-workload"
vm=(--vcpus 2 --mem 1G)
port2=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
$VMIG run "${vm[@]}" --qmp "unix:$work/source.sock" \
	--guest-args 'workload=dma,sva,verify secs=6 ws=128M' 2>&1 | sed -u 's/^/  [source]      /' &
pids+=($!)
$VMIG run "${vm[@]}" --qmp "unix:$work/second.sock" --incoming "tcp:127.0.0.1:$port" 2>&1 |
	sed -u 's/^/  [second]      /' >"$work/second.log" &
second=$!
pids+=($second)
$VMIG run "${vm[@]}" --incoming "tcp:127.0.0.1:$port2" 2>&1 | sed -u 's/^/  [third]       /' \
	>"$work/third.log" &
third=$!
pids+=($third)
# Migrate while the device is busy with the guest's DMA jobs.
for _ in $(seq 100); do
	[ -S "$work/source.sock" ] && break
	sleep 0.1
done
sleep 2
mkdir -p build/demo
$VMIG migrate --qmp "unix:$work/source.sock" "tcp:127.0.0.1:$port" --channels 2 --then-quit \
	--timeline build/demo/timeline-dma.jsonl
echo
echo "   the guest and its device go on in the second process; it checks every DMA result"
echo "   again once its dma step ends:"
for _ in $(seq 300); do
	grep -q 'load=dma' "$work/second.log" && break
	sleep 0.1
done
grep 'load=dma' "$work/second.log"
grep -q 'load=dma .*mismatches=0 irqs=[1-9][0-9]* lost=0 .*status=ok' "$work/second.log"

echo
echo "== 3. live migration with I/O page faults in flight: the device faults page by page"
echo "   (sva), so it stops first: it drains while the guest answers its faults"
sleep 1
$VMIG migrate --qmp "unix:$work/second.sock" "tcp:127.0.0.1:$port2" --channels 2 --then-quit \
	--timeline build/demo/timeline-sva.jsonl
echo
echo "   the third process finishes the jobs and verifies every page the guest owns:"
wait "$third"
cat "$work/third.log"
grep -q 'load=sva .*mismatches=0 .*status=ok' "$work/third.log"
grep -q 'load=verify.*mismatches=0 sse_bad=0' "$work/third.log"
scripts/plot-migration -o build/demo/timeline.svg --title 'the demo: two live migrations' \
	build/demo/timeline-dma.jsonl build/demo/timeline-sva.jsonl
echo "== done: the guest and its DMA device moved twice while running, the second time with"
echo "   I/O page faults in flight; nothing was lost. Both migrations' timelines:"
echo "   build/demo/timeline.svg (passes, bandwidth, dirty RAM, the switchover's phases)"
