"""Hot paths, compiled with Cython when available, each with a pure-Python twin.

`akri._fast.<name>` is the compiled function when its extension module was built and
imports, else the twin from `akri._fast.pure`. AKRI_PURE_PYTHON=1 forces the twins.
`COMPILED` is True only when every hot path is compiled; `compiled_modules()` says which.
"""

from __future__ import annotations

import importlib
import os

from akri._fast import pure

# extension module -> the functions it provides (each also exists in akri._fast.pure)
_MODULES: dict[str, tuple[str, ...]] = {
    "_digest": ("digest_hex", "digest_hex_batch"),
    "_uevent": ("parse_uevent",),
    "_slots": ("SlotTable",),
}

_loaded: dict[str, bool] = {}


def _load() -> None:
    force_pure = os.environ.get("AKRI_PURE_PYTHON", "").strip().lower() not in ("", "0", "false", "no")
    for mod_name, names in _MODULES.items():
        module = None
        if not force_pure:
            try:
                module = importlib.import_module(f"akri._fast.{mod_name}")
            except ImportError:
                module = None
        _loaded[mod_name] = module is not None
        for name in names:
            globals()[name] = getattr(module if module is not None else pure, name)


_load()

COMPILED: bool = all(_loaded.values())


def compiled_modules() -> dict[str, bool]:
    """Which extension modules are in use (False: the pure twin serves it)."""
    return dict(_loaded)


__all__ = ["COMPILED", "compiled_modules", *(n for names in _MODULES.values() for n in names)]
