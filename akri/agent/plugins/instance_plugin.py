"""The instance-level device plugin: resource `akri.sh/<instance>`, kubelet ids `<instance>-<i>`.

Health (spec §3.2, per id): Healthy when the id is in use on this node or stands for a slot
this node could still take; Unhealthy when another node or a configuration-level allocation
holds it. Other nodes' claims turn Unhealthy as soon as a deviceUsage map shows them, and
every map rebuilds the whole vector (absent = free), capacity changes included.

Allocate never fails while a slot of the Instance is free. The kubelet picks the ids, and two
nodes' kubelets can pick the same id before either sees the other's claim. The plugin answers
`GetPreferredAllocation` with ids whose own slot is free, in a per-node order so that racing
nodes prefer different slots; when the kubelet still hands it an id whose slot another node
has just won, the id is not refused: this node claims another free slot and remembers that
this kubelet id is backed by it (`SlotTable.bind`). Slots are interchangeable shares of one
device, so what matters is that this node holds exactly one slot per id its kubelet uses; the
kubelet keeps its id, the Instance records one more slot for this node. Only when no slot is
free does Allocate fail (RESOURCE_EXHAUSTED).

Which slot backs which id is rebuilt after a restart from the kubelet's pod-resources list
(`sync_in_use`, called by the reclaimer): ids in use without a slot take over slots this
node holds for ids the kubelet no longer uses, or claim a free one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from grpclib import Status

from akri import _fast
from akri.agent.plugins.base import (
    AllocationFailed,
    DevicePluginBase,
    first_n,
    rank_key,
    tombstones_alive,
)
from akri.agent.plugins.responses import container_response
from akri.agent.plugins.slot_store import SlotStore
from akri.agent.plugins.view import InstanceView

log = logging.getLogger(__name__)

FREE = 0  # SlotTable.state() values
# a deviceUsage map that disagrees with our own claims is usually just older than our write
CONFLICT_SETTLE_SECONDS = 1.0


class InstancePlugin(DevicePluginBase):
    def __init__(
        self,
        view: InstanceView,
        node: str,
        store: SlotStore,
        lock: asyncio.Lock,
        *,
        cdi_devices: bool = False,
    ) -> None:
        super().__init__(view.name, node, store, lock)
        self.view = view
        self.cdi_devices = cdi_devices
        self.table = _fast.SlotTable(view.name, node, view.capacity)
        self.listeners: list[Any] = []  # configuration plugin(s) to tell about slot changes
        self._released: dict[int, float] = {}
        self._problems: list[str] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._ranks: dict[int, tuple[int, str]] = {}
        self._verifying = False

    # --- cluster updates ------------------------------------------------------------------
    async def update(self, view: InstanceView) -> None:
        """A new version of the Instance (lock held): resize, reload deviceUsage, push."""
        if view.nodes != self.view.nodes:
            self._ranks.clear()
        self.view = view
        if view.capacity != self.table.capacity:
            before = self.table.owned()
            dropped = self.table.resize(view.capacity)
            self._ranks.clear()
            log.info("%s: capacity now %d", view.name, view.capacity)
            for slot in dropped:  # past the end: nobody can claim them, give them back
                slot_id = self.table.slot_id(slot)
                await self._release_quietly(slot_id, before[slot_id])
        problems, conflicts = self.table.load(view.device_usage, tombstones_alive(self._released))
        if problems != self._problems:
            for p in problems:
                log.warning("Instance %s/%s: %s", view.namespace, view.name, p)
            self._problems = problems
        if conflicts and not self._verifying:
            self._verifying = True
            self._spawn(self._verify())
        self.changed()

    async def _release_quietly(self, slot_id: str, value: str) -> None:
        try:
            await self.store.release(self.view.namespace, self.view.name, slot_id, value)
        except Exception as exc:
            log.info("%s: could not release %s: %s", self.view.name, slot_id, exc)

    def changed(self) -> None:
        self.notify()
        for listener in self.listeners:
            listener.instance_slots_changed(self)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _disputed(self) -> list[int]:
        """Slots this node holds whose value in the latest deviceUsage map differs."""
        usage = self.view.device_usage
        table = self.table
        return [
            s
            for s in range(table.capacity)
            if table.owned_by_me(s) and usage.get(table.slot_id(s), "") != table.value(s)
        ]

    async def _verify(self) -> None:
        """The cluster disagrees about slots we hold. Usually the map was older than our own
        write and the next one agrees, so wait a moment; if the disagreement stays, ask the
        store (an idempotent re-claim: True if the slot is ours or free again)."""
        try:
            await asyncio.sleep(CONFLICT_SETTLE_SECONDS)
            async with self.lock:
                lost = []
                for slot in self._disputed():
                    value = self.table.value(slot)
                    slot_id = self.table.slot_id(slot)
                    try:
                        ok = await self.store.claim(self.view.namespace, self.view.name, slot_id, value)
                    except Exception as exc:
                        log.info("%s: cannot verify slot %s yet: %s", self.view.name, slot_id, exc)
                        continue
                    if ok:
                        log.info(
                            "%s: deviceUsage had lost this node's claim on %s: restored",
                            self.view.name,
                            slot_id,
                        )
                    else:
                        lost.append(slot_id)
                        self.table.release(slot)
                        self.table.mark_taken(slot)
                if lost:
                    # the reclaimer's next sync backs ids the kubelet still uses with other slots
                    log.warning(
                        "%s: slots %s this node held were taken by another node", self.view.name, lost
                    )
                    self.changed()
        finally:
            self._verifying = False

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        super().close()

    # --- what the kubelet sees ------------------------------------------------------------
    def device_health(self) -> dict[str, bool]:
        health = self.table.health()
        if not self.view.device_ready:  # device not seen yet: only ids already in use stay Healthy
            bound = set(self.table.bound_tokens())
            health = [h and t in bound for t, h in enumerate(health)]
        return {self.table.slot_id(t): h for t, h in enumerate(health)}

    def _token(self, device_id: str) -> int:
        prefix = self.view.name + "-"
        tail = device_id[len(prefix) :] if device_id.startswith(prefix) else ""
        if not (tail.isascii() and tail.isdigit()) or (len(tail) > 1 and tail[0] == "0"):
            return -1
        t = int(tail)
        return t if t < self.table.capacity else -1

    def _rank(self, slot: int) -> tuple[int, str]:
        """This node's preference for a slot (lower first).

        Nodes sharing the device start at evenly spaced offsets (k * capacity / len(nodes),
        k = this node's place in spec.nodes), so while each has slots left in its own stretch
        racing nodes never prefer the same one; ties are broken by a per-node hash.
        """
        r = self._ranks.get(slot)
        if r is None:
            cap = max(self.table.capacity, 1)
            nodes = sorted(set(self.view.nodes))
            offset = (nodes.index(self.node) * cap) // len(nodes) if self.node in nodes else 0
            r = self._ranks[slot] = ((slot - offset) % cap, rank_key(self.node, self.table.slot_id(slot)))
        return r

    def preferred(self, available: list[str], must_include: list[str], size: int) -> list[str]:
        table = self.table
        unbacked = set(table.unbacked())

        def key(device_id: str) -> tuple[int, tuple[int, str] | str]:
            t = self._token(device_id)
            if t < 0:
                return (9, device_id)
            if t in unbacked:
                return (0, self._rank(t))  # already ours: no write at all
            if table.state(t) == FREE:
                return (1, self._rank(t))
            return (2, self._rank(t))  # would need another slot behind it

        ordered = sorted((d for d in available if self._token(d) >= 0), key=key)
        return first_n(ordered, must_include, size)

    # --- Allocate -------------------------------------------------------------------------
    async def allocate(self, requests: list[list[str]]) -> list[Any]:
        new_claims: list[int] = []
        try:
            for ids in requests:
                for device_id in ids:
                    token = self._token(device_id)
                    if token < 0:
                        raise AllocationFailed(
                            Status.INVALID_ARGUMENT,
                            f"Invalid device id {device_id!r} for {self.resource_name}",
                        )
                    if not await self._back(token, new_claims):
                        raise AllocationFailed(
                            Status.RESOURCE_EXHAUSTED,
                            f"no free slot of {self.view.name} left for {device_id}",
                        )
        except BaseException:
            await self._rollback(new_claims)
            raise
        finally:
            self.changed()
        return [container_response([self.view], cdi_devices=self.cdi_devices) for _ in requests]

    async def _back(self, token: int, new_claims: list[int]) -> bool:
        """Make sure kubelet id `token` is backed by a slot this node holds."""
        table = self.table
        if table.binding(token) >= 0:
            return True  # the kubelet hands the same id again: it knows best
        unbacked = table.unbacked()
        if token in unbacked:
            table.bind(token, token)
            return True
        if unbacked:
            table.bind(token, unbacked[0])
            return True
        free = table.free_slots()
        free.sort(key=lambda s: (s != token, self._rank(s)))
        for slot in free:
            if table.state(slot) != FREE:
                continue
            try:
                won = await self.store.claim(
                    self.view.namespace, self.view.name, table.slot_id(slot), self.node
                )
            except Exception as exc:
                raise AllocationFailed(
                    Status.UNAVAILABLE, f"cannot record the slot claim for {self.view.name}: {exc}"
                ) from exc
            if won:
                table.claim(slot)
                table.bind(token, slot)
                self._released.pop(slot, None)
                new_claims.append(slot)
                if slot != token:
                    log.info(
                        "%s: kubelet id %s is backed by slot %s (its own slot is held elsewhere)",
                        self.view.name,
                        table.slot_id(token),
                        table.slot_id(slot),
                    )
                return True
            log.info("%s: lost the race for %s to another node", self.view.name, table.slot_id(slot))
            table.mark_taken(slot)
        return False

    async def _rollback(self, slots: list[int]) -> None:
        """An Allocate failed half-way: give back the slots it had already claimed."""
        for slot in slots:
            try:
                await self._release(slot)
            except Exception as exc:  # the reclaimer frees it later (the kubelet never used it)
                log.warning("%s: rollback of slot %d failed: %s", self.view.name, slot, exc)

    async def _release(self, slot: int) -> None:
        """Give back a slot this node holds at instance level (store first, then locally)."""
        await self.store.release(self.view.namespace, self.view.name, self.table.slot_id(slot), self.node)
        self.table.release(slot)
        self._released[slot] = time.monotonic()

    # --- reclaimer ------------------------------------------------------------------------
    def in_use_ids(self) -> set[str]:
        return {self.table.slot_id(t) for t in self.table.bound_tokens()}

    async def sync_in_use(self, in_use: set[str], snapshot: float) -> set[str]:
        async with self.lock:
            table = self.table
            used = {t for t in (self._token(d) for d in in_use) if t >= 0}
            bound = set(table.bound_tokens())
            idle = sorted(t for t in bound - used if not self.allocated_since(table.slot_id(t), snapshot))
            changed = False
            for token in sorted(used - bound):
                if idle:  # e.g. after a restart: the slot backing this id was recorded under another id
                    donor = idle.pop()
                    slot = table.unbind(donor)
                    table.bind(token, slot)
                    log.info(
                        "%s: kubelet uses %s: backed by slot %s",
                        self.view.name,
                        table.slot_id(token),
                        table.slot_id(slot),
                    )
                else:
                    try:
                        ok = await self._back(token, [])
                    except AllocationFailed as exc:
                        ok = False
                        log.warning("%s: %s", self.view.name, exc)
                    if ok:
                        log.warning(
                            "%s: kubelet uses %s but this node held no slot for it: claimed slot %s",
                            self.view.name,
                            table.slot_id(token),
                            table.slot_id(table.binding(token)),
                        )
                    else:
                        log.error(
                            "%s: kubelet uses %s but no slot is free to back it",
                            self.view.name,
                            table.slot_id(token),
                        )
                changed = True
            if changed:
                self.changed()
            return {
                table.slot_id(t)
                for t in table.bound_tokens()
                if t not in used and not self.allocated_since(table.slot_id(t), snapshot)
            }

    async def free(self, device_id: str, snapshot: float) -> bool:
        async with self.lock:
            token = self._token(device_id)
            if token < 0 or self.allocated_since(device_id, snapshot):
                return False
            slot = self.table.binding(token)
            if slot < 0:
                return False
            await self._release(slot)
            self.changed()
            log.info(
                "%s: freed slot %s (kubelet id %s no longer in use)",
                self.view.name,
                self.table.slot_id(slot),
                device_id,
            )
            return True

    async def release_all(self) -> None:
        """This node stops serving the Instance: give back every slot it holds (best effort)."""
        async with self.lock:
            for slot_id, value in self.table.owned().items():
                await self._release_quietly(slot_id, value)
