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


class ListenerFailed(Exception):
    """One or more listeners raised; each failure is logged with its traceback where it happened."""

    def __init__(self, message: str, failures: list[BaseException]) -> None:
        super().__init__(message)
        self.failures = failures


class NodeInstances:
    """The current set plus fan-out to listeners.

    A failing listener is logged and reported to the caller (`ListenerFailed`), which retries:
    a change is recorded as delivered only once every listener took it.
    """

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
        """Tell every listener about `view` unless they all heard this very state already.

        Raises `ListenerFailed` if one failed (after the others ran): the state is then NOT
        recorded as delivered, so the caller's retry (the work queue's back-off) delivers it
        again; listeners take a repeated state as a no-op.
        """
        key = (view.namespace, view.name)
        meta = view.raw.get("metadata") or {}
        config_rv = view.configuration.metadata.resource_version if view.configuration else None
        stamp = (meta.get("resourceVersion"), view.device, config_rv)
        if self._stamps.get(key) == stamp:
            return
        self._stamps.pop(key, None)  # not delivered until every listener took it
        self._views[key] = view
        failed: list[BaseException] = []
        for listener in list(self._listeners):
            try:
                await listener.instance_changed(view)
            except Exception as exc:
                log.exception("instance listener failed on change of %s/%s", *key)
                failed.append(exc)
        if failed:
            raise ListenerFailed(
                f"{len(failed)} instance listener(s) failed on change of {key[0]}/{key[1]}", failed)
        self._stamps[key] = stamp

    async def remove(self, namespace: str, name: str) -> None:
        """Tell every listener `namespace/name` is no longer this node's.

        Raises `ListenerFailed` if one failed; the Instance then stays in the set so that the
        caller's retry tells the listeners again (and the finalizer stays until they all took it).
        """
        key = (namespace, name)
        if key not in self._views:
            return
        self._stamps.pop(key, None)
        failed: list[BaseException] = []
        for listener in list(self._listeners):
            try:
                await listener.instance_removed(namespace, name)
            except Exception as exc:
                log.exception("instance listener failed on removal of %s/%s", *key)
                failed.append(exc)
        if failed:
            raise ListenerFailed(
                f"{len(failed)} instance listener(s) failed on removal of {namespace}/{name}", failed)
        self._views.pop(key, None)
