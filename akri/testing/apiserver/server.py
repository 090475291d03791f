"""Running the API double: in the test's event loop (`ApiServer`) or in a thread of its own
(`ApiServerThread`, for synchronous clients such as the official `kubernetes` package), plus the
kubeconfig that points clients at it.

With `tls=True` the double serves HTTPS as every real cluster does, with a server certificate for
its host (and localhost/127.0.0.1/::1) signed by a throwaway CA made at construction; the
kubeconfig carries that CA as `certificate-authority-data`, so clients verify the server as
they would a real one. The CA stays the same across `stop()`/`start()`.

Both keep their `Store` across `stop()`/`start()`, and `start()` after a `stop()` binds the same
port again: a test can take the API server away and bring it back with the same data, as a real
apiserver restart looks to clients.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from aiohttp import web

from ..certs import LOCAL_HOSTS, ServerPki, server_context
from .routes import ApiHandler
from .store import DEFAULT_HISTORY_SIZE, Store

T = TypeVar("T")

TOKEN = "akri-testing-token"


def kubeconfig_dict(url: str, *, namespace: str = "default", token: str = TOKEN,
                    ca_pem: bytes | None = None) -> dict[str, Any]:
    """A kubeconfig with a token user (lightkube's KubeConfig.from_server fails without a user);
    `ca_pem`: the CA that signed an https server's certificate."""
    cluster: dict[str, Any] = {"server": url}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode("ascii")
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "akri-testing", "cluster": cluster}],
        "users": [{"name": "akri-testing", "user": {"token": token}}],
        "contexts": [
            {
                "name": "akri-testing",
                "context": {"cluster": "akri-testing", "user": "akri-testing", "namespace": namespace},
            }
        ],
        "current-context": "akri-testing",
        "preferences": {},
    }


def write_kubeconfig(url: str, path: str | os.PathLike[str], *, namespace: str = "default",
                     ca_pem: bytes | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(kubeconfig_dict(url, namespace=namespace, ca_pem=ca_pem), sort_keys=False))
    tmp.replace(path)  # readers never see half a file
    return path


