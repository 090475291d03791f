"""debugEcho: a handler for trying Akri without hardware (upstream `discovery-handlers/debug-echo`).

Discovery details: `descriptions: [string, ...]` (required). Each description is a device
whose id is the description and whose one property is `DEBUG_ECHO_DESCRIPTION`.

All devices go "offline" (an empty list is reported) while the availability file contains
`OFFLINE`; a missing file means online. Upstream polls the file every 10 s; here the file's
directory is watched, so a change is reported in milliseconds. As upstream, only the first
list and the OFFLINE<->online transitions are sent.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from akri.discovery.device import Device
from akri.discovery.filewatch import PathWatcher
from akri.discovery.handler import DiscoveryHandler, HandlerSetupError, InvalidDetails, load_details
from akri.model.errors import type_name

log = logging.getLogger(__name__)

DEBUG_ECHO_DESCRIPTION = "DEBUG_ECHO_DESCRIPTION"
DEFAULT_AVAILABILITY_FILE = "/tmp/debug-echo-availability.txt"
OFFLINE = "OFFLINE"
SHARED_ENV = "DEBUG_ECHO_INSTANCES_SHARED"
AVAILABILITY_FILE_ENV = "DEBUG_ECHO_AVAILABILITY_FILE"
# Guard against an event that never arrives (e.g. the file lives on a network filesystem).
RESYNC_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class DebugEchoDetails:
    descriptions: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"descriptions": list(self.descriptions)}


def parse_details(text: str) -> DebugEchoDetails:
    data = load_details(text)
    if "descriptions" not in data:
        raise InvalidDetails("descriptions", "is required (a list of device descriptions)")
    raw = data["descriptions"]
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise InvalidDetails("descriptions", f"must be a list of strings, got {type_name(raw)}")
    for i, item in enumerate(raw):
        if not isinstance(item, str):
            raise InvalidDetails(f"descriptions[{i}]", f"must be a string, got {type_name(item)}")
    return DebugEchoDetails(tuple(raw))


def parse_shared(value: str | None, *, default: bool | None = None) -> bool:
    """DEBUG_ECHO_INSTANCES_SHARED: `true` or `false` (any case). Unset uses `default` if given."""
    if value is None or not value.strip():
        if default is not None:
            return default
        raise HandlerSetupError(f"{SHARED_ENV} must be set to 'true' or 'false' for debugEcho")
    word = value.strip().lower()
    if word in ("true", "false"):
        return word == "true"
    raise HandlerSetupError(f"{SHARED_ENV} must be 'true' or 'false', got {value!r}")


def devices_for(details: DebugEchoDetails) -> list[Device]:
    return [Device(id=d, properties={DEBUG_ECHO_DESCRIPTION: d}) for d in details.descriptions]


class DebugEchoHandler(DiscoveryHandler):
    name = "debugEcho"

    def __init__(
        self,
        *,
        shared: bool | None = None,
        default_shared: bool | None = None,
        availability_file: str | os.PathLike[str] | None = None,
        poll_interval: float = 0.25,
    ) -> None:
        """`shared` None reads DEBUG_ECHO_INSTANCES_SHARED; when that is unset, `default_shared`
        applies (`akri discover` passes True) or HandlerSetupError is raised (`akri handler`)."""
        self.shared = shared if shared is not None else parse_shared(
            os.environ.get(SHARED_ENV), default=default_shared)
        self.availability_file = Path(
            availability_file or os.environ.get(AVAILABILITY_FILE_ENV) or DEFAULT_AVAILABILITY_FILE)
        self.poll_interval = poll_interval

    def validate(self, details: str) -> DebugEchoDetails:
        return parse_details(details)

    def is_offline(self) -> bool:
        try:
            return OFFLINE in self.availability_file.read_text(errors="replace")
        except FileNotFoundError:
            return False
        except OSError as exc:  # unreadable counts as online, as upstream's unwrap_or_default
            log.warning("cannot read availability file %s: %s", self.availability_file, exc)
            return False

    async def discover(
        self, details: str, properties: Mapping[str, bytes | None]
    ) -> AsyncIterator[list[Device]]:
        parsed = self.validate(details)
        online_devices = devices_for(parsed)
        with PathWatcher(self.availability_file, poll_interval=self.poll_interval) as watcher:
            offline = self.is_offline()
            log.info("debugEcho: %d device(s), %s (availability file %s, %s)", len(online_devices),
                     "OFFLINE" if offline else "online", self.availability_file, watcher.mode)
            yield [] if offline else list(online_devices)
            while True:
                try:  # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation (gh-86296)
                    async with asyncio.timeout(RESYNC_SECONDS):
                        await watcher.changed()
                except TimeoutError:
                    pass
                now_offline = self.is_offline()
                if now_offline != offline:
                    offline = now_offline
                    log.info("debugEcho: devices are now %s", "OFFLINE" if offline else "online")
                    yield [] if offline else list(online_devices)
