"""`akri handler debugEcho` as a real process, with real gRPC over unix sockets.

The agent side is a v0.Registration server built here from the raw generated protos, the way
an upstream agent would look to the handler; the test calls v0.DiscoveryHandler/Discover on
the handler's socket the way an agent does.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from akri._proto import discovery_pb2 as pb
from akri._proto import discovery_pb2_grpc as pb_grpc

pytestmark = pytest.mark.slow

WAIT = 10.0  # generous: only guards against hanging
DETAILS = "descriptions:\n  - bar0\n  - bar1\n"
UDS = pb.RegisterDiscoveryHandlerRequest.UDS
NETWORK = pb.RegisterDiscoveryHandlerRequest.NETWORK


class AgentRegistration(pb_grpc.RegistrationServicer):
    """The agent's registration socket: records every RegisterDiscoveryHandler call."""

    def __init__(self, directory: Path) -> None:
        self.socket_path = directory / "agent-registration.sock"
        self.requests: asyncio.Queue[pb.RegisterDiscoveryHandlerRequest] = asyncio.Queue()
        self.server: grpc.aio.Server | None = None

    async def RegisterDiscoveryHandler(self, request, context):  # the gRPC method name
        self.requests.put_nowait(request)
        return pb.Empty()

    async def start(self) -> None:
        self.socket_path.unlink(missing_ok=True)  # as the agent: stale socket removed before bind
        self.server = grpc.aio.server()
        pb_grpc.add_RegistrationServicer_to_server(self, self.server)
        self.server.add_insecure_port(f"unix://{self.socket_path}")
        await self.server.start()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(None)
            self.server = None
        self.socket_path.unlink(missing_ok=True)

    async def next(self) -> pb.RegisterDiscoveryHandlerRequest:
        return await asyncio.wait_for(self.requests.get(), WAIT)


@pytest.fixture
def start_handler(sockdir: Path) -> Iterator[Callable[..., subprocess.Popen]]:
    procs: list[tuple[subprocess.Popen, Path]] = []

    def start(name: str = "debugEcho", **env: str) -> subprocess.Popen:
        full_env = {**os.environ, "DISCOVERY_HANDLERS_DIRECTORY": str(sockdir),
                    "DEBUG_ECHO_AVAILABILITY_FILE": str(sockdir / "availability.txt"), "AKRI_LOG": "INFO"}
        full_env.pop("POD_IP", None)
        full_env.update(env)
        log = sockdir / f"handler-{len(procs)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "akri", "handler", name], env=full_env,
                                    stdout=out, stderr=subprocess.STDOUT)
        procs.append((proc, log))
        return proc

    yield start
    for proc, log in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        sys.stderr.write(f"--- {log.name}\n{log.read_text(errors='replace')}")


async def wait_exit(proc: subprocess.Popen) -> int:
    for _ in range(int(WAIT / 0.05)):
        if proc.poll() is not None:
            return proc.returncode
        await asyncio.sleep(0.05)
    raise AssertionError("the handler process did not exit")


async def read(call) -> list[pb.Device]:
    return list((await asyncio.wait_for(call.read(), WAIT)).devices)


def request(details: str = DETAILS) -> pb.DiscoverRequest:
    return pb.DiscoverRequest(discovery_details=details)


def ids(devices: list[pb.Device]) -> list[str]:
    return [d.id for d in devices]


def leave_stale_socket(path: Path) -> None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.close()


async def test_registers_serves_and_stops(sockdir, start_handler):
    own_socket = sockdir / "debugEcho.sock"
    leave_stale_socket(own_socket)  # a previous handler that crashed
    agent = AgentRegistration(sockdir)
    await agent.start()
    try:
        proc = start_handler(DEBUG_ECHO_INSTANCES_SHARED="true")
        req = await agent.next()
        assert (req.name, req.endpoint, req.endpoint_type, req.shared) == (
            "debugEcho", str(own_socket), UDS, True)
        mode = own_socket.stat().st_mode & 0o777
        assert mode in (0o660, 0o600), oct(mode)  # never world-writable

        async with grpc.aio.insecure_channel(f"unix://{own_socket}") as channel:
            stub = pb_grpc.DiscoveryHandlerStub(channel)
            call = stub.Discover(pb.DiscoverRequest(discovery_details=DETAILS))
            devices = await read(call)
            assert ids(devices) == ["bar0", "bar1"]
            assert dict(devices[0].properties) == {"DEBUG_ECHO_DESCRIPTION": "bar0"}
            assert not devices[0].mounts and not devices[0].device_specs

            (sockdir / "availability.txt").write_text("OFFLINE")
            assert await read(call) == []
            (sockdir / "availability.txt").write_text("ONLINE")
            assert ids(await read(call)) == ["bar0", "bar1"]

            bad = stub.Discover(pb.DiscoverRequest(discovery_details="descriptions: 5"))
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await read(bad)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "descriptions" in err.value.details()

            # the server is still there for the next request, and the first stream still works
            again = stub.Discover(pb.DiscoverRequest(discovery_details="descriptions: [baz]"))
            assert ids(await read(again)) == ["baz"]
            (sockdir / "availability.txt").write_text("OFFLINE")
            assert await read(call) == []
            assert await read(again) == []
            again.cancel()
            call.cancel()

        # a second handler must not steal the socket of a live one
        second = start_handler(DEBUG_ECHO_INSTANCES_SHARED="true")
        assert await wait_exit(second) == 1

        proc.send_signal(signal.SIGTERM)
        assert await wait_exit(proc) == 0
        assert not own_socket.exists()
    finally:
        await agent.stop()


async def test_reregisters_when_the_agent_comes_back(sockdir, start_handler):
    start_handler(DEBUG_ECHO_INSTANCES_SHARED="false")
    await asyncio.sleep(0.5)  # the handler runs before any agent exists
    agent = AgentRegistration(sockdir)
    await agent.start()
    try:
        req = await agent.next()
        assert (req.name, req.shared) == ("debugEcho", False)

        # the agent drops a Discover stream: the handler registers again (upstream's trigger)
        own_socket = sockdir / "debugEcho.sock"
        async with grpc.aio.insecure_channel(f"unix://{own_socket}") as channel:
            call = pb_grpc.DiscoveryHandlerStub(channel).Discover(request())
            assert ids(await read(call)) == ["bar0", "bar1"]
            call.cancel()
        assert (await agent.next()).name == "debugEcho"

        # the agent restarts: its socket goes away and comes back
        await agent.stop()
        await asyncio.sleep(0.3)
        assert agent.requests.empty()
        agent = AgentRegistration(sockdir)
        await agent.start()
        req = await agent.next()
        assert (req.name, req.endpoint, req.endpoint_type) == ("debugEcho", str(own_socket), UDS)
    finally:
        await agent.stop()


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


async def test_pod_ip_registers_a_network_endpoint(sockdir, start_handler):
    if not _port_free(10000):
        pytest.skip("port 10000 is in use")
    agent = AgentRegistration(sockdir)
    await agent.start()
    try:
        start_handler(DEBUG_ECHO_INSTANCES_SHARED="true", POD_IP="127.0.0.1")
        req = await agent.next()
        assert (req.name, req.endpoint, req.endpoint_type, req.shared) == (
            "debugEcho", "http://127.0.0.1:10000", NETWORK, True)
        assert not (sockdir / "debugEcho.sock").exists()
        async with grpc.aio.insecure_channel("127.0.0.1:10000") as channel:
            call = pb_grpc.DiscoveryHandlerStub(channel).Discover(request())
            assert ids(await read(call)) == ["bar0", "bar1"]
            call.cancel()
    finally:
        await agent.stop()
