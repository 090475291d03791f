"""A minimal OpenAPI v3 description: just enough for kubectl.

`kubectl apply/create -f` validates manifests; it skips its client-side schema validation (which
would need full schemas) when the OpenAPI v3 document shows that the server accepts the
`fieldValidation` query parameter on PATCH for the kind. So each group-version document lists the
operations of each type, tagged with `x-kubernetes-group-version-kind`, and no component schemas
(kubectl then builds strategic merge patches for built-in kinds from its compiled-in types, which
is what we want). The server accepts `fieldValidation` and ignores it: it has no schemas.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .resources import ResourceRegistry, ResourceType

_WRITE_PARAMS = [
    {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
    {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
    {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
]
_OK = {"200": {"description": "OK"}}


def gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def root(registry: ResourceRegistry) -> dict[str, Any]:
    paths = {}
    for group, versions in registry.groups().items():
        for version in versions:
            path = gv_path(group, version)
            digest = hashlib.sha256(repr(group_version_doc(registry, group, version)).encode()).hexdigest()[
                :32
            ]
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest.upper()}"}
    return {"paths": paths}


def _operation(rt: ResourceType, action: str, write: bool) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": f"{action}{rt.kind}",
        "responses": _OK,
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
    }
    if write:
        op["parameters"] = _WRITE_PARAMS
    return op


def group_version_doc(registry: ResourceRegistry, group: str, version: str) -> dict[str, Any] | None:
    types = [rt for rt in registry if rt.group == group and rt.version == version]
    if not types:
        return None
    paths: dict[str, Any] = {}
    for rt in types:
        base = "/" + gv_path(group, version)
        collection = (
            f"{base}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{base}/{rt.plural}"
        )
        paths[collection] = {"get": _operation(rt, "list", False), "post": _operation(rt, "post", True)}
        paths[f"{collection}/{{name}}"] = {
            "get": _operation(rt, "get", False),
            "put": _operation(rt, "put", True),
            "patch": _operation(rt, "patch", True),
            "delete": _operation(rt, "delete", False),
        }
        if rt.status_subresource:
            paths[f"{collection}/{{name}}/status"] = {
                "get": _operation(rt, "get", False),
                "put": _operation(rt, "put", True),
                "patch": _operation(rt, "patch", True),
            }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }
