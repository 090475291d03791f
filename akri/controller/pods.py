"""Broker Pods: one per node that can see an Instance's device (spec §6.2, upstream `pod.rs`)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from akri.controller.brokers import (
    APP_LABEL,
    CONFIGURATION_LABEL,
    CONTROLLER_LABEL,
    CONTROLLER_VALUE,
    INSTANCE_LABEL,
    TARGET_NODE_LABEL,
    owner_reference,
    replace_placeholder,
)
from akri.model.constants import INSTANCE_KIND
from akri.model.naming import broker_pod_name, resource_name

NODE_NAME_FIELD = "metadata.name"


def node_requirement(node: str) -> dict[str, Any]:
    return {"key": NODE_NAME_FIELD, "operator": "In", "values": [node]}


def pin_to_node(pod_spec: Mapping[str, Any], node: str) -> dict[str, Any]:
    """A copy of `pod_spec` that can only be scheduled on `node`.

    Node selector terms are OR-ed, so upstream's extra term (`metadata.name In [node]`) next to a
    user's own terms widens placement to wherever the user's terms match (spec §11 item 10).
    Requirements inside one term are AND-ed: adding the node requirement to every existing term
    keeps each of the user's constraints and adds "and on this node". With no term yet, one term
    holding just the requirement is created. Preferred affinities and pod (anti-)affinity are
    left alone.
    """
    spec = copy.deepcopy(dict(pod_spec))
    affinity = spec.get("affinity")
    if not isinstance(affinity, dict):
        affinity = spec["affinity"] = {}
    node_affinity = affinity.get("nodeAffinity")
    if not isinstance(node_affinity, dict):
        node_affinity = affinity["nodeAffinity"] = {}
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if not isinstance(required, dict):
        required = node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {}
    terms = required.get("nodeSelectorTerms")
    terms = [t for t in terms if isinstance(t, dict)] if isinstance(terms, list) else []
    if not terms:
        terms = [{}]
    for term in terms:
        fields = term.get("matchFields")
        term["matchFields"] = [*fields, node_requirement(node)] if isinstance(fields, list) else [
            node_requirement(node)
        ]
    required["nodeSelectorTerms"] = terms
    return spec


def broker_pod_labels(pod_name: str, configuration_name: str, instance_name: str,
                      node: str) -> dict[str, str]:
    return {
        APP_LABEL: pod_name,
        CONTROLLER_LABEL: CONTROLLER_VALUE,
        CONFIGURATION_LABEL: configuration_name,
        INSTANCE_LABEL: instance_name,
        TARGET_NODE_LABEL: node,
    }


def build_broker_pod(
    *,
    instance_name: str,
    instance_uid: str,
    namespace: str,
    configuration_name: str,
    node: str,
    shared: bool,
    pod_spec: Mapping[str, Any],
) -> dict[str, Any]:
    """The broker Pod for `instance_name` on `node` (upstream `create_new_pod_from_spec`).

    Name `<node>-<instance>-pod` (shared device) or `<instance>-pod` (local), upstream's labels,
    a controlling owner reference to the Instance (so GC removes the Pod with it), the
    Instance's resource `akri.sh/<instance>` in place of `{{PLACEHOLDER}}`, pinned to `node`.
    """
    name = broker_pod_name(instance_name, node, shared)
    spec = pin_to_node(replace_placeholder(pod_spec, resource_name(instance_name)), node)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": broker_pod_labels(name, configuration_name, instance_name, node),
            "ownerReferences": [owner_reference(INSTANCE_KIND, instance_name, instance_uid)],
        },
        "spec": spec,
    }
