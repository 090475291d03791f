"""Fixtures for the ONVIF handler tests: fake cameras on loopback, a handler stream reader, and
two network namespaces joined by a veth pair (for multicast, Hello and Bye).

Loopback tests keep everything on 127.0.0.1: the handler runs with multicast off, probes the
cameras by directed probes, and listens for announcements on a loopback port. Multicast is
only used in the namespaces made here (akri.testing.netns.joined_pair: names akcam-<rand> /
akagt-<rand>, addresses in 10.250.<n>.0/24 that exist only inside them), which are always
deleted in teardown.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from akri.discovery.device import Device
from akri.discovery.handlers.onvif import OnvifHandler
from akri.discovery.stream import device_lists
from akri.testing.netns import JoinedPair, NetworkNamespace, joined_pair
from akri.testing.onvif_camera import FakeCamera

WAIT = 10.0  # generous: only guards against hanging


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def camera() -> AsyncIterator[Callable[..., Any]]:
    """Factory of started FakeCameras on loopback (stopped at teardown)."""
    started: list[FakeCamera] = []

    async def make(**options: Any) -> FakeCamera:
        options.setdefault("host", "127.0.0.1")
        options.setdefault("discovery_bind", ("127.0.0.1", 0))
        options.setdefault("multicast", False)
        cam = FakeCamera(**options)
        await cam.start()
        started.append(cam)
        return cam

    yield make
    for cam in started:
        await cam.stop()


class Stream:
    """Reads a handler's device lists in a task; tests wait for the list they expect."""

    def __init__(self, handler: OnvifHandler, details: str, properties: dict[str, bytes | None]) -> None:
        self.handler = handler
        self.lists: asyncio.Queue[list[Device]] = asyncio.Queue()
        self._stream = device_lists(handler, details, properties)
        self._task = asyncio.create_task(self._pump())
        self.latest: list[Device] | None = None
        self.closed = False

    async def _pump(self) -> None:
        async for devices in self._stream:
            self.latest = devices
            await self.lists.put(devices)

    async def next(self, wait: float = WAIT) -> list[Device]:
        get = asyncio.create_task(self.lists.get())
        done, _ = await asyncio.wait({get, self._task}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
        if get in done:
            return get.result()
        get.cancel()
        if self._task in done:
            self._task.result()  # raise the handler's error
            raise AssertionError("the stream ended")
        raise TimeoutError(f"no new device list within {wait} s")

    async def until(self, predicate: Callable[[set[str]], bool], wait: float = WAIT) -> list[Device]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            devices = await self.next(max(0.001, deadline - loop.time()))
            if predicate({d.id for d in devices}):
                return devices

    async def close(self) -> None:
        """Stop reading; the handler's generator is closed (its subscriptions end)."""
        if self.closed:
            return
        self.closed = True
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        await self._stream.aclose()  # type: ignore[attr-defined]


@pytest.fixture
async def open_stream() -> AsyncIterator[Callable[..., Stream]]:
    """open_stream(details, properties=None, handler=None, **handler_options) -> Stream; without
    `handler`, on a new loopback handler (multicast off, announcements on a loopback port)."""
    streams: list[Stream] = []

    def opener(details: str, properties: dict[str, bytes | None] | None = None, *,
               handler: OnvifHandler | None = None, **options: Any) -> Stream:
        if handler is None:
            options.setdefault("multicast", False)
            options.setdefault("announcement_address", ("127.0.0.1", free_udp_port()))
            handler = OnvifHandler(**options)
        stream = Stream(handler, details, properties or {})
        streams.append(stream)
        return stream

    yield opener
    for s in streams:
        await s.close()
    for handler in {id(s.handler): s.handler for s in streams}.values():
        await handler.close()


# ---------------------------------------------------------------- network namespaces


def need_netns() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    if shutil.which("ip") is None:
        pytest.skip("needs iproute2")


@dataclass
class CameraNet:
    """Two namespaces: `cam` (the cameras, 10.250.<n>.1) and `agent` (akri, .2), joined by one
    veth pair."""

    pair: JoinedPair

    @property
    def cam(self) -> NetworkNamespace:
        return self.pair.a

    @property
    def agent(self) -> NetworkNamespace:
        return self.pair.b

    def ip(self, host: int) -> str:
        return self.pair.address(host)

    @property
    def agent_ip(self) -> str:
        return self.pair.b_address

    def add_camera_address(self, host: int) -> str:
        return self.pair.add_address(host, side="a")

    def exec_args(self, namespace: NetworkNamespace, *args: str) -> list[str]:
        return namespace.exec_argv(*args)

    def start_camera(self, host: int, *extra: str, http_port: int = 8080) -> CameraProcess:
        proc = self.cam.popen(sys.executable, "-m", "akri.testing.onvif_camera", "--host", self.ip(host),
                              "--http-port", str(http_port), *extra, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        cam = CameraProcess(proc)
        ready = cam.wait_for("ready")
        cam.xaddr, cam.uuid, cam.device_id = ready["xaddr"], ready["uuid"], ready["device_id"]
        return cam

    def watch(self, config: Path, *extra: str) -> DiscoverWatch:
        """`akri discover --watch -f config` in the agent namespace (stopped at teardown)."""
        return DiscoverWatch(self, config, *extra)

    def delete(self) -> None:
        """Stop every process started in the namespaces, then delete them."""
        self.pair.delete()


class LineReader:
    """Reads a process's stdout lines on a thread, so tests can wait with a timeout."""

    def __init__(self, stream: Any) -> None:
        self.lines: queue.Queue[tuple[float, str]] = queue.Queue()
        self._thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._thread.start()

    def _run(self, stream: Any) -> None:
        for line in stream:
            self.lines.put((time.monotonic(), line))
        self.lines.put((time.monotonic(), ""))

    def next(self, wait: float = WAIT) -> tuple[float, str]:
        t, line = self.lines.get(timeout=wait)
        if line == "":
            raise EOFError("the process closed its output")
        return t, line


class CameraProcess:
    """A fake camera process in the camera namespace, driven by stdin commands."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.reader = LineReader(proc.stdout)
        self.xaddr = self.uuid = self.device_id = ""

    def command(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def wait_for(self, event: str, wait: float = WAIT) -> dict[str, Any]:
        deadline = time.monotonic() + wait
        while True:
            try:
                _, line = self.reader.next(max(0.01, deadline - time.monotonic()))
            except (queue.Empty, EOFError):
                err = self.proc.stderr.read() if self.proc.poll() is not None and self.proc.stderr else ""
                raise AssertionError(f"camera: no {event!r} event within {wait} s {err}") from None
            record = json.loads(line)
            if record["event"] == event:
                return record


class DiscoverWatch:
    """`akri discover --watch` in the agent namespace; its JSON event lines, time-stamped."""

    def __init__(self, net: CameraNet, config: Path, *extra: str) -> None:
        self.proc = net.agent.popen(sys.executable, "-m", "akri", "discover", "-f", str(config),
                                    "--node", "node-a", "--watch", *extra, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
        self.reader = LineReader(self.proc.stdout)

    def wait_for(self, event: str, device_id: str, wait: float = WAIT) -> float:
        """The CLOCK_MONOTONIC time the matching event line was read."""
        deadline = time.monotonic() + wait
        while True:
            t, line = self.reader.next(max(0.01, deadline - time.monotonic()))
            record = json.loads(line)
            if record["event"] == event and record["instance"]["deviceId"] == device_id:
                return t

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(WAIT)
        assert self.proc.stderr is not None
        return code, self.proc.stderr.read()


@pytest.fixture(scope="module")
def camera_net() -> Iterator[CameraNet]:
    need_netns()
    net = CameraNet(joined_pair("akcam", "akagt"))
    try:
        yield net
    finally:
        net.delete()