class ApiServer:
    """The API double served from the running event loop.

    ```python
    async with ApiServer() as api:
        config = KubeConfig.from_file(api.kubeconfig_path)
        ...
        api.store.get_object("instances", "my-instance", "default")
        await api.stop(); await api.start()   # same port, same data
    ```
    """

    def __init__(
        self,
        store: Store | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        bookmark_interval: float = 60.0,
        history_size: int = DEFAULT_HISTORY_SIZE,
        garbage_collection: bool = True,
        tls: bool | ServerPki = False,
    ) -> None:
        """`tls`: serve HTTPS, with a throwaway CA (True) or the given certificates."""
        self.store = store or Store(history_size=history_size, garbage_collection=garbage_collection)
        self.host = host
        self.port = port
        if tls is True:
            tls = ServerPki.for_hosts([*LOCAL_HOSTS, host], name="akri-testing-apiserver")
        self.pki: ServerPki | None = tls or None
        self._ssl = server_context(self.pki.server) if self.pki else None
        self.handler = ApiHandler(self.store, bookmark_interval=bookmark_interval)
        self._runner: web.AppRunner | None = None
        self._kubeconfig: Path | None = None
        self._own_kubeconfig = False

    @property
    def url(self) -> str:
        return f"{'https' if self.pki else 'http'}://{self.host}:{self.port}"

    @property
    def ca_pem(self) -> bytes | None:
        """The CA certificate (PEM) clients must trust, None when serving plain HTTP."""
        return self.pki.ca.cert if self.pki else None

    @property
    def running(self) -> bool:
        return self._runner is not None

    async def start(self) -> ApiServer:
        if self._runner is not None:
            return self
        # handler_cancellation: a watch whose client disconnected is cancelled, so its
        # subscription is dropped even if no event ever arrives for it.
        runner = web.AppRunner(
            self.handler.make_app(), handler_cancellation=True, access_log=None, shutdown_timeout=1.0
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True, ssl_context=self._ssl)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        server = site._server
        assert server is not None and server.sockets
        self.port = server.sockets[0].getsockname()[1]
        self._runner = runner
        return self

    async def stop(self) -> None:
        """Stop serving: open watches end (clients see the stream close), the port is released.
        The store and its history are kept for a later `start()`."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self.store.close_watches()
        await runner.cleanup()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    def kubeconfig(self, path: str | os.PathLike[str] | None = None, *, namespace: str = "default") -> Path:
        """Write a kubeconfig pointing at this server (to a temporary file when no path is given)."""
        if path is None:
            if self._kubeconfig is not None:
                return self._kubeconfig
            fd, name = tempfile.mkstemp(prefix="akri-apiserver-", suffix=".kubeconfig")
            os.close(fd)
            path, self._own_kubeconfig = name, True
            self._kubeconfig = write_kubeconfig(self.url, path, namespace=namespace, ca_pem=self.ca_pem)
            return self._kubeconfig
        return write_kubeconfig(self.url, path, namespace=namespace, ca_pem=self.ca_pem)

    @property
    def kubeconfig_path(self) -> Path:
        return self.kubeconfig()

    def kubeconfig_dict(self, *, namespace: str = "default") -> dict[str, Any]:
        return kubeconfig_dict(self.url, namespace=namespace, ca_pem=self.ca_pem)

    def _cleanup_kubeconfig(self) -> None:
        if self._own_kubeconfig and self._kubeconfig is not None:
            self._kubeconfig.unlink(missing_ok=True)
            self._kubeconfig, self._own_kubeconfig = None, False

    async def close(self) -> None:
        await self.stop()
        self._cleanup_kubeconfig()

    async def __aenter__(self) -> ApiServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class _LoopProxy:
    """Calls methods of an object on the loop that owns it, from another thread, and waits."""

    def __init__(self, target: Any, call: Callable[..., Any]) -> None:
        self._target = target
        self._call = call

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if callable(attr):
            return lambda *args, **kwargs: self._call(attr, *args, **kwargs)
        return attr


class ApiServerThread:
    """The API double on its own event loop in a daemon thread, for synchronous tests.

    ```python
    with ApiServerThread() as api:
        kubernetes.config.load_kube_config(config_file=str(api.kubeconfig_path))
        ...
        api.store.get_object("pods", "p", "default")   # runs on the server's loop
        api.stop(); api.start()                          # same port, same data
    ```
    """

    def __init__(self, store: Store | None = None, **kwargs: Any) -> None:
        self._store = store
        self._kwargs = kwargs
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: ApiServer | None = None

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                self._server = ApiServer(self._store, **self._kwargs)
                ready.set_result(None)
            except BaseException as e:
                ready.set_exception(e)
                return
            try:
                loop.run_forever()
                loop.run_until_complete(self._server.close())
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="akri-apiserver", daemon=True)
        self._thread.start()
        ready.result(timeout=30)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(*args, **kwargs)` (a coroutine function or a plain one) on the server's loop."""
        assert self._loop is not None, "not started"
        if asyncio.iscoroutinefunction(fn):
            return asyncio.run_coroutine_threadsafe(fn(*args, **kwargs), self._loop).result(timeout=60)
        result: concurrent.futures.Future[T] = concurrent.futures.Future()

        def invoke() -> None:
            try:
                result.set_result(fn(*args, **kwargs))
            except BaseException as e:
                result.set_exception(e)

        self._loop.call_soon_threadsafe(invoke)
        return result.result(timeout=60)

    @property
    def server(self) -> ApiServer:
        assert self._server is not None, "not started"
        return self._server

    @property
    def store(self) -> Any:
        """The Store, with every method call run on the server's loop (thread-safe)."""
        return _LoopProxy(self.server.store, self.call)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def ca_pem(self) -> bytes | None:
        return self.server.ca_pem

    @property
    def kubeconfig_path(self) -> Path:
        return self.server.kubeconfig()

    def kubeconfig(self, path: str | os.PathLike[str] | None = None, *, namespace: str = "default") -> Path:
        return self.server.kubeconfig(path, namespace=namespace)

    def kubeconfig_dict(self, *, namespace: str = "default") -> dict[str, Any]:
        return self.server.kubeconfig_dict(namespace=namespace)

    def start(self) -> ApiServerThread:
        self._ensure_thread()
        self.call(self.server.start)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self.call(self.server.stop)

    def restart(self) -> None:
        self.call(self.server.restart)

    def close(self) -> None:
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._thread = None

    def __enter__(self) -> ApiServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
