"""The kubelet double itself: registration rules, connection handling, restarts, admission
and pod-resources, over real gRPC with real Akri plugins on the other end."""

from __future__ import annotations

import asyncio
import shutil
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
import grpc
import pytest

from akri._proto import deviceplugin_pb2 as dp
from akri._proto import deviceplugin_pb2_grpc as dp_grpc
from akri._proto import podresources_pb2 as pr
from akri._proto import podresources_pb2_grpc as pr_grpc
from akri.agent.plugins import InstanceView, MemorySlotStore, PluginManager
from akri.agent.plugins.endpoint import PluginEndpoint
from akri.agent.plugins.instance_plugin import InstancePlugin
from akri.testing.kubelet import AllocationError, KubeletDouble, extended_resource_problem

H, U = "Healthy", "Unhealthy"
NS = "default"
INST = "config-a-359973"
RES = f"akri.sh/{INST}"


def view(**kw: object) -> InstanceView:
    fields: dict[str, object] = dict(
        name=INST,
        namespace=NS,
        configuration="config-a",
        capacity=2,
        cdi_name="akri.sh/config-a=359973",
        properties={"K": "v"},
    )
    fields.update(kw)
    return InstanceView(**fields)  # type: ignore[arg-type]


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="akri-kd-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def kubelet(sock_dir: Path) -> AsyncIterator[KubeletDouble]:
    async with KubeletDouble(sock_dir / "dp", sock_dir / "pr" / "kubelet.sock") as k:
        yield k


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("akri.sh/config-a-359973", True),
        ("example.com/foo_bar.baz", True),
        ("akri.sh", False),
        ("kubernetes.io/gpu", False),
        ("x.kubernetes.io/gpu", False),
        ("akri.sh/" + "a" * 64, False),
        ("Akri.sh/x", False),
        ("akri.sh/-x", False),
        ("akri.sh/a/b", False),
    ],
)
def test_extended_resource_names(name: str, ok: bool) -> None:
    assert (extended_resource_problem(name) is None) == ok


@pytest.mark.slow
async def test_register_is_validated_like_the_kubelet(kubelet: KubeletDouble) -> None:
    plugin = InstancePlugin(view(), "node-a", MemorySlotStore(), asyncio.Lock())
    endpoint = PluginEndpoint(plugin, kubelet.directory)
    await endpoint.serve()
    (kubelet.directory / "plain.file").write_text("x")
    good = endpoint.endpoint
    cases = [
        ("v1alpha", RES, good, "not supported"),
        ("v1beta1", "akri.sh", good, "is invalid"),
        ("v1beta1", "kubernetes.io/x", good, "reserved"),
        ("v1beta1", RES, f"../{good}", "socket file name"),
        ("v1beta1", RES, "missing.sock", "no such socket"),
        ("v1beta1", RES, "plain.file", "not a socket"),
    ]
    try:
        async with grpc.aio.insecure_channel(f"unix://{kubelet.socket_path}") as channel:
            stub = dp_grpc.RegistrationStub(channel)
            for version, resource, ep, message in cases:
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await stub.Register(
                        dp.RegisterRequest(version=version, endpoint=ep, resource_name=resource)
                    )
                assert err.value.code() == grpc.StatusCode.UNKNOWN and message in err.value.details()
            assert kubelet.resources() == []
            await stub.Register(dp.RegisterRequest(version="v1beta1", endpoint=good, resource_name=RES))
        # Register answered only after GetDevicePluginOptions; the list follows
        assert kubelet.options(RES).get_preferred_allocation_available
        await kubelet.wait_for_devices(RES, {f"{INST}-0": H, f"{INST}-1": H})
        assert [r.accepted for r in kubelet.registrations] == [False] * len(cases) + [True]
    finally:
        await endpoint.stop()
    # the stream ended: the kubelet keeps the devices, Unhealthy
    await kubelet.wait_for(lambda: not kubelet.connected(RES))
    assert kubelet.devices(RES) == {f"{INST}-0": U, f"{INST}-1": U}


@pytest.mark.slow
async def test_reregistration_replaces_the_connection(kubelet: KubeletDouble) -> None:
    store = MemorySlotStore()
    first, second = (
        PluginEndpoint(InstancePlugin(view(), "node-a", store, asyncio.Lock()), kubelet.directory)
        for _ in range(2)
    )
    try:
        await first.serve()
        await first.register(None)
        await kubelet.wait_for_registration(RES)
        await second.serve()
        await second.register(None)
        await kubelet.wait_for_registration(RES, count=2)
        assert kubelet.endpoint(RES) == str(second.socket_path)
        await first.stop()  # the replaced connection ending does not touch the new one
        await asyncio.sleep(0.2)
        assert kubelet.connected(RES) and kubelet.devices(RES) == {f"{INST}-0": H, f"{INST}-1": H}
    finally:
        await first.stop()
        await second.stop()


@pytest.mark.slow
async def test_restart_deletes_sockets_only(kubelet: KubeletDouble) -> None:
    stray = kubelet.directory / "stray.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(stray))
    keep = kubelet.directory / "checkpoint"
    keep.write_text("{}")
    await kubelet.restart()
    assert not stray.exists() and keep.exists() and kubelet.socket_path.exists() and kubelet.starts == 2


