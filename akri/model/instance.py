"""The `Instance` custom resource (`akri.sh/v0`, spec §1.2): one discovered device."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from akri.model._parse import Reader
from akri.model.constants import GROUP_VERSION, INSTANCE_KIND
from akri.model.meta import AkriObject, ObjectMetadata
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
class Instance(AkriObject):
    metadata: ObjectMetadata
    spec: InstanceSpec
    api_version: str = GROUP_VERSION
    kind: str = INSTANCE_KIND

    KIND = INSTANCE_KIND
    read_spec = staticmethod(read_instance_spec)
