"""What the benchmark scripts share: the API double as a process (HTTPS by default, as every
real cluster: a TLS client context and handshake are part of what a node's processes cost),
a process's memory read from /proc, an `akri agent`
(debugEcho embedded) brought to N Instances against the API and kubelet doubles (the agent's
RSS in bench/footprint.py and bench/deploy_footprint.py), and a JSON result printed and saved
(bench/deploy_footprint.py, bench/event_vs_polling.py).

Imported by the scripts as `_benchlib` (a script's own directory is on sys.path); the processes
are tests/e2e's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

if TYPE_CHECKING:  # imported where used: bench/event_vs_polling.py measures in this process
    from e2e.cluster import Cluster
    from e2e.procs import AgentProcess, ApiServerProcess, KubeletProcess, ProcessGroup


def add_plain_http_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plain-http", action="store_true",
                        help="talk to the API double over plain HTTP (default: HTTPS, the server verified "
                             "against a CA in the kubeconfig, as on a real cluster)")


def start_apiserver(procs: ProcessGroup, *, tls: bool = True) -> ApiServerProcess:
    """The API double as a process of `procs`; `tls`: HTTPS with a throwaway CA that its
    kubeconfig carries (every client verifies the server against it)."""
    return procs.apiserver(tls=tls)


def status_kib(pid: int, field: str = "VmRSS") -> int:
    """A KiB figure of /proc/<pid>/status (VmRSS, VmHWM, ...)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise LookupError(f"no {field} for pid {pid}")


def settled_rss(proc: subprocess.Popen[Any], *, quiet: float = 2.0, limit: float = 20.0) -> dict[str, float]:
    """VmRSS in MiB once it has not grown for `quiet` seconds (or after `limit`), and VmHWM."""

    def check_alive() -> None:
        if proc.poll() is not None:
            raise RuntimeError(f"process {proc.args} exited with {proc.returncode}")

    check_alive()
    start = time.monotonic()
    best = status_kib(proc.pid)
    since = time.monotonic()
    while time.monotonic() - start < limit:
        time.sleep(0.2)
        check_alive()
        rss = status_kib(proc.pid)
        if rss > best + 256:  # grew by more than 256 KiB: not settled yet
            best, since = rss, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return {
        "rss_mib": round(status_kib(proc.pid) / 1024, 1),
        "hwm_mib": round(status_kib(proc.pid, "VmHWM") / 1024, 1),
    }


def peak_rss_kib(pid: int, seconds: float) -> int:
    """The highest VmRSS (KiB) of samples taken every 0.25 s for `seconds`."""
    samples = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        samples.append(status_kib(pid))
        time.sleep(0.25)
    samples.append(status_kib(pid))
    return max(samples)


def start_agent(procs: ProcessGroup, kubeconfig: Path, kubelet: KubeletProcess, *extra: str,
                log_name: str, launcher: Sequence[str] = (sys.executable, "-m", "akri")) -> AgentProcess:
    """`akri agent` for node-a, ready (Configurations and Instances synced). debugEcho devices
    are local (one Instance per device and node) and read their availability from a file of
    this run, not the machine-wide default."""
    env = {"DEBUG_ECHO_INSTANCES_SHARED": "false",
           "DEBUG_ECHO_AVAILABILITY_FILE": str(procs.workdir / "availability")}
    agent = procs.agent("node-a", kubeconfig, kubelet, *extra, env=env, log_name=log_name, launcher=launcher)
    return agent.ready(60)


def serve_instances(cluster: Cluster, kubelet: KubeletProcess, name: str, count: int) -> float:
    """Apply debugEcho Configuration `name` with `count` devices (capacity 1) and wait until every
    device plugin (one per Instance, plus the Configuration's) is registered with the kubelet
    double and streaming its devices. Returns the seconds that took."""
    from e2e.cluster import debug_echo_configuration
    from e2e.procs import wait_for

    start = time.monotonic()
    descriptions = [f"d{i}" for i in range(count)]
    cluster.apply_configuration(debug_echo_configuration(name, descriptions, capacity=1))
    wait_for(f"{count + 1} plugins", lambda: sum(
        1 for r in kubelet.state()["resources"].values() if r["connected"] and r["devices"]
    ) == count + 1, timeout=60 + count * 0.5, interval=0.5)
    return time.monotonic() - start


def print_and_save(result: dict[str, Any], path: Path | None) -> None:
    """Print `result` as JSON, and write it to `path` when given."""
    text = json.dumps(result, indent=2)
    print(text)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
