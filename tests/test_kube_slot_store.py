"""KubeSlotStore: deviceUsage claims with optimistic concurrency, against the API double."""

from __future__ import annotations

import asyncio

import pytest

from akri.kube import Kube
from akri.kube.slot_store import KubeSlotStore
from akri.testing.apiserver import ApiServer

pytestmark = pytest.mark.slow

NAME = "cfg-d46b65"


@pytest.fixture
async def api():
    async with ApiServer() as server:
        server.store.create_object(
            "instances",
            {
                "apiVersion": "akri.sh/v0",
                "kind": "Instance",
                "metadata": {"name": NAME, "namespace": "default"},
                "spec": {
                    "configurationName": "cfg",
                    "cdiName": "akri.sh/cfg=d46b65",
                    "capacity": 20,
                    "shared": True,
                    "nodes": ["node-a", "node-b"],
                    "deviceUsage": {},
                },
            },
            namespace="default",
        )
        yield server


@pytest.fixture
async def stores(api):
    kubes = [Kube.from_config(api.kubeconfig_path) for _ in range(2)]
    yield KubeSlotStore(kubes[0], "node-a"), KubeSlotStore(kubes[1], "node-b")
    for k in kubes:
        await k.close()


def usage(api: ApiServer) -> dict:
    return api.store.get_object("instances", NAME, "default")["spec"]["deviceUsage"]


async def test_two_nodes_racing_for_one_slot_exactly_one_wins(api, stores) -> None:
    a, b = stores
    for i in range(20):
        slot = f"{NAME}-{i}"
        won = await asyncio.gather(
            a.claim("default", NAME, slot, "node-a"), b.claim("default", NAME, slot, "node-b")
        )
        assert sorted(won) == [False, True], (slot, won)
        winner = "node-a" if won[0] else "node-b"
        assert usage(api)[slot] == winner
    assert len(usage(api)) == 20


async def test_claim_rules(api, stores) -> None:
    a, b = stores
    slot0, slot1 = f"{NAME}-0", f"{NAME}-1"
    assert await a.claim("default", NAME, slot0, "node-a")
    rv = api.store.get_object("instances", NAME, "default")["metadata"]["resourceVersion"]
    # the kubelet asking again for a slot this node holds: fine, and nothing is written
    assert await a.claim("default", NAME, slot0, "node-a")
    assert api.store.get_object("instances", NAME, "default")["metadata"]["resourceVersion"] == rv
    # this node may turn its own slot into a configuration-level claim
    assert await a.claim("default", NAME, slot0, "C:cfg-0:node-a")
    # another node's slot is not available
    assert not await b.claim("default", NAME, slot0, "node-b")
    assert not await b.claim("default", NAME, slot0, "C:cfg-1:node-b")
    assert usage(api) == {slot0: "C:cfg-0:node-a"}
    # "" written by the controller's node watcher means free
    api.store.patch_object("instances", NAME, {"spec": {"deviceUsage": {slot1: ""}}}, namespace="default")
    assert await b.claim("default", NAME, slot1, "node-b")
    # out of range for capacity 20, and a missing Instance
    assert not await a.claim("default", NAME, f"{NAME}-20", "node-a")
    assert not await a.claim("default", NAME, "not-a-slot-x", "node-a")
    assert not await a.claim("default", "gone", "gone-0", "node-a")


async def test_release_only_frees_the_expected_claim(api, stores) -> None:
    a, b = stores
    slot = f"{NAME}-3"
    assert await b.claim("default", NAME, slot, "node-b")
    # node-a releasing with its own (wrong) value must not free node-b's claim
    assert not await a.release("default", NAME, slot, "node-a")
    assert usage(api) == {slot: "node-b"}
    assert await b.release("default", NAME, slot, "node-b")
    assert usage(api) == {}
    # releasing a free slot, or on a vanished Instance, is fine
    assert await b.release("default", NAME, slot, "node-b")
    assert await b.release("default", "gone", "gone-0", "node-b")
    assert await a.claim("default", NAME, slot, "node-a")


async def test_many_nodes_many_slots_no_double_allocation(api) -> None:
    """Four nodes each try to take every slot: every slot ends with exactly one owner, and each
    node's True answers are exactly the slots it owns."""
    kubes = [Kube.from_config(api.kubeconfig_path, timeout=20) for _ in range(4)]
    try:
        stores = [KubeSlotStore(k, f"n{i}", attempts=30) for i, k in enumerate(kubes)]
        slots = [f"{NAME}-{i}" for i in range(6)]
        results = await asyncio.gather(
            *(s.claim("default", NAME, slot, s.node) for slot in slots for s in stores)
        )
        final = usage(api)
        assert set(final) == set(slots)
        for (slot, store), ok in zip([(slot, s) for slot in slots for s in stores], results, strict=True):
            assert ok == (final[slot] == store.node)
    finally:
        for k in kubes:
            await k.close()


async def test_is_the_plugins_slot_store_and_raises_when_it_cannot_tell(tmp_path) -> None:
    from akri.agent.plugins.slot_store import SlotStore
    from akri.testing.apiserver import write_kubeconfig

    kube = Kube.from_config(write_kubeconfig("http://127.0.0.1:9", tmp_path / "kc"))
    try:
        store = KubeSlotStore(kube, "node-a")
        assert isinstance(store, SlotStore)
        # no API server: neither "won" nor "lost", so the plugin can answer UNAVAILABLE
        with pytest.raises(Exception):  # noqa: B017 - the transport error itself
            await store.claim("default", NAME, f"{NAME}-0", "node-a")
    finally:
        await kube.close()
