"""Shared setup for the benchmarks: quick mode, the ratio summary, fixtures, a private netns.

BENCH_QUICK=1 shrinks every benchmark to a few short rounds (CI smoke run: the numbers
are rough, the ratios still point the right way). Each benchmark records which
implementation it ran in ``benchmark.extra_info["impl"]``; after pytest-benchmark's
table, the summary prints, per group, how many times faster the compiled hot path is than
every other implementation, from the min and median times measured in this same run
(the min is the figure least disturbed by other load on a shared machine).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from akri.testing.netns import NetworkNamespace

QUICK = os.environ.get("BENCH_QUICK", "").strip().lower() not in ("", "0", "false", "no")
FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "uevents"


def rounds(full: int, quick: int = 3) -> int:
    """Round count for benchmark.pedantic(), honouring quick mode."""
    return quick if QUICK else full


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # before pytest-benchmark's own (trylast) pytest_configure reads its options
    if QUICK:
        config.option.benchmark_min_rounds = 3
        config.option.benchmark_max_time = "0.05"


def _timings(config: pytest.Config) -> dict[str, dict[str, tuple[float, float]]]:
    """group -> impl -> (min, median) seconds, for benchmarks that declared their impl."""
    session = getattr(config, "_benchmarksession", None)
    groups: dict[str, dict[str, tuple[float, float]]] = {}
    for bench in getattr(session, "benchmarks", []):
        impl = bench.extra_info.get("impl")
        if impl and bench.stats and bench.stats.rounds:
            groups.setdefault(bench.group or bench.name, {})[impl] = (bench.stats.min, bench.stats.median)
    return groups


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's tables
def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    groups = _timings(config)
    if not groups:
        return
    write = terminalreporter.write_line
    terminalreporter.section("akri hot-path ratios: time of X / time of compiled (min, median)")
    for group, timings in sorted(groups.items()):
        fastest_first = sorted(timings.items(), key=lambda item: item[1])
        shown = (f"{impl} {t[0] * 1e6:.1f}/{t[1] * 1e6:.1f} us" for impl, t in fastest_first)
        write(f"{group}: " + ", ".join(shown))
        base = timings.get("compiled")
        if base:
            for impl, (best, median) in sorted(timings.items()):
                if impl != "compiled":
                    write(
                        f"    speed-up of compiled over {impl}: "
                        f"{best / base[0]:.2f}x min, {median / base[1]:.2f}x median"
                    )
    if QUICK:
        write("(BENCH_QUICK=1: few rounds, rough numbers)")


@pytest.fixture(scope="session")
def uevent_messages() -> dict[str, bytes]:
    """The real datagrams captured by tests/fixtures/uevents/capture.py, by file stem."""
    messages = {p.stem: p.read_bytes() for p in sorted(FIXTURES.glob("*.bin"))}
    assert messages, f"no fixtures in {FIXTURES}"
    return messages


@pytest.fixture(scope="session")
def netns() -> Iterator[NetworkNamespace]:
    """A network namespace of our own; sockets made inside() it stay in it."""
    if os.geteuid() != 0:
        pytest.skip("needs root: creates a network namespace for netlink traffic")
    with NetworkNamespace("akri-bench") as ns:
        yield ns
