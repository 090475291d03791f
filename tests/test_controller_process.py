"""`akri controller` processes against the Kubernetes API double, driven with the official `kubernetes`
client the way a user's scripts (and upstream's e2e suite) drive a cluster.

One API double and one controller serve the module; each test works in its own namespace and with
its own node names, so tests do not see each other's objects.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from akri.testing.apiserver import ApiServerThread

pytestmark = pytest.mark.slow

T = TypeVar("T")
TIMEOUT = 10.0
PLACEHOLDER = "{{PLACEHOLDER}}"
_ns_counter = itertools.count()


# --- helpers ------------------------------------------------------------------------------------


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = TIMEOUT) -> T:
    """Poll `probe` until it returns something truthy (the bound only keeps a broken test from hanging)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except ApiException as e:
            last = e
            if e.status != 404:
                raise
        else:
            if last:
                return last
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


class ControllerProcess:
    def __init__(self, kubeconfig: Path, log: Path, identity: str, *extra: str) -> None:
        self.log = log
        self.identity = identity
        args = [
            sys.executable,
            "-m",
            "akri",
            "--log-level",
            "INFO",
            "controller",
            "--kubeconfig",
            str(kubeconfig),
            "--metrics-port",
            "0",
            "--lease-namespace",
            "kube-system",
            "--identity",
            identity,
            "--lease-duration",
            "3",
            "--renew-deadline",
            "2",
            "--retry-period",
            "0.5",
            *extra,
        ]
        self._out = log.open("wb")
        self.proc = subprocess.Popen(
            args, stdout=self._out, stderr=subprocess.STDOUT, env={**os.environ, "AKRI_LOG": "INFO"}
        )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    @property
    def metrics_port(self) -> int:
        match = wait_for(
            "metrics port", lambda: re.search(r"metrics on http://[^:]+:(\d+)/metrics", self.text())
        )
        return int(match.group(1))

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as resp:
            return resp.read().decode()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()
        return self.proc.returncode


class Cluster:
    """The official client's APIs against the double, plus object factories."""

    def __init__(self, api: ApiServerThread) -> None:
        self.api = api
        configuration = client.Configuration()
        config.load_kube_config(config_file=str(api.kubeconfig_path), client_configuration=configuration)
        self.client = client.ApiClient(configuration)
        self.core = client.CoreV1Api(self.client)
        self.batch = client.BatchV1Api(self.client)
        self.custom = client.CustomObjectsApi(self.client)
        self.coordination = client.CoordinationV1Api(self.client)

    def namespace(self) -> str:
        name = f"t{next(_ns_counter)}-{os.getpid()}"
        self.core.create_namespace({"metadata": {"name": name}})
        return name

    def node(self, name: str, ready: bool = True) -> None:
        self.core.create_node({"metadata": {"name": name}})
        self.set_ready(name, ready)

    def set_ready(self, name: str, ready: bool) -> None:
        status = "True" if ready else "Unknown"
        self.core.patch_node_status(name, {"status": {"conditions": [{"type": "Ready", "status": status}]}})

    def configuration(self, ns: str, name: str, spec: dict) -> dict:
        body = {"apiVersion": "akri.sh/v0", "kind": "Configuration", "metadata": {"name": name}, "spec": spec}
        return self.custom.create_namespaced_custom_object("akri.sh", "v0", ns, "configurations", body)

    def instance(
        self,
        ns: str,
        name: str,
        config: str,
        nodes: list[str],
        *,
        shared: bool = True,
        usage: dict[str, str] | None = None,
        capacity: int = 2,
    ) -> dict:
        body = {
            "apiVersion": "akri.sh/v0",
            "kind": "Instance",
            "metadata": {"name": name},
            "spec": {
                "configurationName": config,
                "cdiName": f"akri.sh/{config}={name[-6:]}",
                "capacity": capacity,
                "shared": shared,
                "nodes": nodes,
                "deviceUsage": usage or {},
                "brokerProperties": {},
            },
        }
        return self.custom.create_namespaced_custom_object("akri.sh", "v0", ns, "instances", body)

    def get_instance(self, ns: str, name: str) -> dict:
        return self.custom.get_namespaced_custom_object("akri.sh", "v0", ns, "instances", name)

    def delete_instance(self, ns: str, name: str) -> None:
        self.custom.delete_namespaced_custom_object("akri.sh", "v0", ns, "instances", name)

    def pods(self, ns: str) -> dict[str, Any]:
        return {p.metadata.name: p for p in self.core.list_namespaced_pod(ns).items}

    def services(self, ns: str) -> dict[str, Any]:
        return {s.metadata.name: s for s in self.core.list_namespaced_service(ns).items}

    def set_phase(self, ns: str, pod: str, phase: str, start: str | None = None) -> None:
        status: dict = {"phase": phase}
        if start:
            status["startTime"] = start
        self.core.patch_namespaced_pod_status(pod, ns, {"status": status})


