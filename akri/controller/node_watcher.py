"""Node watcher (spec §6.5, upstream `node_watcher.rs`): forget nodes that went away.

A node that was Ready and then is deleted, or turns NotReady, can no longer serve its devices:
it is removed from every Instance's `nodes` and the `deviceUsage` slots it held are freed, so
the brokers and slots move to nodes that still work. A node never seen Ready is left alone (it
may still be joining).

Each Instance is written with optimistic concurrency (read, edit, PUT with the resourceVersion
read, re-read and retry on 409), never with a merge patch of the whole spec: a merge patch can
overwrite an agent's concurrent claim, and mixing writers that way is upstream's #801 loop.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from akri.model.usage import parse_usage

log = logging.getLogger(__name__)


class NodeState(enum.Enum):
    KNOWN = "Known"  # seen, never Ready
    RUNNING = "Running"  # seen Ready
    CLEANED = "InstancesCleaned"  # was Running, then gone or NotReady, Instances cleaned


def is_ready(node: Mapping[str, Any]) -> bool:
    """Upstream's rule: the LAST condition of type Ready has status "True"."""
    status = node.get("status")
    conditions = status.get("conditions") if isinstance(status, Mapping) else None
    ready = None
    if isinstance(conditions, list):
        for condition in conditions:
            if isinstance(condition, Mapping) and condition.get("type") == "Ready":
                ready = condition.get("status")
    return ready == "True"


def needs_cleaning_on_update(previous: NodeState | None, ready: bool) -> bool:
    """An ADDED/MODIFIED node: clean when a Running node is no longer Ready."""
    return not ready and previous is NodeState.RUNNING


def state_after_update(previous: NodeState | None, ready: bool) -> NodeState:
    """The state once an ADDED/MODIFIED event is handled (cleaning, if needed, succeeded)."""
    if ready:
        return NodeState.RUNNING
    if previous is None:
        return NodeState.KNOWN
    if previous is NodeState.RUNNING:
        return NodeState.CLEANED
    return previous


def needs_cleaning_on_delete(previous: NodeState | None) -> bool:
    """A DELETED node: clean if it was Running, or if it was never seen (upstream)."""
    return previous is None or previous is NodeState.RUNNING


def usage_node(value: Any) -> str | None:
    """The node a deviceUsage value names, or None (free, or not a usage at all)."""
    if not isinstance(value, str):
        return None
    try:
        return parse_usage(value).node
    except ValueError:
        # not a value the agent writes; the controller's looser upstream reading: `C:<vdev>:<node>`
        # with ':' in the vdev takes the text after the last ':'
        if value.startswith("C:") and value.count(":") >= 2:
            return value.rsplit(":", 1)[1] or None
        return None


def references_node(instance: Mapping[str, Any], node: str) -> bool:
    """Whether an Instance lists `node` or holds a slot for it."""
    spec = instance.get("spec")
    if not isinstance(spec, Mapping):
        return False
    nodes = spec.get("nodes")
    if isinstance(nodes, list) and node in nodes:
        return True
    usage = spec.get("deviceUsage")
    return isinstance(usage, Mapping) and any(usage_node(v) == node for v in usage.values())


def forget_node(instance: dict[str, Any], node: str) -> None:
    """Edit an Instance in place: drop `node` from `spec.nodes` and free (set to "") every slot
    whose usage names it. Other nodes and slots are untouched."""
    spec = instance.get("spec")
    if not isinstance(spec, dict):
        return
    nodes = spec.get("nodes")
    if isinstance(nodes, list) and node in nodes:
        spec["nodes"] = [n for n in nodes if n != node]
    usage = spec.get("deviceUsage")
    if isinstance(usage, dict):
        for slot, value in usage.items():
            if usage_node(value) == node:
                usage[slot] = ""


def instances_to_clean(instances: Iterable[Mapping[str, Any]], node: str) -> list[tuple[str, str]]:
    """(namespace, name) of every Instance that references `node`."""
    out = []
    for inst in instances:
        if references_node(inst, node):
            meta = inst.get("metadata") or {}
            out.append((meta.get("namespace") or "", meta.get("name") or ""))
    return out
