"""The `Instance` custom resource (`akri.sh/v0`, spec §1.2): one discovered device."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from akri.model._parse import Reader
from akri.model.constants import GROUP_VERSION, INSTANCE_KIND
from akri.model.meta import ObjectMetadata
from akri.model.usage import Usage, slot_vector


@dataclass(frozen=True)
class InstanceSpec:
    configuration_name: str
    cdi_name: str
    capacity: int
    broker_properties: dict[str, str] = field(default_factory=dict)
    shared: bool = False
    nodes: list[str] = field(default_factory=list)
    device_usage: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, spec: Any, path: str = "spec") -> InstanceSpec:
        """Read an Instance spec; ValidationError lists every problem with its path."""
        reader = Reader()
        parsed = read_instance_spec(reader, spec, path)
        reader.raise_if_errors()
        assert parsed is not None
        return parsed

    def to_dict(self) -> dict[str, Any]:
        """Canonical JSON in upstream's key order, every field present."""
        return {
            "configurationName": self.configuration_name,
            "cdiName": self.cdi_name,
            "capacity": self.capacity,
            "brokerProperties": dict(self.broker_properties),
            "shared": self.shared,
            "nodes": list(self.nodes),
            "deviceUsage": dict(self.device_usage),
        }

    def slots(self) -> list[Usage]:
        """Usage of every slot (absent and "" = free); ValueError on a malformed deviceUsage."""
        return slot_vector(self.device_usage, self.capacity)


def read_instance_spec(reader: Reader, value: Any, path: str) -> InstanceSpec | None:
    if value is None:
        reader.error(path, "required")
        return None
    spec = reader.mapping(value, path)
    if spec is None:
        return None
    configuration_name = reader.string(spec, "configurationName", path, required=True)
    cdi_name = reader.string(spec, "cdiName", path, required=True)
    capacity = reader.integer(spec, "capacity", path, required=True, minimum=0)
    broker_properties = reader.string_map(spec, "brokerProperties", path)
    shared = reader.boolean(spec, "shared", path, default=False)
    nodes = reader.string_list(spec, "nodes", path)
    device_usage = reader.string_map(spec, "deviceUsage", path)
    if configuration_name is None or cdi_name is None or capacity is None:
        return None
    return InstanceSpec(
        configuration_name=configuration_name,
        cdi_name=cdi_name,
        capacity=capacity,
        broker_properties=broker_properties,
        shared=bool(shared),
        nodes=nodes,
        device_usage=device_usage,
    )


@dataclass(frozen=True)
class Instance:
    metadata: ObjectMetadata
    spec: InstanceSpec
    api_version: str = GROUP_VERSION
    kind: str = INSTANCE_KIND

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace

    @classmethod
    def from_dict(cls, obj: Any) -> Instance:
        reader = Reader()
        if not isinstance(obj, dict):
            reader.mapping(obj, "")
            reader.raise_if_errors()
        kind = reader.string(obj, "kind", "", default=INSTANCE_KIND)
        if kind != INSTANCE_KIND:
            reader.error("kind", f"expected {INSTANCE_KIND!r}, got {kind!r}")
        api_version = reader.string(obj, "apiVersion", "", default=GROUP_VERSION)
        metadata = ObjectMetadata.read(reader, obj.get("metadata"))
        spec = read_instance_spec(reader, obj.get("spec"), "spec")
        reader.raise_if_errors()
        assert metadata is not None and spec is not None
        return cls(metadata=metadata, spec=spec, api_version=api_version or GROUP_VERSION)

    def to_dict(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "metadata": copy.deepcopy(self.metadata.to_dict()),
            "spec": self.spec.to_dict(),
        }
