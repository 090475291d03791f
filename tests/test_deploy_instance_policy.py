"""The agent's Instance admission policies (deploy/base/agent-instance-policy.yaml), evaluated
offline with deploy/tools/admission.py: every write the agent's own code produces (the real
mutation functions of akri/agent/instances.py, akri/kube/slot_store.py and Kube.remove_finalizer
applied to Instances) is admitted; a compromised node's writes to what is not its own are not.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from e2e.deploy_tools import load_tool

from akri.agent.discovery_requests import DiscoveredDevice
from akri.agent.instances import join, leave, new_instance
from akri.discovery.device import Device
from akri.model.configuration import Configuration

ROOT = Path(__file__).resolve().parent.parent
AGENT = "system:serviceaccount:akri:akri-agent"
NODE_EXTRA = "authentication.kubernetes.io/node-name"
OWN = "akri-agent-instance-own-node"
FOLLOWS = "akri-agent-instance-follows-configuration"


admission = load_tool("admission")
render = load_tool("render")


@pytest.fixture(scope="module")
def policies() -> list[Any]:
    objects = render.render(ROOT / "deploy" / "base")
    bindings = {
        o["spec"]["policyName"]: o for o in objects if o["kind"] == "ValidatingAdmissionPolicyBinding"
    }
    out = [
        admission.Policy(o, bindings[o["metadata"]["name"]])
        for o in objects
        if o["kind"] == "ValidatingAdmissionPolicy" and o["metadata"]["name"] in (OWN, FOLLOWS)
    ]
    assert len(out) == 2
    return out


def config_obj(capacity: int = 2, broker: dict[str, str] | None = None, name: str = "cam") -> dict[str, Any]:
    return {
        "apiVersion": "akri.sh/v0",
        "kind": "Configuration",
        "metadata": {"name": name, "namespace": "default", "uid": "uid-1"},
        "spec": {
            "discoveryHandler": {"name": "debugEcho"},
            "capacity": capacity,
            "brokerProperties": broker or {"WIDTH": "800"},
        },
    }


def found(props: dict[str, str] | None = None) -> DiscoveredDevice:
    device = Device("dev0", props if props is not None else {"URL": "rtsp://10.0.0.5"})
    return DiscoveredDevice(device, shared=True, instance_name="cam-d46b65", cdi_name="akri.sh/cam=d46b65")


def instance(nodes: list[str], usage: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    cfg = Configuration.from_dict(config_obj())
    obj = new_instance(cfg, found(), nodes[0])
    for node in nodes[1:]:
        join(obj, cfg, found(), node)
    obj["metadata"]["resourceVersion"] = "7"
    obj["spec"]["deviceUsage"] = dict(usage or {})
    obj["spec"].update(spec)
    return obj


def verdict(
    policies: list[Any],
    operation: str,
    new: Any,
    old: Any,
    node: str | None = "node-a",
    configs: list[dict[str, Any]] | None = None,
    user: str = AGENT,
) -> list[str] | None:
    """The failures of all policies together (None: none applied)."""
    req = admission.Request(
        "akri.sh", "v0", "instances", operation, user, {NODE_EXTRA: [node]} if node else {}
    )
    params = configs if configs is not None else [config_obj(), config_obj(7, {"X": "y"}, name="other")]
    results = [p.evaluate(req, new, old, params) for p in policies]
    if all(r is None for r in results):
        return None
    return [f for r in results for f in r or []]


def mutated(old: dict[str, Any], mutate: Any) -> dict[str, Any]:
    new = copy.deepcopy(old)
    mutate(new)
    return new


def claim(slot: str, value: str) -> Any:
    def mutate(obj: dict[str, Any]) -> None:
        obj["spec"].setdefault("deviceUsage", {})[slot] = value

    return mutate


def release(slot: str) -> Any:
    def mutate(obj: dict[str, Any]) -> None:
        del obj["spec"]["deviceUsage"][slot]

    return mutate


def remove_finalizer(node: str) -> Any:
    def mutate(obj: dict[str, Any]) -> None:
        obj["metadata"]["finalizers"] = [f for f in obj["metadata"]["finalizers"] if f != node]

    return mutate


# --- what the agent writes is admitted ------------------------------------------------------------


def test_the_agent_creates_its_instance(policies) -> None:
    cfg = Configuration.from_dict(config_obj())
    assert verdict(policies, "CREATE", new_instance(cfg, found(), "node-a"), None) == []


def test_the_agent_joins_and_follows_a_changed_configuration_on_a_shared_instance(policies) -> None:
    old = instance(["node-b"])
    cfg = Configuration.from_dict(config_obj())
    assert verdict(policies, "UPDATE", mutated(old, lambda o: join(o, cfg, found(), "node-a")), old) == []
    # the Configuration's capacity and brokerProperties change while two nodes use the Instance
    old = instance(["node-b", "node-a"])
    changed = config_obj(4, {"WIDTH": "1024", "HEIGHT": "600"})
    new = mutated(old, lambda o: join(o, Configuration.from_dict(changed), found(), "node-a"))
    assert new["spec"]["capacity"] == 4
    assert verdict(policies, "UPDATE", new, old, configs=[changed]) == []
    # ... and a key the Configuration no longer has is dropped
    narrowed = config_obj(2, {"HEIGHT": "600"})
    newer = mutated(new, lambda o: join(o, Configuration.from_dict(narrowed), found(), "node-a"))
    assert "WIDTH" not in newer["spec"]["brokerProperties"]
    assert verdict(policies, "UPDATE", newer, new, configs=[narrowed]) == []


def test_the_only_node_follows_its_devices_properties(policies) -> None:
    old = instance(["node-a"])
    cfg = Configuration.from_dict(config_obj())
    new = mutated(old, lambda o: join(o, cfg, found({"URL": "rtsp://10.0.0.9"}), "node-a"))
    assert verdict(policies, "UPDATE", new, old) == []


def test_the_agent_claims_changes_and_frees_its_slots(policies) -> None:
    old = instance(["node-a", "node-b"], {"cam-d46b65-1": "node-b"})
    steps = [claim("cam-d46b65-0", "node-a"), claim("cam-d46b65-0", "C:cam-d46b65-0:node-a")]
    for step in steps:
        new = mutated(old, step)
        assert verdict(policies, "UPDATE", new, old) == []
        old = new
    assert verdict(policies, "UPDATE", mutated(old, release("cam-d46b65-0")), old) == []


def test_the_agent_leaves_and_takes_its_finalizer_off(policies) -> None:
    old = instance(["node-a", "node-b"], {"cam-d46b65-0": "C:v:node-a", "cam-d46b65-1": "node-b"})
    new = mutated(old, lambda o: leave(o, "node-a"))
    assert new["spec"]["deviceUsage"] == {"cam-d46b65-1": "node-b"}
    assert verdict(policies, "UPDATE", new, old) == []
    # an Instance being deleted whose Configuration is gone already
    terminating = instance(["node-a"])
    terminating["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    new = mutated(terminating, remove_finalizer("node-a"))
    assert verdict(policies, "UPDATE", new, terminating, configs=[]) == []


def test_the_agent_deletes_an_instance_no_other_node_uses(policies) -> None:
    assert verdict(policies, "DELETE", None, instance(["node-a"])) == []
    empty = mutated(instance(["node-a"]), lambda o: leave(o, "node-a"))
    assert verdict(policies, "DELETE", None, empty) == []


def test_the_policies_ignore_everyone_but_the_agent(policies) -> None:
    old = instance(["node-b"])
    new = mutated(old, lambda o: o["spec"].update(capacity=99, nodes=[]))
    assert verdict(policies, "UPDATE", new, old, user="system:serviceaccount:akri:akri-controller") is None


# --- what a compromised node might try is refused -------------------------------------------------


def _set(path: str, value: Any) -> Any:
    def mutate(obj: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = obj
        for p in parents:
            target = target[p]
        target[last] = value

    return mutate


SHARED = instance(["node-a", "node-b"], {"cam-d46b65-1": "node-b", "cam-d46b65-2": "C:v:node-b"})


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        # env vars injected into node-b's broker containers
        (
            _set("spec.brokerProperties", {"URL": "rtsp://10.0.0.5", "WIDTH": "800", "LD_PRELOAD": "/x"}),
            "device brokerProperties",
        ),
        (_set("spec.brokerProperties", {"URL": "rtsp://evil", "WIDTH": "800"}), "device brokerProperties"),
        (
            _set("spec.brokerProperties", {"URL": "rtsp://10.0.0.5", "WIDTH": "1"}),
            "named by the Configuration",
        ),
        (_set("spec.capacity", 50), "capacity only"),
        (_set("spec.capacity", 0), "capacity only"),
        (_set("spec.shared", False), "shared"),
        (_set("spec.configurationName", "other"), "configurationName"),
        (_set("spec.cdiName", "akri.sh/cam=evil"), "cdiName"),
        (_set("metadata.ownerReferences", []), "owners"),
        (_set("metadata.labels", {"x": "y"}), "owners, labels"),
        (_set("spec.nodes", ["node-a"]), "its own node"),
        (_set("spec.nodes", ["node-a", "node-b", "node-c"]), "its own node"),
        (_set("metadata.finalizers", ["node-a"]), "its own finalizer"),
        # node-b's slots stolen, freed, or claimed in node-b's name
        (claim("cam-d46b65-1", "node-a"), "deviceUsage"),
        (claim("cam-d46b65-1", ""), "deviceUsage"),
        (release("cam-d46b65-2"), "deviceUsage"),
        (claim("cam-d46b65-0", "node-b"), "deviceUsage"),
        (claim("cam-d46b65-0", "C:v:node-b"), "deviceUsage"),
        (claim("cam-d46b65-0", "C:v:node-b:node-a"), "deviceUsage"),
    ],
)
def test_updates_beyond_its_own_node_are_refused(policies, mutate, message) -> None:
    failures = verdict(policies, "UPDATE", mutated(SHARED, mutate), SHARED)
    assert failures and any(message in f for f in failures), failures


def test_a_forged_configuration_change_is_refused_even_as_the_only_node(policies) -> None:
    old = instance(["node-a"])
    for mutate in (_set("spec.capacity", 9), _set("spec.brokerProperties", {"URL": "u", "WIDTH": "1"})):
        assert verdict(policies, "UPDATE", mutated(old, mutate), old)
    # no capacity or brokerProperties change on an Instance being deleted (its Configuration
    # may be gone: nothing to check them against)
    old["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    failures = verdict(policies, "UPDATE", mutated(old, _set("spec.brokerProperties", {})), old, configs=[])
    assert failures and "being deleted" in failures[0]


@pytest.mark.parametrize("nodes", [["node-a", "node-b"], ["node-b"]])
def test_deleting_an_instance_another_node_uses_is_refused(policies, nodes) -> None:
    failures = verdict(policies, "DELETE", None, instance(nodes))
    assert failures and "other nodes use" in failures[0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda o: o["spec"].update(nodes=["node-b"]), "just its node"),
        (lambda o: o["spec"].update(nodes=["node-a", "node-b"]), "just its node"),
        (lambda o: o["metadata"].update(finalizers=["node-a", "node-b"]), "its finalizer"),
        (lambda o: o["spec"].update(deviceUsage={"cam-d46b65-0": "node-a"}), "no slot taken"),
        (lambda o: o["spec"].update(capacity=8), "capacity only"),
        (lambda o: o["spec"].update(brokerProperties={"WIDTH": "1"}), "named by the Configuration"),
    ],
)
def test_creating_anything_but_its_own_instance_is_refused(policies, change, message) -> None:
    new = mutated(new_instance(Configuration.from_dict(config_obj()), found(), "node-a"), change)
    failures = verdict(policies, "CREATE", new, None)
    assert failures and any(message in f for f in failures), failures


def test_without_the_node_claim_one_node_name_at_a_time_and_no_fixed_fields(policies) -> None:
    """Tokens without `authentication.kubernetes.io/node-name`: the documented fallback."""
    old = instance(["node-b"])
    cfg = Configuration.from_dict(config_obj())
    assert (
        verdict(policies, "UPDATE", mutated(old, lambda o: join(o, cfg, found(), "x")), old, node=None) == []
    )
    two = mutated(old, lambda o: (join(o, cfg, found(), "x"), leave(o, "node-b")))
    assert verdict(policies, "UPDATE", two, old, node=None)
    assert verdict(policies, "UPDATE", mutated(old, _set("spec.capacity", 9)), old, node=None)
    assert verdict(policies, "DELETE", None, instance(["node-a", "node-b"]), node=None)
