"""The webhook's HTTPS server: `POST /validate` (AdmissionReview), `GET /healthz`.

aiohttp over an `ssl.SSLContext` limited to TLS 1.2+ with forward-secret AEAD ciphers (what
upstream's "Mozilla intermediate" profile amounts to). The certificate files are re-read when
they change on disk, so a rotated Secret is picked up without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from pathlib import Path

from aiohttp import web

from akri.webhook import admission

log = logging.getLogger(__name__)

# Kubernetes objects are at most ~1.5 MiB; a review carries the object and the old object.
MAX_BODY = 8 * 1024 * 1024
# Mozilla "intermediate" TLS 1.2 suites (TLS 1.3 suites are always on in OpenSSL).
INTERMEDIATE_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384"
)
RELOAD_INTERVAL = 30.0


def make_ssl_context(crt_file: str | os.PathLike[str], key_file: str | os.PathLike[str]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(INTERMEDIATE_CIPHERS)
    try:
        ctx.load_cert_chain(str(crt_file), str(key_file))
    except ssl.SSLError as e:
        raise ValueError(f"{crt_file}, {key_file}: not a PEM certificate and its private key ({e})") from None
    return ctx


def make_app(validator: admission.Validator | None = None) -> web.Application:
    validate_fn = validator or admission._default_validator

    async def validate(request: web.Request) -> web.Response:
        body = await request.read()
        answer = admission.handle(body, validate_fn)
        return web.Response(status=answer.status, body=answer.body, content_type=answer.content_type)

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post("/validate", validate)
    app.router.add_get("/healthz", healthz)
    return app


class CertReloader:
    """Reload the certificate into `ctx` when either file changes (new handshakes use it).

    The files' state is noted at construction, i.e. when the context was loaded from them, so a
    change made before `run()` gets going is not missed.
    """

    def __init__(self, ctx: ssl.SSLContext, crt_file: Path, key_file: Path) -> None:
        self.ctx = ctx
        self.crt_file = Path(crt_file)
        self.key_file = Path(key_file)
        self.reloads = 0
        self._last = self._stamp()

    def _stamp(self) -> tuple[float, int, float, int] | None:
        try:
            crt, key = self.crt_file.stat(), self.key_file.stat()
        except OSError:
            return None
        return (crt.st_mtime, crt.st_ino, key.st_mtime, key.st_ino)

    def check(self) -> bool:
        """Reload if the files changed; True when a new certificate was loaded."""
        now = self._stamp()
        if now is None or now == self._last:
            return False
        try:
            self.ctx.load_cert_chain(str(self.crt_file), str(self.key_file))
        except (OSError, ssl.SSLError) as e:
            # a half-written pair during rotation: keep serving the old one, try again later
            log.warning("could not reload certificate %s: %s", self.crt_file, e)
            return False
        self._last = now
        self.reloads += 1
        log.info("reloaded certificate %s", self.crt_file)
        return True

    async def run(self, interval: float = RELOAD_INTERVAL) -> None:
        while True:
            await asyncio.sleep(interval)
            self.check()


class WebhookServer:
    """A running server; `await start()`, then `await stop()`."""

    def __init__(self, ssl_context: ssl.SSLContext, *, host: str = "0.0.0.0", port: int = 8443,
                 validator: admission.Validator | None = None) -> None:
        self.ssl_context = ssl_context
        self.host = host
        self.port = port
        self._runner = web.AppRunner(make_app(validator), access_log=None, handle_signals=False)
        self._site: web.TCPSite | None = None

    async def start(self) -> None:
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.ssl_context)
        await self._site.start()
        if self.port == 0:  # tests ask for any free port: report the one we got
            server = self._site._server
            if server is not None and server.sockets:  # type: ignore[union-attr]
                self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        log.info("webhook listening on https://%s:%d/validate", self.host, self.port)

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self._runner.cleanup()
