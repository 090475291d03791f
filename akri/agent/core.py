"""`AgentCore`: the cluster side of the agent, wired together and ready to embed in a process.

    settings = AgentSettings.from_env(offline_grace_seconds=300)  # reads AGENT_NODE_NAME etc.
    core = AgentCore(settings)                    # builds the Kubernetes client and the slot store
    plugins = PluginManager(settings.node_name, core.slot_store)
    core.add_instance_listener(plugins)           # before start: hears every Instance of this node
    async with plugins, core:                     # inside the running (uv)loop
        await core.wait_synced()
        await stop_event.wait()                   # run until told to stop

It owns: the Kubernetes client (`Kube`), the handler registry with embedded handlers, the
v0.Registration server on `<dir>/agent-registration.sock`, one discovery request per
Configuration, the Instance reconciler, the watch/work-queue loop, `slot_store` (deviceUsage
claims for the plugins) and `node_instances`, the hook through which the plugin side hears
about this node's Instances (`instance_changed(NodeInstance)` / `instance_removed(ns, name)`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from akri.agent.config_watch import AgentController
from akri.agent.discovery_requests import DiscoveryObserver, DiscoveryRequests, RequestTimings
from akri.agent.instances import DEFAULT_OFFLINE_GRACE_SECONDS, InstanceReconciler
from akri.agent.node_instances import InstanceListener, NodeInstances
from akri.agent.registration import HandlerRegistry, RegistrationServer
from akri.discovery.handler import DiscoveryHandler
from akri.kube.api import Kube
from akri.kube.slot_store import KubeSlotStore

log = logging.getLogger(__name__)

NODE_NAME_ENV = "AGENT_NODE_NAME"
DIRECTORY_ENV = "DISCOVERY_HANDLERS_DIRECTORY"
ENABLE_DEBUG_ECHO_ENV = "ENABLE_DEBUG_ECHO"


class AgentSetupError(ValueError):
    """Settings the agent cannot run with; the message names the setting."""


@dataclass
class AgentSettings:
    node_name: str
    discovery_handlers_directory: str | os.PathLike[str]
    kubeconfig: str | None = None
    #: a shared device that is no longer reported keeps its Instance this long (`--offline-grace-seconds`)
    offline_grace_seconds: float = DEFAULT_OFFLINE_GRACE_SECONDS
    #: after a discovery request (re)starts, wait this long at most for every endpoint's first list
    first_list_timeout: float = 30.0
    #: an unreachable endpoint's devices are kept this long (None: the offline grace period)
    handler_hold_seconds: float | None = None
    #: how long a broken standalone endpoint gets to accept connections before it is dropped
    reconnect_timeout: float = 3.0
    #: periodic re-reconcile of every Configuration, in case an event was lost
    resync_seconds: float = 600.0
    embedded_handlers: Sequence[DiscoveryHandler] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not self.node_name or ":" in self.node_name:
            raise AgentSetupError(
                f"{NODE_NAME_ENV}: a node name is required and may not contain ':' (got {self.node_name!r})"
            )
        if self.offline_grace_seconds < 0:
            raise AgentSetupError(
                f"offline grace period must not be negative, got {self.offline_grace_seconds}"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> AgentSettings:
        """Upstream's environment: AGENT_NODE_NAME, DISCOVERY_HANDLERS_DIRECTORY (both required),
        ENABLE_DEBUG_ECHO + DEBUG_ECHO_INSTANCES_SHARED (embedded debugEcho), KUBECONFIG."""
        env = os.environ if env is None else env
        values: dict[str, object] = {
            "node_name": env.get(NODE_NAME_ENV, ""),
            "discovery_handlers_directory": env.get(DIRECTORY_ENV, ""),
            "embedded_handlers": tuple(embedded_handlers_from_env(env)),
        }
        if not values["discovery_handlers_directory"] and "discovery_handlers_directory" not in overrides:
            raise AgentSetupError(f"{DIRECTORY_ENV} must be set (e.g. /var/lib/akri)")
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    def timings(self) -> RequestTimings:
        hold = self.offline_grace_seconds if self.handler_hold_seconds is None else self.handler_hold_seconds
        return RequestTimings(
            first_list_timeout=self.first_list_timeout,
            hold_seconds=hold,
            reconnect_timeout=self.reconnect_timeout,
        )


def embedded_handlers_from_env(env: Mapping[str, str]) -> list[DiscoveryHandler]:
    """Embedded debugEcho when ENABLE_DEBUG_ECHO is set (upstream's agent-full), shared per
    DEBUG_ECHO_INSTANCES_SHARED (required then)."""
    handlers: list[DiscoveryHandler] = []
    if ENABLE_DEBUG_ECHO_ENV in env:  # upstream: any value, even empty, enables it
        from akri.discovery.handlers.debug_echo import SHARED_ENV, DebugEchoHandler, parse_shared

        handlers.append(DebugEchoHandler(shared=parse_shared(env.get(SHARED_ENV))))
    return handlers


class AgentCore:
    """The cluster side of one agent. Construct anywhere; start inside the running event loop."""

    def __init__(
        self,
        settings: AgentSettings,
        *,
        kube: Kube | None = None,
        discovery_observer: DiscoveryObserver | None = None,
    ) -> None:
        self.settings = settings
        self.discovery_observer = discovery_observer  # hears handler answers (metrics)
        self.node_name = settings.node_name
        self._owns_kube = kube is None
        # the Kube client binds to no event loop before its first request: safe to build here,
        # so the plugin side can be handed `slot_store` before anything starts
        self.kube = kube if kube is not None else Kube.from_config(settings.kubeconfig)
        self.slot_store = KubeSlotStore(self.kube, self.node_name)
        self.registry = HandlerRegistry()
        self.node_instances = NodeInstances()
        self.registration_server = RegistrationServer(
            self.registry, Path(settings.discovery_handlers_directory)
        )
        self.requests: DiscoveryRequests | None = None
        self.controller: AgentController | None = None
        self._started = False
        self._stopped = False

    def add_instance_listener(self, listener: InstanceListener) -> None:
        """Hear `instance_changed(NodeInstance)` / `instance_removed(ns, name)` for this node's Instances.

        Add before `start()` to hear every Instance from the beginning; added later, read
        `node_instances.values()` for the current ones.
        """
        self.node_instances.add_listener(listener)

    async def start(self) -> None:
        if self._started:
            return
        if self._stopped:
            raise RuntimeError("a stopped AgentCore cannot start again; create a new one")
        s = self.settings
        for handler in s.embedded_handlers:
            self.registry.register_embedded(handler)
        reconciler = InstanceReconciler(
            self.kube,
            self.node_name,
            lambda: self._instances(),
            offline_grace_seconds=s.offline_grace_seconds,
        )
        self.requests = DiscoveryRequests(
            self.registry,
            self.kube,
            self.node_name,
            self._discovery_changed,
            timings=s.timings(),
            observer=self.discovery_observer,
        )
        self.controller = AgentController(
            self.kube,
            self.node_name,
            self.requests,
            reconciler,
            self.node_instances,
            resync_seconds=s.resync_seconds,
        )
        await self.registration_server.start()
        self.controller.start()
        self._started = True
        log.info(
            "agent core started on node %s (offline grace %.0f s)", self.node_name, s.offline_grace_seconds
        )

    def _instances(self) -> Iterator[dict[str, Any]]:
        assert self.controller is not None
        return self.controller.instances.values()

    def _discovery_changed(self, key: tuple[str, str]) -> None:
        if self.controller is not None:
            self.controller.discovery_changed(key)

    async def wait_synced(self) -> None:
        """Until the first list of Configurations and Instances is in."""
        assert self.controller is not None, "start() first"
        await self.controller.wait_synced()

    async def stop(self) -> None:
        """Stop serving and reconciling. Instances and finalizers stay: a restarted agent takes over."""
        if self._stopped:
            return
        self._stopped = True
        if self._started:
            self._started = False
            await self.registration_server.stop()
            if self.controller is not None:
                await self.controller.stop()
            if self.requests is not None:
                await self.requests.close()
            for handler in self.settings.embedded_handlers:
                try:
                    await handler.close()
                except Exception:
                    log.exception("closing embedded handler %s failed", handler.name)
        if self._owns_kube:
            await self.kube.close()

    async def __aenter__(self) -> AgentCore:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
