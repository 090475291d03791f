"""Node watcher state machine and cleanup vectors (spec §6.5, upstream `node_watcher.rs` tests and the
fixtures node-a*.json / shared-instance-update.json described in spec §9.3)."""

from __future__ import annotations

import copy

import pytest

from akri.controller.node_watcher import (
    NodeState,
    forget_node,
    instances_to_clean,
    is_ready,
    needs_cleaning_on_delete,
    needs_cleaning_on_update,
    references_node,
    state_after_update,
    usage_node,
)


def node(*conditions: tuple[str, str]) -> dict:
    return {
        "metadata": {"name": "node-a"},
        "status": {"conditions": [{"type": t, "status": s} for t, s in conditions]},
    }


READY = node(("MemoryPressure", "False"), ("Ready", "True"))  # node-a.json
NOT_READY = node(("Ready", "Unknown"))  # node-a-not-ready.json
NO_CONDITIONS = {"metadata": {"name": "node-a"}, "status": {}}  # node-a-no-conditions.json
NO_READY_CONDITION = node(("MemoryPressure", "False"))  # node-a-no-ready-condition.json


@pytest.mark.parametrize(
    ("obj", "ready"),
    [
        (READY, True),
        (NOT_READY, False),
        (NO_CONDITIONS, False),
        (NO_READY_CONDITION, False),
        (node(("Ready", "True"), ("Ready", "False")), False),  # the LAST Ready condition decides
        (node(("Ready", "False"), ("Ready", "True")), True),
        ({"metadata": {}}, False),
        ({"status": {"conditions": "x"}}, False),
    ],
)
def test_is_ready(obj: dict, ready: bool) -> None:
    assert is_ready(obj) is ready


def run(events: list[tuple[str, bool]]) -> tuple[NodeState | None, int]:
    """Feed ("apply", ready) / ("delete", _) events; return the final state and the cleanings."""
    state: NodeState | None = None
    cleanings = 0
    for kind, ready in events:
        if kind == "delete":
            cleanings += needs_cleaning_on_delete(state)
            state = None
        else:
            cleanings += needs_cleaning_on_update(state, ready)
            state = state_after_update(state, ready)
    return state, cleanings


@pytest.mark.parametrize(
    ("events", "state", "cleanings"),
    [
        ([("apply", True)], NodeState.RUNNING, 0),
        ([("apply", False)], NodeState.KNOWN, 0),  # never Ready: maybe still joining
        ([("apply", False), ("apply", False)], NodeState.KNOWN, 0),
        ([("apply", True), ("apply", False)], NodeState.CLEANED, 1),
        ([("apply", True), ("apply", False), ("apply", False)], NodeState.CLEANED, 1),  # cleaned once
        ([("apply", True), ("apply", False), ("apply", True)], NodeState.RUNNING, 1),
        ([("apply", True), ("apply", False), ("apply", True), ("apply", False)], NodeState.CLEANED, 2),
        ([("apply", False), ("apply", True), ("apply", False)], NodeState.CLEANED, 1),
        ([("apply", True), ("delete", False)], None, 1),
        ([("apply", False), ("delete", False)], None, 0),
        ([("apply", True), ("apply", False), ("delete", False)], None, 1),  # already cleaned
        ([("delete", False)], None, 1),  # unknown node deleted: upstream cleans
    ],
)
def test_state_machine(events: list, state: NodeState | None, cleanings: int) -> None:
    assert run(events) == (state, cleanings)


def shared_instance_update() -> dict:
    # shared-instance-update.json: config-a-359973 moved to node-b, slot 2 taken by node-b
    return {
        "apiVersion": "akri.sh/v0",
        "kind": "Instance",
        "metadata": {"name": "config-a-359973", "namespace": "config-a-namespace", "resourceVersion": "3"},
        "spec": {
            "configurationName": "config-a",
            "cdiName": "akri.sh/config-a=359973",
            "capacity": 5,
            "shared": True,
            "nodes": ["node-b"],
            "deviceUsage": {
                "config-a-359973-0": "",
                "config-a-359973-1": "",
                "config-a-359973-2": "node-b",
                "config-a-359973-3": "",
                "config-a-359973-4": "",
            },
        },
    }


def test_cleanup_vector_node_b_not_ready() -> None:
    inst = shared_instance_update()
    expected = copy.deepcopy(inst)
    expected["spec"]["nodes"] = []
    expected["spec"]["deviceUsage"]["config-a-359973-2"] = ""
    forget_node(inst, "node-b")
    assert inst == expected


def test_cleanup_leaves_other_nodes_and_frees_configuration_level_slots() -> None:
    # shared-instance-list-slots.json style: 3 nodes, instance- and configuration-level usages
    inst = {
        "metadata": {"name": "i", "namespace": "n"},
        "spec": {
            "nodes": ["node-a", "node-b", "node-c"],
            "deviceUsage": {
                "i-0": "node-b",
                "i-1": "node-a",
                "i-2": "C:config-a-0:node-b",
                "i-3": "node-a",
                "i-4": "node-c",
                "i-5": "",
                "i-6": "C:akri.sh/config-a-1:node-b",
            },
        },
    }
    forget_node(inst, "node-b")
    assert inst["spec"] == {
        "nodes": ["node-a", "node-c"],
        "deviceUsage": {
            "i-0": "",
            "i-1": "node-a",
            "i-2": "",
            "i-3": "node-a",
            "i-4": "node-c",
            "i-5": "",
            "i-6": "",
        },
    }


def test_cleanup_of_an_unrelated_node_changes_nothing() -> None:
    inst = shared_instance_update()
    before = copy.deepcopy(inst)
    assert not references_node(inst, "node-z")
    forget_node(inst, "node-z")
    assert inst == before


@pytest.mark.parametrize(
    ("value", "node_name"),
    [
        ("node-a", "node-a"),
        ("C:vdev1:node-a", "node-a"),
        ("", None),
        ("C:node-a", None),
        ("C:vd:ev:node-a", "node-a"),  # upstream's controller parser: node after the vdev
        ("a:b", None),
        (5, None),
        (None, None),
    ],
)
def test_usage_node(value: object, node_name: str | None) -> None:
    assert usage_node(value) == node_name


def test_instances_to_clean_by_nodes_or_slots() -> None:
    listed = {"metadata": {"name": "listed", "namespace": "n"}, "spec": {"nodes": ["node-a"]}}
    slot_only = {
        "metadata": {"name": "slot", "namespace": "n"},
        "spec": {"nodes": [], "deviceUsage": {"slot-0": "node-a"}},
    }
    other = {"metadata": {"name": "other", "namespace": "n"}, "spec": {"nodes": ["node-b"]}}
    broken = {"metadata": {"name": "broken", "namespace": "n"}, "spec": "not a mapping"}
    assert instances_to_clean([listed, slot_only, other, broken], "node-a") == [
        ("n", "listed"),
        ("n", "slot"),
    ]
