"""Serving one plugin on its socket and registering it with the kubelet (spec §4.9).

The socket is `<dir>/<name>-<unix seconds>.sock`, mode 0600 (only the kubelet, as root,
connects), serving BEFORE `Register` is sent, as the device-plugin API requires. A new socket
always gets a name no earlier socket of this plugin had: stopping the old server unlinks its
socket path, so re-using the path would let the old server delete the new socket.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path

from grpclib.client import Channel

from akri._proto import deviceplugin_grpc as dp_grpc
from akri._proto import deviceplugin_pb2 as dp
from akri.agent.plugins.base import DevicePluginBase
from akri.grpc_client import RPC_ERRORS, describe, within
from akri.grpc_server import GrpcServer

log = logging.getLogger(__name__)

KUBELET_SOCKET = "kubelet.sock"
API_VERSION = "v1beta1"
SOCKET_MODE = 0o600
REGISTER_TIMEOUT = 10.0
# sockaddr_un.sun_path is 108 bytes including the terminating NUL
MAX_SOCKET_PATH = 107


def kubelet_signature(directory: Path) -> tuple[int, int] | None:
    """Identity of the kubelet's current socket: its change and modification times.

    A restarted kubelet re-creates the file, which gives new times; the inode number is not
    used, since a re-created file can get the same one.
    """
    try:
        st = (directory / KUBELET_SOCKET).stat()
    except OSError:
        return None
    return (st.st_ctime_ns, st.st_mtime_ns)


class PluginEndpoint:
    """One plugin's gRPC server + its registration with the kubelet."""

    def __init__(self, plugin: DevicePluginBase, directory: Path) -> None:
        self.plugin = plugin
        self.directory = directory
        self.socket_path: Path | None = None
        self.registered_with: tuple[int, int] | None = None  # kubelet_signature at registration
        self.registrations = 0
        self._server: GrpcServer | None = None
        self._used_names: set[str] = set()

    @property
    def endpoint(self) -> str | None:
        return self.socket_path.name if self.socket_path else None

    def socket_alive(self) -> bool:
        return self.socket_path is not None and self.socket_path.exists()

    def _new_socket_path(self) -> Path:
        seconds = int(time.time())
        while True:
            name = f"{self.plugin.name}-{seconds}.sock"
            path = self.directory / name
            if name not in self._used_names and not path.exists():
                self._used_names.add(name)
                return path
            seconds += 1

    async def serve(self) -> None:
        """Serve on a fresh socket (stopping any previous server); not registered yet."""
        path = self._new_socket_path()
        if len(os.fsencode(path)) > MAX_SOCKET_PATH:
            raise OSError(f"socket path {path} is longer than {MAX_SOCKET_PATH} bytes (unix socket limit)")
        server = GrpcServer([self.plugin])
        await server.start_unix(path, SOCKET_MODE)
        old, self._server = self._server, server
        old_path, self.socket_path = self.socket_path, path
        self.registered_with = None
        try:
            if old is not None:
                await old.stop()
        finally:  # even when cancelled while the old server stops: leave no stray socket file
            if old_path is not None:
                old_path.unlink(missing_ok=True)
        log.debug("%s: serving on %s", self.plugin.resource_name, path)

    async def register(self, signature: tuple[int, int] | None) -> None:
        """Send RegisterRequest to the kubelet; raises GRPCError / StreamTerminatedError / OSError."""
        if self.socket_path is None:
            raise RuntimeError("serve() before register()")
        request = dp.RegisterRequest(
            version=API_VERSION,
            endpoint=self.socket_path.name,
            resource_name=self.plugin.resource_name,
            options=dp.DevicePluginOptions(pre_start_required=False, get_preferred_allocation_available=True),
        )
        async with Channel(path=str(self.directory / KUBELET_SOCKET)) as channel:
            await within(REGISTER_TIMEOUT, dp_grpc.RegistrationStub(channel).Register(request))
        self.registered_with = signature
        self.registrations += 1
        log.info(
            "registered %s with the kubelet (endpoint %s)", self.plugin.resource_name, self.socket_path.name
        )

    async def ensure(self, signature: tuple[int, int] | None) -> bool:
        """Serve if our socket is gone; register if the kubelet changed. True when registered."""
        if not self.socket_alive():
            if self.socket_path is not None:
                log.info(
                    "%s: socket %s is gone; serving again", self.plugin.resource_name, self.socket_path.name
                )
            await self.serve()
        if signature is None:
            self.registered_with = None
            return False
        if self.registered_with == signature:
            return True
        try:
            await self.register(signature)
        except RPC_ERRORS as exc:
            detail = describe(exc)
            log.warning("registering %s with the kubelet failed: %s", self.plugin.resource_name, detail)
            return False
        return True

    async def stop(self) -> None:
        self.plugin.close()
        server, self._server = self._server, None
        if server is not None:
            await server.stop()
        if self.socket_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()

    def __repr__(self) -> str:
        return f"PluginEndpoint({self.plugin.resource_name!r}, {self.endpoint!r})"
