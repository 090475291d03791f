"""What every Akri device plugin serves to the kubelet (`v1beta1.DevicePlugin`).

Subclasses provide `device_health()` (kubelet id -> Healthy?), `allocate()` and
`preferred()`; this class streams the list on ListAndWatch (the full list immediately, then
again on every change; no periodic resend), answers GetDevicePluginOptions
(`get_preferred_allocation_available=True`, no PreStartContainer) and PreStartContainer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from grpclib import GRPCError, Status
from grpclib.server import Stream

from akri._proto import deviceplugin_grpc as dp_grpc
from akri._proto import deviceplugin_pb2 as dp
from akri.agent.plugins.slot_store import SlotStore
from akri.model.naming import resource_name

log = logging.getLogger(__name__)

HEALTHY = "Healthy"
UNHEALTHY = "Unhealthy"
# How long a slot this node released still counts as free when an older deviceUsage map
# (a watch event from before the release) shows it as ours.
RELEASE_TOMBSTONE_SECONDS = 30.0


class AllocationFailed(Exception):
    """Allocate cannot be honoured; carries the gRPC status the kubelet will see."""

    def __init__(self, code: Status, message: str) -> None:
        super().__init__(message)
        self.code = code


class DevicePluginBase(dp_grpc.DevicePluginBase):
    """The kubelet-facing half of a plugin: lists, options and the Allocate entry point."""

    def __init__(self, name: str, node: str, store: SlotStore, lock: asyncio.Lock) -> None:
        self.name = name
        self.resource_name = resource_name(name)
        self.node = node
        self.store = store
        # one lock per Configuration: its instance plugins and its configuration plugin share slots
        self.lock = lock
        self.closed = False
        self._version = 0
        self._changed = asyncio.Event()
        self._allocated_at: dict[str, float] = {}  # kubelet id -> last Allocate (monotonic)
        self.allocate_calls = 0

    # --- change notification --------------------------------------------------------------
    def notify(self) -> None:
        """The device list may have changed: wake every ListAndWatch stream."""
        self._version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    def close(self) -> None:
        self.closed = True
        self.notify()

    def device_health(self) -> dict[str, bool]:
        raise NotImplementedError

    # --- kubelet calls (grpclib handlers: one stream per call) -----------------------------
    async def GetDevicePluginOptions(self, stream: Stream[Any, Any]) -> None:
        await stream.recv_message()
        await stream.send_message(
            dp.DevicePluginOptions(pre_start_required=False, get_preferred_allocation_available=True)
        )

    async def ListAndWatch(self, stream: Stream[Any, Any]) -> None:
        await stream.recv_message()
        async for response in self.device_lists():
            await stream.send_message(response)

    async def device_lists(self) -> AsyncIterator[Any]:
        """The full list at once, then again whenever it changed (an Instance update that
        leaves every id's health as it was sends nothing); ends when the plugin closes."""
        last: dict[str, bool] | None = None
        while not self.closed:
            version = self._version
            health = self.device_health()
            if health != last:
                yield dp.ListAndWatchResponse(
                    devices=[dp.Device(ID=i, health=HEALTHY if ok else UNHEALTHY) for i, ok in health.items()]
                )
                last = health
            event = self._changed
            if self._version == version:
                await event.wait()

    async def PreStartContainer(self, stream: Stream[Any, Any]) -> None:
        request = await stream.recv_message()
        assert request is not None
        log.debug(
            "%s: PreStartContainer(%s) called although not requested",
            self.resource_name,
            list(request.devices_ids),
        )
        await stream.send_message(dp.PreStartContainerResponse())

    async def GetPreferredAllocation(self, stream: Stream[Any, Any]) -> None:
        request = await stream.recv_message()
        assert request is not None
        await stream.send_message(await self.preferred_allocation(request))

    async def Allocate(self, stream: Stream[Any, Any]) -> None:
        request = await stream.recv_message()
        assert request is not None
        try:
            response = await self.allocate_request(request)
        except AllocationFailed as exc:
            raise GRPCError(exc.code, str(exc)) from None
        await stream.send_message(response)

    # --- the calls' logic -----------------------------------------------------------------
    async def preferred_allocation(self, request: Any) -> Any:
        """PreferredAllocationRequest -> PreferredAllocationResponse."""
        responses = []
        async with self.lock:
            for creq in request.container_requests:
                ids = self.preferred(
                    list(creq.available_deviceIDs), list(creq.must_include_deviceIDs), creq.allocation_size
                )
                responses.append(dp.ContainerPreferredAllocationResponse(deviceIDs=ids))
        return dp.PreferredAllocationResponse(container_responses=responses)

    async def allocate_request(self, request: Any) -> Any:
        """AllocateRequest -> AllocateResponse; raises AllocationFailed."""
        self.allocate_calls += 1
        requests = [list(c.devices_ids) for c in request.container_requests]
        try:
            async with self.lock:
                responses = await self.allocate(requests)
        except AllocationFailed as exc:
            log.warning("%s: Allocate %s refused: %s", self.resource_name, requests, exc)
            raise
        now = time.monotonic()
        for ids in requests:
            for device_id in ids:
                self._allocated_at[device_id] = now
        self.notify()
        return dp.AllocateResponse(container_responses=responses)

    # --- for subclasses -------------------------------------------------------------------
    async def allocate(self, requests: list[list[str]]) -> list[Any]:
        """One ContainerAllocateResponse per request; raise AllocationFailed. Lock held."""
        raise NotImplementedError

    def preferred(self, available: list[str], must_include: list[str], size: int) -> list[str]:
        """Which `size` of `available` this node should get (must_include first). Lock held."""
        raise NotImplementedError

    def allocated_since(self, device_id: str, snapshot: float) -> bool:
        """Was `device_id` handed out at or after monotonic time `snapshot`?"""
        return self._allocated_at.get(device_id, float("-inf")) >= snapshot

    # --- for the reclaimer ----------------------------------------------------------------
    async def sync_in_use(self, in_use: set[str], snapshot: float) -> set[str]:
        """Align with the kubelet's view (`in_use` = ids of this resource it reports, taken at
        `snapshot`); returns the ids this node holds a slot for but the kubelet does not use."""
        raise NotImplementedError

    async def free(self, device_id: str, snapshot: float) -> bool:
        """Release the slot behind `device_id` unless it was allocated after `snapshot`."""
        raise NotImplementedError


def tombstones_alive(tombstones: dict[int, float], now: float | None = None) -> list[int]:
    """Slots released less than RELEASE_TOMBSTONE_SECONDS ago (and forget older ones)."""
    now = time.monotonic() if now is None else now
    for slot in [s for s, at in tombstones.items() if now - at > RELEASE_TOMBSTONE_SECONDS]:
        del tombstones[slot]
    return list(tombstones)


def rank_key(node: str, device_id: str) -> str:
    """A per-node pseudo-random order of ids: nodes racing for one Instance prefer different slots."""
    from akri import _fast

    return _fast.digest_hex(f"{node}/{device_id}")


def first_n(ordered: Sequence[str], must_include: Sequence[str], size: int) -> list[str]:
    out = [d for d in must_include]
    for d in ordered:
        if len(out) >= size:
            break
        if d not in out:
            out.append(d)
    return out[: max(size, len(must_include))]
