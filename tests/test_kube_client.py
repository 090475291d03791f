"""akri.kube's own HTTP client against the API double over real sockets: TLS (cluster CA from a
file or inline, client certificates checked by the server, a wrong CA), in-cluster service
account, bearer tokens re-read from their file (periodically and after a 401), a keep-alive
connection the server dropped, and kubeconfig users the client does not support."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import socket
import ssl
import struct
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from akri.kube import (
    ApiError,
    Configuration,
    Instance,
    Kube,
    KubeConfigError,
    TransportError,
    describe,
    is_transient,
)
from akri.kube import config as kube_config
from akri.kube.config import ClientConfig, Cluster, ssl_context
from akri.kube.errors import InvalidRequest
from akri.kube.http import HttpClient
from akri.testing.apiserver import ApiServer
from akri.testing.certs import Pem, issue, pem, server_context

pytestmark = pytest.mark.slow


# --- certificates -----------------------------------------------------------------------------


@dataclass
class Pki:
    ca: Pem
    server: Pem
    client: Pem
    other_ca: Pem  # trusts nothing the server presents


@pytest.fixture(scope="module")
def pki() -> Pki:
    ca = issue("test-ca", ca=True)
    return Pki(
        ca=pem(ca),
        server=pem(issue("kube-apiserver", ca, server=True)),
        client=pem(issue("admin", ca)),
        other_ca=pem(issue("other-ca", ca=True)),
    )


# --- the API double behind TLS and/or a token check --------------------------------------------


class Front:
    """The API double's routes served by our own aiohttp site: optionally TLS (requiring a client
    certificate signed by the CA), optionally a bearer-token check (`accept` = valid tokens)."""

    def __init__(self, api: ApiServer, *, tls: ssl.SSLContext | None = None,
                 accept: set[str] | None = None) -> None:
        self.api = api
        self.tls = tls
        self.accept = accept
        self.tokens_seen: list[str] = []
        self.runner: web.AppRunner | None = None
        self.port = 0

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.tokens_seen.append(token)
        if self.accept is not None and token not in self.accept:
            return web.json_response(
                {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Unauthorized",
                 "message": "Unauthorized", "code": 401}, status=401)
        return await handler(request)

    async def __aenter__(self) -> Front:
        app = web.Application(middlewares=[self._auth])
        app.router.add_route("*", "/{tail:.*}", self.api.handler.handle)
        self.runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0, ssl_context=self.tls)
        await site.start()
        assert site._server is not None
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"


def server_tls(pki: Pki, tmp: Path, *, client_certs: bool = True) -> ssl.SSLContext:
    return server_context(pki.server, client_ca=pki.ca.cert if client_certs else None)


def write_kubeconfig(path: Path, server: str, *, cluster: dict[str, Any] | None = None,
                     user: dict[str, Any] | None = None) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server, **(cluster or {})}}],
        "users": [{"name": "u", "user": user or {}}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u", "namespace": "default"}}],
        "current-context": "ctx",
    }))
    return path


def private_dirs() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("akri-kube-*"))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
async def api() -> AsyncIterator[ApiServer]:
    async with ApiServer() as server:
        yield server


def config_body(name: str = "cfg") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"discoveryHandler": {"name": "debugEcho"}}}


# --- TLS ------------------------------------------------------------------------------------------


async def test_tls_with_inline_ca_and_client_certificate(api: ApiServer, pki: Pki, tmp_path: Path) -> None:
    async with Front(api, tls=server_tls(pki, tmp_path)) as front:
        path = write_kubeconfig(
            tmp_path / "kc", front.url,
            cluster={"certificate-authority-data": b64(pki.ca.cert)},
            user={"client-certificate-data": b64(pki.client.cert), "client-key-data": b64(pki.client.key)},
        )
        before = private_dirs()
        async with Kube.from_config(path) as kube:
            # the inline key went through a private temporary file that is gone again
            assert private_dirs() == before
            await kube.create(Configuration, config_body())
            assert (await kube.get(Configuration, "cfg", "default"))["metadata"]["uid"]
        assert api.store.get_object("configurations", "cfg", "default") is not None


async def test_tls_with_ca_and_client_certificate_files(api: ApiServer, pki: Pki, tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_bytes(pki.ca.cert)
    (tmp_path / "client.crt").write_bytes(pki.client.cert)
    (tmp_path / "client.key").write_bytes(pki.client.key)
    async with Front(api, tls=server_tls(pki, tmp_path)) as front:
        # paths relative to the kubeconfig's directory, as kubectl reads them
        path = write_kubeconfig(tmp_path / "kc", front.url, cluster={"certificate-authority": "ca.crt"},
                                user={"client-certificate": "client.crt", "client-key": "client.key"})
        async with Kube.from_config(path) as kube:
            items, rv = await kube.list(Instance)
            assert items == [] and rv


async def test_the_server_refuses_a_client_without_certificate(
    api: ApiServer, pki: Pki, tmp_path: Path
) -> None:
    async with Front(api, tls=server_tls(pki, tmp_path)) as front:
        path = write_kubeconfig(tmp_path / "kc", front.url,
                                cluster={"certificate-authority-data": b64(pki.ca.cert)})
        async with Kube.from_config(path) as kube:
            with pytest.raises(TransportError):
                await kube.list(Instance)


async def test_wrong_ca_is_a_clear_transport_error(api: ApiServer, pki: Pki, tmp_path: Path) -> None:
    async with Front(api, tls=server_tls(pki, tmp_path, client_certs=False)) as front:
        path = write_kubeconfig(tmp_path / "kc", front.url,
                                cluster={"certificate-authority-data": b64(pki.other_ca.cert)})
        async with Kube.from_config(path) as kube:
            with pytest.raises(TransportError) as info:
                await kube.list(Instance)
        assert "cannot verify the API server" in str(info.value)
        assert "certificate-authority" in str(info.value)
        assert is_transient(info.value)


def test_only_the_clusters_ca_is_trusted(pki: Pki, tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "kc", "https://127.0.0.1:6443",
                            cluster={"certificate-authority-data": b64(pki.ca.cert)})
    ctx = ssl_context(kube_config.load_config(path))
    assert ctx.cert_store_stats()["x509_ca"] == 1  # not the system store
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname


def test_unreadable_ca_is_a_config_error(tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "kc", "https://127.0.0.1:6443",
                            cluster={"certificate-authority": "missing.crt"})
    with pytest.raises(KubeConfigError, match="certificate authority"):
        Kube.from_config(path)


async def test_in_cluster_service_account_over_tls(
    api: ApiServer, pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text("sa-token-1\n")
    (sa / "namespace").write_text("akri")
    (sa / "ca.crt").write_bytes(pki.ca.cert)
    async with Front(api, tls=server_tls(pki, tmp_path, client_certs=False), accept={"sa-token-1"}) as front:
        monkeypatch.delenv("KUBECONFIG", raising=False)
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(front.port))
        monkeypatch.setattr(kube_config, "SERVICE_ACCOUNT", str(sa))
        async with Kube.from_config() as kube:
            assert kube.client.ssl is not None and kube.client.ssl.cert_store_stats()["x509_ca"] == 1
            # a namespaced kind without a namespace lands in the service account's namespace
            await kube.create(Instance, {"metadata": {"name": "i"}, "spec": {"configurationName": "c"}})
        assert api.store.get_object("instances", "i", "akri") is not None
        assert front.tokens_seen == ["sa-token-1"]


# --- tokens -----------------------------------------------------------------------------------------


async def test_a_rotated_token_is_reread_after_a_401(api: ApiServer, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t1")
    async with Front(api, accept={"t1"}) as front:
        path = write_kubeconfig(tmp_path / "kc", front.url, user={"tokenFile": str(token)})
        async with Kube.from_config(path) as kube:
            await kube.list(Instance)
            token.write_text("t2")  # the kubelet rotated it; the old one is no longer accepted
            front.accept = {"t2"}
            await kube.list(Instance)
            assert front.tokens_seen == ["t1", "t1", "t2"]
            # a 401 that a fresh read does not cure is an error, once, not a loop
            front.accept = {"t3"}
            with pytest.raises(ApiError) as info:
                await kube.list(Instance)
            assert info.value.status == 401 and not is_transient(info.value)
            assert describe(info.value) == "HTTP 401: Unauthorized: Unauthorized"
            assert front.tokens_seen[3:] == ["t2"]


async def test_the_token_file_is_reread_periodically(
    api: ApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kube_config, "TOKEN_REREAD_SECONDS", 0.2)
    token = tmp_path / "token"
    token.write_text("t1")
    async with Front(api, accept={"t1", "t2"}) as front:
        path = write_kubeconfig(tmp_path / "kc", front.url, user={"tokenFile": str(token)})
        async with Kube.from_config(path) as kube:
            await kube.list(Instance)
            token.write_text("t2")
            await kube.list(Instance)  # within the period: the token read before
            await asyncio.sleep(0.3)
            await kube.list(Instance)
        assert front.tokens_seen == ["t1", "t1", "t2"]  # never a 401 on the way


async def test_basic_auth_and_watch_carry_credentials(api: ApiServer, tmp_path: Path) -> None:
    basic = b64(b"admin:secret")
    async with Front(api, accept={f"Basic {basic}"}) as front:  # (the check strips only "Bearer ")
        path = write_kubeconfig(tmp_path / "kc", front.url, user={"username": "admin", "password": "secret"})
        async with Kube.from_config(path) as kube:
            _, rv = await kube.list(Instance)
            lines = kube.client.stream_lines(
                Instance.path(), params={"watch": "true", "resourceVersion": rv, "timeoutSeconds": 1},
                read_timeout=10)
            api.store.create_object("instances", {"metadata": {"name": "w"}, "spec": {}}, namespace="default")
            first = await asyncio.wait_for(anext(lines), 10)
            await lines.aclose()
            assert b'"ADDED"' in first and b'"w"' in first
        assert front.tokens_seen == [f"Basic {basic}"] * 2


# --- connections ------------------------------------------------------------------------------------


class DroppingProxy:
    """TCP proxy in front of the double that, when `drop` is set, closes a client connection as
    its next request arrives (unanswered): what a server closing an idle keep-alive
    connection looks like to a client that just sent on it."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.drop: Callable[[int], bool] = lambda n: False  # n: requests seen on the connection
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def down() -> None:
            with contextlib.suppress(OSError):
                while data := await up_r.read(65536):
                    writer.write(data)
                    await writer.drain()
            writer.close()

        pump = asyncio.create_task(down())
        requests = 0
        try:
            while data := await reader.read(65536):
                if data.startswith((b"GET ", b"POST ", b"PUT ", b"PATCH ", b"DELETE ")):
                    requests += 1
                    if self.drop(requests):
                        break
                up_w.write(data)
                await up_w.drain()
        except OSError:
            pass
        finally:
            pump.cancel()
            writer.close()
            up_w.close()

    async def __aenter__(self) -> DroppingProxy:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"


