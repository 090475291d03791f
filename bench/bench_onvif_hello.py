#!/usr/bin/env python3
"""How long after a camera's Hello does `akri discover --watch` print it? Beside: how long a
probe-only handler with upstream's 10 s period takes to see a camera come online.

    sudo python bench/bench_onvif_hello.py [--samples 20] [--probe-samples 5] [--period 10]

Set-up: two network namespaces joined by a veth pair (akri.testing.netns.joined_pair:
akcam-b-<rand> with one fake camera process, akagt-b-<rand> with `akri discover --watch`),
created here and always deleted at the end; multicast stays inside them.

Hello: the watch runs with discoveryIntervalSeconds 60, so after the first round only a
Hello can make the camera appear. Each sample: the camera says Bye and goes offline (the
watch prints "removed"), then comes back online and says Hello. The clock starts when the
camera sends its Hello (its CLOCK_MONOTONIC, printed by the camera process) and stops when
the watch's "added" line is read (same clock: namespaces share it).

Probe only (upstream's behaviour): a second watch with AKRI_ONVIF_ANNOUNCEMENTS=off and
discoveryIntervalSeconds = --period. Each sample: the camera goes offline silently (the next
round removes it), a random 0..period wait (so the camera's return is at a random phase of
the rounds), then it comes back (no Hello); the clock stops at "added". Expected from the
method: the camera waits for the next round, uniformly 0..period (period/2 on average), plus
the discoveryTimeoutSeconds window (1 s) in which answers are collected, plus the SOAP calls
(milliseconds): period/2 + 1 s = 6 s on average for upstream's 10 s.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from akri.testing.netns import NetworkNamespace, joined_pair

WAIT = 30.0


class Lines:
    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.q: queue.Queue[tuple[float, str]] = queue.Queue()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.q.put((time.monotonic(), line))

    def wait(self, match: Any, wait: float = WAIT) -> tuple[float, dict[str, Any]]:
        deadline = time.monotonic() + wait
        while True:
            t, line = self.q.get(timeout=max(0.01, deadline - time.monotonic()))
            record = json.loads(line)
            if match(record):
                return t, record


def config(path: Path, interval: float) -> Path:
    path.write_text(f"""apiVersion: akri.sh/v0
kind: Configuration
metadata:
  name: bench-onvif
spec:
  discoveryHandler:
    name: onvif
    discoveryDetails: |
      discoveryTimeoutSeconds: 1
      discoveryIntervalSeconds: {interval}
  capacity: 1
""")
    return path


def summary(name: str, samples: list[float]) -> str:
    s = sorted(samples)
    p90 = s[min(len(s) - 1, round(0.9 * (len(s) - 1)))]
    return (f"{name}: n={len(s)} p50={statistics.median(s) * 1000:.1f} ms p90={p90 * 1000:.1f} ms "
            f"mean={statistics.fmean(s) * 1000:.1f} ms min={s[0] * 1000:.1f} ms max={s[-1] * 1000:.1f} ms")


class Bench:
    def __init__(self) -> None:
        self.net = joined_pair("akcam-b", "akagt-b")
        self.cam_ns, self.agent_ns = self.net.a, self.net.b

    @staticmethod
    def spawn(ns: NetworkNamespace, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """Python with `args` in `ns`; stopped by close()."""
        return ns.popen(sys.executable, *args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                        stderr=subprocess.DEVNULL, text=True, bufsize=1, env={**os.environ, **(env or {})})

    def close(self) -> None:
        self.net.delete()


def command(proc: subprocess.Popen[str], line: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()


def event(name: str, device_id: str) -> Any:
    return lambda r: r.get("event") == name and r.get("instance", {}).get("deviceId") == device_id


def camera_event(name: str) -> Any:
    return lambda r: r.get("event") == name


def run(args: argparse.Namespace) -> None:
    bench = Bench()
    tmp = Path(tempfile.mkdtemp(prefix="akri-bench-onvif-"))
    try:
        cam_proc = bench.spawn(bench.cam_ns, "-m", "akri.testing.onvif_camera",
                               "--host", bench.net.a_address, "--http-port", "8080")
        cam = Lines(cam_proc)
        _, ready = cam.wait(camera_event("ready"))
        device = ready["device_id"]

        watch_proc = bench.spawn(bench.agent_ns, "-m", "akri", "discover", "--watch", "--node", "bench",
                                 "-f", str(config(tmp / "hello.yaml", 60)))
        watch = Lines(watch_proc)
        watch.wait(event("added", device))
        hello: list[float] = []
        for _ in range(args.samples):
            command(cam_proc, "bye")
            watch.wait(event("removed", device))
            command(cam_proc, "hello")
            _, sent = cam.wait(camera_event("hello"))
            seen, _ = watch.wait(event("added", device))
            hello.append(seen - sent["t"])
        watch_proc.terminate()
        watch_proc.wait(10)
        print(summary("Hello -> printed (announcements on, probe period 60 s)", hello))

        probe: list[float] = []
        if args.probe_samples:
            watch_proc = bench.spawn(bench.agent_ns, "-m", "akri", "discover", "--watch", "--node", "bench",
                                     "-f", str(config(tmp / "probe.yaml", args.period)),
                                     env={"AKRI_ONVIF_ANNOUNCEMENTS": "off"})
            watch = Lines(watch_proc)
            watch.wait(event("added", device))
            for _ in range(args.probe_samples):
                command(cam_proc, "down")
                watch.wait(event("removed", device), WAIT + args.period)
                time.sleep(random.uniform(0, args.period))
                command(cam_proc, "up")
                _, up = cam.wait(camera_event("up"))
                seen, _ = watch.wait(event("added", device), WAIT + args.period)
                probe.append(seen - up["t"])
            print(summary(f"online -> printed (probe only, period {args.period:g} s, measured)", probe))
        expected = args.period / 2 + 1.0
        print(f"probe only, period {args.period:g} s, expected mean from the method: "
              f"{args.period:g}/2 + 1 s window = {expected:.1f} s (range 1 .. {args.period + 1:g} s)")
        p50 = statistics.median(hello)
        print(f"ratio expected probe-only mean / Hello p50: {expected / p50:.0f}x")
        if probe:
            print(f"ratio measured probe-only p50 / Hello p50: {statistics.median(probe) / p50:.0f}x")
    finally:
        bench.close()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=20, help="Hello samples (default 20)")
    p.add_argument("--probe-samples", type=int, default=5,
                   help="probe-only samples, each up to period + 1 s (default 5; 0: computed only)")
    p.add_argument("--period", type=float, default=10.0, help="probe-only period (default 10, upstream's)")
    args = p.parse_args()
    if os.geteuid() != 0 or shutil.which("ip") is None:
        print("needs root and iproute2 (creates two network namespaces)", file=sys.stderr)
        return 2
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
