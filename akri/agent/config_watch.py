"""The agent's reconcile loop: Configurations and Instances watched, one work queue.

Work items:
* ("config", ns, name): ensure this node's finalizer on the Configuration, its discovery request,
  and the Instances of what it discovered (`InstanceReconciler`); on deletion stop the request
  and take the finalizer off (the Instances then go by garbage collection).
* ("instance", ns, name): tell the plugin side about this node's Instance (changed / removed)
  and take this node's finalizer off an Instance it no longer serves or that is being deleted.

Triggers: Configuration events, discovery-request changes, Instance deletions (and this node
being taken out of an Instance by someone else), grace-period timers, and a periodic resync.
Failures back off per key (1, 2, 4, 8 … s); nothing here lets an error end the loop.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Hashable
from typing import Any

from akri.agent.discovery_requests import DiscoveryRequests
from akri.agent.instances import InstanceReconciler, is_terminating, nodes_of, owned_by
from akri.agent.node_instances import NodeInstance, NodeInstances
from akri.discovery.device import Device
from akri.kube.api import Kube, has_finalizer
from akri.kube.errors import describe
from akri.kube.resources import Configuration as ConfigurationRes
from akri.kube.resources import Instance as InstanceRes
from akri.kube.watch import Informer, WatchEvent
from akri.model.configuration import Configuration
from akri.model.errors import ValidationError
from akri.model.instance import Instance
from akri.retry import BackoffTracker
from akri.workqueue import WorkQueue

log = logging.getLogger(__name__)

CONFIG = "config"
INSTANCE = "instance"

#: a work item returns this when it needs no further runs (its object is gone)
NO_REQUEUE = math.inf


class AgentController:
    def __init__(
        self,
        kube: Kube,
        node_name: str,
        requests: DiscoveryRequests,
        reconciler: InstanceReconciler,
        node_instances: NodeInstances,
        *,
        resync_seconds: float = 600.0,
        workers: int = 2,
    ) -> None:
        self.kube = kube
        self.node = node_name
        self.requests = requests
        self.reconciler = reconciler
        self.node_instances = node_instances
        self.configs = Informer(kube, ConfigurationRes)
        self.instances = Informer(kube, InstanceRes)
        self.queue = WorkQueue()
        self.backoff = BackoffTracker()
        self.resync_seconds = resync_seconds
        self.workers = workers
        self._serving: set[tuple[str, str]] = set()  # Instances that listed this node when last seen
        self._known_devices: dict[tuple[str, str], Device] = {}  # (ns, instance) -> last reported device
        self._tasks: list[asyncio.Task[None]] = []

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._pump(self.configs, self._on_config_event), name="watch-configurations"),
            asyncio.create_task(self._pump(self.instances, self._on_instance_event), name="watch-instances"),
            asyncio.create_task(self.queue.run(self._handle, self.workers), name="agent-reconcile"),
        ]

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        """The watch and reconcile tasks (they end only by cancellation; the agent supervises them)."""
        return list(self._tasks)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def wait_synced(self) -> None:
        await self.configs.synced.wait()
        await self.instances.synced.wait()

    def discovery_changed(self, key: tuple[str, str]) -> None:
        """Callback of the discovery requests: the devices of a Configuration changed."""
        self.queue.add((CONFIG, *key))

    # --- events ----------------------------------------------------------------------------

    async def _pump(self, informer: Informer, handle: Any) -> None:
        async for event in informer.events():
            try:
                handle(event)
            except Exception:
                log.exception("cannot handle %s event", event.type)

    def _on_config_event(self, event: WatchEvent) -> None:
        self.queue.add((CONFIG, *event.key))

    def _on_instance_event(self, event: WatchEvent) -> None:
        ns, name = event.key
        obj = event.obj
        self.queue.add((INSTANCE, ns, name))
        serving = event.type != "DELETED" and self.node in nodes_of(obj) and not is_terminating(obj)
        was_serving = (ns, name) in self._serving
        if serving:
            self._serving.add((ns, name))
        else:
            self._serving.discard((ns, name))
        config_name = (obj.get("spec") or {}).get("configurationName")
        if config_name and (event.type == "DELETED" or (was_serving and not serving)):
            # someone else deleted it or took this node out: decide again whether it should be
            self.queue.add((CONFIG, ns, config_name))

    # --- work ------------------------------------------------------------------------------

    async def _handle(self, key: Hashable) -> None:
        """Run one work item; schedule its next run (resync, grace timer, or back-off on error)."""
        try:
            delay = await self._process(key)
        except Exception as exc:
            delay = self.backoff.failure(key)
            log.warning("%s %s/%s failed (%s); retrying in %.0f s", *key, describe(exc), delay)  # type: ignore[misc]
            log.debug("failure of %s", key, exc_info=True)
        else:
            self.backoff.success(key)
            if delay is None:
                delay = self.resync_seconds
        if delay != NO_REQUEUE:
            self.queue.add_after(key, delay)

    async def _process(self, key: Hashable) -> float | None:
        kind, ns, name = key  # type: ignore[misc]
        if kind == CONFIG:
            return await self._reconcile_config(ns, name)
        return await self._reconcile_instance(ns, name)

    async def _reconcile_config(self, ns: str, name: str) -> float | None:
        obj = self.configs.get(ns, name)
        if obj is None:
            if self.configs.synced.is_set():
                await self._forget_config(ns, name)
            return NO_REQUEUE
        try:
            config = Configuration.from_dict(obj)
        except ValidationError as exc:
            log.error("configuration %s/%s is invalid, ignoring it until it changes: %s", ns, name, exc)
            return NO_REQUEUE
        if is_terminating(obj):
            await self._forget_config(ns, name)
            if has_finalizer(obj, self.node):
                await self.kube.remove_finalizer(ConfigurationRes, name, ns, self.node, current=obj)
                log.info(
                    "configuration %s/%s deleted: discovery stopped, finalizer %s removed",
                    ns,
                    name,
                    self.node,
                )
            return NO_REQUEUE
        if not has_finalizer(obj, self.node):
            await self.kube.add_finalizer(ConfigurationRes, name, ns, self.node, current=obj)
        request = await self.requests.ensure(config)
        snapshot = request.snapshot()
        for found in snapshot.devices:
            self._known_devices[(ns, found.instance_name)] = found.device
        requeue = await self.reconciler.reconcile(config, snapshot)
        # devices (mounts, properties) may have changed without the Instance changing
        backing: set[str] = set()
        for inst in self.instances.values():
            if owned_by(inst, config):
                backing.add(inst["metadata"]["name"])
                self.queue.add((INSTANCE, ns, inst["metadata"]["name"]))
        # device ids churn (an ONVIF xaddr with DHCP, a re-plugged udev device): forget the
        # devices that are neither discovered, held (handler restarting) nor behind an Instance
        keep = backing | snapshot.held | {found.instance_name for found in snapshot.devices}
        for key in self._device_keys(ns, name):
            if key[1] not in keep:
                del self._known_devices[key]
        return requeue

    def _device_keys(self, ns: str, config_name: str) -> list[tuple[str, str]]:
        # Instance names are `<configuration>-<digest>`, the digest without '-'
        return [k for k in self._known_devices if k[0] == ns and k[1].rpartition("-")[0] == config_name]

    async def _forget_config(self, ns: str, name: str) -> None:
        for key in self._device_keys(ns, name):
            del self._known_devices[key]
        await self.requests.terminate((ns, name))
        self.reconciler.forget((ns, name))
        self.backoff.forget((CONFIG, ns, name))

    async def _reconcile_instance(self, ns: str, name: str) -> float | None:
        obj = self.instances.get(ns, name)
        if obj is None:
            if self.instances.synced.is_set():
                await self.node_instances.remove(ns, name)
            return NO_REQUEUE
        serving = self.node in nodes_of(obj) and not is_terminating(obj)
        if serving:
            await self._publish(ns, name, obj)
            return NO_REQUEUE
        await self.node_instances.remove(ns, name)
        if has_finalizer(obj, self.node):
            # the plugin is stopped (awaited above); now the Instance may go
            await self.kube.remove_finalizer(InstanceRes, name, ns, self.node, current=obj)
            log.info("instance %s/%s: finalizer %s removed", ns, name, self.node)
        # _known_devices is NOT forgotten here: this item may run on an older event while the
        # Configuration's reconcile (which just recorded the device) is joining the Instance;
        # forgetting it would publish the joined Instance without its device (no free slot
        # offered) until the next resync. It goes with the Configuration's next reconcile (once
        # neither discovered nor behind an Instance) or with the Configuration (_forget_config).
        return NO_REQUEUE

    async def _publish(self, ns: str, name: str, obj: dict[str, Any]) -> None:
        try:
            instance = Instance.from_dict(obj)
        except ValidationError as exc:
            log.error("instance %s/%s is invalid, not serving it: %s", ns, name, exc)
            return
        config_obj = self.configs.get(ns, instance.spec.configuration_name)
        config: Configuration | None = None
        if config_obj is not None:
            try:
                config = Configuration.from_dict(config_obj)
            except ValidationError:
                config = None
        device = self._known_devices.get((ns, name))
        await self.node_instances.publish(NodeInstance(instance, device, config, obj))
