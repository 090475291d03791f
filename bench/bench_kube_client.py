"""The Kubernetes client's cost: import RSS of `akri.kube` and 1,000 Instance creates.

    python bench/bench_kube_client.py [--creates 1000] [--runs 3]

* import: VmRSS growth of `import akri.kube` in a fresh interpreter that already imported
  asyncio and ssl (every akri process has), median of `--runs` interpreters;
* creates: `--creates` sequential `Kube.create(Instance, ...)` against the API double running in
  a process of its own (`python -m akri.testing.apiserver`), so this process's CPU time
  (`time.process_time`) is the client side alone; wall time includes the server's share.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IMPORT_PROBE = """
import asyncio, ssl
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
base = rss()
import akri.kube
print(rss() - base)
"""


def import_rss_mib(runs: int) -> float:
    kib = [int(subprocess.check_output([sys.executable, "-c", IMPORT_PROBE], text=True)) for _ in range(runs)]
    return statistics.median(kib) / 1024


async def creates(kubeconfig: Path, n: int) -> dict[str, float]:
    from akri.kube import Instance, Kube

    kube = Kube.from_config(kubeconfig)
    try:
        await kube.list(Instance)  # connect (and warm up) outside the timed part
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for i in range(n):
            await kube.create(
                Instance,
                {
                    "apiVersion": "akri.sh/v0",
                    "kind": "Instance",
                    "metadata": {"name": f"bench-{i}", "namespace": "default"},
                    "spec": {"configurationName": "cfg", "cdiName": f"akri.sh/cfg={i}", "capacity": 2,
                             "nodes": ["node-a"], "deviceUsage": {f"bench-{i}-0": "", f"bench-{i}-1": ""}},
                },
            )
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    finally:
        await kube.close()
    return {"creates": n, "wall_s": round(wall, 3), "client_cpu_s": round(cpu, 3),
            "client_cpu_ms_per_request": round(cpu / n * 1000, 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--creates", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    result: dict[str, object] = {"import_rss_mib": round(import_rss_mib(args.runs), 2)}
    with tempfile.TemporaryDirectory() as tmp:
        kubeconfig = Path(tmp) / "kubeconfig"
        server = subprocess.Popen(
            [sys.executable, "-m", "akri.testing.apiserver", "--port", "0", "--kubeconfig", str(kubeconfig)],
            stdout=subprocess.PIPE, text=True,
        )
        try:
            assert server.stdout is not None
            server.stdout.readline()  # "listening on ..." once the port is bound
            result.update(asyncio.run(creates(kubeconfig, args.creates)))
        finally:
            server.terminate()
            server.wait(10)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
