"""Which devices an event re-matches (UdevSession.apply_events), on this machine's devices.

The events are the dicts parse_uevent returns; the devices they name are real, so the
session reads their current state from sysfs exactly as it does for a live event.
"""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest

from akri.discovery.handler import HandlerSetupError
from akri.discovery.handlers.udev import UdevHandler
from akri.discovery.handlers.udev.handler import (
    DEFAULT_RESYNC_SECONDS,
    UdevOptions,
    UdevSession,
    parse_details,
    resync_seconds_from_env,
)
from akri.discovery.handlers.udev.monitor import UeventMonitor, choose_source, udevd_running
from akri.discovery.handlers.udev.properties import Member, pci_address

LO = "/devices/virtual/net/lo"
NULL = "/devices/virtual/mem/null"


def session(*rules: str) -> UdevSession:
    details = parse_details("udevRules:\n" + "".join(f"- '{r}'\n" for r in rules))
    s = UdevSession(details, UdevOptions())
    s.matched = s.scan(details.rules)
    return s


def event(action: str, devpath: str, **extra: str) -> dict[str, str]:
    return {"ACTION": action, "DEVPATH": devpath, **extra}


def test_remove_drops_the_device_and_change_reads_it_again() -> None:
    s = session('SUBSYSTEM=="net", KERNEL=="lo"')
    assert s.matched == {LO: Member(LO, None)}
    assert s.apply_events([event("remove", LO, SUBSYSTEM="net")]) is False
    assert s.matched == {}
    assert [d.id for d in s.devices()] == []
    s.apply_events([event("change", LO, SUBSYSTEM="net")])
    assert s.matched == {LO: Member(LO, None)}


def test_remove_then_add_in_one_batch_ends_with_the_device() -> None:
    s = session('KERNEL=="null"')
    s.apply_events([event("remove", NULL), event("add", NULL)])
    assert s.matched == {NULL: Member(NULL, "/dev/null")}
    s.apply_events([event("add", NULL), event("remove", NULL)])
    assert s.matched == {}


def test_remove_drops_devices_below_too() -> None:
    s = session('SUBSYSTEM=="net", KERNEL=="lo"')
    s.matched["/devices/virtual/net/lo/child"] = Member("/devices/virtual/net/lo/child", None)
    s.matched["/devices/virtual/net/lo2"] = Member("/devices/virtual/net/lo2", None)
    s.apply_events([event("remove", LO)])
    assert set(s.matched) == {"/devices/virtual/net/lo2"}  # a sibling, not below lo


def test_events_for_devices_that_do_not_match_change_nothing() -> None:
    s = session('KERNEL=="null"')
    s.apply_events([event("change", LO), event("add", "/devices/virtual/net/no-such-device")])
    assert s.matched == {NULL: Member(NULL, "/dev/null")}


def test_move_forgets_the_old_path() -> None:
    s = session('SUBSYSTEM=="net", KERNEL=="lo"')
    s.matched = {"/devices/virtual/net/old-name": Member("/devices/virtual/net/old-name", None)}
    s.apply_events([event("move", LO, DEVPATH_OLD="/devices/virtual/net/old-name")])
    assert s.matched == {LO: Member(LO, None)}


def test_events_outside_the_enumerable_devices_are_ignored() -> None:
    # modules and subsystems get uevents too, but no enumeration returns them
    s = session("")
    before = dict(s.matched)
    s.apply_events([event("add", "/module/loop", SUBSYSTEM="module"),
                    event("add", "/bus/pci", SUBSYSTEM="bus")])
    assert s.matched == before


def test_an_event_for_a_device_named_in_a_rule_asks_for_a_full_rescan() -> None:
    s = session('KERNEL=="null", ATTR{[net/lo]address}=="?*"')
    assert s.apply_events([event("change", LO, SUBSYSTEM="net")]) is True
    assert s.apply_events([event("change", NULL, SUBSYSTEM="mem")]) is False


