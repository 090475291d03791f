"""grpclib (what akri runs on) against grpcio (an independent implementation, as the kubelet's
grpc-go is): statuses, messages and stream cancellation must cross over in both directions.

* a grpcio DiscoveryHandler, registered with a grpcio client at our grpclib registration
  server over TCP, delivers its devices to the agent's grpclib discovery request, and sees the
  stream cancelled when the request stops;
* a grpcio client of our grpclib handler server gets INVALID_ARGUMENT naming the bad field,
  its cancel reaches the handler (which then re-registers), and stopping the server ends an
  open stream at once.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from e2e.procs import until

from akri._proto import discovery_pb2 as pb
from akri._proto import discovery_pb2_grpc as pb_grpc
from akri.agent.discovery_requests import DiscoveryRequest, RequestTimings
from akri.agent.registration import HandlerRegistry, RegistrationServer
from akri.discovery.handlers.debug_echo import DebugEchoHandler
from akri.discovery.server import HandlerServer

pytestmark = pytest.mark.slow

WAIT = 10.0  # only to avoid hanging
TIMINGS = RequestTimings(first_list_timeout=5.0, hold_seconds=5.0, reconnect_timeout=1.0)


class GrpcioHandler(pb_grpc.DiscoveryHandlerServicer):
    """A handler written with grpcio's generated servicer: one list, then the stream stays open."""

    def __init__(self) -> None:
        self.requests: list[pb.DiscoverRequest] = []
        self.cancelled = 0  # calls grpcio cancelled because the client went away

    async def Discover(self, request, context):
        self.requests.append(request)
        yield pb.DiscoverResponse(
            devices=[pb.Device(id="cam0", properties={"URL": request.discovery_details})]
        )
        try:
            await asyncio.Event().wait()  # only a cancellation ends this
        except asyncio.CancelledError:
            self.cancelled += 1
            raise


async def test_grpcio_handler_serves_the_grpclib_agent_over_tcp(sockdir: Path) -> None:
    handler = GrpcioHandler()
    server = grpc.aio.server()
    pb_grpc.add_DiscoveryHandlerServicer_to_server(handler, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    registry = HandlerRegistry()
    registration = RegistrationServer(registry, sockdir)
    await registration.start()
    try:
        async with grpc.aio.insecure_channel(f"unix://{registration.socket_path}") as channel:
            await pb_grpc.RegistrationStub(channel).RegisterDiscoveryHandler(
                pb.RegisterDiscoveryHandlerRequest(
                    name="cams",
                    endpoint=f"http://127.0.0.1:{port}",
                    endpoint_type=pb.RegisterDiscoveryHandlerRequest.NETWORK,
                    shared=True,
                ),
                timeout=WAIT,
            )
        [ep] = registry.endpoints("cams")
        assert (ep.target, ep.shared) == (f"127.0.0.1:{port}", True)

        request = DiscoveryRequest(
            ("default", "cams"),
            "cams",
            "rtsp://cam0",
            {"TOKEN": b"s3cret", "EMPTY": None},
            node_name="node-a",
            registry=registry,
            notify=lambda key: None,
            timings=TIMINGS,
        )
        request.start()
        snap = await until(lambda: (s := request.snapshot()).devices and s, "devices from the grpcio handler")
        assert snap.settled
        [found] = snap.devices
        assert (found.device.id, dict(found.device.properties)) == ("cam0", {"URL": "rtsp://cam0"})
        sent = handler.requests[0]
        assert sent.discovery_details == "rtsp://cam0"
        assert sent.discovery_properties["TOKEN"].vec == b"s3cret"
        assert not sent.discovery_properties["EMPTY"].HasField("vec")

        await request.stop()  # the agent drops the Configuration: the handler sees the cancel
        await until(lambda: handler.cancelled, "the grpcio handler to see its call cancelled")
        assert (handler.cancelled, len(handler.requests)) == (1, 1)
    finally:
        await registration.stop()
        await server.stop(0)


async def test_grpcio_client_of_the_grpclib_handler_server(sockdir: Path) -> None:
    handler = DebugEchoHandler(shared=True, availability_file=sockdir / "avail")
    server = HandlerServer(handler, directory=sockdir)
    cancels: list[str] = []
    server.service.on_stream_cancelled = lambda: cancels.append("cancelled")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"unix://{server.socket_path}") as channel:
            stub = pb_grpc.DiscoveryHandlerStub(channel)

            bad = stub.Discover(pb.DiscoverRequest(discovery_details="descriptions: 7\n"))
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await asyncio.wait_for(bad.read(), WAIT)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert err.value.details() == (
                "invalid discovery details: descriptions: must be a list of strings, got integer"
            )
            assert not cancels  # a rejected call is not a cancelled stream

            call = stub.Discover(pb.DiscoverRequest(discovery_details="descriptions: [bar0]\n"))
            first = await asyncio.wait_for(call.read(), WAIT)
            assert [d.id for d in first.devices] == ["bar0"]
            call.cancel()
            await until(lambda: cancels, "the grpclib handler to notice the cancelled stream")
            assert server.service.active_streams == 0

            open_call = stub.Discover(pb.DiscoverRequest(discovery_details="descriptions: [bar1]\n"))
            assert [d.id for d in (await asyncio.wait_for(open_call.read(), WAIT)).devices] == ["bar1"]
            await server.stop()  # must end the open stream on the client side, not leave it hanging
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await asyncio.wait_for(open_call.read(), WAIT)
            assert err.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
            assert cancels == ["cancelled"]  # stopping is not the agent going away
    finally:
        await server.stop()
    assert not (sockdir / "debugEcho.sock").exists()
