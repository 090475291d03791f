"""Instance and Configuration Services in front of running brokers (spec §6.4, upstream `service.rs`).

A Service exists while a broker it selects runs: it is created when the first broker Pod is
Running and removed when none is left alive.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from akri.controller.brokers import (
    APP_LABEL,
    CONFIGURATION_LABEL,
    CONTROLLER_LABEL,
    CONTROLLER_VALUE,
    INSTANCE_LABEL,
    owner_reference,
)
from akri.model.constants import CONFIGURATION_KIND, INSTANCE_KIND
from akri.model.naming import configuration_service_name, instance_service_name

# Phases in which a Pod no longer serves (upstream also lists "Terminating", which is not a
# real phase; a Pod being deleted is recognised by its deletionTimestamp instead).
ENDED_PHASES = frozenset({"Succeeded", "Failed"})


def _service(name: str, namespace: str, level_label: str, level_value: str,
             spec: Mapping[str, Any], owner: dict[str, Any]) -> dict[str, Any]:
    svc_spec = copy.deepcopy(dict(spec))
    selector = svc_spec.get("selector")
    selector = dict(selector) if isinstance(selector, dict) else {}
    selector[CONTROLLER_LABEL] = CONTROLLER_VALUE
    selector[level_label] = level_value
    svc_spec["selector"] = selector
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {APP_LABEL: name, CONTROLLER_LABEL: CONTROLLER_VALUE, level_label: level_value},
            "ownerReferences": [owner],
        },
        "spec": svc_spec,
    }


def build_instance_service(*, instance_name: str, instance_uid: str, namespace: str,
                           service_spec: Mapping[str, Any]) -> dict[str, Any]:
    """`<instance>-svc`, selecting the Instance's brokers, owned by the Instance."""
    return _service(instance_service_name(instance_name), namespace, INSTANCE_LABEL, instance_name,
                    service_spec, owner_reference(INSTANCE_KIND, instance_name, instance_uid))


def build_configuration_service(*, configuration_name: str, configuration_uid: str, namespace: str,
                                service_spec: Mapping[str, Any]) -> dict[str, Any]:
    """`<configuration>-svc`, selecting every broker of the Configuration, owned by it."""
    return _service(configuration_service_name(configuration_name), namespace, CONFIGURATION_LABEL,
                    configuration_name, service_spec,
                    owner_reference(CONFIGURATION_KIND, configuration_name, configuration_uid))


def pod_phase(pod: Mapping[str, Any]) -> str | None:
    status = pod.get("status")
    phase = status.get("phase") if isinstance(status, Mapping) else None
    return phase if isinstance(phase, str) else None


def _deleting(pod: Mapping[str, Any]) -> bool:
    meta = pod.get("metadata")
    return isinstance(meta, Mapping) and bool(meta.get("deletionTimestamp"))


def is_running(pod: Mapping[str, Any]) -> bool:
    return pod_phase(pod) == "Running" and not _deleting(pod)


def is_alive(pod: Mapping[str, Any]) -> bool:
    """Still (or soon) serving: not ended and not being deleted. A Pod without status counts."""
    return pod_phase(pod) not in ENDED_PHASES and not _deleting(pod)


def service_wanted(current: bool, pods: Iterable[Mapping[str, Any]]) -> bool:
    """Whether a Service should exist given the brokers it selects and whether it exists now.

    Created when a broker runs; once created it stays while any broker is alive (a broker
    restarting keeps its Service); removed when none is.
    """
    pods = list(pods)
    if any(is_running(p) for p in pods):
        return True
    return current and any(is_alive(p) for p in pods)


def needs_update(existing: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Whether an existing Service differs from the desired one in what the controller owns:
    labels it sets, the owner reference, the selector and the ports/type the user asked for.
    Fields the API server fills in (clusterIP, nodePort, ...) are not compared."""
    emeta, dmeta = existing.get("metadata") or {}, desired.get("metadata") or {}
    elabels = emeta.get("labels") or {}
    if any(elabels.get(k) != v for k, v in (dmeta.get("labels") or {}).items()):
        return True
    if (emeta.get("ownerReferences") or []) != dmeta.get("ownerReferences"):
        return True
    espec, dspec = existing.get("spec") or {}, desired.get("spec") or {}
    if espec.get("selector") != dspec.get("selector"):
        return True
    return any(_differs(espec.get(k), v) for k, v in dspec.items())


def _differs(existing: Any, desired: Any) -> bool:
    """`desired` is not contained in `existing` (extra keys in existing are server defaults)."""
    if isinstance(desired, dict):
        if not isinstance(existing, dict):
            return True
        return any(_differs(existing.get(k), v) for k, v in desired.items())
    if isinstance(desired, list):
        if not isinstance(existing, list) or len(existing) != len(desired):
            return True
        return any(_differs(e, d) for e, d in zip(existing, desired, strict=True))
    return existing != desired


def merge_for_update(existing: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """`existing` with the controller's labels, owner reference and spec fields from `desired`
    (keeps server-assigned fields such as clusterIP, which cannot change, and resourceVersion)."""
    out = copy.deepcopy(dict(existing))
    meta = out.setdefault("metadata", {})
    dmeta = desired.get("metadata") or {}
    labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
    meta["labels"] = {**labels, **(dmeta.get("labels") or {})}
    meta["ownerReferences"] = copy.deepcopy(dmeta.get("ownerReferences") or [])
    spec = out.setdefault("spec", {})
    for key, value in (desired.get("spec") or {}).items():
        # the selector is exactly the desired one; elsewhere keep what the server filled in
        spec[key] = copy.deepcopy(value) if key == "selector" else _merge(spec.get(key), value)
    return out


def _merge(existing: Any, desired: Any) -> Any:
    if isinstance(desired, dict) and isinstance(existing, dict):
        return {**existing, **{k: _merge(existing.get(k), v) for k, v in desired.items()}}
    if isinstance(desired, list) and isinstance(existing, list) and len(existing) == len(desired):
        return [_merge(e, d) for e, d in zip(existing, desired, strict=True)]
    return copy.deepcopy(desired)
