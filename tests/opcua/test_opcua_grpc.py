"""The OPC UA handler behind the v0.DiscoveryHandler gRPC service (as `akri handler opcua` serves
it to an agent), over a real unix socket, against the real LDS."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from akri._proto import discovery_pb2 as pb
from akri._proto import discovery_pb2_grpc as pb_grpc
from akri.discovery.handlers.opcua import OpcuaHandler
from akri.discovery.server import HandlerServer

pytestmark = pytest.mark.slow
WAIT = 10.0


async def test_discover_over_grpc(opcua_lab, sockdir: Path):
    handler = OpcuaHandler()
    server = HandlerServer(handler, directory=sockdir)
    assert server.registration.shared is True
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"unix://{sockdir}/opcua.sock") as channel:
            stub = pb_grpc.DiscoveryHandlerStub(channel)
            details = (f"opcuaDiscoveryMethod:\n  standard:\n    discoveryUrls: [{opcua_lab.lds_url}]\n"
                       "applicationNames:\n  items: [Thermometer]\n")
            call = stub.Discover(pb.DiscoverRequest(discovery_details=details))
            response = await asyncio.wait_for(call.read(), WAIT)
            call.cancel()
            assert [(d.id, dict(d.properties)) for d in response.devices] == [
                (opcua_lab.thermometer_url, {"OPCUA_DISCOVERY_URL": opcua_lab.thermometer_url})]

            bad = stub.Discover(pb.DiscoverRequest(
                discovery_details="opcuaDiscoveryMethod: {standard: {discoveryUrls: ['opc.tcp://h/']}}"))
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await asyncio.wait_for(bad.read(), WAIT)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "opcuaDiscoveryMethod.standard.discoveryUrls[0]" in (err.value.details() or "")
    finally:
        await server.stop(0)
