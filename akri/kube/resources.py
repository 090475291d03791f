"""The resource kinds the project talks to, as small descriptors with a URL path builder.

Every object of every kind decodes to a plain dict, so the rest of the code reads them with
ordinary subscripting and hands them to `akri.model` unchanged (and thousands of them in an
informer's cache cost no more than the JSON they came from).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

GROUP = "akri.sh"
VERSION = "v0"
API_VERSION = f"{GROUP}/{VERSION}"

#: pass as `namespace` to list/watch across every namespace
ALL_NAMESPACES = "*"


@dataclass(frozen=True, slots=True)
class Resource:
    """One kind of the Kubernetes API: where its objects live (`path`) and what they are called."""

    group: str  # "" for the core API (/api/v1)
    version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        """`/api/v1/namespaces/ns/pods/name`; `namespace` None or ALL_NAMESPACES: every namespace
        (for a list or watch); ignored for cluster-scoped kinds."""
        parts = [f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"]
        if self.namespaced and namespace and namespace != ALL_NAMESPACES:
            parts.append(f"/namespaces/{quote(namespace, safe='')}")
        parts.append(f"/{self.plural}")
        if name is not None:
            if not name:
                raise ValueError(f"{self.kind}: an empty name")
            parts.append(f"/{quote(name, safe='')}")
        return "".join(parts)

    def __str__(self) -> str:
        return self.kind


Configuration = Resource(GROUP, VERSION, "Configuration", "configurations", True)
Instance = Resource(GROUP, VERSION, "Instance", "instances", True)
Pod = Resource("", "v1", "Pod", "pods", True)
Service = Resource("", "v1", "Service", "services", True)
Node = Resource("", "v1", "Node", "nodes", False)
Secret = Resource("", "v1", "Secret", "secrets", True)
ConfigMap = Resource("", "v1", "ConfigMap", "configmaps", True)
Job = Resource("batch", "v1", "Job", "jobs", True)
Lease = Resource("coordination.k8s.io", "v1", "Lease", "leases", True)
ValidatingWebhookConfiguration = Resource(
    "admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations",
    False,
)

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
    "Resource",
    "Secret",
    "Service",
    "ValidatingWebhookConfiguration",
    "object_key",
]


def object_key(obj: Any) -> tuple[str, str]:
    """(namespace, name) of a decoded object."""
    meta = obj.get("metadata") or {}
    return meta.get("namespace") or "", meta.get("name") or ""


def resource_version(obj: Any) -> str | None:
    return (obj.get("metadata") or {}).get("resourceVersion")
