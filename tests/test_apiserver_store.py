"""Write, watch and garbage-collection semantics of the API double's store (no HTTP here; the
clients' view of the same rules is in test_apiserver_lightkube/kubernetes)."""

from __future__ import annotations

import asyncio

import pytest

from akri.testing.apiserver import ApiError, Store


def instance(name: str, **spec: object) -> dict:
    return {"apiVersion": "akri.sh/v0", "kind": "Instance", "metadata": {"name": name}, "spec": dict(spec)}


def owner_ref(obj: dict, *, block: bool = False) -> dict:
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "blockOwnerDeletion": block,
    }


def pod(name: str, *owners: dict, finalizers: list[str] | None = None) -> dict:
    meta: dict = {"name": name, "ownerReferences": list(owners)}
    if finalizers:
        meta["finalizers"] = finalizers
    return {"metadata": meta, "spec": {"containers": [{"name": "c", "image": "i"}]}}


async def settle() -> None:
    """Let the garbage collector (scheduled with call_soon) run."""
    for _ in range(3):
        await asyncio.sleep(0)


def test_one_cluster_wide_resource_version_counter() -> None:
    store = Store()
    start = store.resource_version
    a = store.create_object("instances", instance("a"))
    cm = store.create_object("configmaps", {"metadata": {"name": "c"}, "data": {}})
    assert int(a["metadata"]["resourceVersion"]) == start + 1
    assert int(cm["metadata"]["resourceVersion"]) == start + 2
    assert a["metadata"]["uid"] != cm["metadata"]["uid"]
    assert a["metadata"]["creationTimestamp"].endswith("Z")


def test_generation_counts_spec_changes_only() -> None:
    store = Store()
    store.create_object("instances", instance("a", nodes=[]))
    labelled = store.patch_object("instances", "a", {"metadata": {"labels": {"x": "y"}}})
    assert labelled["metadata"]["generation"] == 1
    changed = store.patch_object("instances", "a", {"spec": {"nodes": ["n1"]}})
    assert changed["metadata"]["generation"] == 2
    store.create_object("pods", pod("p"))
    status = store.set_pod_phase("default", "p", "Running")
    assert status["metadata"]["generation"] == 1 and status["status"]["phase"] == "Running"


def test_noop_write_keeps_resource_version() -> None:
    store = Store()
    a = store.create_object("instances", instance("a", nodes=["n"]))
    same = store.patch_object("instances", "a", {"spec": {"nodes": ["n"]}})
    assert same["metadata"]["resourceVersion"] == a["metadata"]["resourceVersion"]


def test_status_subresource_split_for_pods() -> None:
    store = Store()
    created = store.create_object("pods", {**pod("p"), "status": {"phase": "Running"}})
    assert created["status"] == {"phase": "Pending"}  # create resets status, like the real API
    main = store.patch_object(
        "pods", "p", {"status": {"phase": "Failed"}, "metadata": {"labels": {"a": "b"}}}
    )
    assert main["status"]["phase"] == "Pending" and main["metadata"]["labels"] == {"a": "b"}
    status = store.patch_object(
        "pods",
        "p",
        {"status": {"phase": "Running"}, "metadata": {"labels": {"a": "c"}}},
        subresource="status",
    )
    assert status["status"]["phase"] == "Running" and status["metadata"]["labels"] == {"a": "b"}


def test_custom_resources_have_no_status_subresource() -> None:
    store = Store()
    store.create_object("instances", {**instance("a"), "status": {"x": 1}})
    assert store.patch_object("instances", "a", {"status": {"x": 2}})["status"] == {"x": 2}


