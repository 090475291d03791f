"""deviceUsage values and slot vectors (spec §3.1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from akri.model.usage import (
    FREE,
    ConfigurationUsage,
    Free,
    NodeUsage,
    format_usage,
    parse_usage,
    slot_vector,
    usage_map,
)


@pytest.mark.parametrize(
    ("value", "usage"),
    [
        ("node-a", NodeUsage("node-a")),
        ("C:vdev1:node-a", ConfigurationUsage("vdev1", "node-a")),
        ("", FREE),
        ("C:akri.sh/config-a-1:node-a", ConfigurationUsage("akri.sh/config-a-1", "node-a")),
        ("C", NodeUsage("C")),
    ],
)
def test_parse_usage_vectors(value, usage):
    assert parse_usage(value) == usage
    assert format_usage(usage) == value


@pytest.mark.parametrize("value", ["C:node-a", "a:b", "C:a:b:c", "X:vdev:node", "C::node-a", "C:vdev:", ":"])
def test_parse_usage_rejects(value):
    with pytest.raises(ValueError):
        parse_usage(value)


def test_parse_usage_rejects_non_strings():
    with pytest.raises(ValueError):
        parse_usage(None)  # type: ignore[arg-type]


def test_usage_nodes():
    assert Free().node is None
    assert NodeUsage("n").node == "n"
    assert ConfigurationUsage("v", "n").node == "n"


@pytest.mark.parametrize(
    "usage", [NodeUsage("a:b"), ConfigurationUsage("v:1", "n"), ConfigurationUsage("v", ""), NodeUsage("")]
)
def test_format_usage_refuses_what_cannot_be_parsed_back(usage):
    with pytest.raises(ValueError):
        format_usage(usage)


_part = st.text(
    alphabet=st.characters(blacklist_characters=":", blacklist_categories=("Cs",)), min_size=1, max_size=20
)


@given(st.one_of(st.just(FREE), _part.map(NodeUsage), st.builds(ConfigurationUsage, _part, _part)))
def test_format_parse_round_trip(usage):
    assert parse_usage(format_usage(usage)) == usage


def test_slot_vector_vector():
    usage = {"slot-1": "node-a", "slot-3": "C:vdev1:node-a"}
    assert slot_vector(usage, 4) == [FREE, NodeUsage("node-a"), FREE, ConfigurationUsage("vdev1", "node-a")]
    with pytest.raises(ValueError, match="out of range for capacity 1"):
        slot_vector(usage, 1)


def test_slot_vector_absent_and_empty_are_free():
    assert slot_vector({}, 3) == [FREE, FREE, FREE]
    assert slot_vector({"i-0": "", "i-2": "node-b"}, 3) == [FREE, FREE, NodeUsage("node-b")]


@pytest.mark.parametrize(
    ("usage", "fragment"),
    [
        ({"not-a-slot-id": "node-a"}, "not-a-slot-id"),
        ({"i-0": "C:node-a"}, "i-0"),
        ({"i-5": ""}, "out of range"),
    ],
)
def test_slot_vector_errors_name_the_key(usage, fragment):
    with pytest.raises(ValueError, match=fragment):
        slot_vector(usage, 5)


def test_slot_vector_fixture_with_more_slots_than_capacity():
    """shared-instance-list-slots.json has 6 slots for capacity 5 (spec §9.3): an error, not a crash."""
    usage = {
        f"config-a-359973-{i}": v
        for i, v in enumerate(["node-b", "node-a", "node-b", "node-a", "node-c", ""])
    }
    with pytest.raises(ValueError, match="config-a-359973-5"):
        slot_vector(usage, 5)
    assert slot_vector(usage, 6)[4] == NodeUsage("node-c")


def test_usage_map_inverse_of_slot_vector():
    slots = [
        ConfigurationUsage("akri.sh/config-a-1", "node-a"),
        NodeUsage("node-a"),
        NodeUsage("node-b"),
        FREE,
    ]
    mapping = usage_map("instance-a", slots)
    assert mapping == {
        "instance-a-0": "C:akri.sh/config-a-1:node-a",
        "instance-a-1": "node-a",
        "instance-a-2": "node-b",
    }
    assert slot_vector(mapping, 4) == slots
    assert usage_map("instance-a", slots, include_free=True)["instance-a-3"] == ""
