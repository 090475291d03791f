"""Wake up when sockets appear in or vanish from the device-plugin directory.

A restarting kubelet deletes every socket in the directory and then creates `kubelet.sock`;
plugins must serve again and re-register (k8s docs, "Handling kubelet restarts"). inotify on
the directory (`asyncinotify`, reads on the event loop) reports both within milliseconds;
without inotify (no library, watch limit reached) `wait()` falls back to a timeout, and the
caller re-checks by `stat()` (change times, never inode numbers) every `poll_interval`.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

try:  # optional: without it the manager polls
    import asyncinotify
except ImportError:  # pragma: no cover
    asyncinotify = None


class DirectoryWatch:
    """`await watch.wait(seconds)`: True on a create/delete/move in the directory, False after `seconds`."""

    def __init__(self, directory: Path, *, use_inotify: bool = True) -> None:
        self.directory = directory
        self._inotify: Any = None
        self._use_inotify = use_inotify and asyncinotify is not None
        if self._use_inotify:
            self._start()

    @property
    def mode(self) -> str:
        return "inotify" if self._inotify is not None else "poll"

    def _start(self) -> None:
        mask = asyncinotify.Mask
        try:
            ino = asyncinotify.Inotify()
        except OSError as exc:
            log.warning("inotify unavailable (%s): polling %s", exc, self.directory)
            return
        try:
            ino.add_watch(
                self.directory,
                mask.CREATE
                | mask.DELETE
                | mask.MOVED_FROM
                | mask.MOVED_TO
                | mask.DELETE_SELF
                | mask.MOVE_SELF
                | mask.ONLYDIR,
            )
        except OSError as exc:
            ino.close()
            log.warning("cannot watch %s (%s): polling", self.directory, exc)
            return
        self._inotify = ino

    async def wait(self, seconds: float) -> bool:
        if self._inotify is None:
            if self._use_inotify and self.directory.is_dir():
                self._start()  # the directory may exist now
            if self._inotify is None:
                await asyncio.sleep(seconds)
                return False
        try:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation that
            # arrives together with an event, and the caller's task would never stop
            async with asyncio.timeout(seconds):
                event = await self._inotify.get()
        except TimeoutError:
            return False
        if event.mask & (
            asyncinotify.Mask.IGNORED | asyncinotify.Mask.DELETE_SELF | asyncinotify.Mask.MOVE_SELF
        ):
            log.info("%s was removed or moved: polling until it is back", self.directory)
            self.close()
        return True

    def close(self) -> None:
        if self._inotify is not None:
            self._inotify.close()
            self._inotify = None
