"""The udev discovery handler (upstream `discovery-handlers/udev`, spec §5.3).

Discovery details::

    udevRules: ['SUBSYSTEM=="video4linux", ATTRS{idVendor}=="05a9"', ...]   # required
    groupRecursive: false      # report devices below another matched device with it
    permissions: rwm           # device-spec permissions: r w m rw rm rwm wm

Discovery properties read: ``devicePluginResourceName`` (adds USB_RESOURCE_* / PCI_RESOURCE_*
properties) and ``vfioPassthrough`` ("true": add the PCI device's /dev/vfio nodes).

Upstream enumerates every 10 s. Here the devices are enumerated once, then every uevent
re-matches only the devices it touches (the device, and the devices below it when a rule
looks at ancestors or a reported device lies below it), and a new list is sent only when it
changed. A full rescan runs every `resync_seconds` (default 300, env
AKRI_UDEV_RESYNC_SECONDS) and whenever events were lost, in case an event never arrived.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pyudev

from akri.discovery.device import Device, same_devices
from akri.discovery.handler import DiscoveryHandler, HandlerSetupError, InvalidDetails, load_details
from akri.discovery.handlers.udev import matcher
from akri.discovery.handlers.udev.monitor import (
    UDEV_CONTROL,
    MonitorStats,
    UeventMonitor,
    check_source,
    choose_source_async,
)
from akri.discovery.handlers.udev.properties import (
    DEFAULT_PERMISSIONS,
    PERMISSIONS,
    Member,
    build_devices,
)
from akri.discovery.handlers.udev.rules import Rule, RuleError, SubsystemAttribute, parse_rule

log = logging.getLogger(__name__)

RESYNC_ENV = "AKRI_UDEV_RESYNC_SECONDS"
DEFAULT_RESYNC_SECONDS = 300.0
RESOURCE_NAME_PROPERTY = "devicePluginResourceName"
VFIO_PROPERTY = "vfioPassthrough"


@dataclass(frozen=True, slots=True)
class UdevDetails:
    udev_rules: tuple[str, ...]
    rules: tuple[Rule, ...]
    group_recursive: bool = False
    permissions: str = DEFAULT_PERMISSIONS

    def to_dict(self) -> dict[str, Any]:
        """The canonical form, as upstream serializes it."""
        return {"udevRules": list(self.udev_rules), "groupRecursive": self.group_recursive,
                "permissions": self.permissions}


@dataclass(frozen=True, slots=True)
class UdevOptions:
    """What the discovery properties ask for."""

    resource_name: str | None = None
    vfio: bool = False


def parse_details(text: str) -> UdevDetails:
    """Parse and check discovery details; InvalidDetails names the field (and rule position)."""
    data = load_details(text)
    if "udevRules" not in data:
        raise InvalidDetails("udevRules", "is required (a list of udev rules)")
    raw_rules = data["udevRules"]
    if not isinstance(raw_rules, list):
        raise InvalidDetails("udevRules", f"must be a list of strings, got {type(raw_rules).__name__}")
    rules: list[Rule] = []
    for i, text_rule in enumerate(raw_rules):
        where = f"udevRules[{i}]"
        if not isinstance(text_rule, str):
            raise InvalidDetails(where, f"must be a string, got {type(text_rule).__name__}")
        try:
            rules.append(parse_rule(text_rule))
        except RuleError as exc:
            raise InvalidDetails(where, str(exc)) from None
    group_recursive = data.get("groupRecursive", False)
    if group_recursive is None:
        group_recursive = False
    if not isinstance(group_recursive, bool):
        raise InvalidDetails("groupRecursive", f"must be true or false, got {group_recursive!r}")
    permissions = data.get("permissions", DEFAULT_PERMISSIONS)
    if permissions is None:
        permissions = DEFAULT_PERMISSIONS
    if not isinstance(permissions, str) or permissions not in PERMISSIONS:
        raise InvalidDetails("permissions", f"must be one of {', '.join(PERMISSIONS)}, got {permissions!r}")
    return UdevDetails(tuple(raw_rules), tuple(rules), group_recursive, permissions)


def _property_text(properties: Mapping[str, bytes | str | None], name: str) -> str | None:
    value = properties.get(name)
    if value is None:
        return None
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidDetails(f"discoveryProperties.{name}", "is not valid UTF-8") from None
    return value.strip()


def parse_options(properties: Mapping[str, bytes | str | None] | None) -> UdevOptions:
    properties = properties or {}
    resource = _property_text(properties, RESOURCE_NAME_PROPERTY)
    vfio = (_property_text(properties, VFIO_PROPERTY) or "").lower() == "true"
    return UdevOptions(resource_name=resource or None, vfio=vfio)


def resync_seconds_from_env(value: str | None) -> float:
    if value is None or not value.strip():
        return DEFAULT_RESYNC_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        raise HandlerSetupError(f"{RESYNC_ENV} must be a number of seconds, got {value!r}") from None
    if not seconds > 0:
        raise HandlerSetupError(f"{RESYNC_ENV} must be positive, got {value!r}")
    return seconds


class UdevSession:
    """The state of one discovery request: which devices match, kept current by events."""

    def __init__(self, details: UdevDetails, options: UdevOptions, *, sysfs_root: str = "/sys") -> None:
        self.details = details
        self.options = options
        self.sysfs_root = sysfs_root
        self.context = pyudev.Context()
        self.matched: dict[str, Member] = {}  # devpath of a matched device -> reported member
        self._uses_ancestors = any(r.uses_ancestors for r in details.rules)
        self._referenced: tuple[SubsystemAttribute, ...] = tuple(
            ref for r in details.rules for ref in r.referenced_devices)

    @staticmethod
    def scan(rules: Iterable[Rule]) -> dict[str, Member]:
        """A full enumeration (thread-safe: it uses its own libudev context)."""
        return matcher.scan(pyudev.Context(), rules)

    def devices(self) -> list[Device]:
        return build_devices(
            self.matched.values(),
            group_recursive=self.details.group_recursive,
            permissions=self.details.permissions,
            resource_name=self.options.resource_name,
            vfio=self.options.vfio,
            sysfs_root=self.sysfs_root,
        )

    def _references(self, event: Mapping[str, str]) -> bool:
        if not self._referenced:
            return False
        sysname = event.get("DEVPATH", "").rsplit("/", 1)[-1]
        subsystem = event.get("SUBSYSTEM")
        return any(ref.subsystem == subsystem and ref.sysname.replace("/", "!") == sysname
                   for ref in self._referenced)

    def _drop_below(self, devpath: str, *, inclusive: bool = True) -> None:
        prefix = devpath + "/"
        for key in [k for k in self.matched if k.startswith(prefix) or (inclusive and k == devpath)]:
            del self.matched[key]

    def _has_matched_below(self, devpath: str) -> bool:
        prefix = devpath + "/"
        return any(k.startswith(prefix) for k in self.matched)

    def apply_events(self, events: Iterable[Mapping[str, str]]) -> bool:
        """Update the matches for a batch of uevents. True means: a full rescan is needed."""
        # devpath -> whether the devices below it must be re-matched too
        touched: dict[str, bool] = {}
        for event in events:
            devpath = event.get("DEVPATH", "")
            action = event.get("ACTION", "")
            if not devpath.startswith("/"):
                continue
            if self._references(event):
                return True  # an attribute every rule evaluation reads has changed
            if action == "remove":
                self._drop_below(devpath)
                for key in [k for k in touched if k == devpath or k.startswith(devpath + "/")]:
                    del touched[key]
                continue
            deep = self._uses_ancestors or self._has_matched_below(devpath)
            if action == "move":
                old = event.get("DEVPATH_OLD")
                if old:
                    self._drop_below(old)
                deep = True  # every device below moved with it
            touched[devpath] = touched.get(devpath, False) or deep
        if not touched:
            return False
        cache = matcher.DeviceCache(self.context)
        for devpath, deep in touched.items():
            if deep:
                self._drop_below(devpath, inclusive=False)
                found = matcher.subtree(self.context, cache, devpath)
            else:
                dev = cache.get(devpath)
                found = [dev] if dev is not None else []
            if not found:
                self._drop_below(devpath)
                continue
            for path, member in matcher.match_devices(self.details.rules, found, cache).items():
                if member is None:
                    self.matched.pop(path, None)
                else:
                    self.matched[path] = member
        return False


class UdevHandler(DiscoveryHandler):
    """Finds local devices with udev rules; devices are never shared between nodes."""

    name = "udev"
    shared = False

    def __init__(self, *, resync_seconds: float | None = None, source: str = "auto",
                 sysfs_root: str = "/sys", udev_control: str = UDEV_CONTROL,
                 **_other_handlers_options: Any) -> None:
        """`resync_seconds`: full rescan interval (default: env AKRI_UDEV_RESYNC_SECONDS, else
        300). `source`: uevents from "auto" (udev when systemd-udevd runs, else kernel),
        "udev" or "kernel". `udev_control`: the socket that tells whether udevd runs. Options
        meant for other handlers (e.g. debugEcho's) are ignored.
        """
        self.resync_seconds = (resync_seconds if resync_seconds is not None
                               else resync_seconds_from_env(os.environ.get(RESYNC_ENV)))
        if not self.resync_seconds > 0:
            raise HandlerSetupError(f"resync_seconds must be positive, got {self.resync_seconds!r}")
        check_source(source)  # reject a bad value now, not on the first request
        self.source = source
        self.udev_control = udev_control
        self.sysfs_root = sysfs_root
        self.stats = MonitorStats()  # shared by every request's monitor
        self.rescans = 0
        self.source_in_use: str | None = None  # where the latest request reads events from

    async def current_source(self) -> str:
        """Where events should come from now; the udevd probe runs off the event loop."""
        return await choose_source_async(self.source, control=self.udev_control)

    def _reopen(self, monitor: UeventMonitor, source: str, loop: asyncio.AbstractEventLoop) -> UeventMonitor:
        """A monitor for the source to use now: udevd started or stopped, or the socket broke.

        Events may have been missed meanwhile; the caller rescans.
        """
        try:
            fresh = UeventMonitor(source, stats=self.stats)
        except OSError as exc:
            log.error("udev: cannot open a uevent socket (%s); retrying at the next rescan", exc)
            monitor.failed = True
            return monitor
        monitor.close()
        fresh.attach(loop)
        self.source_in_use = fresh.source
        log.info("udev: now reading events from %s", fresh.source)
        return fresh

    @property
    def malformed_events(self) -> int:
        return self.stats.malformed

    def validate(self, details: str) -> UdevDetails:
        return parse_details(details)

    async def discover(
        self, details: str, properties: Mapping[str, bytes | None]
    ) -> AsyncIterator[list[Device]]:
        parsed = self.validate(details)
        options = parse_options(properties)
        session = UdevSession(parsed, options, sysfs_root=self.sysfs_root)
        loop = asyncio.get_running_loop()
        # Subscribe before the first enumeration, so nothing happens unseen in between.
        source = await self.current_source()
        monitor = UeventMonitor(source, stats=self.stats)
        monitor.attach(loop)
        self.source_in_use = source
        try:
            session.matched = await asyncio.to_thread(session.scan, parsed.rules)
            last = session.devices()
            log.info("udev: %d rule(s), %d device(s), events from %s", len(parsed.rules), len(last), source)
            yield last
            next_resync = loop.time() + self.resync_seconds
            while True:
                batch = await monitor.next_batch(max(0.0, next_resync - loop.time()))
                rescan = batch is None or monitor.overflowed
                monitor.overflowed = False
                if batch:
                    rescan = session.apply_events(batch) or rescan
                if rescan:
                    # udevd started or stopped? asked at a resync only (a connect per event is too many)
                    recheck = monitor.failed or batch is None
                    source = await self.current_source() if recheck else monitor.source
                    if monitor.failed or source != monitor.source:
                        monitor = self._reopen(monitor, source, loop)
                    try:
                        session.matched = await asyncio.to_thread(session.scan, parsed.rules)
                        self.rescans += 1
                    except OSError as exc:  # keep the last good state, try again later
                        log.error("udev: rescan failed (%s); retrying in %s s", exc, self.resync_seconds)
                    next_resync = loop.time() + self.resync_seconds
                devices = session.devices()
                if not same_devices(devices, last):
                    last = devices
                    yield devices
        finally:
            monitor.close()
