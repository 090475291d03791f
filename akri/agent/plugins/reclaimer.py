"""Give back slots whose containers are gone (spec §3.4, fixed).

The device-plugin API has no "deallocate": the kubelet never says when a container stops
using a device. So every `interval` seconds the reclaimer asks the kubelet's pod-resources
service which device ids its containers hold (`v1.PodResourcesLister/List`), compares with
the ids this node holds slots for, and frees a slot once its id has been unused for `grace`
seconds. Unlike upstream, ids are compared as the kubelet reports them (`instance-a-1`,
without the `akri.sh/` prefix) and per resource, so instance-level slots are freed too, not
only configuration-level ones.

Each round also lets the plugins re-align with the kubelet (`sync_in_use`): after an agent
restart, which slot backs which kubelet id is rebuilt from this list.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

from grpclib.client import Channel

from akri._proto import podresources_grpc as pr_grpc
from akri._proto import podresources_pb2 as pr
from akri.agent.plugins.base import DevicePluginBase
from akri.grpc_client import RPC_ERRORS, describe, within
from akri.model.constants import AKRI_PREFIX
from akri.runtime import stop_task

log = logging.getLogger(__name__)

DEFAULT_POD_RESOURCES_SOCKET = "/var/lib/kubelet/pod-resources/kubelet.sock"
SLOT_RECLAIM_INTERVAL = 10.0
SLOT_GRACE_PERIOD = 20.0
LIST_TIMEOUT = 5.0
START_MESSAGE = "reclaiming unused slots - start"  # the e2e suite greps the agent log for it


class SlotReclaimer:
    def __init__(
        self,
        plugins: Callable[[], Iterable[DevicePluginBase]],
        *,
        pod_resources_socket: str | os.PathLike[str] = DEFAULT_POD_RESOURCES_SOCKET,
        interval: float = SLOT_RECLAIM_INTERVAL,
        grace: float = SLOT_GRACE_PERIOD,
    ) -> None:
        """`plugins` returns the current plugins (e.g. `PluginManager.plugins`)."""
        if interval <= 0 or grace < 0:
            raise ValueError(f"reclaimer: interval must be > 0 and grace >= 0 (got {interval}, {grace})")
        self.plugins = plugins
        self.socket = Path(pod_resources_socket)
        self.interval = interval
        self.grace = grace
        self.stalled: dict[tuple[str, str], float] = {}  # (resource, id) -> first seen unused
        self.freed: list[tuple[str, str]] = []
        self.rounds = 0
        self._unreachable = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name="akri-slot-reclaimer")

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The reclaim loop while started (it ends only by cancellation)."""
        return self._task

    async def stop(self) -> None:
        await stop_task(self._task, "the reclaim loop")
        self._task = None

    async def run(self) -> None:
        while True:
            try:
                await self.reclaim_once()
            except Exception:  # never let one bad round end the loop
                log.exception("slot reclaim round failed")
            await asyncio.sleep(self.interval)

    async def list_in_use(self) -> dict[str, set[str]]:
        """resource -> device ids the kubelet's containers hold (akri.sh/ resources only)."""
        async with Channel(path=str(self.socket)) as channel:
            response = await within(
                LIST_TIMEOUT, pr_grpc.PodResourcesListerStub(channel).List(pr.ListPodResourcesRequest())
            )
        in_use: dict[str, set[str]] = defaultdict(set)
        for pod in response.pod_resources:
            for container in pod.containers:
                for devices in container.devices:
                    if devices.resource_name.startswith(AKRI_PREFIX + "/"):
                        in_use[devices.resource_name].update(devices.device_ids)
        return in_use

    async def reclaim_once(self, now: float | None = None) -> list[tuple[str, str]]:
        """One round; returns the (resource, id) pairs freed."""
        log.info(START_MESSAGE)
        self.rounds += 1
        snapshot = time.monotonic()
        try:
            in_use = await self.list_in_use()
        except RPC_ERRORS as exc:
            if not self._unreachable:
                detail = describe(exc)
                log.warning(
                    "kubelet pod-resources at %s unreachable (%s): skipping slot reclaim until it answers",
                    self.socket,
                    detail,
                )
                self._unreachable = True
            return []
        if self._unreachable:
            log.info("kubelet pod-resources at %s answers again", self.socket)
            self._unreachable = False
        now = time.monotonic() if now is None else now
        candidates: set[tuple[str, str]] = set()
        plugins = {p.resource_name: p for p in self.plugins()}
        for resource, plugin in plugins.items():
            if plugin.closed:
                continue
            unused = await plugin.sync_in_use(in_use.get(resource, set()), snapshot)
            candidates.update((resource, device_id) for device_id in unused)
        for key in [k for k in self.stalled if k not in candidates]:
            del self.stalled[key]
        freed = []
        for key in sorted(candidates):
            first = self.stalled.setdefault(key, now)
            if now - first < self.grace:
                continue
            plugin = plugins[key[0]]
            try:
                done = await plugin.free(key[1], snapshot)
            except Exception as exc:  # store unreachable: stays stalled, retried next round
                log.warning("freeing %s of %s failed: %s", key[1], key[0], exc)
                continue
            del self.stalled[key]
            if done:
                freed.append(key)
        self.freed.extend(freed)
        return freed
