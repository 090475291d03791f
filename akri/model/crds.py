"""The two CustomResourceDefinitions (apiextensions.k8s.io/v1), from this one source (spec §1).

`akri crds` prints them; deploy/crds/*.yaml hold the same YAML (a test keeps them equal).
Compatible with upstream's: group akri.sh, version v0, namespaced, short names akric/akrii,
category `all`, same printer columns and defaults. Deliberate additions, all of which
upstream's own types already imply: required fields, `minimum: 0` on capacities, and `oneOf`
for brokerSpec (Pod or Job), properties (value or valueFrom) and their sources.
Like upstream's Helm CRD (unlike its generated Rust schema) there is no CEL rule making
discoveryHandler immutable: `self == oldSelf` over unbounded strings and lists risks the
API server's CEL cost limit, and upstream's deployed CRD allows changing it.
"""

from __future__ import annotations

from typing import Any

import yaml

from akri.model.configuration import PROPERTY_NAME_PATTERN
from akri.model.constants import (
    API_GROUP,
    API_VERSION,
    CONFIGURATION_KIND,
    CONFIGURATION_PLURAL,
    CONFIGURATION_SHORT_NAME,
    CONFIGURATION_SINGULAR,
    INSTANCE_KIND,
    INSTANCE_PLURAL,
    INSTANCE_SHORT_NAME,
    INSTANCE_SINGULAR,
)

CONFIGURATION_CRD_FILE = "akri-configuration-crd.yaml"
INSTANCE_CRD_FILE = "akri-instance-crd.yaml"

_STRING = {"type": "string"}


def _string_map(description: str) -> dict[str, Any]:
    return {"type": "object", "description": description, "additionalProperties": _STRING, "default": {}}


def _embedded(description: str) -> dict[str, Any]:
    """A Kubernetes spec stored as given (checked by the webhook, not by the CRD schema)."""
    return {
        "type": "object",
        "description": description,
        "nullable": True,
        "x-kubernetes-preserve-unknown-fields": True,
    }


def _key_selector(what: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": f"A key of a {what}.",
        "required": ["key", "name"],
        "properties": {
            "key": {"type": "string", "description": f"The key of the {what} to select."},
            "name": {"type": "string", "description": f"Name of the {what}."},
            "namespace": {
                "type": "string",
                "description": f"Namespace of the {what} (default: \"default\", not the Configuration's).",
                "default": "default",
            },
            "optional": {"type": "boolean", "description": f"Whether the {what} or its key may be missing."},
        },
    }


def _age_column() -> dict[str, Any]:
    return {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def _crd(kind: str, plural: str, singular: str, short_name: str, schema: dict[str, Any],
         columns: list[dict[str, Any]], subresources: dict[str, Any] | None) -> dict[str, Any]:
    version: dict[str, Any] = {
        "name": API_VERSION,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": schema},
        "additionalPrinterColumns": columns,
    }
    if subresources is not None:
        version["subresources"] = subresources
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{API_GROUP}"},
        "spec": {
            "group": API_GROUP,
            "names": {
                "kind": kind,
                "plural": plural,
                "singular": singular,
                "shortNames": [short_name],
                "categories": ["all"],
            },
            "scope": "Namespaced",
            "versions": [version],
        },
    }


