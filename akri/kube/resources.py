"""The resource kinds the project talks to, as lightkube resource classes.

Akri's own kinds are lightkube *generic* resources: they decode to plain dicts (a `dict`
subclass), so the rest of the code reads them with ordinary subscripting and hands them to
`akri.model` unchanged.
"""

from __future__ import annotations

from typing import Any

from lightkube.generic_resource import create_global_resource, create_namespaced_resource
from lightkube.resources.core_v1 import ConfigMap, Secret

GROUP = "akri.sh"
VERSION = "v0"
API_VERSION = f"{GROUP}/{VERSION}"

Configuration = create_namespaced_resource(GROUP, VERSION, "Configuration", "configurations")
Instance = create_namespaced_resource(GROUP, VERSION, "Instance", "instances")

# Kinds the controller and webhook keep in memory by the thousand: generic resources decode to
# plain dicts, far cheaper than typed models, and the builders produce plain JSON anyway.
Pod = create_namespaced_resource("", "v1", "Pod", "pods")
Service = create_namespaced_resource("", "v1", "Service", "services")
Node = create_global_resource("", "v1", "Node", "nodes")
Job = create_namespaced_resource("batch", "v1", "Job", "jobs")
Lease = create_namespaced_resource("coordination.k8s.io", "v1", "Lease", "leases")
ValidatingWebhookConfiguration = create_global_resource(
    "admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations"
)

#: pass as `namespace` to list/watch across every namespace
ALL_NAMESPACES = "*"

__all__ = [
    "ALL_NAMESPACES",
    "API_VERSION",
    "ConfigMap",
    "Configuration",
    "Instance",
    "Job",
    "Lease",
    "Node",
    "Pod",
    "Secret",
    "Service",
    "ValidatingWebhookConfiguration",
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
