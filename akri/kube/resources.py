"""The resource kinds the project talks to, as lightkube resource classes.

Akri's own kinds are lightkube *generic* resources: they decode to plain dicts (a `dict`
subclass), so the rest of the code reads them with ordinary subscripting and hands them to
`akri.model` unchanged.
"""

from __future__ import annotations

from typing import Any

from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.core_v1 import ConfigMap, Secret

GROUP = "akri.sh"
VERSION = "v0"
API_VERSION = f"{GROUP}/{VERSION}"

Configuration = create_namespaced_resource(GROUP, VERSION, "Configuration", "configurations")
Instance = create_namespaced_resource(GROUP, VERSION, "Instance", "instances")

#: pass as `namespace` to list/watch across every namespace
ALL_NAMESPACES = "*"

__all__ = [
    "ALL_NAMESPACES",
    "API_VERSION",
    "ConfigMap",
    "Configuration",
    "Instance",
    "Secret",
    "object_key",
]


def object_key(obj: Any) -> tuple[str, str]:
    """(namespace, name) of a decoded object, generic (dict) or typed."""
    if isinstance(obj, dict):
        meta = obj.get("metadata") or {}
        return meta.get("namespace") or "", meta.get("name") or ""
    return obj.metadata.namespace or "", obj.metadata.name or ""


def resource_version(obj: Any) -> str | None:
    if isinstance(obj, dict):
        return (obj.get("metadata") or {}).get("resourceVersion")
    return obj.metadata.resourceVersion
