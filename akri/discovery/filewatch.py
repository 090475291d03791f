"""Tell when one file may have changed: created, written, replaced or removed.

Used for the debugEcho availability file and for the agent's registration socket. The
watch is on the PARENT directory, not on the file: a file that is replaced or re-created (a
socket re-bound by a restarted agent, an editor's atomic save) is a new inode that a watch
on the old one would never report. Identity is never judged by inode number either: a
re-created socket can get the same inode.

Event-driven with inotify (`asyncinotify`, pure Python over libc, reads on the event loop);
when inotify is unavailable (no library, watch limit reached, directory missing or removed)
it falls back to polling `stat()` every `poll_interval` seconds. AKRI_FILE_WATCH=poll forces
polling (filesystems whose changes inotify does not see, e.g. some network filesystems).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path
from types import TracebackType
from typing import Any

log = logging.getLogger(__name__)

try:  # optional at import time so a missing wheel degrades to polling instead of failing
    import asyncinotify
except ImportError:  # pragma: no cover - exercised only where the dependency is absent
    asyncinotify = None

# Writers change a file in steps (`echo X > f` truncates, then writes, then closes); reading
# between the steps sees a state nobody meant. After an event, wait until the file has been
# quiet this long (at most SETTLE_MAX_SECONDS, so a file written non-stop is still reported).
SETTLE_QUIET_SECONDS = 0.05
SETTLE_MAX_SECONDS = 0.5


def _signature(path: Path) -> tuple[Any, ...] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:  # e.g. permission denied: report it as a state of its own
        return ("error", exc.errno)
    return (st.st_dev, st.st_ino, st.st_ctime_ns, st.st_mtime_ns, st.st_size)


class PathWatcher:
    """`with PathWatcher(path) as w: ...; async for _ in w: reread()`.

    Enter the context BEFORE reading the file's initial state, so nothing that happens
    between the read and the first wait is missed. Each iteration means "may have changed":
    re-read and compare; spurious wake-ups are possible, missed changes are not.
    """

    def __init__(self, path: str | os.PathLike[str], *, poll_interval: float = 0.25,
                 use_inotify: bool = True, settle: float = SETTLE_QUIET_SECONDS) -> None:
        self.path = Path(path).absolute()
        self.poll_interval = poll_interval
        self.settle = settle
        forced_poll = os.environ.get("AKRI_FILE_WATCH", "").strip().lower() == "poll"
        self._use_inotify = use_inotify and asyncinotify is not None and not forced_poll
        self._inotify: Any = None
        self._pump: asyncio.Task[None] | None = None
        self._events: asyncio.Queue[str] = asyncio.Queue()
        self._pending = False  # an event was taken from the queue but not yet reported
        self._last: tuple[Any, ...] | None = None
        # set when the watched directory is missing: inotify is retried once it exists
        self._retry_inotify = False

    @property
    def mode(self) -> str:
        """"inotify" or "poll" (for logs, tests and benchmarks)."""
        return "inotify" if self._inotify is not None else "poll"

    def __enter__(self) -> PathWatcher:
        if self._use_inotify:
            self._start_inotify()
        self._last = _signature(self.path)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        pump, ino = self._pump, self._inotify
        self._pump = self._inotify = None
        if pump is not None and not pump.done():
            pump.cancel()
            if ino is not None:
                # The pump takes the fd off the event loop (remove_reader) as it unwinds, one loop
                # step later: close the fd only then. Closed first, its number can be reused by a
                # new socket while the loop still watches it, and uvloop aborts the process.
                pump.add_done_callback(lambda _: ino.close())
                return
        if ino is not None:
            ino.close()

    def _start_inotify(self) -> None:
        mask = asyncinotify.Mask
        try:
            ino = asyncinotify.Inotify()
        except OSError as exc:  # EMFILE: max_user_instances reached
            log.warning("inotify unavailable (%s); polling %s every %.2fs", exc, self.path,
                        self.poll_interval)
            return
        try:
            ino.add_watch(
                self.path.parent,
                mask.CREATE | mask.DELETE | mask.MOVED_FROM | mask.MOVED_TO | mask.CLOSE_WRITE
                | mask.MODIFY | mask.ATTRIB | mask.DELETE_SELF | mask.MOVE_SELF | mask.ONLYDIR,
            )
        except OSError as exc:  # directory missing, ENOSPC (max_user_watches) ...
            ino.close()
            self._retry_inotify = not self.path.parent.is_dir()
            log.info("cannot watch %s (%s); polling every %.2fs", self.path.parent, exc, self.poll_interval)
            return
        self._inotify = ino
        self._events = asyncio.Queue()
        self._retry_inotify = False

    async def _pump_events(self, ino: Any, queue: asyncio.Queue[str]) -> None:
        """Move this file's events from the inotify fd to a queue.

        The only reader of the fd and never cancelled while the watch lives: cancelling a
        pending `Inotify.get()` can drop events already read from the fd, a queue cannot.
        """
        mask = asyncinotify.Mask
        name = self.path.name
        async for event in ino:
            if mask.Q_OVERFLOW in event.mask:
                queue.put_nowait("change")  # events were lost: assume the worst
            elif event.mask & (mask.IGNORED | mask.DELETE_SELF | mask.MOVE_SELF | mask.UNMOUNT):
                queue.put_nowait("gone")  # the directory went away: this watch is dead
                return
            elif event.name is not None and str(event.name) == name:
                queue.put_nowait("change")

    def __aiter__(self) -> PathWatcher:
        return self

    async def __anext__(self) -> None:
        await self.changed()

    async def changed(self) -> None:
        """Return when the file may have changed since the previous call (or since entering).

        Safe to cancel (e.g. under asyncio.wait_for): nothing seen is forgotten.
        """
        if self._inotify is not None and await self._inotify_changed():
            return
        await self._poll_changed()

    async def _inotify_changed(self) -> bool:
        """True after a relevant event; False when inotify stopped working (caller polls)."""
        if self._pump is None:
            self._pump = asyncio.create_task(self._pump_events(self._inotify, self._events),
                                             name=f"inotify {self.path.parent}")
            queue = self._events
            self._pump.add_done_callback(lambda task: self._pump_ended(task, queue))
        kind = "change" if self._pending else await self._events.get()
        self._pending = True
        if kind == "change":
            kind = await self._settle()
        if kind == "gone":
            log.info("%s was removed or moved; polling %s from now on", self.path.parent, self.path)
            self.close()
            self._retry_inotify = True
            self._last = None  # the file went with its directory; report whatever comes next
        elif kind == "failed":
            # events may have been lost: report a (maybe spurious) change, poll, and let the
            # poll loop start a fresh inotify watch
            self.close()
            self._retry_inotify = True
            self._last = _signature(self.path)
        else:
            self._last = _signature(self.path)
        self._pending = False
        return True

    def _pump_ended(self, task: asyncio.Task[None], queue: asyncio.Queue[str]) -> None:
        """Wake the waiter when the pump dies: else `_events.get()` would wait forever."""
        if task.cancelled():
            return  # close(): nobody waits on this watch any more
        exc = task.exception()
        if exc is None:
            return  # it queued "gone" before returning
        log.error("inotify reader of %s failed; polling until a new watch works", self.path.parent,
                  exc_info=exc)
        queue.put_nowait("failed")  # unbounded: cannot be full

    async def _settle(self) -> str:
        """Wait until the file has been quiet for `self.settle` seconds (or SETTLE_MAX_SECONDS
        passed); "gone"/"failed" if its directory went away or the reader died meanwhile, else
        "change"."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_MAX_SECONDS
        while (remaining := deadline - loop.time()) > 0:
            try:  # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation (gh-86296)
                async with asyncio.timeout(min(self.settle, remaining)):
                    kind = await self._events.get()
            except TimeoutError:
                break
            if kind != "change":
                return kind
        return "change"

    async def _poll_changed(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            if self._retry_inotify and self.path.parent.is_dir():
                # the directory is back: go back to events
                with contextlib.suppress(Exception):
                    self._start_inotify()
                if self._inotify is not None:
                    log.info("watching %s with inotify again", self.path)
            current = _signature(self.path)
            if current != self._last:
                self._last = current
                return
