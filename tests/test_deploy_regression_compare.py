"""bench/compare.py: tracked ratios and footprints against the committed baseline."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "bench" / "results" / "baseline.json"


def load() -> ModuleType:
    name = "akri_bench_compare"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / "compare.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


compare = load()


def bench(group: str, impl: str, best: float, *, via_params: bool = False) -> dict[str, Any]:
    entry: dict[str, Any] = {"group": group, "name": f"test_{group}[{impl}]", "stats": {"min": best}}
    if via_params:
        entry["params"] = {"impl": impl}
        entry["extra_info"] = {}
    else:
        entry["extra_info"] = {"impl": impl}
    return entry


def run_json(pure_time: float) -> dict[str, Any]:
    return {
        "benchmarks": [
            bench("digest", "compiled", 1.0e-6),
            bench("digest", "pure", pure_time),
            bench("slots", "compiled", 2.0e-6, via_params=True),
            bench("slots", "pure", 8.0e-6, via_params=True),
            {"group": "other", "name": "untracked", "stats": {"min": 1.0}, "extra_info": {}},
        ]
    }


FOOTPRINT = {
    "python": "3.11",
    "instances": 100,
    "handler_udev": {"idle": {"rss_mib": 47.0, "hwm_mib": 47.0}, "serving": {"rss_mib": 48.0, "hwm_mib": 48}},
    "agent_100_instances": {"rss_mib": 68.0, "hwm_mib": 68.0},
}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    baseline = {
        "tolerances": {"speedup": 0.4, "rss_mib": 0.15, "event_vs_polling": 0.5},
        "metrics": {
            "speedup/digest/pure": 2.5,
            "speedup/slots/pure": 4.0,
            "rss_mib/handler_udev/idle": 47.0,
            "rss_mib/handler_udev/serving": 48.0,
            "rss_mib/agent_n_instances": 68.0,
        },
    }
    paths = {name: tmp_path / f"{name}.json" for name in ("baseline", "run", "footprint")}
    paths["baseline"].write_text(json.dumps(baseline))
    paths["run"].write_text(json.dumps(run_json(2.5e-6)))
    paths["footprint"].write_text(json.dumps(FOOTPRINT))
    return paths


def args(files: dict[str, Path], *extra: str) -> list[str]:
    return [
        "--baseline",
        str(files["baseline"]),
        "--benchmark-json",
        str(files["run"]),
        "--footprint-json",
        str(files["footprint"]),
        *extra,
    ]


def test_figures_are_derived_from_one_run() -> None:
    assert compare.speedups(run_json(2.5e-6)) == {"speedup/digest/pure": 2.5, "speedup/slots/pure": 4.0}
    assert compare.footprints(FOOTPRINT) == {
        "rss_mib/handler_udev/idle": 47.0,
        "rss_mib/handler_udev/serving": 48.0,
        "rss_mib/agent_n_instances": 68.0,
    }


def test_a_run_like_the_baseline_passes(files, capsys) -> None:
    assert compare.main(args(files)) == 0
    assert "no regression in 5 figures" in capsys.readouterr().out


def test_a_slower_compiled_path_fails(files, capsys) -> None:
    files["run"].write_text(json.dumps(run_json(1.4e-6)))  # 1.4x, baseline 2.5x, floor 1.5x
    assert compare.main(args(files)) == 1
    out = capsys.readouterr().out
    assert "REGRESSED speedup/digest/pure: 1.4" in out and "1 regressed" in out


def test_within_tolerance_is_not_a_regression(files) -> None:
    files["run"].write_text(json.dumps(run_json(1.6e-6)))  # 1.6x >= 1.5x
    assert compare.main(args(files)) == 0


def test_more_memory_fails(files, capsys) -> None:
    grown = json.loads(json.dumps(FOOTPRINT))
    grown["agent_100_instances"]["rss_mib"] = 80.0  # > 68 * 1.15
    files["footprint"].write_text(json.dumps(grown))
    assert compare.main(args(files)) == 1
    assert "REGRESSED rss_mib/agent_n_instances" in capsys.readouterr().out


def test_a_benchmark_that_stopped_running_fails_unless_allowed(files, capsys) -> None:
    files["footprint"].write_text(json.dumps({k: v for k, v in FOOTPRINT.items() if k != "handler_udev"}))
    assert compare.main(args(files)) == 1
    assert "MISSING  rss_mib/handler_udev/idle" in capsys.readouterr().out
    assert compare.main(args(files, "--allow-missing", "rss_mib/handler_udev")) == 0


def test_new_figures_are_reported_not_failed(files, capsys) -> None:
    data = run_json(2.5e-6)
    data["benchmarks"] += [bench("parse", "compiled", 1.0), bench("parse", "pure", 3.0)]
    files["run"].write_text(json.dumps(data))
    assert compare.main(args(files)) == 0
    assert "new      speedup/parse/pure: 3" in capsys.readouterr().out


def test_bad_input_is_named(files, tmp_path: Path, capsys) -> None:
    files["run"].write_text(json.dumps({"machine_info": {}}))
    assert compare.main(args(files)) == 2
    assert "no `benchmarks` list" in capsys.readouterr().err
    assert compare.main(["--baseline", str(files["baseline"])]) == 2


def test_write_baseline_keeps_tolerances(files) -> None:
    files["run"].write_text(json.dumps(run_json(3.0e-6)))
    assert compare.main(args(files, "--write-baseline")) == 0
    written = json.loads(files["baseline"].read_text())
    assert written["tolerances"]["speedup"] == 0.4
    assert written["metrics"]["speedup/digest/pure"] == 3.0


def test_committed_baseline_is_complete() -> None:
    baseline = json.loads(BASELINE.read_text())
    kinds = {m.split("/", 1)[0] for m in baseline["metrics"]}
    assert kinds == {"speedup", "rss_mib", "event_vs_polling"}
    assert kinds <= set(baseline["tolerances"])
    for metric, value in baseline["metrics"].items():
        compare.direction(metric)
        assert value > 0, metric
    # the hot paths the project claims are faster are tracked, and are faster
    for group in ("digest-batch-1000", "uevent-parse-kernel", "uevent-parse-libudev", "slots-event"):
        assert baseline["metrics"][f"speedup/{group}/pure"] > 1.5, group
