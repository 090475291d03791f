"""How fast device plugins come back after a kubelet restart (target: every plugin within 1 s).

A PluginManager with N Instances (N instance plugins + 1 configuration plugin) runs against
the kubelet double; the double restarts (deletes every socket in the directory, serves a new
kubelet.sock) and we time until every plugin is registered again with its ListAndWatch stream
delivering. Measured with inotify (the default) and with stat polling (inotify off, default 0.5 s interval),
in the same run. Also: one plugin socket deleted -> re-registered.

Run: `python bench/test_bench_reregistration.py` or via pytest (BENCH_QUICK=1 shortens it).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from akri.agent.plugins import InstanceView, MemorySlotStore, PluginManager
from akri.testing.kubelet import KubeletDouble

QUICK = bool(os.environ.get("BENCH_QUICK"))


def views(n: int) -> list[InstanceView]:
    return [
        InstanceView(
            name=f"cfg-{k:06x}",
            namespace="default",
            configuration="cfg",
            capacity=2,
            cdi_name=f"akri.sh/cfg={k:06x}",
        )
        for k in range(n)
    ]


async def _all_back(kubelet: KubeletDouble, resources: list[str], count: int) -> None:
    await kubelet.wait_for(
        lambda: all(
            len(kubelet.accepted(r)) >= count and kubelet.connected(r) and kubelet.updates(r) > 0
            for r in resources
        ),
        within=30,
    )


async def measure(n_instances: int, rounds: int, *, use_inotify: bool) -> dict[str, list[float]]:
    root = Path(tempfile.mkdtemp(prefix="akri-bench-", dir="/tmp"))
    try:
        kubelet = KubeletDouble(root / "dp")
        await kubelet.start()
        manager = PluginManager("node-a", MemorySlotStore(), directory=root / "dp", use_inotify=use_inotify)
        await manager.start()
        vs = views(n_instances)
        for v in vs:
            await manager.apply_instance(v)
        resources = [f"akri.sh/{v.name}" for v in vs] + ["akri.sh/cfg"]
        await _all_back(kubelet, resources, 1)
        restart, socket_loss = [], []
        for k in range(rounds):
            await kubelet.restart()
            t0 = time.perf_counter()
            await _all_back(kubelet, resources, k + 2)
            restart.append(time.perf_counter() - t0)
        victim = resources[0]
        for _ in range(rounds):
            before = len(kubelet.accepted(victim))
            t0 = time.perf_counter()
            os.unlink(kubelet.endpoint(victim))
            await kubelet.wait_for(
                lambda b=before: len(kubelet.accepted(victim)) > b and kubelet.connected(victim), within=30
            )
            socket_loss.append(time.perf_counter() - t0)
        await manager.stop()
        await kubelet.stop()
        return {"restart": restart, "socket": socket_loss}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def report() -> dict[str, float]:
    rounds = 2 if QUICK else 5
    out = {}
    for n in (1, 20) if not QUICK else (1, 5):
        for mode, inotify in (("inotify", True), ("poll", False)):
            res = asyncio.run(measure(n, rounds, use_inotify=inotify))
            for kind, values in res.items():
                key = f"{kind} n={n} {mode}"
                out[key] = statistics.median(values)
                print(
                    f"re-registration after {kind:7s} loss, {n:2d} instances, {mode:7s}: "
                    f"median {out[key] * 1e3:7.1f} ms  max {max(values) * 1e3:7.1f} ms"
                )
    return out


def test_reregistration_latency(capsys) -> None:  # type: ignore[no-untyped-def]
    with capsys.disabled():
        print()
        result = report()
    assert all(v > 0 for v in result.values())


if __name__ == "__main__":
    report()