def _nic_below_pci() -> tuple[str, str] | None:
    """(interface devpath, devpath of the PCI function above it) on this machine, if any."""
    for name in sorted(os.listdir("/sys/class/net")):
        devpath = os.path.realpath(f"/sys/class/net/{name}")[len("/sys"):]
        parts = devpath.split("/")
        for i in range(len(parts) - 1, 0, -1):
            if pci_address(parts[i]) and os.path.exists(f"/sys{'/'.join(parts[: i + 1])}/vendor"):
                return devpath, "/".join(parts[: i + 1])
    return None


NIC = _nic_below_pci()


@pytest.mark.skipif(NIC is None, reason="no network interface below a PCI function here")
def test_with_ancestor_filters_an_event_on_a_parent_rematches_the_devices_below() -> None:
    assert NIC is not None
    nic, pci = NIC
    vendor = Path(f"/sys{pci}/vendor").read_text().strip()
    s = session(f'SUBSYSTEM=="net", ATTRS{{vendor}}=="{vendor}"')
    assert nic in s.matched
    del s.matched[nic]  # pretend the match was lost; the parent's event must find it again
    s.apply_events([event("change", pci, SUBSYSTEM="pci")])
    assert nic in s.matched


@pytest.mark.skipif(NIC is None, reason="no network interface below a PCI function here")
def test_without_ancestor_filters_only_the_event_device_is_rematched() -> None:
    assert NIC is not None
    nic, pci = NIC
    s = session('SUBSYSTEM=="net"')
    assert nic in s.matched
    del s.matched[nic]
    s.apply_events([event("change", pci, SUBSYSTEM="pci")])
    assert nic not in s.matched  # the event touched the PCI function, not the interface
    s.apply_events([event("change", nic, SUBSYSTEM="net")])
    assert nic in s.matched


def test_resync_interval_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resync_seconds_from_env(None) == DEFAULT_RESYNC_SECONDS == 300
    assert resync_seconds_from_env(" 12.5 ") == 12.5
    for bad in ("soon", "0", "-3"):
        with pytest.raises(HandlerSetupError):
            resync_seconds_from_env(bad)
    monkeypatch.setenv("AKRI_UDEV_RESYNC_SECONDS", "42")
    assert UdevHandler().resync_seconds == 42
    assert UdevHandler(resync_seconds=7).resync_seconds == 7
    with pytest.raises(ValueError):
        UdevHandler(source="sometimes")


def test_udevd_detection_tells_a_live_control_socket_from_a_stale_one(tmp_path: Path) -> None:
    control = str(tmp_path / "control")
    assert not udevd_running(control)
    assert choose_source("auto", control=control) == "kernel"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(control)
    listener.listen(1)
    try:
        assert udevd_running(control)
        assert choose_source("auto", control=control) == "udev"
    finally:
        listener.close()
    assert Path(control).exists()  # what a stopped udevd leaves behind
    assert not udevd_running(control)
    assert choose_source("kernel", control=control) == "kernel"


async def test_udevd_probe_runs_off_the_event_loop(tmp_path: Path) -> None:
    """The handler asks at every resync whether udevd runs; that connect must not hold the loop."""
    control = str(tmp_path / "control")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(control)
    listener.listen(1)
    handler = UdevHandler(udev_control=control)
    served: list[str] = []
    try:
        probe = asyncio.create_task(handler.current_source())
        # queued after the probe's first step: runs before the probe ends only if the probe
        # waits for its answer instead of blocking the loop
        asyncio.get_running_loop().call_soon(lambda: served.append("done" if probe.done() else "pending"))
        assert await probe == "udev"
    finally:
        listener.close()
    assert served == ["pending"]
    assert await handler.current_source() == "kernel"  # the stale socket udevd leaves behind
    assert await UdevHandler(source="udev", udev_control=control).current_source() == "udev"


async def test_a_cancelled_consumer_stops_even_when_an_event_arrives_at_that_moment() -> None:
    # the stream's consumer cancels it while an event is being delivered; the cancellation
    # must win (asyncio.wait_for on Python 3.11 would swallow it and keep the stream alive)
    with UeventMonitor("kernel") as monitor:
        monitor.attach()
        waiter = asyncio.create_task(monitor.next_batch(60.0))
        await asyncio.sleep(0)  # the task now waits for events
        monitor._pending.append({"ACTION": "change", "DEVPATH": LO})
        monitor._ready.set()  # what the socket reader does when a datagram arrives
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
