#!/usr/bin/env python3
"""Compare a benchmark run with the committed baseline; exit 1 when a tracked figure regressed.

    python bench/compare.py --benchmark-json run.json [--footprint-json fp.json]
                            [--event-json event.json] [--baseline bench/results/baseline.json]
    python bench/compare.py ... --write-baseline     # adopt this run as the new baseline

Tracked figures (all measured within one run, so they survive a slower or faster machine):
* `speedup/<group>/<impl>`: time of <impl> / time of the compiled hot path, from the min times
  of pytest-benchmark's JSON (`pytest bench --benchmark-only --benchmark-json run.json`); every
  benchmark that sets extra_info["impl"] (bench/conftest.py) or is parametrized by `impl` takes
  part. Higher is better.
* `event_vs_polling/udev`: upstream's mean polling delay / our p50 hot-plug latency
  (bench/event_vs_polling.py). Higher is better.
* `rss_mib/<process>`: resident memory of each deployed process (bench/deploy_footprint.py).
  Lower is better; absolute, but memory is far steadier across machines than time.

A figure regresses when it is worse than the baseline by more than the tolerance of its kind
(baseline.json "tolerances", a fraction: 0.35 lets a 2.0x speed-up drop to 1.3x). A figure the
baseline has and the run lacks fails too (a benchmark that stopped running is a regression),
unless --allow-missing names its prefix (e.g. the root-only netns benchmarks on a runner
without root). Figures the baseline lacks are listed as new and do not fail.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_BASELINE = HERE / "results" / "baseline.json"
HIGHER_IS_BETTER = ("speedup/", "event_vs_polling/")
LOWER_IS_BETTER = ("rss_mib/",)


class InputError(ValueError):
    """A results file that is not what it claims to be; the message names the file and field."""


def speedups(benchmark_json: Mapping[str, Any], where: str = "benchmark JSON") -> dict[str, float]:
    """`speedup/<group>/<impl>` -> min time of impl / min time of compiled, per group."""
    groups: dict[str, dict[str, float]] = {}
    benches = benchmark_json.get("benchmarks")
    if not isinstance(benches, list):
        raise InputError(f"{where}: no `benchmarks` list (not pytest-benchmark --benchmark-json output?)")
    for i, bench in enumerate(benches):
        # the implementation: extra_info["impl"] (bench/conftest.py's convention), else a
        # parametrize argument named `impl`
        impl = (bench.get("extra_info") or {}).get("impl") or (bench.get("params") or {}).get("impl")
        if not impl:
            continue
        try:
            best = float(bench["stats"]["min"])
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{where}: benchmarks[{i}].stats.min missing") from None
        group = bench.get("group") or bench.get("name")
        # parametrized variants of one impl in one group: keep the best, as the conftest does
        prev = groups.setdefault(group, {}).get(impl)
        groups[group][impl] = best if prev is None else min(prev, best)
    out = {}
    for group, timings in groups.items():
        base = timings.get("compiled")
        if not base:
            continue
        for impl, best in timings.items():
            if impl != "compiled":
                out[f"speedup/{group}/{impl}"] = round(best / base, 3)
    return out


def footprints(footprint_json: Mapping[str, Any]) -> dict[str, float]:
    """`rss_mib/<process>[/<state>]` from bench/deploy_footprint.py's JSON."""
    out = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            if "rss_mib" in node:
                out[f"rss_mib/{prefix}"] = float(node["rss_mib"])
                return
            for key, value in node.items():
                walk(f"{prefix}/{key}" if prefix else key, value)

    walk("", {k: v for k, v in footprint_json.items() if isinstance(v, dict)})
    instances = footprint_json.get("instances")
    if instances is not None:  # name the Instance count-independent figure stably
        out = {k.replace(f"agent_{instances}_instances", "agent_n_instances"): v for k, v in out.items()}
    return out


def event_ratio(event_json: Mapping[str, Any]) -> dict[str, float]:
    return {"event_vs_polling/udev": float(event_json["ratio"])}


