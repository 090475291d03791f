"""The OPC UA discovery handler (upstream `discovery-handlers/opcua`, spec §5.5).

Every round asks each discovery URL (a local discovery server, or a server itself) for the
applications it knows with FindServers, all URLs at once and each within a timeout. A URL that
cannot be reached is logged (once, until it answers again) and skipped; the others still count.
Each server kept by the application-type check and `applicationNames` is one shared device whose
id and `OPCUA_DISCOVERY_URL` property are its discovery URL.

FindServers has no change notification, so discovery polls, every 10 s by default like upstream
(env AKRI_OPCUA_DISCOVERY_INTERVAL_SECONDS): servers register with an LDS every few minutes
at most, so a faster poll would mostly re-read the same answer. The first complete list is sent
at once, then a list only when it changed.

asyncua is an optional extra (`pip install 'akri[opcua]'`): without it the handler cannot be
created (HandlerSetupError with the install command), but checking details still works.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from akri.discovery.device import Device, same_devices
from akri.discovery.handler import DiscoveryHandler, HandlerSetupError
from akri.discovery.handlers.opcua.details import OpcuaDetails, parse_details
from akri.discovery.handlers.opcua.servers import Application, Resolver, device_urls, resolves, unique

log = logging.getLogger(__name__)

OPCUA_DISCOVERY_URL = "OPCUA_DISCOVERY_URL"
INTERVAL_ENV = "AKRI_OPCUA_DISCOVERY_INTERVAL_SECONDS"
DEFAULT_INTERVAL_SECONDS = 10.0
#: TCP connect and per-request timeout (upstream tests the TCP connection with 3 s)
DEFAULT_TIMEOUT_SECONDS = 3.0
INSTALL_HINT = ("the OPC UA discovery handler needs the asyncua library, which is not installed; "
                "install it with: pip install 'akri[opcua]'")

#: (url, timeout) -> applications known at url
FindServers = Callable[[str, float], Awaitable[list[Application]]]


def asyncua_installed() -> bool:
    try:
        return importlib.util.find_spec("asyncua") is not None
    except (ImportError, ValueError):  # a half-imported or oddly installed module: try it later
        return True


def interval_from_env(value: str | None) -> float:
    if value is None or not value.strip():
        return DEFAULT_INTERVAL_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        raise HandlerSetupError(f"{INTERVAL_ENV} must be a number of seconds, got {value!r}") from None
    if not seconds > 0:
        raise HandlerSetupError(f"{INTERVAL_ENV} must be positive, got {value!r}")
    return seconds


def load_find_servers() -> FindServers:
    try:
        from akri.discovery.handlers.opcua.client import find_servers
    except ImportError as exc:
        raise HandlerSetupError(f"{INSTALL_HINT} ({exc})") from None
    return find_servers


def device_for(url: str) -> Device:
    return Device(id=url, properties={OPCUA_DISCOVERY_URL: url})


class Reachability:
    """Logs a failing discovery URL when it starts failing (or fails differently) and when it
    recovers, not on every round."""

    def __init__(self) -> None:
        self.errors: dict[str, str] = {}

    def failed(self, url: str, error: str) -> None:
        if self.errors.get(url) != error:
            log.warning("opcua: cannot query discovery URL %s: %s (skipped)", url, error)
        else:
            log.debug("opcua: discovery URL %s still failing: %s", url, error)
        self.errors[url] = error

    def answered(self, url: str, count: int) -> None:
        if self.errors.pop(url, None) is not None:
            log.info("opcua: discovery URL %s answers again", url)
        log.debug("opcua: %s reported %d application(s)", url, count)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class OpcuaHandler(DiscoveryHandler):
    """Finds OPC UA servers through discovery URLs; a server is visible from every node."""

    name = "opcua"
    shared = True

    def __init__(
        self,
        *,
        discovery_interval: float | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        resolver: Resolver = resolves,
        **_other_handlers_options: Any,
    ) -> None:
        """`discovery_interval`: seconds between rounds (default: env
        AKRI_OPCUA_DISCOVERY_INTERVAL_SECONDS, else 10). `timeout`: TCP connect and per-request
        timeout per discovery URL. `resolver`: says whether a host name resolves. Options meant
        for other handlers are ignored."""
        if not asyncua_installed():
            raise HandlerSetupError(INSTALL_HINT)
        self.discovery_interval = (discovery_interval if discovery_interval is not None
                                   else interval_from_env(os.environ.get(INTERVAL_ENV)))
        if not self.discovery_interval > 0:
            raise HandlerSetupError(f"discovery_interval must be positive, got {self.discovery_interval!r}")
        if not timeout > 0:
            raise HandlerSetupError(f"timeout must be positive, got {timeout!r}")
        self.timeout = timeout
        self.resolver = resolver

    def validate(self, details: str) -> OpcuaDetails:
        return parse_details(details)

    async def _query(self, find_servers: FindServers, url: str, details: OpcuaDetails,
                     reach: Reachability) -> list[str]:
        try:
            applications = await find_servers(url, self.timeout)
        except Exception as exc:  # unreachable, refused, not OPC UA, bad answer: skip this URL
            reach.failed(url, _describe(exc))
            return []
        reach.answered(url, len(applications))
        return await device_urls(url, applications, details.application_names, self.resolver)

    async def discover_once(self, details: OpcuaDetails, find_servers: FindServers,
                            reach: Reachability | None = None) -> list[Device]:
        """One round: every discovery URL queried concurrently, results in the configured order."""
        reach = reach or Reachability()
        found = await asyncio.gather(*(self._query(find_servers, url, details, reach)
                                       for url in details.discovery_urls))
        return [device_for(url) for url in unique(u for urls in found for u in urls)]

    async def discover(
        self, details: str, properties: Mapping[str, bytes | None]
    ) -> AsyncIterator[list[Device]]:
        parsed = self.validate(details)
        find_servers = load_find_servers()
        reach = Reachability()
        log.info("opcua: discovering through %s every %g s", ", ".join(parsed.discovery_urls),
                 self.discovery_interval)
        last: list[Device] | None = None
        while True:
            devices = await self.discover_once(parsed, find_servers, reach)
            if last is None or not same_devices(devices, last):
                log.info("opcua: %d server(s): %s", len(devices), ", ".join(d.id for d in devices) or "-")
                last = devices
                yield devices
            await asyncio.sleep(self.discovery_interval)
