"""`akri version [--json]`: the package version and whether the Cython hot paths are in use."""

from __future__ import annotations

import argparse
import platform
import sys

import orjson


def info() -> dict[str, object]:
    import akri
    from akri import _fast

    return {
        "version": akri.__version__,
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "compiled": _fast.COMPILED,
        "compiledModules": _fast.compiled_modules(),
    }


def run(args: argparse.Namespace) -> int:
    data = info()
    if args.json:
        sys.stdout.write(orjson.dumps(data).decode() + "\n")
    else:
        mode = "compiled" if data["compiled"] else "pure Python"
        sys.stdout.write(f"akri {data['version']} (Python {data['python']}, hot paths {mode})\n")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("version", help="print the version and whether the Cython extensions are in use")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)