def direction(metric: str) -> int:
    """+1: higher is better, -1: lower is better."""
    if metric.startswith(HIGHER_IS_BETTER):
        return 1
    if metric.startswith(LOWER_IS_BETTER):
        return -1
    raise InputError(f"metric {metric!r} has no known direction")


def kind(metric: str) -> str:
    return metric.split("/", 1)[0]


def compare(
    run: Mapping[str, float], baseline: Mapping[str, Any], allow_missing: Iterable[str] = ()
) -> tuple[list[str], list[str]]:
    """(report lines, regressions)."""
    tolerances = baseline["tolerances"]
    tracked = baseline["metrics"]
    allow = tuple(allow_missing)
    lines, regressions = [], []
    for metric in sorted(set(tracked) | set(run)):
        if metric not in tracked:
            lines.append(f"  new      {metric}: {run[metric]:g} (not in the baseline)")
            continue
        base = float(tracked[metric])
        tol = float(tolerances[kind(metric)])
        if metric not in run:
            if metric.startswith(allow) and allow:
                lines.append(f"  skipped  {metric}: not measured in this run (allowed)")
            else:
                lines.append(f"  MISSING  {metric}: in the baseline ({base:g}) but not measured")
                regressions.append(metric)
            continue
        value = run[metric]
        if direction(metric) > 0:
            limit = base * (1 - tol)
            bad = value < limit
            bound = f">= {limit:.3g}"
        else:
            limit = base * (1 + tol)
            bad = value > limit
            bound = f"<= {limit:.3g}"
        change = (value - base) / base * 100 if base else 0.0
        verdict = "REGRESSED" if bad else "ok"
        lines.append(f"  {verdict:8} {metric}: {value:g} (baseline {base:g}, {change:+.0f}%, needs {bound})")
        if bad:
            regressions.append(metric)
    return lines, regressions


def load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--benchmark-json", type=Path, help="pytest-benchmark --benchmark-json output")
    parser.add_argument("--footprint-json", type=Path, help="bench/deploy_footprint.py --json output")
    parser.add_argument("--event-json", type=Path, help="bench/event_vs_polling.py --json output")
    parser.add_argument("--baseline", type=Path, default=DEFAULT_BASELINE)
    parser.add_argument(
        "--allow-missing",
        action="append",
        default=[],
        metavar="PREFIX",
        help="figures starting with PREFIX may be absent from this run (repeatable)",
    )
    parser.add_argument(
        "--write-baseline",
        action="store_true",
        help="write this run's figures as the baseline (keeping its tolerances)",
    )
    args = parser.parse_args(argv)
    try:
        run: dict[str, float] = {}
        if args.benchmark_json:
            run |= speedups(load_json(args.benchmark_json), str(args.benchmark_json))
        if args.footprint_json:
            run |= footprints(load_json(args.footprint_json))
        if args.event_json:
            run |= event_ratio(load_json(args.event_json))
        if not run:
            raise InputError("nothing to compare: give --benchmark-json, --footprint-json or --event-json")
        baseline = load_json(args.baseline)
        for field in ("tolerances", "metrics"):
            if not isinstance(baseline.get(field), dict):
                raise InputError(f"{args.baseline}: `{field}` must be a mapping")
        for metric in run:
            direction(metric)
            if kind(metric) not in baseline["tolerances"]:
                raise InputError(f"{args.baseline}: no tolerance for {kind(metric)!r} figures")
    except InputError as exc:
        print(f"compare.py: {exc}", file=sys.stderr)
        return 2
    if args.write_baseline:
        baseline["metrics"] = dict(sorted(run.items()))
        args.baseline.write_text(json.dumps(baseline, indent=2) + "\n")
        print(f"wrote {len(run)} figures to {args.baseline}")
        return 0
    lines, regressions = compare(run, baseline, args.allow_missing)
    print(f"benchmark figures against {args.baseline.name} (tolerances {baseline['tolerances']}):")
    print("\n".join(lines))
    if regressions:
        print(f"{len(regressions)} regressed: {', '.join(regressions)}")
        return 1
    print(f"no regression in {len(lines)} figures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
