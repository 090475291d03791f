"""Resumable list+watch with a local cache (`Informer`): never exits on its own.

* starts with a LIST (cache filled, resourceVersion noted), then WATCHes from that version;
* a watch that ends or breaks (server timeout, dropped connection, API server restart) is
  resumed from the last resourceVersion seen, after an exponential back-off with jitter when
  the API server could not be reached;
* 410 Gone (version too old) re-lists, and the re-list is diffed against the cache so a
  consumer still sees every change as ADDED / MODIFIED / DELETED, including deletions that
  happened while it was disconnected; a 410 within a second of the list waits the back-off
  first, so a server that refuses the versions it just listed is not hammered;
* any other error is logged and retried with back-off; only cancellation stops it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from akri.kube.api import Kube, Labels, label_selector
from akri.kube.errors import ApiError, describe, is_gone
from akri.kube.resources import ALL_NAMESPACES, Resource, object_key, resource_version
from akri.retry import Backoff

log = logging.getLogger(__name__)

EventType = Literal["ADDED", "MODIFIED", "DELETED"]

#: reconnect delays after failures: 0.5 s doubling to 30 s, with jitter so a restarted API
#: server is not hit by every watcher at the same instant
WATCH_BACKOFF = Backoff(initial=0.5, factor=2.0, maximum=30.0, jitter=0.5)


@dataclass(frozen=True, slots=True)
class WatchEvent:
    type: EventType
    obj: Any

    @property
    def key(self) -> tuple[str, str]:
        return object_key(self.obj)


class Informer:
    """List+watch of one resource kind with a cache keyed by (namespace, name).

    Consume with `async for event in informer.events()` (one consumer). The cache is updated
    before each event is yielded, so a consumer that looks up other objects sees the same state.
    """

    def __init__(
        self,
        kube: Kube,
        res: Resource,
        *,
        namespace: str | None = ALL_NAMESPACES,
        labels: Labels | None = None,
        server_timeout: int = 290,
        backoff: Backoff = WATCH_BACKOFF,
    ) -> None:
        self.kube = kube
        self.res = res
        self.namespace = namespace
        self.labels = labels
        self.server_timeout = server_timeout
        self.backoff = backoff
        self.cache: dict[tuple[str, str], Any] = {}
        self.synced = asyncio.Event()
        self.relists = 0  # how many LISTs ran (1 + recoveries); for logs and tests
        self._name = res.kind

    def get(self, namespace: str, name: str) -> Any | None:
        return self.cache.get((namespace, name))

    def values(self) -> Iterator[Any]:
        return iter(list(self.cache.values()))

    async def events(self) -> AsyncIterator[WatchEvent]:
        loop = asyncio.get_running_loop()
        rv: str | None = None
        failures = 0
        listed_at = float("-inf")
        gone_at_once = False  # the last watch got 410 right after its list
        while True:
            try:
                if rv is None:
                    items, rv = await self.kube.list(self.res, namespace=self.namespace, labels=self.labels)
                    self.relists += 1
                    for event in self._replace_cache(items):
                        yield event
                    self.synced.set()
                    listed_at = loop.time()  # after the consumer took the events: the watch starts
                    if not gone_at_once:  # else the back-off keeps growing until a watch works
                        failures = 0
                    gone_at_once = False
                    if rv is None:  # a server without list versions: fall back to periodic re-lists
                        await asyncio.sleep(self.server_timeout)
                        continue
                started, quiet = loop.time(), True
                async for etype, obj in self._watch_once(rv):
                    failures, quiet = 0, False
                    rv = resource_version(obj) or rv
                    if etype == "BOOKMARK":
                        continue
                    event = self._apply(etype, obj)
                    if event is not None:
                        yield event
                # the server closed the watch (after timeoutSeconds): resume from rv at once,
                # unless it ends watches as soon as they start, which would make this loop spin
                if quiet and loop.time() - started < 1.0:
                    await asyncio.sleep(self.backoff.delay(failures))
                    failures += 1
                else:
                    failures = 0  # a watch that worked
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_gone(exc):
                    if loop.time() - listed_at < 1.0:
                        # the version a list just gave is refused already (a lagging server or
                        # a proxy in front of several): re-listing at once would loop LIST+WATCH
                        delay = self.backoff.delay(failures)
                        failures += 1
                        gone_at_once = True
                        log.warning("watch %s: resourceVersion %s of a fresh list expired; "
                                    "re-listing in %.1f s", self._name, rv, delay)
                        rv = None
                        await asyncio.sleep(delay)
                        continue
                    log.info("watch %s: resourceVersion %s expired; re-listing", self._name, rv)
                    rv = None
                    continue
                delay = self.backoff.delay(failures)
                failures += 1
                log.warning("watch %s failed (%s); retrying in %.1f s", self._name, describe(exc), delay)
                await asyncio.sleep(delay)

    async def _watch_once(self, rv: str) -> AsyncIterator[tuple[str, Any]]:
        """One watch request from `rv` until the server ends it; errors raise."""
        kube = self.kube
        ns = self.namespace if self.namespace == ALL_NAMESPACES else kube._ns(self.res, self.namespace)
        params: dict[str, Any] = {
            "watch": "true",
            "timeoutSeconds": self.server_timeout,
            "resourceVersion": rv,
            "allowWatchBookmarks": "true",
            "labelSelector": label_selector(self.labels),
        }
        # A read that waits well past timeoutSeconds means a dead peer (no FIN): give up and resume.
        lines = kube.client.stream_lines(
            self.res.path(ns), params=params, read_timeout=self.server_timeout + 30.0
        )
        try:
            async for line in lines:
                event = orjson.loads(line)
                etype, obj = event.get("type"), event.get("object")
                if not isinstance(obj, dict):
                    raise ValueError(f"watch {self._name}: an event without an object: {line[:200]!r}")
                if etype == "ERROR":
                    raise ApiError(int(obj.get("code") or 500), obj, method="WATCH", path=self.res.path(ns))
                yield etype, obj
        finally:
            await lines.aclose()

    def _apply(self, etype: str, obj: Any) -> WatchEvent | None:
        key = object_key(obj)
        if etype == "DELETED":
            self.cache.pop(key, None)
            return WatchEvent("DELETED", obj)
        if etype not in ("ADDED", "MODIFIED"):
            log.debug("watch %s: ignoring event type %s", self._name, etype)
            return None
        old = self.cache.get(key)
        self.cache[key] = obj
        if old is not None and resource_version(old) == resource_version(obj):
            return None  # a replay of what the cache already holds (resume after reconnect)
        return WatchEvent("MODIFIED" if old is not None else "ADDED", obj)

    def _replace_cache(self, items: list[Any]) -> list[WatchEvent]:
        events: list[WatchEvent] = []
        fresh = {object_key(obj): obj for obj in items}
        for key, old in list(self.cache.items()):
            if key not in fresh:
                del self.cache[key]
                events.append(WatchEvent("DELETED", old))
        for key, obj in fresh.items():
            old = self.cache.get(key)
            self.cache[key] = obj
            if old is None:
                events.append(WatchEvent("ADDED", obj))
            elif resource_version(old) != resource_version(obj):
                events.append(WatchEvent("MODIFIED", obj))
        return events
