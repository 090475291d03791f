"""parse_uevent against the real libudev, as the oracle for the libudev wire format.

Messages are sent on netlink group 2 inside a network namespace made for the test, so a
pyudev (libudev) monitor there receives them exactly as it would receive systemd-udevd's
broadcasts, while nothing outside the namespace sees them. For every message we check
that libudev accepts it exactly when parse_uevent does, and then yields the same
properties. A valid "sentinel" message follows each case, so a message libudev drops
shows up as the sentinel arriving first instead of as a timeout.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from akri._fast import pure
from akri.testing.netns import NetworkNamespace

pyudev = pytest.importorskip("pyudev")
try:
    from akri._fast import _uevent as compiled
except ImportError:
    compiled = None

pytestmark = [
    pytest.mark.slow,
    pytest.mark.root,
    pytest.mark.netns,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: creates a network namespace"),
]

FIXTURES = Path(__file__).parent / "fixtures" / "uevents"
GROUP_UDEV = 2
# libudev (sd-device) itself keeps UDEV_DATABASE_VERSION out of the property list
LIBUDEV_INTERNAL = {"UDEV_DATABASE_VERSION"}

PARSERS = [pytest.param(pure.parse_uevent, id="pure")]
if compiled is not None:
    PARSERS.append(pytest.param(compiled.parse_uevent, id="compiled"))


def libudev_message(
    block: bytes, *, magic: int = 0xFEEDCAFE, off: int = 40, length: int | None = None
) -> bytes:
    length = len(block) if length is None else length
    return b"libudev\0" + struct.pack(">I", magic) + struct.pack("=III", 40, off, length) + bytes(16) + block


def props_block(*entries: bytes) -> bytes:
    return b"".join(e + b"\0" for e in entries)


BASE = (b"ACTION=change", b"DEVPATH=/devices/virtual/net/lo", b"SUBSYSTEM=net", b"SEQNUM=4242")
CASES: dict[str, bytes] = {
    **{p.stem: p.read_bytes() for p in sorted(FIXTURES.glob("libudev-*.bin"))},
    "newline cuts the value": libudev_message(props_block(*BASE, b"INTERFACE=lo\ntrailing")),
    "later duplicate wins": libudev_message(props_block(*BASE, b"IFINDEX=1", b"IFINDEX=7")),
    "value with = and @": libudev_message(props_block(*BASE, b"X=a=b@c")),
    "empty value": libudev_message(props_block(*BASE, b"X=")),
    "entry without =": libudev_message(props_block(*BASE, b"JUNK")),
    "empty entry": libudev_message(props_block(*BASE[:2], b"", *BASE[2:])),
    "unterminated last entry": libudev_message(props_block(*BASE) + b"X=1"),
    "bad magic": libudev_message(props_block(*BASE), magic=0x12345678),
    "properties_off past the end": libudev_message(props_block(*BASE), off=4000, length=0),
}


class NetnsUdevBus:
    """A netlink uevent sender and a pyudev monitor, both inside a private network namespace."""

    def __init__(self) -> None:
        self.netns = NetworkNamespace("akri-fast")
        try:
            # sockets stay in the namespace they were made in
            with self.netns.inside():
                self.monitor = pyudev.Monitor.from_netlink(pyudev.Context(), "udev")
                self.monitor.start()
            self.sender = self.netns.uevent_socket(0)
        except BaseException:
            self.netns.delete()
            raise

    def send(self, data: bytes) -> None:
        self.sender.sendto(data, (0, GROUP_UDEV))

    def receive(self, timeout: float = 10.0) -> dict[str, str] | None:
        """The next device's properties; None if libudev refused the datagram (pyudev raises
        ValueError(EINVAL) for that) or skipped it silently and nothing else came."""
        try:
            device = self.monitor.poll(timeout=timeout)
        except ValueError:
            return None
        return None if device is None else dict(device.properties)

    def close(self) -> None:
        self.sender.close()
        self.netns.delete()


@pytest.fixture(scope="module")
def bus() -> Iterator[NetnsUdevBus]:
    b = NetnsUdevBus()
    yield b
    b.close()


def libudev_view(bus: NetnsUdevBus, data: bytes, sentinel_seqnum: str) -> dict[str, str] | None:
    """The properties libudev gives for `data`, or None if libudev dropped the message."""
    sentinel = libudev_message(props_block(*BASE[:3], b"SEQNUM=" + sentinel_seqnum.encode()))

    def is_sentinel(props: dict[str, str] | None) -> bool:
        return props is not None and props.get("SEQNUM") == sentinel_seqnum

    bus.send(data)
    bus.send(sentinel)
    first = bus.receive()
    if is_sentinel(first):  # libudev skipped the message without a word
        return None
    # refused with an error, or accepted: either way the sentinel must come next
    assert is_sentinel(bus.receive()), "the sentinel did not follow"
    return first


@pytest.mark.parametrize("parse", PARSERS)
@pytest.mark.parametrize("name", CASES)
def test_parse_uevent_agrees_with_libudev(bus: NetnsUdevBus, parse: Callable[[bytes], dict[str, str]],
                                          name: str) -> None:
    data = CASES[name]
    expected = libudev_view(bus, data, sentinel_seqnum=str(900000 + list(CASES).index(name)))
    if expected is None:
        with pytest.raises(ValueError):
            parse(data)
    else:
        ours = {k: v for k, v in parse(data).items() if k not in LIBUDEV_INTERNAL}
        assert ours == expected


def test_real_messages_are_accepted_by_libudev(bus: NetnsUdevBus) -> None:
    """Guards the oracle itself: it must accept what udevd really sends."""
    for name, data in CASES.items():
        if name.startswith("libudev-"):
            assert libudev_view(bus, data, sentinel_seqnum="999999") is not None, name
