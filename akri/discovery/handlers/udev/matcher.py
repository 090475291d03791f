"""Apply compiled rules to real devices, with udev's semantics.

Devices come from pyudev (libudev reads sysfs and the udev database exactly as udevd does:
the same sd_device code returns sysattr values, properties and tags). The rule test itself
is ours, so every field behaves as in udev-rules.c:

* DEVPATH, KERNEL, SUBSYSTEM, DRIVER, ENV{k}: the string (missing = empty) against the value;
* ATTR{k}: a missing or unreadable attribute fails the filter whatever the operator; the
  value loses trailing whitespace unless the rule value itself ends in whitespace;
* TAG: `==` passes when some current tag matches, `!=` when none does;
* KERNELS, SUBSYSTEMS, DRIVERS, ATTRS{k}, TAGS: ALL of them must pass on ONE device, which is
  the device itself or one of its ancestors (udev walks up the parent chain). Upstream Akri
  tests each one on any ancestor independently, and makes `!=` mean "no ancestor matches".

Enumeration is narrowed with libudev's own filters (they use fnmatch too) only where that
can only add candidates; the rule test then runs on every candidate.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator

import pyudev

from akri.discovery.handlers.udev.glob import MatchType, attribute_for_match
from akri.discovery.handlers.udev.properties import Member
from akri.discovery.handlers.udev.rules import Rule, SubsystemAttribute, Token

log = logging.getLogger(__name__)

_UNSET = object()


class SysDevice:
    """A device with the values rules read, each read once and cached."""

    __slots__ = ("_attrs", "_cache", "_dev", "_parent", "_props", "devpath")

    def __init__(self, dev: pyudev.Device, cache: DeviceCache) -> None:
        self._dev = dev
        self._cache = cache
        self.devpath: str = dev.device_path
        self._attrs: dict[str, bytes | None] = {}
        self._props: dict[str, str] | None = None
        self._parent: object = _UNSET

    @property
    def sysname(self) -> str:
        return self._dev.sys_name

    @property
    def subsystem(self) -> str | None:
        return self._dev.subsystem

    @property
    def driver(self) -> str | None:
        return self._dev.driver

    @property
    def devnode(self) -> str | None:
        return self._dev.device_node

    @property
    def properties(self) -> dict[str, str]:
        if self._props is None:
            try:
                self._props = dict(self._dev.properties.items())
            except (UnicodeDecodeError, OSError) as exc:
                log.debug("cannot read properties of %s: %s", self.devpath, exc)
                self._props = {}
        return self._props

    def current_tags(self) -> list[bytes]:
        # udev rules see the device's current tags; sd-device exports them as CURRENT_TAGS
        raw = self.properties.get("CURRENT_TAGS", "")
        return [os.fsencode(t) for t in raw.split(":") if t]

    def sysattr(self, name: str) -> bytes | None:
        try:
            return self._attrs[name]
        except KeyError:
            pass
        try:
            value = self._dev.attributes.get(os.fsencode(name))
        except (OSError, ValueError) as exc:  # EACCES, EISDIR, ... all mean "no value"
            log.debug("cannot read attribute %s of %s: %s", name, self.devpath, exc)
            value = None
        self._attrs[name] = value
        return value

    @property
    def parent(self) -> SysDevice | None:
        if self._parent is _UNSET:
            p = self._dev.parent
            self._parent = None if p is None else self._cache.wrap(p)
        return self._parent  # type: ignore[return-value]

    def chain(self) -> Iterator[SysDevice]:
        """The device, then its ancestors from nearest to farthest."""
        node: SysDevice | None = self
        while node is not None:
            yield node
            node = node.parent


class DeviceCache:
    """One pass over the devices: wrappers shared by devpath, so an ancestor is read once."""

    def __init__(self, context: pyudev.Context) -> None:
        self.context = context
        self._by_path: dict[str, SysDevice] = {}
        self._named: dict[SubsystemAttribute, bytes | None] = {}

    def wrap(self, dev: pyudev.Device) -> SysDevice:
        found = self._by_path.get(dev.device_path)
        if found is None:
            found = self._by_path[dev.device_path] = SysDevice(dev, self)
        return found

    def get(self, devpath: str) -> SysDevice | None:
        """The device at `devpath` now, or None when it is gone."""
        found = self._by_path.get(devpath)
        if found is not None:
            return found
        try:
            return self.wrap(pyudev.Devices.from_sys_path(self.context, "/sys" + devpath))
        except (pyudev.DeviceNotFoundError, OSError, ValueError):  # gone (or a name pyudev
            return None  # cannot decode: UnicodeError is a ValueError)

    def named_attribute(self, ref: SubsystemAttribute) -> bytes | None:
        """udev_resolve_subsys_kernel(): an attribute of the device named [subsystem/kernel]."""
        if ref not in self._named:
            value = None
            try:
                dev = pyudev.Devices.from_name(self.context, ref.subsystem, ref.sysname)
                value = dev.attributes.get(os.fsencode(ref.attribute))
            except (pyudev.DeviceNotFoundError, OSError, ValueError):
                value = None
            self._named[ref] = value
        return self._named[ref]


def token_passes(token: Token, dev: SysDevice, cache: DeviceCache) -> bool:
    """udev_rule_apply_token_to_event() for one match token on one device."""
    value = token.value
    field = token.field
    if field in ("TAG", "TAGS"):
        want = not value.negate
        for tag in dev.current_tags():
            if value.test(tag) == want:
                return want
        return not want
    if field in ("ATTR", "ATTRS"):
        if token.subsystem_attribute is not None:
            raw = cache.named_attribute(token.subsystem_attribute)
        else:
            raw = dev.sysattr(token.key or "")
        if raw is None:
            return False  # udev: an attribute it cannot read fails the filter, == or !=
        return value.test(attribute_for_match(raw, value))
    if field in ("KERNEL", "KERNELS"):
        s = dev.sysname
    elif field in ("SUBSYSTEM", "SUBSYSTEMS"):
        s = dev.subsystem
    elif field in ("DRIVER", "DRIVERS"):
        s = dev.driver
    elif field == "DEVPATH":
        s = dev.devpath
    elif field == "ENV":
        s = dev.properties.get(token.key or "")
    else:  # pragma: no cover - the parser only produces the fields above
        raise AssertionError(field)
    return value.test(os.fsencode(s) if s else b"")


def rule_matches(rule: Rule, dev: SysDevice, cache: DeviceCache) -> bool:
    """Whether udev would run this rule's actions for an event on `dev`."""
    for token in rule.device_tokens:
        if not token_passes(token, dev, cache):
            return False
    if not rule.ancestor_tokens:
        return True
    # udev_rule_apply_parent_token_to_event(): one device of the chain must pass them all
    return any(all(token_passes(t, node, cache) for t in rule.ancestor_tokens) for node in dev.chain())


