"""akri.kube.Informer: list+watch that resumes after disconnects, re-lists on 410 and never exits."""

from __future__ import annotations

import asyncio
import contextlib
import itertools

import pytest
from aiohttp import web

from akri.kube import Informer, Instance, Kube, WatchEvent
from akri.kube.config import ClientConfig, Cluster
from akri.kube.http import HttpClient
from akri.kube.watch import WATCH_BACKOFF
from akri.retry import Backoff
from akri.testing.apiserver import ApiServer

pytestmark = pytest.mark.slow

FAST = Backoff(initial=0.05, factor=2.0, maximum=0.5, jitter=0.5)


def body(name: str, capacity: int = 1) -> dict:
    return {
        "apiVersion": "akri.sh/v0",
        "kind": "Instance",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"configurationName": "cfg", "cdiName": f"akri.sh/cfg={name}", "capacity": capacity},
    }


class Recorder:
    def __init__(self, informer: Informer) -> None:
        self.informer = informer
        self.queue: asyncio.Queue[WatchEvent] = asyncio.Queue()
        self.task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        async for event in self.informer.events():
            await self.queue.put(event)

    async def next(self) -> tuple[str, str]:
        event = await asyncio.wait_for(self.queue.get(), 10)
        return event.type, event.key[1]

    async def take(self, n: int) -> list[tuple[str, str]]:
        return [await self.next() for _ in range(n)]

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


@contextlib.asynccontextmanager
async def watching(api: ApiServer):
    kube = Kube.from_config(api.kubeconfig_path)
    informer = Informer(kube, Instance, backoff=FAST, server_timeout=5)
    rec = Recorder(informer)
    try:
        yield kube, informer, rec
    finally:
        await rec.close()
        await kube.close()


async def test_events_and_cache_follow_the_api() -> None:
    async with ApiServer() as api, watching(api) as (kube, informer, rec):
        api.store.create_object("instances", body("before"), namespace="default")
        await asyncio.wait_for(informer.synced.wait(), 10)
        assert await rec.next() == ("ADDED", "before")
        await kube.create(Instance, body("live"))
        await kube.merge_patch(Instance, "live", {"spec": {"capacity": 4}}, "default")
        await kube.delete(Instance, "before", "default")
        assert await rec.take(3) == [("ADDED", "live"), ("MODIFIED", "live"), ("DELETED", "before")]
        assert set(informer.cache) == {("default", "live")}
        assert informer.get("default", "live")["spec"]["capacity"] == 4


async def test_resumes_from_last_version_across_an_api_server_restart() -> None:
    async with ApiServer() as api, watching(api) as (_, informer, rec):
        api.store.create_object("instances", body("a"), namespace="default")
        api.store.create_object("instances", body("b"), namespace="default")
        assert sorted(await rec.take(2)) == [("ADDED", "a"), ("ADDED", "b")]
        await api.stop()
        # changes while the watcher cannot connect
        api.store.patch_object("instances", "a", {"spec": {"capacity": 7}}, namespace="default")
        api.store.delete_object("instances", "b", namespace="default")
        api.store.create_object("instances", body("c"), namespace="default")
        await asyncio.sleep(0.3)  # let it fail to reconnect at least once
        await api.start()
        assert await rec.take(3) == [("MODIFIED", "a"), ("DELETED", "b"), ("ADDED", "c")]
        assert informer.relists == 1  # resumed from the version, no re-list needed
        assert informer.get("default", "a")["spec"]["capacity"] == 7


async def test_relists_when_the_version_is_gone_and_diffs_the_cache() -> None:
    async with ApiServer(history_size=2) as api, watching(api) as (_, informer, rec):
        for name in ("keep", "drop", "edit"):
            api.store.create_object("instances", body(name), namespace="default")
        assert len(await rec.take(3)) == 3
        await api.stop()
        # more changes than the history holds: resuming from our version gets 410 Gone
        api.store.delete_object("instances", "drop", namespace="default")
        api.store.patch_object("instances", "edit", {"spec": {"capacity": 3}}, namespace="default")
        for i in range(3):
            api.store.create_object("instances", body(f"new{i}"), namespace="default")
        await api.start()
        events = sorted(await rec.take(5))
        assert events == [
            ("ADDED", "new0"),
            ("ADDED", "new1"),
            ("ADDED", "new2"),
            ("DELETED", "drop"),
            ("MODIFIED", "edit"),
        ]
        assert informer.relists == 2
        assert set(k[1] for k in informer.cache) == {"keep", "edit", "new0", "new1", "new2"}
        # and it keeps watching afterwards
        api.store.delete_object("instances", "keep", namespace="default")
        assert await rec.next() == ("DELETED", "keep")


async def test_survives_a_long_outage_with_backoff() -> None:
    """Never exits: the API server is away for several back-off rounds, then comes back."""
    async with ApiServer() as api:
        await api.stop()
        async with watching(api) as (_, informer, rec):
            await asyncio.sleep(1.0)
            assert not informer.synced.is_set()
            assert not rec.task.done()
            await api.start()
            api.store.create_object("instances", body("late"), namespace="default")
            assert await rec.next() == ("ADDED", "late")


async def test_a_server_that_answers_410_right_after_a_list_is_not_hammered() -> None:
    """A fresh list's version refused at once (a misbehaving server or proxy): re-list with a
    growing back-off, not in a tight LIST+WATCH loop."""
    lists: list[float] = []
    loop = asyncio.get_running_loop()

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.query.get("watch"):
            gone = {"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                                "reason": "Expired", "message": "too old", "code": 410}}
            return web.json_response(gone)
        lists.append(loop.time())
        return web.json_response({"kind": "InstanceList", "metadata": {"resourceVersion": "7"}, "items": []})

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    assert site._server is not None
    port = site._server.sockets[0].getsockname()[1]
    kube = Kube(HttpClient(ClientConfig(Cluster(f"http://127.0.0.1:{port}"))))
    informer = Informer(kube, Instance, backoff=Backoff(initial=0.1, factor=2.0, maximum=10.0))
    rec = Recorder(informer)
    try:
        await asyncio.sleep(1.2)  # back-off 0.1, 0.2, 0.4, 0.8 s: lists at ~0, 0.1, 0.3, 0.7 s
        assert not rec.task.done()
        # without the back-off: hundreds of lists; without its growth: about 12
        assert 2 <= len(lists) <= 5, len(lists)
        gaps = [b - a for a, b in itertools.pairwise(lists)]
        assert gaps[0] >= 0.1 and gaps[-1] >= gaps[0], gaps
    finally:
        await rec.close()
        await kube.close()
        await runner.cleanup()


def test_default_reconnect_backoff_is_jittered_and_capped() -> None:
    assert WATCH_BACKOFF.jitter > 0
    assert WATCH_BACKOFF.delay(100) <= WATCH_BACKOFF.maximum <= 60
