"""Slot claims in Instance `spec.deviceUsage`, written with optimistic concurrency.

`claim` reads the Instance and writes the slot only if it is free (absent or "") or already
held by this node ("the kubelet asks for the same slot, it knows best"), with the
resourceVersion it read; a 409 means someone else wrote in between, so it reads again and
decides again. Two nodes racing for one slot: exactly one write succeeds, the other re-reads,
sees the winner's value and returns False. No server-side apply, so no field-manager 409 loops
(upstream issue #801).

When the store cannot tell (API unreachable, or still conflicting after the bounded retries:
RetriesExhausted) it raises, so the plugin fails the Allocate as "unavailable" rather than
guessing (the contract of `akri.agent.plugins.slot_store.SlotStore`).
"""

from __future__ import annotations

from typing import Any

from akri.kube.api import Kube
from akri.kube.resources import Instance
from akri.model.naming import slot_index
from akri.model.usage import parse_usage


def usage_node(value: str) -> str | None:
    try:
        return parse_usage(value).node
    except ValueError:
        return None


class KubeSlotStore:
    """The `SlotStore` of the device plugins, on the Kubernetes API."""

    def __init__(self, kube: Kube, node_name: str, *, attempts: int = 8) -> None:
        self.kube = kube
        self.node = node_name
        # more than the default: N nodes contending for one Instance need up to N rounds
        self.attempts = attempts

    async def claim(self, namespace: str, instance: str, slot_id: str, usage_value: str) -> bool:
        """Take `slot_id` for `usage_value`; False if another node holds it, or the slot or the
        Instance does not exist."""
        verdict = {"ok": False}

        def mutate(obj: dict[str, Any]) -> None:
            spec = obj.setdefault("spec", {})
            verdict["ok"] = False
            try:
                if not slot_id.startswith(f"{instance}-") or slot_index(slot_id) >= int(
                    spec.get("capacity", 0)
                ):
                    return
            except (ValueError, TypeError):
                return
            usage = spec.get("deviceUsage")
            if not isinstance(usage, dict):
                usage = spec["deviceUsage"] = {}
            current = usage.get(slot_id, "")
            if current == usage_value:
                verdict["ok"] = True
            elif current == "" or usage_node(current) == self.node:
                usage[slot_id] = usage_value
                verdict["ok"] = True

        written = await self.kube.update_with_retry(
            Instance, instance, namespace, mutate, attempts=self.attempts
        )
        return written is not None and verdict["ok"]

    async def release(self, namespace: str, instance: str, slot_id: str, expected_value: str) -> bool:
        """Free `slot_id` if it still holds `expected_value` (never frees someone else's claim).

        True when the slot is free afterwards as far as this caller is concerned.
        """
        verdict = {"ok": False}

        def mutate(obj: dict[str, Any]) -> None:
            usage = (obj.get("spec") or {}).get("deviceUsage") or {}
            current = usage.get(slot_id, "")
            verdict["ok"] = current in ("", expected_value)
            if slot_id in usage and current == expected_value:
                del obj["spec"]["deviceUsage"][slot_id]  # absent = free

        written = await self.kube.update_with_retry(
            Instance, instance, namespace, mutate, attempts=self.attempts
        )
        return written is None or verdict["ok"]