def member_of(dev: SysDevice) -> Member:
    """The reported member: the device's node, else its nearest ancestor's (path and node)."""
    for node in dev.chain():
        devnode = node.devnode
        if devnode:
            return Member(node.devpath, devnode)
    return Member(dev.devpath, None)


def enumerable(dev: SysDevice) -> bool:
    """Whether a full enumeration can return this device (so events and scans agree).

    libudev enumerates /sys/bus/*/devices and /sys/class/*: devices under /devices that
    have a subsystem. Events also come for modules, drivers and subsystems; those are not.
    """
    return dev.devpath.startswith("/devices/") and bool(dev.subsystem)


def _narrowable(token: Token) -> str | None:
    """The value if libudev's enumerator filter for this token can only widen the result."""
    v = token.value
    if v.negate or v.with_empty or v.match_type not in (MatchType.PLAIN, MatchType.GLOB):
        return None
    if "|" in v.text or "\\" in v.text:
        return None
    if v.match_type is MatchType.GLOB and (token.field == "TAG" or not v.text.isascii() or "?" in v.text
                                           or "[" in v.text):
        # The enumerator compares tags literally, and runs fnmatch in this process's locale
        # (UTF-8): there '?' and brackets take a character where udevd (C locale) takes a
        # byte. Only '*' means the same in both.
        return None
    return v.text


def candidates(context: pyudev.Context, rule: Rule) -> Iterable[pyudev.Device]:
    """Devices that may match `rule`: libudev's enumerator, narrowed where that is safe."""
    enumerator = context.list_devices()
    for token in rule.device_tokens:
        text = _narrowable(token)
        if text is None:
            continue
        if token.field == "SUBSYSTEM":
            enumerator.match_subsystem(text)
        elif token.field == "KERNEL":
            enumerator.match_sys_name(text)
        elif token.field == "TAG":
            enumerator.match_tag(text)
    return enumerator


def scan(context: pyudev.Context, rules: Iterable[Rule]) -> dict[str, Member]:
    """Every matching device now: devpath of the matched device -> its member."""
    cache = DeviceCache(context)
    matched: dict[str, Member] = {}
    for rule in rules:
        for raw in candidates(context, rule):
            try:
                dev = cache.wrap(raw)
                if dev.devpath in matched or not enumerable(dev):
                    continue
                if rule_matches(rule, dev, cache):
                    matched[dev.devpath] = member_of(dev)
            except ValueError as exc:
                _skip(exc)
    return matched


def _skip(exc: Exception) -> None:
    # pyudev decodes sysfs names strictly as UTF-8; a device named otherwise (an interface
    # can be called almost anything) cannot be reported anyway: Device ids are UTF-8.
    # (Its name cannot be logged either: pyudev raises again while decoding it.)
    log.warning("skipping a device whose sysfs data is not UTF-8: %s", exc)


def subtree(context: pyudev.Context, cache: DeviceCache, devpath: str) -> list[SysDevice]:
    """The device at `devpath` and every device below it (empty when it is gone)."""
    top = cache.get(devpath)
    if top is None:
        return []
    found = [top]
    for raw in context.list_devices().match_parent(top._dev):
        try:
            if raw.device_path != devpath:
                found.append(cache.wrap(raw))
        except ValueError as exc:
            _skip(exc)
    return found


def match_devices(
    rules: Iterable[Rule], devices: Iterable[SysDevice], cache: DeviceCache
) -> dict[str, Member | None]:
    """For each given device: its member when some rule matches it, else None."""
    rules = tuple(rules)
    result: dict[str, Member | None] = {}
    for dev in devices:
        try:
            hit = enumerable(dev) and any(rule_matches(rule, dev, cache) for rule in rules)
            result[dev.devpath] = member_of(dev) if hit else None
        except ValueError as exc:
            _skip(exc)
            result[dev.devpath] = None
    return result
