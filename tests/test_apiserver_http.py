"""The API double's wire format checked directly over HTTP: discovery documents, Status errors,
paging, initial-events watches and server-side printing."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson
import pytest

from akri.testing.apiserver import ApiServer
from akri.testing.fixtures import apiserver_fixture  # noqa: F401

pytestmark = pytest.mark.slow


async def get_json(api: ApiServer, path: str, expect: int = 200, **kw: Any) -> Any:
    async with aiohttp.ClientSession(api.url) as http, http.get(path, **kw) as resp:
        body = await resp.json(content_type=None)
        assert resp.status == expect, body
        return body


async def test_discovery_documents(apiserver: ApiServer) -> None:
    assert (await get_json(apiserver, "/version"))["gitVersion"].startswith("v1.")
    assert (await get_json(apiserver, "/version/"))["major"] == "1"  # trailing slash, as kr8s asks
    assert (await get_json(apiserver, "/api"))["versions"] == ["v1"]
    groups = {g["name"]: g for g in (await get_json(apiserver, "/apis"))["groups"]}
    for group, version in [
        ("akri.sh", "v0"),
        ("batch", "v1"),
        ("coordination.k8s.io", "v1"),
        ("admissionregistration.k8s.io", "v1"),
        ("apiextensions.k8s.io", "v1"),
    ]:
        assert groups[group]["preferredVersion"]["groupVersion"] == f"{group}/{version}"
    core = {r["name"]: r for r in (await get_json(apiserver, "/api/v1"))["resources"]}
    assert {
        "pods",
        "pods/status",
        "services",
        "nodes",
        "nodes/status",
        "secrets",
        "configmaps",
        "events",
        "namespaces",
    } <= core.keys()
    assert (
        core["pods"]["namespaced"]
        and not core["nodes"]["namespaced"]
        and not core["namespaces"]["namespaced"]
    )
    assert "watch" in core["pods"]["verbs"] and core["pods/status"]["verbs"] == ["get", "patch", "update"]
    akri = await get_json(apiserver, "/apis/akri.sh/v0")
    assert akri["groupVersion"] == "akri.sh/v0"
    by_name = {r["name"]: r for r in akri["resources"]}
    assert by_name["instances"]["shortNames"] == ["akrii"] and by_name["instances"]["kind"] == "Instance"
    assert by_name["configurations"]["shortNames"] == ["akric"] and by_name["configurations"]["namespaced"]
    assert "instances/status" not in by_name  # upstream's CRDs have no status subresource
    assert (await get_json(apiserver, "/apis/akri.sh"))["kind"] == "APIGroup"
    await get_json(apiserver, "/apis/nope.example.com/v1", expect=404)


async def test_errors_are_status_objects(apiserver: ApiServer) -> None:
    missing = await get_json(apiserver, "/api/v1/namespaces/default/pods/nope", expect=404)
    assert missing == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "kind": "pods"},
        "code": 404,
    }
    await get_json(apiserver, "/api/v1/namespaces/default/nodes", expect=404)  # nodes are cluster-scoped
    await get_json(apiserver, "/apis/akri.sh/v0/instances/x", expect=404)  # instances are namespaced
    bad = await get_json(apiserver, "/api/v1/pods", expect=400, params={"labelSelector": "a in b"})
    assert bad["reason"] == "BadRequest"
    async with aiohttp.ClientSession(apiserver.url) as http:
        url = "/apis/akri.sh/v0/namespaces/default/instances"
        async with http.post(url, data=b"{not json", headers={"Content-Type": "application/json"}) as resp:
            assert resp.status == 400 and (await resp.json())["reason"] == "BadRequest"
        async with http.post(url, json={"kind": "Configuration", "metadata": {"name": "x"}}) as resp:
            assert resp.status == 400  # kind does not match the URL
        async with http.post(url, json={"metadata": {"name": "Not_Valid"}}) as resp:
            status = await resp.json()
            assert resp.status == 422 and status["reason"] == "Invalid"
            assert status["details"]["causes"][0]["field"] == "metadata.name"
        async with http.put(url, json={}) as resp:
            assert resp.status == 405 and (await resp.json())["reason"] == "MethodNotAllowed"
        async with http.patch(f"{url}/x", data=b"{}", headers={"Content-Type": "text/plain"}) as resp:
            assert resp.status == 415


async def test_list_paging_tokens(apiserver: ApiServer) -> None:
    for i in range(5):
        apiserver.store.create_object("configmaps", {"metadata": {"name": f"cm{i}"}})
    first = await get_json(apiserver, "/api/v1/namespaces/default/configmaps", params={"limit": "2"})
    assert [i["metadata"]["name"] for i in first["items"]] == ["cm0", "cm1"]
    assert first["metadata"]["remainingItemCount"] == 3 and first["kind"] == "ConfigMapList"
    apiserver.store.create_object("configmaps", {"metadata": {"name": "cm9"}})  # between pages
    second = await get_json(
        apiserver,
        "/api/v1/namespaces/default/configmaps",
        params={"limit": "10", "continue": first["metadata"]["continue"]},
    )
    assert [i["metadata"]["name"] for i in second["items"]] == ["cm2", "cm3", "cm4", "cm9"]
    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert "continue" not in second["metadata"]
    await get_json(
        apiserver, "/api/v1/namespaces/default/configmaps", expect=400, params={"continue": "garbage"}
    )


async def test_watch_with_send_initial_events_ends_initial_list_with_a_bookmark(apiserver: ApiServer) -> None:
    apiserver.store.create_object("instances", {"metadata": {"name": "a"}, "spec": {}})
    params = {
        "watch": "true",
        "sendInitialEvents": "true",
        "allowWatchBookmarks": "true",
        "resourceVersionMatch": "NotOlderThan",
    }
    async with (
        aiohttp.ClientSession(apiserver.url) as http,
        http.get("/apis/akri.sh/v0/namespaces/default/instances", params=params) as resp,
    ):
        events = [orjson.loads(await asyncio.wait_for(resp.content.readline(), 10)) for _ in range(2)]
    assert (events[0]["type"], events[0]["object"]["metadata"]["name"]) == ("ADDED", "a")
    assert events[1]["type"] == "BOOKMARK"
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_table_output_for_kubectl(apiserver: ApiServer) -> None:
    apiserver.store.create_object("pods", {"metadata": {"name": "p"}, "spec": {"containers": []}})
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    table = await get_json(apiserver, "/api/v1/pods", headers={"Accept": accept})
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]][:3] == ["Name", "Status", "Age"]
    assert table["rows"][0]["cells"][:2] == ["p", "Pending"]
    assert table["rows"][0]["object"]["metadata"]["namespace"] == "default"


async def test_openapi_v3_lists_patch_operations_with_field_validation(apiserver: ApiServer) -> None:
    root = await get_json(apiserver, "/openapi/v3")
    url = root["paths"]["apis/akri.sh/v0"]["serverRelativeURL"]
    doc = await get_json(apiserver, url)
    patch = doc["paths"]["/apis/akri.sh/v0/namespaces/{namespace}/instances/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "akri.sh",
        "version": "v0",
        "kind": "Instance",
    }
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]
