"""The configuration-level device plugin: resource `akri.sh/<configuration>` (spec §3.3).

A pod asking for `akri.sh/<configuration>: 1` gets "any one device of this Configuration".
The plugin advertises virtual devices (vdevs) `<configuration>-<n>`: one free vdev per
Instance of this node that has a free slot (so one container asking for two gets two
different devices), plus one per configuration-level allocation this node holds (its
deviceUsage value is `C:<vdev>:<node>`, which is how the vdev -> slot mapping survives an
agent restart). Allocating a free vdev claims the first free slot of its Instance; when
another node has just taken the last one, another Instance with a free slot serves it.

Fixed upstream quirks (spec §11.3):
* one ContainerAllocateResponse per container, holding every device it asked for;
* a vdev this node already holds is handed again when the kubelet asks for it (an
  init container's device reused by the next container of the pod, or a pod that ended
  before the reclaimer ran): the kubelet only offers a device no running container holds,
  so the existing claim is reused instead of failing the pod (issues #843/#849).
* used vdevs stay Healthy, on purpose (upstream PR #850 proposes Unhealthy): the kubelet
  reports allocatable = Healthy count and the scheduler subtracts the pods' requests from it,
  so an in-use vdev marked Unhealthy would be subtracted twice and hide a free device (a
  capacity-2 device would admit one pod per node). The spam #850 targets — the kubelet
  offering a vdev whose pod just ended — is handled by the reuse rule above.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from grpclib import Status

from akri.agent.plugins.base import AllocationFailed, DevicePluginBase, first_n, rank_key
from akri.agent.plugins.instance_plugin import InstancePlugin
from akri.agent.plugins.responses import container_response
from akri.agent.plugins.slot_store import SlotStore

log = logging.getLogger(__name__)


def _suffix(key: str) -> int | None:
    tail = key.rpartition("-")[2]
    return int(tail) if tail.isascii() and tail.isdigit() else None


class ConfigurationPlugin(DevicePluginBase):
    def __init__(self, configuration: str, node: str, store: SlotStore, *, cdi_devices: bool = False) -> None:
        super().__init__(configuration, node, store, asyncio.Lock())
        self.configuration = configuration
        self.cdi_devices = cdi_devices
        self.instances: dict[str, InstancePlugin] = {}
        self._free: dict[str, str] = {}  # instance -> its free vdev
        self._used: dict[str, tuple[str, int]] = {}  # vdev -> (instance, slot)

    # --- membership -----------------------------------------------------------------------
    def attach(self, plugin: InstancePlugin) -> None:
        self.instances[plugin.name] = plugin
        if self not in plugin.listeners:
            plugin.listeners.append(self)
        self.instance_slots_changed(plugin)

    def detach(self, name: str) -> None:
        plugin = self.instances.pop(name, None)
        if plugin is not None and self in plugin.listeners:
            plugin.listeners.remove(self)
        self.recompute()
        self.notify()

    def instance_slots_changed(self, plugin: InstancePlugin) -> None:
        self.recompute()
        self.notify()

    # --- the vdev map ---------------------------------------------------------------------
    def recompute(self) -> None:
        used: dict[str, tuple[str, int]] = {}
        for name, inst in self.instances.items():
            for vdev, slot in inst.table.config_slots().items():
                used[vdev] = (name, slot)
        offering = {
            n for n, inst in self.instances.items() if inst.view.device_ready and inst.table.free_count() > 0
        }
        free: dict[str, str] = {}
        kept: set[str] = set()  # free.values(), as a set: this runs on every Instance change
        for name in sorted(offering):
            key = self._free.get(name)
            if key is not None and key not in used and key not in kept:
                free[name] = key
                kept.add(key)
        taken = {s for s in (_suffix(k) for k in (*used, *kept)) if s is not None}
        n = 0  # every number below n is taken: the search goes on from there, not from 0
        for name in sorted(offering - set(free)):
            while n in taken:
                n += 1
            taken.add(n)
            free[name] = f"{self.configuration}-{n}"
        self._used, self._free = used, free

    def vdevs(self) -> dict[str, tuple[str, int | None]]:
        """vdev -> (instance, slot), slot None for a free vdev."""
        out: dict[str, tuple[str, int | None]] = {v: (i, s) for v, (i, s) in self._used.items()}
        out.update({v: (i, None) for i, v in self._free.items()})
        return out

    def device_health(self) -> dict[str, bool]:
        return {vdev: True for vdev in sorted(self.vdevs())}

    def _free_owner(self, vdev: str) -> InstancePlugin | None:
        for name, key in self._free.items():
            if key == vdev:
                return self.instances.get(name)
        return None

    # --- kubelet calls --------------------------------------------------------------------
    def preferred(self, available: list[str], must_include: list[str], size: int) -> list[str]:
        reuse = [v for v in available if v in self._used]  # already ours: no write at all
        free_owner = {v: self.instances[i] for i, v in self._free.items() if i in self.instances}
        fresh = sorted(
            (v for v in available if v in free_owner),
            key=lambda v: (-free_owner[v].table.free_count(), rank_key(self.node, v)),
        )
        return first_n(reuse + fresh, must_include, size)

    async def allocate(self, requests: list[list[str]]) -> list[Any]:
        new_claims: list[tuple[InstancePlugin, int]] = []
        responses = []
        try:
            for ids in requests:
                views = []
                chosen: set[str] = set()
                for vdev in ids:
                    if vdev in self._used:
                        inst = self.instances[self._used[vdev][0]]
                    else:
                        inst = await self._claim_for(vdev, chosen, new_claims)
                    views.append(inst.view)
                    chosen.add(inst.name)
                responses.append(container_response(views, cdi_devices=self.cdi_devices))
        except BaseException:
            await self._rollback(new_claims)
            raise
        finally:
            for inst in {id(i): i for i, _ in new_claims}.values():
                inst.notify()
            self.recompute()
            self.notify()
        return responses

    async def _claim_for(
        self, vdev: str, chosen: set[str], new_claims: list[tuple[InstancePlugin, int]]
    ) -> InstancePlugin:
        owner = self._free_owner(vdev)
        if owner is None:
            raise AllocationFailed(
                Status.INVALID_ARGUMENT, f"Invalid virtual device {vdev!r} for {self.resource_name}"
            )
        others = sorted(
            (i for i in self.instances.values() if i is not owner and i.view.device_ready),
            key=lambda i: (i.name in chosen, -i.table.free_count(), i.name),
        )
        for inst in [owner, *others]:
            slot = await self._claim_on(inst, vdev)
            if slot >= 0:
                new_claims.append((inst, slot))
                if inst is not owner:
                    log.info(
                        "%s: %s served by %s (%s had no free slot left)",
                        self.configuration,
                        vdev,
                        inst.name,
                        owner.name,
                    )
                self.recompute()
                return inst
        raise AllocationFailed(
            Status.RESOURCE_EXHAUSTED,
            f"no free slot left in any Instance of {self.configuration} for {vdev}",
        )

    async def _claim_on(self, inst: InstancePlugin, vdev: str) -> int:
        table = inst.table
        value = f"C:{vdev}:{self.node}"
        for slot in sorted(table.free_slots(), key=inst._rank):
            try:
                won = await self.store.claim(inst.view.namespace, inst.name, table.slot_id(slot), value)
            except Exception as exc:
                raise AllocationFailed(
                    Status.UNAVAILABLE, f"cannot record the slot claim for {inst.name}: {exc}"
                ) from exc
            if won:
                table.claim_config_at(slot, vdev)
                inst._released.pop(slot, None)
                return slot
            log.info("%s: lost the race for %s to another node", inst.name, table.slot_id(slot))
            table.mark_taken(slot)
        return -1

    async def _rollback(self, claims: list[tuple[InstancePlugin, int]]) -> None:
        for inst, slot in claims:
            try:
                await self._release(inst, slot)
            except Exception as exc:
                log.warning(
                    "%s: rollback of %s failed: %s", self.configuration, inst.table.slot_id(slot), exc
                )

    async def _release(self, inst: InstancePlugin, slot: int) -> None:
        value = inst.table.value(slot)
        await self.store.release(inst.view.namespace, inst.name, inst.table.slot_id(slot), value)
        inst.table.release(slot)
        inst._released[slot] = time.monotonic()

    # --- reclaimer ------------------------------------------------------------------------
    def in_use_ids(self) -> set[str]:
        return set(self._used)

    async def sync_in_use(self, in_use: set[str], snapshot: float) -> set[str]:
        async with self.lock:
            self.recompute()
            for vdev in sorted(in_use - set(self._used)):
                if self.allocated_since(vdev, snapshot):
                    continue
                # the kubelet's container uses a vdev this node holds no slot for (claims wiped)
                try:
                    inst = await self._claim_for_repair(vdev)
                except AllocationFailed as exc:
                    log.error(
                        "%s: kubelet uses %s but no slot can back it: %s", self.configuration, vdev, exc
                    )
                    continue
                log.warning(
                    "%s: kubelet uses %s but this node held no slot for it: claimed one on %s",
                    self.configuration,
                    vdev,
                    inst.name,
                )
            return {v for v in self._used if v not in in_use and not self.allocated_since(v, snapshot)}

    async def _claim_for_repair(self, vdev: str) -> InstancePlugin:
        for inst in sorted(self.instances.values(), key=lambda i: (-i.table.free_count(), i.name)):
            if await self._claim_on(inst, vdev) >= 0:
                inst.changed()
                return inst
        raise AllocationFailed(Status.RESOURCE_EXHAUSTED, "no free slot")

    async def free(self, device_id: str, snapshot: float) -> bool:
        async with self.lock:
            entry = self._used.get(device_id)
            if entry is None or self.allocated_since(device_id, snapshot):
                return False
            inst = self.instances.get(entry[0])
            if inst is None:
                return False
            await self._release(inst, entry[1])
            log.info(
                "%s: freed %s (slot %s; no longer in use)",
                self.configuration,
                device_id,
                inst.table.slot_id(entry[1]),
            )
            inst.changed()
            return True
