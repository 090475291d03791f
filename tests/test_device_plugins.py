"""Device plugins against the kubelet double, over real gRPC on unix sockets.

Each simulated node is a KubeletDouble (registration + pod-resources servers, the driver that
calls Allocate like the kubelet) and a PluginManager; the nodes share a MemorySlotStore, the
in-memory stand-in for Instance.spec.deviceUsage, whose change feed plays the cluster side's
Instance watch (feeding apply_instance, with a delay so nodes see each other's claims late).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import stat
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from e2e.procs import until

from akri._proto import deviceplugin_pb2 as dp
from akri._proto import deviceplugin_pb2_grpc as dp_grpc
from akri.agent.plugins import InstanceView, MemorySlotStore, PluginManager, SlotReclaimer
from akri.agent.plugins.reclaimer import START_MESSAGE
from akri.agent.plugins.responses import container_response
from akri.discovery.device import DeviceSpec, Mount
from akri.testing.kubelet import AllocationError, KubeletDouble

H, U = "Healthy", "Unhealthy"
NS = "default"
CFG = "akri-debug-echo-foo"
INST = "akri-debug-echo-foo-d46b65"  # shared debugEcho device "bar0" (spec §11a)
INST2 = "akri-debug-echo-foo-ab76e6"  # "bar1"
RES = f"akri.sh/{INST}"
CFG_RES = f"akri.sh/{CFG}"


def echo_view(name: str = INST, capacity: int = 2, **kw: object) -> InstanceView:
    digest = name.rpartition("-")[2]
    desc = {"d46b65": "bar0", "ab76e6": "bar1"}.get(digest, digest)
    defaults: dict[str, object] = dict(
        name=name,
        namespace=NS,
        configuration=CFG,
        capacity=capacity,
        cdi_name=f"akri.sh/{CFG}={digest}",
        shared=True,
        properties={"DEBUG_ECHO_DESCRIPTION": desc, "RESOLUTION_WIDTH": "800", "RESOLUTION_HEIGHT": "600"},
    )
    defaults.update(kw)
    return InstanceView(**defaults)  # type: ignore[arg-type]


class SimNode:
    """A kubelet double + this node's plugin manager, fed by the shared store's change feed."""

    def __init__(self, root: Path, name: str, store: MemorySlotStore, **manager_kw: object) -> None:
        self.name = name
        self.store = store
        self.dir = root / name / "device-plugins"
        self.pod_resources = root / name / "pod-resources" / "kubelet.sock"
        self.kubelet = KubeletDouble(self.dir, self.pod_resources)
        self.manager = PluginManager(name, store, directory=self.dir, poll_interval=0.2, **manager_kw)
        self.views: dict[str, InstanceView] = {}
        self._unsubscribe: Callable[[], None] | None = None

    async def start(self) -> SimNode:
        await self.kubelet.start()
        await self.manager.start()
        self._unsubscribe = self.store.subscribe(self._watch)
        return self

    async def stop(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()
        await self.manager.stop()
        await self.kubelet.stop()

    async def _watch(self, namespace: str, name: str, capacity: int, usage: dict[str, str]) -> None:
        view = self.views.get(name)
        if view is not None:
            self.views[name] = view = replace(view, capacity=capacity, device_usage=usage)
            await self.manager.apply_instance(view)

    async def add(self, view: InstanceView) -> None:
        try:
            usage = self.store.device_usage(view.namespace, view.name)
        except KeyError:
            self.store.put_instance(view.namespace, view.name, view.capacity, dict(view.device_usage))
            usage = dict(view.device_usage)
        self.views[view.name] = view = replace(view, device_usage=usage)
        await self.manager.apply_instance(view)

    async def remove(self, name: str) -> None:
        self.views.pop(name, None)
        await self.manager.remove_instance(name)

    def usage(self, name: str = INST) -> dict[str, str]:
        return self.store.device_usage(NS, name)


NodeFactory = Callable[..., Awaitable[SimNode]]


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    """A short directory: unix socket paths are limited to 107 bytes (pytest's tmp_path is long)."""
    path = Path(tempfile.mkdtemp(prefix="akri-dp-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def make_node(sock_dir: Path) -> AsyncIterator[NodeFactory]:
    nodes: list[SimNode] = []

    async def make(name: str, store: MemorySlotStore, **kw: object) -> SimNode:
        node = await SimNode(sock_dir, name, store, **kw).start()
        nodes.append(node)
        return node

    yield make
    for node in reversed(nodes):
        await node.stop()


def is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except FileNotFoundError:
        return False


# --- registration and health ------------------------------------------------------------------


@pytest.mark.slow
async def test_registration_and_health_vectors(make_node: NodeFactory) -> None:
    store = MemorySlotStore()
    node = await make_node("node-a", store)
    name = "instance-a"
    res = f"akri.sh/{name}"
    await node.add(
        InstanceView(
            name=name,
            namespace=NS,
            configuration="config-a",
            capacity=3,
            cdi_name="akri.sh/config-a=aaaaaa",
            device_usage={"instance-a-1": "node-b"},
        )
    )
    reg = await node.kubelet.wait_for_registration(res)
    assert reg.version == "v1beta1" and reg.get_preferred_allocation_available and not reg.pre_start_required
    assert re.fullmatch(r"instance-a-\d+\.sock", reg.endpoint)
    sock = node.dir / reg.endpoint
    assert stat.S_ISSOCK(sock.stat().st_mode) and stat.S_IMODE(sock.stat().st_mode) & 0o077 == 0
    # spec §3.2 vector: capacity 3, {instance-a-1: node-b} on node-a
    await node.kubelet.wait_for_devices(res, {"instance-a-0": H, "instance-a-1": U, "instance-a-2": H})
    # the configuration plugin: one free vdev for the Instance
    await node.kubelet.wait_for_devices("akri.sh/config-a", {"config-a-0": H})
    # second vector: configuration-level use (any node) and other nodes are Unhealthy
    store.put_instance(
        NS,
        name,
        3,
        {"instance-a-0": "C:config-a-0:node-a", "instance-a-1": "node-b", "instance-a-2": "node-a"},
    )
    await node.kubelet.wait_for_devices(res, {"instance-a-0": U, "instance-a-1": U, "instance-a-2": H})
    # no free slot left: only the vdev this node uses is advertised
    await node.kubelet.wait_for_devices("akri.sh/config-a", {"config-a-0": H})
    # another node's claim that disappears from deviceUsage is free again (upstream kept it)
    store.put_instance(NS, name, 3, {"instance-a-0": "C:config-a-0:node-a", "instance-a-2": "node-a"})
    await node.kubelet.wait_for_devices(res, {"instance-a-0": U, "instance-a-1": H, "instance-a-2": H})


@pytest.mark.slow
async def test_own_claims_wiped_from_the_instance_are_written_again(make_node: NodeFactory) -> None:
    """deviceUsage loses this node's claim (an older event, or the controller's node watcher
    while this node was NotReady): the plugin checks with the store and restores it."""
    store = MemorySlotStore()
    node = await make_node("node-a", store)
    await node.add(echo_view())
    await node.kubelet.wait_for_registration(RES)
    await node.kubelet.allocate(RES, [f"{INST}-1"], pod="p")
    store.put_instance(NS, INST, 2, {})
    await until(lambda: node.usage() == {f"{INST}-1": "node-a"})
    await node.kubelet.wait_for_devices(RES, {f"{INST}-0": H, f"{INST}-1": H})


@pytest.mark.slow
async def test_capacity_change_reaches_running_plugin(make_node: NodeFactory) -> None:
    store = MemorySlotStore()
    node = await make_node("node-a", store)
    await node.add(echo_view(capacity=2))
    await node.kubelet.wait_for_devices(RES, {f"{INST}-0": H, f"{INST}-1": H})
    await node.kubelet.allocate(RES, [f"{INST}-1"])
    assert node.usage() == {f"{INST}-1": "node-a"}
    store.put_instance(NS, INST, 4)
    await node.kubelet.wait_for_devices(RES, {f"{INST}-{i}": H for i in range(4)})
    # shrinking past this node's slot gives it back
    store.put_instance(NS, INST, 1)
    await node.kubelet.wait_for_devices(RES, {f"{INST}-0": H})
    await until(lambda: node.usage() == {})


@pytest.mark.slow
async def test_device_not_reported_yet_offers_nothing(make_node: NodeFactory) -> None:
    node = await make_node("node-a", MemorySlotStore())
    await node.add(echo_view(device_ready=False))
    await node.kubelet.wait_for_devices(RES, {f"{INST}-0": U, f"{INST}-1": U})
    await node.kubelet.wait_for_devices(CFG_RES, {})


# --- Allocate ---------------------------------------------------------------------------------


@pytest.mark.slow
async def test_allocate_env_mounts_and_device_specs(make_node: NodeFactory) -> None:
    store = MemorySlotStore()
    node = await make_node("node-a", store)
    view = echo_view(
        mounts=(Mount("/data", "/var/data", True),),
        device_specs=(DeviceSpec("/dev/video0", "/dev/video2", "rw"), DeviceSpec("/dev/null", "")),
    )
    await node.add(view)
    await node.kubelet.wait_for_registration(RES)
    response = await node.kubelet.allocate(RES, count=1, pod="broker-0")
    (container,) = response.container_responses
    assert dict(container.envs) == {
        "DEBUG_ECHO_DESCRIPTION": "bar0",
        "DEBUG_ECHO_DESCRIPTION_D46B65": "bar0",
        "RESOLUTION_WIDTH": "800",
        "RESOLUTION_WIDTH_D46B65": "800",
        "RESOLUTION_HEIGHT": "600",
        "RESOLUTION_HEIGHT_D46B65": "600",
    }
    assert [(m.container_path, m.host_path, m.read_only) for m in container.mounts] == [
        ("/data", "/var/data", True)
    ]
    assert [(d.container_path, d.host_path, d.permissions) for d in container.devices] == [
        ("/dev/video0", "/dev/video2", "rw"),
        ("/dev/null", "/dev/null", ""),
    ]
    assert list(container.cdi_devices) == []  # off by default (no CDI spec files are written)
    # the kubelet asked GetPreferredAllocation first; the claim is in deviceUsage
    allocation = node.kubelet.allocations[-1]
    assert allocation.preferred is not None and allocation.container_requests == [allocation.preferred]
    assert node.usage() == {allocation.preferred[0]: "node-a"}
    # still Healthy for the pod that has it; the other slot stays offered
    await node.kubelet.wait_for_devices(RES, {f"{INST}-0": H, f"{INST}-1": H})


def test_cdi_name_and_one_response_per_container() -> None:
    a, b = echo_view(), echo_view(INST2)
    resp = container_response([a, b, a], cdi_devices=True)
    assert [c.name for c in resp.cdi_devices] == [
        "akri.sh/akri-debug-echo-foo=d46b65",
        "akri.sh/akri-debug-echo-foo=ab76e6",
    ]
    assert (
        resp.envs["DEBUG_ECHO_DESCRIPTION_D46B65"] == "bar0"
        and resp.envs["DEBUG_ECHO_DESCRIPTION_AB76E6"] == "bar1"
    )
    assert resp.envs["DEBUG_ECHO_DESCRIPTION"] == "bar1"  # plain names: last device wins


@pytest.mark.slow
async def test_cdi_devices_when_enabled(make_node: NodeFactory) -> None:
    node = await make_node("node-a", MemorySlotStore(), cdi_devices=True)
    await node.add(echo_view())
    await node.kubelet.wait_for_registration(RES)
    response = await node.kubelet.allocate(RES, [f"{INST}-0"])
    assert [c.name for c in response.container_responses[0].cdi_devices] == [f"akri.sh/{CFG}=d46b65"]


@pytest.mark.slow
async def test_invalid_device_id_is_refused_by_the_plugin(make_node: NodeFactory) -> None:
    node = await make_node("node-a", MemorySlotStore())
    await node.add(echo_view())
    reg = await node.kubelet.wait_for_registration(RES)
    async with grpc.aio.insecure_channel(f"unix://{node.dir / reg.endpoint}") as channel:
        stub = dp_grpc.DevicePluginStub(channel)
        for bad in ("not-a-slot-id", f"{INST}-2", f"{INST}-01"):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.Allocate(
                    dp.AllocateRequest(container_requests=[dp.ContainerAllocateRequest(devices_ids=[bad])])
                )
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert (
            await stub.PreStartContainer(dp.PreStartContainerRequest(devices_ids=[f"{INST}-0"])) is not None
        )
    assert node.usage() == {}


@pytest.mark.slow
async def test_two_nodes_race_for_a_shared_instance(make_node: NodeFactory) -> None:
    """Capacity 3, four pods on two nodes at once, both kubelets picking the same ids: three
    succeed on three distinct slots, only the fourth fails (nothing is free for it)."""
    store = MemorySlotStore(latency=0.02, watch_delay=0.1)
    a = await make_node("node-a", store)
    b = await make_node("node-b", store)
    for node in (a, b):
        await node.add(echo_view(capacity=3))
        await node.kubelet.wait_for_devices(RES, {f"{INST}-{i}": H for i in range(3)})
    calls = [
        (a, [f"{INST}-0"], "pa0"),
        (a, [f"{INST}-1"], "pa1"),
        (b, [f"{INST}-0"], "pb0"),
        (b, [f"{INST}-1"], "pb1"),
    ]
    results = await asyncio.gather(
        *(n.kubelet.allocate(RES, ids, pod=pod) for n, ids, pod in calls), return_exceptions=True
    )
    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == 1, results
    assert isinstance(failures[0], AllocationError) and failures[0].code == grpc.StatusCode.RESOURCE_EXHAUSTED
    usage = a.usage()
    assert (
        len(usage) == 3
        and sorted(usage.values()).count("node-a") + sorted(usage.values()).count("node-b") == 3
    )
    for node in (a, b):  # each node holds exactly one slot per id its kubelet handed out
        handed = sum(len(ids) for al in node.kubelet.allocations for ids in al.container_requests)
        assert list(usage.values()).count(node.name) == handed
        assert len(node.manager.instance_plugin(INST).table.bound_tokens()) == handed
    # once both nodes have seen every claim, nothing more is offered anywhere
    await until(
        lambda: all(
            sum(h == H for h in n.kubelet.devices(RES).values())
            == len(n.manager.instance_plugin(INST).table.bound_tokens())
            for n in (a, b)
        )
    )
    with pytest.raises(AllocationError) as err:
        await a.kubelet.allocate(RES, count=1, pod="late")
    assert err.value.code is None  # refused by the kubelet itself: no Healthy device left


@pytest.mark.slow
async def test_preferred_allocation_spreads_racing_nodes(make_node: NodeFactory) -> None:
    """With GetPreferredAllocation the kubelets of two nodes pick different slots."""
    store = MemorySlotStore(watch_delay=0.2)
    a = await make_node("node-a", store)
    b = await make_node("node-b", store)
    view = echo_view(capacity=8, nodes=("node-a", "node-b"))
    for node in (a, b):
        await node.add(view)
        await node.kubelet.wait_for_registration(RES)
    every_id = [f"{INST}-{i}" for i in range(8)]
    first_a = (await a.kubelet.preferred_allocation(RES, every_id, 1))[0]
    first_b = (await b.kubelet.preferred_allocation(RES, every_id, 1))[0]
    assert (first_a, first_b) == (f"{INST}-0", f"{INST}-4")  # evenly spaced starting points
    # and must_include is honoured
    picked = await a.kubelet.preferred_allocation(RES, every_id, 2, must_include=[f"{INST}-5"])
    assert picked[0] == f"{INST}-5" and len(picked) == 2


# --- configuration-level plugin ---------------------------------------------------------------


@pytest.mark.slow
async def test_configuration_plugin_allocation(make_node: NodeFactory) -> None:
    store = MemorySlotStore()
    node = await make_node("node-a", store)
    await node.add(echo_view(INST, capacity=1))
    await node.add(echo_view(INST2, capacity=1))
    await node.kubelet.wait_for_devices(CFG_RES, {f"{CFG}-0": H, f"{CFG}-1": H})
    # one container asks for two configuration-level devices: two different devices, one response
    response = await node.kubelet.allocate(CFG_RES, count=2, pod="both")
    (container,) = response.container_responses
    assert container.envs["DEBUG_ECHO_DESCRIPTION_D46B65"] == "bar0"
    assert container.envs["DEBUG_ECHO_DESCRIPTION_AB76E6"] == "bar1"
    claimed = {**node.usage(INST), **node.usage(INST2)}
    assert sorted(claimed.values()) == [f"C:{CFG}-0:node-a", f"C:{CFG}-1:node-a"]
    # configuration-level use makes the instance-level ids Unhealthy; the used vdevs stay listed
    await node.kubelet.wait_for_devices(RES, {f"{INST}-0": U})
    await node.kubelet.wait_for_devices(CFG_RES, {f"{CFG}-0": H, f"{CFG}-1": H})
    # the same pod's next container gets an already used vdev again (init-container reuse)
    again = await node.kubelet.allocate(CFG_RES, [f"{CFG}-0"], pod="both", container="app")
    assert again.container_responses[0].envs["DEBUG_ECHO_DESCRIPTION"] in ("bar0", "bar1")
    assert {**node.usage(INST), **node.usage(INST2)} == claimed  # no new claim


@pytest.mark.slow
async def test_configuration_vdev_falls_back_to_another_instance(make_node: NodeFactory) -> None:
    """The vdev's own Instance lost its last slot to another node: another Instance serves it."""
    store = MemorySlotStore(watch_delay=0.3)
    node = await make_node("node-a", store)
    await node.add(echo_view(INST, capacity=1))
    await node.add(echo_view(INST2, capacity=1))
    await node.kubelet.wait_for_devices(CFG_RES, {f"{CFG}-0": H, f"{CFG}-1": H})
    vdevs = node.manager.configuration_plugin(CFG).vdevs()
    vdev_of_inst = next(v for v, (i, _) in vdevs.items() if i == INST)
    assert await store.claim(NS, INST, f"{INST}-0", "node-b")  # node-b wins; node-a hears it 0.3 s later
    response = await node.kubelet.allocate(CFG_RES, [vdev_of_inst], pod="p")
    assert response.container_responses[0].envs["DEBUG_ECHO_DESCRIPTION"] == "bar1"
    assert node.usage(INST2) == {f"{INST2}-0": f"C:{vdev_of_inst}:node-a"}
    assert node.usage(INST) == {f"{INST}-0": "node-b"}


# --- kubelet restarts -------------------------------------------------------------------------


@pytest.mark.slow
async def test_kubelet_restart_reregisters_every_plugin(make_node: NodeFactory) -> None:
    store = MemorySlotStore()
    node = await make_node("node-a", store)
    await node.add(echo_view(capacity=2, device_usage={}))
    before = {RES: {f"{INST}-0": H, f"{INST}-1": H}, CFG_RES: {f"{CFG}-0": H}}
    await node.kubelet.wait_for_registration(RES)
    await node.kubelet.allocate(RES, [f"{INST}-1"], pod="p")
    for resource, devices in before.items():
        await node.kubelet.wait_for_devices(resource, devices)
    old_endpoint = node.kubelet.endpoint(RES)
    await node.kubelet.restart()
    for resource in (RES, CFG_RES):
        await node.kubelet.wait_for_registration(resource, count=2)
        await node.kubelet.wait_for_devices(resource, before[resource])  # no device lost
    assert node.kubelet.endpoint(RES) != old_endpoint
    assert not is_socket(old_endpoint)
    assert node.usage() == {f"{INST}-1": "node-a"}


@pytest.mark.slow
async def test_deleted_plugin_socket_reregisters(make_node: NodeFactory) -> None:
    node = await make_node("node-a", MemorySlotStore())
    await node.add(echo_view())
    await node.kubelet.wait_for_registration(RES)
    await node.kubelet.wait_for_registration(CFG_RES)
    old = node.kubelet.endpoint(RES)
    os.unlink(old)
    await node.kubelet.wait_for_registration(RES, count=2)
    assert node.kubelet.endpoint(RES) != old
    assert len(node.kubelet.accepted(CFG_RES)) == 1  # the other plugin was left alone
    await node.kubelet.wait_for_devices(RES, {f"{INST}-0": H, f"{INST}-1": H})


@pytest.mark.slow
async def test_registration_waits_for_a_kubelet(sock_dir: Path) -> None:
    """No kubelet yet: plugins serve and register as soon as kubelet.sock appears."""
    directory = sock_dir / "dp"
    directory.mkdir()
    async with PluginManager("node-a", MemorySlotStore(), directory=directory, poll_interval=0.2) as manager:
        await manager.apply_instance(echo_view())
        assert manager.endpoint(RES).socket_alive() and manager.endpoint(RES).registered_with is None
        async with KubeletDouble(directory) as kubelet:
            # the kubelet wiped the directory on start: the plugins come back on new sockets
            await kubelet.wait_for_registration(RES)
            await kubelet.wait_for_registration(CFG_RES)


@pytest.mark.slow
async def test_remove_instance_stops_plugins_and_releases_slots(make_node: NodeFactory) -> None:
    store = MemorySlotStore()
    node = await make_node("node-a", store)
    await node.add(echo_view())
    await node.kubelet.wait_for_registration(RES)
    await node.kubelet.allocate(RES, [f"{INST}-0"])
    endpoint = node.kubelet.endpoint(RES)
    await node.remove(INST)
    await node.kubelet.wait_for(
        lambda: not node.kubelet.connected(RES) and not node.kubelet.connected(CFG_RES)
    )
    assert not is_socket(endpoint) and node.usage() == {}
    assert node.manager.configuration_plugin(CFG) is None


# --- reclaimer --------------------------------------------------------------------------------


@pytest.mark.slow
async def test_reclaimer_frees_instance_and_configuration_slots(
    make_node: NodeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="akri.agent.plugins.reclaimer")
    store = MemorySlotStore()
    node = await make_node("node-a", store)
    await node.add(echo_view(INST, capacity=2))
    await node.kubelet.wait_for_registration(RES)
    await node.kubelet.wait_for_registration(CFG_RES)
    await node.kubelet.allocate(RES, [f"{INST}-0"], pod="instance-pod")
    await node.kubelet.allocate(CFG_RES, count=1, pod="config-pod")
    claimed = node.usage()
    assert len(claimed) == 2 and f"{INST}-0" in claimed
    reclaimer = SlotReclaimer(
        node.manager.plugins, pod_resources_socket=node.pod_resources, interval=0.1, grace=0.5
    )
    assert await reclaimer.reclaim_once() == [] and node.usage() == claimed  # both in use
    node.kubelet.remove_pod("instance-pod")
    node.kubelet.remove_pod("config-pod")
    await reclaimer.start()
    try:
        await until(lambda: node.usage() == {})
    finally:
        await reclaimer.stop()
    assert sorted(r for r, _ in reclaimer.freed) == [CFG_RES, RES]
    assert START_MESSAGE == "reclaiming unused slots - start"
    assert any(r.getMessage() == START_MESSAGE and r.levelno == logging.INFO for r in caplog.records)
    await node.kubelet.wait_for_devices(RES, {f"{INST}-0": H, f"{INST}-1": H})


@pytest.mark.slow
async def test_reclaimer_keeps_slots_within_grace_and_skips_unreachable_kubelet(
    make_node: NodeFactory, sock_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    node = await make_node("node-a", MemorySlotStore())
    await node.add(echo_view())
    await node.kubelet.wait_for_registration(RES)
    await node.kubelet.allocate(RES, [f"{INST}-1"])  # no pod declared: the kubelet does not list it
    reclaimer = SlotReclaimer(node.manager.plugins, pod_resources_socket=node.pod_resources, grace=5.0)
    assert await reclaimer.reclaim_once() == []
    assert list(reclaimer.stalled) == [(RES, f"{INST}-1")] and node.usage() == {f"{INST}-1": "node-a"}
    # pod-resources gone: the round is skipped and said once
    gone = SlotReclaimer(node.manager.plugins, pod_resources_socket=sock_dir / "nothing.sock", grace=0)
    caplog.set_level(logging.WARNING, logger="akri.agent.plugins.reclaimer")
    assert await gone.reclaim_once() == [] and await gone.reclaim_once() == []
    assert len([r for r in caplog.records if "unreachable" in r.getMessage()]) == 1
    assert node.usage() == {f"{INST}-1": "node-a"}


@pytest.mark.slow
async def test_agent_restart_rebinds_kubelet_ids_from_pod_resources(make_node: NodeFactory) -> None:
    """Before the restart node-a's kubelet id -0 was backed by slot 1 (node-b had won slot 0).
    The new agent only sees deviceUsage; the kubelet's list tells it id 0 is in use."""
    store = MemorySlotStore()
    store.put_instance(NS, INST, 2, {f"{INST}-0": "node-b", f"{INST}-1": "node-a"})
    node = await make_node("node-a", store)
    await node.add(echo_view())
    await node.kubelet.wait_for_registration(RES)
    node.kubelet.add_pod("old-pod", NS, "broker", RES, [f"{INST}-0"])
    reclaimer = SlotReclaimer(node.manager.plugins, pod_resources_socket=node.pod_resources, grace=0)
    assert await reclaimer.reclaim_once() == []
    assert await reclaimer.reclaim_once() == []  # even with no grace: nothing is unused
    table = node.manager.instance_plugin(INST).table
    assert table.binding(0) == 1 and table.bound_tokens() == [0]
    assert node.usage() == {f"{INST}-0": "node-b", f"{INST}-1": "node-a"}
    await node.kubelet.wait_for_devices(RES, {f"{INST}-0": H, f"{INST}-1": U})


@pytest.mark.slow
async def test_store_unavailable_fails_allocate_cleanly(make_node: NodeFactory) -> None:
    store = MemorySlotStore()
    node = await make_node("node-a", store)
    await node.add(echo_view())
    await node.kubelet.wait_for_registration(RES)
    store.unavailable = True
    with pytest.raises(AllocationError) as err:
        await node.kubelet.allocate(RES, [f"{INST}-0"])
    assert err.value.code == grpc.StatusCode.UNAVAILABLE
    store.unavailable = False
    await node.kubelet.allocate(RES, [f"{INST}-0"])
    assert node.usage() == {f"{INST}-0": "node-a"}


@pytest.mark.slow
async def test_polling_fallback_reregisters_after_kubelet_restart(make_node: NodeFactory) -> None:
    """Without inotify the manager notices the new kubelet.sock by its change time."""
    node = await make_node("node-a", MemorySlotStore(), use_inotify=False)
    assert node.manager._watch is not None and node.manager._watch.mode == "poll"
    await node.add(echo_view())
    await node.kubelet.wait_for_registration(RES)
    await node.kubelet.restart()
    await node.kubelet.wait_for_registration(RES, count=2)
    await node.kubelet.wait_for_devices(RES, {f"{INST}-0": H, f"{INST}-1": H})


def test_instance_view_from_the_cluster_sides_node_instance() -> None:
    from akri.agent.node_instances import NodeInstance
    from akri.discovery.device import Device
    from akri.model.instance import Instance

    raw = {
        "apiVersion": "akri.sh/v0",
        "kind": "Instance",
        "metadata": {"name": INST, "namespace": NS, "resourceVersion": "7"},
        "spec": {
            "configurationName": CFG,
            "cdiName": f"akri.sh/{CFG}=d46b65",
            "capacity": 2,
            "shared": True,
            "nodes": ["node-b", "node-a"],
            "brokerProperties": {"DEBUG_ECHO_DESCRIPTION": "bar0"},
            "deviceUsage": {f"{INST}-1": "node-b"},
        },
    }
    device = Device(
        "bar0", {"DEBUG_ECHO_DESCRIPTION": "bar0"}, (Mount("/c", "/h"),), (DeviceSpec("/dev/x", ""),)
    )
    v = InstanceView.from_node_instance(NodeInstance(Instance.from_dict(raw), device, None, raw))
    assert (v.name, v.namespace, v.configuration, v.capacity, v.shared) == (INST, NS, CFG, 2, True)
    assert v.device_usage == {f"{INST}-1": "node-b"} and v.nodes == ("node-b", "node-a")
    assert v.mounts == (Mount("/c", "/h"),) and v.device_ready and v.digest_hash == "D46B65"
    unseen = InstanceView.from_node_instance(NodeInstance(Instance.from_dict(raw), None, None, raw))
    assert not unseen.device_ready and unseen.mounts == ()
    with pytest.raises(ValueError, match=r"InstanceView\.capacity"):
        replace(v, capacity=-1)
