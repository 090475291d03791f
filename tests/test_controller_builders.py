"""Broker Pod / Job / Service builders against upstream's vectors (spec §6.2-6.4, §9.2 pod.rs, job.rs,
service.rs) and the fixture Configuration config-a (spec §9.3)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from akri.controller import jobs, pods, services
from akri.controller.brokers import PLACEHOLDER, owner_reference, replace_placeholder
from akri.model.configuration import Configuration

FIXTURES = Path(__file__).parent / "fixtures" / "upstream"
NODE_TERM = {"key": "metadata.name", "operator": "In", "values": ["node-a"]}


def config_a() -> Configuration:
    return Configuration.from_dict(json.loads((FIXTURES / "config-a.json").read_text()))


# --- placeholder --------------------------------------------------------------------------------


def test_placeholder_renamed_in_containers_and_init_containers_other_keys_untouched() -> None:
    # upstream test_pod_spec_creation: limits and requests {PLACEHOLDER, do-not-change-this}
    quantities = {PLACEHOLDER: "2", "do-not-change-this": "7"}
    spec = {
        "containers": [
            {
                "name": "a",
                "image": "i1",
                "resources": {"limits": dict(quantities), "requests": dict(quantities)},
            },
            {"name": "b", "image": "i2", "resources": {"limits": dict(quantities)}},
            {"name": "c", "image": "i3"},
        ],
        "initContainers": [{"name": "init", "image": "i4", "resources": {"requests": dict(quantities)}}],
    }
    before = copy.deepcopy(spec)
    out = replace_placeholder(spec, "akri.sh/config-a-359973")
    expected = {"akri.sh/config-a-359973": "2", "do-not-change-this": "7"}
    assert out["containers"][0]["resources"] == {"limits": expected, "requests": expected}
    assert out["containers"][1]["resources"] == {"limits": expected}
    assert "resources" not in out["containers"][2]
    assert out["initContainers"][0]["resources"] == {"requests": expected}
    assert spec == before  # the Configuration's spec is not modified


def test_placeholder_keeps_claims_and_wins_over_an_existing_key() -> None:
    spec = {
        "containers": [
            {
                "name": "a",
                "resources": {"limits": {PLACEHOLDER: "1", "akri.sh/x": "5"}, "claims": [{"name": "gpu"}]},
            }
        ]
    }
    out = replace_placeholder(spec, "akri.sh/x")
    assert out["containers"][0]["resources"] == {"limits": {"akri.sh/x": "1"}, "claims": [{"name": "gpu"}]}


def test_placeholder_ignores_malformed_containers() -> None:
    spec = {"containers": ["not a container", {"resources": "nope"}, {"resources": {"limits": None}}]}
    assert replace_placeholder(spec, "akri.sh/x") == spec


# --- pods ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shared", "node", "name"),
    [
        (True, "node-a", "node-a-config-a-359973-pod"),
        (False, "node-a", "config-a-359973-pod"),
    ],
)
def test_broker_pod_from_config_a(shared: bool, node: str, name: str) -> None:
    config = config_a()
    pod = pods.build_broker_pod(
        instance_name="config-a-359973",
        instance_uid="inst-uid",
        namespace="config-a-namespace",
        configuration_name="config-a",
        node=node,
        shared=shared,
        pod_spec=config.spec.broker_pod_spec or {},
    )
    meta = pod["metadata"]
    assert meta["name"] == name
    assert meta["namespace"] == "config-a-namespace"
    assert meta["labels"] == {
        "app": name,
        "controller": "akri.sh",
        "akri.sh/configuration": "config-a",
        "akri.sh/instance": "config-a-359973",
        "akri.sh/target-node": node,
    }
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "akri.sh/v0",
            "kind": "Instance",
            "name": "config-a-359973",
            "uid": "inst-uid",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert pod["spec"]["containers"][0]["image"] == "nginx:latest"
    assert pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]
    }


def test_broker_pod_name_normalises_dots_in_instance_name() -> None:
    pod = pods.build_broker_pod(
        instance_name="instance.name",
        instance_uid="u",
        namespace="ns",
        configuration_name="c",
        node="node",
        shared=True,
        pod_spec={"containers": []},
    )
    assert pod["metadata"]["name"] == "node-instance-name-pod"
    assert pod["metadata"]["labels"]["akri.sh/instance"] == "instance.name"  # the label keeps the real name


def test_broker_pod_resource_is_the_instance_resource() -> None:
    spec = {
        "containers": [
            {
                "name": "b",
                "image": "nginx",
                "resources": {"limits": {PLACEHOLDER: "1"}, "requests": {PLACEHOLDER: "1"}},
            }
        ]
    }
    pod = pods.build_broker_pod(
        instance_name="akri-debug-echo-foo-d46b65",
        instance_uid="u",
        namespace="default",
        configuration_name="akri-debug-echo-foo",
        node="node-a",
        shared=True,
        pod_spec=spec,
    )
    # spec §11a step 6
    assert pod["metadata"]["name"] == "node-a-akri-debug-echo-foo-d46b65-pod"
    assert pod["spec"]["containers"][0]["resources"] == {
        "limits": {"akri.sh/akri-debug-echo-foo-d46b65": "1"},
        "requests": {"akri.sh/akri-debug-echo-foo-d46b65": "1"},
    }


def test_affinity_is_added_to_every_user_term_not_appended() -> None:
    # upstream test: an existing term matchFields do-not-change-this In [existing-node-affinity];
    # upstream appends a second (OR-ed) term, which would let the Pod land elsewhere (§11 item 10)
    user_terms = [
        {
            "matchFields": [
                {"key": "do-not-change-this", "operator": "In", "values": ["existing-node-affinity"]}
            ]
        },
        {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["arm64"]}]},
    ]
    spec = {
        "containers": [],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": copy.deepcopy(user_terms)
                },
                "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {}}],
            },
            "podAntiAffinity": {"x": 1},
        },
    }
    out = pods.pin_to_node(spec, "node-a")
    terms = out["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert terms == [
        {"matchFields": [user_terms[0]["matchFields"][0], NODE_TERM]},
        {"matchExpressions": user_terms[1]["matchExpressions"], "matchFields": [NODE_TERM]},
    ]
    # every term, hence the whole OR, now requires the node
    assert all(NODE_TERM in t["matchFields"] for t in terms)
    assert out["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] == [
        {"weight": 1, "preference": {}}
    ]
    assert out["affinity"]["podAntiAffinity"] == {"x": 1}
    assert (
        spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
            "nodeSelectorTerms"
        ]
        == user_terms
    )  # input not modified


@pytest.mark.parametrize(
    "affinity",
    [
        None,
        {},
        {"nodeAffinity": None},
        {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}},
        {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}},
    ],
)
def test_affinity_term_created_when_none(affinity: object) -> None:
    spec: dict = {"containers": []}
    if affinity is not None:
        spec["affinity"] = affinity
    out = pods.pin_to_node(spec, "node-a")
    assert out["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {
        "nodeSelectorTerms": [{"matchFields": [NODE_TERM]}]
    }


# --- jobs ---------------------------------------------------------------------------------------


def test_broker_job_vector() -> None:
    job_spec = {
        "backoffLimit": 2,
        "parallelism": 1,
        "completions": 1,
        "template": {
            "metadata": {"labels": {"mine": "yes"}},
            "spec": {
                "restartPolicy": "OnFailure",
                "containers": [{"name": "b", "image": "perl", "resources": {"limits": {PLACEHOLDER: "1"}}}],
                "initContainers": [
                    {"name": "i", "image": "busybox", "resources": {"requests": {PLACEHOLDER: "1"}}}
                ],
            },
        },
    }
    before = copy.deepcopy(job_spec)
    job = jobs.build_broker_job(
        instance_name="instance.name",
        instance_uid="uid-1",
        namespace="ns",
        configuration_name="config-b",
        generation=1,
        job_spec=job_spec,
    )
    assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job"
    assert job["metadata"]["name"] == "instance-name-1-job"  # upstream vector, no node prefix
    assert job["metadata"]["labels"] == {
        "akri.sh/configuration": "config-b",
        "akri.sh/instance": "instance.name",
        "app": "instance-name-1-job",
        "controller": "akri.sh",
    }
    assert job["metadata"]["ownerReferences"] == [owner_reference("Instance", "instance.name", "uid-1")]
    spec = job["spec"]
    assert (spec["backoffLimit"], spec["parallelism"], spec["completions"]) == (2, 1, 1)
    assert spec["template"]["metadata"]["labels"] == {
        "mine": "yes",
        "akri.sh/configuration": "config-b",
        "akri.sh/instance": "instance.name",
    }
    tspec = spec["template"]["spec"]
    assert tspec["restartPolicy"] == "OnFailure"
    assert tspec["containers"][0]["resources"] == {"limits": {"akri.sh/instance.name": "1"}}
    assert tspec["initContainers"][0]["resources"] == {"requests": {"akri.sh/instance.name": "1"}}
    assert "affinity" not in tspec  # no node pinning for Jobs
    assert job_spec == before


def test_broker_job_name_follows_generation() -> None:
    names = {
        jobs.build_broker_job(
            instance_name="cfg-aaaaaa",
            instance_uid="u",
            namespace="n",
            configuration_name="cfg",
            generation=g,
            job_spec={},
        )["metadata"]["name"]
        for g in (1, 2)
    }
    assert names == {"cfg-aaaaaa-1-job", "cfg-aaaaaa-2-job"}


# --- services -----------------------------------------------------------------------------------


def test_instance_service_vector_from_config_a() -> None:
    config = config_a()
    svc = services.build_instance_service(
        instance_name="config-a-359973",
        instance_uid="iuid",
        namespace="config-a-namespace",
        service_spec=config.spec.instance_service_spec or {},
    )
    assert svc["metadata"]["name"] == "config-a-359973-svc"
    assert svc["metadata"]["labels"] == {
        "app": "config-a-359973-svc",
        "controller": "akri.sh",
        "akri.sh/instance": "config-a-359973",
    }
    assert svc["spec"]["selector"] == {"controller": "akri.sh", "akri.sh/instance": "config-a-359973"}
    assert svc["spec"]["ports"] == [{"name": "http", "port": 6052, "protocol": "TCP", "targetPort": 6052}]
    assert svc["metadata"]["ownerReferences"][0]["kind"] == "Instance"


def test_configuration_service_vector_from_config_a() -> None:
    config = config_a()
    spec = dict(config.spec.configuration_service_spec or {}, selector={"extra": "x"})
    svc = services.build_configuration_service(
        configuration_name="config-a",
        configuration_uid=config.uid or "",
        namespace="config-a-namespace",
        service_spec=spec,
    )
    assert svc["metadata"]["name"] == "config-a-svc"
    assert svc["metadata"]["labels"] == {
        "app": "config-a-svc",
        "controller": "akri.sh",
        "akri.sh/configuration": "config-a",
    }
    # the user's selector is kept and Akri's labels are added
    assert svc["spec"]["selector"] == {
        "extra": "x",
        "controller": "akri.sh",
        "akri.sh/configuration": "config-a",
    }
    assert svc["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "akri.sh/v0",
            "kind": "Configuration",
            "name": "config-a",
            "uid": "e9fbe880-8b1a-4b07-8a4a-7d9b3c1e2f00",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def test_owner_reference_requires_uid_and_known_kind() -> None:
    with pytest.raises(ValueError, match="uid"):
        owner_reference("Instance", "x", "")
    with pytest.raises(ValueError, match="Pod"):
        owner_reference("Pod", "x", "u")


def _pod(phase: str | None, deleting: bool = False) -> dict:
    pod: dict = {"metadata": {"name": "p"}}
    if deleting:
        pod["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    if phase is not None:
        pod["status"] = {"phase": phase}
    return pod


@pytest.mark.parametrize(
    ("exists", "pods_", "wanted"),
    [
        (False, [], False),
        (False, [_pod("Pending")], False),  # created only once a broker runs
        (False, [_pod("Running")], True),
        (False, [_pod("Running", deleting=True)], False),
        (True, [_pod("Pending")], True),  # kept while a broker is alive (restarting)
        (True, [_pod(None)], True),  # a Pod without status counts as alive (upstream)
        (True, [_pod("Failed"), _pod("Succeeded")], False),
        (True, [_pod("Running", deleting=True)], False),
        (True, [], False),
    ],
)
def test_service_wanted(exists: bool, pods_: list, wanted: bool) -> None:
    assert services.service_wanted(exists, pods_) is wanted


def test_service_update_keeps_server_fields_and_replaces_owner() -> None:
    desired = services.build_instance_service(
        instance_name="i", instance_uid="new-uid", namespace="n", service_spec={"ports": [{"port": 80}]}
    )
    existing = copy.deepcopy(desired)
    existing["metadata"].update(
        resourceVersion="7", ownerReferences=[owner_reference("Instance", "i", "old-uid")]
    )
    existing["spec"].update(clusterIP="10.0.0.1", type="ClusterIP")
    existing["spec"]["ports"][0]["protocol"] = "TCP"
    existing["spec"]["selector"]["stale"] = "x"
    assert services.needs_update(existing, desired)
    merged = services.merge_for_update(existing, desired)
    assert merged["metadata"]["ownerReferences"] == desired["metadata"]["ownerReferences"]
    assert merged["metadata"]["resourceVersion"] == "7"
    assert merged["spec"]["clusterIP"] == "10.0.0.1"
    assert merged["spec"]["ports"] == [{"port": 80, "protocol": "TCP"}]
    assert merged["spec"]["selector"] == desired["spec"]["selector"]
    assert not services.needs_update(merged, desired)
