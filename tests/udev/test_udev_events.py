"""The handler's stream follows real kernel uevents (veth pairs, synthetic change events).

The resync interval is set far beyond the test's duration, so every list after the first
can only come from an event.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import threading
from collections.abc import Callable

import pytest

from akri.discovery.handlers.udev import UdevHandler
from akri.discovery.handlers.udev.monitor import (
    GROUP_UDEV,
    NETLINK_KOBJECT_UEVENT,
    UeventMonitor,
    udevd_running,
)

pytestmark = [pytest.mark.slow, pytest.mark.root]

NO_RESYNC = 3600.0


def rules(*rules: str) -> str:
    return "udevRules:\n" + "".join(f"- '{r}'\n" for r in rules)


def kernel_only_handler() -> UdevHandler:
    # these tests make kernel events; a udevd someone else runs must not change the source
    return UdevHandler(resync_seconds=NO_RESYNC, source="kernel")


async def test_veth_pair_added_and_removed(veth, open_stream: Callable) -> None:
    prefix = veth.new_prefix()
    handler = kernel_only_handler()
    stream = open_stream(handler.discover(rules(f'SUBSYSTEM=="net", KERNEL=="{prefix}*"'), {}))
    assert await stream.next() == []
    a, b = f"/devices/virtual/net/{prefix}a", f"/devices/virtual/net/{prefix}b"
    veth.add(f"{prefix}a", f"{prefix}b")
    devices = await stream.until(lambda ids: ids == {a, b})
    assert {d.id: dict(d.properties) for d in devices} == {
        a: {"UDEV_DEVPATH": a}, b: {"UDEV_DEVPATH": b}}
    veth.delete(f"{prefix}a")
    assert await stream.until(lambda ids: not ids) == []
    assert handler.rescans == 0  # events did it all
    assert handler.source_in_use == "kernel"


async def test_a_device_named_in_non_utf8_is_skipped_not_fatal(veth, open_stream: Callable) -> None:
    prefix = veth.new_prefix()
    stream = open_stream(kernel_only_handler().discover(rules(f'SUBSYSTEM=="net", KERNEL=="{prefix}*"'), {}))
    assert await stream.next() == []
    odd = prefix + os.fsdecode(b"\xff")  # a name pyudev cannot decode
    veth.add(odd, f"{prefix}b")
    assert [d.id for d in await stream.until(bool)] == [f"/devices/virtual/net/{prefix}b"]
    veth.delete(odd)
    assert await stream.until(lambda ids: not ids) == []


async def test_question_mark_takes_one_byte_as_in_udevd(veth, open_stream: Callable) -> None:
    # udevd matches in the C locale: "é" is two bytes, so "??" matches it and "?" does not
    prefix = veth.new_prefix()
    veth.add(f"{prefix}é", f"{prefix}b")
    stream = open_stream(kernel_only_handler().discover(rules(f'KERNEL=="{prefix}??"'), {}))
    assert [d.id for d in await stream.next()] == [f"/devices/virtual/net/{prefix}é"]
    stream = open_stream(kernel_only_handler().discover(rules(f'KERNEL=="{prefix}?"'), {}))
    assert [d.id for d in await stream.next()] == [f"/devices/virtual/net/{prefix}b"]


async def test_rename_is_a_move(veth, open_stream: Callable) -> None:
    prefix = veth.new_prefix()
    veth.add(f"{prefix}a", f"{prefix}b")
    stream = open_stream(kernel_only_handler().discover(rules(f'KERNEL=="{prefix}a|{prefix}r"'), {}))
    assert [d.id for d in await stream.next()] == [f"/devices/virtual/net/{prefix}a"]
    veth.rename(f"{prefix}a", f"{prefix}r")
    devices = await stream.until(lambda ids: f"/devices/virtual/net/{prefix}a" not in ids)
    assert [d.id for d in devices] == [f"/devices/virtual/net/{prefix}r"]


async def test_change_event_rematches_the_device(veth, uevent: Callable, open_stream: Callable) -> None:
    # an MTU change sends no uevent; the synthetic change event makes the handler look again
    prefix = veth.new_prefix()
    veth.add(f"{prefix}a", f"{prefix}b")
    path = f"/devices/virtual/net/{prefix}a"
    rule = rules(f'KERNEL=="{prefix}a", ATTR{{mtu}}=="1400"')
    stream = open_stream(kernel_only_handler().discover(rule, {}))
    assert await stream.next() == []
    veth.set_mtu(f"{prefix}a", 1400)
    uevent(f"{prefix}a")
    assert [d.id for d in await stream.until(lambda ids: bool(ids))] == [path]


async def test_events_that_change_nothing_yield_nothing(
    veth, uevent: Callable, open_stream: Callable
) -> None:
    prefix = veth.new_prefix()
    handler = kernel_only_handler()
    rule = rules('SUBSYSTEM=="net", KERNEL=="lo"', f'KERNEL=="{prefix}a"')
    stream = open_stream(handler.discover(rule, {}))
    assert [d.id for d in await stream.next()] == ["/devices/virtual/net/lo"]
    accepted = handler.stats.accepted
    uevent("lo")  # lo still matches: no new list
    veth.add(f"{prefix}a", f"{prefix}b")
    # the next list is the one the veth made: nothing was sent for lo's change event
    assert {d.id for d in await stream.next()} == {
        "/devices/virtual/net/lo", f"/devices/virtual/net/{prefix}a"}
    assert handler.stats.accepted >= accepted + 2


async def test_periodic_resync_finds_what_no_event_reported(veth, open_stream: Callable) -> None:
    # the udev group is silent without systemd-udevd: only the resync can see the new pair
    if udevd_running():
        pytest.skip("systemd-udevd is running: its events would make this pass without a resync")
    prefix = veth.new_prefix()
    handler = UdevHandler(resync_seconds=0.2, source="udev")
    stream = open_stream(handler.discover(rules(f'KERNEL=="{prefix}a"'), {}))
    assert await stream.next() == []
    veth.add(f"{prefix}a", f"{prefix}b")
    assert [d.id for d in await stream.until(bool)] == [f"/devices/virtual/net/{prefix}a"]
    assert handler.rescans >= 1
    assert handler.stats.accepted == 0


def test_socket_overflow_is_reported(uevent: Callable) -> None:
    with UeventMonitor("kernel", receive_buffer=4096) as monitor:
        for _ in range(200):  # nobody reads: the small buffer overflows
            uevent("lo")
        monitor.read_pending()
        assert monitor.overflowed
        assert monitor.stats.overflows >= 1


# --- a private network namespace: crafted datagrams on the udev group ---------------------

def libudev_message(props: dict[str, str], *, magic: int = 0xFEEDCAFE) -> bytes:
    body = b"".join(f"{k}={v}".encode() + b"\0" for k, v in props.items())
    header = b"libudev\0" + struct.pack(">I", magic) + struct.pack("=IIIIIII", 40, 40, len(body), 0, 0, 0, 0)
    return header + body


@pytest.mark.netns
def test_malformed_and_untrusted_messages_are_counted_and_skipped(netns) -> None:
    """Inside its own netns the handler listens on the udev group; we are its only sender."""
    handler = UdevHandler(resync_seconds=NO_RESYNC, source="udev")
    lo = "/devices/virtual/net/lo"
    seen: list[list[str]] = []
    failure: list[BaseException] = []

    async def scenario() -> None:
        stream = handler.discover(rules('SUBSYSTEM=="net", KERNEL=="lo"'), {})
        seen.append([d.id for d in await anext(stream)])
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_KOBJECT_UEVENT) as sender:
            for bad in (
                b"libudev\0" + b"\xff" * 40,  # bad magic
                b"libudev\0" + struct.pack(">I", 0xFEEDCAFE),  # truncated header
                libudev_message({"ACTION": "remove"}),  # no DEVPATH
                b"remove@/devices/virtual/net/lo\0ACTION=remove\0",  # kernel format on the udev group
            ):
                sender.sendto(bad, (0, GROUP_UDEV))
            valid = libudev_message({"ACTION": "remove", "DEVPATH": lo, "SUBSYSTEM": "net", "SEQNUM": "1"})
            sender.sendto(valid, (0, GROUP_UDEV))
        seen.append([d.id for d in await asyncio.wait_for(anext(stream), 10)])
        await stream.aclose()

    def run() -> None:
        try:
            with netns.inside():
                asyncio.run(scenario())
        except BaseException as exc:  # reported by the test thread below
            failure.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    if failure:
        raise failure[0]
    # the valid remove event after the garbage was still processed
    assert seen == [[lo], []]
    assert handler.stats.malformed == 3
    assert handler.stats.untrusted == 1
    assert handler.stats.accepted == 1
