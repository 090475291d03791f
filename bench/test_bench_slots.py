"""SlotTable: compiled (akri._fast._slots) vs pure twin, on what an agent does per Instance event.

Workloads (both implementations, same data, same run):
  * event:  load a deviceUsage map + build the health vector, 500 Instances of capacity 8
            (half the slots used by three nodes) — one watch event per Instance;
  * large:  the same on one Instance of capacity 1024;
  * alloc:  claim / bind / health / release cycle on a capacity-8 table (one Allocate and
            one reclaim without the network part).

Run: `pytest bench/test_bench_slots.py` (pytest-benchmark tables) or
`python bench/test_bench_slots.py` (prints the compiled/pure ratios). BENCH_QUICK=1 shortens it.
"""

from __future__ import annotations

import os
import timeit
from collections.abc import Callable
from typing import Any

import pytest

from akri._fast import pure

try:
    from akri._fast import _slots as compiled
except ImportError:
    compiled = None

QUICK = bool(os.environ.get("BENCH_QUICK"))
IMPLS = {"pure": pure.SlotTable}
if compiled is not None:
    IMPLS["compiled"] = compiled.SlotTable


def usage_for(instance: str, capacity: int) -> dict[str, str]:
    nodes = ["node-a", "node-b", "node-c"]
    out = {}
    for i in range(0, capacity, 2):
        out[f"{instance}-{i}"] = nodes[i % 3] if i % 4 else f"C:cfg-{i}:{nodes[(i // 4) % 3]}"
    return out


def event_workload(table_cls: Any, n_instances: int = 500, capacity: int = 8) -> Callable[[], None]:
    names = [f"cfg-{k:06x}" for k in range(n_instances)]
    tables = [table_cls(n, "node-a", capacity) for n in names]
    maps = [usage_for(n, capacity) for n in names]
    pairs = list(zip(tables, maps, strict=True))

    def run() -> None:
        for t, m in pairs:
            t.load(m)
            t.health()

    return run


def large_workload(table_cls: Any) -> Callable[[], None]:
    return event_workload(table_cls, 1, 1024)


def alloc_workload(table_cls: Any) -> Callable[[], None]:
    t = table_cls("cfg-abcdef", "node-a", 8)
    t.load(usage_for("cfg-abcdef", 8))

    def run() -> None:
        for _ in range(100):
            i = t.first_free()
            t.claim(i)
            t.bind(i, i)
            t.health()
            t.owned()
            t.release(i)

    return run


WORKLOADS = {"event": event_workload, "large": large_workload, "alloc": alloc_workload}


@pytest.mark.parametrize("impl", sorted(IMPLS))
@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_slot_table(benchmark: Any, impl: str, workload: str) -> None:
    benchmark.group = f"slots-{workload}"
    run = WORKLOADS[workload](IMPLS[impl])
    if QUICK:
        benchmark.pedantic(run, rounds=2, iterations=1)
    else:
        benchmark(run)


def ratios(repeat: int = 5) -> dict[str, tuple[float, float, float]]:
    """workload -> (pure seconds, compiled seconds, pure/compiled), best of `repeat`."""
    out = {}
    for name, make in WORKLOADS.items():
        times = {}
        for impl, cls in IMPLS.items():
            run = make(cls)
            number = 3 if QUICK else 20
            times[impl] = min(timeit.repeat(run, number=number, repeat=repeat)) / number
        if "compiled" in times:
            out[name] = (times["pure"], times["compiled"], times["pure"] / times["compiled"])
    return out


@pytest.mark.skipif(compiled is None, reason="akri._fast._slots is not built")
def test_ratio_report(capsys: pytest.CaptureFixture[str]) -> None:
    result = ratios(repeat=2 if QUICK else 5)
    with capsys.disabled():
        for name, (p, c, r) in result.items():
            print(f"\nslots {name}: pure {p * 1e3:.3f} ms, compiled {c * 1e3:.3f} ms, ratio {r:.2f}x")
    assert set(result) == set(WORKLOADS)


if __name__ == "__main__":
    for name, (p, c, r) in ratios().items():
        print(f"slots {name:6s}: pure {p * 1e3:8.3f} ms  compiled {c * 1e3:8.3f} ms  ratio {r:5.2f}x")
