"""Akri in Python: the Kubernetes Resource Interface for the edge."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("akri")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
