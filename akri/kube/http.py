"""A small HTTP/1.1 client for the Kubernetes API: asyncio streams, h11 framing, orjson bodies.

* requests share a keep-alive pool: an idle connection is reused, concurrent requests open more
  (at most `max_connections`), and idle ones are closed after `idle_timeout`;
* a request whose REUSED connection was closed or reset by the server before any byte of the
  answer arrived (it closed the connection while idle) is sent once more on a fresh connection,
  unless it may have been acted on: a POST or PATCH that was fully written is not sent again
  (as Go's net/http; PUT carries its resourceVersion, DELETE is idempotent). A timeout is never
  a reason to send again;
* interim 1xx answers (100 Continue) are skipped (RFC 9110 §15.2);
* waiting for a free pooled connection is bounded by the request timeout;
* a watch streams on a connection of its own (`stream_lines`), never returned to the pool;
* a 401 re-reads the token file once and repeats the request (bound tokens rotate);
* errors: ApiError (an error status, with the decoded Status), TransportError (no usable answer,
  including a success whose body is not JSON) or InvalidRequest (h11 refuses to send the request).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import h11
import orjson

from akri.kube.config import ClientConfig, Credentials, KubeConfigError, ssl_context
from akri.kube.errors import ApiError, InvalidRequest, TransportError

READ_SIZE = 65536

#: methods sent again after their reused connection was closed under them even when fully
#: written: GET/HEAD/OPTIONS are safe, a PUT is guarded by its resourceVersion (409 when it
#: already applied), a DELETE by its preconditions or is idempotent. Not POST nor PATCH.
_REPLAYABLE = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

#: how a connection the server closed shows itself (TimeoutError is an OSError too: not here)
_CLOSED = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class _Stale(Exception):
    """A reused connection was closed by the server before any byte of the answer arrived."""

    def __init__(self, written: bool) -> None:
        super().__init__()
        self.written = written  # the whole request had been handed to the socket


class _Connection:
    __slots__ = ("h11", "idle_since", "reader", "received", "reused", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT)
        self.idle_since = 0.0
        self.reused = False
        self.received = 0  # bytes of the current answer so far

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()

    async def send(self, *events: Any) -> None:
        self.writer.write(b"".join(self.h11.send(e) or b"" for e in events))
        await self.writer.drain()

    async def next_event(self, read_timeout: float | None = None) -> Any:
        """The next h11 event of the answer, reading from the socket as h11 needs."""
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            async with asyncio.timeout(read_timeout):
                data = await self.reader.read(READ_SIZE)
            if not data and not self.received:
                # EOF before any byte of the answer (h11 would call it a protocol error): the
                # server closed the connection, which a reused one may be sent again after
                raise ConnectionResetError("closed by the server before answering")
            self.received += len(data)
            self.h11.receive_data(data)  # b"" = EOF: h11 turns it into an error if mid-answer

    def reusable(self) -> bool:
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
            self.received = 0
            return not self.reader.at_eof()
        return False


class HttpClient:
    """Requests to one API server (see the module docstring). Binds to the running loop on first use."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        timeout: float = 10.0,
        max_connections: int = 8,
        idle_timeout: float = 60.0,
    ) -> None:
        self.config = config
        self.timeout = timeout
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.credentials = Credentials(config.user)
        url = urlsplit(config.cluster.server)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise KubeConfigError(f"{config.source}: server {config.cluster.server!r} is not an http(s) URL")
        try:
            port = url.port
        except ValueError as exc:  # "Port out of range", "could not be cast to integer"
            raise KubeConfigError(f"{config.source}: server {config.cluster.server!r}: {exc}") from None
        self.host = url.hostname
        self.port = port or (443 if url.scheme == "https" else 80)
        self.prefix = url.path.rstrip("/")  # a server behind a proxy path (https://host/k8s/clusters/x)
        self.ssl = ssl_context(config) if url.scheme == "https" else None
        self.server_hostname = (config.cluster.tls_server_name or self.host) if self.ssl else None
        host = f"[{self.host}]" if ":" in self.host else self.host
        default_port = 443 if url.scheme == "https" else 80
        self.host_header = host if self.port == default_port else f"{host}:{self.port}"
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(max_connections)
        self._reaper: asyncio.TimerHandle | None = None
        self._streams: set[_Connection] = set()

    # --- connections ---------------------------------------------------------------------

    async def _connect(self) -> _Connection:
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_connection(
                    self.host, self.port, ssl=self.ssl, server_hostname=self.server_hostname,
                    limit=READ_SIZE,
                )
        except ssl.SSLCertVerificationError as exc:
            raise TransportError(
                f"TLS: cannot verify the API server {self.config.cluster.server} "
                f"({exc.verify_message or exc}); check the cluster's certificate-authority"
            ) from exc
        except TimeoutError as exc:
            raise TransportError(f"connecting to {self.config.cluster.server} timed out") from exc
        except OSError as exc:
            raise TransportError(f"cannot connect to {self.config.cluster.server}: {exc}") from exc
        return _Connection(reader, writer)

    async def _checkout(self) -> _Connection:
        loop = asyncio.get_running_loop()
        while self._idle:
            conn = self._idle.pop()
            if conn.reader.at_eof() or loop.time() - conn.idle_since > self.idle_timeout:
                conn.close()
                continue
            conn.reused = True
            return conn
        return await self._connect()

    def _checkin(self, conn: _Connection) -> None:
        loop = asyncio.get_running_loop()
        conn.idle_since = loop.time()
        self._idle.append(conn)
        if self._reaper is None:
            self._reaper = loop.call_later(self.idle_timeout, self._reap)

    def _reap(self) -> None:
        """Close connections idle for longer than idle_timeout (servers and proxies drop them)."""
        self._reaper = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        keep = []
        for conn in self._idle:
            if now - conn.idle_since >= self.idle_timeout:
                conn.close()
            else:
                keep.append(conn)
        self._idle = keep
        if keep:
            oldest = min(c.idle_since for c in keep)
            self._reaper = loop.call_later(max(0.1, oldest + self.idle_timeout - now), self._reap)

    def _drop_idle(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        self._drop_idle()
        for conn in self._streams:
            conn.close()
        self._streams.clear()

    # --- requests ------------------------------------------------------------------------

    def _target(self, path: str, params: Mapping[str, Any] | None) -> str:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        return self.prefix + path + ("?" + urlencode(query) if query else "")

    def _request(self, method: str, target: str, body: bytes | None, content_type: str) -> list[Any]:
        headers = [("Host", self.host_header), ("Accept", "application/json"), ("User-Agent", "akri")]
        auth = self.credentials.header()
        if auth:
            headers.append(("Authorization", auth))
        events: list[Any] = []
        if body is not None:
            headers += [("Content-Type", content_type), ("Content-Length", str(len(body)))]
            events = [h11.Data(data=body)]
        try:
            request = h11.Request(method=method, target=target, headers=headers)
        except h11.LocalProtocolError as exc:
            # a control character in a token, a space in a name: the same on every attempt
            why = _explain(exc, headers)
            raise InvalidRequest(f"{method} {target[:200]!r}: cannot be sent: {why}") from None
        return [request, *events, h11.EndOfMessage()]

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Any:
        """Send one request; the decoded JSON answer (None for an empty body). Raises ApiError or
        TransportError."""
        target = self._target(path, params)
        data = orjson.dumps(body) if body is not None else None
        refreshed = False
        while True:
            status, ctype, raw = await self._exchange(method, target, data, content_type)
            if status == 401 and not refreshed and self.credentials.refresh():
                refreshed = True
                continue
            if status >= 400:
                raise ApiError(status, _decode_error(raw), method=method, path=path)
            if not raw:
                return None
            try:
                return orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                # e.g. a proxy's HTML login or error page: not the API server's answer
                raise TransportError(
                    f"{method} {path}: HTTP {status} answer is not JSON "
                    f"(Content-Type {ctype or 'none'}, {len(raw)} bytes starting {raw[:120]!r})"
                ) from exc

    async def _acquire_slot(self, method: str, target: str) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise TransportError(
                f"{method} {target}: no free connection within {self.timeout} s "
                f"(all {self.max_connections} busy)"
            ) from None

    async def _exchange(
        self, method: str, target: str, data: bytes | None, ctype: str
    ) -> tuple[int, str, bytes]:
        events = self._request(method, target, data, ctype)
        await self._acquire_slot(method, target)
        try:
            for attempt in range(2):
                conn = await (self._checkout() if attempt == 0 else self._connect())
                try:
                    answer = await self._send_and_read(conn, events)
                except _Stale as exc:
                    conn.close()
                    # the server closed the idle connection (restart, idle timeout): the other
                    # idle ones are likely gone too
                    self._drop_idle()
                    if attempt == 0 and (not exc.written or method in _REPLAYABLE):
                        continue  # send once more on a new connection
                    raise TransportError(
                        f"{method} {target}: connection closed by the server before answering; "
                        "not sent again, as the server may have acted on it"
                    ) from exc.__cause__
                except TimeoutError as exc:
                    conn.close()
                    raise TransportError(f"{method} {target}: no answer within {self.timeout} s") from exc
                except h11.LocalProtocolError as exc:
                    conn.close()
                    raise InvalidRequest(f"{method} {target[:200]!r}: {_explain(exc, [])}") from None
                except (OSError, h11.ProtocolError) as exc:
                    conn.close()
                    raise TransportError(f"{method} {target}: {exc or type(exc).__name__}") from exc
                except BaseException:
                    conn.close()  # cancelled mid-exchange: the connection's state is unknown
                    raise
                if conn.reusable():
                    self._checkin(conn)
                else:
                    conn.close()
                return answer
            raise AssertionError("unreachable")
        finally:
            self._slots.release()

    async def _send_and_read(self, conn: _Connection, events: list[Any]) -> tuple[int, str, bytes]:
        # `timeout` bounds each write and each wait for more of the answer (as httpx's read and
        # write timeouts do), not the whole exchange: a big list keeps flowing
        written = False
        try:
            async with asyncio.timeout(self.timeout):
                await conn.send(*events)
            written = True
            event = await _response(conn, self.timeout)
        except _CLOSED as exc:
            # a clean close or reset before any byte of the answer: the server dropped the idle
            # connection. A timeout or garbage is not that: the server may be working on it.
            if conn.reused and conn.received == 0:
                raise _Stale(written) from exc
            raise
        raw = await _read_rest(conn, self.timeout)
        return event.status_code, _content_type(event), raw

    async def stream_lines(
        self, path: str, *, params: Mapping[str, Any] | None = None, read_timeout: float
    ) -> AsyncIterator[bytes]:
        """GET a streaming answer (a watch) on a connection of its own; yield its lines as they
        come. A read waiting longer than `read_timeout` means a dead peer: TransportError."""
        target = self._target(path, params)
        refreshed = False
        while True:
            events = self._request("GET", target, None, "")
            conn = await self._connect()
            self._streams.add(conn)
            try:
                try:
                    async with asyncio.timeout(self.timeout):
                        await conn.send(*events)
                    event = await _response(conn, read_timeout)
                    if event.status_code >= 400:
                        raw = await _read_rest(conn, read_timeout)
                        if event.status_code == 401 and not refreshed and self.credentials.refresh():
                            refreshed = True
                            continue
                        raise ApiError(event.status_code, _decode_error(raw), method="GET", path=path)
                    buffer = b""
                    while True:
                        event = await conn.next_event(read_timeout)
                        if isinstance(event, h11.EndOfMessage):
                            if buffer.strip():
                                yield buffer
                            return
                        if not isinstance(event, h11.Data):
                            raise h11.RemoteProtocolError(f"unexpected {type(event).__name__}")
                        buffer += event.data
                        if b"\n" not in event.data:
                            continue
                        *lines, buffer = buffer.split(b"\n")
                        for line in lines:
                            if line.strip():
                                yield line
                except TimeoutError as exc:
                    raise TransportError(f"watch {path}: nothing received for {read_timeout} s") from exc
                except h11.LocalProtocolError as exc:
                    raise InvalidRequest(f"watch {path}: {_explain(exc, [])}") from None
                except (OSError, h11.ProtocolError) as exc:
                    raise TransportError(f"watch {path}: {exc or type(exc).__name__}") from exc
            finally:
                self._streams.discard(conn)
                conn.close()


async def _response(conn: _Connection, read_timeout: float | None) -> h11.Response:
    """The final answer's head, past any interim 1xx (a client must skip those it did not ask
    for, RFC 9110 §15.2). A close before it is a ConnectionResetError."""
    while True:
        event = await conn.next_event(read_timeout)
        if isinstance(event, h11.Response):
            return event
        if isinstance(event, h11.ConnectionClosed):
            raise ConnectionResetError("closed by the server before answering")
        if not isinstance(event, h11.InformationalResponse):
            raise h11.RemoteProtocolError(f"unexpected {type(event).__name__}")


def _content_type(response: h11.Response) -> str:
    for name, value in response.headers:
        if name == b"content-type":
            return value.decode("latin-1")
    return ""


def _explain(exc: h11.LocalProtocolError, headers: list[tuple[str, str]]) -> str:
    """h11's complaint, naming the header but never quoting its value (it may be a credential)."""
    text = str(exc)
    if not text.startswith("Illegal header value"):
        return text
    bad = [name for name, value in headers if any((c < " " and c != "\t") or c == "\x7f" for c in value)]
    where = f" of {', '.join(bad)}" if bad else ""
    return f"Illegal header value{where} (a control character or line break)"


async def _read_rest(conn: _Connection, read_timeout: float | None) -> bytes:
    chunks: list[bytes] = []
    while True:
        event = await conn.next_event(read_timeout)
        if isinstance(event, h11.Data):
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            return b"".join(chunks)
        else:
            raise h11.RemoteProtocolError(f"unexpected {type(event).__name__}")


def _decode_error(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw
