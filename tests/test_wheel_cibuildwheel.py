"""The [tool.cibuildwheel] table builds and tests what the project promises: manylinux and
musllinux wheels for x86_64, aarch64 and armv7l, each installed and tested on its platform.

cibuildwheel needs a container engine to build, which these machines lack; what can be checked
here is the configuration itself: the identifiers cibuildwheel derives from it (when the
`cibuildwheel` command is installed), and that the test command's files and imports are all
provided by test-sources and test-requires.
"""

from __future__ import annotations

import ast
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["cibuildwheel"]
PYTHONS = ("cp311", "cp312", "cp313")
PLATFORMS = [
    f"{libc}_{arch}" for libc in ("manylinux", "musllinux") for arch in ("x86_64", "aarch64", "armv7l")
]


def test_targets_every_libc_and_architecture() -> None:
    assert set(CONFIG["archs"]) == {"x86_64", "aarch64", "armv7l"}
    assert CONFIG["build"].split() == [f"{py}-*" for py in PYTHONS]
    for platform in PLATFORMS:
        assert f"{platform.replace('_', '-', 1)}-image" in CONFIG, platform


@pytest.mark.skipif(shutil.which("cibuildwheel") is None, reason="cibuildwheel is not installed")
def test_cibuildwheel_derives_all_eighteen_builds() -> None:
    out = subprocess.run(
        ["cibuildwheel", "--print-build-identifiers", "--platform", "linux"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.split()
    assert sorted(out) == sorted(f"{py}-{p}" for py in PYTHONS for p in PLATFORMS)


def test_only_the_platform_without_grpc_wheels_skips_the_tests() -> None:
    assert CONFIG["test-skip"].split() == ["*-musllinux_armv7l"]


def _commands() -> list[list[str]]:
    return [shlex.split(part) for part in CONFIG["test-command"].split("&&")]


def test_test_command_uses_only_shipped_sources() -> None:
    sources = CONFIG["test-sources"]
    for source in sources:
        assert (ROOT / source).exists(), source
    smoke, pytest_cmd = _commands()
    assert smoke[:2] == ["python", "deploy/ci/wheel_smoke.py"]
    assert pytest_cmd[:3] == ["python", "-m", "pytest"]
    paths = [a for cmd in (smoke, pytest_cmd) for a in cmd if "/" in a]
    for path in paths:
        assert any(path == s or path.startswith(s.rstrip("/") + "/") for s in sources), path
        assert (ROOT / path).exists(), path


def _third_party_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in ("akri", "__future__")}


def test_test_requires_covers_what_the_tests_import() -> None:
    _, pytest_cmd = _commands()
    test_files = [ROOT / a for a in pytest_cmd if a.endswith(".py")]
    assert test_files
    provided = {"pytest", "hypothesis", "pytest_asyncio", "pytest_timeout"}
    required = {r.split(">")[0].split("=")[0].replace("-", "_") for r in CONFIG["test-requires"]}
    assert required == provided
    # the wheel's own dependencies are installed with it
    runtime = {"yaml", "grpclib", "google"}
    for path in [*test_files, ROOT / "deploy" / "ci" / "wheel_smoke.py"]:
        missing = _third_party_imports(path) - provided - runtime
        assert not missing, f"{path.name} imports {missing}, which the wheel test environment lacks"


def test_hosted_ci_builds_every_architecture_and_runs_the_checks() -> None:
    import yaml

    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    jobs = workflow["jobs"]
    assert {entry["archs"] for entry in jobs["wheels"]["strategy"]["matrix"]["include"]} == set(
        CONFIG["archs"]
    )
    scripts = " ".join(step.get("run", "") for job in jobs.values() for step in job["steps"])
    for path in (".ci/run", "bench/regress.sh"):
        assert path in scripts and (ROOT / path).exists(), path
    assert "cibuildwheel --platform linux" in scripts
