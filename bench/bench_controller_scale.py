#!/usr/bin/env python3
"""Controller at scale: N Instances applied at once -> time until every broker Pod exists, and RSS.

    python bench/bench_controller_scale.py [--instances 1000] [--nodes 1] [--workers 8]

Runs the API double (`python -m akri.testing.apiserver`) and `akri controller` as two processes,
creates a Configuration with a brokerPodSpec, then creates N Instances concurrently (each listing
`--nodes` nodes, so N x nodes broker Pods are expected). The clock starts before the first
Instance create and stops when a watch on broker Pods has seen the last one appear. The
controller's RSS (VmRSS) is sampled throughout; its peak (VmHWM) and its RSS once idle are
reported too. BENCH_QUICK=1 shrinks N to 50.

Both processes share the machine's cores with this script, so the time includes the API double's
own work (it is Python too); the number is an upper bound for the controller's share.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from akri.controller.resources import Pod
from akri.kube.api import Kube
from akri.kube.resources import Configuration, Instance
from akri.kube.watch import Informer

QUICK = os.environ.get("BENCH_QUICK", "").strip().lower() not in ("", "0", "false", "no")
CONFIG = "bench-cfg"
NS = "default"


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_apiserver(kubeconfig: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "akri.testing.apiserver", "--port", "0", "--kubeconfig", str(kubeconfig),
         "--history-size", "100000"],
        stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("listening on"):
        raise SystemExit(f"API double did not start: {line!r}")
    return proc


def start_controller(kubeconfig: Path, log: Path, workers: int) -> subprocess.Popen:
    out = log.open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "akri", "--log-level", "INFO", "controller", "--kubeconfig",
         str(kubeconfig), "--metrics-port", "0", "--lease-namespace", NS, "--workers", str(workers)],
        stdout=out, stderr=subprocess.STDOUT,
    )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def configuration() -> dict:
    return {
        "apiVersion": "akri.sh/v0", "kind": "Configuration", "metadata": {"name": CONFIG, "namespace": NS},
        "spec": {"discoveryHandler": {"name": "debugEcho"}, "capacity": 1, "brokerSpec": {"brokerPodSpec": {
            "containers": [{"name": "broker", "image": "nginx:stable-alpine",
                            "resources": {"limits": {"{{PLACEHOLDER}}": "1"}}}]}}},
    }


def instance(i: int, nodes: int) -> dict:
    name = f"{CONFIG}-{i:06x}"
    return {
        "apiVersion": "akri.sh/v0", "kind": "Instance", "metadata": {"name": name, "namespace": NS},
        "spec": {"configurationName": CONFIG, "cdiName": f"akri.sh/{CONFIG}={i:06x}", "capacity": 1,
                 "shared": nodes > 1, "nodes": [f"node-{n}" for n in range(nodes)]},
    }


def wait_for_log(path: Path, pattern: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and re.search(pattern, path.read_text(errors="replace")):
            return
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {pattern!r} in {path}")


async def run(args: argparse.Namespace) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="akri-bench-") as tmp:
        kubeconfig, log = Path(tmp) / "kubeconfig", Path(tmp) / "controller.log"
        api = start_apiserver(kubeconfig)
        controller = None
        kube = Kube.from_config(kubeconfig, timeout=60)
        try:
            await kube.create(Configuration, configuration(), namespace=NS)
            controller = start_controller(kubeconfig, log, args.workers)
            pods = Informer(kube, Pod, labels={"akri.sh/configuration": CONFIG})
            expected = args.instances * args.nodes
            seen: set[tuple[str, str]] = set()
            done = asyncio.Event()

            async def count() -> None:
                async for event in pods.events():
                    if event.type == "ADDED":
                        seen.add(event.key)
                        if len(seen) >= expected:
                            done.set()

            counter = asyncio.create_task(count())
            await pods.synced.wait()
            # the controller holds the lease and has listed everything
            await asyncio.to_thread(wait_for_log, log, "caches synced", 60.0)
            idle_rss = rss_kib(controller.pid)
            peak = idle_rss
            sem = asyncio.Semaphore(64)

            async def create(i: int) -> None:
                async with sem:
                    await kube.create(Instance, instance(i, args.nodes), namespace=NS)

            cpu0 = cpu_seconds(controller.pid)
            t0 = time.perf_counter()
            creating = asyncio.gather(*(create(i) for i in range(args.instances)))
            applied_at = None
            while not done.is_set():
                peak = max(peak, rss_kib(controller.pid))
                if applied_at is None and creating.done():
                    creating.result()
                    applied_at = time.perf_counter() - t0
                try:
                    await asyncio.wait_for(done.wait(), timeout=0.05)
                except TimeoutError:
                    pass
                if time.perf_counter() - t0 > args.timeout:
                    raise SystemExit(f"only {len(seen)}/{expected} broker Pods after {args.timeout} s")
            elapsed = time.perf_counter() - t0
            cpu = cpu_seconds(controller.pid) - cpu0
            await creating
            applied_at = applied_at or elapsed
            await asyncio.sleep(1.0)
            result = {
                "instances": args.instances,
                "pods": expected,
                "apply_s": applied_at,
                "all_pods_s": elapsed,
                "pods_per_s": expected / elapsed,
                "controller_cpu_s": cpu,
                "rss_idle_mib": idle_rss / 1024,
                "rss_peak_mib": max(peak, rss_kib(controller.pid, "VmHWM")) / 1024,
                "rss_after_mib": rss_kib(controller.pid) / 1024,
            }
            counter.cancel()
            return result
        finally:
            await kube.close()
            if controller is not None:
                stop(controller)
            stop(api)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=50 if QUICK else 1000)
    parser.add_argument("--nodes", type=int, default=1, help="nodes per Instance (broker Pods per Instance)")
    parser.add_argument("--workers", type=int, default=8, help="controller --workers")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    r = asyncio.run(run(args))
    print(f"{r['instances']} Instances applied at once ({r['pods']} broker Pods expected)")
    print(f"  all Instances created after   {r['apply_s']:.2f} s")
    print(f"  every broker Pod exists after {r['all_pods_s']:.2f} s  ({r['pods_per_s']:.0f} Pods/s)")
    print(f"  controller CPU time meanwhile {r['controller_cpu_s']:.2f} s "
          f"({r['controller_cpu_s'] / r['pods'] * 1000:.2f} ms per broker Pod)")
    print(f"  controller RSS: idle {r['rss_idle_mib']:.1f} MiB, peak {r['rss_peak_mib']:.1f} MiB, "
          f"after {r['rss_after_mib']:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
