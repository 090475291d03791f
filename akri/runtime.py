"""Running a long-lived coroutine: on uvloop (DESIGN: uvloop.Runner-style, never uvloop.install())."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` to completion on a fresh uvloop event loop (asyncio's if uvloop is missing)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; keep working without it
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


async def stop_task(task: asyncio.Task[Any] | None, what: str) -> None:
    """Cancel a background loop and wait for it to end.

    An exception it ended with earlier is only logged at debug level: the agent's task
    supervision has already reported it, and shutdown must go on.
    """
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        try:
            await task
        except Exception:
            log.debug("%s had failed", what, exc_info=True)
