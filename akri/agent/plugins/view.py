"""`InstanceView`: everything a device plugin needs to know about one of this node's Instances."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from akri.discovery.device import DeviceSpec, Mount


@dataclass(frozen=True)
class InstanceView:
    """One Instance as the plugins see it.

    `properties` is the Instance's `spec.brokerProperties` (the device's properties overlaid
    with the Configuration's brokerProperties); it becomes the broker's environment.
    `mounts`/`device_specs` come from the device as the discovery handler reported it.
    `device_ready` is False while this agent has not seen the device since it started: the
    plugin then offers no new slot (kubelet ids already handed out stay Healthy). `nodes`
    (spec.nodes) spreads the slot preferences of the nodes sharing the device.
    """

    name: str
    namespace: str
    configuration: str
    capacity: int
    cdi_name: str
    device_usage: Mapping[str, str] = field(default_factory=dict)
    shared: bool = False
    properties: Mapping[str, str] = field(default_factory=dict)
    mounts: tuple[Mount, ...] = ()
    device_specs: tuple[DeviceSpec, ...] = ()
    annotations: Mapping[str, str] = field(default_factory=dict)
    device_ready: bool = True
    #: spec.nodes: the nodes that see the device (used to spread their slot preferences)
    nodes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for what in ("name", "namespace", "configuration"):
            value = getattr(self, what)
            if not isinstance(value, str) or not value:
                raise ValueError(f"InstanceView.{what}: must be a non-empty string, got {value!r}")
        if isinstance(self.capacity, bool) or not isinstance(self.capacity, int) or self.capacity < 0:
            raise ValueError(f"InstanceView.capacity: must be an integer >= 0, got {self.capacity!r}")
        if not isinstance(self.device_usage, Mapping):
            raise ValueError(
                f"InstanceView.device_usage: must be a mapping, got {type(self.device_usage).__name__}"
            )

    @property
    def digest_hash(self) -> str:
        """The env-var suffix of this device: its digest upper-cased (`D46B65`), spec §4.10."""
        source = self.cdi_name.rpartition("=")[2] if "=" in self.cdi_name else self.name.rpartition("-")[2]
        return source.upper()

    @classmethod
    def from_node_instance(cls, node_instance: Any) -> InstanceView:
        """From the cluster side's `akri.agent.node_instances.NodeInstance`."""
        inst = node_instance.instance
        spec = inst.spec
        device = node_instance.device
        return cls(
            name=inst.name,
            namespace=inst.namespace,
            configuration=spec.configuration_name,
            capacity=spec.capacity,
            cdi_name=spec.cdi_name,
            device_usage=dict(spec.device_usage),
            shared=spec.shared,
            properties=dict(spec.broker_properties),
            mounts=tuple(device.mounts) if device is not None else (),
            device_specs=tuple(device.device_specs) if device is not None else (),
            device_ready=device is not None,
            nodes=tuple(spec.nodes),
        )
