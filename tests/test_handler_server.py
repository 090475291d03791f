"""HandlerServer and `akri handler` argument handling, in-process.

The full process is exercised in test_handler_server_process.py; here: a handler that
crashes ends only its own call, endpoints are formatted as upstream writes them, and bad
command lines exit 2 with a message that says what to fix.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

import grpc
import pytest

from akri._proto import discovery_pb2 as pb
from akri._proto import discovery_pb2_grpc as pb_grpc
from akri.cli import main
from akri.commands.handler import HandlerLoadError, load_handler
from akri.discovery.device import Device
from akri.discovery.handler import DiscoveryHandler
from akri.discovery.handlers.debug_echo import DebugEchoHandler
from akri.discovery.server import HandlerServer, network_endpoint

WAIT = 10.0


class Flaky(DiscoveryHandler):
    """Crashes on details "crash" after its first list; otherwise echoes the details as one device."""

    name = "flaky"
    shared = True

    def validate(self, details: str) -> None:
        pass

    async def discover(
        self, details: str, properties: Mapping[str, bytes | None]
    ) -> AsyncIterator[list[Device]]:
        yield [Device(details, {k: (v or b"").decode() for k, v in properties.items()})]
        if details == "crash":
            raise RuntimeError("bug in the handler")
        await asyncio.Event().wait()


@pytest.mark.slow
async def test_a_crashing_handler_ends_only_its_call(sockdir):
    server = HandlerServer(Flaky(), directory=sockdir)
    await server.start()
    try:
        assert server.registration.endpoint == str(sockdir / "flaky.sock")
        async with grpc.aio.insecure_channel(f"unix://{server.socket_path}") as channel:
            stub = pb_grpc.DiscoveryHandlerStub(channel)
            crash = stub.Discover(pb.DiscoverRequest(discovery_details="crash"))
            assert [d.id for d in (await asyncio.wait_for(crash.read(), WAIT)).devices] == ["crash"]
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await asyncio.wait_for(crash.read(), WAIT)
            assert err.value.code() == grpc.StatusCode.INTERNAL
            assert "bug in the handler" in err.value.details()

            props = {"token": pb.ByteData(vec=b"s3cret"), "flag": pb.ByteData()}
            ok = stub.Discover(pb.DiscoverRequest(discovery_details="fine", discovery_properties=props))
            device = (await asyncio.wait_for(ok.read(), WAIT)).devices[0]
            assert (device.id, dict(device.properties)) == ("fine", {"token": "s3cret", "flag": ""})
            ok.cancel()
    finally:
        await server.stop()
    assert not (sockdir / "flaky.sock").exists()


@pytest.mark.slow
async def test_refuses_to_replace_a_non_socket(sockdir):
    (sockdir / "flaky.sock").write_text("not a socket")
    with pytest.raises(FileExistsError, match="not a socket"):
        await HandlerServer(Flaky(), directory=sockdir).start()
    assert (sockdir / "flaky.sock").read_text() == "not a socket"


def test_endpoints_as_upstream_writes_them(tmp_path):
    assert network_endpoint("10.1.2.3") == ("10.1.2.3:10000", "http://10.1.2.3:10000")
    # upstream formats IPv6 without brackets, which is not a valid URL; we bracket it
    assert network_endpoint("fd00::7", 10001) == ("[fd00::7]:10001", "http://[fd00::7]:10001")
    with pytest.raises(ValueError, match="not an IP address"):
        network_endpoint("node-a")
    handler = DebugEchoHandler(shared=False, availability_file=tmp_path / "a")
    uds = HandlerServer(handler, directory=tmp_path).registration
    assert (uds.name, uds.endpoint, uds.network, uds.shared) == (
        "debugEcho", str(tmp_path / "debugEcho.sock"), False, False)
    req = HandlerServer(handler, directory=tmp_path, pod_ip="10.1.2.3").registration.to_proto()
    network = pb.RegisterDiscoveryHandlerRequest.NETWORK
    assert (req.endpoint, req.endpoint_type) == ("http://10.1.2.3:10000", network)


def test_load_handler_by_name_or_class(monkeypatch):
    monkeypatch.setenv("DEBUG_ECHO_INSTANCES_SHARED", "false")
    assert load_handler("debugEcho").shared is False
    custom = load_handler("akri.discovery.handlers.debug_echo:DebugEchoHandler", shared=True)
    assert isinstance(custom, DebugEchoHandler) and custom.shared is True
    with pytest.raises(HandlerLoadError, match="unknown discovery handler 'nope'"):
        load_handler("nope")
    with pytest.raises(HandlerLoadError, match="not a DiscoveryHandler"):
        load_handler("akri.discovery.device:Device")
    with pytest.raises(HandlerLoadError, match="cannot load"):
        load_handler("no.such.module:Handler")


@pytest.mark.parametrize(
    ("argv", "env", "words"),
    [
        (["handler", "debugEcho"], {}, "DEBUG_ECHO_INSTANCES_SHARED must be set"),
        (["handler", "debugEcho"], {"DEBUG_ECHO_INSTANCES_SHARED": "yes"}, "'true' or 'false', got 'yes'"),
        (["handler", "nope"], {}, "unknown discovery handler 'nope' (built-in handlers: debugEcho"),
        (["handler", "debugEcho", "--pod-ip", "node-a"], {"DEBUG_ECHO_INSTANCES_SHARED": "true"},
         "not an IP address"),
    ],
)
def test_bad_command_lines_exit_2(monkeypatch, capsys, argv, env, words):
    monkeypatch.delenv("DEBUG_ECHO_INSTANCES_SHARED", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["--log-level", "WARNING", *argv]) == 2
    assert words in capsys.readouterr().err
