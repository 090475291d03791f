"""The API double driven by the official `kubernetes` client (sync), its dynamic client and kubectl:
the other wire dialect (strategic merge patches, DeleteOptions bodies, `watch=True`, discovery)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config, dynamic, watch
from kubernetes.client.rest import ApiException

from akri.testing.apiserver import ApiServerThread
from akri.testing.fixtures import apiserver_thread_fixture  # noqa: F401

pytestmark = pytest.mark.slow

GROUP, VERSION, PLURAL = "akri.sh", "v0", "instances"


@pytest.fixture
def api_client(apiserver_thread: ApiServerThread) -> Iterator[client.ApiClient]:
    configuration = client.Configuration()
    config.load_kube_config(
        config_file=str(apiserver_thread.kubeconfig_path), client_configuration=configuration
    )
    with client.ApiClient(configuration) as api:
        yield api


def instance(name: str, labels: dict[str, str] | None = None, **spec: object) -> dict:
    meta: dict = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "akri.sh/v0", "kind": "Instance", "metadata": meta, "spec": dict(spec)}


def pod(name: str, node: str | None = None) -> dict:
    spec: dict = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name}, "spec": spec}


def test_custom_objects_crud(api_client: client.ApiClient) -> None:
    co = client.CustomObjectsApi(api_client)
    created = co.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, instance("i1", nodes=[]))
    assert created["metadata"]["uid"]  # the body comes back because the answer is 201
    with pytest.raises(ApiException) as err:
        co.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, instance("i1"))
    assert err.value.status == 409
    with pytest.raises(ApiException) as err:
        co.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "nope")
    assert err.value.status == 404
    co.create_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, instance("i2", {"akri.sh/configuration": "c"})
    )
    selected = co.list_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, label_selector="akri.sh/configuration in (c,d)"
    )
    assert [i["metadata"]["name"] for i in selected["items"]] == ["i2"]
    everywhere = co.list_cluster_custom_object(
        GROUP, VERSION, PLURAL, label_selector="!akri.sh/configuration"
    )
    assert [i["metadata"]["name"] for i in everywhere["items"]] == ["i1"]

    current = co.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "i1")
    current["spec"]["nodes"] = ["n1"]
    replaced = co.replace_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "i1", current)
    assert replaced["metadata"]["generation"] == 2
    with pytest.raises(ApiException) as err:  # `current` now has a stale resourceVersion
        co.replace_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "i1", current)
    assert err.value.status == 409 and "the object has been modified" in err.value.body

    merged = co.patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, "i1", {"spec": {"capacity": 3}}
    )
    assert merged["spec"] == {"nodes": ["n1"], "capacity": 3}
    ops = [{"op": "replace", "path": "/spec/capacity", "value": 4}]
    patched = co.patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, "i1", ops, _content_type="application/json-patch+json"
    )
    assert patched["spec"]["capacity"] == 4
    deleted = co.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "i1")
    assert deleted["metadata"]["name"] == "i1"  # custom resources answer DELETE with the object


def test_core_pods_nodes_and_strategic_status_patch(api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_pod("default", pod("on-a", node="a"))
    core.create_namespaced_pod("default", pod("on-b", node="b"))
    on_a = core.list_namespaced_pod("default", field_selector="spec.nodeName=a")
    assert [p.metadata.name for p in on_a.items] == ["on-a"]
    not_a = core.list_pod_for_all_namespaces(field_selector="spec.nodeName!=a")
    assert [p.metadata.name for p in not_a.items] == ["on-b"]
    # The official client sends dict patches as strategic merge patches: conditions merge by type.
    core.patch_namespaced_pod_status(
        "on-a",
        "default",
        {
            "status": {
                "phase": "Running",
                "conditions": [
                    {"type": "Ready", "status": "False"},
                    {"type": "PodScheduled", "status": "True"},
                ],
            }
        },
    )
    updated = core.patch_namespaced_pod_status(
        "on-a", "default", {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    )
    assert updated.status.phase == "Running"
    assert {c.type: c.status for c in updated.status.conditions} == {"Ready": "True", "PodScheduled": "True"}
    node = core.create_node({"metadata": {"name": "a", "labels": {"kubernetes.io/hostname": "a"}}})
    assert node.metadata.namespace is None
    assert [n.metadata.name for n in core.list_node(label_selector="kubernetes.io/hostname=a").items] == ["a"]
    assert core.delete_namespaced_pod("on-a", "default").metadata.name == "on-a"
    core.create_namespaced_config_map("default", {"metadata": {"name": "cm"}, "data": {"k": "v"}})
    status = core.delete_namespaced_config_map("cm", "default")
    assert status["kind"] == "Status" and status["status"] == "Success"


def test_watch_from_resource_version_timeout_and_bookmarks(api_client: client.ApiClient) -> None:
    co = client.CustomObjectsApi(api_client)
    mark = co.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, instance("a"))
    co.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, instance("b"))
    co.patch_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "a", {"spec": {"n": 1}})
    co.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "b")
    w = watch.Watch()
    events = [
        (e["type"], e["raw_object"]["metadata"].get("name"))
        for e in w.stream(
            co.list_namespaced_custom_object,
            GROUP,
            VERSION,
            "default",
            PLURAL,
            resource_version=mark["metadata"]["resourceVersion"],
            timeout_seconds=2,
            allow_watch_bookmarks=True,
        )
    ]
    # Exactly the later events, then (the stream ends by the server's timeout) a bookmark.
    assert events[:3] == [("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")]
    assert events[3:] and all(e == ("BOOKMARK", None) for e in events[3:])


def test_watch_with_expired_version_raises_410() -> None:
    with ApiServerThread(history_size=2) as api:
        configuration = client.Configuration()
        config.load_kube_config(config_file=str(api.kubeconfig_path), client_configuration=configuration)
        with client.ApiClient(configuration) as api_client:
            co = client.CustomObjectsApi(api_client)
            old = co.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, instance("a"))
            for i in range(3):
                co.patch_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "a", {"spec": {"n": i}})
            with pytest.raises(ApiException) as err:
                for _ in watch.Watch().stream(
                    co.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    "default",
                    PLURAL,
                    resource_version=old["metadata"]["resourceVersion"],
                    timeout_seconds=5,
                ):
                    pass
            assert err.value.status == 410


def test_foreground_delete_through_delete_options(
    api_client: client.ApiClient, apiserver_thread: ApiServerThread
) -> None:
    co = client.CustomObjectsApi(api_client)
    core = client.CoreV1Api(api_client)
    owner = co.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, instance("owner"))
    ref = {
        "apiVersion": "akri.sh/v0",
        "kind": "Instance",
        "name": "owner",
        "uid": owner["metadata"]["uid"],
        "blockOwnerDeletion": True,
    }
    core.create_namespaced_pod(
        "default", {**pod("dep"), "metadata": {"name": "dep", "ownerReferences": [ref]}}
    )
    body = client.V1DeleteOptions(propagation_policy="Foreground")
    pending = co.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "owner", body=body)
    assert "foregroundDeletion" in pending["metadata"]["finalizers"]
    w = watch.Watch()
    seen = []
    for e in w.stream(
        co.list_namespaced_custom_object,
        GROUP,
        VERSION,
        "default",
        PLURAL,
        resource_version=pending["metadata"]["resourceVersion"],
        timeout_seconds=10,
    ):
        seen.append(e["type"])
        if e["type"] == "DELETED":
            w.stop()
    assert seen[-1] == "DELETED"
    assert apiserver_thread.store.get_object("pods", "dep") is None


def test_dynamic_client_discovers_and_uses_resources(api_client: client.ApiClient, tmp_path: Path) -> None:
    dc = dynamic.DynamicClient(api_client, cache_file=str(tmp_path / "discovery.json"))
    instances = dc.resources.get(api_version="akri.sh/v0", kind="Instance")
    assert instances.namespaced and "akrii" in instances.short_names
    instances.create(body=instance("d1", nodes=["x"]), namespace="default")
    assert instances.get(name="d1", namespace="default").spec.nodes == ["x"]
    nodes = dc.resources.get(api_version="v1", kind="Node")
    assert not nodes.namespaced
    pods = dc.resources.get(api_version="v1", kind="Pod")
    assert pods.subresources["status"].kind == "Pod"
    jobs = dc.resources.get(api_version="batch/v1", kind="Job")
    leases = dc.resources.get(api_version="coordination.k8s.io/v1", kind="Lease")
    webhooks = dc.resources.get(
        api_version="admissionregistration.k8s.io/v1", kind="ValidatingWebhookConfiguration"
    )
    assert jobs.namespaced and leases.namespaced and not webhooks.namespaced
    configurations = dc.resources.get(short_names=["akric"])
    assert configurations.kind == "Configuration"


KUBECTL = shutil.which("kubectl")


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
def test_kubectl_get(apiserver_thread: ApiServerThread, tmp_path: Path) -> None:
    store = apiserver_thread.store
    store.create_object("instances", instance("kubectl-instance"), namespace="kube-system")
    store.create_object("pods", pod("kubectl-pod"))

    def kubectl(*args: str) -> str:
        result = subprocess.run(
            [
                KUBECTL,
                "--kubeconfig",
                str(apiserver_thread.kubeconfig_path),
                "--cache-dir",
                str(tmp_path),
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    listing = kubectl("get", "akrii", "-A")
    assert "NAMESPACE" in listing and "kube-system" in listing and "kubectl-instance" in listing
    assert "kubectl-pod" in kubectl("get", "pods")
    assert "Pending" in kubectl("get", "pods")
    assert (
        kubectl("get", "akrii", "-n", "kube-system", "kubectl-instance", "-o", "jsonpath={.kind}")
        == "Instance"
    )
    assert "instances" in kubectl("api-resources", "--api-group=akri.sh")
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(MANIFEST)
    assert "configuration.akri.sh/akri-debug-echo created" in kubectl("apply", "-f", str(manifest))
    assert "configuration.akri.sh/akri-debug-echo unchanged" in kubectl("apply", "-f", str(manifest))
    kubectl("patch", "akric", "akri-debug-echo", "--type=merge", "-p", '{"spec":{"capacity":3}}')
    assert store.get_object("configurations", "akri-debug-echo")["spec"]["capacity"] == 3
    kubectl("label", "configmap", "broker-config", "tier=edge")
    assert "broker-config" in kubectl("get", "cm", "-l", "tier=edge")
    kubectl("delete", "-f", str(manifest))
    assert store.get_object("configurations", "akri-debug-echo") is None


MANIFEST = """\
apiVersion: akri.sh/v0
kind: Configuration
metadata:
  name: akri-debug-echo
spec:
  discoveryHandler:
    name: debugEcho
    discoveryDetails: "descriptions: [foo0]"
  capacity: 2
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: broker-config
data:
  a: "1"
"""
