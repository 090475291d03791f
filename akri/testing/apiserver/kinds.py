"""Per-kind behaviour of the real API's create strategies, for the kinds our code touches, and the
resource types a CustomResourceDefinition declares."""

from __future__ import annotations

import itertools
from typing import Any

from .objects import Obj, now_rfc3339
from .resources import ResourceType, custom_resource


class CreateDefaults:
    """What the real API resets or defaults when an object is created."""

    def __init__(self) -> None:
        self._cluster_ips = itertools.count(10)

    def apply(self, rt: ResourceType, obj: Obj) -> None:
        if rt.status_subresource:
            if rt.custom:
                obj.pop("status", None)
            elif rt.kind == "Pod":
                obj["status"] = {"phase": "Pending"}
            elif rt.kind == "Namespace":
                obj["status"] = {"phase": "Active"}
            elif rt.kind != "Node":  # the kubelet registers a Node with its status
                obj["status"] = {}
        if rt.kind == "Service" and not rt.group:
            self._default_service(obj)
        elif rt.kind == "CustomResourceDefinition":
            obj["status"] = _established(obj)

    def _default_service(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec.get("clusterIP") != "None" and spec["type"] != "ExternalName" and not spec.get("clusterIP"):
            n = next(self._cluster_ips)
            spec["clusterIP"] = f"10.96.{n // 250}.{n % 250 + 1}"
        if spec.get("clusterIP"):
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port.get("port"))


def _established(crd: Obj) -> dict[str, Any]:
    """A CRD whose names were accepted (what `kubectl wait --for=condition=established` waits for)."""
    spec = crd.get("spec") or {}
    now = now_rfc3339()
    return {
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True",
                "reason": "NoConflicts",
                "lastTransitionTime": now,
                "message": "no conflicts found",
            },
            {
                "type": "Established",
                "status": "True",
                "reason": "InitialNamesAccepted",
                "lastTransitionTime": now,
                "message": "the initial names have been accepted",
            },
        ],
        "acceptedNames": spec.get("names", {}),
        "storedVersions": [v.get("name") for v in spec.get("versions", []) if v.get("storage")],
    }


def crd_resource_types(crd: Obj) -> list[ResourceType]:
    """The served versions of a CustomResourceDefinition, as resource types."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    if not names.get("plural") or not names.get("kind"):
        return []
    return [
        custom_resource(
            spec.get("group", ""),
            version.get("name", ""),
            names["plural"],
            names["kind"],
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            short_names=names.get("shortNames") or (),
            categories=names.get("categories") or (),
            status_subresource="status" in (version.get("subresources") or {}),
            singular=names.get("singular", ""),
        )
        for version in spec.get("versions") or []
        if version.get("served", True)
    ]
