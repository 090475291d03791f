"""Instance `spec.deviceUsage` values and slot vectors (spec §3.1).

A deviceUsage map goes from slot id (`<instance>-<i>`) to who uses that slot:
`""` (or the key being absent) = free, `<node>` = an instance-level allocation on that node,
`C:<vdev>:<node>` = a configuration-level allocation through virtual device `<vdev>`.
Node names containing `:` cannot be represented (upstream's agent parser splits on `:`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeAlias

from akri.model.naming import slot_id, slot_index

CONFIGURATION_USAGE_PREFIX = "C"


@dataclass(frozen=True, slots=True)
class Free:
    """Nobody uses the slot."""

    @property
    def node(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class NodeUsage:
    """Taken by an instance-level allocation (`akri.sh/<instance>` resource) on `node`."""

    node: str


@dataclass(frozen=True, slots=True)
class ConfigurationUsage:
    """Taken by a configuration-level allocation (`akri.sh/<configuration>`) of virtual
    device `vdev` on `node`."""

    vdev: str
    node: str


Usage: TypeAlias = Free | NodeUsage | ConfigurationUsage

FREE = Free()


def parse_usage(value: str) -> Usage:
    """Parse a deviceUsage value like upstream's agent: `""`, `<node>` or `C:<vdev>:<node>`.

    ValueError for anything else (`C:node-a`, `a:b`, empty vdev or node).
    """
    if not isinstance(value, str):
        raise ValueError(f"deviceUsage value must be a string, got {type(value).__name__}")
    if value == "":
        return FREE
    parts = value.split(":")
    if len(parts) == 1:
        return NodeUsage(value)
    if len(parts) == 3 and parts[0] == CONFIGURATION_USAGE_PREFIX and parts[1] and parts[2]:
        return ConfigurationUsage(parts[1], parts[2])
    raise ValueError(f"invalid deviceUsage value {value!r} (expected '', '<node>' or 'C:<vdev>:<node>')")


def format_usage(usage: Usage) -> str:
    """The deviceUsage value for a usage; ValueError if it could not be parsed back."""
    match usage:
        case Free():
            return ""
        case NodeUsage(node=node):
            _check_part("node", node)
            return node
        case ConfigurationUsage(vdev=vdev, node=node):
            _check_part("vdev", vdev)
            _check_part("node", node)
            return f"{CONFIGURATION_USAGE_PREFIX}:{vdev}:{node}"
    raise TypeError(f"not a usage: {usage!r}")


def _check_part(what: str, text: str) -> None:
    if not text or ":" in text:
        raise ValueError(f"{what} {text!r} cannot appear in a deviceUsage value (empty or contains ':')")


def slot_vector(device_usage: Mapping[str, str], capacity: int) -> list[Usage]:
    """One Usage per slot 0..capacity-1 from a deviceUsage map: absent and `""` are free.

    ValueError (naming the key) for a key without a slot number, an index >= capacity or
    a malformed value.
    """
    if capacity < 0:
        raise ValueError(f"capacity must not be negative, got {capacity}")
    slots: list[Usage] = [FREE] * capacity
    for key, value in device_usage.items():
        try:
            index = slot_index(key)
        except ValueError as exc:
            raise ValueError(f"deviceUsage key {key!r}: {exc}") from None
        if index >= capacity:
            raise ValueError(f"deviceUsage key {key!r}: slot {index} is out of range for capacity {capacity}")
        try:
            slots[index] = parse_usage(value)
        except ValueError as exc:
            raise ValueError(f"deviceUsage key {key!r}: {exc}") from None
    return slots


def usage_map(instance_name: str, slots: Iterable[Usage], *, include_free: bool = False) -> dict[str, str]:
    """The deviceUsage map for a slot vector (free slots left out unless `include_free`)."""
    return {
        slot_id(instance_name, i): format_usage(u)
        for i, u in enumerate(slots)
        if include_free or not isinstance(u, Free)
    }
