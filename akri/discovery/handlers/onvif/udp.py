"""WS-Discovery over raw asyncio UDP: probe rounds (multicast and directed) and the
Hello/Bye listener.

Multicast goes out of every interface that is up and multicast-capable (not only the one
the routing table picks for 239.255.255.250, which is all upstream reaches), with TTL 1 so
it never leaves the link. The listener binds the group address itself on port 3702
(SO_REUSEADDR + SO_REUSEPORT, so it coexists with other WS-Discovery services on the node)
and so receives only multicast: unicast traffic to port 3702 stays with whoever serves it.
Interfaces that appear later are joined at the next round (`rejoin`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import random
import socket
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from akri.discovery.handlers.onvif.stats import OnvifStats
from akri.discovery.handlers.onvif.wsdiscovery import (
    MULTICAST_GROUP,
    PORT,
    BadMessage,
    Endpoint,
    Message,
    new_message_id,
    parse_message,
    probe_message,
)

log = logging.getLogger(__name__)

SIOCGIFFLAGS = 0x8913
IFF_UP = 0x1
IFF_LOOPBACK = 0x8
IFF_MULTICAST = 0x1000
# SOAP-over-UDP: a datagram is repeated once after 50-250 ms (same MessageID), because UDP
# may drop it. Answers are deduplicated.
REPEAT_DELAY = (0.05, 0.25)


def multicast_interfaces() -> list[tuple[int, str]]:
    """(index, name) of the interfaces that are up, multicast-capable and not loopback."""
    found: list[tuple[int, str]] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for index, name in socket.if_nameindex():
            try:
                request = struct.pack("16sh14x", name.encode()[:15], 0)
                ifreq = fcntl.ioctl(probe.fileno(), SIOCGIFFLAGS, request)
            except OSError:
                continue
            flags = struct.unpack("16sh14x", ifreq)[1] & 0xFFFF
            if flags & IFF_UP and flags & IFF_MULTICAST and not flags & IFF_LOOPBACK:
                found.append((index, name))
    return found


def _mreqn(group: str, ifindex: int) -> bytes:
    # struct ip_mreqn { in_addr multiaddr; in_addr address; int ifindex; }
    return struct.pack("=4s4si", socket.inet_aton(group), socket.inet_aton("0.0.0.0"), ifindex)


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, tuple[str, int]], None]) -> None:
        self.on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            self.on_datagram(data, addr)
        except Exception:  # never let one datagram end the endpoint
            log.exception("onvif: error handling a datagram from %s", addr)

    def error_received(self, exc: Exception) -> None:
        # e.g. ICMP port unreachable after a directed probe to a host without a responder
        log.debug("onvif: UDP error: %s", exc)


def classify(data: bytes, addr: tuple[str, int], stats: OnvifStats) -> Message | None:
    """Parse one datagram and count it; None when it was skipped."""
    stats.datagrams += 1
    try:
        message = parse_message(data)
    except BadMessage as exc:
        stats.skip(exc.reason, addr, str(exc))
        return None
    if message.kind == "other":
        stats.ignored += 1
        return None
    if message.kind == "ProbeMatches":
        stats.probe_matches += len(message.endpoints)
    elif message.kind == "Hello":
        stats.hellos += 1
    elif message.kind == "Bye":
        stats.byes += 1
    return message


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    host: str
    port: int = PORT


async def _resolve(targets: Iterable[ProbeTarget]) -> list[tuple[str, int]]:
    loop = asyncio.get_running_loop()
    resolved: list[tuple[str, int]] = []
    for target in targets:
        try:
            infos = await loop.getaddrinfo(target.host, target.port, family=socket.AF_INET,
                                           type=socket.SOCK_DGRAM)
        except (OSError, UnicodeError) as exc:
            log.warning("onvif: cannot resolve directed probe target %s: %s", target.host, exc)
            continue
        for info in infos[:1]:
            resolved.append((str(info[4][0]), target.port))
    return resolved


def _send_multicast(sock: socket.socket, message: bytes, interfaces: list[tuple[int, str]],
                    stats: OnvifStats) -> None:
    if not interfaces:
        with contextlib.suppress(OSError):  # no multicast route: nothing to reach
            sock.sendto(message, (MULTICAST_GROUP, PORT))
            stats.probes_sent += 1
        return
    for index, name in interfaces:
        try:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, _mreqn(MULTICAST_GROUP, index))
            sock.sendto(message, (MULTICAST_GROUP, PORT))
            stats.probes_sent += 1
        except OSError as exc:
            log.debug("onvif: cannot probe on %s: %s", name, exc)


async def probe(*, window: float, directed: Iterable[ProbeTarget] = (), multicast: bool = True,
                stats: OnvifStats | None = None,
                on_match: Callable[[Endpoint, tuple[str, int]], None] | None = None) -> list[Endpoint]:
    """One probe round: send the Probe (twice, as SOAP-over-UDP asks) by multicast and to
    every directed target, collect ProbeMatches for `window` seconds, return the endpoints
    (deduplicated). Bad datagrams are skipped and counted in `stats`."""
    stats = stats if stats is not None else OnvifStats()
    loop = asyncio.get_running_loop()
    endpoints: dict[Endpoint, None] = {}

    def on_datagram(data: bytes, addr: tuple[str, int]) -> None:
        message = classify(data, addr, stats)
        if message is None or message.kind != "ProbeMatches":
            return
        for endpoint in message.endpoints:
            if endpoint not in endpoints:
                endpoints[endpoint] = None
                if on_match is not None:
                    on_match(endpoint, addr)

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        sock.bind(("0.0.0.0", 0))
    except OSError:
        sock.close()
        raise
    transport, _ = await loop.create_datagram_endpoint(lambda: _Receiver(on_datagram), sock=sock)
    try:
        deadline = loop.time() + window
        targets = await _resolve(directed)
        interfaces = multicast_interfaces() if multicast else []
        message = probe_message(new_message_id())
        for attempt in range(2):
            if multicast:
                _send_multicast(sock, message, interfaces, stats)
            for addr in targets:
                try:
                    transport.sendto(message, addr)
                    stats.probes_sent += 1
                except OSError as exc:
                    log.debug("onvif: cannot probe %s:%d: %s", addr[0], addr[1], exc)
            if attempt == 0:
                await asyncio.sleep(min(random.uniform(*REPEAT_DELAY), max(0.0, deadline - loop.time())))
        await asyncio.sleep(max(0.0, deadline - loop.time()))
    finally:
        transport.close()
    return list(endpoints)


class AnnouncementListener:
    """Receives Hello and Bye on the WS-Discovery multicast group and passes each parsed
    message to every subscriber. Started by the first subscriber, closed with the last."""

    def __init__(self, *, bind: tuple[str, int] = (MULTICAST_GROUP, PORT), multicast: bool = True,
                 stats: OnvifStats | None = None) -> None:
        self.bind = bind
        self.multicast = multicast
        self.stats = stats if stats is not None else OnvifStats()
        self._subscribers: list[Callable[[Message, tuple[str, int]], None]] = []
        self._transport: asyncio.DatagramTransport | None = None
        self._sock: socket.socket | None = None
        self.error: str | None = None

    @property
    def listening(self) -> bool:
        return self._transport is not None

    @property
    def address(self) -> tuple[str, int] | None:
        return self._sock.getsockname() if self._sock is not None else None

    async def subscribe(self, callback: Callable[[Message, tuple[str, int]], None]) -> bool:
        """Add a subscriber; False (with `error` set) when the socket cannot be opened."""
        self._subscribers.append(callback)
        if self._transport is None:
            try:
                await self._open()
            except OSError as exc:
                where = f"{self.bind[0]}:{self.bind[1]}"
                self.error = f"cannot listen for WS-Discovery Hello/Bye on {where}: {exc}"
                log.warning("onvif: %s; cameras are found by probes only", self.error)
                return False
        return True

    def unsubscribe(self, callback: Callable[[Message, tuple[str, int]], None]) -> None:
        with contextlib.suppress(ValueError):
            self._subscribers.remove(callback)
        if not self._subscribers:
            self.close()

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if hasattr(socket, "SO_REUSEPORT"):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(self.bind)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self.rejoin()
        self._transport, _ = await loop.create_datagram_endpoint(lambda: _Receiver(self._received), sock=sock)
        self.error = None
        log.info("onvif: listening for WS-Discovery Hello/Bye on %s:%d", *sock.getsockname())

    def rejoin(self) -> None:
        """Join the group on every multicast interface (again: new interfaces may have come)."""
        if self._sock is None or not self.multicast:
            return
        interfaces = multicast_interfaces()
        for index, name in interfaces or [(0, "default")]:
            try:
                membership = _mreqn(MULTICAST_GROUP, index)
                self._sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:  # already a member there
                    log.debug("onvif: cannot join %s on %s: %s", MULTICAST_GROUP, name, exc)

    def _received(self, data: bytes, addr: tuple[str, int]) -> None:
        message = classify(data, addr, self.stats)
        if message is None or message.kind not in ("Hello", "Bye"):
            return
        for callback in list(self._subscribers):
            try:
                callback(message, addr)
            except Exception:
                log.exception("onvif: announcement subscriber failed")

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        elif self._sock is not None:
            self._sock.close()
        self._transport = None
        self._sock = None
