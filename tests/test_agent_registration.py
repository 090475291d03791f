"""The agent's v0.Registration server and handler registry, over real gRPC on a unix socket."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import grpc
import pytest

from akri._proto import discovery_pb2 as pb
from akri.agent.registration import (
    EndpointKind,
    HandlerRegistry,
    InvalidRegistration,
    RegistrationServer,
    RegistryEvent,
    network_target,
)
from akri.discovery.handlers.debug_echo import DebugEchoHandler
from akri.discovery.registration import Registration, register_once

NETWORK = pb.RegisterDiscoveryHandlerRequest.NETWORK


@pytest.mark.parametrize(
    ("endpoint", "target"),
    [
        ("http://10.0.0.5:10000", "10.0.0.5:10000"),
        ("http://[fd00::5]:10000", "[fd00::5]:10000"),
        ("10.1.2.3:10000", "10.1.2.3:10000"),
        ("http://dh.local:9000/", "dh.local:9000"),
    ],
)
def test_network_targets(endpoint: str, target: str) -> None:
    assert network_target(endpoint) == target


@pytest.mark.parametrize(
    "endpoint",
    ["http://10.0.0.5", "https://10.0.0.5:10000", "http://:10", "http://a:1/x", "http://a:notaport"],
)
def test_bad_network_endpoints_name_the_field(endpoint: str) -> None:
    with pytest.raises(InvalidRegistration) as info:
        network_target(endpoint)
    assert info.value.field == "endpoint"


def test_registry_keys_replacement_and_guarded_removal() -> None:
    registry = HandlerRegistry()
    seen: list[tuple[RegistryEvent, str]] = []
    registry.subscribe(lambda ev, ep: seen.append((ev, ep.uid)))
    embedded = registry.register_embedded(DebugEchoHandler(shared=True))
    assert embedded.uid == "embedded-debugEcho" and embedded.kind is EndpointKind.EMBEDDED and embedded.shared
    old = registry.endpoints("debugEcho")[0]
    registry.register_embedded(DebugEchoHandler(shared=True))
    assert len(registry.endpoints("debugEcho")) == 1
    # removing a registration that has since been replaced leaves the new one alone
    assert registry.remove(old) is False
    assert registry.remove(registry.endpoints("debugEcho")[0]) is True
    assert registry.endpoints("debugEcho") == []
    assert seen == [
        (RegistryEvent.ADDED, "embedded-debugEcho"),
        (RegistryEvent.REPLACED, "embedded-debugEcho"),
        (RegistryEvent.REMOVED, "embedded-debugEcho"),
    ]


@pytest.mark.slow
async def test_serves_registrations_over_the_socket(tmp_path: Path) -> None:
    registry = HandlerRegistry()
    events: list[tuple[RegistryEvent, str]] = []
    registry.subscribe(lambda ev, ep: events.append((ev, ep.uid)))
    # a stale socket left by a previous agent
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(tmp_path / "agent-registration.sock"))
    stale.close()
    server = RegistrationServer(registry, tmp_path)
    await server.start()
    try:
        sock = tmp_path / "agent-registration.sock"
        mode = sock.stat().st_mode
        assert stat.S_ISSOCK(mode)
        assert mode & 0o007 == 0, oct(mode)  # nobody but owner and group may connect

        await register_once(sock, Registration("debugEcho", f"{tmp_path}/debugEcho.sock", False, True))
        await register_once(sock, Registration("debugEcho", "http://10.0.0.7:10000", True, True))
        await register_once(sock, Registration("udev", f"{tmp_path}/udev.sock", False, False))
        # the same handler again (it restarted): replaces its entry
        await register_once(sock, Registration("debugEcho", f"{tmp_path}/debugEcho.sock", False, False))

        eps = {ep.uid: ep for ep in registry.endpoints("debugEcho")}
        assert set(eps) == {f"debugEcho@{tmp_path}/debugEcho.sock", "debugEcho@http://10.0.0.7:10000"}
        uds = eps[f"debugEcho@{tmp_path}/debugEcho.sock"]
        assert (uds.kind, uds.target, uds.shared) == (
            EndpointKind.UDS,
            f"unix://{tmp_path}/debugEcho.sock",
            False,
        )
        net = eps["debugEcho@http://10.0.0.7:10000"]
        assert (net.kind, net.target, net.shared) == (EndpointKind.NETWORK, "10.0.0.7:10000", True)
        assert [ep.uid for ep in registry.endpoints("udev")] == [f"udev@{tmp_path}/udev.sock"]
        assert events[-1] == (RegistryEvent.REPLACED, f"debugEcho@{tmp_path}/debugEcho.sock")

        async with grpc.aio.insecure_channel(f"unix://{sock}") as channel:
            from akri._proto import discovery_pb2_grpc as pb_grpc

            stub = pb_grpc.RegistrationStub(channel)
            for bad, field in [
                (pb.RegisterDiscoveryHandlerRequest(name="", endpoint="/x.sock"), "name"),
                (pb.RegisterDiscoveryHandlerRequest(name="x", endpoint="relative.sock"), "endpoint"),
                # a socket outside the handler directory (e.g. the kubelet's): never dialled
                (
                    pb.RegisterDiscoveryHandlerRequest(
                        name="x", endpoint="/var/lib/kubelet/device-plugins/kubelet.sock"
                    ),
                    "endpoint",
                ),
                (
                    pb.RegisterDiscoveryHandlerRequest(
                        name="x", endpoint="http://nope", endpoint_type=NETWORK
                    ),
                    "endpoint",
                ),
            ]:
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await stub.RegisterDiscoveryHandler(bad, timeout=5)
                assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert info.value.details().startswith(f"{field}:")
        assert registry.names() == ["debugEcho", "udev"]
    finally:
        await server.stop()
    assert not (tmp_path / "agent-registration.sock").exists()


@pytest.mark.slow
async def test_refuses_to_replace_a_file_that_is_not_a_socket(tmp_path: Path) -> None:
    (tmp_path / "agent-registration.sock").write_text("precious")
    with pytest.raises(FileExistsError):
        await RegistrationServer(HandlerRegistry(), tmp_path).start()
    assert (tmp_path / "agent-registration.sock").read_text() == "precious"
