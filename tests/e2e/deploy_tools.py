"""Load the scripts in deploy/tools/ (not a package: they run standalone) as modules, once."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

TOOLS = Path(__file__).resolve().parents[2] / "deploy" / "tools"


def load_tool(name: str) -> ModuleType:
    full = f"akri_deploy_tools_{name}"
    if full not in sys.modules:
        spec = importlib.util.spec_from_file_location(full, TOOLS / f"{name}.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[full] = module
        spec.loader.exec_module(module)
    return sys.modules[full]