async def test_a_dropped_keepalive_connection_is_retried_once(api: ApiServer, tmp_path: Path) -> None:
    async with DroppingProxy(api.port) as proxy:
        path = write_kubeconfig(tmp_path / "kc", proxy.url, user={"token": "x"})
        async with Kube.from_config(path) as kube:
            await kube.list(Instance)
            await kube.list(Instance)
            assert proxy.connections == 1  # kept alive and reused
            proxy.drop = lambda n: n > 1  # the idle connection dies as the next request goes out
            await kube.list(Instance)  # a GET is sent again on a fresh connection
            assert proxy.connections == 2
            # a POST fully written may have been acted on: never sent twice (as Go's net/http)
            with pytest.raises(TransportError, match="connection closed"):
                await kube.create(Instance, {"metadata": {"name": "lost"}, "spec": {}})
            assert proxy.connections == 2
            proxy.drop = lambda n: False
            created = await kube.create(Instance, {"metadata": {"name": "once"}, "spec": {}})
            assert created["metadata"]["name"] == "once"
            proxy.drop = lambda n: n > 1
            # a PUT is guarded by its resourceVersion: sent again
            created["spec"]["capacity"] = 2
            assert (await kube.replace(Instance, created))["spec"]["capacity"] == 2
            assert proxy.connections == 4
            # a fresh connection failing is not retried (nothing says the server did not act)
            proxy.drop = lambda n: True
            with pytest.raises(TransportError):
                await kube.get(Instance, "once", "default")
            assert proxy.connections == 5  # the reused one, then a single fresh attempt
        assert len(api.store.list_objects("instances", "default")) == 1


