"""PluginManager registers many device plugins at once, and never one that was removed.

The kubelet here is a gate on kubelet.sock (real gRPC over a unix socket, Registration service
only): it holds every Register until `release_at` of them are in flight at the same time (or
until the test opens it). Registrations done one after another would never get there: the
first would wait forever (the 10 s timeouts below only keep a regression from hanging).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from akri._proto import deviceplugin_pb2 as dp
from akri._proto import deviceplugin_pb2_grpc as dp_grpc
from akri.agent.plugins import InstanceView, MemorySlotStore, PluginManager
from akri.agent.plugins import endpoint as endpoint_module
from akri.agent.plugins.endpoint import KUBELET_SOCKET

pytestmark = pytest.mark.slow

NS = "default"
CFG = "gate"
CFG_RES = f"akri.sh/{CFG}"
WAIT = 10.0


def gate_view(n: int) -> InstanceView:
    name = f"{CFG}-{n:06x}"
    return InstanceView(name=name, namespace=NS, configuration=CFG, capacity=1, cdi_name=f"akri.sh/{CFG}={n}")


def resource(n: int) -> str:
    return f"akri.sh/{gate_view(n).name}"


def plugin_sockets(directory: Path, prefix: str) -> list[str]:
    return [name for name in os.listdir(directory) if name.startswith(prefix) and name.endswith(".sock")]


class GatedKubelet(dp_grpc.RegistrationServicer):
    """kubelet.sock answering Register only once `release_at` calls are in flight (or `open()`)."""

    def __init__(self, directory: Path, release_at: int | None = None) -> None:
        self.directory = directory
        self.release_at = release_at
        self.in_flight = 0
        self.peak = 0
        self.received: list[str] = []
        #: (resource, whether the plugin's socket still existed when the kubelet answered:
        #: the real kubelet dials it back before answering)
        self.answered: list[tuple[str, bool]] = []
        self._gate = asyncio.Event()
        self._changed = asyncio.Event()
        self._server: grpc.aio.Server | None = None

    async def start(self) -> None:
        server = grpc.aio.server()
        dp_grpc.add_RegistrationServicer_to_server(self, server)
        server.add_insecure_port(f"unix://{self.directory / KUBELET_SOCKET}")
        await server.start()
        self._server = server

    async def stop(self) -> None:
        self._gate.set()
        if self._server is not None:
            await self._server.stop(None)
            self._server = None
        (self.directory / KUBELET_SOCKET).unlink(missing_ok=True)

    def open(self) -> None:
        self._gate.set()

    async def Register(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.received.append(request.resource_name)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        if self.release_at is not None and self.in_flight >= self.release_at:
            self._gate.set()
        self._notify()
        try:
            await self._gate.wait()
        finally:
            self.in_flight -= 1
        self.answered.append((request.resource_name, (self.directory / request.endpoint).exists()))
        self._notify()
        return dp.Empty()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT):
            while not predicate():
                await self._changed.wait()


@pytest.fixture
def directory() -> Iterator[Path]:
    """A short directory: unix socket paths are limited to 107 bytes (pytest's tmp_path is long)."""
    path = Path(tempfile.mkdtemp(prefix="akri-gate-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def kubelets(directory: Path) -> AsyncIterator[Callable[..., Any]]:
    started: list[GatedKubelet] = []

    async def start(release_at: int | None = None) -> GatedKubelet:
        kubelet = GatedKubelet(directory, release_at)
        await kubelet.start()
        started.append(kubelet)
        return kubelet

    yield start
    for kubelet in started:
        await kubelet.stop()


async def test_instances_applied_together_register_together(directory: Path, kubelets: Any) -> None:
    count = 8
    kubelet = await kubelets(release_at=count)
    async with PluginManager("node-a", MemorySlotStore(), directory=directory) as manager:
        async with asyncio.timeout(WAIT):
            await asyncio.gather(*(manager.apply_instance(gate_view(n)) for n in range(count)))
        # apply_instance returned: its plugin and its Configuration's are registered
        expected = {resource(n) for n in range(count)} | {CFG_RES}
        assert {r for r, _ in kubelet.answered} == expected
        assert all(manager.endpoint(r).registered_with is not None for r in expected)
        assert kubelet.peak >= count
        assert Counter(kubelet.received) == Counter(expected)  # each once


async def test_restarted_kubelet_gets_every_plugin_at_once(directory: Path, kubelets: Any) -> None:
    count = 6
    first = await kubelets()
    first.open()
    async with PluginManager("node-a", MemorySlotStore(), directory=directory) as manager:
        for n in range(count):
            await manager.apply_instance(gate_view(n))
        await first.stop()
        # a new kubelet.sock (new change time); every plugin must be in flight before any is answered
        second = await kubelets(release_at=count + 1)
        await second.wait_for(lambda: len(second.answered) == count + 1)
        assert Counter(second.received) == Counter({resource(n) for n in range(count)} | {CFG_RES})
        assert second.peak == count + 1


async def test_removal_waits_for_the_registration_in_flight(directory: Path, kubelets: Any) -> None:
    kubelet = await kubelets()  # closed until opened
    async with PluginManager("node-a", MemorySlotStore(), directory=directory) as manager:
        applying = asyncio.create_task(manager.apply_instance(gate_view(0)))
        await kubelet.wait_for(lambda: kubelet.in_flight == 2)  # the Instance's and the Configuration's
        removing = asyncio.create_task(manager.remove_instance(gate_view(0).name))
        # a removal that did not wait would be done by now, its socket deleted under the kubelet
        done, _ = await asyncio.wait({removing}, timeout=1.0)
        assert not done
        kubelet.open()
        async with asyncio.timeout(WAIT):
            await asyncio.gather(applying, removing)
        assert sorted(kubelet.answered) == [(CFG_RES, True), (resource(0), True)]
        assert manager.endpoint(resource(0)) is None and manager.endpoint(CFG_RES) is None
        assert plugin_sockets(directory, f"{CFG}-") == []
        # nothing registers it again, not even a kubelet restart
        await kubelet.stop()
        again = await kubelets()
        again.open()
        assert await manager.reconcile_registrations()
        assert again.received == []


async def test_removal_of_a_queued_registration_skips_it(directory: Path, kubelets: Any) -> None:
    kubelet = await kubelets()  # closed until opened
    store = MemorySlotStore()
    async with PluginManager("node-a", store, directory=directory, max_registrations=1) as manager:
        first = asyncio.create_task(manager.apply_instance(gate_view(0)))
        await kubelet.wait_for(lambda: kubelet.in_flight == 1)  # the only slot is taken
        second = asyncio.create_task(manager.apply_instance(gate_view(1)))
        # the second Instance's registration queues for the slot: a few turns of the event
        # loop, no I/O on its way there; it is served only once it has the slot
        for _ in range(20):
            await asyncio.sleep(0)
        queued = manager.endpoint(resource(1))
        assert queued is not None and queued.socket_path is None
        removing = asyncio.create_task(manager.remove_instance(gate_view(1).name))
        kubelet.open()
        async with asyncio.timeout(WAIT):
            await asyncio.gather(first, second, removing)
        assert resource(1) not in kubelet.received
        assert kubelet.peak == 1
        assert Counter(kubelet.received) == Counter([resource(0), CFG_RES])
        assert plugin_sockets(directory, f"{gate_view(1).name}-") == []


async def test_removal_does_not_wait_for_the_queue_when_the_kubelet_hangs(
    directory: Path, kubelets: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a kubelet that accepts Register and never answers; Register's own timeout far beyond WAIT,
    # so a removal stuck behind the queue would hang this test
    monkeypatch.setattr(endpoint_module, "REGISTER_TIMEOUT", 60.0)
    kubelet = await kubelets()  # closed: holds every Register
    manager = PluginManager("node-a", MemorySlotStore(), directory=directory, max_registrations=1)
    async with manager:
        first = asyncio.create_task(manager.apply_instance(gate_view(0)))
        await kubelet.wait_for(lambda: kubelet.in_flight == 1)  # the only slot, held by a hung call
        queued = [asyncio.create_task(manager.apply_instance(gate_view(n))) for n in (1, 2)]
        for _ in range(20):
            await asyncio.sleep(0)
        async with asyncio.timeout(WAIT):  # only a guard against hanging
            await manager.remove_instance(gate_view(2).name)
        assert manager.endpoint(resource(2)) is None
        assert plugin_sockets(directory, f"{gate_view(2).name}-") == []
        kubelet.open()
        async with asyncio.timeout(WAIT):
            await asyncio.gather(first, *queued)
        assert resource(2) not in kubelet.received


def test_max_registrations_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_registrations"):
        PluginManager("node-a", MemorySlotStore(), directory="/nonexistent", max_registrations=0)
