#!/usr/bin/env python3
"""Event-driven vs polling discovery, as one tracked ratio: how many times sooner the udev
handler reports a plugged device than upstream's 10 s polling would on average.

    sudo python bench/event_vs_polling.py [--events 30] [--json bench/results/event.json]

Runs bench/bench_udev_hotplug.py's measurement (veth pairs made and deleted with `ip`, the
handler's stream timed from `ip link add` to the list that has the new interface; needs root).
Upstream's handlers poll every DISCOVERY_INTERVAL_SECS = 10 s, so a device plugged at a random
moment waits 5 s on average for the next poll: ratio = 5000 ms / p50 of our latency.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

UPSTREAM_POLL_SECONDS = 10.0  # discovery-handlers/*/src/discovery_handler.rs (spec §10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10 if os.environ.get("BENCH_QUICK") else 30)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (creates veth pairs)", file=sys.stderr)
        return 2
    import uvloop

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _benchlib import print_and_save
    from bench_udev_hotplug import handler_latency

    latencies = uvloop.run(handler_latency(args.events))
    p50_ms = statistics.median(latencies.added) * 1000
    polling_ms = UPSTREAM_POLL_SECONDS / 2 * 1000
    result = {
        "events": len(latencies.added),
        "source": latencies.source,
        "event_p50_ms": round(p50_ms, 3),
        "event_max_ms": round(max(latencies.added) * 1000, 3),
        "polling_mean_ms": polling_ms,
        "ratio": round(polling_ms / p50_ms, 1),
    }
    print_and_save(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
