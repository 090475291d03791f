"""A fake ONVIF camera: WS-Discovery responder (Probe -> ProbeMatch, Hello, Bye) and an ONVIF
device service (GetSystemDateAndTime, GetNetworkInterfaces, GetDeviceInformation) with
WS-UsernameToken PasswordDigest authentication. Stdlib + aiohttp, no video.

For trying the ONVIF discovery handler without a camera, and for its tests. In-process::

    camera = FakeCamera(host="127.0.0.1", discovery_bind=("127.0.0.1", 0), multicast=False)
    await camera.start()          # camera.xaddr, camera.discovery_address
    await camera.hello(to=(host, port)); await camera.bye(); await camera.stop()

As a process (in a network namespace of its own, where multicast is safe)::

    python -m akri.testing.onvif_camera --host 10.250.1.1 --http-port 8080 [--username U --password P]

It prints JSON lines (`{"event": "ready", "xaddr": ..., "uuid": ...}`, then one per Hello, Bye
and answered Probe, with a CLOCK_MONOTONIC time `t`) and reads commands on stdin, one a line:
`hello`, `bye` (say Bye and go offline), `down` (go offline silently), `up` (come back
without a Hello), `garbage HOST PORT` (send every hostile datagram of HOSTILE_DATAGRAMS
there), `quit`.

Multicast (Hello/Bye to 239.255.255.250:3702 and joining the group to hear probes) is on only
with `multicast=True`; use it only inside a network namespace of your own.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import socket
import struct
import sys
import time
import uuid as uuid_module
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from akri.discovery.handlers.onvif.soap import DEVICE_WSDL, SOAP12, WSSE, WSU
from akri.discovery.handlers.onvif.wsdiscovery import (
    MULTICAST_GROUP,
    NETWORK_WSDL,
    PORT,
    WSA,
    WSD,
    BadMessage,
    parse_message,
)
from akri.discovery.handlers.onvif.xmlsafe import XmlRejected, child, escape, local_name, parse_xml, text

TT = "http://www.onvif.org/ver10/schema"
TER = "http://www.onvif.org/ver10/error"
ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
TOKEN_FRESHNESS = dt.timedelta(minutes=5)


def _envelope(header: str, body: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<s:Envelope xmlns:s="{SOAP12}" xmlns:a="{WSA}" xmlns:d="{WSD}" xmlns:dn="{NETWORK_WSDL}" '
        f'xmlns:tds="{DEVICE_WSDL}" xmlns:tt="{TT}" xmlns:ter="{TER}">'
        f"<s:Header>{header}</s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def _addressing(action: str, *, to: str, relates_to: str | None = None) -> str:
    relates = f"<a:RelatesTo>{escape(relates_to)}</a:RelatesTo>" if relates_to else ""
    return (f"<a:MessageID>uuid:{uuid_module.uuid4()}</a:MessageID>{relates}<a:To>{to}</a:To>"
            f"<a:Action>{WSD}/{action}</a:Action>")


def probe_match_message(address: str, xaddrs: Sequence[str], scopes: Sequence[str], relates_to: str,
                        types: str = "dn:NetworkVideoTransmitter tds:Device") -> bytes:
    match = (f"<d:ProbeMatch><a:EndpointReference><a:Address>{escape(address)}</a:Address>"
             f"</a:EndpointReference><d:Types>{types}</d:Types>"
             f"<d:Scopes>{escape(' '.join(scopes))}</d:Scopes><d:XAddrs>{escape(' '.join(xaddrs))}</d:XAddrs>"
             "<d:MetadataVersion>1</d:MetadataVersion></d:ProbeMatch>")
    return _envelope(_addressing("ProbeMatches", to=ANONYMOUS, relates_to=relates_to),
                     f"<d:ProbeMatches>{match}</d:ProbeMatches>")


def hello_message(address: str, xaddrs: Sequence[str], scopes: Sequence[str],
                  types: str = "dn:NetworkVideoTransmitter tds:Device") -> bytes:
    xaddrs_element = f"<d:XAddrs>{escape(' '.join(xaddrs))}</d:XAddrs>" if xaddrs else ""
    hello = (f"<d:Hello><a:EndpointReference><a:Address>{escape(address)}</a:Address></a:EndpointReference>"
             f"<d:Types>{types}</d:Types><d:Scopes>{escape(' '.join(scopes))}</d:Scopes>{xaddrs_element}"
             "<d:MetadataVersion>1</d:MetadataVersion></d:Hello>")
    return _envelope(_addressing("Hello", to="urn:schemas-xmlsoap-org:ws:2005:04:discovery"), hello)


def bye_message(address: str) -> bytes:
    bye = (f"<d:Bye><a:EndpointReference><a:Address>{escape(address)}</a:Address>"
           "</a:EndpointReference></d:Bye>")
    return _envelope(_addressing("Bye", to="urn:schemas-xmlsoap-org:ws:2005:04:discovery"), bye)


def _hostile() -> dict[str, tuple[bytes, str]]:
    """name -> (datagram, the reason the handler must give for skipping it)."""
    valid = probe_match_message("urn:uuid:00000000-0000-4000-8000-000000000bad",
                                ["http://192.0.2.1/onvif/device_service"], [], "uuid:x")
    document = valid.split(b"?>", 1)[1]
    laughs = (b'<?xml version="1.0"?><!DOCTYPE s:Envelope [<!ENTITY a "aaaaaaaaaa">'
              + b"".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">'.encode()
                         for i in range(9))
              + b"]>" + document.replace(b"<d:Scopes></d:Scopes>", b"<d:Scopes>&j;</d:Scopes>"))
    external = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                + document.replace(b"<d:Scopes></d:Scopes>", b"<d:Scopes>&e;</d:Scopes>"))
    return {
        "empty": (b"", "malformed"),
        "binary": (bytes(range(256)) * 4, "malformed"),
        "truncated": (valid[: len(valid) // 2], "malformed"),
        "not-xml": (b"HELLO? I AM A CAMERA", "malformed"),
        "unbound-prefix": (valid.replace(b' xmlns:d="' + WSD.encode() + b'"', b""), "malformed"),
        "billion-laughs": (laughs, "unsafe"),
        "external-entity": (external, "unsafe"),
        "deep-nesting": (b"<a>" * 3000 + b"</a>" * 3000, "unsafe"),
        "oversized": (b"<x>" + b"A" * 60000 + b"</x>", "oversized"),
        "wrong-envelope-namespace": (valid.replace(SOAP12.encode(), b"urn:not-soap"), "wrong-namespace"),
        "wrong-discovery-namespace": (valid.replace(WSD.encode(), b"urn:not-discovery"), "wrong-namespace"),
        "no-body": (_envelope("", "").replace(b"<s:Body></s:Body>", b""), "invalid"),
        "no-endpoint-address": (valid.replace(b"<a:Address>urn:uuid:00000000-0000-4000-8000-000000000bad"
                                              b"</a:Address>", b""), "invalid"),
    }


HOSTILE_DATAGRAMS: dict[str, tuple[bytes, str]] = _hostile()


def network_interfaces_response(ip: str | None, mac: str | None) -> bytes:
    info = (f"<tt:Info><tt:Name>eth0</tt:Name><tt:HwAddress>{mac}</tt:HwAddress><tt:MTU>1500</tt:MTU>"
            "</tt:Info>" if mac else "")
    ipv4 = (f"<tt:IPv4><tt:Enabled>true</tt:Enabled><tt:Config><tt:Manual><tt:Address>{ip}</tt:Address>"
            "<tt:PrefixLength>24</tt:PrefixLength></tt:Manual><tt:DHCP>false</tt:DHCP></tt:Config></tt:IPv4>"
            if ip else "")
    return _envelope("", '<tds:GetNetworkInterfacesResponse><tds:NetworkInterfaces token="eth0">'
                         f"<tt:Enabled>true</tt:Enabled>{info}{ipv4}"
                         "</tds:NetworkInterfaces></tds:GetNetworkInterfacesResponse>")


def system_date_and_time_response(now: dt.datetime) -> bytes:
    return _envelope("", (
        "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>NTP</tt:DateTimeType>"
        "<tt:DaylightSavings>false</tt:DaylightSavings><tt:TimeZone><tt:TZ>UTC0</tt:TZ></tt:TimeZone>"
        f"<tt:UTCDateTime><tt:Time><tt:Hour>{now.hour}</tt:Hour><tt:Minute>{now.minute}</tt:Minute>"
        f"<tt:Second>{now.second}</tt:Second></tt:Time><tt:Date><tt:Year>{now.year}</tt:Year>"
        f"<tt:Month>{now.month}</tt:Month><tt:Day>{now.day}</tt:Day></tt:Date></tt:UTCDateTime>"
        "</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>"))


def device_information_response(manufacturer: str, model: str, firmware: str, serial: str,
                                hardware_id: str) -> bytes:
    return _envelope("", (
        f"<tds:GetDeviceInformationResponse><tds:Manufacturer>{escape(manufacturer)}</tds:Manufacturer>"
        f"<tds:Model>{escape(model)}</tds:Model><tds:FirmwareVersion>{escape(firmware)}</tds:FirmwareVersion>"
        f"<tds:SerialNumber>{escape(serial)}</tds:SerialNumber><tds:HardwareId>{escape(hardware_id)}"
        "</tds:HardwareId></tds:GetDeviceInformationResponse>"))


def fault_response(subcode: str, reason: str) -> bytes:
    return _envelope("", (
        "<s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>"
        f"{subcode}</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang=\"en\">{escape(reason)}"
        "</s:Text></s:Reason></s:Fault>"))


def check_username_token(header: Any, username: str, password: str, camera_now: dt.datetime) -> str | None:
    """None when the header carries a valid PasswordDigest token for username/password, else why not."""
    token = child(child(header, "Security"), "UsernameToken")
    if token is None:
        return "no UsernameToken"
    if token.find(f"{{{WSSE}}}Username") is None or token.find(f"{{{WSU}}}Created") is None:
        return "UsernameToken elements in the wrong namespace"
    if text(child(token, "Username")) != username:
        return "unknown user"
    password_element = child(token, "Password")
    if password_element is None or not password_element.get("Type", "").endswith("#PasswordDigest"):
        return "not a PasswordDigest"
    created = text(child(token, "Created"))
    try:
        nonce = base64.b64decode(text(child(token, "Nonce")), validate=True)
        when = dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return "bad Nonce or Created"
    if abs(when - camera_now) > TOKEN_FRESHNESS:
        return f"Created {created} is too far from the camera's clock {camera_now.isoformat()}"
    expected = base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode()).digest()).decode()
    if not hmac.compare_digest(expected, text(password_element)):
        return "wrong password digest"
    return None


@dataclass
class Call:
    operation: str
    authenticated: bool
    error: str | None = None


@dataclass
class FakeCamera:
    host: str = "127.0.0.1"                         # address of the device service (in the XAddr)
    http_port: int = 0
    uuid: str = field(default_factory=lambda: str(uuid_module.uuid4()))
    scopes: tuple[str, ...] = ("onvif://www.onvif.org/type/video_encoder",
                               "onvif://www.onvif.org/name/FakeCamera",
                               "onvif://www.onvif.org/location/lab")
    ip_address: str | None = None                   # reported by GetNetworkInterfaces (default: host)
    mac_address: str | None = "02:00:00:0a:fa:01"
    username: str | None = None                     # require a UsernameToken when set
    password: str = ""
    discovery_bind: tuple[str, int] = ("0.0.0.0", PORT)
    multicast: bool = True
    answer_delay: float = 0.0                       # seconds before each SOAP answer (a slow camera)
    clock_skew: dt.timedelta = dt.timedelta(0)      # the camera's clock minus the real time
    announce_xaddrs: bool = True                    # False: Hello without XAddrs
    protect_clock: bool = False                     # True: GetSystemDateAndTime wants a token too
    online: bool = True
    calls: list[Call] = field(default_factory=list)
    probes_answered: int = 0

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._sock: socket.socket | None = None

    @property
    def address(self) -> str:
        return f"urn:uuid:{self.uuid}"

    @property
    def xaddr(self) -> str:
        return f"http://{self.host}:{self.http_port}/onvif/device_service"

    @property
    def device_id(self) -> str:
        return f"{self.xaddr}-{self.uuid.lower()}"

    @property
    def discovery_address(self) -> tuple[str, int]:
        assert self._sock is not None
        return self._sock.getsockname()

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/onvif/device_service", self._handle_soap)
        # a stopped camera drops calls in progress at once (a slow one may be mid-answer)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        await self._start_site()
        await self._start_discovery()

    async def _start_site(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, self.host, self.http_port, reuse_address=True)
        await self._site.start()
        if self.http_port == 0:
            server = self._site._server
            assert server is not None
            self.http_port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _start_discovery(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setblocking(False)
        sock.bind(self.discovery_bind)
        if self.multicast:
            membership = struct.pack("=4s4s", socket.inet_aton(MULTICAST_GROUP), socket.inet_aton("0.0.0.0"))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        self._sock = sock
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(lambda: _Responder(self), sock=sock)

    async def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def go_offline(self) -> None:
        """Stop answering probes and close the device service (connection refused)."""
        self.online = False
        if self._site is not None:
            await self._site.stop()
            self._site = None

    async def go_online(self) -> None:
        self.online = True
        if self._site is None:
            await self._start_site()

    # ------------------------------------------------------------ WS-Discovery

    def send(self, data: bytes, to: tuple[str, int]) -> None:
        """Send from the camera's own address, as a real camera does: with a wildcard-bound
        discovery socket the kernel would pick the interface's first address, which for a
        second camera address in one namespace is not the camera's (the handler sends
        credentials only to an XAddr on the host an announcement came from)."""
        assert self._transport is not None and self._sock is not None
        if self.discovery_bind[0] == "0.0.0.0" and _is_ipv4(self.host):
            pktinfo = struct.pack("=i4s4s", 0, socket.inet_aton(self.host), b"\0" * 4)
            try:
                self._sock.sendmsg([data], [(socket.IPPROTO_IP, IP_PKTINFO, pktinfo)], 0, to)
                return
            except OSError:
                pass  # the address is not (yet) ours: let the kernel choose
        self._transport.sendto(data, to)

    def _announce_to(self, to: tuple[str, int] | None) -> tuple[str, int]:
        if to is not None:
            return to
        if not self.multicast:
            raise ValueError("without multicast, say where to send the announcement (to=...)")
        return (MULTICAST_GROUP, PORT)

    async def hello(self, to: tuple[str, int] | None = None) -> None:
        """Come online and announce it (sent twice, as SOAP-over-UDP repeats datagrams)."""
        await self.go_online()
        xaddrs = [self.xaddr] if self.announce_xaddrs else []
        message = hello_message(self.address, xaddrs, self.scopes)
        self.send(message, self._announce_to(to))
        await asyncio.sleep(0.05)
        self.send(message, self._announce_to(to))

    async def bye(self, to: tuple[str, int] | None = None) -> None:
        """Announce going away, then go offline."""
        message = bye_message(self.address)
        self.send(message, self._announce_to(to))
        self.send(message, self._announce_to(to))
        await self.go_offline()

    def answer_probe(self, data: bytes, addr: tuple[str, int]) -> None:
        if not self.online:
            return
        try:
            message = parse_message(data)
        except BadMessage:
            return
        if message.kind != "other":
            return
        try:
            root = parse_xml(data, max_bytes=65536)
        except XmlRejected:
            return
        body = child(root, "Body")
        probe = child(body, "Probe")
        if probe is None:
            return
        wanted = {t.rsplit(":", 1)[-1] for t in text(child(probe, "Types")).split()}
        if wanted and not wanted & {"NetworkVideoTransmitter", "Device"}:
            return
        self.probes_answered += 1
        self.send(probe_match_message(self.address, [self.xaddr], self.scopes, message.message_id), addr)
        _emit("probe", source=f"{addr[0]}:{addr[1]}")

    # ------------------------------------------------------------ device service

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.clock_skew

    async def _handle_soap(self, request: web.Request) -> web.Response:
        if self.answer_delay:
            await asyncio.sleep(self.answer_delay)
        body = await request.read()
        try:
            root = parse_xml(body, max_bytes=65536)
        except XmlRejected as exc:
            return self._reply(400, fault_response("ter:WellFormed", str(exc)))
        content = child(root, "Body")
        operation = local_name(content[0].tag) if content is not None and len(content) else ""
        header = child(root, "Header")
        authenticated = child(header, "Security") is not None
        error = None
        if self.username is not None and (operation != "GetSystemDateAndTime" or self.protect_clock):
            error = check_username_token(header, self.username, self.password, self.now())
        self.calls.append(Call(operation, authenticated, error))
        if error is not None:
            return self._reply(400, fault_response("ter:NotAuthorized", f"Sender not authorized: {error}"))
        if operation == "GetSystemDateAndTime":
            return self._reply(200, system_date_and_time_response(self.now()))
        if operation == "GetNetworkInterfaces":
            ip = self.ip_address or self.host
            return self._reply(200, network_interfaces_response(ip, self.mac_address))
        if operation == "GetDeviceInformation":
            return self._reply(200, device_information_response(
                "Akri", "FakeCamera", "1.0", self.uuid[:8].upper(), "fake-1"))
        return self._reply(400, fault_response("ter:ActionNotSupported", f"{operation or '?'} not supported"))

    @staticmethod
    def _reply(status: int, body: bytes) -> web.Response:
        return web.Response(status=status, body=body, content_type="application/soap+xml", charset="utf-8")


class _Responder(asyncio.DatagramProtocol):
    def __init__(self, camera: FakeCamera) -> None:
        self.camera = camera

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.camera.answer_probe(data, addr)


IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)  # Linux's value; the constant is missing before Python 3.12


def _is_ipv4(text: str) -> bool:
    try:
        socket.inet_aton(text)
    except OSError:
        return False
    return text.count(".") == 3


def _emit(event: str, **fields: Any) -> None:
    if _EMIT:
        sys.stdout.write(json.dumps({"event": event, "t": time.monotonic(), **fields}) + "\n")
        sys.stdout.flush()


_EMIT = False


async def _serve(args: argparse.Namespace) -> None:
    camera = FakeCamera(host=args.host, http_port=args.http_port, uuid=args.uuid or str(uuid_module.uuid4()),
                        scopes=tuple(args.scope) if args.scope else FakeCamera.scopes,
                        ip_address=args.ip_address, mac_address=args.mac, username=args.username,
                        password=args.password or "", multicast=not args.no_multicast,
                        discovery_bind=(args.discovery_host, args.discovery_port),
                        answer_delay=args.answer_delay)
    await camera.start()
    _emit("ready", xaddr=camera.xaddr, uuid=camera.uuid, device_id=camera.device_id)
    if args.hello:
        await camera.hello()
        _emit("hello")
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while raw := await reader.readline():
            line = raw.decode(errors="replace").strip()
            if not line:
                continue
            command, *rest = line.split()
            if command == "hello":
                await camera.go_online()
                _emit("hello")
                await camera.hello()
            elif command == "bye":
                _emit("bye")
                await camera.bye()
            elif command == "down":
                await camera.go_offline()
                _emit("down")
            elif command == "up":
                await camera.go_online()
                _emit("up")
            elif command == "garbage" and len(rest) == 2:
                for data, _ in HOSTILE_DATAGRAMS.values():
                    camera.send(data, (rest[0], int(rest[1])))
                _emit("garbage", count=len(HOSTILE_DATAGRAMS))
            elif command == "quit":
                break
            else:
                _emit("error", message=f"unknown command {line!r}")
    finally:
        with contextlib.suppress(Exception):
            await camera.stop()


def main(argv: Sequence[str] | None = None) -> int:
    global _EMIT
    p = argparse.ArgumentParser(prog="python -m akri.testing.onvif_camera", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", required=True, help="address the device service listens on (in the XAddr)")
    p.add_argument("--http-port", type=int, default=8080)
    p.add_argument("--uuid", help="endpoint uuid (default: random)")
    p.add_argument("--scope", action="append", help="a scope URI (repeat; default: three sample scopes)")
    p.add_argument("--ip-address", help="IPv4 address GetNetworkInterfaces reports (default: --host)")
    p.add_argument("--mac", default="02:00:00:0a:fa:01", help="MAC address GetNetworkInterfaces reports")
    p.add_argument("--username",
                   help="require this user's UsernameToken (every call but GetSystemDateAndTime)")
    p.add_argument("--password")
    p.add_argument("--discovery-host", default="0.0.0.0")
    p.add_argument("--discovery-port", type=int, default=PORT)
    p.add_argument("--no-multicast", action="store_true", help="do not join the WS-Discovery group")
    p.add_argument("--answer-delay", type=float, default=0.0, help="seconds before each SOAP answer")
    p.add_argument("--hello", action="store_true", help="say Hello once started")
    args = p.parse_args(argv)
    _EMIT = True
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