@pytest.mark.slow
async def test_admission_offers_only_healthy_unallocated_devices(kubelet: KubeletDouble) -> None:
    store = MemorySlotStore()
    store.put_instance(NS, INST, 3, {f"{INST}-2": "node-b"})
    async with PluginManager("node-a", store, directory=kubelet.directory) as manager:
        await manager.apply_instance(view(capacity=3, device_usage={f"{INST}-2": "node-b"}))
        await kubelet.wait_for_devices(RES, {f"{INST}-0": H, f"{INST}-1": H, f"{INST}-2": U})
        for ids, message in (([f"{INST}-7"], "unknown device"), ([f"{INST}-2"], "Unhealthy")):
            with pytest.raises(AllocationError, match=message) as err:
                await kubelet.allocate(RES, ids, pod="p")
            assert err.value.code is None  # refused before the plugin was called
        assert manager.instance_plugin(INST).allocate_calls == 0
        await kubelet.allocate(RES, [f"{INST}-0"], pod="p1")
        with pytest.raises(AllocationError, match="allocated to"):
            await kubelet.allocate(RES, [f"{INST}-0"], pod="p2")
        # the same pod's next container may get it again (init-container reuse)
        await kubelet.allocate(RES, [f"{INST}-0"], pod="p1", container="app")
        # choosing by count asks GetPreferredAllocation, then takes what is left
        await kubelet.allocate(RES, count=1, pod="p3")
        assert kubelet.allocations[-1].preferred == [f"{INST}-1"]
        with pytest.raises(AllocationError, match="Requested: 1, Available: 0"):
            await kubelet.allocate(RES, count=1, pod="p4")
        kubelet.remove_pod("p3")
        assert kubelet.allocated(RES) == {f"{INST}-0": (NS, "p1")}


@pytest.mark.slow
async def test_pod_resources_service(kubelet: KubeletDouble) -> None:
    kubelet.add_pod("broker", NS, "c", RES, [f"{INST}-1"])
    kubelet.add_pod("other", "ns2", "c", "vendor.com/thing", ["t0"])
    async with grpc.aio.insecure_channel(f"unix://{kubelet.pod_resources_socket}") as channel:
        stub = pr_grpc.PodResourcesListerStub(channel)
        listed = await stub.List(pr.ListPodResourcesRequest())
        pods = {(p.namespace, p.name): p for p in listed.pod_resources}
        (devices,) = pods[(NS, "broker")].containers[0].devices
        assert devices.resource_name == RES and list(devices.device_ids) == [f"{INST}-1"]  # no prefix on ids
        got = await stub.Get(pr.GetPodResourcesRequest(pod_name="other", pod_namespace="ns2"))
        assert got.pod_resources.containers[0].devices[0].device_ids == ["t0"]
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.Get(pr.GetPodResourcesRequest(pod_name="nope", pod_namespace=NS))
        kubelet.remove_pod("broker")
        listed = await stub.List(pr.ListPodResourcesRequest())
        assert [(p.namespace, p.name) for p in listed.pod_resources] == [("ns2", "other")]


async def poll(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    """Re-ask a subprocess over HTTP until `check()` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            raise TimeoutError(f"condition not met within {within}s")
        await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_standalone_process_with_control_api(sock_dir: Path) -> None:
    directory, control = sock_dir / "dp", sock_dir / "control.sock"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "akri.testing.kubelet",
        "--dir",
        str(directory),
        "--pod-resources-socket",
        str(sock_dir / "pr.sock"),
        "--control-socket",
        str(control),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with asyncio.timeout(20):
            line = await proc.stdout.readline()
        assert b"kubelet double serving" in line
        store = MemorySlotStore()
        store.put_instance(NS, INST, 2)
        async with (
            PluginManager("node-a", store, directory=directory) as manager,
            aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(control))) as http,
        ):
            await manager.apply_instance(view())

            async def state() -> dict:
                async with http.get("http://kubelet/state") as r:
                    return await r.json()

            async def listed() -> bool:
                return bool((await state())["resources"].get(RES, {}).get("devices"))

            async def registered_twice() -> bool:
                regs = (await state())["registrations"]
                return sum(x["accepted"] and x["resourceName"] == RES for x in regs) >= 2

            await poll(listed)
            async with http.post(
                "http://kubelet/allocate", json={"resource": RES, "count": 1, "pod": "p"}
            ) as r:
                body = await r.json()
                assert r.status == 200 and body["containerResponses"][0]["envs"]["K_359973"] == "v"
            allocated = (await state())["allocated"][RES]
            assert store.device_usage(NS, INST) == dict.fromkeys(allocated, "node-a")
            async with http.post("http://kubelet/allocate", json={"resource": RES, "deviceIds": ["zz"]}) as r:
                assert r.status == 409 and "unknown device" in (await r.json())["error"]
            async with http.post("http://kubelet/restart") as r:
                assert (await r.json())["starts"] == 2
            await poll(registered_twice)
    finally:
        if proc.returncode is None:
            proc.terminate()
        async with asyncio.timeout(10):
            await proc.wait()
    assert proc.returncode == 0
