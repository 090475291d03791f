"""What to do with the broker Pod of each node of an Instance (spec §6.2, upstream `pod_action.rs`).

The table is upstream's: a Pod on a node the Instance no longer lists is removed; a running (or
starting) Pod is kept unless the Instance is gone; a Pending Pod gets `PENDING_GRACE` before it is
replaced, and an ended one (Failed, Succeeded, Unknown, an admission error...) `ENDED_GRACE` (0).

One deliberate difference: upstream waits forever for a Pod without `status.startTime` (a Pod the
scheduler never placed, or one the kubelet rejected at admission). Here the grace period then
counts from `metadata.creationTimestamp`, so such a Pod is replaced too. The controller rate-limits
replacements per Pod name, so a Pod that keeps failing is not re-created in a hot loop.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

PENDING_GRACE = timedelta(minutes=5)
ENDED_GRACE = timedelta(minutes=0)

# kubelet waiting reasons that upstream treats like Running: the Pod is on its way up.
STARTING_PHASES = frozenset({"Running", "ContainerCreating", "PodInitializing"})

TARGET_NODE_LABEL = "akri.sh/target-node"


class InstanceAction(enum.Enum):
    ADD = "Add"
    UPDATE = "Update"
    REMOVE = "Remove"


class PodAction(enum.Enum):
    ADD = "Add"
    REMOVE = "Remove"
    REMOVE_AND_ADD = "RemoveAndAdd"
    NO_ACTION = "NoAction"

    @property
    def removes(self) -> bool:
        return self in (PodAction.REMOVE, PodAction.REMOVE_AND_ADD)

    @property
    def adds(self) -> bool:
        return self in (PodAction.ADD, PodAction.REMOVE_AND_ADD)


def parse_time(value: Any) -> datetime | None:
    """A Kubernetes `Time` (RFC 3339, `Z` or offset, optional fraction) or None when absent/invalid."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def select_pod_action(
    *,
    phase: str,
    instance_action: InstanceAction,
    start_time: datetime | None,
    unknown_node: bool,
    now: datetime,
    pending_grace: timedelta = PENDING_GRACE,
    ended_grace: timedelta = ENDED_GRACE,
) -> PodAction:
    """Upstream's decision for one existing Pod (`PodActionInfo::select_pod_action`).

    `start_time` None means "give it more time" (upstream); callers pass the creation time
    instead when they want the grace period to count from there.
    """
    if unknown_node:
        return PodAction.REMOVE
    if instance_action is InstanceAction.REMOVE:
        return PodAction.REMOVE
    if phase in STARTING_PHASES:
        return PodAction.NO_ACTION
    grace = pending_grace if phase == "Pending" else ended_grace
    if start_time is None or now < start_time + grace:
        return PodAction.NO_ACTION
    return PodAction.REMOVE_AND_ADD


@dataclass(frozen=True, slots=True)
class PodDecision:
    node: str
    action: PodAction
    pod_name: str | None = None  # the existing Pod the action applies to (None: none exists)
    namespace: str | None = None


def _pod_phase(pod: Mapping[str, Any]) -> str:
    status = pod.get("status")
    phase = status.get("phase") if isinstance(status, Mapping) else None
    # a Pod the API server has not given a phase yet is on its way up: treat it as Pending
    return phase if isinstance(phase, str) and phase else "Pending"


def _pod_start_time(pod: Mapping[str, Any]) -> datetime | None:
    status = pod.get("status")
    start = parse_time(status.get("startTime")) if isinstance(status, Mapping) else None
    if start is not None:
        return start
    meta = pod.get("metadata")
    return parse_time(meta.get("creationTimestamp")) if isinstance(meta, Mapping) else None


def decide(
    nodes: Iterable[str],
    instance_action: InstanceAction,
    pods: Iterable[Mapping[str, Any]],
    now: datetime,
    *,
    pending_grace: timedelta = PENDING_GRACE,
    ended_grace: timedelta = ENDED_GRACE,
) -> list[PodDecision]:
    """One decision per node of the Instance plus one per Pod on a node it does not list.

    Starts with Add for every node in `nodes` (NoAction when the Instance is removed), then lets
    each existing broker Pod (found by its `akri.sh/instance` label) refine its node's entry.
    Pods already being deleted are left alone: their node waits for the deletion to finish
    (creating a Pod of the same name meanwhile would only get 409). Pods without a
    `akri.sh/target-node` label are not ours to judge and are skipped, as upstream does.
    """
    default = PodAction.NO_ACTION if instance_action is InstanceAction.REMOVE else PodAction.ADD
    wanted = list(dict.fromkeys(nodes))
    decisions: dict[str, PodDecision] = {node: PodDecision(node, default) for node in wanted}
    extra: list[PodDecision] = []
    for pod in pods:
        meta = pod.get("metadata")
        if not isinstance(meta, Mapping):
            continue
        labels = meta.get("labels")
        node = labels.get(TARGET_NODE_LABEL) if isinstance(labels, Mapping) else None
        if not isinstance(node, str) or not node:
            continue
        name, namespace = meta.get("name"), meta.get("namespace")
        if meta.get("deletionTimestamp"):
            if node in decisions:
                decisions[node] = PodDecision(node, PodAction.NO_ACTION, name, namespace)
            continue
        action = select_pod_action(
            phase=_pod_phase(pod),
            instance_action=instance_action,
            start_time=_pod_start_time(pod),
            unknown_node=node not in decisions,
            now=now,
            pending_grace=pending_grace,
            ended_grace=ended_grace,
        )
        decision = PodDecision(node, action, name, namespace)
        if node in decisions:
            decisions[node] = decision
        else:
            extra.append(decision)
    return [*decisions.values(), *extra]


def now_utc() -> datetime:
    return datetime.now(UTC)
