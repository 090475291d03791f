"""The broker Pod decision table (spec §6.2) with upstream's `pod_action.rs` vectors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from akri.controller.decisions import (
    InstanceAction,
    PodAction,
    decide,
    parse_time,
    select_pod_action,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
FRESH = NOW  # upstream: Utc::now()
EXPIRED = NOW - timedelta(minutes=10)  # upstream: now - 10 min
PHASES = (
    "Running",
    "Pending",
    "UnexpectedAdmissionError",
    "ContainerCreating",
    "PodInitializing",
    "blah-blah-unknown",
)
GRACE = timedelta(minutes=1)  # upstream's tests use 1 minute for both grace periods


def action(phase: str, instance_action: InstanceAction, start: datetime | None, unknown: bool) -> PodAction:
    return select_pod_action(
        phase=phase,
        instance_action=instance_action,
        start_time=start,
        unknown_node=unknown,
        now=NOW,
        pending_grace=GRACE,
        ended_grace=GRACE,
    )


@pytest.mark.parametrize("start", [None, FRESH, EXPIRED])
@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("instance_action", list(InstanceAction))
def test_unknown_node_is_always_removed(
    start: datetime | None, phase: str, instance_action: InstanceAction
) -> None:
    assert action(phase, instance_action, start, unknown=True) is PodAction.REMOVE


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("instance_action", [InstanceAction.ADD, InstanceAction.UPDATE])
def test_known_node_without_start_time_gets_more_time(phase: str, instance_action: InstanceAction) -> None:
    assert action(phase, instance_action, None, unknown=False) is PodAction.NO_ACTION


EXPIRED_TABLE = {
    "Running": PodAction.NO_ACTION,
    "Pending": PodAction.REMOVE_AND_ADD,
    "UnexpectedAdmissionError": PodAction.REMOVE_AND_ADD,
    "ContainerCreating": PodAction.NO_ACTION,
    "PodInitializing": PodAction.NO_ACTION,
    "blah-blah-unknown": PodAction.REMOVE_AND_ADD,
}


@pytest.mark.parametrize(("phase", "expected"), EXPIRED_TABLE.items())
@pytest.mark.parametrize("instance_action", [InstanceAction.ADD, InstanceAction.UPDATE])
def test_known_node_with_expired_start_time(
    phase: str, expected: PodAction, instance_action: InstanceAction
) -> None:
    assert action(phase, instance_action, EXPIRED, unknown=False) is expected


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("instance_action", [InstanceAction.ADD, InstanceAction.UPDATE])
def test_known_node_with_fresh_start_time_waits(phase: str, instance_action: InstanceAction) -> None:
    assert action(phase, instance_action, FRESH, unknown=False) is PodAction.NO_ACTION


@pytest.mark.parametrize("start", [None, FRESH, EXPIRED])
@pytest.mark.parametrize("phase", PHASES)
def test_instance_removed_removes_every_pod(start: datetime | None, phase: str) -> None:
    assert action(phase, InstanceAction.REMOVE, start, unknown=False) is PodAction.REMOVE


def test_upstream_default_graces_pending_five_minutes_failed_zero() -> None:
    def default(phase: str, start: datetime) -> PodAction:
        return select_pod_action(
            phase=phase, instance_action=InstanceAction.UPDATE, start_time=start, unknown_node=False, now=NOW
        )

    assert default("Pending", NOW - timedelta(minutes=4, seconds=59)) is PodAction.NO_ACTION
    assert default("Pending", NOW - timedelta(minutes=5)) is PodAction.REMOVE_AND_ADD
    assert default("Failed", NOW) is PodAction.REMOVE_AND_ADD
    assert default("Succeeded", NOW) is PodAction.REMOVE_AND_ADD


def pod(
    node: str | None,
    phase: str | None = "Running",
    *,
    start: str | None = None,
    created: str | None = None,
    name: str | None = None,
    deleting: bool = False,
) -> dict:
    meta: dict = {"name": name or f"{node}-pod", "namespace": "ns", "labels": {"akri.sh/instance": "i"}}
    if node is not None:
        meta["labels"]["akri.sh/target-node"] = node
    if created:
        meta["creationTimestamp"] = created
    if deleting:
        meta["deletionTimestamp"] = "2024-05-01T11:59:00Z"
    status: dict = {}
    if phase is not None:
        status["phase"] = phase
    if start:
        status["startTime"] = start
    return {"metadata": meta, "status": status}


def by_node(decisions: list) -> dict[str, tuple[PodAction, str | None]]:
    return {d.node: (d.action, d.pod_name) for d in decisions}


def test_decide_shared_instance_moves_from_node_a_to_node_b() -> None:
    # upstream instance_action tests: shared config-a-359973 now on node-b only, pod exists on node-a
    plan = decide(["node-b"], InstanceAction.UPDATE, [pod("node-a", name="node-a-config-a-359973-pod")], NOW)
    assert by_node(plan) == {
        "node-b": (PodAction.ADD, None),
        "node-a": (PodAction.REMOVE, "node-a-config-a-359973-pod"),
    }


def test_decide_existing_running_pod_no_action_and_missing_node_added() -> None:
    plan = decide(["node-a", "node-b"], InstanceAction.ADD, [pod("node-a")], NOW)
    assert by_node(plan) == {"node-a": (PodAction.NO_ACTION, "node-a-pod"), "node-b": (PodAction.ADD, None)}


def test_decide_remove_instance_removes_all_and_adds_none() -> None:
    plan = decide([], InstanceAction.REMOVE, [pod("node-a"), pod("node-b", "Pending")], NOW)
    assert {d.action for d in plan} == {PodAction.REMOVE}
    assert not any(d.action.adds for d in plan)


def test_decide_pending_without_start_time_counts_from_creation() -> None:
    # deliberate difference: upstream would wait forever for a Pod the scheduler never placed
    old = (NOW - timedelta(minutes=6)).isoformat().replace("+00:00", "Z")
    recent = (NOW - timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    assert by_node(decide(["a"], InstanceAction.UPDATE, [pod("a", "Pending", created=old)], NOW)) == {
        "a": (PodAction.REMOVE_AND_ADD, "a-pod")
    }
    assert by_node(decide(["a"], InstanceAction.UPDATE, [pod("a", "Pending", created=recent)], NOW)) == {
        "a": (PodAction.NO_ACTION, "a-pod")
    }


def test_decide_failed_pod_is_replaced_and_terminating_pod_waited_for() -> None:
    start = "2024-05-01T11:00:00Z"
    plan = decide(
        ["a", "b"],
        InstanceAction.UPDATE,
        [pod("a", "Failed", start=start), pod("b", "Running", start=start, deleting=True)],
        NOW,
    )
    assert by_node(plan) == {"a": (PodAction.REMOVE_AND_ADD, "a-pod"), "b": (PodAction.NO_ACTION, "b-pod")}


def test_decide_skips_pods_without_target_node_label_and_missing_phase_is_pending() -> None:
    plan = decide(
        ["a"], InstanceAction.UPDATE, [pod(None), pod("a", None, start="2024-05-01T11:58:00Z")], NOW
    )
    assert by_node(plan) == {"a": (PodAction.NO_ACTION, "a-pod")}


def test_decide_duplicate_nodes_once() -> None:
    assert [d.node for d in decide(["a", "a", "b"], InstanceAction.ADD, [], NOW)] == ["a", "b"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T12:00:00Z", NOW),
        ("2024-05-01T12:00:00.000000Z", NOW),
        ("2024-05-01T14:00:00+02:00", NOW),
        ("", None),
        (None, None),
        (5, None),
        ("yesterday", None),
    ],
)
def test_parse_time(text: object, expected: datetime | None) -> None:
    assert parse_time(text) == expected