def pod_spec(**extra: Any) -> dict:
    return {
        "containers": [
            {
                "name": "broker",
                "image": "nginx:stable-alpine",
                "resources": {"limits": {PLACEHOLDER: "1"}, "requests": {PLACEHOLDER: "1"}},
            }
        ],
        **extra,
    }


SERVICE = {
    "type": "ClusterIP",
    "ports": [{"name": "http", "port": 6052, "targetPort": 6052, "protocol": "TCP"}],
}


@pytest.fixture(scope="module")
def api() -> Iterator[ApiServerThread]:
    with ApiServerThread(bookmark_interval=1.0) as server:
        yield server


@pytest.fixture(scope="module")
def cluster(api: ApiServerThread) -> Iterator[Cluster]:
    c = Cluster(api)
    yield c
    c.client.close()


@pytest.fixture(scope="module")
def controller(
    api: ApiServerThread, cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControllerProcess]:
    log = tmp_path_factory.mktemp("controller") / "controller.log"
    proc = ControllerProcess(api.kubeconfig_path, log, "solo")
    wait_for("the controller to lead", lambda: "became leader" in proc.text())
    yield proc
    assert proc.alive(), proc.text()[-3000:]
    assert proc.stop() == 0, proc.text()[-3000:]


# --- tests ----------------------------------------------------------------------------------------


def test_shared_and_local_instances_get_their_pods(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.namespace()
    user_term = {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]}
    spec = pod_spec(
        affinity={
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [user_term]}
            }
        }
    )
    cluster.configuration(
        ns,
        "akri-debug-echo-foo",
        {"discoveryHandler": {"name": "debugEcho"}, "capacity": 2, "brokerSpec": {"brokerPodSpec": spec}},
    )
    shared = cluster.instance(ns, "akri-debug-echo-foo-d46b65", "akri-debug-echo-foo", ["node-a", "node-b"])
    local = cluster.instance(
        ns, "akri-debug-echo-foo-7d2706", "akri-debug-echo-foo", ["node-a"], shared=False
    )
    expected = {
        "node-a-akri-debug-echo-foo-d46b65-pod": (shared, "node-a"),
        "node-b-akri-debug-echo-foo-d46b65-pod": (shared, "node-b"),
        "akri-debug-echo-foo-7d2706-pod": (local, "node-a"),
    }
    pods = wait_for("three broker pods", lambda: (p := cluster.pods(ns)) and set(p) == set(expected) and p)
    for name, (inst, node) in expected.items():
        pod = pods[name]
        iname = inst["metadata"]["name"]
        assert pod.metadata.labels == {
            "app": name,
            "controller": "akri.sh",
            "akri.sh/configuration": "akri-debug-echo-foo",
            "akri.sh/instance": iname,
            "akri.sh/target-node": node,
        }
        (owner,) = pod.metadata.owner_references
        assert (owner.kind, owner.name, owner.uid, owner.controller, owner.block_owner_deletion) == (
            "Instance",
            iname,
            inst["metadata"]["uid"],
            True,
            True,
        )
        resources = pod.spec.containers[0].resources
        assert resources.limits == resources.requests == {f"akri.sh/{iname}": "1"}
        (term,) = (
            pod.spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution.node_selector_terms
        )
        assert term.match_expressions[0].key == "kubernetes.io/os"  # the user's term is kept...
        assert [(f.key, f.operator, f.values) for f in term.match_fields] == [
            ("metadata.name", "In", [node])
        ]  # ...and narrowed to the node, not OR-ed with it
    # node-b leaves the shared Instance: its Pod goes, node-a's stays
    body = cluster.get_instance(ns, shared["metadata"]["name"])
    body["spec"]["nodes"] = ["node-a"]
    cluster.custom.replace_namespaced_custom_object(
        "akri.sh", "v0", ns, "instances", body["metadata"]["name"], body
    )
    wait_for("node-b's pod removed", lambda: "node-b-akri-debug-echo-foo-d46b65-pod" not in cluster.pods(ns))
    assert (
        pods["node-a-akri-debug-echo-foo-d46b65-pod"].metadata.uid
        == cluster.pods(ns)["node-a-akri-debug-echo-foo-d46b65-pod"].metadata.uid
    )
    # the broker gauge counts what exists, per configuration and node
    metrics = wait_for(
        "metrics",
        lambda: (
            (m := controller.metrics())
            and 'akri_broker_pod_count{configuration="akri-debug-echo-foo",node="node-a"} 2.0' in m
            and m
        ),
    )
    assert 'akri_broker_pod_count{configuration="akri-debug-echo-foo",node="node-b"}' not in metrics
    assert "process_resident_memory_bytes" in metrics


