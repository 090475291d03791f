"""Akri in Python: the Kubernetes Resource Interface for the edge."""

from __future__ import annotations

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    # Read lazily: importlib.metadata (and the email package behind it) costs ~25 ms and some
    # memory in every process, and only `akri version` and the logs need the version.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("akri")
        except PackageNotFoundError:  # a source tree that was never installed
            return "0.0.0+unknown"
    raise AttributeError(f"module 'akri' has no attribute {name!r}")
