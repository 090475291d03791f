"""The ONVIF handler in-process against fake cameras on loopback (spec §5.4): directed probes,
liveness, credentials, filters re-evaluated every round, Hello and Bye, bounded SOAP calls,
and hostile datagrams and answers skipped and counted."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket

import pytest
from aiohttp import web

from akri.discovery.handler import InvalidDetails
from akri.discovery.handlers.onvif import OnvifHandler
from akri.testing.onvif_camera import HOSTILE_DATAGRAMS, hello_message, probe_match_message

pytestmark = pytest.mark.slow

WAIT = 10.0  # generous: only guards against hanging

FAST = "discoveryTimeoutSeconds: 0.3\n"


def directed(*cameras) -> str:
    """directedProbes to loopback cameras (they listen on a random port, not 3702)."""
    return "[" + ", ".join(f"'127.0.0.1:{c.discovery_address[1]}'" for c in cameras) + "]"


async def test_directed_probe_finds_camera_with_properties(camera, open_stream):
    cam = await camera(mac_address="02:00:00:00:00:AA")
    stream = open_stream(FAST + f"directedProbes: {directed(cam)}")
    (device,) = await stream.next()
    assert device.id == f"{cam.xaddr}-{cam.uuid}"
    assert dict(device.properties) == {
        "ONVIF_DEVICE_SERVICE_URL": cam.xaddr,
        "ONVIF_DEVICE_UUID": cam.uuid,
        "ONVIF_DEVICE_IP_ADDRESS": "127.0.0.1",
        "ONVIF_DEVICE_MAC_ADDRESS": "02:00:00:00:00:AA",
    }
    assert stream.handler.shared is True
    assert [c.operation for c in cam.calls] == ["GetSystemDateAndTime", "GetNetworkInterfaces"]
    assert stream.handler.stats.probes_sent >= 1 and stream.handler.stats.probe_matches >= 1


async def test_nothing_answers_gives_an_empty_list(open_stream):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        stream = open_stream(FAST + f"directedProbes: ['127.0.0.1:{silent.getsockname()[1]}']")
        assert await stream.next() == []


async def test_invalid_details_fail_the_stream(open_stream):
    stream = open_stream("directedProbes: ['10.0.0.1:0']")
    with pytest.raises(InvalidDetails) as err:
        await stream.next()
    assert err.value.field == "directedProbes[0]"


@pytest.mark.parametrize("form", ["pair", "default", "list", "ref_list"])
async def test_credentials_sign_get_network_interfaces(camera, open_stream, form):
    cam = await camera(username="admin", password="s3cret")
    key = cam.uuid.replace("-", "_")
    properties = {
        "pair": {f"username_{key}": b"admin", f"password_{key}": b"s3cret"},
        "default": {"username_default": b"admin", "password_default": b"s3cret"},
        "list": {"device_credential_list": b'["creds"]',
                 "creds": f'{{"{cam.uuid}": {{"username": "admin", "password": "czNjcmV0", '
                          f'"base64encoded": true}}}}'.encode()},
        "ref_list": {"device_credential_ref_list": b'["refs"]',
                     "refs": f'{{"{cam.uuid}": {{"username_ref": "u", "password_ref": "p"}}}}'.encode(),
                     "u": b"admin", "p": b"s3cret"},
    }[form]
    stream = open_stream(FAST + f"directedProbes: {directed(cam)}", properties)
    (device,) = await stream.next()
    assert device.properties["ONVIF_DEVICE_IP_ADDRESS"] == "127.0.0.1"
    interfaces_calls = [c for c in cam.calls if c.operation == "GetNetworkInterfaces"]
    assert interfaces_calls and all(c.authenticated and c.error is None for c in interfaces_calls)


async def test_without_or_with_wrong_credentials_ip_and_mac_are_unknown(camera, open_stream):
    cam = await camera(username="admin", password="s3cret")
    for properties in ({}, {"username_default": b"admin", "password_default": b"wrong"}):
        stream = open_stream(FAST + f"directedProbes: {directed(cam)}", properties)
        (device,) = await stream.next()  # alive, so reported, but without the unknown values
        assert set(device.properties) == {"ONVIF_DEVICE_SERVICE_URL", "ONVIF_DEVICE_UUID"}
        assert stream.handler.stats.soap_failed["http-status"] == 1
    assert cam.calls[-1].error == "wrong password digest"


async def test_token_uses_the_camera_clock(camera, open_stream):
    # a camera whose clock is two hours ahead rejects tokens created by our clock
    cam = await camera(username="admin", password="pw", clock_skew=dt.timedelta(hours=2))
    stream = open_stream(FAST + f"directedProbes: {directed(cam)}",
                         {"username_default": b"admin", "password_default": b"pw"})
    (device,) = await stream.next()
    assert device.properties["ONVIF_DEVICE_MAC_ADDRESS"] == cam.mac_address
    assert [c.error for c in cam.calls if c.operation == "GetNetworkInterfaces"] == [None]


async def test_camera_that_wants_a_token_for_every_call(camera, open_stream):
    # ONVIF says GetSystemDateAndTime needs no credentials; some cameras want them anyway
    cam = await camera(username="admin", password="pw", protect_clock=True)
    stream = open_stream(FAST + f"directedProbes: {directed(cam)}")
    assert await stream.next() == []  # no credentials: it looks dead, as upstream
    stream = open_stream(FAST + f"directedProbes: {directed(cam)}",
                         {"username_default": b"admin", "password_default": b"pw"})
    (device,) = await stream.next()
    assert device.properties["ONVIF_DEVICE_MAC_ADDRESS"] == cam.mac_address
    assert [(c.operation, c.authenticated, c.error) for c in cam.calls[-3:]] == [
        ("GetSystemDateAndTime", False, "no UsernameToken"),
        ("GetSystemDateAndTime", True, None),
        ("GetNetworkInterfaces", True, None),
    ]


async def two_cameras(camera):
    a = await camera(scopes=("onvif://www.onvif.org/name/CamA", "onvif://www.onvif.org/type/video_encoder"),
                     mac_address="02:00:00:00:00:aa", ip_address="10.250.9.1")
    b = await camera(scopes=("onvif://www.onvif.org/name/CamB",), mac_address="02:00:00:00:00:bb",
                     ip_address="10.250.9.3", username="admin", password="pw")
    return a, b


@pytest.mark.parametrize(("filters", "credentials", "kept"), [
    ("scopes: {items: [onvif://www.onvif.org/name/CamA]}", True, "a"),
    ("scopes: {items: [onvif://www.onvif.org/name/CamA], action: Exclude}", True, "b"),
    ("scopes: {items: [onvif://www.onvif.org/name/cama]}", True, ""),       # scopes are case-sensitive
    ("scopes: {items: [onvif://www.onvif.org/name]}", True, ""),            # whole tokens only
    ("uuids: {items: [UUID_B_UPPER]}", True, "b"),                           # uuids are not
    ("uuids: {items: [UUID_B_UPPER], action: Exclude}", True, "a"),
    ("ipAddresses: {items: [10.250.9.1]}", True, "a"),
    ("ipAddresses: {items: [10.250.9.1], action: Exclude}", True, "b"),
    ("macAddresses: {items: ['02:00:00:00:00:BB']}", True, "b"),             # MACs are not
    ("macAddresses: {items: ['02:00:00:00:00:BB'], action: Exclude}", True, "a"),
    ("macAddresses: {items: [], action: Exclude}", False, "ab"),             # Exclude [] keeps all
    ("macAddresses: {items: [], action: Include}", True, ""),                # Include [] keeps none
    # without credentials camera B's addresses are unknown: any other list filters it out
    ("ipAddresses: {items: [10.0.0.99], action: Exclude}", False, "a"),
    ("macAddresses: {items: ['02:00:00:00:00:AA']}", False, "a"),
])
async def test_filters(camera, open_stream, filters, credentials, kept):
    a, b = await two_cameras(camera)
    filters = filters.replace("UUID_B_UPPER", b.uuid.upper())
    properties = {"username_default": b"admin", "password_default": b"pw"} if credentials else {}
    stream = open_stream(FAST + f"directedProbes: {directed(a, b)}\n{filters}", properties)
    devices = await stream.next()
    expected = {cam.device_id for name, cam in (("a", a), ("b", b)) if name in kept}
    assert {d.id for d in devices} == expected


async def test_filters_are_evaluated_every_round(camera, open_stream):
    cam = await camera(mac_address="02:00:00:00:00:01")
    stream = open_stream(FAST + f"directedProbes: {directed(cam)}\ndiscoveryIntervalSeconds: 0.5\n"
                         "macAddresses: {items: ['02:00:00:00:00:01']}")
    assert [d.id for d in await stream.next()] == [cam.device_id]
    cam.mac_address = "02:00:00:00:00:02"  # the camera's network card changed
    assert await stream.next() == []
    cam.mac_address = "02:00:00:00:00:01"  # and back: a filtered-out camera is not forgotten
    assert [d.id for d in await stream.next()] == [cam.device_id]


async def test_camera_that_stops_answering_is_dropped_at_the_next_round(camera, open_stream):
    cam = await camera()
    stream = open_stream(FAST + f"directedProbes: {directed(cam)}\ndiscoveryIntervalSeconds: 0.5")
    assert len(await stream.next()) == 1
    await cam.go_offline()
    assert await stream.next() == []


async def test_slow_camera_does_not_stall_the_round(camera, open_stream):
    slow = await camera(answer_delay=30.0)  # far beyond WAIT: a stalled round would time the test out
    good = await camera()
    stream = open_stream(FAST + f"directedProbes: {directed(slow, good)}")
    assert [d.id for d in await stream.next()] == [good.device_id]
    assert stream.handler.stats.soap_failed["timeout"] >= 1


async def test_hello_reports_at_once_and_bye_removes_at_once(camera, open_stream):
    cam = await camera()
    stream = open_stream(FAST + "discoveryIntervalSeconds: 600")  # no second round within the test
    assert await stream.next() == []
    listener = stream.handler.listener.address
    await cam.hello(to=listener)
    assert [d.id for d in await stream.next()] == [cam.device_id]
    await cam.bye(to=listener)
    assert await stream.next() == []
    assert stream.handler.stats.hellos >= 1 and stream.handler.stats.byes >= 1
    # the Hello was sent twice (SOAP-over-UDP); the camera was checked once
    assert [c.operation for c in cam.calls].count("GetSystemDateAndTime") == 1


async def test_hello_without_xaddrs_is_answered_by_a_directed_probe(camera, open_stream):
    # the camera says Hello from its discovery socket without saying where its service is;
    # the handler asks it with a directed probe to the Hello's source
    cam = await camera(announce_xaddrs=False)
    stream = open_stream(FAST + "discoveryIntervalSeconds: 600")
    assert await stream.next() == []
    await cam.hello(to=stream.handler.listener.address)
    assert [d.id for d in await stream.next()] == [cam.device_id]
    assert cam.probes_answered >= 1


async def test_hello_from_another_kind_of_device_is_ignored(camera, open_stream):
    cam = await camera()
    stream = open_stream(FAST + "discoveryIntervalSeconds: 600")
    assert await stream.next() == []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(hello_message("urn:uuid:printer", [cam.xaddr], [], types="wsdp:Device pub:Computer"),
                 stream.handler.listener.address)
        s.sendto(hello_message(cam.address, [cam.xaddr], cam.scopes), stream.handler.listener.address)
    assert [d.id for d in await stream.next()] == [cam.device_id]  # the camera's, not the printer's
    assert [c.operation for c in cam.calls].count("GetSystemDateAndTime") == 1


async def test_garbage_to_the_listener_is_skipped_and_counted(camera, open_stream):
    cam = await camera()
    stream = open_stream(FAST + "discoveryIntervalSeconds: 600")
    assert await stream.next() == []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for data, _ in HOSTILE_DATAGRAMS.values():
            s.sendto(data, stream.handler.listener.address)
    await cam.hello(to=stream.handler.listener.address)  # still listening after the garbage
    assert [d.id for d in await stream.next()] == [cam.device_id]
    assert sum(stream.handler.stats.skipped.values()) == len(HOSTILE_DATAGRAMS)


class GarbageResponder(asyncio.DatagramProtocol):
    """Answers every probe with every hostile datagram, then a valid ProbeMatch for `xaddr`."""

    def __init__(self, address: str, xaddr: str) -> None:
        self.address, self.xaddr = address, xaddr

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        for garbage, _ in HOSTILE_DATAGRAMS.values():
            self.transport.sendto(garbage, addr)
        self.transport.sendto(probe_match_message(self.address, [self.xaddr], [], "uuid:x"), addr)


async def test_garbage_answers_to_probes_are_skipped_and_counted(camera, open_stream):
    cam = await camera()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: GarbageResponder(cam.address, cam.xaddr),
                                                       local_addr=("127.0.0.1", 0))
    try:
        port = transport.get_extra_info("sockname")[1]
        stream = open_stream(FAST + f"directedProbes: ['127.0.0.1:{port}']")
        assert [d.id for d in await stream.next()] == [cam.device_id]
        skipped = stream.handler.stats.skipped
        assert sum(skipped.values()) >= len(HOSTILE_DATAGRAMS)
        assert {"malformed", "unsafe", "oversized", "wrong-namespace", "invalid"} <= set(skipped)
    finally:
        transport.close()


async def hostile_service(body: bytes, status: int = 200, **headers: str) -> web.AppRunner:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(status=status, body=body, headers=headers)

    app = web.Application()
    app.router.add_post("/onvif/device_service", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


@pytest.mark.parametrize(("body", "reason"), [
    (HOSTILE_DATAGRAMS["billion-laughs"][0], "unsafe"),
    (HOSTILE_DATAGRAMS["truncated"][0], "malformed"),
    (b"<x>" + b"A" * 400_000 + b"</x>", "oversized"),
    (HOSTILE_DATAGRAMS["wrong-envelope-namespace"][0], "wrong-namespace"),
])
async def test_hostile_device_service_is_skipped_and_counted(camera, open_stream, body, reason):
    good = await camera()
    runner = await hostile_service(body)
    try:
        port = runner.addresses[0][1]
        hostile_xaddr = f"http://127.0.0.1:{port}/onvif/device_service"
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Answer(probe_match_message("urn:uuid:bad", [hostile_xaddr], [], "uuid:x")),
            local_addr=("127.0.0.1", 0))
        try:
            port = transport.get_extra_info("sockname")[1]
            stream = open_stream(FAST + f"directedProbes: ['127.0.0.1:{port}', "
                                        f"'127.0.0.1:{good.discovery_address[1]}']")
            assert [d.id for d in await stream.next()] == [good.device_id]
            assert stream.handler.stats.soap_failed[reason] >= 1
        finally:
            transport.close()
    finally:
        await runner.cleanup()


class _Answer(asyncio.DatagramProtocol):
    def __init__(self, answer: bytes) -> None:
        self.answer = answer

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(self.answer, addr)


async def test_listener_that_cannot_bind_falls_back_to_probes(camera, open_stream):
    cam = await camera()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:  # no SO_REUSEPORT: exclusive
        taken.bind(("127.0.0.1", 0))
        stream = open_stream(FAST + f"directedProbes: {directed(cam)}",
                             announcement_address=taken.getsockname())
        assert [d.id for d in await stream.next()] == [cam.device_id]
        assert stream.handler.listener.error and "cannot listen" in stream.handler.listener.error


async def test_announcements_can_be_switched_off(monkeypatch):
    monkeypatch.setenv("AKRI_ONVIF_ANNOUNCEMENTS", "off")
    assert OnvifHandler().listener is None
    monkeypatch.setenv("AKRI_ONVIF_ANNOUNCEMENTS", "maybe")
    from akri.discovery.handler import HandlerSetupError

    with pytest.raises(HandlerSetupError, match="AKRI_ONVIF_ANNOUNCEMENTS"):
        OnvifHandler()


async def test_two_streams_share_one_listener(camera, open_stream):
    cam = await camera()
    first = open_stream(FAST + "discoveryIntervalSeconds: 600")
    handler = first.handler
    second = open_stream(FAST + f"discoveryIntervalSeconds: 600\nuuids: {{items: [{cam.uuid}]}}",
                         handler=handler)
    assert await first.next() == [] and await second.next() == []
    await cam.hello(to=handler.listener.address)  # one socket, both streams hear it
    assert [d.id for d in await first.next()] == [cam.device_id]
    assert [d.id for d in await second.next()] == [cam.device_id]
    await asyncio.wait_for(second.close(), WAIT)
    assert handler.listener.listening  # the first stream still uses it
    await asyncio.wait_for(first.close(), WAIT)
    assert not handler.listener.listening



async def test_with_an_ip_include_list_credentials_go_only_to_listed_hosts(camera, open_stream):
    # an impostor on 127.0.0.2 announces the real camera's UUID; the operator listed only the
    # real camera's address, so the impostor never sees a token (and the filter drops it)
    real = await camera(username="admin", password="pw", mac_address="02:00:00:00:00:aa")
    impostor = await camera(host="127.0.0.2", uuid=real.uuid, username="admin", password="pw")
    stream = open_stream(FAST + f"directedProbes: {directed(real, impostor)}\n"
                         "ipAddresses: {items: ['127.0.0.1']}",
                         {"username_default": b"admin", "password_default": b"pw"})
    (device,) = await stream.next()
    assert device.id == real.device_id
    assert device.properties["ONVIF_DEVICE_MAC_ADDRESS"] == "02:00:00:00:00:aa"
    assert any(c.authenticated for c in real.calls)
    assert impostor.calls and not any(c.authenticated for c in impostor.calls)
    assert stream.handler.stats.credentials_withheld >= 1


async def test_without_an_ip_include_list_credentials_go_as_upstream(camera, open_stream):
    cam = await camera(host="127.0.0.2", username="admin", password="pw", mac_address="02:00:00:00:00:bb")
    stream = open_stream(FAST + f"directedProbes: {directed(cam)}",
                         {"username_default": b"admin", "password_default": b"pw"})
    (device,) = await stream.next()
    assert device.properties["ONVIF_DEVICE_MAC_ADDRESS"] == "02:00:00:00:00:bb"
    assert stream.handler.stats.credentials_withheld == 0