def test_put_rules_differ_for_custom_and_builtin_types() -> None:
    store = Store()
    rt = store.resource("instances")
    store.create_object("instances", instance("a"))
    with pytest.raises(ApiError) as err:  # CRs need a resourceVersion on PUT
        store.update(rt, "default", "a", instance("a", nodes=["x"]))
    assert err.value.code == 422 and err.value.details["causes"][0]["field"] == "metadata.resourceVersion"
    cm = store.resource("configmaps")
    store.create_object("configmaps", {"metadata": {"name": "c"}, "data": {"a": "1"}})
    obj, created = store.update(cm, "default", "c", {"metadata": {"name": "c"}, "data": {"a": "2"}})
    assert not created and obj["data"] == {"a": "2"}
    leases = store.resource("leases")
    obj, created = store.update(leases, "default", "l", {"metadata": {"name": "l"}, "spec": {}})
    assert created  # leases may be created by PUT...
    with pytest.raises(ApiError) as err:  # ...but not updated without a resourceVersion
        store.update(leases, "default", "l", {"metadata": {"name": "l"}, "spec": {"holderIdentity": "x"}})
    assert err.value.code == 422


def test_generate_name_and_missing_name() -> None:
    store = Store()
    a = store.create_object("instances", {"metadata": {"generateName": "cfg-"}, "spec": {}})
    assert a["metadata"]["name"].startswith("cfg-") and len(a["metadata"]["name"]) == 9
    with pytest.raises(ApiError) as err:
        store.create_object("instances", {"metadata": {}, "spec": {}})
    assert err.value.code == 422


def test_watch_history_from_resource_version_and_expiry() -> None:
    store = Store(history_size=5)
    rt = store.resource("instances")
    first = store.create_object("instances", instance("a"))
    since = first["metadata"]["resourceVersion"]
    store.patch_object("instances", "a", {"spec": {"n": 1}})
    store.create_object("instances", instance("b"))
    store.create_object("configmaps", {"metadata": {"name": "other-type"}})
    watcher = store.watch(rt, "default", None, since)
    seen = [(t, e.obj["metadata"]["name"], e.rv) for t, e in watcher.take()]
    assert [(t, n) for t, n, _ in seen] == [("MODIFIED", "a"), ("ADDED", "b")]
    assert all(rv > int(since) for _, _, rv in seen)
    store.unwatch(watcher)
    for i in range(6):  # push the first events out of a 5-event history
        store.patch_object("instances", "a", {"spec": {"n": 10 + i}})
    with pytest.raises(ApiError) as err:
        store.watch(rt, "default", None, since)
    assert err.value.code == 410 and err.value.reason == "Expired"


def test_watch_selector_transitions_become_added_and_deleted() -> None:
    store = Store()
    rt = store.resource("instances")
    store.create_object("instances", instance("a"))
    watcher = store.watch(
        rt,
        None,
        lambda o: (o["metadata"].get("labels") or {}).get("sel") == "yes",
        str(store.resource_version),
    )
    store.patch_object("instances", "a", {"metadata": {"labels": {"sel": "yes"}}})
    store.patch_object("instances", "a", {"spec": {"n": 1}})
    store.patch_object("instances", "a", {"metadata": {"labels": {"sel": "no"}}})
    store.patch_object("instances", "a", {"spec": {"n": 2}})
    assert [t for t, _ in watcher.take()] == ["ADDED", "MODIFIED", "DELETED"]


def test_deleted_event_carries_final_object_with_new_version() -> None:
    store = Store()
    rt = store.resource("instances")
    a = store.create_object("instances", instance("a"))
    watcher = store.watch(rt, "default", None, a["metadata"]["resourceVersion"])
    store.delete_object("instances", "a")
    [(type_, event)] = watcher.take()
    assert type_ == "DELETED" and event.obj["spec"] == {}
    assert int(event.obj["metadata"]["resourceVersion"]) > int(a["metadata"]["resourceVersion"])
    assert store.get_object("instances", "a") is None


def test_finalizers_delay_removal_until_emptied() -> None:
    store = Store()
    store.create_object(
        "instances", {**instance("a"), "metadata": {"name": "a", "finalizers": ["akri.sh/x"]}}
    )
    pending = store.delete_object("instances", "a")
    assert pending["metadata"]["deletionTimestamp"] and pending["metadata"]["deletionGracePeriodSeconds"] == 0
    assert store.get_object("instances", "a") is not None
    with pytest.raises(ApiError) as err:  # no new finalizers while deleting
        store.patch_object("instances", "a", {"metadata": {"finalizers": ["akri.sh/x", "other/y"]}})
    assert err.value.code == 422
    store.patch_object("instances", "a", {"metadata": {"finalizers": None}})
    assert store.get_object("instances", "a") is None


