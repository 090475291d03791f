"""The ONVIF SOAP client over real HTTP on loopback: answers from a fake camera (with digest
authentication) and from hostile servers (huge, compressed, garbled, silent), each a SoapError
with its counter key, never a hang."""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import socket

import pytest
from aiohttp import web

from akri.discovery.handlers.onvif.client import OnvifClient
from akri.discovery.handlers.onvif.credentials import Credential
from akri.discovery.handlers.onvif.soap import NetworkInfo, SoapError
from akri.testing.onvif_camera import FakeCamera, network_interfaces_response

pytestmark = pytest.mark.slow


@pytest.fixture
async def fake_camera():
    cam = FakeCamera(host="127.0.0.1", discovery_bind=("127.0.0.1", 0), multicast=False,
                     username="admin", password="pw", clock_skew=dt.timedelta(minutes=30))
    await cam.start()
    yield cam
    await cam.stop()


async def test_calls_against_a_camera(fake_camera):
    cam = fake_camera
    async with OnvifClient() as client:
        camera_time = await client.get_system_date_and_time(cam.xaddr)
        offset = camera_time - dt.datetime.now(dt.UTC)
        assert dt.timedelta(minutes=29) < offset < dt.timedelta(minutes=31)
        creds = Credential("admin", "pw")
        assert await client.get_network_interfaces(cam.xaddr, creds, clock_offset=offset) == \
            NetworkInfo("127.0.0.1", cam.mac_address)
        info = await client.get_device_information(cam.xaddr, creds, clock_offset=offset)
        assert (info.manufacturer, info.model) == ("Akri", "FakeCamera")
        # our clock is 30 minutes off the camera's: the camera refuses the token
        with pytest.raises(SoapError) as err:
            await client.get_device_information(cam.xaddr, creds)
        assert err.value.reason == "http-status" and err.value.status == 400
        assert "NotAuthorized" in str(err.value)
        with pytest.raises(SoapError):
            await client.get_network_interfaces(cam.xaddr, Credential("admin", "nope"), clock_offset=offset)
        assert client.stats.soap_calls == 5 and client.stats.soap_failed["http-status"] == 2
    assert [c.error for c in cam.calls[1:]] == [None, None, cam.calls[3].error, "wrong password digest"]
    assert "too far" in cam.calls[3].error


async def serve(handler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/onvif/device_service", handler)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/onvif/device_service"


async def huge_streamed(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()  # chunked, no Content-Length
    await resp.prepare(request)
    for _ in range(200):
        await resp.write(b"A" * 16384)
    return resp


async def gzip_bomb(request: web.Request) -> web.Response:
    body = gzip.compress(b"<" + b"0" * 20_000_000)
    return web.Response(body=body, headers={"Content-Encoding": "gzip"})


async def huge_declared(request: web.Request) -> web.Response:
    return web.Response(body=b"A" * 600_000)


async def redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("http://192.0.2.1/elsewhere")


async def silent(request: web.Request) -> web.Response:
    await asyncio.sleep(30)
    return web.Response(body=network_interfaces_response("10.0.0.1", "m"))


@pytest.mark.parametrize(("handler", "reason"), [
    (huge_streamed, "oversized"),
    (huge_declared, "oversized"),
    (gzip_bomb, "malformed"),      # never decompressed: its bytes are not XML
    (redirect, "http-status"),     # not followed
    (silent, "timeout"),
])
async def test_hostile_http_answers(handler, reason):
    runner, url = await serve(handler)
    try:
        async with OnvifClient(timeout=0.5) as client:
            with pytest.raises(SoapError) as err:
                await client.get_network_interfaces(url)
            assert err.value.reason == reason
            assert client.stats.soap_failed[reason] == 1
    finally:
        await runner.cleanup()


async def raw_server(reply: bytes) -> tuple[asyncio.AbstractServer, str]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        writer.write(reply)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/onvif/device_service"


@pytest.mark.parametrize("reply", [
    b"NOT HTTP AT ALL\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n<s:Envelope",          # cut short
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nxx\r\n",  # bad chunk size
    b"",                                                                     # closed at once
])
async def test_garbled_http(reply):
    server, url = await raw_server(reply)
    try:
        async with OnvifClient(timeout=2.0) as client:
            with pytest.raises(SoapError) as err:
                await client.get_system_date_and_time(url)
            assert err.value.reason in ("malformed", "connection")
    finally:
        server.close()
        await server.wait_closed()


async def test_connection_refused_and_bad_urls():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    async with OnvifClient() as client:
        with pytest.raises(SoapError) as err:
            await client.get_system_date_and_time(f"http://127.0.0.1:{port}/onvif/device_service")
        assert err.value.reason == "connection"
        with pytest.raises(SoapError):
            await client.get_system_date_and_time("http://[::1/bad")
