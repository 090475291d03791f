"""akri.kube against the API double over real HTTP: CRUD, guarded updates, finalizers, config loading."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from akri.kube import DELETE, Configuration, Instance, Kube, KubeConfigError, has_finalizer, is_conflict
from akri.kube import config as kube_config
from akri.retry import RetriesExhausted
from akri.testing.apiserver import ApiServer

pytestmark = pytest.mark.slow


@pytest.fixture
async def api():
    async with ApiServer() as server:
        yield server


@pytest.fixture
async def kube(api):
    k = Kube.from_config(api.kubeconfig_path)
    yield k
    await k.close()


def instance_body(name: str = "cfg-abc123", **spec) -> dict:
    return {
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "configurationName": "cfg",
            "cdiName": "akri.sh/cfg=abc123",
            "capacity": 2,
            "nodes": [],
            "deviceUsage": {},
            **spec,
        },
    }


async def test_crud_round_trip(kube: Kube) -> None:
    assert await kube.get_or_none(Instance, "cfg-abc123", "default") is None
    created = await kube.create(Instance, instance_body())
    assert created["metadata"]["uid"]
    got = await kube.get(Instance, "cfg-abc123", "default")
    assert got["spec"]["capacity"] == 2
    items, rv = await kube.list(Instance)
    assert [o["metadata"]["name"] for o in items] == ["cfg-abc123"]
    assert rv is not None and int(rv) >= int(created["metadata"]["resourceVersion"])
    assert await kube.delete(Instance, "cfg-abc123", "default") is True
    assert await kube.delete(Instance, "cfg-abc123", "default") is False  # already gone, missing_ok


async def test_stale_replace_is_a_conflict(kube: Kube) -> None:
    created = await kube.create(Instance, instance_body())
    await kube.merge_patch(Instance, "cfg-abc123", {"spec": {"capacity": 3}}, "default")
    stale = dict(created)
    stale["spec"] = {**created["spec"], "capacity": 9}
    with pytest.raises(Exception) as info:
        await kube.replace(Instance, stale)
    assert is_conflict(info.value)
    assert (await kube.get(Instance, "cfg-abc123", "default"))["spec"]["capacity"] == 3


async def test_concurrent_read_modify_write_loses_nothing(api: ApiServer) -> None:
    """Eight writers, each on its own connection, add themselves to one `nodes` list at once."""
    clients = [Kube.from_config(api.kubeconfig_path, timeout=20) for _ in range(8)]
    try:
        await clients[0].create(Instance, instance_body())

        async def join(k: Kube, node: str):
            return await k.update_with_retry(
                Instance, "cfg-abc123", "default", lambda o: o["spec"]["nodes"].append(node), attempts=20
            )

        await asyncio.gather(*(join(k, f"node-{i}") for i, k in enumerate(clients)))
        final = await clients[0].get(Instance, "cfg-abc123", "default")
        assert sorted(final["spec"]["nodes"]) == sorted(f"node-{i}" for i in range(8))
    finally:
        for k in clients:
            await k.close()


async def test_unchanged_mutation_writes_nothing(kube: Kube) -> None:
    created = await kube.create(Instance, instance_body(nodes=["a"]))

    def mutate(o):
        if "a" not in o["spec"]["nodes"]:
            o["spec"]["nodes"].append("a")

    same = await kube.update_with_retry(Instance, "cfg-abc123", "default", mutate)
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_update_gives_up_after_bounded_conflicts(api: ApiServer, kube: Kube) -> None:
    await kube.create(Instance, instance_body())
    calls = []

    def mutate(o):
        calls.append(1)
        # another writer changes the object between our read and our write, every time
        api.store.patch_object(
            "instances", "cfg-abc123", {"spec": {"capacity": 10 + len(calls)}}, namespace="default"
        )
        o["spec"]["nodes"].append("late")

    with pytest.raises(RetriesExhausted):
        await kube.update_with_retry(Instance, "cfg-abc123", "default", mutate, attempts=3)
    assert len(calls) == 3
    assert (await kube.get(Instance, "cfg-abc123", "default"))["spec"]["nodes"] == []


async def test_update_of_missing_object_returns_none(kube: Kube) -> None:
    assert await kube.update_with_retry(Instance, "nope", "default", lambda o: None) is None


async def test_delete_is_guarded_by_the_version_read(kube: Kube) -> None:
    created = await kube.create(Instance, instance_body())
    await kube.merge_patch(Instance, "cfg-abc123", {"spec": {"nodes": ["b"]}}, "default")
    with pytest.raises(Exception) as info:
        await kube.delete(
            Instance, "cfg-abc123", "default", resource_version=created["metadata"]["resourceVersion"]
        )
    assert is_conflict(info.value)
    # a mutate that decides to delete reads first, so its delete carries the current version
    assert await kube.update_with_retry(Instance, "cfg-abc123", "default", lambda o: DELETE) is None
    assert await kube.get_or_none(Instance, "cfg-abc123", "default") is None


async def test_finalizers_add_remove_idempotent(kube: Kube) -> None:
    await kube.create(
        Configuration,
        {
            "metadata": {"name": "cfg", "namespace": "default"},
            "spec": {"discoveryHandler": {"name": "debugEcho"}},
        },
    )
    for _ in range(2):
        obj = await kube.add_finalizer(Configuration, "cfg", "default", "node-a")
    await kube.add_finalizer(Configuration, "cfg", "default", "node-b")
    obj = await kube.get(Configuration, "cfg", "default")
    assert obj["metadata"]["finalizers"] == ["node-a", "node-b"]
    # a finalizer holds deletion until every node removed its own
    await kube.delete(Configuration, "cfg", "default")
    obj = await kube.remove_finalizer(Configuration, "cfg", "default", "node-a")
    assert obj is not None and obj["metadata"]["deletionTimestamp"]
    assert not has_finalizer(obj, "node-a") and has_finalizer(obj, "node-b")
    await kube.remove_finalizer(Configuration, "cfg", "default", "node-b")
    assert await kube.get_or_none(Configuration, "cfg", "default") is None
    # removing from a vanished object is not an error
    assert await kube.remove_finalizer(Configuration, "cfg", "default", "node-b") is None


# --- client construction -------------------------------------------------------------------


def test_explicit_kubeconfig_path(tmp_path: Path) -> None:
    from akri.testing.apiserver import write_kubeconfig

    path = write_kubeconfig("http://127.0.0.1:6443", tmp_path / "kc")
    assert kube_config.load_config(path).cluster.server == "http://127.0.0.1:6443"
    with pytest.raises(KubeConfigError, match="does not exist"):
        kube_config.load_config(tmp_path / "missing")


def test_kubeconfig_env_first_existing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from akri.testing.apiserver import write_kubeconfig

    path = write_kubeconfig("http://127.0.0.1:7443", tmp_path / "kc")
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'nope'}:{path}")
    assert kube_config.load_config().cluster.server == "http://127.0.0.1:7443"


def test_in_cluster_service_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text("tok")
    (sa / "namespace").write_text("akri")
    (sa / "ca.crt").write_text("")
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    monkeypatch.setattr(kube_config, "SERVICE_ACCOUNT", str(sa))
    cfg = kube_config.load_config()
    assert cfg.cluster.server == "https://10.0.0.1:443"
    assert cfg.namespace == "akri"


def test_nothing_configured_names_what_was_tried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(kube_config, "DEFAULT_KUBECONFIG", str(tmp_path / ".kube" / "config"))
    with pytest.raises(KubeConfigError, match="in-cluster"):
        kube_config.load_config()
