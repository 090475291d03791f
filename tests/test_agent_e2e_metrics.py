"""The agent's /metrics content (akri.agent.metrics) without processes: slot states, the
Instance gauges computed at scrape time, the discovery histogram and counter."""

from __future__ import annotations

from e2e.procs import sample

from akri.agent.metrics import RESPONSE_TIME_BUCKETS, AgentMetrics, slot_states
from akri.agent.node_instances import NodeInstance
from akri.model.instance import Instance


def node_instance(name: str, usage: dict[str, str], *, capacity: int = 3, shared: bool = True,
                  configuration: str = "cfg") -> NodeInstance:
    obj = {"apiVersion": "akri.sh/v0", "kind": "Instance",
           "metadata": {"name": name, "namespace": "default"},
           "spec": {"configurationName": configuration, "cdiName": f"akri.sh/{configuration}=abc123",
                    "capacity": capacity, "shared": shared, "nodes": ["node-a"], "deviceUsage": usage}}
    return NodeInstance(Instance.from_dict(obj), None, None, obj)


def test_slot_states_from_device_usage() -> None:
    usage = {"i-0": "node-a", "i-1": "C:cfg-0:node-a", "i-2": "node-b", "i-3": ""}
    assert slot_states(usage, 5, "node-a") == {"used": 2, "free": 2, "other_node": 1}
    assert slot_states({}, 2, "node-a") == {"used": 0, "free": 2, "other_node": 0}
    # unreadable entries and slots beyond the capacity count as nothing (a scrape never fails)
    assert slot_states({"i-0": "a:b", "nonsense": "node-a", "i-7": "node-a", "i-1": "node-b"}, 2,
                       "node-a") == {"used": 0, "free": 1, "other_node": 1}


def test_exposition_has_upstream_names_and_real_values() -> None:
    views = [node_instance("cfg-aaaaaa", {"cfg-aaaaaa-0": "node-a", "cfg-aaaaaa-2": "node-b"}),
             node_instance("cfg-bbbbbb", {}), node_instance("other-cccccc", {}, shared=False,
                                                             configuration="other")]
    metrics = AgentMetrics("node-a", lambda: views)
    metrics.discovery_response("cfg", "debugEcho", 0.3)  # first list of a stream: 0.3 s
    metrics.discovery_response("cfg", "debugEcho", None)  # a later list
    metrics.discovery_failure("cfg", "debugEcho")
    text = metrics.registry.render().decode()

    assert sample(text, "akri_instance_count", configuration="cfg", is_shared="true") == 2
    assert sample(text, "akri_instance_count", configuration="other", is_shared="false") == 1
    assert sample(text, "akri_instance_slots", instance="cfg-aaaaaa", state="used") == 1
    assert sample(text, "akri_instance_slots", instance="cfg-aaaaaa", state="other_node") == 1
    assert sample(text, "akri_instance_slots", instance="cfg-aaaaaa", state="free") == 1
    assert sample(text, "akri_instance_slots", instance="cfg-bbbbbb", state="free") == 3
    buckets = [float(b) for b in RESPONSE_TIME_BUCKETS]
    assert buckets == [0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 60]  # spec §4.12
    assert sample(text, "akri_discovery_response_time_bucket", configuration="cfg", le="0.25") == 0
    assert sample(text, "akri_discovery_response_time_bucket", configuration="cfg", le="0.5") == 1
    assert sample(text, "akri_discovery_response_time_count", configuration="cfg") == 1
    assert sample(text, "akri_discovery_response_result_total", discovery_handler_name="debugEcho",
                  result="Success") == 2
    assert sample(text, "akri_discovery_response_result_total", discovery_handler_name="debugEcho",
                  result="Fail") == 1
    assert sample(text, "process_resident_memory_bytes") > 0

    views.clear()  # gauges follow the cache: nothing served, nothing reported
    text = metrics.registry.render().decode()
    assert sample(text, "akri_instance_count", configuration="cfg", is_shared="true") is None
