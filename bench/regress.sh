#!/usr/bin/env bash
# Performance regression check: run the benchmarks, measure the footprint and the hot-plug
# latency, and compare every tracked figure with bench/results/baseline.json (bench/compare.py).
#   bash bench/regress.sh [OUT_DIR] [--write-baseline]
# Exit 1 when a figure regressed beyond its tolerance. Needs root for the network-namespace
# benchmarks and the veth hot-plug measurement; without root those figures are skipped
# (allowed as missing) and the rest is still compared. Results land in OUT_DIR (default: a
# new temporary directory).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-$(mktemp -d -t akri-bench-XXXXXX)}"
shift || true
mkdir -p "$out"
allow=()
if [ "$(id -u)" -ne 0 ]; then
    echo "not root: skipping the netns and veth measurements"
    allow=(--allow-missing speedup/uevent-receive --allow-missing event_vs_polling/ \
           --allow-missing rss_mib/handler_onvif/serving)
fi
python -m pytest bench -q -p no:cacheprovider --benchmark-only --benchmark-json "$out/benchmarks.json"
python bench/deploy_footprint.py --json "$out/footprint.json"
event=()
if [ "$(id -u)" -eq 0 ]; then
    python bench/event_vs_polling.py --json "$out/event.json"
    event=(--event-json "$out/event.json")
fi
python bench/compare.py --benchmark-json "$out/benchmarks.json" --footprint-json "$out/footprint.json" \
    "${event[@]}" "${allow[@]}" "$@"
