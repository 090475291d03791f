"""akri.testing: doubles of what does not exist on a build machine (the Kubernetes API server, the
kubelet), for our tests and for users testing their discovery handlers.

Imports are lazy so that using one double does not load the others.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "ApiServer": "akri.testing.apiserver",
    "ApiServerThread": "akri.testing.apiserver",
    "Store": "akri.testing.apiserver",
    "KubeletDouble": "akri.testing.kubelet",
    "NetworkNamespace": "akri.testing.netns",
    "joined_pair": "akri.testing.netns",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'akri.testing' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
