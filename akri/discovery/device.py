"""What a discovery handler reports: devices with properties, mounts and device specs.

These are plain values shared by every way a handler runs (embedded in the agent, as a
standalone gRPC server, under `akri discover`); conversion to and from the v0 protobuf
messages lives here so no other module needs to know the wire types.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Mount:
    container_path: str
    host_path: str
    read_only: bool = False


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    container_path: str
    host_path: str
    permissions: str = ""


@dataclass(frozen=True, slots=True)
class Device:
    """One discovered device. `id` is its stable identity (it feeds the Instance name)."""

    id: str
    properties: Mapping[str, str] = field(default_factory=dict)
    mounts: tuple[Mount, ...] = ()
    device_specs: tuple[DeviceSpec, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "properties": dict(self.properties),
            "mounts": [
                {"containerPath": m.container_path, "hostPath": m.host_path, "readOnly": m.read_only}
                for m in self.mounts
            ],
            "deviceSpecs": [
                {"containerPath": d.container_path, "hostPath": d.host_path, "permissions": d.permissions}
                for d in self.device_specs
            ],
        }

    def to_proto(self) -> Any:
        from akri._proto import discovery_pb2 as pb

        return pb.Device(
            id=self.id,
            properties=dict(self.properties),
            mounts=[pb.Mount(container_path=m.container_path, host_path=m.host_path, read_only=m.read_only)
                    for m in self.mounts],
            device_specs=[
                pb.DeviceSpec(container_path=d.container_path, host_path=d.host_path,
                              permissions=d.permissions)
                for d in self.device_specs
            ],
        )

    @classmethod
    def from_proto(cls, msg: Any) -> Device:
        return cls(
            id=msg.id,
            properties=dict(msg.properties),
            mounts=tuple(Mount(m.container_path, m.host_path, m.read_only) for m in msg.mounts),
            device_specs=tuple(DeviceSpec(d.container_path, d.host_path, d.permissions)
                               for d in msg.device_specs),
        )


def same_devices(a: Iterable[Device], b: Iterable[Device]) -> bool:
    """Order-insensitive equality of two complete device lists (upstream sends only on change)."""
    key = lambda d: d.id  # noqa: E731
    return sorted(a, key=key) == sorted(b, key=key)