async def test_concurrent_requests_open_bounded_connections(api: ApiServer, tmp_path: Path) -> None:
    async with DroppingProxy(api.port) as proxy:
        path = write_kubeconfig(tmp_path / "kc", proxy.url, user={"token": "x"})
        async with Kube.from_config(path) as kube:
            await asyncio.gather(*(kube.list(Instance) for _ in range(30)))
            opened = proxy.connections
            assert 1 < opened <= 8
            await asyncio.gather(*(kube.list(Instance) for _ in range(8)))
            assert proxy.connections == opened  # the idle ones were reused


async def test_a_watch_ends_with_the_servers_timeout(api: ApiServer) -> None:
    async with Kube.from_config(api.kubeconfig_path) as kube:
        api.store.create_object("instances", {"metadata": {"name": "a"}, "spec": {}}, namespace="default")
        lines = kube.client.stream_lines(
            Instance.path("default"), params={"watch": "1", "timeoutSeconds": 1}, read_timeout=10)
        got = await asyncio.wait_for(asyncio.gather(*[_collect(lines)]), 10)
        assert [b'"ADDED"' in line for line in got[0]] == [True]  # then the chunked stream ends
        with pytest.raises(ApiError) as info:
            await kube.get(Instance, "missing", "default")
        assert info.value.status == 404 and info.value.reason == "NotFound"


