"""ONVIF discovery details (upstream `OnvifDiscoveryDetails`, spec §5.4), plus two new keys.

    ipAddresses, macAddresses, scopes, uuids:  optional filter lists ({items, action})
    discoveryTimeoutSeconds: 1     how long each probe collects answers (upstream default 1)
    directedProbes: [host, host:port, ...]   also probe these by unicast (networks without
                                   multicast); port defaults to 3702
    discoveryIntervalSeconds: 10   time between probe rounds (upstream: fixed 10 s)

`{}` serialises to `{"discoveryTimeoutSeconds": 1}` as upstream; the new keys appear only when
given. Unknown keys are accepted (upstream ignores them) and logged as a likely typo when
discovery starts.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from akri.discovery.filters import FilterList
from akri.discovery.handler import InvalidDetails, load_details
from akri.discovery.handlers.onvif.wsdiscovery import PORT
from akri.model.errors import type_name

FILTER_KEYS = ("ipAddresses", "macAddresses", "scopes", "uuids")
KNOWN_KEYS = (*FILTER_KEYS, "discoveryTimeoutSeconds", "directedProbes", "discoveryIntervalSeconds")

DEFAULT_TIMEOUT = 1
# Probe rounds also catch cameras that never announce themselves and cameras that vanish
# without a Bye (power cut); upstream users get both within 10 s, so keep that.
DEFAULT_INTERVAL = 10
MAX_SECONDS = 3600
MAX_DIRECTED = 1024

_HOSTNAME = re.compile(r"(?=.{1,253}\Z)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
                       r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?\Z")


@dataclass(frozen=True, slots=True)
class DirectedProbe:
    host: str
    port: int = PORT

    def __str__(self) -> str:
        return self.host if self.port == PORT else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class OnvifDetails:
    ip_addresses: FilterList | None = None
    mac_addresses: FilterList | None = None
    scopes: FilterList | None = None
    uuids: FilterList | None = None
    discovery_timeout_seconds: float = DEFAULT_TIMEOUT
    directed_probes: tuple[DirectedProbe, ...] = ()
    discovery_interval_seconds: float | None = None
    unknown_keys: tuple[str, ...] = ()

    @property
    def interval(self) -> float:
        return self.discovery_interval_seconds or DEFAULT_INTERVAL

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in (("ipAddresses", self.ip_addresses), ("macAddresses", self.mac_addresses),
                           ("scopes", self.scopes), ("uuids", self.uuids)):
            if value is not None:
                out[key] = value.to_dict()
        out["discoveryTimeoutSeconds"] = self.discovery_timeout_seconds
        if self.directed_probes:
            out["directedProbes"] = [str(p) for p in self.directed_probes]
        if self.discovery_interval_seconds is not None:
            out["discoveryIntervalSeconds"] = self.discovery_interval_seconds
        return out


def _seconds(data: dict[str, Any], key: str, default: float | None) -> float | None:
    value = data.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidDetails(key, f"must be a number of seconds, got {type_name(value)}")
    if not 0 < value <= MAX_SECONDS:
        raise InvalidDetails(key, f"must be more than 0 and at most {MAX_SECONDS}, got {value}")
    return value


def parse_directed_probe(value: Any, field: str) -> DirectedProbe:
    """`host` or `host:port` (IPv4 address or DNS name; port 1-65535, default 3702)."""
    if not isinstance(value, str):
        raise InvalidDetails(field, f"must be a string 'host' or 'host:port', got {type_name(value)}")
    text = value.strip()
    if not text:
        raise InvalidDetails(field, "must not be empty")
    if text.startswith("[") or text.count(":") > 1:
        raise InvalidDetails(field, f"{value!r}: IPv6 addresses are not supported (WS-Discovery probes "
                                    "are sent over IPv4)")
    host, sep, port_text = text.partition(":")
    port = PORT
    if sep:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise InvalidDetails(field, f"{value!r}: port must be a number from 1 to 65535")
        port = int(port_text)
    if not host:
        raise InvalidDetails(field, f"{value!r}: the host is missing")
    try:
        address = ipaddress.IPv4Address(host)
    except ValueError:
        if host.replace(".", "").isdigit() or not _HOSTNAME.match(host):
            raise InvalidDetails(field, f"{value!r}: {host!r} is neither an IPv4 address nor a host "
                                        "name") from None
    else:
        if address.is_unspecified:
            raise InvalidDetails(field, f"{value!r}: 0.0.0.0 cannot be probed")
    return DirectedProbe(host, port)


def parse_details(text: str) -> OnvifDetails:
    data = load_details(text)
    filters = {key: FilterList.parse_optional(data, key) for key in FILTER_KEYS}
    timeout = _seconds(data, "discoveryTimeoutSeconds", DEFAULT_TIMEOUT)
    interval = _seconds(data, "discoveryIntervalSeconds", None)
    raw = data.get("directedProbes")
    probes: list[DirectedProbe] = []
    if raw is not None:
        if not isinstance(raw, list):
            raise InvalidDetails("directedProbes", f"must be a list of 'host' or 'host:port' strings, "
                                                   f"got {type_name(raw)}")
        if len(raw) > MAX_DIRECTED:
            raise InvalidDetails("directedProbes", f"at most {MAX_DIRECTED} entries, got {len(raw)}")
        for i, item in enumerate(raw):
            probe = parse_directed_probe(item, f"directedProbes[{i}]")
            if probe not in probes:
                probes.append(probe)
    unknown = tuple(sorted(str(k) for k in data if k not in KNOWN_KEYS))
    assert timeout is not None
    return OnvifDetails(
        ip_addresses=filters["ipAddresses"], mac_addresses=filters["macAddresses"],
        scopes=filters["scopes"], uuids=filters["uuids"],
        discovery_timeout_seconds=timeout, directed_probes=tuple(probes),
        discovery_interval_seconds=interval, unknown_keys=unknown)
