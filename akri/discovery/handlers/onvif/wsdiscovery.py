"""WS-Discovery (2005/04, as ONVIF uses it) messages: the Probe we send, and the ProbeMatches,
Hello and Bye we read.

Parsing is strict about the structure that matters (SOAP envelope, the discovery namespace,
an endpoint address) and raises `BadMessage` with a counter key for everything else, so a
caller skips and counts a bad datagram instead of failing. Types are matched by local name
(`NetworkVideoTransmitter`): the prefix of a QName in text content is often undeclared in
the wild (upstream's own Probe has that quirk), and the local name is unique to ONVIF.
"""

from __future__ import annotations

import uuid as uuid_module
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import urlsplit

from akri.discovery.handlers.onvif.xmlsafe import (
    SOAP12,
    XmlRejected,
    child,
    children,
    local_name,
    namespace,
    soap_envelope,
    text,
)

WSD = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
WSA10 = "http://www.w3.org/2005/08/addressing"
NETWORK_WSDL = "http://www.onvif.org/ver10/network/wsdl"

MULTICAST_GROUP = "239.255.255.250"
PORT = 3702
NVT = "NetworkVideoTransmitter"
PROBE_ACTION = "http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe"
DISCOVERY_TO = "urn:schemas-xmlsoap-org:ws:2005:04:discovery"

# Upstream reads at most 16 KiB per datagram; a real ProbeMatch is 1-4 KiB. Larger ones are
# skipped whole (never parsed truncated).
MAX_DATAGRAM = 32 * 1024
# Bounds on what one message may carry, so a hostile datagram cannot make us track or call
# thousands of addresses.
MAX_XADDRS = 16
MAX_XADDR_LENGTH = 2048
MAX_MATCHES = 64

_MESSAGE_KINDS = ("ProbeMatches", "Hello", "Bye")
_OTHER_KINDS = ("Probe", "Resolve", "ResolveMatches")


class BadMessage(ValueError):
    """A datagram to skip. `reason`: malformed, unsafe, oversized, wrong-namespace, invalid."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One target service as announced: its endpoint address and where to reach it."""

    address: str                  # wsa:EndpointReference/wsa:Address, e.g. urn:uuid:...
    types: tuple[str, ...]        # QNames as written, e.g. ("dn:NetworkVideoTransmitter",)
    scopes: tuple[str, ...]       # whitespace-separated Scopes tokens
    xaddrs: tuple[str, ...]       # http(s) device service URLs (others are dropped)
    metadata_version: int | None = None

    @property
    def uuid(self) -> str:
        return device_uuid(self.address)

    @property
    def is_video_transmitter(self) -> bool:
        return any(t.rsplit(":", 1)[-1] == NVT for t in self.types)


@dataclass(frozen=True, slots=True)
class Message:
    kind: str                     # ProbeMatches, Hello, Bye, or "other" (not for us)
    message_id: str
    relates_to: str
    endpoints: tuple[Endpoint, ...]


def device_uuid(address: str) -> str:
    """Upstream's device id: the address without a leading `urn:` then `uuid:`, lower-cased."""
    s = address.strip()
    s = s[4:] if s.startswith("urn:") else s
    s = s[5:] if s.startswith("uuid:") else s
    return s.lower()


def new_message_id() -> str:
    return f"uuid:{uuid_module.uuid4()}"


def probe_message(message_id: str) -> bytes:
    """Probe for NetworkVideoTransmitter, laid out as upstream's but with the `dn` prefix of
    the type declared (upstream leaves `netwsdl` undeclared; cameras accept both)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<s:Envelope xmlns:s="{SOAP12}">'
        f'<s:Header xmlns:w="{WSA}">'
        f"<w:MessageID>{message_id}</w:MessageID>"
        f"<w:To>{DISCOVERY_TO}</w:To>"
        f"<w:Action>{PROBE_ACTION}</w:Action>"
        "</s:Header>"
        f'<s:Body xmlns:d="{WSD}">'
        f'<d:Probe xmlns:dn="{NETWORK_WSDL}"><d:Types>dn:{NVT}</d:Types></d:Probe>'
        "</s:Body></s:Envelope>"
    ).encode()


def valid_xaddr(url: str) -> bool:
    if len(url) > MAX_XADDR_LENGTH:
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _endpoint(element: ET.Element) -> Endpoint:
    epr = element.find(f"{{{WSA}}}EndpointReference")
    if epr is None:
        epr = element.find(f"{{{WSA10}}}EndpointReference")
    address = text(epr.find(f"{{{namespace(epr.tag)}}}Address")) if epr is not None else ""
    if not address:
        raise BadMessage("invalid", f"{local_name(element.tag)} without EndpointReference/Address")
    types = tuple(text(element.find(f"{{{WSD}}}Types")).split())
    scopes = tuple(token for s in element.findall(f"{{{WSD}}}Scopes") for token in text(s).split())
    raw_xaddrs = text(element.find(f"{{{WSD}}}XAddrs")).split()
    xaddrs = tuple(dict.fromkeys(x for x in raw_xaddrs if valid_xaddr(x)))[:MAX_XADDRS]
    version_text = text(element.find(f"{{{WSD}}}MetadataVersion"))
    version = int(version_text) if version_text.isdigit() else None
    return Endpoint(address, types, scopes, xaddrs, version)


def parse_message(data: bytes) -> Message:
    """Parse one WS-Discovery datagram; raises BadMessage (with a counter key) when unusable."""
    if len(data) > MAX_DATAGRAM:
        raise BadMessage("oversized", f"{len(data)}-byte datagram (limit {MAX_DATAGRAM})")
    try:
        header, body = soap_envelope(data, max_bytes=MAX_DATAGRAM)
    except XmlRejected as exc:
        raise BadMessage(exc.reason, str(exc)) from None
    message_id = relates_to = ""
    if header is not None:
        message_id = text(child(header, "MessageID"))
        relates_to = text(child(header, "RelatesTo"))
    content = body[0]
    kind = local_name(content.tag)
    if namespace(content.tag) != WSD:
        if kind in _MESSAGE_KINDS or kind in _OTHER_KINDS:
            raise BadMessage("wrong-namespace", f"{kind} in namespace {namespace(content.tag)!r}, "
                                                f"expected {WSD}")
        return Message("other", message_id, relates_to, ())
    if kind == "ProbeMatches":
        matches = children(content, "ProbeMatch")[:MAX_MATCHES]
        endpoints = tuple(_endpoint(m) for m in matches if namespace(m.tag) == WSD)
        return Message(kind, message_id, relates_to, endpoints)
    if kind in ("Hello", "Bye"):
        return Message(kind, message_id, relates_to, (_endpoint(content),))
    return Message("other", message_id, relates_to, ())