async def test_gc_deletes_dependents_of_a_deleted_owner() -> None:
    store = Store()
    owner = store.create_object("instances", instance("owner"))
    other = store.create_object("instances", instance("other"))
    store.create_object("pods", pod("only-owner", owner_ref(owner)))
    store.create_object("pods", pod("two-owners", owner_ref(owner), owner_ref(other)))
    store.create_object("pods", pod("kept-by-finalizer", owner_ref(owner), finalizers=["x/y"]))
    store.delete_object("instances", "owner")
    await settle()
    assert store.get_object("pods", "only-owner") is None
    survivor = store.get_object("pods", "two-owners")
    assert [r["name"] for r in survivor["metadata"]["ownerReferences"]] == ["other"]
    terminating = store.get_object("pods", "kept-by-finalizer")
    assert terminating["metadata"]["deletionTimestamp"]


async def test_gc_collects_dependents_of_a_missing_owner() -> None:
    store = Store()
    owner = store.create_object("instances", instance("owner"))
    ref = {**owner_ref(owner), "uid": "not-the-owners-uid"}
    store.create_object("pods", pod("dangling", ref))
    await settle()
    assert store.get_object("pods", "dangling") is None
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "name": "w", "uid": "1"}
    store.create_object("pods", pod("unknown-owner-kind", unknown))
    await settle()
    assert store.get_object("pods", "unknown-owner-kind") is not None


async def test_orphan_propagation_removes_owner_references() -> None:
    store = Store()
    owner = store.create_object("instances", instance("owner"))
    store.create_object("pods", pod("p", owner_ref(owner)))
    store.delete_object("instances", "owner", propagation="Orphan")
    await settle()
    assert store.get_object("instances", "owner") is None
    assert "ownerReferences" not in store.get_object("pods", "p")["metadata"]


async def test_jobs_orphan_by_default_like_batch_v1() -> None:
    store = Store()
    job = store.create_object(
        "jobs", {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}, "spec": {}}
    )
    store.create_object("pods", pod("p", owner_ref(job)))
    store.delete_object("jobs", "j")
    await settle()
    assert store.get_object("jobs", "j") is None and store.get_object("pods", "p") is not None


async def test_foreground_waits_for_blocking_dependents() -> None:
    store = Store()
    owner = store.create_object("instances", instance("owner"))
    store.create_object("pods", pod("blocking", owner_ref(owner, block=True), finalizers=["x/y"]))
    store.create_object("pods", pod("plain", owner_ref(owner)))
    deleting = store.delete_object("instances", "owner", propagation="Foreground")
    assert "foregroundDeletion" in deleting["metadata"]["finalizers"]
    await settle()
    assert store.get_object("pods", "plain") is None
    assert store.get_object("instances", "owner") is not None  # waits for "blocking"
    store.patch_object("pods", "blocking", {"metadata": {"finalizers": None}})
    await settle()
    assert store.get_object("pods", "blocking") is None
    assert store.get_object("instances", "owner") is None


async def test_deleting_a_namespace_deletes_its_contents() -> None:
    store = Store()
    store.create_object("namespaces", {"metadata": {"name": "tmp"}})
    store.create_object("instances", instance("a"), namespace="tmp")
    store.create_object("instances", instance("b"), namespace="default")
    store.delete_object("namespaces", "tmp")
    await settle()
    assert store.get_object("instances", "a", "tmp") is None
    assert store.get_object("instances", "b", "default") is not None


def test_crd_creation_serves_the_new_type() -> None:
    store = Store()
    crd = {
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Cluster",
            "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {"status": {}}}],
        },
    }
    created = store.create_object("customresourcedefinitions", crd)
    assert {c["type"] for c in created["status"]["conditions"]} == {"Established", "NamesAccepted"}
    rt = store.resource("wd")
    assert (rt.group, rt.namespaced, rt.status_subresource, rt.custom) == ("example.com", False, True, True)
    store.create_object("widgets", {"metadata": {"name": "w"}, "spec": {"a": 1}})
    store.delete_object("customresourcedefinitions", "widgets.example.com")
    with pytest.raises(KeyError):
        store.resource("wd")
