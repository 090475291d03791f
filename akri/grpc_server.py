"""The gRPC server every akri component runs (agent registration, handlers, device plugins).

A thin layer over grpclib's `Server`:

* unix sockets are created by `akri.unix_socket.listen_unix` (created with their final
  permissions, listening) before the server takes them over;
* `stop()` also drops every client connection. grpclib's `close()` cancels the running calls
  but leaves their HTTP/2 connections open without ending the streams, so a client reading
  ListAndWatch or Discover would wait forever (and on Python 3.12+ `asyncio.Server.wait_closed`
  would wait for those connections too). Dropping them is what grpcio's `stop(0)` does: open
  calls end at once on the client side (UNAVAILABLE).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import weakref
from collections.abc import Collection
from pathlib import Path
from typing import Any

from grpclib.server import Server

from akri.unix_socket import listen_unix

log = logging.getLogger(__name__)

#: how long stop() waits by default for the cancelled calls' handlers to finish
STOP_GRACE = 5.0


class GrpcServer(Server):
    """grpclib Server that knows its connections, so that stopping it ends open streams."""

    def __init__(self, handlers: Collection[Any]) -> None:
        super().__init__(handlers)
        self._connections: weakref.WeakSet[Any] = weakref.WeakSet()
        self._started = False

    def _protocol_factory(self) -> Any:  # grpclib's per-connection hook (pinned minor release)
        protocol = super()._protocol_factory()
        self._connections.add(protocol)
        return protocol

    async def start_unix(self, path: Path, mode: int) -> None:
        """Serve on a new unix socket at `path` with permissions `mode`."""
        sock = listen_unix(path, mode)
        try:
            await self.start(sock=sock)
        except BaseException:
            sock.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            raise
        self._started = True

    async def start_tcp(self, host: str, port: int) -> None:
        """Serve on `host:port` (an IP address; IPv6 without brackets)."""
        await self.start(host, port)
        self._started = True

    async def stop(self, grace: float | None = STOP_GRACE) -> None:
        """Stop accepting, cancel every open call, drop the connections and wait for the
        cancelled handlers to finish (at most `grace` seconds; None: no limit)."""
        if not self._started:
            return
        self._started = False
        self.close()
        for protocol in list(self._connections):
            connection = getattr(protocol, "connection", None)
            if connection is not None:
                connection.close()
        try:
            async with asyncio.timeout(grace):
                await self.wait_closed()
        except TimeoutError:
            log.info("gRPC server: cancelled calls still running %.1f s after stop", grace)
