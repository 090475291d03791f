"""akri._fast picks the compiled hot paths when built, and the twins under AKRI_PURE_PYTHON=1."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from akri import _fast
from akri._fast import pure

PROBE = (
    "import json, akri._fast as f, akri._fast.pure as p\n"
    "print(json.dumps({'compiled': f.COMPILED, 'modules': f.compiled_modules(),\n"
    "    'pure': {n: getattr(f, n) is getattr(p, n) for ns in f._MODULES.values() for n in ns}}))\n"
)


def probe(**env: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env={**os.environ, **env}, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_every_registered_name_has_a_pure_twin() -> None:
    for names in _fast._MODULES.values():
        for name in names:
            assert callable(getattr(pure, name)), name
            assert getattr(_fast, name) is not None


@pytest.mark.slow
@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_pure_python_forced_by_env(value: str) -> None:
    got = probe(AKRI_PURE_PYTHON=value)
    assert got["compiled"] is False
    assert not any(got["modules"].values())
    assert all(got["pure"].values())


@pytest.mark.slow
@pytest.mark.parametrize("value", ["", "0", "false", "no"])
def test_env_off_values_keep_what_is_built(value: str) -> None:
    got = probe(AKRI_PURE_PYTHON=value)
    assert got["modules"] == _fast.compiled_modules()
    for mod_name, names in _fast._MODULES.items():
        for name in names:
            assert got["pure"][name] is not got["modules"][mod_name]
