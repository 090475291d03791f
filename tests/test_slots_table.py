"""SlotTable: upstream's slot vectors (spec §3.1/§3.2), the fixed quirks, and twin equality.

Every test runs on the compiled table and on its pure twin; the hypothesis test drives both
with the same random operation sequences and requires identical observable state.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from akri._fast import pure
from akri.model import naming, usage

try:
    from akri._fast import _slots as compiled
except ImportError:  # extension not built: only the twin is tested
    compiled = None

needs_compiled = pytest.mark.skipif(compiled is None, reason="akri._fast._slots is not built")
IMPLS = [
    pytest.param(lambda: compiled.SlotTable, id="compiled", marks=needs_compiled),
    pytest.param(lambda: pure.SlotTable, id="pure"),
]
H, U = True, False


@pytest.fixture(params=IMPLS)
def Table(request: pytest.FixtureRequest) -> Any:
    return request.param()


def test_upstream_health_vector(Table: Any) -> None:
    # spec §3.2: capacity 3, {instance-a-1: node-b} on node-a -> [H, U, H]
    t = Table("instance-a", "node-a", 3)
    assert t.load({"instance-a-1": "node-b"}) == ([], [])
    assert t.health() == [H, U, H]
    # then {0: C:config-a-0:node-a, 1: node-b, 2: node-a} -> [U, U, H]; adopted slots 0 and 2
    problems, conflicts = t.load(
        {"instance-a-0": "C:config-a-0:node-a", "instance-a-1": "node-b", "instance-a-2": "node-a"}
    )
    assert (problems, conflicts) == ([], [])
    assert t.health() == [U, U, H]
    assert t.config_slots() == {"config-a-0": 0}
    assert t.binding(2) == 2 and t.bound_tokens() == [2]


def test_slot_vector_vector_and_out_of_range(Table: Any) -> None:
    # spec §3.1 vector with keys of this instance: capacity 4 -> [free, node-a, free, C(vdev1,node-a)]
    t = Table("slot", "node-x", 4)
    assert t.load({"slot-1": "node-a", "slot-3": "C:vdev1:node-a"}) == ([], [])
    assert [t.value(i) for i in range(4)] == ["", "node-a", "", "C:vdev1:node-a"]
    # capacity 1: index 3 is out of range -> reported and skipped, never an IndexError
    t1 = Table("slot", "node-x", 1)
    problems, _ = t1.load({"slot-1": "node-a", "slot-3": "C:vdev1:node-a"})
    assert len(problems) == 2 and all("out of range" in p for p in problems)
    assert t1.value(0) == "" and t1.health() == [H]


def test_removed_keys_become_free_quirk_fixed(Table: Any) -> None:
    # upstream update_slots kept keys that vanished; absent must mean free
    t = Table("inst", "node-a", 2)
    t.load({"inst-0": "node-b", "inst-1": "C:cfg-0:node-b"})
    assert t.health() == [U, U]
    t.load({})
    assert t.health() == [H, H] and t.free_count() == 2
    t.load({"inst-0": "", "inst-1": ""})
    assert t.free_count() == 2


def test_invalid_entries_reported_and_slot_kept_away(Table: Any) -> None:
    t = Table("inst", "node-a", 3)
    problems, _ = t.load(
        {"inst-0": "C:node-a", "other-1": "node-b", "inst-x": "n", "inst-01": "n", "inst-2": "a:b"}
    )
    assert len(problems) == 5
    assert any("'inst-0'" in p and "invalid usage" in p for p in problems)
    assert any("not a slot of instance" in p and "'other-1'" in p for p in problems)
    # invalid values hold their slot for "someone else": never offered, never claimed
    assert t.health() == [U, H, U]
    assert not t.claim(0) and t.value(0) == "C:node-a"


def test_claim_rules(Table: Any) -> None:
    t = Table("inst", "node-a", 4)
    t.load({"inst-0": "C:cfg-1:node-a", "inst-1": "node-a", "inst-2": "node-b"})
    assert not t.claim(0)  # configuration-level use, even our own
    assert t.claim(1)  # already ours: "kubelet knows best"
    assert not t.claim(2)  # another node's
    assert t.claim(3)
    assert t.owned() == {"inst-0": "C:cfg-1:node-a", "inst-1": "node-a", "inst-3": "node-a"}
    assert t.first_free() == -1 and t.claim_config("cfg-2") == -1
    t.release(3)
    assert t.claim_config("cfg-2") == 3 and t.config_slots() == {"cfg-1": 0, "cfg-2": 3}
    with pytest.raises(IndexError):
        t.claim(4)


def test_sticky_local_slots_and_conflicts(Table: Any) -> None:
    t = Table("inst", "node-a", 3)
    assert t.claim(1)
    t.bind(1, 1)
    assert t.claim_config_at(2, "cfg-0")
    # an event older than our writes: our slots show free -> kept, reported as conflicts
    problems, conflicts = t.load({"inst-0": "node-b"})
    assert problems == [] and conflicts == [1, 2]
    assert t.owned() == {"inst-1": "node-a", "inst-2": "C:cfg-0:node-a"} and t.binding(1) == 1
    # the map that includes our writes is no conflict
    assert t.load({"inst-0": "node-b", "inst-1": "node-a", "inst-2": "C:cfg-0:node-a"}) == ([], [])


def test_adoption_after_restart_and_released_tombstones(Table: Any) -> None:
    t = Table("inst", "node-a", 3)
    t.load({"inst-0": "node-a", "inst-2": "C:cfg-4:node-a"})
    assert t.bound_tokens() == [0] and t.config_slots() == {"cfg-4": 2}
    t.release(0)
    # a stale map still shows slot 0 as ours: with the release remembered it stays free
    t.load({"inst-0": "node-a", "inst-2": "C:cfg-4:node-a"}, released=[0])
    assert t.value(0) == "" and t.bound_tokens() == []


def test_alias_binding_keeps_health_count_right(Table: Any) -> None:
    # node-a's kubelet got id 0 after node-b won slot 0: id 0 is backed by slot 1
    t = Table("inst", "node-a", 3)
    t.load({"inst-0": "node-b"})
    assert t.claim(1)
    t.bind(0, 1)
    # id 0 in use (Healthy); one slot (2) is still free -> exactly one more Healthy id, id 2
    assert t.health() == [H, U, H]
    # node-b frees slot 0: two slots could still be taken (0 and 2) -> ids 1 and 2 offered
    t.load({"inst-1": "node-a"})
    assert t.health() == [H, H, H] and t.free_count() == 2
    assert t.binding(0) == 1 and t.token_of(1) == 0
    t.unbind(0)
    assert t.unbacked() == [1]
    # id 1 taking its own (already ours) slot again: identity binding
    t.bind(1, 1)
    assert t.bound_tokens() == [1]


def test_resize_grows_and_drops_our_slots(Table: Any) -> None:
    t = Table("inst", "node-a", 2)
    t.load({"inst-1": "node-a"})
    assert t.resize(4) == [] and t.capacity == 4 and t.health() == [H, H, H, H]
    assert t.claim_config_at(3, "cfg-0")
    assert t.resize(1) == [1, 3]
    assert t.capacity == 1 and t.bound_tokens() == [] and t.owned() == {}
    with pytest.raises(ValueError):
        t.resize(-1)


def test_bad_construction(Table: Any) -> None:
    with pytest.raises(ValueError, match="capacity"):
        Table("inst", "node-a", -1)
    with pytest.raises(ValueError, match="node"):
        Table("inst", "", 1)


@pytest.mark.parametrize(
    "value", ["", "node-a", "C:v:node-a", "C:node-a", "a:b", "C::n", "C:v:", "x:y:z", "C:a:b:c", "C", ":"]
)
def test_value_parsing_agrees_with_model_usage(Table: Any, value: str) -> None:
    """The table reads deviceUsage values exactly like akri.model.usage.parse_usage."""
    t = Table("inst", "node-z", 1)
    problems, _ = t.load({"inst-0": value})
    try:
        parsed = usage.parse_usage(value)
    except ValueError:
        assert len(problems) == 1 and t.health() == [U]
        return
    assert problems == []
    match parsed:
        case usage.Free():
            assert t.state(0) == 0
        case usage.NodeUsage(node=n):
            assert t.state(0) == 1 and t.value(0) == n
        case usage.ConfigurationUsage():
            assert t.state(0) == 2 and t.value(0) == usage.format_usage(parsed)


def test_slot_ids_match_naming(Table: Any) -> None:
    t = Table("akri-debug-echo-foo-d46b65", "node-a", 3)
    assert [t.slot_id(i) for i in range(3)] == [naming.slot_id(t.instance, i) for i in range(3)]
    assert naming.slot_index(t.slot_id(2)) == 2


# --- twins: random operation sequences --------------------------------------------------------

NODES = ["node-a", "node-b", "node-c"]
usage_value = st.one_of(
    st.just(""),
    st.sampled_from(NODES),
    st.builds(lambda v, n: f"C:cfg-{v}:{n}", st.integers(0, 3), st.sampled_from(NODES)),
    st.sampled_from(["C:bad", "a:b", "C::node-a"]),
)
usage_map = st.dictionaries(
    st.one_of(
        st.builds(lambda i: f"inst-{i}", st.integers(0, 7)), st.sampled_from(["inst-01", "x-1", "inst-"])
    ),
    usage_value,
    max_size=8,
)
op = st.one_of(
    st.tuples(st.just("load"), usage_map, st.lists(st.integers(0, 7), max_size=3)),
    st.tuples(st.just("claim"), st.integers(0, 7)),
    st.tuples(st.just("claim_config"), st.integers(0, 3)),
    st.tuples(st.just("claim_config_at"), st.integers(0, 7), st.integers(0, 3)),
    st.tuples(st.just("release"), st.integers(0, 7)),
    st.tuples(st.just("mark_taken"), st.integers(0, 7)),
    st.tuples(st.just("bind"), st.integers(0, 7), st.integers(0, 7)),
    st.tuples(st.just("unbind"), st.integers(0, 7)),
    st.tuples(st.just("resize"), st.integers(0, 8)),
)


def apply(table: Any, operation: tuple) -> Any:
    name, *args = operation
    try:
        if name == "claim_config":
            return table.claim_config(f"cfg-{args[0]}")
        if name == "claim_config_at":
            return table.claim_config_at(args[0], f"cfg-{args[1]}")
        if name == "load":
            return table.load(args[0], args[1])
        return getattr(table, name)(*args)
    except (IndexError, ValueError) as exc:
        return (type(exc).__name__, str(exc))


def snapshot(table: Any) -> tuple:
    cap = table.capacity
    return (
        cap,
        [table.value(i) for i in range(cap)],
        [table.binding(i) for i in range(cap)],
        table.health(),
        table.owned(),
        table.config_slots(),
        table.first_free(),
        table.free_count(),
        table.unbacked(),
        table.node_slots(),
        repr(table),
    )


@needs_compiled
@settings(max_examples=300, deadline=None)
@given(capacity=st.integers(0, 6), ops=st.lists(op, max_size=25))
def test_twins_agree_on_random_sequences(capacity: int, ops: list[tuple]) -> None:
    a = compiled.SlotTable("inst", "node-a", capacity)
    b = pure.SlotTable("inst", "node-a", capacity)
    for operation in ops:
        assert apply(a, operation) == apply(b, operation), operation
        assert snapshot(a) == snapshot(b), operation
        # invariant: Healthy ids = bound ids + slots this node could still take
        h = a.health()
        could_take = a.free_count() + len(a.unbacked())
        assert sum(h) == len(a.bound_tokens()) + could_take
