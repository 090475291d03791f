"""The cameras of one discovery stream: what probes and announcements revealed, which of them
answer, which pass the filters, and the device list that follows.

State: `known` maps each device-service URL (XAddr) to the latest Candidate seen for it (by a
probe or a Hello); `reported` maps it to the Device when the camera is alive and passes the
filters. Every round re-evaluates every known camera (liveness, then filters), so a filter
result is never stale (upstream evaluated a camera only when it first appeared). A camera
stays known while it answers GetSystemDateAndTime, even if one probe answer was lost; a
camera that stops answering is dropped at the next round, one that says Bye at once.

An evaluation applies only if its Candidate is still the current one for that XAddr: a Bye
or a newer Hello during a round wins over the round's older view.

Credentials and WS-Discovery: announcements are unauthenticated, so anyone on the segment can
announce a camera's UUID with an XAddr of their own and collect the WS-UsernameToken digest the
camera's credential produces (crackable offline; upstream sends it to whoever announced). Nothing
in an announcement can be verified, so the trust has to come from the operator: when the
Configuration has an `ipAddresses` include list, credentials go only to XAddrs whose host is one
of those addresses (the cameras the operator named). Another host is still probed without
credentials (so its IP and MAC stay unknown, and the include filter drops it), and the withheld
call is counted in `stats.credentials_withheld`. Without such a list credentials are sent as
upstream does.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from akri.discovery.device import Device
from akri.discovery.filters import FilterAction, FilterList, execute_filter
from akri.discovery.handlers.onvif.client import OnvifClient
from akri.discovery.handlers.onvif.credentials import Credential, CredentialStore
from akri.discovery.handlers.onvif.details import OnvifDetails
from akri.discovery.handlers.onvif.soap import NetworkInfo, SoapError
from akri.discovery.handlers.onvif.stats import OnvifStats
from akri.discovery.handlers.onvif.udp import ProbeTarget
from akri.discovery.handlers.onvif.wsdiscovery import Endpoint, Message

log = logging.getLogger("akri.discovery.handlers.onvif")

SERVICE_URL = "ONVIF_DEVICE_SERVICE_URL"
UUID = "ONVIF_DEVICE_UUID"
IP_ADDRESS = "ONVIF_DEVICE_IP_ADDRESS"
MAC_ADDRESS = "ONVIF_DEVICE_MAC_ADDRESS"

# Bounds against a flood of announcements with made-up addresses.
MAX_KNOWN = 1024
MAX_CONCURRENT_CAMERAS = 32
RECENT_MESSAGES = 256
# Apply a camera's clock to UsernameToken `Created` only when it is this far off ours:
# cameras reject tokens created too far from their own time.
CLOCK_SKEW_TOLERANCE = dt.timedelta(seconds=5)
# Answers to the unauthenticated liveness call that mean "I am here but want credentials".
AUTH_STATUSES = (400, 401, 403)


@dataclass(frozen=True, slots=True, eq=False)
class Candidate:
    """One device-service URL of one endpoint, as last seen (identity matters, see module doc)."""

    xaddr: str
    uuid: str
    scopes: tuple[str, ...]


def xaddr_host_listed(xaddr: str, addresses: tuple[str, ...]) -> bool:
    """True when `xaddr`'s host is an IP address equal to one of `addresses` (a host name never
    matches: it could resolve anywhere)."""
    try:
        host = ipaddress.ip_address(urlsplit(xaddr).hostname or "")
    except ValueError:
        return False
    for address in addresses:
        try:
            if ipaddress.ip_address(address.strip()) == host:
                return True
        except ValueError:
            continue
    return False


class _Dead:
    def __repr__(self) -> str:
        return "DEAD"


DEAD: Final = _Dead()
Outcome = Device | None | _Dead  # a device to report, filtered out, or not answering


def _casefold_equal(value: str, pattern: str) -> bool:
    return value.casefold() == pattern.casefold()


def _equal(value: str, pattern: str) -> bool:
    return value == pattern


ProbeFunction = Callable[..., Awaitable[list[Endpoint]]]


class CameraTracker:
    def __init__(self, details: OnvifDetails, credentials: CredentialStore, client: OnvifClient, *,
                 probe: ProbeFunction, on_change: Callable[[], None], stats: OnvifStats | None = None,
                 max_known: int = MAX_KNOWN) -> None:
        self.details = details
        self.credentials = credentials
        self.client = client
        self.probe = probe
        self.on_change = on_change
        self.stats = stats if stats is not None else client.stats
        self.max_known = max_known
        self.known: dict[str, Candidate] = {}
        self.reported: dict[str, Device] = {}
        self.clock_offsets: dict[str, dt.timedelta] = {}
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self._limit = asyncio.Semaphore(MAX_CONCURRENT_CAMERAS)

    def devices(self) -> list[Device]:
        return sorted(self.reported.values(), key=lambda d: d.id)

    # ------------------------------------------------------------ learning about cameras

    def learn(self, endpoint: Endpoint) -> list[Candidate]:
        """Record the endpoint's XAddrs as current candidates; returns the new Candidates."""
        uuid = endpoint.uuid
        learned = []
        for xaddr in endpoint.xaddrs:
            if xaddr not in self.known and len(self.known) >= self.max_known:
                self.stats.skip("too-many-cameras", xaddr, f"already tracking {self.max_known} addresses")
                continue
            candidate = Candidate(xaddr, uuid, endpoint.scopes)
            self.known[xaddr] = candidate
            learned.append(candidate)
        return learned

    def forget(self, uuid: str) -> bool:
        """Drop every candidate of `uuid`; True if the device list changed."""
        gone = [x for x, c in self.known.items() if c.uuid == uuid]
        changed = False
        for xaddr in gone:
            self.known.pop(xaddr, None)
            self.clock_offsets.pop(xaddr, None)
            changed |= self.reported.pop(xaddr, None) is not None
        return changed

    def credential_for(self, candidate: Candidate) -> Credential | None:
        """The credential to sign calls to `candidate` with (see the module docstring)."""
        credential = self.credentials.get(candidate.uuid)
        listed = self.details.ip_addresses
        if credential is None or listed is None or listed.action is not FilterAction.INCLUDE:
            return credential
        if xaddr_host_listed(candidate.xaddr, listed.items):
            return credential
        self.stats.withhold_credentials(candidate.xaddr)
        return None

    # ------------------------------------------------------------ evaluating one camera

    async def _alive(self, candidate: Candidate) -> dt.datetime | _Dead | None:
        try:
            return await self.client.get_system_date_and_time(candidate.xaddr, quiet=True)
        except SoapError as exc:
            credential = self.credential_for(candidate)
            if credential is None or not (exc.reason == "fault" or exc.status in AUTH_STATUSES):
                return DEAD
        try:  # some cameras want credentials even for this call
            return await self.client.get_system_date_and_time(candidate.xaddr, credential, quiet=True)
        except SoapError:
            return DEAD

    def _filtered(self, name: str, filter_list: FilterList | None, values: list[str] | None,
                  predicate: Callable[[str, str], bool], candidate: Candidate) -> bool:
        if execute_filter(filter_list, values, predicate):
            log.debug("onvif: %s filtered out by %s (value %s)", candidate.xaddr, name, values)
            return True
        return False

    async def evaluate(self, candidate: Candidate) -> Outcome:
        d = self.details
        async with self._limit:
            camera_time = await self._alive(candidate)
            if camera_time is DEAD:
                return DEAD
            if isinstance(camera_time, dt.datetime):
                offset = camera_time - dt.datetime.now(dt.UTC)
                if abs(offset) > CLOCK_SKEW_TOLERANCE:
                    self.clock_offsets[candidate.xaddr] = offset
                else:
                    self.clock_offsets.pop(candidate.xaddr, None)
            if self._filtered("scopes", d.scopes, list(candidate.scopes), _equal, candidate):
                return None
            if self._filtered("uuids", d.uuids, [candidate.uuid], _casefold_equal, candidate):
                return None
            try:
                info = await self.client.get_network_interfaces(
                    candidate.xaddr, self.credential_for(candidate),
                    clock_offset=self.clock_offsets.get(candidate.xaddr))
            except SoapError:
                info = NetworkInfo(None, None)
        ip = [info.ip_address] if info.ip_address else None
        mac = [info.mac_address] if info.mac_address else None
        if self._filtered("ipAddresses", d.ip_addresses, ip, _casefold_equal, candidate):
            return None
        if self._filtered("macAddresses", d.mac_addresses, mac, _casefold_equal, candidate):
            return None
        properties = {SERVICE_URL: candidate.xaddr, UUID: candidate.uuid}
        if info.ip_address:
            properties[IP_ADDRESS] = info.ip_address
        if info.mac_address:
            properties[MAC_ADDRESS] = info.mac_address
        return Device(id=f"{candidate.xaddr}-{candidate.uuid}", properties=properties)

    def apply(self, candidate: Candidate, outcome: Outcome) -> bool:
        """Record an evaluation's outcome if `candidate` is still current; True on a change."""
        if self.known.get(candidate.xaddr) is not candidate:
            return False
        before = self.reported.get(candidate.xaddr)
        if outcome is DEAD:
            del self.known[candidate.xaddr]
            self.clock_offsets.pop(candidate.xaddr, None)
            self.reported.pop(candidate.xaddr, None)
        elif outcome is None:
            self.reported.pop(candidate.xaddr, None)
        else:
            assert isinstance(outcome, Device)
            self.reported[candidate.xaddr] = outcome
        return self.reported.get(candidate.xaddr) != before

    # ------------------------------------------------------------ rounds and announcements

    async def run_round(self) -> None:
        """Probe, then re-evaluate every known camera concurrently, then report changes."""
        d = self.details
        for endpoint in await self.probe(
                window=d.discovery_timeout_seconds,
                directed=[ProbeTarget(p.host, p.port) for p in d.directed_probes]):
            self.learn(endpoint)
        snapshot = list(self.known.values())
        outcomes = await asyncio.gather(*(self.evaluate(c) for c in snapshot))
        changed = False
        for candidate, outcome in zip(snapshot, outcomes, strict=True):
            changed |= self.apply(candidate, outcome)
        if changed:
            self.on_change()

    def _duplicate(self, message: Message) -> bool:
        # SOAP-over-UDP repeats every announcement; one evaluation is enough
        key = f"{message.kind}:{message.message_id}"
        if not message.message_id:
            return False
        if key in self._recent:
            return True
        self._recent[key] = None
        if len(self._recent) > RECENT_MESSAGES:
            self._recent.popitem(last=False)
        return False

    def on_announcement(self, message: Message, source: tuple[str, int]) -> None:
        if self._duplicate(message):
            return
        endpoint = message.endpoints[0]
        if message.kind == "Bye":
            if self.forget(endpoint.uuid):
                log.info("onvif: camera %s said Bye", endpoint.uuid)
                self.on_change()
            return
        if endpoint.types and not endpoint.is_video_transmitter:
            return  # a Hello from some other kind of device (printer, computer)
        if not endpoint.xaddrs:  # it did not say where: ask it, by a directed probe
            self._spawn(self._probe_announcer(source))
            return
        for candidate in self.learn(endpoint):
            self._spawn(self._evaluate_now(candidate))

    async def _evaluate_now(self, candidate: Candidate) -> None:
        if self.apply(candidate, await self.evaluate(candidate)):
            log.info("onvif: camera %s at %s reported after its Hello", candidate.uuid, candidate.xaddr)
            self.on_change()

    async def _probe_announcer(self, source: tuple[str, int]) -> None:
        # the WS-Discovery port, and the port the Hello came from (stacks often send from it)
        targets = list(dict.fromkeys([ProbeTarget(source[0]), ProbeTarget(source[0], source[1])]))
        endpoints = await self.probe(window=self.details.discovery_timeout_seconds,
                                     directed=targets, multicast=False)
        candidates = [c for e in endpoints for c in self.learn(e)]
        outcomes = await asyncio.gather(*(self.evaluate(c) for c in candidates))
        if any([self.apply(c, o) for c, o in zip(candidates, outcomes, strict=True)]):
            self.on_change()

    def _spawn(self, coro: Awaitable[None]) -> None:
        async def guarded() -> None:
            try:
                await coro
            except Exception:  # an announcement never ends discovery
                log.exception("onvif: handling an announcement failed")

        task = asyncio.create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
