"""What the plugin side of the agent gets: this node's Instances, each with its device.

An Instance is "this node's" while `spec.nodes` contains the node and it is not being deleted.
Listeners hear every change (capacity, brokerProperties, deviceUsage, device mounts/specs) and
every removal; the removal is awaited BEFORE this node's finalizer comes off the Instance, so a
device plugin is stopped before the Instance can disappear.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from akri.discovery.device import Device
from akri.model.configuration import Configuration
from akri.model.instance import Instance

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NodeInstance:
    instance: Instance
    #: the device as this node's handler last reported it (mounts, device specs, properties);
    #: None only if this agent has not seen it since it started (the handler is still coming back)
    device: Device | None
    configuration: Configuration | None
    #: the Instance object as read from the API (for writers that need every field)
    raw: dict[str, Any]

    @property
    def namespace(self) -> str:
        return self.instance.namespace

    @property
    def name(self) -> str:
        return self.instance.name


class InstanceListener(Protocol):
    async def instance_changed(self, view: NodeInstance) -> None: ...

    async def instance_removed(self, namespace: str, name: str) -> None: ...


class NodeInstances:
    """The current set plus fan-out to listeners (a failing listener is logged, never fatal)."""

    def __init__(self) -> None:
        self._views: dict[tuple[str, str], NodeInstance] = {}
        self._stamps: dict[tuple[str, str], tuple[Any, ...]] = {}
        self._listeners: list[InstanceListener] = []

    def add_listener(self, listener: InstanceListener) -> None:
        self._listeners.append(listener)

    def get(self, namespace: str, name: str) -> NodeInstance | None:
        return self._views.get((namespace, name))

    def values(self) -> Iterable[NodeInstance]:
        return list(self._views.values())

    def __len__(self) -> int:
        return len(self._views)

    async def publish(self, view: NodeInstance) -> None:
        key = (view.namespace, view.name)
        meta = view.raw.get("metadata") or {}
        config_rv = view.configuration.metadata.resource_version if view.configuration else None
        stamp = (meta.get("resourceVersion"), view.device, config_rv)
        if self._stamps.get(key) == stamp:
            return
        self._stamps[key] = stamp
        self._views[key] = view
        for listener in list(self._listeners):
            try:
                await listener.instance_changed(view)
            except Exception:
                log.exception("instance listener failed on change of %s/%s", *key)

    async def remove(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        if self._views.pop(key, None) is None:
            return
        self._stamps.pop(key, None)
        for listener in list(self._listeners):
            try:
                await listener.instance_removed(namespace, name)
            except Exception:
                log.exception("instance listener failed on removal of %s/%s", *key)
