"""The ONVIF discovery handler (upstream `discovery-handlers/onvif`, spec §5.4).

Finds IP cameras (ONVIF NetworkVideoTransmitter) three ways:

* probe rounds every `discoveryIntervalSeconds` (default 10, as upstream): a WS-Discovery
  Probe by multicast on every interface and by unicast to each `directedProbes` entry,
  answers collected for `discoveryTimeoutSeconds` (default 1);
* Hello announcements, received on the WS-Discovery multicast group: the camera is checked
  and reported at once (upstream waits for its next round: 0-10 s, plus the 1 s window);
* Bye announcements: the camera's devices are removed at once.

Each camera must answer GetSystemDateAndTime (liveness, 1 s timeout); its IPv4 and MAC
addresses come from GetNetworkInterfaces, signed with a WS-UsernameToken when the discovery
properties hold a credential for it (with an `ipAddresses` include list, only when the XAddr's
host is one of those addresses: WS-Discovery is unauthenticated, so otherwise anyone could
announce a camera's UUID and collect its token). Filters (scopes, uuids, ipAddresses,
macAddresses) are evaluated every round. Devices: id `<xaddr>-<uuid>`, properties
ONVIF_DEVICE_SERVICE_URL, ONVIF_DEVICE_UUID, ONVIF_DEVICE_IP_ADDRESS, ONVIF_DEVICE_MAC_ADDRESS.
Shared: a camera on the network is visible from every node.

Set AKRI_ONVIF_ANNOUNCEMENTS=off to not listen for Hello/Bye (probe rounds only), e.g. when
port 3702 is not available to the handler. Bad datagrams and SOAP answers are skipped and
counted in `OnvifHandler.stats`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

from akri.discovery.device import Device
from akri.discovery.handler import DiscoveryHandler, HandlerSetupError
from akri.discovery.handlers.onvif import udp
from akri.discovery.handlers.onvif.client import DEFAULT_TIMEOUT, OnvifClient
from akri.discovery.handlers.onvif.credentials import CredentialStore
from akri.discovery.handlers.onvif.details import KNOWN_KEYS, OnvifDetails, parse_details
from akri.discovery.handlers.onvif.stats import OnvifStats
from akri.discovery.handlers.onvif.tracker import CameraTracker
from akri.discovery.handlers.onvif.wsdiscovery import MULTICAST_GROUP, PORT, Endpoint

log = logging.getLogger("akri.discovery.handlers.onvif")

ANNOUNCEMENTS_ENV = "AKRI_ONVIF_ANNOUNCEMENTS"


def announcements_from_env(value: str | None) -> bool:
    if value is None or not value.strip():
        return True
    word = value.strip().lower()
    if word in ("on", "true", "1", "yes"):
        return True
    if word in ("off", "false", "0", "no"):
        return False
    raise HandlerSetupError(f"{ANNOUNCEMENTS_ENV} must be 'on' or 'off', got {value!r}")


class OnvifHandler(DiscoveryHandler):
    name = "onvif"
    shared = True

    def __init__(self, *, multicast: bool = True, announcements: bool | None = None,
                 announcement_address: tuple[str, int] = (MULTICAST_GROUP, PORT),
                 soap_timeout: float = DEFAULT_TIMEOUT) -> None:
        """`multicast=False` and `announcement_address=("127.0.0.1", port)` keep everything on
        loopback (tests); `announcements` None reads AKRI_ONVIF_ANNOUNCEMENTS (default on)."""
        self.multicast = multicast
        self.soap_timeout = soap_timeout
        self.stats = OnvifStats()
        if announcements is None:
            announcements = announcements_from_env(os.environ.get(ANNOUNCEMENTS_ENV))
        self.listener = udp.AnnouncementListener(
            bind=announcement_address, multicast=multicast, stats=self.stats) if announcements else None

    def validate(self, details: str) -> OnvifDetails:
        return parse_details(details)

    async def _probe(self, **options: Any) -> list[Endpoint]:
        return await udp.probe(**{"multicast": self.multicast, "stats": self.stats, **options})

    async def _rounds(self, tracker: CameraTracker, details: OnvifDetails, first: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await tracker.run_round()
            except Exception:  # a round that failed is retried at the next; never end the stream
                log.exception("onvif: discovery round failed")
            first.set()
            if self.listener is not None:
                self.listener.rejoin()
            log.debug("onvif: round done in %.2f s, %d camera(s) known, %d reported; %s",
                      loop.time() - started, len(tracker.known), len(tracker.reported), self.stats.as_dict())
            await asyncio.sleep(max(0.0, details.interval - (loop.time() - started)))

    async def discover(
        self, details: str, properties: Mapping[str, bytes | None]
    ) -> AsyncIterator[list[Device]]:
        parsed = self.validate(details)
        if parsed.unknown_keys:
            log.warning("onvif: ignoring unknown discovery details key(s) %s (known: %s)",
                        ", ".join(parsed.unknown_keys), ", ".join(KNOWN_KEYS))
        credentials = CredentialStore.from_properties(properties)
        changed = asyncio.Event()
        first = asyncio.Event()
        async with OnvifClient(timeout=self.soap_timeout, stats=self.stats) as client:
            tracker = CameraTracker(parsed, credentials, client, probe=self._probe, on_change=changed.set)
            listening = self.listener is not None and await self.listener.subscribe(tracker.on_announcement)
            rounds = asyncio.create_task(self._rounds(tracker, parsed, first), name="onvif-rounds")
            log.info("onvif: discovering (probe every %g s, window %g s, %d directed target(s), %s)",
                     parsed.interval, parsed.discovery_timeout_seconds, len(parsed.directed_probes),
                     "listening for Hello/Bye" if listening else "probes only")
            try:
                await first.wait()
                while True:
                    changed.clear()
                    yield tracker.devices()
                    await changed.wait()
            finally:
                rounds.cancel()
                await asyncio.gather(rounds, return_exceptions=True)
                if self.listener is not None:
                    self.listener.unsubscribe(tracker.on_announcement)
                await tracker.close()

    async def close(self) -> None:
        if self.listener is not None:
            self.listener.close()
