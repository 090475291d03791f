"""Hotplug events from the kernel's uevent netlink socket, read on the asyncio event loop.

Two sources share NETLINK_KOBJECT_UEVENT: multicast group 1 carries the kernel's own
messages (``ACTION@DEVPATH`` format), group 2 carries what systemd-udevd re-broadcasts after
its rules ran (libudev format, with the properties and tags the rules added). When udevd
runs, only its messages are useful: the kernel's arrive before udevd has written the
device's database entry, so ENV and TAG filters would see stale data.

Every datagram is parsed by `akri._fast.parse_uevent`; one that is malformed or comes from a
sender libudev would not trust is counted and dropped, never raised. Overflow of the socket
buffer (ENOBUFS) means events were lost; the consumer is told so it can rescan everything.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import struct
from dataclasses import dataclass

from akri._fast import parse_uevent

log = logging.getLogger(__name__)

NETLINK_KOBJECT_UEVENT = 15
GROUP_KERNEL = 1
GROUP_UDEV = 2
SOURCE_KERNEL = "kernel"
SOURCE_UDEV = "udev"
UDEV_CONTROL = "/run/udev/control"

_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
_SO_PASSCRED = getattr(socket, "SO_PASSCRED", 16)
_SCM_CREDENTIALS = getattr(socket, "SCM_CREDENTIALS", 2)
_UCRED = struct.Struct("=iII")  # pid, uid, gid
_MAX_MESSAGE = 64 * 1024  # uevents are at most a few KiB; MSG_TRUNC catches anything bigger
_LIBUDEV = b"libudev\x00"


def udevd_running(control: str = UDEV_CONTROL) -> bool:
    """Whether systemd-udevd is listening on its control socket (not just left it behind)."""
    if not os.path.exists(control):
        return False
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        probe.settimeout(0.5)
        probe.connect(control)
        return True
    except (TimeoutError, BlockingIOError):
        return True  # its accept queue is full: a busy udevd (e.g. at boot), still running
    except OSError:
        return False  # a stale socket file: connection refused
    finally:
        probe.close()


def check_source(requested: str) -> None:
    """Reject anything but auto, kernel or udev (without probing udevd)."""
    if requested not in ("auto", SOURCE_KERNEL, SOURCE_UDEV):
        raise ValueError(f"uevent source must be auto, kernel or udev, not {requested!r}")


def choose_source(requested: str = "auto", *, control: str = UDEV_CONTROL) -> str:
    """`auto` -> `udev` when udevd runs, else `kernel`; an explicit source is kept.

    Probes udevd's socket synchronously: on the event loop use `choose_source_async`.
    """
    check_source(requested)
    if requested == "auto":
        return SOURCE_UDEV if udevd_running(control) else SOURCE_KERNEL
    return requested


async def choose_source_async(requested: str = "auto", *, control: str = UDEV_CONTROL) -> str:
    """`choose_source` with the udevd probe (a connect that may wait) off the event loop."""
    check_source(requested)
    if requested == "auto":
        return SOURCE_UDEV if await asyncio.to_thread(udevd_running, control) else SOURCE_KERNEL
    return requested


@dataclass(slots=True)
class MonitorStats:
    """Counters of everything a monitor read (shared by a handler's monitors)."""

    received: int = 0  # datagrams read
    accepted: int = 0  # parsed and trusted, handed to the consumer
    malformed: int = 0  # parse_uevent refused them (or truncated by the socket)
    untrusted: int = 0  # wrong sender or wrong format for the source
    overflows: int = 0  # the socket buffer overflowed: events were lost


class UeventMonitor:
    """A non-blocking uevent netlink socket for one source, drained by an event-loop reader."""

    def __init__(self, source: str, *, stats: MonitorStats | None = None,
                 receive_buffer: int = 16 * 1024 * 1024, max_pending: int = 10_000) -> None:
        if source not in (SOURCE_KERNEL, SOURCE_UDEV):
            raise ValueError(f"uevent source must be kernel or udev, not {source!r}")
        self.source = source
        self.stats = stats if stats is not None else MonitorStats()
        self.max_pending = max_pending
        self.overflowed = False
        self.failed = False  # the socket itself broke: make a new monitor
        self._pending: list[dict[str, str]] = []
        self._ready: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sock = socket.socket(
            socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
            NETLINK_KOBJECT_UEVENT)
        try:
            try:  # root may exceed rmem_max, as udevd and libudev monitors do
                self._sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, receive_buffer)
            except OSError:
                self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            self._sock.setsockopt(socket.SOL_SOCKET, _SO_PASSCRED, 1)
            self._sock.bind((0, GROUP_UDEV if source == SOURCE_UDEV else GROUP_KERNEL))
        except BaseException:
            self._sock.close()
            raise

    def fileno(self) -> int:
        return self._sock.fileno()

    @property
    def closed(self) -> bool:
        return self._sock.fileno() < 0

    def _accept(self, data: bytes, ancdata: list, flags: int, address: object) -> dict[str, str] | None:
        if flags & socket.MSG_TRUNC:
            self.stats.malformed += 1
            log.debug("uevent truncated (%d bytes read), dropped", len(data))
            return None
        pid, groups = address if isinstance(address, tuple) else (None, None)
        uid = None
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == _SCM_CREDENTIALS and len(payload) >= _UCRED.size:
                _, uid, _ = _UCRED.unpack_from(payload)
        is_libudev = data.startswith(_LIBUDEV)
        trusted = (
            groups != 0  # unicast: nobody we subscribed to
            and uid == 0
            and (is_libudev if self.source == SOURCE_UDEV else (not is_libudev and pid == 0))
        )
        if not trusted:
            self.stats.untrusted += 1
            log.debug("uevent from pid=%s uid=%s groups=%s dropped (untrusted for %s source)",
                      pid, uid, groups, self.source)
            return None
        try:
            event = parse_uevent(data)
        except ValueError as exc:
            self.stats.malformed += 1
            log.debug("malformed uevent dropped: %s", exc)
            return None
        self.stats.accepted += 1
        return event

    def read_pending(self) -> list[dict[str, str]]:
        """Read every datagram waiting on the socket (never blocks). Sets `overflowed` on loss."""
        events: list[dict[str, str]] = []
        ancsize = socket.CMSG_SPACE(_UCRED.size)
        while True:
            try:
                data, ancdata, flags, address = self._sock.recvmsg(_MAX_MESSAGE, ancsize)
            except (BlockingIOError, InterruptedError):
                return events
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self.stats.overflows += 1
                    self.overflowed = True
                    log.warning("uevent socket overflowed: events were lost, a full rescan follows")
                    continue
                raise
            self.stats.received += 1
            event = self._accept(data, ancdata, flags, address)
            if event is not None:
                events.append(event)

    # asyncio integration -------------------------------------------------------------

    def attach(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Start reading on the running loop; events collect until `next_batch` takes them."""
        self._loop = loop or asyncio.get_running_loop()
        self._ready = asyncio.Event()
        self._loop.add_reader(self.fileno(), self._on_readable)

    def _on_readable(self) -> None:
        try:
            events = self.read_pending()
        except OSError as exc:  # the socket itself failed: stop reading, let the consumer resync
            log.warning("reading uevents failed: %s", exc)
            if self._loop is not None:
                self._loop.remove_reader(self.fileno())
            self.failed = self.overflowed = True
            events = []
        if events:
            if len(self._pending) + len(events) > self.max_pending:
                # the consumer is far behind; a rescan is cheaper than a backlog
                self._pending.clear()
                self.overflowed = True
            else:
                self._pending.extend(events)
        if (self._pending or self.overflowed) and self._ready is not None:
            self._ready.set()

    async def next_batch(self, wait: float | None) -> list[dict[str, str]] | None:
        """The events received since the last call; None when `wait` seconds passed without any.

        Check `overflowed` (and reset it) after each call: True means events were lost.
        """
        if self._ready is None:
            raise RuntimeError("attach() the monitor to the event loop first")
        if not self._pending and not self.overflowed:
            self._ready.clear()
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # races with the event being set, and the consumer could never stop us
            try:
                async with asyncio.timeout(wait):
                    await self._ready.wait()
            except TimeoutError:
                return None
        batch, self._pending = self._pending, []
        self._ready.clear()
        return batch

    def close(self) -> None:
        if self._loop is not None and not self.closed:
            try:
                self._loop.remove_reader(self.fileno())
            except (RuntimeError, ValueError):  # loop already closed
                pass
        self._loop = None
        self._sock.close()

    def __enter__(self) -> UeventMonitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
