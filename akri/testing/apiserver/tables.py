"""Server-side printing (`meta.k8s.io/v1` Table), which `kubectl get` asks for in its Accept header.

Columns: Name and Age for every type (what the real API prints for a CRD without printer columns),
plus Status and Node for Pods. Rows carry PartialObjectMetadata, so `kubectl get -A` can add the
NAMESPACE column.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .resources import ResourceType

_NAME = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "priority": 0,
    "description": "Name must be unique within a namespace.",
}
_AGE = {
    "name": "Age",
    "type": "string",
    "format": "",
    "priority": 0,
    "description": "The server time when this object was created.",
}
_POD_COLUMNS = [
    {"name": "Status", "type": "string", "format": "", "priority": 0, "description": "The pod phase."},
    {
        "name": "Node",
        "type": "string",
        "format": "",
        "priority": 1,
        "description": "The node the pod runs on.",
    },
]


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def _age(timestamp: str | None) -> str:
    if not timestamp:
        return "<unknown>"
    try:
        created = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "<invalid>"
    seconds = max(0, int((datetime.now(UTC) - created).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _columns(rt: ResourceType) -> list[dict[str, Any]]:
    if rt.kind == "Pod" and not rt.group:
        return [_NAME, _POD_COLUMNS[0], _AGE, _POD_COLUMNS[1]]
    return [_NAME, _AGE]


def _row(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata", {})
    age = _age(meta.get("creationTimestamp"))
    if rt.kind == "Pod" and not rt.group:
        phase = "Terminating" if meta.get("deletionTimestamp") else (obj.get("status") or {}).get("phase", "")
        cells = [meta.get("name"), phase, age, (obj.get("spec") or {}).get("nodeName", "<none>")]
    else:
        cells = [meta.get("name"), age]
    return {
        "cells": cells,
        "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta},
    }


def to_table(rt: ResourceType, items: list[dict[str, Any]], list_meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": _columns(rt),
        "rows": [_row(rt, obj) for obj in items],
    }
