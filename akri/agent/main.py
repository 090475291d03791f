"""`akri agent` as a process: the cluster side, the device plugins, the slot reclaimer and
/metrics, wired together and run until SIGTERM/SIGINT.

Stopping leaves everything in the cluster as it is (Instances, finalizers, slot claims): a
restarted agent adopts them, so a rolling update of the DaemonSet does not churn Instances or
broker Pods. A lost API server or kubelet is not fatal either: watches resume, writes back
off and retry, plugins register again when `kubelet.sock` comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable
from dataclasses import dataclass

from akri.agent.core import AgentCore, AgentSettings
from akri.agent.metrics import DEFAULT_PORT, AgentMetrics, MetricsServer
from akri.agent.node_instances import NodeInstance
from akri.agent.plugins.manager import DEFAULT_DEVICE_PLUGIN_DIR, PluginManager
from akri.agent.plugins.reclaimer import (
    DEFAULT_POD_RESOURCES_SOCKET,
    SLOT_GRACE_PERIOD,
    SLOT_RECLAIM_INTERVAL,
    SlotReclaimer,
)

log = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """The agent cannot start with these settings (the message names the setting)."""


class TaskFailed(RuntimeError):
    """A background task of the agent ended on its own (a bug or an unexpected error).

    Its loops catch what they expect, so this means the agent is no longer doing its job:
    the process ends with a non-zero exit and Kubernetes restarts it (upstream ends the
    process on any task failure, too).
    """


@dataclass
class AgentOptions:
    """Everything `akri agent` runs with; `settings` is the cluster side's part."""

    settings: AgentSettings
    metrics_host: str = "0.0.0.0"
    metrics_port: int = DEFAULT_PORT  # 0 picks a free port (logged)
    device_plugins_dir: str = DEFAULT_DEVICE_PLUGIN_DIR
    pod_resources_socket: str = DEFAULT_POD_RESOURCES_SOCKET
    reclaim_interval: float = SLOT_RECLAIM_INTERVAL
    reclaim_grace: float = SLOT_GRACE_PERIOD


class InstanceLog:
    """One INFO line when this node starts and stops serving an Instance (not on every update)."""

    def __init__(self) -> None:
        self._serving: set[tuple[str, str]] = set()

    async def instance_changed(self, view: NodeInstance) -> None:
        key = (view.namespace, view.name)
        if key in self._serving:
            return
        self._serving.add(key)
        spec = view.instance.spec
        log.info("instance %s/%s added on this node (configuration %s, capacity %d, %s)", *key,
                 spec.configuration_name, spec.capacity, "shared" if spec.shared else "local")

    async def instance_removed(self, namespace: str, name: str) -> None:
        if (namespace, name) in self._serving:
            self._serving.discard((namespace, name))
            log.info("instance %s/%s removed from this node", namespace, name)


class Agent:
    """The agent's parts. `run(stop)` serves until `stop` is set."""

    def __init__(self, options: AgentOptions) -> None:
        self.options = options
        settings = options.settings
        self.metrics = AgentMetrics(settings.node_name)
        self.core = AgentCore(settings, discovery_observer=self.metrics)
        self.metrics.watch_instances(self.core.node_instances.values)
        self.plugins = PluginManager(settings.node_name, self.core.slot_store,
                                     directory=options.device_plugins_dir)
        self.core.add_instance_listener(self.plugins)
        self.core.add_instance_listener(InstanceLog())
        self.reclaimer = SlotReclaimer(self.plugins.plugins,
                                       pod_resources_socket=options.pod_resources_socket,
                                       interval=options.reclaim_interval, grace=options.reclaim_grace)
        self.metrics_server = MetricsServer(self.metrics.registry, options.metrics_host, options.metrics_port)

    async def run(self, stop: asyncio.Event) -> None:
        opts = self.options
        # first, so that a taken port fails the start before anything touches the cluster
        try:
            await self.metrics_server.start()
        except OSError as exc:
            raise StartupError(f"METRICS_PORT (--metrics-port) {opts.metrics_port} on {opts.metrics_host}: "
                               f"{exc.strerror or exc}") from exc
        try:
            async with self.plugins, self.core:
                await self.reclaimer.start()
                try:
                    log.info("agent on node %s: handlers register at %s; device plugins in %s; "
                             "pod resources at %s", opts.settings.node_name,
                             self.core.registration_server.socket_path, opts.device_plugins_dir,
                             opts.pod_resources_socket)
                    failed = self._supervise()
                    await _until_first(self.core.wait_synced(), stop.wait(), asyncio.shield(failed))
                    if not stop.is_set() and not failed.done():
                        log.info("agent ready: Configurations and Instances synced")
                        await _until_first(stop.wait(), asyncio.shield(failed))
                    if failed.done():
                        log.error("agent stopping after a failure; Instances and slot claims stay "
                                  "for the next agent")
                        raise failed.result()
                    log.info("agent stopping; Instances and slot claims stay for the next agent")
                finally:
                    await self.reclaimer.stop()
        finally:
            await self.metrics_server.stop()

    def _background_tasks(self) -> list[asyncio.Task[None]]:
        tasks = list(self.core.controller.tasks) if self.core.controller is not None else []
        tasks += [t for t in (self.plugins.task, self.reclaimer.task) if t is not None]
        return tasks

    def _supervise(self) -> asyncio.Future[TaskFailed]:
        """A future that gets a `TaskFailed` when any background task ends other than by
        cancellation (which is how `stop()` ends them)."""
        failed: asyncio.Future[TaskFailed] = asyncio.get_running_loop().create_future()

        def ended(task: asyncio.Task[None]) -> None:
            if task.cancelled() or failed.done():
                return
            exc = task.exception()
            if exc is None:
                log.error("agent task %s ended unexpectedly", task.get_name())
                error = TaskFailed(f"agent task {task.get_name()} ended unexpectedly")
            else:
                log.error("agent task %s failed", task.get_name(), exc_info=exc)
                error = TaskFailed(f"agent task {task.get_name()} failed: {type(exc).__name__}: {exc}")
                error.__cause__ = exc
            failed.set_result(error)

        for task in self._background_tasks():
            task.add_done_callback(ended)
        return failed


async def _until_first(*aws: Awaitable[object]) -> None:
    """Wait until one of `aws` is done; cancel the others."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def run_until_signalled(options: AgentOptions) -> None:
    """Build the agent inside the running loop and serve until SIGTERM/SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await Agent(options).run(stop)
