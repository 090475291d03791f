"""A discovery handler as a standalone process: the v0.DiscoveryHandler gRPC service.

`HandlerServer` serves one handler on `$DISCOVERY_HANDLERS_DIRECTORY/<name>.sock` or, when a
pod IP is given, on `<ip>:10000`, exactly where upstream's handlers listen, so an upstream
agent can use it. `serve()` adds the registration with the agent and runs until stopped.

Each Discover call runs its own `device_lists` stream. Bad details end that call with
INVALID_ARGUMENT naming the field (the agent then reports "invalid discovery details");
the server keeps serving other calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grpclib import GRPCError, Status
from grpclib.server import Stream

from akri._proto import discovery_grpc as pb_grpc
from akri.discovery.handler import DiscoveryHandler, InvalidDetails
from akri.discovery.registration import Registration, RegistrationClient
from akri.discovery.stream import device_lists, properties_from_proto, response_from_devices
from akri.grpc_server import GrpcServer
from akri.unix_socket import remove_stale_socket

log = logging.getLogger(__name__)

DISCOVERY_PORT = 10000
DEFAULT_DIRECTORY = "/var/lib/akri"
# Owner and group may connect (the agent runs as root or in the socket's group); nobody else.
SOCKET_MODE = 0o660


class DiscoveryService(pb_grpc.DiscoveryHandlerBase):
    """v0.DiscoveryHandler over one handler object."""

    def __init__(self, handler: DiscoveryHandler, *,
                 on_stream_cancelled: Callable[[], None] | None = None) -> None:
        self.handler = handler
        self.on_stream_cancelled = on_stream_cancelled
        self.stopping = False
        self.active_streams = 0

    async def Discover(self, stream: Stream[Any, Any]) -> None:  # the gRPC method name
        request = await stream.recv_message()
        assert request is not None
        peer = peer_name(stream)
        log.info("Discover from %s: details %r, properties %s", peer, request.discovery_details,
                 sorted(request.discovery_properties))
        lists = device_lists(self.handler, request.discovery_details,
                             properties_from_proto(request.discovery_properties))
        self.active_streams += 1
        try:
            async for devices in lists:
                log.info("sending %d device(s) to %s", len(devices), peer)
                await stream.send_message(response_from_devices(devices))
        except InvalidDetails as exc:
            log.warning("invalid discovery details from %s: %s", peer, exc)
            raise GRPCError(Status.INVALID_ARGUMENT, f"invalid discovery details: {exc}") from None
        except asyncio.CancelledError:
            # The agent cancelled the stream or went away (grpclib cancels this call when the
            # stream is reset or the connection is lost). Upstream re-registers here: an agent
            # that restarted may need to learn about us again.
            if not self.stopping and self.on_stream_cancelled is not None:
                self.on_stream_cancelled()
            raise
        except Exception as exc:  # a handler bug must end this call, not the server
            log.exception("discovery failed for %s", peer)
            raise GRPCError(Status.INTERNAL, f"discovery failed: {type(exc).__name__}: {exc}") from None
        finally:
            self.active_streams -= 1
            await lists.aclose()


def peer_name(stream: Stream[Any, Any]) -> str:
    """`10.0.0.5:43210` for a network peer, `agent` over a unix socket (no address there)."""
    addr = stream.peer.addr()
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = f"[{addr[0]}]" if ":" in str(addr[0]) else addr[0]
        return f"{host}:{addr[1]}"
    return "agent"


def network_endpoint(pod_ip: str, port: int = DISCOVERY_PORT) -> tuple[str, str]:
    """(bind address, registered endpoint) for a pod IP; IPv6 addresses are bracketed."""
    try:
        ip = ipaddress.ip_address(pod_ip.strip())
    except ValueError:
        raise ValueError(f"POD_IP {pod_ip!r} is not an IP address") from None
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    return f"{host}:{port}", f"http://{host}:{port}"


class HandlerServer:
    """The gRPC server of one handler, on a unix socket or on <pod ip>:10000."""

    def __init__(self, handler: DiscoveryHandler, *, directory: str | Path = DEFAULT_DIRECTORY,
                 pod_ip: str | None = None, port: int = DISCOVERY_PORT) -> None:
        self.handler = handler
        self.directory = Path(directory).absolute()
        self.service = DiscoveryService(handler)
        self.socket_path: Path | None = None
        if pod_ip:
            self._bind, self.endpoint = network_endpoint(pod_ip, port)
            self.network = True
        else:
            self.socket_path = self.directory / f"{handler.name}.sock"
            self._bind = str(self.socket_path)
            self.endpoint = str(self.socket_path)  # upstream registers the plain path for UDS
            self.network = False
        self._server: GrpcServer | None = None
        self._socket_id: tuple[int, int] | None = None

    @property
    def registration(self) -> Registration:
        return Registration(name=self.handler.name, endpoint=self.endpoint, network=self.network,
                            shared=bool(self.handler.shared))

    async def start(self) -> None:
        server = GrpcServer([self.service])
        if self.socket_path is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            remove_stale_socket(self.socket_path, refuse_if_served=True)
            await server.start_unix(self.socket_path, SOCKET_MODE)
            st = self.socket_path.stat()
            self._socket_id = (st.st_dev, st.st_ino)
        else:
            host, _, port = self._bind.rpartition(":")
            try:
                await server.start_tcp(host.removeprefix("[").removesuffix("]"), int(port))
            except OSError as exc:
                raise OSError(exc.errno, f"cannot listen on {self._bind}: {exc.strerror}") from exc
        self._server = server
        log.info("discovery handler %s serving on %s", self.handler.name, self.endpoint)

    async def stop(self, grace: float | None = 1.0) -> None:
        """Stop serving and remove our socket. Open Discover streams are cancelled at once;
        their handlers get `grace` seconds (None: no limit) to finish."""
        self.service.stopping = True
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
        self._remove_own_socket()

    def _remove_own_socket(self) -> None:
        if self.socket_path is None or self._socket_id is None:
            return
        with contextlib.suppress(FileNotFoundError):
            st = self.socket_path.lstat()
            if (st.st_dev, st.st_ino) == self._socket_id:  # not a newer process's socket
                self.socket_path.unlink()
        self._socket_id = None


async def serve(handler: DiscoveryHandler, *, directory: str | Path = DEFAULT_DIRECTORY,
                pod_ip: str | None = None, port: int = DISCOVERY_PORT,
                stop: asyncio.Event | None = None) -> None:
    """Serve `handler`, register it with the agent, keep it registered; return once `stop` is set."""
    server = HandlerServer(handler, directory=directory, pod_ip=pod_ip, port=port)
    client = RegistrationClient(server.directory, server.registration)
    server.service.on_stream_cancelled = lambda: client.reregister("the agent closed a Discover stream")
    stop = stop or asyncio.Event()
    await server.start()
    registration_task = asyncio.create_task(client.run(), name="registration")
    stop_task = asyncio.create_task(stop.wait(), name="stop")
    try:
        done, _ = await asyncio.wait({registration_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        if registration_task in done:
            registration_task.result()  # surfaces an unexpected failure of the registration loop
    finally:
        for task in (registration_task, stop_task):
            task.cancel()
        await asyncio.gather(registration_task, stop_task, return_exceptions=True)
        await server.stop()
        await handler.close()
        log.info("discovery handler %s stopped", handler.name)
