"""A keyed work queue for level-triggered reconciles (client-go's workqueue, in asyncio).

Events only say "look at this key again": a key added many times before a worker takes it is
reconciled once, a key is never reconciled by two workers at the same time (a key added while
it is being processed is reconciled once more afterwards), and `add_after` schedules a key for
later (back-off, grace periods) without blocking a worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Hashable

log = logging.getLogger(__name__)


class WorkQueue:
    def __init__(self) -> None:
        self._queue: asyncio.Queue[Hashable] = asyncio.Queue()
        self._dirty: set[Hashable] = set()  # queued, not yet taken
        self._processing: set[Hashable] = set()
        self._again: set[Hashable] = set()  # added while processing
        self._timers: dict[Hashable, asyncio.TimerHandle] = {}

    def add(self, key: Hashable) -> None:
        if key in self._dirty:
            return
        if key in self._processing:
            self._again.add(key)
            return
        self._dirty.add(key)
        self._queue.put_nowait(key)

    def add_after(self, key: Hashable, delay: float) -> None:
        """Add `key` after `delay` seconds; an earlier pending schedule for it wins."""
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        timer = self._timers.get(key)
        if timer is not None and not timer.cancelled() and timer.when() <= due:
            return
        if timer is not None:
            timer.cancel()
        self._timers[key] = loop.call_at(due, self._fire, key)

    def _fire(self, key: Hashable) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def __len__(self) -> int:
        return len(self._dirty) + len(self._again)

    @property
    def idle(self) -> bool:
        return not self._dirty and not self._processing and not self._again

    async def _take(self) -> Hashable:
        key = await self._queue.get()
        self._dirty.discard(key)
        self._processing.add(key)
        return key

    def _done(self, key: Hashable) -> None:
        self._processing.discard(key)
        if key in self._again:
            self._again.discard(key)
            self.add(key)

    async def run(self, handler: Callable[[Hashable], Awaitable[None]], workers: int) -> None:
        """Process keys with `workers` concurrent tasks until cancelled. A handler that raises is
        logged; it is the handler's job to `add_after` for a retry."""

        async def worker() -> None:
            while True:
                key = await self._take()
                try:
                    await handler(key)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("reconcile of %s failed", key)
                finally:
                    self._done(key)

        tasks = [asyncio.create_task(worker(), name=f"workqueue-worker-{i}") for i in range(workers)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t
            self.close()

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