def test_services_follow_running_brokers(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.namespace()
    cfg = cluster.configuration(
        ns,
        "cfg",
        {
            "discoveryHandler": {"name": "debugEcho"},
            "brokerSpec": {"brokerPodSpec": pod_spec()},
            "instanceServiceSpec": SERVICE,
            "configurationServiceSpec": SERVICE,
        },
    )
    inst = cluster.instance(ns, "cfg-aaaaaa", "cfg", ["node-a"])
    wait_for("broker pod", lambda: "node-a-cfg-aaaaaa-pod" in cluster.pods(ns))
    time.sleep(0.3)
    assert cluster.services(ns) == {}  # Pending broker: no Service yet
    cluster.set_phase(ns, "node-a-cfg-aaaaaa-pod", "Running")
    svcs = wait_for(
        "both services", lambda: (s := cluster.services(ns)) and set(s) == {"cfg-aaaaaa-svc", "cfg-svc"} and s
    )
    isvc, csvc = svcs["cfg-aaaaaa-svc"], svcs["cfg-svc"]
    assert isvc.spec.selector == {"controller": "akri.sh", "akri.sh/instance": "cfg-aaaaaa"}
    assert isvc.metadata.labels == {
        "app": "cfg-aaaaaa-svc",
        "controller": "akri.sh",
        "akri.sh/instance": "cfg-aaaaaa",
    }
    assert isvc.metadata.owner_references[0].uid == inst["metadata"]["uid"]
    assert csvc.spec.selector == {"controller": "akri.sh", "akri.sh/configuration": "cfg"}
    assert csvc.metadata.owner_references[0].uid == cfg["metadata"]["uid"]
    assert [p.port for p in csvc.spec.ports] == [6052]
    # a Service deleted by hand comes back while a broker runs
    cluster.core.delete_namespaced_service("cfg-svc", ns)
    wait_for("configuration service back", lambda: "cfg-svc" in cluster.services(ns))
    # no broker left: both Services go (the Configuration, owner of cfg-svc, still exists)
    cluster.delete_instance(ns, "cfg-aaaaaa")
    wait_for("services removed", lambda: cluster.services(ns) == {})
    assert cluster.pods(ns) == {}


def test_deleted_or_failed_broker_is_recreated(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.namespace()
    cluster.configuration(
        ns, "cfg", {"discoveryHandler": {"name": "debugEcho"}, "brokerSpec": {"brokerPodSpec": pod_spec()}}
    )
    cluster.instance(ns, "cfg-bbbbbb", "cfg", ["node-a"], shared=False)
    first = wait_for("broker pod", lambda: cluster.pods(ns).get("cfg-bbbbbb-pod"))
    cluster.core.delete_namespaced_pod("cfg-bbbbbb-pod", ns)
    second = wait_for(
        "a new broker pod",
        lambda: (p := cluster.pods(ns).get("cfg-bbbbbb-pod")) and p.metadata.uid != first.metadata.uid and p,
    )
    cluster.set_phase(ns, "cfg-bbbbbb-pod", "Running", start="2024-01-01T00:00:00Z")
    cluster.set_phase(ns, "cfg-bbbbbb-pod", "Failed", start="2024-01-01T00:00:00Z")
    wait_for(
        "the failed broker replaced",
        lambda: (
            (p := cluster.pods(ns).get("cfg-bbbbbb-pod"))
            and p.metadata.uid not in (first.metadata.uid, second.metadata.uid)
        ),
    )


def test_job_brokers_follow_configuration_generation(cluster: Cluster, controller: ControllerProcess) -> None:
    ns = cluster.namespace()
    job_spec = {
        "backoffLimit": 4,
        "template": {
            "spec": {
                "restartPolicy": "OnFailure",
                "containers": [
                    {
                        "name": "pi",
                        "image": "perl",
                        "command": ["perl", "-Mbignum=bpi", "-wle", "print bpi(2000)"],
                        "resources": {"limits": {PLACEHOLDER: "1"}},
                    }
                ],
            }
        },
    }
    cluster.configuration(
        ns, "fee", {"discoveryHandler": {"name": "debugEcho"}, "brokerSpec": {"brokerJobSpec": job_spec}}
    )
    inst = cluster.instance(ns, "fee-cccccc", "fee", ["node-a", "node-b"])
    jobs = wait_for("job", lambda: cluster.batch.list_namespaced_job(ns).items)
    assert [j.metadata.name for j in jobs] == ["fee-cccccc-1-job"]  # one per Instance, not per node
    job = jobs[0]
    assert job.metadata.labels == {
        "akri.sh/configuration": "fee",
        "akri.sh/instance": "fee-cccccc",
        "app": "fee-cccccc-1-job",
        "controller": "akri.sh",
    }
    assert job.metadata.owner_references[0].uid == inst["metadata"]["uid"]
    assert job.spec.backoff_limit == 4
    assert job.spec.template.spec.containers[0].resources.limits == {"akri.sh/fee-cccccc": "1"}
    assert job.spec.template.metadata.labels == {
        "akri.sh/configuration": "fee",
        "akri.sh/instance": "fee-cccccc",
    }
    assert cluster.pods(ns) == {}  # no per-node broker Pods for a Job broker
    cluster.custom.patch_namespaced_custom_object(
        "akri.sh",
        "v0",
        ns,
        "configurations",
        "fee",
        {"spec": {"brokerSpec": {"brokerJobSpec": {**job_spec, "backoffLimit": 2}}}},
    )
    wait_for(
        "the job of generation 2 replaces generation 1",
        lambda: (
            [j.metadata.name for j in cluster.batch.list_namespaced_job(ns).items] == ["fee-cccccc-2-job"]
        ),
    )
    assert cluster.batch.read_namespaced_job("fee-cccccc-2-job", ns).spec.backoff_limit == 2


def test_node_not_ready_is_removed_from_instances_and_frees_its_slots(
    cluster: Cluster, controller: ControllerProcess
) -> None:
    ns = cluster.namespace()
    cluster.node("nw-node-x")
    cluster.node("nw-node-y")
    cluster.configuration(
        ns,
        "cfg",
        {
            "discoveryHandler": {"name": "debugEcho"},
            "capacity": 4,
            "brokerSpec": {"brokerPodSpec": pod_spec()},
        },
    )
    usage = {
        "cfg-dddddd-0": "nw-node-x",
        "cfg-dddddd-1": "C:cfg-0:nw-node-x",
        "cfg-dddddd-2": "nw-node-y",
        "cfg-dddddd-3": "",
    }
    cluster.instance(ns, "cfg-dddddd", "cfg", ["nw-node-x", "nw-node-y"], usage=usage, capacity=4)
    wait_for("two broker pods", lambda: len(cluster.pods(ns)) == 2)
    cluster.set_ready("nw-node-x", False)
    inst = wait_for(
        "node x removed",
        lambda: (i := cluster.get_instance(ns, "cfg-dddddd")) and i["spec"]["nodes"] == ["nw-node-y"] and i,
    )
    assert inst["spec"]["deviceUsage"] == {
        "cfg-dddddd-0": "",
        "cfg-dddddd-1": "",
        "cfg-dddddd-2": "nw-node-y",
        "cfg-dddddd-3": "",
    }
    wait_for("node x's broker removed", lambda: set(cluster.pods(ns)) == {"nw-node-y-cfg-dddddd-pod"})
    # a node that is deleted after being Ready is cleaned too
    cluster.core.delete_node("nw-node-y")
    wait_for("node y removed", lambda: cluster.get_instance(ns, "cfg-dddddd")["spec"]["nodes"] == [])
    assert cluster.get_instance(ns, "cfg-dddddd")["spec"]["deviceUsage"]["cfg-dddddd-2"] == ""


def test_controller_survives_api_server_restart(
    api: ApiServerThread, cluster: Cluster, controller: ControllerProcess
) -> None:
    ns = cluster.namespace()
    cluster.configuration(
        ns, "cfg", {"discoveryHandler": {"name": "debugEcho"}, "brokerSpec": {"brokerPodSpec": pod_spec()}}
    )
    api.stop()  # every watch breaks; the controller keeps retrying
    time.sleep(1.0)
    assert controller.alive()
    api.start()
    cluster.instance(ns, "cfg-eeeeee", "cfg", ["node-a"])
    wait_for("a broker after the restart", lambda: "node-a-cfg-eeeeee-pod" in cluster.pods(ns), timeout=30)
    assert controller.alive()


# --- leader election --------------------------------------------------------------------------------


def lease_holder(cluster: Cluster) -> str | None:
    with contextlib.suppress(ApiException):
        return cluster.coordination.read_namespaced_lease(
            "akri-controller", "kube-system"
        ).spec.holder_identity
    return None


def test_leader_hand_over(tmp_path: Path) -> None:
    with ApiServerThread(bookmark_interval=1.0) as api:
        cluster = Cluster(api)
        ns = cluster.namespace()
        cluster.configuration(
            ns,
            "cfg",
            {"discoveryHandler": {"name": "debugEcho"}, "brokerSpec": {"brokerPodSpec": pod_spec()}},
        )
        first = ControllerProcess(api.kubeconfig_path, tmp_path / "first.log", "first")
        wait_for("first leads", lambda: lease_holder(cluster) == "first")
        second = ControllerProcess(api.kubeconfig_path, tmp_path / "second.log", "second")
        try:
            wait_for("second waits", lambda: "waiting for lease" in second.text())
            cluster.instance(ns, "cfg-ffffff", "cfg", ["node-a"])
            wait_for("broker from the leader", lambda: "node-a-cfg-ffffff-pod" in cluster.pods(ns))
            assert "creating" not in second.text() and "became leader" not in second.text()
            # the leader dies without releasing the lease: the follower takes over once it expires
            first.stop(signal.SIGKILL)
            before = cluster.coordination.read_namespaced_lease("akri-controller", "kube-system").spec
            wait_for("second leads", lambda: lease_holder(cluster) == "second", timeout=15)
            after = cluster.coordination.read_namespaced_lease("akri-controller", "kube-system").spec
            # it waited for the dead leader's lease to run out (3 s after its last renewal), no longer
            # than the generous bound above
            assert (
                after.acquire_time - before.renew_time
            ).total_seconds() >= before.lease_duration_seconds - 0.1
            cluster.instance(ns, "cfg-gggggg", "cfg", ["node-b"])
            wait_for("broker from the new leader", lambda: "node-b-cfg-gggggg-pod" in cluster.pods(ns))
            lease = cluster.coordination.read_namespaced_lease("akri-controller", "kube-system")
            assert lease.spec.lease_transitions == 1
            # a clean stop releases the lease at once
            assert second.stop() == 0
            wait_for("lease released", lambda: lease_holder(cluster) == "")
        finally:
            first.stop()
            second.stop()
            cluster.client.close()