async def _collect(lines: AsyncIterator[bytes]) -> list[bytes]:
    return [line async for line in lines]


# --- a raw HTTP/1.1 server for answers the API double never gives -----------------------------------

Handler = Callable[[int, bytes, asyncio.StreamWriter], Awaitable[bool]]


class RawServer:
    """Reads requests (head + Content-Length body) and lets `handler(n, head, writer)` answer the
    n-th (1-based, over all connections); it returns False to close the connection after."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[bytes] = []  # request lines, in arrival order
        self.connections = 0
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task[Any]] = set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                self.requests.append(head.split(b"\r\n", 1)[0])
                if not await self.handler(len(self.requests), head, writer):
                    break
        except (asyncio.IncompleteReadError, asyncio.CancelledError, OSError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> RawServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def client(self, **kw: Any) -> HttpClient:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return HttpClient(ClientConfig(Cluster(f"http://127.0.0.1:{port}")), **kw)


OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


async def answer(writer: asyncio.StreamWriter, data: bytes) -> bool:
    writer.write(data)
    await writer.drain()
    return True


async def first_ok_then_silence(n: int, head: bytes, writer: asyncio.StreamWriter) -> bool:
    if n == 1:
        return await answer(writer, OK)
    await asyncio.sleep(3600)  # a server that stopped answering (the connection stays open)
    return False


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_a_read_timeout_on_a_reused_connection_is_not_retried(method: str) -> None:
    async with RawServer(first_ok_then_silence) as server:
        client = server.client(timeout=0.3)
        try:
            await client.request("GET", "/warm")
            with pytest.raises(TransportError, match="no answer within"):
                await client.request(method, "/b", body={"x": 1} if method == "POST" else None)
            # sent once: a timeout is no sign the server did not act on it
            assert server.requests == [b"GET /warm HTTP/1.1", f"{method} /b HTTP/1.1".encode()]
            assert server.connections == 1
        finally:
            await client.close()


async def test_a_post_whose_connection_was_reset_while_idle_is_sent_on_a_fresh_one() -> None:
    async def reset_after_first(n: int, head: bytes, writer: asyncio.StreamWriter) -> bool:
        await answer(writer, OK)
        if n == 1:  # RST instead of FIN: the client's next write on it fails
            writer.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        return True

    async with RawServer(reset_after_first) as server:
        client = server.client(timeout=5)
        try:
            await client.request("GET", "/warm")
            await asyncio.sleep(0.2)  # the reset arrives while the connection is idle
            assert await client.request("POST", "/b", body={}) == {}
            # the write failed: the POST never left, so sending it again is safe
            assert server.requests == [b"GET /warm HTTP/1.1", b"POST /b HTTP/1.1"]
            assert server.connections == 2
        finally:
            await client.close()


async def test_interim_1xx_answers_are_skipped() -> None:
    async def continue_then(n: int, head: bytes, writer: asyncio.StreamWriter) -> bool:
        interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n"
        if b"watch" in head:
            return await answer(writer, interim + b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                b"b\r\n{\"type\":1}\n\r\nb\r\n{\"type\":2}\n\r\n0\r\n\r\n")
        return await answer(writer, interim + b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n{\"a\": 1}")

    async with RawServer(continue_then) as server:
        client = server.client(timeout=5)
        try:
            assert await client.request("GET", "/x") == {"a": 1}
            assert await client.request("GET", "/y") == {"a": 1}  # and the connection is reusable
            assert server.connections == 1
            lines = [line async for line in client.stream_lines("/w", params={"watch": 1}, read_timeout=5)]
            assert lines == [b'{"type":1}', b'{"type":2}']
        finally:
            await client.close()


async def test_a_success_that_is_not_json_is_a_transport_error_saying_what_came() -> None:
    async def html(n: int, head: bytes, writer: asyncio.StreamWriter) -> bool:
        page = b"<html><body>Please log in to the proxy</body></html>"
        return await answer(writer, b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                            b"Content-Length: %d\r\n\r\n%s" % (len(page), page))

    async with RawServer(html) as server:
        client = server.client(timeout=5)
        try:
            with pytest.raises(TransportError) as info:
                await client.request("GET", "/api/v1/namespaces")
        finally:
            await client.close()
    text = describe(info.value)
    assert "text/html" in text and "<html><body>Please log in" in text and "/api/v1/namespaces" in text
    assert is_transient(info.value)


async def test_waiting_for_a_free_connection_is_bounded_by_the_timeout() -> None:
    async def trickle(n: int, head: bytes, writer: asyncio.StreamWriter) -> bool:
        if n > 1:
            return await answer(writer, OK)
        # a slow but live answer: never a read timeout, but the only connection stays busy
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n\"")
        for _ in range(38):
            await asyncio.sleep(0.1)
            writer.write(b"x")
        return await answer(writer, b"\"")

    async with RawServer(trickle) as server:
        client = server.client(timeout=0.5, max_connections=1)
        try:
            busy = asyncio.create_task(client.request("GET", "/slow"))
            await asyncio.sleep(0.1)
            with pytest.raises(TransportError, match="no free connection"):
                await client.request("GET", "/queued")
            assert server.requests == [b"GET /slow HTTP/1.1"]
            assert await asyncio.wait_for(busy, 10) == "x" * 38  # the busy one is unaffected
            assert await client.request("GET", "/after") == {}
        finally:
            await client.close()


async def test_a_request_h11_refuses_to_send_is_a_named_non_transient_error(tmp_path: Path) -> None:
    async with RawServer(lambda n, head, writer: answer(writer, OK)) as server:
        client = server.client(timeout=5)
        try:
            await client.request("GET", "/warm")  # the next request would reuse the connection
            with pytest.raises(InvalidRequest, match="Illegal target") as info:
                await client.request("GET", "/a name with spaces")
            assert not is_transient(info.value)
            client.credentials._token = "line1\nline2"  # a token file with two lines
            with pytest.raises(InvalidRequest, match="header value of Authorization") as info:
                await client.request("GET", "/ok")
            assert not is_transient(info.value) and "line1" not in str(info.value)  # no credential
            with pytest.raises(InvalidRequest, match="header value"):
                await anext(client.stream_lines("/w", read_timeout=5))
            assert server.requests == [b"GET /warm HTTP/1.1"]  # nothing malformed left, no retry
            assert server.connections == 1
        finally:
            await client.close()


# --- kubeconfig details -----------------------------------------------------------------------------


def test_base64_data_wrapped_over_lines_is_accepted(pki: Pki, tmp_path: Path) -> None:
    encoded = b64(pki.ca.cert)
    wrapped = "\r\n".join(encoded[i:i + 64] for i in range(0, len(encoded), 64)) + "\n"
    path = write_kubeconfig(tmp_path / "kc", "https://127.0.0.1:6443",
                            cluster={"certificate-authority-data": wrapped})
    assert kube_config.load_config(path).cluster.ca_data == pki.ca.cert
    path = write_kubeconfig(tmp_path / "kc", "https://127.0.0.1:6443",
                            cluster={"certificate-authority-data": encoded[:-5] + "*" + encoded[-4:]})
    with pytest.raises(KubeConfigError, match="certificate-authority-data: not valid base64"):
        kube_config.load_config(path)


@pytest.mark.parametrize("server", ["https://127.0.0.1:99999", "https://127.0.0.1:port"])
def test_an_invalid_server_port_is_a_config_error_naming_the_server(tmp_path: Path, server: str) -> None:
    path = write_kubeconfig(tmp_path / "kc", server)
    with pytest.raises(KubeConfigError, match=re.escape(server)):
        Kube.from_config(path)


# --- unsupported configuration ----------------------------------------------------------------------


@pytest.mark.parametrize("plugin", ["exec", "auth-provider"])
def test_plugin_users_are_refused_by_name(tmp_path: Path, plugin: str) -> None:
    path = write_kubeconfig(tmp_path / "kc", "https://127.0.0.1:6443",
                            user={plugin: {"command": "aws", "apiVersion": "v1"}})
    with pytest.raises(KubeConfigError, match=f"'{plugin}'.*not support"):
        kube_config.load_config(path)


def test_unknown_context_is_named(tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "kc", "https://127.0.0.1:6443")
    with pytest.raises(KubeConfigError, match="'nope' not found"):
        kube_config.load_config(path, context="nope")
