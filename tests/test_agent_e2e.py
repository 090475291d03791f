"""`akri agent` end to end: agent PROCESSES against the API double (driven with the official
`kubernetes` client), kubelet double processes and standalone `akri handler` processes.

Timings are shortened for speed (offline grace 1 s, slot reclaim every 1 s with 1 s grace);
every wait is bounded only so that a broken run cannot hang.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from e2e.cluster import debug_echo_configuration
from e2e.fixtures import api_fixture, cluster_fixture, procs_fixture  # noqa: F401  (fixtures)
from e2e.procs import AgentProcess, KubeletProcess, ProcessGroup, sample, wait_for

from akri.model.naming import instance_name

pytestmark = pytest.mark.slow

FAST = ("--offline-grace-seconds", "1", "--slot-reclaim-interval", "1", "--slot-grace-period", "1")
LONG = 20.0  # for waits that include API back-off after an outage
CONFIG = "akri-debug-echo-foo"  # upstream's e2e Configuration; names from spec §11a
BAR0, BAR1 = "akri-debug-echo-foo-d46b65", "akri-debug-echo-foo-ab76e6"
RESOLUTION = {"RESOLUTION_WIDTH": "800", "RESOLUTION_HEIGHT": "600"}


def echo_env(availability: Path, *, embed: bool = False) -> dict[str, str]:
    env = {"DEBUG_ECHO_INSTANCES_SHARED": "true", "DEBUG_ECHO_AVAILABILITY_FILE": str(availability)}
    if embed:
        env["ENABLE_DEBUG_ECHO"] = "1"  # upstream's switch, kept for compatibility
    return env


def resource(name: str) -> str:
    return f"akri.sh/{name}"


def healthy_ids(kubelet: KubeletProcess, name: str, count: int) -> bool:
    res = kubelet.resource(resource(name))
    return bool(res and res["connected"]
                and res["devices"] == {f"{name}-{i}": "Healthy" for i in range(count)})


def connected(kubelet: KubeletProcess, name: str) -> bool:
    res = kubelet.resource(resource(name))
    return bool(res and res["connected"])


def usage(cluster: Any, name: str) -> dict[str, str]:
    inst = cluster.instance(name)
    return dict(inst["spec"].get("deviceUsage") or {}) if inst else {}


def start_echo_agent(procs: ProcessGroup, api: Any, *extra: str, node: str = "node-a",
                     kubelet: KubeletProcess | None = None) -> tuple[AgentProcess, KubeletProcess, Path]:
    kubelet = kubelet or procs.kubelet(node)
    availability = procs.workdir / f"{node}-availability"
    agent = procs.agent(node, api.kubeconfig_path, kubelet, "--embedded", "debugEcho", *FAST, *extra,
                        env=echo_env(availability))
    return agent.ready(), kubelet, availability


def test_debug_echo_configuration_end_to_end(procs: ProcessGroup, cluster: Any, api: Any) -> None:
    agent, kubelet, availability = start_echo_agent(procs, api)
    config = cluster.apply_configuration(
        debug_echo_configuration(CONFIG, ["bar0", "bar1"], capacity=2, broker_properties=RESOLUTION))

    # Instances with upstream's names, owned by the Configuration, served by node-a
    instances = wait_for("both Instances", lambda: (lambda i: i if set(i) == {BAR0, BAR1} else None)(
        cluster.instances(CONFIG)))
    bar0 = instances[BAR0]
    assert bar0["spec"] == {
        "configurationName": CONFIG, "cdiName": "akri.sh/akri-debug-echo-foo=d46b65", "capacity": 2,
        "brokerProperties": {"DEBUG_ECHO_DESCRIPTION": "bar0", **RESOLUTION}, "shared": True,
        "nodes": ["node-a"], "deviceUsage": {}}
    assert bar0["metadata"]["finalizers"] == ["node-a"]
    (owner,) = bar0["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "Configuration", CONFIG, config["metadata"]["uid"], True)
    assert wait_for("the agent's finalizer on the Configuration",
                    lambda: "node-a" in (cluster.configuration(CONFIG)["metadata"].get("finalizers") or []))

    # one plugin per Instance and one for the Configuration, registered at the kubelet
    wait_for("instance plugins", lambda: healthy_ids(kubelet, BAR0, 2) and healthy_ids(kubelet, BAR1, 2))
    wait_for("configuration plugin", lambda: connected(kubelet, CONFIG))
    assert set(kubelet.state()["resources"]) == {resource(BAR0), resource(BAR1), resource(CONFIG)}

    # Allocate: the broker environment, plain and with the device's hash (spec §4.10)
    status, response = kubelet.allocate(resource(BAR0), count=1, pod="broker-0")
    assert status == 200, response
    assert response["containerResponses"][0]["envs"] == {
        "DEBUG_ECHO_DESCRIPTION": "bar0", "DEBUG_ECHO_DESCRIPTION_D46B65": "bar0",
        "RESOLUTION_WIDTH": "800", "RESOLUTION_WIDTH_D46B65": "800",
        "RESOLUTION_HEIGHT": "600", "RESOLUTION_HEIGHT_D46B65": "600"}
    (device_id,) = kubelet.state()["allocated"][resource(BAR0)]
    assert usage(cluster, BAR0) == {device_id: "node-a"}  # the claim is recorded before Allocate answers
    # a configuration-level allocation claims a slot of some Instance as C:<vdev>:node-a
    status, response = kubelet.allocate(resource(CONFIG), count=1, pod="broker-1")
    assert status == 200, response
    (vdev,) = kubelet.state()["allocated"][resource(CONFIG)]
    claims = {**usage(cluster, BAR0), **usage(cluster, BAR1)}
    assert sorted(claims.values()) == sorted(["node-a", f"C:{vdev}:node-a"])

    # /metrics: real values
    def metrics_show_claims() -> bool:
        text = agent.metrics()
        used = sum(agent_sample(text, "akri_instance_slots", instance=n, state="used") for n in (BAR0, BAR1))
        return (agent_sample(text, "akri_instance_count", configuration=CONFIG, is_shared="true") == 2
                and used == 2)
    wait_for("slot gauges", metrics_show_claims)
    text = agent.metrics()
    assert agent_sample(text, "akri_instance_slots", instance=BAR0, state="free") == 1
    assert agent_sample(text, "akri_instance_slots", instance=BAR0, state="other_node") == 0
    assert agent_sample(text, "akri_discovery_response_time_count", configuration=CONFIG) >= 1
    assert agent_sample(text, "akri_discovery_response_time_bucket", configuration=CONFIG, le="0.25") >= 1
    assert agent_sample(text, "akri_discovery_response_result_total", discovery_handler_name="debugEcho",
                        result="Success") >= 1
    assert agent_sample(text, "process_resident_memory_bytes") > 10_000_000

    # the slot reclaimer: the pod is gone from PodResources -> its slot is freed after the grace
    kubelet.remove_pod("broker-0")
    wait_for("slot of the ended pod freed", lambda: device_id not in usage(cluster, BAR0))
    assert f"C:{vdev}:node-a" in {**usage(cluster, BAR0), **usage(cluster, BAR1)}.values()  # pod still runs
    assert "reclaiming unused slots - start" in agent.text()

    # OFFLINE -> Instances and plugins gone; ONLINE -> back
    availability.write_text("OFFLINE")
    wait_for("Instances gone while OFFLINE", lambda: not cluster.instances(CONFIG))
    wait_for("plugins gone while OFFLINE", lambda: not any(
        connected(kubelet, n) for n in (BAR0, BAR1, CONFIG)))
    availability.write_text("ONLINE")
    wait_for("Instances back ONLINE", lambda: set(cluster.instances(CONFIG)) == {BAR0, BAR1})
    wait_for("plugins back ONLINE", lambda: healthy_ids(kubelet, BAR0, 2) and healthy_ids(kubelet, BAR1, 2))

    # deleting the Configuration cleans up: Instances, plugins, finalizers
    cluster.delete_configuration(CONFIG)
    wait_for("Configuration deleted (finalizer released)", lambda: cluster.configuration(CONFIG) is None)
    wait_for("Instances deleted", lambda: not cluster.instances(CONFIG))
    wait_for("plugins gone", lambda: not any(connected(kubelet, n) for n in (BAR0, BAR1, CONFIG)))

    # logs that explain: one line per Instance added/removed, plugin registered, handler registered
    log = agent.text()
    assert log.count(f"instance default/{BAR0} added on this node") == 2  # first, and after ONLINE
    assert log.count(f"instance default/{BAR0} removed from this node") == 2
    assert f"registered {resource(BAR0)} with the kubelet" in log
    assert "discovery handler embedded-debugEcho added" in log
    assert agent.stop() == 0


def agent_sample(text: str, name: str, **labels: str) -> float:
    value = sample(text, name, **labels)
    return 0.0 if value is None else value


def test_two_nodes_share_one_device(procs: ProcessGroup, cluster: Any, api: Any) -> None:
    """Capacity 2 shared by node-a and node-b: racing allocations get different slots, never fail
    while a slot is free, and a third container is refused."""
    nodes = ("node-a", "node-b")
    agents = {n: start_echo_agent(procs, api, node=n)[0] for n in nodes}
    kubelets = {n: agents[n].kubelet for n in nodes}
    config = "akri-shared"
    cluster.apply_configuration(debug_echo_configuration(config, ["cam0"], capacity=2))
    name = instance_name(config, "cam0", shared=True)
    wait_for("both nodes in the Instance", lambda: sorted(
        (cluster.instance(name) or {"spec": {"nodes": []}})["spec"]["nodes"]) == list(nodes))
    for n in nodes:
        wait_for(f"plugin at {n}'s kubelet", lambda n=n: healthy_ids(kubelets[n], name, 2))

    def race(request: Callable[[str, int], tuple[int, Any]], round_no: int) -> None:
        barrier = threading.Barrier(len(nodes))

        def one(node: str) -> tuple[int, Any]:
            barrier.wait()
            return request(node, round_no)

        with ThreadPoolExecutor(len(nodes)) as pool:
            results = dict(zip(nodes, pool.map(one, nodes), strict=True))
        for node, (status, body) in results.items():
            assert status == 200, f"{node} refused while a slot was free: {body}"
        claims = usage(cluster, name)
        assert sorted(claims.values()) == list(nodes), claims  # one slot each, never the same slot
        for n in nodes:  # both slots held: a third container is refused, on either node
            status, body = kubelets[n].allocate(resource(name), count=1, pod=f"extra-{n}-{round_no}")
            assert status == 409, body
        assert usage(cluster, name) == claims
        for n in nodes:
            kubelets[n].remove_pod(f"pod-{n}-{round_no}")
        wait_for("both slots reclaimed", lambda: usage(cluster, name) == {})
        for n in nodes:
            wait_for(f"{n} offers both ids again", lambda n=n: healthy_ids(kubelets[n], name, 2))

    # round 1: both kubelets pick the SAME id at the same moment
    race(lambda n, r: kubelets[n].allocate(resource(name), [f"{name}-0"], pod=f"pod-{n}-{r}"), 1)
    # round 2: both let the plugin's preferred allocation choose
    race(lambda n, r: kubelets[n].allocate(resource(name), count=1, pod=f"pod-{n}-{r}"), 2)
    # the other node's claims show on /metrics as other_node
    kubelets["node-b"].allocate(resource(name), count=1, pod="last")
    wait_for("other_node slot on node-a's /metrics", lambda: agents["node-a"].metric(
        "akri_instance_slots", instance=name, state="other_node") == 1)


def test_kubelet_restart_reregisters_every_plugin(procs: ProcessGroup, cluster: Any, api: Any) -> None:
    kubelet = procs.kubelet("node-a")
    availability = procs.workdir / "availability"
    agent = procs.agent("node-a", api.kubeconfig_path, kubelet, *FAST,
                        env=echo_env(availability, embed=True)).ready()  # ENABLE_DEBUG_ECHO
    cluster.apply_configuration(debug_echo_configuration(CONFIG, ["bar0"], capacity=2))
    wait_for("plugins", lambda: healthy_ids(kubelet, BAR0, 2) and connected(kubelet, CONFIG))
    assert kubelet.allocate(resource(BAR0), count=1, pod="before")[0] == 200

    assert kubelet.restart() == 2  # deletes every socket in the directory, as a kubelet does
    wait_for("every plugin registered again", lambda: all(
        kubelet.accepted(resource(n)) >= 2 and connected(kubelet, n) for n in (BAR0, CONFIG)))
    status, body = kubelet.allocate(resource(BAR0), count=1, pod="after")
    assert status == 200, body
    assert sorted(usage(cluster, BAR0).values()) == ["node-a", "node-a"]
    assert agent.text().count(f"registered {resource(BAR0)} with the kubelet") >= 2

    # a kubelet that is gone for a while (killed; its sockets stay behind) and comes back
    kubelet.kill()
    agent.wait_log("pod-resources at .* unreachable")  # the reclaimer skips its rounds meanwhile
    back = procs.kubelet("node-a")
    wait_for("every plugin registered with the new kubelet", lambda: all(
        back.accepted(resource(n)) >= 1 and connected(back, n) for n in (BAR0, CONFIG)))
    agent.wait_log("pod-resources at .* answers again")
    assert agent.alive()


def test_api_server_outage_is_survived(procs: ProcessGroup, cluster: Any, api: Any) -> None:
    agent, kubelet, availability = start_echo_agent(procs, api)
    cluster.apply_configuration(debug_echo_configuration(CONFIG, ["bar0", "bar1"], capacity=1))
    wait_for("Instances", lambda: set(cluster.instances(CONFIG)) == {BAR0, BAR1})
    wait_for("plugins", lambda: healthy_ids(kubelet, BAR0, 1) and healthy_ids(kubelet, BAR1, 1))

    api.stop()  # watches break, writes fail
    availability.write_text("OFFLINE")  # ... while the devices go away
    agent.wait_log("OFFLINE")
    threading.Event().wait(1.5)  # past the offline grace: the agent tries to write and cannot
    assert agent.alive()
    api.start()  # same port, same data
    wait_for("Instances removed after the outage", lambda: not cluster.instances(CONFIG), LONG)
    wait_for("plugins removed", lambda: not connected(kubelet, BAR0) and not connected(kubelet, BAR1))
    availability.write_text("ONLINE")
    wait_for("Instances back", lambda: set(cluster.instances(CONFIG)) == {BAR0, BAR1}, LONG)
    wait_for("plugins back", lambda: healthy_ids(kubelet, BAR0, 1) and healthy_ids(kubelet, BAR1, 1))


def test_agent_restart_keeps_instances_and_claims(procs: ProcessGroup, cluster: Any, api: Any) -> None:
    agent, kubelet, _ = start_echo_agent(procs, api)
    cluster.apply_configuration(debug_echo_configuration(CONFIG, ["bar0", "bar1"], capacity=2))
    wait_for("plugins", lambda: healthy_ids(kubelet, BAR0, 2) and healthy_ids(kubelet, BAR1, 2))
    assert kubelet.allocate(resource(BAR0), count=1, pod="broker")[0] == 200
    before = {n: cluster.instance(n) for n in (BAR0, BAR1)}
    assert usage(cluster, BAR0)

    assert agent.stop(signal.SIGTERM) == 0  # a clean stop...
    assert "agent stopping" in agent.text()
    for n, inst in before.items():  # ...leaves the Instances, finalizers and claims in place
        now = cluster.instance(n)
        assert now is not None
        assert now["metadata"]["uid"] == inst["metadata"]["uid"]
        assert now["metadata"]["finalizers"] == ["node-a"]
        assert now["spec"] == inst["spec"]

    again = procs.agent("node-a", api.kubeconfig_path, kubelet, "--embedded", "debugEcho", *FAST,
                        env=echo_env(procs.workdir / "node-a-availability"),
                        log_name="agent-again.log").ready()
    wait_for("plugins registered by the new agent", lambda: all(
        kubelet.accepted(resource(n)) >= 2 and connected(kubelet, n) for n in (BAR0, BAR1, CONFIG)))
    # a few reclaim rounds later the running pod still holds its slot
    wait_for("reclaim rounds", lambda: again.text().count("reclaiming unused slots - start") >= 3)
    assert usage(cluster, BAR0) == before[BAR0]["spec"]["deviceUsage"]
    assert {n: i["metadata"]["uid"] for n, i in cluster.instances(CONFIG).items()} == {
        n: i["metadata"]["uid"] for n, i in before.items()}
    assert f"instance default/{BAR0} created" not in again.text()


def test_killed_handler_registers_again_and_instances_stay(procs: ProcessGroup, cluster: Any,
                                                           api: Any) -> None:
    kubelet = procs.kubelet("node-a")
    # the devices of a handler that went away are kept for 10 s, long enough for it to come back
    agent = procs.agent("node-a", api.kubeconfig_path, kubelet, *FAST, "--handler-hold-seconds", "10").ready()
    env = echo_env(procs.workdir / "availability")
    handler = procs.handler("debugEcho", agent.handlers_dir, env=env)
    agent.wait_log(r"discovery handler debugEcho@\S+ added \(uds, shared=True\)")
    cluster.apply_configuration(debug_echo_configuration(CONFIG, ["bar0", "bar1"], capacity=1))
    wait_for("plugins", lambda: healthy_ids(kubelet, BAR0, 1) and healthy_ids(kubelet, BAR1, 1))
    uids = cluster.uids(CONFIG)

    mark = len(agent.text())
    handler.kill()
    wait_for("the stream failure counted", lambda: agent.metric(
        "akri_discovery_response_result_total", discovery_handler_name="debugEcho", result="Fail"))
    successes = agent.metric("akri_discovery_response_result_total", discovery_handler_name="debugEcho",
                             result="Success")
    procs.handler("debugEcho", agent.handlers_dir, env=env, log_name="handler-again.log")
    agent.wait_log(r"discovery handler debugEcho@\S+ (added|replaced)", after=mark)
    wait_for("a new list from the new handler", lambda: agent.metric(
        "akri_discovery_response_result_total", discovery_handler_name="debugEcho",
        result="Success") > successes)
    assert cluster.uids(CONFIG) == uids  # never deleted in between
    assert healthy_ids(kubelet, BAR0, 1) and healthy_ids(kubelet, BAR1, 1)
    assert "removed from this node" not in agent.text()
