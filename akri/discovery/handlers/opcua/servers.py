"""From FindServers answers to device URLs (upstream `discovery_impl.rs`, spec §5.5).

Pure logic with no asyncua import: the applications a discovery URL reported, which of them are
devices, which of their discovery URLs to report, and how to rewrite a URL whose host does not
resolve (servers in containers often advertise a host name only their own network knows).

Differences from upstream, on purpose:

* Applications of type ClientAndServer are devices too. OPC UA Part 4 defines them as
  applications that are both a client and a server: they have endpoints a broker can use.
  Upstream keeps only `Server`, which drops, among others, every asyncua server (asyncua's
  default type is ClientAndServer). Clients and discovery servers are still left out.
* Every repeated URL is dropped (upstream drops only consecutive repeats, so a server
  registered with two discovery servers could still be reported twice).
* A discovery URL with a path is an address of the server itself, so an unresolvable server URL
  found there becomes that URL as it is (upstream appends the server's path to it again).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from akri.discovery.filters import FilterList, should_include

log = logging.getLogger(__name__)

OPC_TCP_PREFIX = "opc.tcp"
RESOLVE_TIMEOUT = 3.0

#: (host) -> does it resolve?
Resolver = Callable[[str], Awaitable[bool]]


class ApplicationType(enum.IntEnum):
    """OPC UA Part 4 ApplicationType (same numbers as on the wire)."""

    SERVER = 0
    CLIENT = 1
    CLIENT_AND_SERVER = 2
    DISCOVERY_SERVER = 3


DEVICE_TYPES = frozenset({ApplicationType.SERVER, ApplicationType.CLIENT_AND_SERVER})


@dataclass(frozen=True, slots=True)
class Application:
    """The parts of an ApplicationDescription that discovery uses."""

    name: str
    type: int
    discovery_urls: tuple[str, ...] = ()
    uri: str = ""


def is_device(app: Application, application_names: FilterList | None) -> bool:
    if app.type not in DEVICE_TYPES:
        log.debug("opcua: %r is a %s, not a server; ignored", app.name, _type_name(app.type))
        return False
    if not should_include(application_names, app.name):
        log.debug("opcua: %r filtered out by applicationNames", app.name)
        return False
    if not app.discovery_urls:
        log.debug("opcua: %r has no discovery URL; ignored", app.name)
        return False
    return True


def _type_name(value: int) -> str:
    try:
        return ApplicationType(value).name
    except ValueError:
        return f"application type {value}"


def preferred_url(urls: Iterable[str]) -> str | None:
    """The first opc.tcp URL (it supports application authentication), else the first URL."""
    urls = list(urls)
    for url in urls:
        if url.startswith(OPC_TCP_PREFIX):
            return url
    return urls[0] if urls else None


def url_host(url: str) -> str | None:
    try:
        return urlsplit(url).hostname or None
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return None


def rewrite_unresolvable(queried_url: str, server_url: str) -> str:
    """The address to use for `server_url` (whose host does not resolve) found at `queried_url`.

    A queried URL without a path is a discovery server's address: the server is taken to live
    on the same host, so the result is the queried URL's scheme, host and port with the server
    URL's path. A queried URL with a path is the server's own address: it is returned as it is.
    """
    queried = urlsplit(queried_url)
    if queried.path not in ("", "/"):
        return queried_url
    try:
        server_path = urlsplit(server_url).path
    except ValueError:
        server_path = ""
    if not server_path:
        return queried_url
    if not server_path.startswith("/"):
        server_path = "/" + server_path
    return urlunsplit((queried.scheme, queried.netloc, server_path, "", ""))


async def resolves(host: str) -> bool:
    """Whether `host` has an address (IP literals always do); a slow resolver counts as no."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT):  # not wait_for: gh-86296 on 3.11
            await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, ValueError, TimeoutError):  # ValueError: not a valid name (IDNA)
        return False
    return True


async def device_urls(
    queried_url: str,
    applications: Iterable[Application],
    application_names: FilterList | None,
    resolver: Resolver = resolves,
) -> list[str]:
    """The device URLs among the applications one discovery URL reported, in its order."""
    known: dict[str, bool] = {}
    out: list[str] = []
    for app in applications:
        if not is_device(app, application_names):
            continue
        url = preferred_url(app.discovery_urls)
        if url is None:
            continue
        host = url_host(url)
        if host is not None and host not in known:
            known[host] = await resolver(host)
        if host is None or not known[host]:
            rewritten = rewrite_unresolvable(queried_url, url)
            log.info("opcua: host of %s (%r) does not resolve; using %s", url, app.name, rewritten)
            url = rewritten
        out.append(url)
    return out


def unique(urls: Iterable[str]) -> list[str]:
    """Drop repeated URLs, keeping the first of each (one server, one device)."""
    return list(dict.fromkeys(urls))
