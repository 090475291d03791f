"""Where slot claims are written: the `SlotStore` protocol, and an in-memory store for tests.

A claim is one deviceUsage entry of an Instance: key `<instance>-<i>`, value `<node>`
(instance-level) or `C:<vdev>:<node>` (configuration-level). The device plugins decide WHICH
slot to take; the store only makes each write safe against other nodes writing the same
Instance. The cluster side implements it on the Kubernetes API (`akri.kube.slot_store`) with
optimistic concurrency on `metadata.resourceVersion`:

    claim(ns, instance, slot_id, value)
        read the Instance; if deviceUsage[slot_id] is absent, "" or already `value` (or held
        by this same node), write `value` with the resourceVersion read; on 409 re-read and
        decide again. True = this node holds the slot now; False = another node holds it (or
        the slot/Instance does not exist). Raise only when the store cannot tell (API down):
        the plugin then fails the Allocate with UNAVAILABLE instead of guessing.

    release(ns, instance, slot_id, expected_value)
        remove deviceUsage[slot_id] if it still equals `expected_value` (never frees a claim
        another node made meanwhile). Returns True when the slot is no longer ours.

`MemorySlotStore` is the same contract on a dict, shared by several simulated nodes: each
write bumps a version, a claim re-reads after an optional `latency` and retries when the
version moved (the 409 path), and every change is delivered to subscribers after an optional
`watch_delay` — the lagging watch events a real agent sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from akri.model.naming import slot_index
from akri.model.usage import parse_usage

log = logging.getLogger(__name__)


@runtime_checkable
class SlotStore(Protocol):
    async def claim(self, namespace: str, instance: str, slot_id: str, usage_value: str) -> bool: ...

    async def release(self, namespace: str, instance: str, slot_id: str, expected_value: str) -> bool: ...


class SlotStoreUnavailable(Exception):
    """The store could not decide (a MemorySlotStore set `unavailable`, or an API error)."""


def _holder(value: str) -> str | None:
    try:
        return parse_usage(value).node
    except ValueError:
        return None


@dataclass
class _StoredInstance:
    capacity: int
    usage: dict[str, str] = field(default_factory=dict)
    version: int = 0


Subscriber = Callable[[str, str, int, dict[str, str]], Awaitable[None] | None]


class MemorySlotStore:
    """Instances' deviceUsage in memory, with resourceVersion-style compare-and-swap."""

    def __init__(self, *, latency: float = 0.0, watch_delay: float = 0.0) -> None:
        self.latency = latency
        self.watch_delay = watch_delay
        self.unavailable = False
        self.writes = 0
        self.conflicts = 0  # compare-and-swap retries (the 409s of the real store)
        self._instances: dict[tuple[str, str], _StoredInstance] = {}
        self._subscribers: list[Subscriber] = []
        self._tasks: set[asyncio.Task[None]] = set()

    # --- test set-up and inspection -------------------------------------------------------
    def put_instance(
        self, namespace: str, name: str, capacity: int, usage: dict[str, str] | None = None
    ) -> None:
        inst = self._instances.get((namespace, name))
        if inst is None:
            inst = self._instances[(namespace, name)] = _StoredInstance(capacity)
        inst.capacity = capacity
        if usage is not None:
            inst.usage = dict(usage)
        self._changed(namespace, name, inst)

    def remove_instance(self, namespace: str, name: str) -> None:
        self._instances.pop((namespace, name), None)

    def device_usage(self, namespace: str, name: str) -> dict[str, str]:
        return dict(self._instances[(namespace, name)].usage)

    def capacity(self, namespace: str, name: str) -> int:
        return self._instances[(namespace, name)].capacity

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """`callback(namespace, name, capacity, usage)` after every change (the watch)."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _changed(self, namespace: str, name: str, inst: _StoredInstance) -> None:
        inst.version += 1
        snapshot = (namespace, name, inst.capacity, dict(inst.usage))
        for callback in list(self._subscribers):
            task = asyncio.get_running_loop().create_task(self._deliver(callback, snapshot))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, callback: Subscriber, snapshot: tuple[str, str, int, dict[str, str]]) -> None:
        if self.watch_delay:
            await asyncio.sleep(self.watch_delay)
        result = callback(*snapshot)
        if result is not None:
            await result

    # --- the SlotStore contract -----------------------------------------------------------
    async def claim(self, namespace: str, instance: str, slot_id: str, usage_value: str) -> bool:
        if self.unavailable:
            raise SlotStoreUnavailable("slot store unavailable")
        node = _holder(usage_value)
        while True:
            inst = self._instances.get((namespace, instance))
            if inst is None:
                return False
            version = inst.version
            current = inst.usage.get(slot_id, "")
            if self.latency:
                await asyncio.sleep(self.latency)  # the read -> write window of a real API call
            if self._instances.get((namespace, instance)) is not inst or inst.version != version:
                self.conflicts += 1
                continue
            try:
                in_range = slot_index(slot_id) < inst.capacity and slot_id.startswith(instance + "-")
            except ValueError:
                in_range = False
            if not in_range:
                return False
            if current == usage_value:
                return True
            if current != "" and _holder(current) != node:
                return False
            inst.usage[slot_id] = usage_value
            self.writes += 1
            self._changed(namespace, instance, inst)
            return True

    async def release(self, namespace: str, instance: str, slot_id: str, expected_value: str) -> bool:
        if self.unavailable:
            raise SlotStoreUnavailable("slot store unavailable")
        while True:
            inst = self._instances.get((namespace, instance))
            if inst is None:
                return True
            version = inst.version
            if self.latency:
                await asyncio.sleep(self.latency)
            if self._instances.get((namespace, instance)) is not inst or inst.version != version:
                self.conflicts += 1
                continue
            current = inst.usage.get(slot_id, "")
            if current == expected_value and slot_id in inst.usage:
                del inst.usage[slot_id]
                self.writes += 1
                self._changed(namespace, instance, inst)
            return current in ("", expected_value)
