"""`GET /metrics` (Prometheus text format) for the agent and the controller.

A few lines of asyncio rather than a web framework: one GET path, tiny footprint (aiohttp.web
would add about 15 MB to a process that otherwise never imports it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from akri.metrics_registry import CONTENT_TYPE, Registry

log = logging.getLogger(__name__)

DEFAULT_PORT = 8080  # upstream's METRICS_PORT default


class MetricsServer:
    """`GET /metrics` over plain HTTP/1.1 (one request per connection)."""

    def __init__(self, registry: Registry, host: str = "0.0.0.0", port: int = DEFAULT_PORT) -> None:
        self.registry = registry
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        if self.port == 0:
            self.port = self._server.sockets[0].getsockname()[1]
        log.info("metrics on http://%s:%d/metrics", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(10):
                head = await reader.readuntil(b"\r\n\r\n")
            method, _, rest = head.partition(b" ")
            path = rest.split(b" ", 1)[0].split(b"?", 1)[0]
            if method not in (b"GET", b"HEAD"):
                status, ctype, body = b"405 Method Not Allowed", b"text/plain", b"method not allowed\n"
            elif path == b"/metrics":
                status, ctype, body = b"200 OK", CONTENT_TYPE.encode(), self.registry.render()
            elif path in (b"/healthz", b"/"):
                status, ctype, body = b"200 OK", b"text/plain", b"ok\n"
            else:
                status, ctype, body = b"404 Not Found", b"text/plain", b"not found\n"
            writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: " + ctype + b"\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n")
            if method != b"HEAD":
                writer.write(body)
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            pass
        except Exception:
            log.exception("metrics request failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
