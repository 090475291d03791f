"""OPC UA discovery details (upstream `OpcuaDiscoveryDetails`, spec §5.5).

::

    opcuaDiscoveryMethod:
      standard:
        discoveryUrls: [opc.tcp://localhost:4840/]   # default; LDS or server URLs
    applicationNames:                                # optional FilterList
      action: Include
      items: [Thermometer]

Checked here rather than on every round as upstream does: a URL that is not `opc.tcp://` with an
explicit port can never be queried, so it is a configuration error naming the URL's index.
Unlike upstream (serde ignores unknown keys) an unknown key is an error: a typo such as
`discoveryUrl` would otherwise silently fall back to the default LDS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from akri.discovery.filters import FilterList
from akri.discovery.handler import InvalidDetails, load_details
from akri.model.errors import type_name

OPC_TCP_SCHEME = "opc.tcp"
DEFAULT_DISCOVERY_URL = "opc.tcp://localhost:4840/"
METHOD_KEY = "opcuaDiscoveryMethod"
STANDARD_KEY = "standard"
URLS_KEY = "discoveryUrls"
NAMES_KEY = "applicationNames"
URLS_FIELD = f"{METHOD_KEY}.{STANDARD_KEY}.{URLS_KEY}"


@dataclass(frozen=True, slots=True)
class OpcuaDetails:
    discovery_urls: tuple[str, ...] = (DEFAULT_DISCOVERY_URL,)
    application_names: FilterList | None = None

    def to_dict(self) -> dict[str, Any]:
        """The canonical form, as upstream serializes it."""
        out: dict[str, Any] = {METHOD_KEY: {STANDARD_KEY: {URLS_KEY: list(self.discovery_urls)}}}
        if self.application_names is not None:
            out[NAMES_KEY] = self.application_names.to_dict()
        return out


def check_discovery_url(url: str, field: str) -> None:
    """`url` must be `opc.tcp://HOST:PORT[/path]`; InvalidDetails names `field` otherwise."""
    parts = urlsplit(url)
    if parts.scheme.lower() != OPC_TCP_SCHEME:
        raise InvalidDetails(field, f"must be an opc.tcp:// URL with a port (e.g. {DEFAULT_DISCOVERY_URL}), "
                                    f"got {url!r}")
    if not parts.hostname:
        raise InvalidDetails(field, f"has no host: {url!r}")
    try:
        port = parts.port
    except ValueError:
        raise InvalidDetails(field, f"has an invalid port: {url!r}") from None
    if port is None:
        raise InvalidDetails(field, f"must give the port explicitly (the LDS default is 4840): {url!r}")
    if port == 0:
        raise InvalidDetails(field, f"has an invalid port 0: {url!r}")


def _reject_unknown(data: dict[Any, Any], known: tuple[str, ...], parent: str) -> None:
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        where = f"{parent}.{unknown[0]}" if parent else unknown[0]
        raise InvalidDetails(where, f"unknown key (expected {', '.join(known)})")


def _parse_urls(standard: dict[Any, Any]) -> tuple[str, ...]:
    raw = standard.get(URLS_KEY)
    if raw is None:
        return (DEFAULT_DISCOVERY_URL,)
    if not isinstance(raw, list):
        raise InvalidDetails(URLS_FIELD, f"must be a list of opc.tcp:// URLs, got {type_name(raw)}")
    if not raw:
        # upstream accepts it and then never finds anything; omitting the key means the default
        raise InvalidDetails(URLS_FIELD, f"is empty; list at least one URL or omit the key for "
                                         f"{DEFAULT_DISCOVERY_URL}")
    for i, url in enumerate(raw):
        field = f"{URLS_FIELD}[{i}]"
        if not isinstance(url, str):
            raise InvalidDetails(field, f"must be a string, got {type_name(url)}")
        check_discovery_url(url, field)
    return tuple(raw)


def parse_details(text: str) -> OpcuaDetails:
    """Parse and check discovery details; InvalidDetails names the field at fault."""
    data = load_details(text)
    _reject_unknown(data, (METHOD_KEY, NAMES_KEY), "")
    if data.get(METHOD_KEY) is None:
        raise InvalidDetails(METHOD_KEY, "is required, e.g. {standard: {discoveryUrls: "
                                         f"[{DEFAULT_DISCOVERY_URL}]}}}}")
    method = data[METHOD_KEY]
    if not isinstance(method, dict):
        raise InvalidDetails(METHOD_KEY, f"must be an object with the single key 'standard', "
                                         f"got {type_name(method)}")
    if not method:
        raise InvalidDetails(METHOD_KEY, "must name a discovery method: standard")
    _reject_unknown(method, (STANDARD_KEY,), METHOD_KEY)
    standard = method[STANDARD_KEY]
    if standard is None:  # `standard:` with nothing after it means the defaults
        standard = {}
    if not isinstance(standard, dict):
        raise InvalidDetails(f"{METHOD_KEY}.{STANDARD_KEY}",
                             f"must be an object (with optional discoveryUrls), got {type_name(standard)}")
    _reject_unknown(standard, (URLS_KEY,), f"{METHOD_KEY}.{STANDARD_KEY}")
    urls = _parse_urls(standard)
    names = FilterList.parse_optional(data, NAMES_KEY)
    return OpcuaDetails(urls, names)
