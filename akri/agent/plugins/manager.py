"""`PluginManager`: this node's device plugins, kept registered with the kubelet.

One instance-level plugin per Instance of this node and one configuration-level plugin per
Configuration that has at least one. The cluster side tells it what exists:

    manager = PluginManager(node_name, slot_store, directory="/var/lib/kubelet/device-plugins")
    await manager.start()
    await manager.apply_instance(InstanceView(...))   # create + register, or update
    await manager.remove_instance("config-a-359973")    # stop (and give back this node's slots)

or, equivalently, registers the manager as an `akri.agent.node_instances.InstanceListener`
(`instance_changed(NodeInstance)` / `instance_removed(namespace, name)`).

Kubelet restarts: the directory is watched with inotify (polled every `poll_interval` when
inotify is unavailable). When `kubelet.sock` is re-created (new change time) every plugin
registers again; when a plugin's own socket disappears it serves on a new socket and registers
again. A plugin whose registration failed is retried every `poll_interval`. The same check
runs every `resync_interval` regardless, in case an event was missed.

Registrations run concurrently (at most `max_registrations` in flight: each is a round trip to
the kubelet, which dials back), so a node given hundreds of Instances at once, or a restarted
kubelet, does not wait for them one by one. Each endpoint has its own lock: it is never served
or registered by two coroutines at once, and the kubelet's signature is read under that lock
right before the registration that records it. Removing a plugin takes the same lock, so it
waits for a registration in flight and nothing registers the plugin after its removal.
`apply_instance` still returns only after its plugins' registration was attempted, but it
holds no manager-wide lock while doing so.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from types import TracebackType
from typing import Any

from akri.agent.plugins.base import DevicePluginBase
from akri.agent.plugins.configuration_plugin import ConfigurationPlugin
from akri.agent.plugins.endpoint import PluginEndpoint, kubelet_signature
from akri.agent.plugins.instance_plugin import InstancePlugin
from akri.agent.plugins.slot_store import SlotStore
from akri.agent.plugins.socket_watch import DirectoryWatch
from akri.agent.plugins.view import InstanceView
from akri.runtime import stop_task

log = logging.getLogger(__name__)

DEFAULT_DEVICE_PLUGIN_DIR = "/var/lib/kubelet/device-plugins"
#: registrations in flight at once: enough to hide the kubelet's round trips, few enough not to
#: flood it (and this process) with connections after a kubelet restart
MAX_REGISTRATIONS = 32


class PluginManager:
    def __init__(
        self,
        node_name: str,
        store: SlotStore,
        *,
        directory: str | os.PathLike[str] = DEFAULT_DEVICE_PLUGIN_DIR,
        cdi_devices: bool = False,
        poll_interval: float = 0.5,
        resync_interval: float = 10.0,
        use_inotify: bool = True,
        max_registrations: int = MAX_REGISTRATIONS,
    ) -> None:
        if max_registrations < 1:
            raise ValueError(f"max_registrations: must be at least 1 (got {max_registrations})")
        if not node_name or ":" in node_name:
            raise ValueError(f"node_name: required, and may not contain ':' (got {node_name!r})")
        self.node = node_name
        self.store = store
        self.directory = Path(directory)
        self.cdi_devices = cdi_devices
        self.poll_interval = poll_interval
        self.resync_interval = resync_interval
        self.use_inotify = use_inotify
        self._instances: dict[str, InstancePlugin] = {}
        self._configs: dict[str, ConfigurationPlugin] = {}
        self._endpoints: dict[str, PluginEndpoint] = {}  # resource name -> endpoint
        self._lock = asyncio.Lock()  # structure: which plugins exist
        # serving/registering: one lock per live endpoint (an endpoint without one was stopped)
        self._endpoint_locks: dict[PluginEndpoint, asyncio.Lock] = {}
        self._registration_slots = asyncio.Semaphore(max_registrations)
        self._watch: DirectoryWatch | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_errors: dict[PluginEndpoint, str] = {}

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is not None:
            return
        self._watch = DirectoryWatch(self.directory, use_inotify=self.use_inotify)
        log.info("device plugins for node %s in %s (%s)", self.node, self.directory, self._watch.mode)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="akri-plugin-registration")

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The registration loop while started (it ends only by cancellation)."""
        return self._task

    async def stop(self) -> None:
        """Stop every plugin; slots stay claimed (a restarted agent adopts them)."""
        await stop_task(self._task, "the registration loop")
        self._task = None
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        async with self._lock:
            for endpoint in list(self._endpoints.values()):
                await self._retire(endpoint)
            self._endpoints.clear()
            self._instances.clear()
            self._configs.clear()

    async def __aenter__(self) -> PluginManager:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # --- what exists ----------------------------------------------------------------------
    def instance_plugin(self, name: str) -> InstancePlugin | None:
        return self._instances.get(name)

    def configuration_plugin(self, name: str) -> ConfigurationPlugin | None:
        return self._configs.get(name)

    def plugins(self) -> list[DevicePluginBase]:
        return [*self._instances.values(), *self._configs.values()]

    def endpoint(self, resource_name: str) -> PluginEndpoint | None:
        return self._endpoints.get(resource_name)

    # --- the cluster side's calls ---------------------------------------------------------
    async def apply_instance(self, view: InstanceView) -> None:
        """This node serves `view`: create and register its plugins, or update them.

        Returns once its plugins (the Instance's and its Configuration's) are registered or
        their registration failed (the loop retries it); concurrent calls register concurrently.
        """
        async with self._lock:
            plugin = self._instances.get(view.name)
            if plugin is not None and plugin.view.configuration != view.configuration:
                await self._remove(view.name, release_slots=True)
                plugin = None
            if plugin is not None:
                async with plugin.lock:
                    await plugin.update(view)
                return
            created: list[PluginEndpoint] = []
            config = self._configs.get(view.configuration)
            if config is None:
                config = ConfigurationPlugin(
                    view.configuration, self.node, self.store, cdi_devices=self.cdi_devices
                )
                self._configs[view.configuration] = config
                created.append(PluginEndpoint(config, self.directory))
            plugin = InstancePlugin(view, self.node, self.store, config.lock, cdi_devices=self.cdi_devices)
            async with config.lock:
                await plugin.update(view)
                config.attach(plugin)
            self._instances[view.name] = plugin
            created.insert(0, PluginEndpoint(plugin, self.directory))
            for endpoint in created:
                self._endpoints[endpoint.plugin.resource_name] = endpoint
                self._endpoint_locks[endpoint] = asyncio.Lock()
        # outside the manager lock: other Instances are created and registered meanwhile. Only
        # what this call created: a Configuration plugin another call is registering (or that
        # failed and the loop retries) must not be attempted again by every new Instance
        await self._ensure(created)

    async def remove_instance(self, name: str, *, release_slots: bool = True) -> None:
        """This node no longer serves Instance `name`: stop its plugin, give back its slots."""
        async with self._lock:
            await self._remove(name, release_slots=release_slots)

    async def _remove(self, name: str, *, release_slots: bool) -> None:
        plugin = self._instances.pop(name, None)
        if plugin is None:
            return
        endpoint = self._endpoints.pop(plugin.resource_name, None)
        if endpoint is not None:
            await self._retire(endpoint)
        else:
            plugin.close()
        if release_slots:
            await plugin.release_all()
        config = self._configs.get(plugin.view.configuration)
        if config is None:
            return
        async with config.lock:
            config.detach(name)
        if not config.instances:
            del self._configs[plugin.view.configuration]
            config_endpoint = self._endpoints.pop(config.resource_name, None)
            if config_endpoint is not None:
                await self._retire(config_endpoint)

    async def _retire(self, endpoint: PluginEndpoint) -> None:
        """Stop `endpoint` for good: after a registration in flight, never registered again."""
        # marked first: a registration still waiting for its turn then gives up
        lock = self._endpoint_locks.pop(endpoint, None)
        if lock is None:  # already retired
            return
        self._last_errors.pop(endpoint, None)
        async with lock:  # waits for a registration in flight
            await endpoint.stop()

    # InstanceListener (akri.agent.node_instances)
    async def instance_changed(self, node_instance: Any) -> None:
        await self.apply_instance(InstanceView.from_node_instance(node_instance))

    async def instance_removed(self, namespace: str, name: str) -> None:
        await self.remove_instance(name)

    # --- staying registered ---------------------------------------------------------------
    async def _ensure(self, endpoints: list[PluginEndpoint]) -> bool:
        """Serve/register these endpoints as needed, concurrently; True when all are registered."""
        if not endpoints:
            return True
        results = await asyncio.gather(*(self._ensure_one(ep) for ep in endpoints), return_exceptions=True)
        ok = True
        for endpoint, result in zip(endpoints, results, strict=True):
            if endpoint not in self._endpoint_locks:
                continue  # removed meanwhile: its errors no longer matter
            if isinstance(result, BaseException):
                message = f"{endpoint.plugin.resource_name}: cannot serve or register: {result}"
                # retried every poll interval: say it once per distinct problem
                log.log(
                    logging.DEBUG if self._last_errors.get(endpoint) == message else logging.WARNING, message
                )
                self._last_errors[endpoint] = message
                ok = False
                continue
            self._last_errors.pop(endpoint, None)
            if not result:
                ok = False
        return ok

    async def _ensure_one(self, endpoint: PluginEndpoint) -> bool:
        """`endpoint.ensure()` under the endpoint's lock, unless it is (being) removed."""
        lock = self._endpoint_locks.get(endpoint)
        if lock is None:
            return True  # removed: nothing to do
        # Queue for a slot BEFORE taking the endpoint's lock: a removal (which holds the manager
        # lock) then waits for at most the one registration in flight, never for the queue
        # ahead of it (with a hung kubelet: queue length / slots x the Register timeout).
        async with self._registration_slots:
            if self._endpoint_locks.get(endpoint) is not lock:
                return True  # removed while queued
            async with lock:
                if self._endpoint_locks.get(endpoint) is not lock:
                    return True  # removed while we waited for the registration in flight
                # read under the endpoint's lock, right before the registration that records it
                signature = kubelet_signature(self.directory)
                done = endpoint.registered_with == signature and endpoint.socket_alive()
                if signature is not None and done:
                    return True  # done by the call we waited for
                return await endpoint.ensure(signature)

    async def reconcile_registrations(self) -> bool:
        """Re-serve plugins whose socket vanished, re-register after a kubelet restart."""
        signature = kubelet_signature(self.directory)
        # one directory listing instead of a stat() per plugin: this runs on every socket
        # created in the directory, i.e. once per plugin while hundreds are being added
        try:
            present = set(os.listdir(self.directory))
        except OSError:
            present = set()
        pending = [
            ep
            for ep in self._endpoints.values()
            if ep.registered_with != signature or ep.socket_path is None or ep.socket_path.name not in present
        ]
        return await self._ensure(pending) and signature is not None

    async def _run(self) -> None:
        assert self._watch is not None
        while True:
            try:
                settled = await self.reconcile_registrations()
            except Exception:
                log.exception("device plugin registration check failed")
                settled = False
            if settled and self._watch.mode == "inotify":
                timeout = self.resync_interval
            else:
                timeout = self.poll_interval
            await self._watch.wait(timeout)
