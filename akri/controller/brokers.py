"""What broker Pods, Jobs and Services share: labels, owner references, the resource placeholder.

Objects are plain JSON dicts (what the API takes), built from the user's specs without losing
fields our code does not know about.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from akri.model.constants import AKRI_PREFIX, CONFIGURATION_KIND, GROUP_VERSION, INSTANCE_KIND

APP_LABEL = "app"
CONTROLLER_LABEL = "controller"
CONTROLLER_VALUE = AKRI_PREFIX  # "akri.sh"
CONFIGURATION_LABEL = f"{AKRI_PREFIX}/configuration"
INSTANCE_LABEL = f"{AKRI_PREFIX}/instance"
TARGET_NODE_LABEL = f"{AKRI_PREFIX}/target-node"

#: what users write in a broker's resources where the Instance's resource name goes
PLACEHOLDER = "{{PLACEHOLDER}}"


def owner_reference(kind: str, name: str, uid: str) -> dict[str, Any]:
    """A controlling owner reference to an Instance or a Configuration (upstream's OwnershipInfo:
    controller and blockOwnerDeletion both true)."""
    if kind not in (INSTANCE_KIND, CONFIGURATION_KIND):
        raise ValueError(f"brokers and services are owned by an Instance or a Configuration, not {kind}")
    if not uid:
        raise ValueError(f"owner {kind} {name!r} has no uid")
    return {
        "apiVersion": GROUP_VERSION,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def replace_placeholder(pod_spec: Mapping[str, Any], resource: str) -> dict[str, Any]:
    """A copy of `pod_spec` where every `{{PLACEHOLDER}}` key in the `limits`/`requests` of a
    container or initContainer is renamed to `resource`, keeping its quantity.

    Everything else (other resource keys, `claims`, containers without resources) is kept as
    written. Upstream drops `claims` while rebuilding the requirements; there is no reason to
    lose a user's DRA claims, so they stay.
    """
    spec = copy.deepcopy(dict(pod_spec))
    for list_key in ("containers", "initContainers"):
        containers = spec.get(list_key)
        if not isinstance(containers, list):
            continue
        for container in containers:
            if not isinstance(container, dict):
                continue
            resources = container.get("resources")
            if not isinstance(resources, dict):
                continue
            for kind in ("limits", "requests"):
                quantities = resources.get(kind)
                if isinstance(quantities, dict) and PLACEHOLDER in quantities:
                    # rebuild to keep key order stable, placeholder position taken by the resource
                    resources[kind] = {
                        (resource if key == PLACEHOLDER else key): value
                        for key, value in quantities.items()
                        if key != resource  # the placeholder's quantity wins, as upstream
                    }
    return spec