def configuration_crd() -> dict[str, Any]:
    discovery_property = {
        "type": "object",
        "description": "A named value passed to the discovery handler: literal or from a Secret/ConfigMap.",
        "required": ["name"],
        "oneOf": [{"required": ["value"]}, {"required": ["valueFrom"]}],
        "properties": {
            "name": {"type": "string", "pattern": PROPERTY_NAME_PATTERN},
            "value": {"type": "string", "nullable": True},
            "valueFrom": {
                "type": "object",
                "oneOf": [{"required": ["secretKeyRef"]}, {"required": ["configMapKeyRef"]}],
                "properties": {
                    "secretKeyRef": _key_selector("Secret"),
                    "configMapKeyRef": _key_selector("ConfigMap"),
                },
            },
        },
    }
    spec = {
        "type": "object",
        "description": "Which devices to discover and what to run for them.",
        "required": ["discoveryHandler"],
        "properties": {
            "discoveryHandler": {
                "type": "object",
                "description": "The discovery handler to ask, and what to tell it.",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string",
                             "description": "Handler name: debugEcho, udev, onvif, opcua or custom."},
                    "discoveryDetails": {"type": "string", "description": "Handler-specific YAML/JSON text.",
                                         "default": ""},
                    "discoveryProperties": {"type": "array", "nullable": True, "items": discovery_property},
                },
            },
            "capacity": {"type": "integer", "description": "Slots per Instance (how many workloads may use a "
                         "device at once).", "minimum": 0, "default": 1},
            "brokerSpec": {
                "type": "object",
                "description": "Workload started for each discovered device: a Pod or a Job.",
                "oneOf": [{"required": ["brokerPodSpec"]}, {"required": ["brokerJobSpec"]}],
                "properties": {
                    "brokerPodSpec": _embedded("core/v1 PodSpec of a broker Pod per device and node."),
                    "brokerJobSpec": _embedded("batch/v1 JobSpec of a broker Job per device."),
                },
            },
            "instanceServiceSpec": _embedded("core/v1 ServiceSpec of a Service per Instance."),
            "configurationServiceSpec": _embedded("core/v1 ServiceSpec of one Service for all Instances."),
            "brokerProperties": _string_map(
                "Added to every Instance's brokerProperties and broker environment."),
        },
    }
    schema = {"type": "object", "required": ["spec"], "properties": {"spec": spec}}
    columns = [
        {"name": "Capacity", "type": "string", "description": "The capacity for each Instance discovered",
         "jsonPath": ".spec.capacity"},
        _age_column(),
    ]
    return _crd(CONFIGURATION_KIND, CONFIGURATION_PLURAL, CONFIGURATION_SINGULAR, CONFIGURATION_SHORT_NAME,
                schema, columns, None)


def instance_crd() -> dict[str, Any]:
    spec = {
        "type": "object",
        "description": "One discovered device.",
        "required": ["configurationName", "cdiName", "capacity"],
        "properties": {
            "configurationName": {"type": "string", "description": "The Configuration (same namespace)."},
            "cdiName": {"type": "string", "description": "CDI device name akri.sh/<configuration>=<digest>."},
            "capacity": {"type": "integer", "description": "Number of slots.", "minimum": 0},
            "brokerProperties": _string_map("Device properties overlaid with the Configuration's."),
            "shared": {"type": "boolean", "description": "Visible from several nodes.", "default": False},
            "nodes": {
                "type": "array",
                "description": "Nodes that can use the device.",
                "items": _STRING,
                "default": [],
                "x-kubernetes-list-type": "set",
            },
            "deviceUsage": {
                **_string_map("Slot id -> '' (free), '<node>' or 'C:<virtual device>:<node>'."),
                "x-kubernetes-map-type": "granular",
            },
        },
    }
    schema = {"type": "object", "required": ["spec"], "properties": {"spec": spec}}
    columns = [
        {"name": "Config", "type": "string", "description": "The Configuration this Instance belongs to",
         "jsonPath": ".spec.configurationName"},
        {"name": "Shared", "type": "boolean", "description": "Describes whether this Instance is shared",
         "jsonPath": ".spec.shared"},
        {"name": "Nodes", "type": "string", "description": "Nodes that expose this Instance",
         "jsonPath": ".spec.nodes"},
        _age_column(),
    ]
    return _crd(INSTANCE_KIND, INSTANCE_PLURAL, INSTANCE_SINGULAR, INSTANCE_SHORT_NAME, schema, columns, {})


def crds() -> list[dict[str, Any]]:
    """Both CRDs: Configuration first."""
    return [configuration_crd(), instance_crd()]


class _PlainDumper(yaml.SafeDumper):
    """No `&id001` anchors for repeated sub-schemas: some tools (and readers) choke on them."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def to_yaml(crd: dict[str, Any]) -> str:
    return yaml.dump(crd, Dumper=_PlainDumper, sort_keys=False, default_flow_style=False, width=120)


def crd_files() -> dict[str, str]:
    """File name in deploy/crds -> content."""
    return {CONFIGURATION_CRD_FILE: to_yaml(configuration_crd()), INSTANCE_CRD_FILE: to_yaml(instance_crd())}


def all_yaml() -> str:
    """Both CRDs as one multi-document YAML stream."""
    return "---\n".join(to_yaml(c) for c in crds())
