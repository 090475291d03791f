"""The API double over real HTTP, driven by lightkube's AsyncClient (the client agent and controller use)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from lightkube import ApiError, AsyncClient, KubeConfig
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap, Node, Pod
from lightkube.types import CascadeType, PatchType

from akri.testing.apiserver import ApiServer
from akri.testing.fixtures import apiserver_fixture  # noqa: F401

pytestmark = pytest.mark.slow

Instance = create_namespaced_resource("akri.sh", "v0", "Instance", "instances")


@pytest_asyncio.fixture
async def client(apiserver: ApiServer) -> AsyncIterator[AsyncClient]:
    kube = AsyncClient(KubeConfig.from_file(apiserver.kubeconfig_path))
    yield kube
    await kube.close()


def new_instance(name: str, labels: dict[str, str] | None = None, **spec: object) -> Instance:
    return Instance(metadata=ObjectMeta(name=name, labels=labels), spec=dict(spec))


def new_pod(name: str, node: str | None = None, **meta: object) -> Pod:
    spec: dict = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return Pod.from_dict({"metadata": {"name": name, **meta}, "spec": spec})


async def collect(stream: AsyncIterator, count: int) -> list:
    out = []
    async with asyncio.timeout(10):
        async for item in stream:
            out.append(item)
            if len(out) == count:
                break
    return out


async def test_create_get_conflict_and_not_found(client: AsyncClient) -> None:
    created = await client.create(new_instance("i1", nodes=["n1"]))
    meta = created.metadata
    assert meta.uid and meta.resourceVersion and meta.creationTimestamp and meta.generation == 1
    assert meta.namespace == "default"  # filled from the URL
    assert (await client.get(Instance, "i1")).spec == {"nodes": ["n1"]}
    with pytest.raises(ApiError) as err:
        await client.create(new_instance("i1"))
    assert err.value.status.code == 409 and err.value.status.reason == "AlreadyExists"
    with pytest.raises(ApiError) as err:
        await client.get(Instance, "missing")
    assert err.value.status.code == 404 and err.value.status.reason == "NotFound"
    assert err.value.status.message == 'instances.akri.sh "missing" not found'
    generated = await client.create(Instance(metadata=ObjectMeta(generateName="cfg-"), spec={}))
    assert generated.metadata.name.startswith("cfg-")


async def test_create_with_mismatched_namespace_is_400(apiserver: ApiServer) -> None:
    async with aiohttp.ClientSession(apiserver.url) as http:
        body = {
            "apiVersion": "akri.sh/v0",
            "kind": "Instance",
            "metadata": {"name": "x", "namespace": "other"},
        }
        async with http.post("/apis/akri.sh/v0/namespaces/default/instances", json=body) as resp:
            status = await resp.json()
            assert resp.status == 400
        assert (status["kind"], status["status"], status["reason"]) == ("Status", "Failure", "BadRequest")
        async with http.post("/apis/akri.sh/v0/instances", json=body) as resp:  # no namespace in the URL
            assert resp.status == 405 and (await resp.json())["reason"] == "MethodNotAllowed"


async def test_list_with_label_and_field_selectors(client: AsyncClient) -> None:
    await client.create(new_instance("a", {"akri.sh/configuration": "cfg1", "tier": "x"}))
    await client.create(new_instance("b", {"akri.sh/configuration": "cfg2"}))
    await client.create(new_instance("c", {"akri.sh/configuration": "cfg1"}), namespace="other")

    async def names(**kw: object) -> list[str]:
        return sorted([o.metadata.name async for o in client.list(Instance, **kw)])

    assert await names(labels={"akri.sh/configuration": "cfg1"}) == ["a"]
    assert await names(labels={"akri.sh/configuration": "cfg1"}, namespace="*") == ["a", "c"]
    assert await names(labels={"tier": None}) == ["a"]  # exists
    assert await names(labels={"akri.sh/configuration": ("cfg1", "cfg2")}) == ["a", "b"]  # in
    assert await names(fields={"metadata.name": "b"}) == ["b"]
    await client.create(new_pod("on-n1", node="n1"))
    await client.create(new_pod("on-n2", node="n2"))
    pods = [p.metadata.name async for p in client.list(Pod, fields={"spec.nodeName": "n1"})]
    assert pods == ["on-n1"]
    listing = client.list(Instance, namespace="*")
    assert len([i async for i in listing]) == 3
    assert int(listing.resourceVersion) > 0


async def test_list_pages_with_limit_and_continue(client: AsyncClient) -> None:
    for i in range(5):
        await client.create(new_instance(f"i{i}"))
    pages = client.list(Instance, chunk_size=2)
    assert [o.metadata.name async for o in pages] == ["i0", "i1", "i2", "i3", "i4"]


async def test_replace_and_stale_resource_version(client: AsyncClient) -> None:
    created = await client.create(new_instance("i1", nodes=[]))
    created.spec["nodes"] = ["n1"]
    replaced = await client.replace(created)
    assert replaced.spec == {"nodes": ["n1"]} and replaced.metadata.generation == 2
    created.spec["nodes"] = ["stale"]  # still carries the first resourceVersion
    with pytest.raises(ApiError) as err:
        await client.replace(created)
    assert err.value.status.code == 409 and err.value.status.reason == "Conflict"
    assert (
        "the object has been modified; please apply your changes to the latest version"
        in err.value.status.message
    )
    with pytest.raises(ApiError) as err:
        await client.patch(
            Instance,
            "i1",
            {"metadata": {"resourceVersion": created.metadata.resourceVersion}, "spec": {"nodes": []}},
            patch_type=PatchType.MERGE,
        )
    assert err.value.status.code == 409
    # Built-in types allow an unconditional PUT (no resourceVersion).
    await client.create(ConfigMap(metadata=ObjectMeta(name="cm"), data={"a": "1"}))
    updated = await client.replace(ConfigMap(metadata=ObjectMeta(name="cm"), data={"a": "2"}))
    assert updated.data == {"a": "2"}


async def test_merge_json_and_strategic_patches(client: AsyncClient) -> None:
    await client.create(new_instance("i1", {"a": "b"}, nodes=["n1"], shared=True))
    merged = await client.patch(
        Instance, "i1", {"spec": {"shared": None, "capacity": 2}}, patch_type=PatchType.MERGE
    )
    assert merged.spec == {"nodes": ["n1"], "capacity": 2}
    ops = [
        {"op": "test", "path": "/spec/capacity", "value": 2},
        {"op": "add", "path": "/spec/nodes/-", "value": "n2"},
    ]
    patched = await client.patch(Instance, "i1", ops, patch_type=PatchType.JSON)
    assert patched.spec["nodes"] == ["n1", "n2"]
    with pytest.raises(ApiError) as err:
        await client.patch(
            Instance, "i1", [{"op": "test", "path": "/spec/capacity", "value": 3}], patch_type=PatchType.JSON
        )
    assert err.value.status.code == 422
    with pytest.raises(ApiError) as err:  # as the real API: no strategic merge patch for custom resources
        await client.patch(Instance, "i1", {"spec": {}}, patch_type=PatchType.STRATEGIC)
    assert err.value.status.code == 415
    await client.create(new_pod("p", finalizers=["a/b"]))
    pod = await client.patch(Pod, "p", {"metadata": {"finalizers": ["c/d"]}})  # lightkube default: strategic
    assert pod.metadata.finalizers == ["a/b", "c/d"]


async def test_server_side_apply_approximation(client: AsyncClient) -> None:
    applied = await client.apply(new_instance("i1", nodes=["n1"]), field_manager="akri-test")
    assert applied.metadata.managedFields[0].manager == "akri-test"
    again = await client.apply(
        Instance(metadata=ObjectMeta(name="i1"), spec={"capacity": 1}), field_manager="akri-test"
    )
    assert again.spec == {"nodes": ["n1"], "capacity": 1}
    assert len(again.metadata.managedFields) == 1


async def test_pod_status_subresource_and_generation(client: AsyncClient) -> None:
    pod = await client.create(new_pod("p", node="n1"))
    assert pod.status.phase == "Pending"
    running = await client.patch(Pod.Status, "p", {"status": {"phase": "Running"}})
    assert running.status.phase == "Running" and running.metadata.generation == pod.metadata.generation
    ignored = await client.patch(Pod, "p", {"status": {"phase": "Failed"}})
    assert ignored.status.phase == "Running"
    node = await client.create(
        Node.from_dict({"metadata": {"name": "n1"}, "status": {"capacity": {"cpu": "2"}}})
    )
    assert node.status.capacity == {"cpu": "2"}  # nodes keep the status they are registered with
    inst = await client.create(new_instance("i1", nodes=[]))
    relabelled = await client.patch(
        Instance, "i1", {"metadata": {"labels": {"x": "y"}}}, patch_type=PatchType.MERGE
    )
    assert relabelled.metadata.generation == inst.metadata.generation
    respecced = await client.patch(Instance, "i1", {"spec": {"nodes": ["a"]}}, patch_type=PatchType.MERGE)
    assert respecced.metadata.generation == inst.metadata.generation + 1


async def test_watch_from_resource_version_delivers_exactly_later_events(client: AsyncClient) -> None:
    await client.create(new_instance("before"))
    mark = (await client.create(new_instance("a"))).metadata.resourceVersion
    b = await client.create(new_instance("b", {"x": "1"}))
    await client.patch(Instance, "a", {"spec": {"n": 1}}, patch_type=PatchType.MERGE)
    await client.delete(Instance, "b")
    events = await collect(client.watch(Instance, resource_version=mark), 3)
    assert [(t, o.metadata.name) for t, o in events] == [("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")]
    assert int(events[2][1].metadata.resourceVersion) > int(b.metadata.resourceVersion)
    versions = [int(o.metadata.resourceVersion) for _, o in events]
    assert versions == sorted(versions) and versions[0] > int(mark)


async def test_watch_without_version_starts_with_current_objects(client: AsyncClient) -> None:
    await client.create(new_instance("a", {"sel": "1"}))
    await client.create(new_instance("b"))
    stream = client.watch(Instance, labels={"sel": "1"})
    first = await collect(stream, 1)
    assert [(t, o.metadata.name) for t, o in first] == [("ADDED", "a")]
    await client.patch(Instance, "b", {"metadata": {"labels": {"sel": "1"}}}, patch_type=PatchType.MERGE)
    await client.patch(Instance, "a", {"metadata": {"labels": {"sel": "2"}}}, patch_type=PatchType.MERGE)
    later = await collect(stream, 2)
    assert [(t, o.metadata.name) for t, o in later] == [("ADDED", "b"), ("DELETED", "a")]


async def test_watch_too_old_version_is_410() -> None:
    async with ApiServer(history_size=3) as api:
        kube = AsyncClient(KubeConfig.from_file(api.kubeconfig_path))
        try:
            old = (await kube.create(new_instance("a"))).metadata.resourceVersion
            for i in range(4):
                await kube.patch(Instance, "a", {"spec": {"n": i}}, patch_type=PatchType.MERGE)
            with pytest.raises(ApiError) as err:
                await collect(kube.watch(Instance, resource_version=old), 1)
            assert err.value.status.code == 410 and "too old resource version" in err.value.status.message
        finally:
            await kube.close()


async def test_watch_server_timeout_ends_the_stream(apiserver: ApiServer) -> None:
    params = {
        "watch": "1",
        "timeoutSeconds": "1",
        "allowWatchBookmarks": "true",
        "resourceVersion": str(apiserver.store.resource_version),
    }
    async with aiohttp.ClientSession(apiserver.url) as http, asyncio.timeout(10):
        async with http.get("/apis/akri.sh/v0/instances", params=params) as resp:
            text = await resp.text()  # returns only because the server ends the stream
            assert resp.status == 200
    lines = [line for line in text.splitlines() if line]
    assert lines and '"type":"BOOKMARK"' in lines[-1]


async def test_finalizers_keep_an_object_until_removed(client: AsyncClient) -> None:
    mark = (
        await client.create(Instance(metadata=ObjectMeta(name="i", finalizers=["akri.sh/hold"]), spec={}))
    ).metadata.resourceVersion
    await client.delete(Instance, "i")
    held = await client.get(Instance, "i")
    assert held.metadata.deletionTimestamp is not None and held.metadata.deletionGracePeriodSeconds == 0
    await client.patch(Instance, "i", {"metadata": {"finalizers": None}}, patch_type=PatchType.MERGE)
    with pytest.raises(ApiError):
        await client.get(Instance, "i")
    events = await collect(client.watch(Instance, resource_version=mark), 2)
    assert [t for t, _ in events] == ["MODIFIED", "DELETED"]


async def test_garbage_collection_of_dependents(client: AsyncClient) -> None:
    owner = await client.create(new_instance("owner"))
    ref = {
        "apiVersion": "akri.sh/v0",
        "kind": "Instance",
        "name": "owner",
        "uid": owner.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
    pods = [await client.create(new_pod(f"broker-{i}", ownerReferences=[ref])) for i in range(3)]
    mark = pods[-1].metadata.resourceVersion
    await client.delete(Instance, "owner")
    deleted = await collect(client.watch(Pod, resource_version=mark), 3)
    assert sorted((t, o.metadata.name) for t, o in deleted) == [("DELETED", f"broker-{i}") for i in range(3)]
    assert [p async for p in client.list(Pod)] == []


async def test_orphan_delete_removes_owner_reference(client: AsyncClient) -> None:
    owner = await client.create(new_instance("owner"))
    ref = {"apiVersion": "akri.sh/v0", "kind": "Instance", "name": "owner", "uid": owner.metadata.uid}
    await client.create(new_pod("p", ownerReferences=[ref]))
    mark = owner.metadata.resourceVersion
    await client.delete(Instance, "owner", cascade=CascadeType.ORPHAN)
    events = await collect(client.watch(Instance, resource_version=mark), 2)
    assert [t for t, _ in events] == ["MODIFIED", "DELETED"]  # orphan finalizer, then gone
    assert (await client.get(Pod, "p")).metadata.ownerReferences is None
