"""Real-device fixtures for the udev handler: veth pairs, a private netns, systemd-udevd.

Everything made here is removed in teardown: veth pairs (named akt<random>), network
namespaces (akri-udev-<random>), rule files in /run/udev/rules.d and the systemd-udevd
child process (started without --daemon, stopped by its own PID).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from akri.discovery.device import Device
from akri.discovery.handlers.udev.monitor import UDEV_CONTROL, udevd_running
from akri.testing.netns import NetworkNamespace

UDEVD = "/lib/systemd/systemd-udevd"
RULES_DIR = Path("/run/udev/rules.d")
WAIT = 10.0  # generous: only there so a broken test cannot hang


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    if shutil.which("ip") is None:
        pytest.skip("needs iproute2")


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


def synthetic_uevent(interface: str, action: str = "change") -> None:
    """Ask the kernel to send a uevent for a network interface (as `udevadm trigger` does)."""
    Path(f"/sys/class/net/{interface}/uevent").write_text(action)


class VethFactory:
    """Creates veth pairs named akt<random><suffix>; `cleanup()` deletes every one."""

    def __init__(self) -> None:
        self.created: list[str] = []

    @staticmethod
    def new_prefix() -> str:
        return "akt" + uuid.uuid4().hex[:8]

    def add(self, name: str, peer: str, *, address: str | None = None) -> None:
        cmd = ["ip", "link", "add", name]
        if address:
            cmd += ["address", address]
        cmd += ["type", "veth", "peer", "name", peer]
        sh(*cmd)
        self.created.append(name)

    def delete(self, name: str) -> None:
        sh("ip", "link", "del", name)  # deleting one end removes the pair
        self.created.remove(name)

    def set_mtu(self, name: str, mtu: int) -> None:
        sh("ip", "link", "set", name, "mtu", str(mtu))  # the kernel sends no uevent for this

    def rename(self, old: str, new: str) -> None:
        sh("ip", "link", "set", old, "name", new)
        self.created[self.created.index(old)] = new

    def cleanup(self) -> None:
        for name in self.created:
            subprocess.run(["ip", "link", "del", name], capture_output=True)
        self.created.clear()


@pytest.fixture
def uevent() -> Callable[..., None]:
    need_root()
    return synthetic_uevent


@pytest.fixture
def veth() -> Iterator[VethFactory]:
    need_root()
    factory = VethFactory()
    try:
        yield factory
    finally:
        factory.cleanup()


class DeviceStream:
    """Consumes a handler's discover() stream in a task; tests wait for lists they expect."""

    def __init__(self, stream: AsyncIterator[list[Device]]) -> None:
        self._stream = stream
        self.lists: asyncio.Queue[list[Device]] = asyncio.Queue()
        self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        async for devices in self._stream:
            await self.lists.put(devices)

    async def next(self, wait: float = WAIT) -> list[Device]:
        return await asyncio.wait_for(self.lists.get(), wait)

    async def until(self, predicate: Callable[[set[str]], bool], wait: float = WAIT) -> list[Device]:
        """The first list whose set of ids satisfies `predicate` (earlier lists are dropped)."""
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            devices = await asyncio.wait_for(self.lists.get(), max(remaining, 0.001))
            if predicate({d.id for d in devices}):
                return devices

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._stream.aclose()  # type: ignore[attr-defined]


@pytest.fixture
async def open_stream() -> AsyncIterator[Callable[[AsyncIterator[list[Device]]], DeviceStream]]:
    streams: list[DeviceStream] = []

    def opener(stream: AsyncIterator[list[Device]]) -> DeviceStream:
        s = DeviceStream(stream)
        streams.append(s)
        return s

    yield opener
    for s in streams:
        await s.close()


@pytest.fixture
def netns() -> Iterator[NetworkNamespace]:
    """A network namespace of our own; inside() switches the calling thread (and threads it
    starts later) into it."""
    need_root()
    with NetworkNamespace("akri-udev") as ns:
        yield ns


class Udevd:
    """A systemd-udevd child process and the rule files the test installed for it."""

    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc = proc
        self.log = log
        self.rule_files: list[Path] = []

    def install_rules(self, name: str, text: str) -> None:
        RULES_DIR.mkdir(parents=True, exist_ok=True)
        path = RULES_DIR / name
        path.write_text(text)
        self.rule_files.append(path)
        self.control("--reload")

    def control(self, *args: str) -> None:
        """`udevadm control ...`, retried while udevd is still getting ready."""
        deadline = time.monotonic() + WAIT
        while True:
            done = subprocess.run(["udevadm", "control", *args], capture_output=True, text=True)
            if done.returncode == 0:
                return
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"udevadm control {' '.join(args)} failed: {done.stderr.strip()}\n"
                                     f"udevd log:\n{self.log.read_text(errors='replace')}")
            time.sleep(0.1)

    def settle(self) -> None:
        sh("udevadm", "settle", "--timeout", str(int(WAIT)))

    def remove_rules(self) -> None:
        for path in self.rule_files:
            path.unlink(missing_ok=True)
        self.rule_files.clear()
        if self.proc.poll() is None:
            subprocess.run(["udevadm", "control", "--reload"], capture_output=True)


@pytest.fixture(scope="module")
def udevd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Udevd]:
    need_root()
    if not os.access(UDEVD, os.X_OK) or shutil.which("udevadm") is None:
        pytest.skip("needs systemd-udevd (Debian package udev)")
    if udevd_running():
        pytest.skip("another systemd-udevd is already running here")
    control_existed = Path(UDEV_CONTROL).exists()
    log = tmp_path_factory.mktemp("udevd") / "udevd.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([UDEVD], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    daemon = Udevd(proc, log)
    try:
        deadline = time.monotonic() + WAIT
        while not udevd_running():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"systemd-udevd did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.05)
        yield daemon
    finally:
        daemon.remove_rules()
        proc.terminate()
        try:
            proc.wait(WAIT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(WAIT)
        if not control_existed and not udevd_running():
            Path(UDEV_CONTROL).unlink(missing_ok=True)  # udevd leaves its socket behind
