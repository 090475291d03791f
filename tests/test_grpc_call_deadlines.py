"""Deadlines of akri's gRPC client calls (real grpclib over unix sockets, servers that never answer).

A call that runs out of time raises TimeoutError and leaves its task as it found it
(`cancelling() == 0`); a cancellation of the calling task is never turned into a TimeoutError,
not even one that arrives in the same loop tick as the call's deadline (grpclib's own `timeout=`
swallows that one, and a retry loop catching RPC_ERRORS would then never stop).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from akri._proto import deviceplugin_grpc as dp_grpc
from akri._proto import discovery_grpc as discovery_grpc
from akri._proto import podresources_grpc as pr_grpc
from akri.agent.plugins import MemorySlotStore, SlotReclaimer
from akri.agent.plugins import endpoint as endpoint_module
from akri.agent.plugins import reclaimer as reclaimer_module
from akri.agent.plugins.configuration_plugin import ConfigurationPlugin
from akri.agent.plugins.endpoint import KUBELET_SOCKET, PluginEndpoint
from akri.discovery.registration import Registration, register_once
from akri.grpc_client import RPC_ERRORS
from akri.grpc_server import GrpcServer

pytestmark = pytest.mark.slow

DEADLINE = 0.05  # seconds: short, so that many deadline races fit in a second


async def never_answer(stream) -> None:
    await stream.recv_message()
    await asyncio.Event().wait()  # until the client resets the stream or the server stops


class SilentAgent(discovery_grpc.RegistrationBase):
    async def RegisterDiscoveryHandler(self, stream) -> None:
        await never_answer(stream)


class SilentKubelet(dp_grpc.RegistrationBase):
    async def Register(self, stream) -> None:
        await never_answer(stream)


class SilentPodResources(pr_grpc.PodResourcesListerBase):
    async def List(self, stream) -> None:
        await never_answer(stream)

    async def GetAllocatableResources(self, stream) -> None:
        await never_answer(stream)

    async def Get(self, stream) -> None:
        await never_answer(stream)


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    """A short directory: unix socket paths are limited to 107 bytes (pytest's tmp_path is long)."""
    path = Path(tempfile.mkdtemp(prefix="akri-dl-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def serve(sock_dir: Path) -> AsyncIterator[Callable[[object, str], Awaitable[Path]]]:
    servers: list[GrpcServer] = []

    async def start(service: object, name: str) -> Path:
        server = GrpcServer([service])
        await server.start_unix(sock_dir / name, 0o600)
        servers.append(server)
        return sock_dir / name

    yield start
    for server in servers:
        await server.stop(1.0)


async def timed_out_then_cancelling(call: Callable[[], Awaitable[object]]) -> int:
    """Run `call` in a task of its own; it must time out. The task's cancelling() afterwards."""

    async def body() -> int:
        with pytest.raises(TimeoutError):
            await call()
        return asyncio.current_task().cancelling()  # type: ignore[union-attr]

    return await asyncio.wait_for(asyncio.create_task(body()), 10)


async def test_a_timed_out_handler_registration_leaves_no_cancel_request(serve) -> None:
    path = await serve(SilentAgent(), "agent-registration.sock")
    reg = Registration("debugEcho", "/x/debugEcho.sock", False, True)
    assert await timed_out_then_cancelling(lambda: register_once(path, reg, rpc_timeout=DEADLINE)) == 0


async def test_a_timed_out_kubelet_registration_leaves_no_cancel_request(
    serve, sock_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(endpoint_module, "REGISTER_TIMEOUT", DEADLINE)
    await serve(SilentKubelet(), KUBELET_SOCKET)
    plugin = ConfigurationPlugin("akri-debug-echo-foo", "node-a", MemorySlotStore())
    endpoint = PluginEndpoint(plugin, sock_dir)
    await endpoint.serve()
    try:
        assert await timed_out_then_cancelling(lambda: endpoint.register((1, 1))) == 0
        assert endpoint.registrations == 0
        # the agent's loop goes through ensure(): a timeout there is a logged failure, not a crash
        assert await endpoint.ensure((1, 1)) is False
        assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
    finally:
        await endpoint.stop()


async def test_a_timed_out_pod_resources_list_leaves_no_cancel_request(
    serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reclaimer_module, "LIST_TIMEOUT", DEADLINE)
    path = await serve(SilentPodResources(), "pod-resources.sock")
    reclaimer = SlotReclaimer(list, pod_resources_socket=path)
    assert await timed_out_then_cancelling(reclaimer.list_in_use) == 0
    assert await reclaimer.reclaim_once() == []  # skipped round, not an error
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_a_cancellation_in_the_deadline_tick_is_never_swallowed(serve) -> None:
    """A retry loop like RegistrationClient's is cancelled at offsets around the call's deadline,
    in 0.5 ms steps (epoll waits in whole milliseconds, so several land in the deadline's tick);
    every time the task must end cancelled instead of carrying on."""
    path = await serve(SilentAgent(), "agent-registration.sock")
    reg = Registration("debugEcho", "/x/debugEcho.sock", False, True)
    loop = asyncio.get_running_loop()

    async def retry_loop() -> str:
        for _ in range(3):
            try:
                await register_once(path, reg, rpc_timeout=DEADLINE)
            except RPC_ERRORS:
                pass
        return "carried on"

    outcomes: dict[float, str] = {}
    for step in range(-4, 9):
        offset = DEADLINE + step * 0.0005
        task = asyncio.create_task(retry_loop())
        loop.call_at(loop.time() + offset, task.cancel)
        await asyncio.wait([task], timeout=10)
        assert task.done(), "the retry loop hangs"
        outcomes[offset] = "cancelled" if task.cancelled() else task.result()
    swallowed = {f"{o * 1000:.1f} ms" for o, result in outcomes.items() if result != "cancelled"}
    assert not swallowed, f"cancellation swallowed at {sorted(swallowed)}"
