"""The one retry / back-off helper of the project.

Three shapes of "try again later" recur everywhere in Akri, and all of them live here:

* `Backoff`: a schedule of exponential delays with jitter (watch reconnects, handler streams).
* `retry()`: run an async operation a bounded number of times, sleeping a jittered delay between
  attempts, for errors the caller says are retryable (409 conflicts, transient API errors).
* `BackoffTracker`: per-key exponential back-off for reconcile loops (1, 2, 4, 8 … s, capped,
  reset on success), matching upstream's per-Configuration error requeue.

Jitter exists so that several agents that collided on one object (two nodes claiming one slot,
adding themselves to one shared Instance) do not retry in lock step and collide again.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

#: upstream's MAX_INSTANCE_UPDATE_TRIES
DEFAULT_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential delays: `initial * factor**attempt`, capped at `maximum`, then jittered.

    `jitter` is a fraction: the delay is drawn uniformly from `[d * (1 - jitter), d]`, so a
    jittered delay never exceeds the cap ("full jitter" when `jitter == 1`).
    """

    initial: float = 1.0
    factor: float = 2.0
    maximum: float = 60.0
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < 0:
            raise ValueError("Backoff delays must not be negative")
        if self.factor < 1:
            raise ValueError("Backoff factor must be >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("Backoff jitter is a fraction in [0, 1]")

    def base_delay(self, attempt: int) -> float:
        """Delay before retry number `attempt` (0-based), without jitter."""
        if attempt < 0:
            raise ValueError("attempt must be >= 0")
        # cap the exponent too: factor**attempt overflows a float long before anyone waits that long
        exp = min(attempt, 64)
        return min(self.maximum, self.initial * self.factor**exp)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        base = self.base_delay(attempt)
        if self.jitter == 0 or base == 0:
            return base
        r = (rng or random).random()
        return base * (1 - self.jitter * r)


#: Between attempts of a conflicting write: upstream's `random_delay()` is uniform 0-200 ms.
CONFLICT_BACKOFF = Backoff(initial=0.05, factor=2.0, maximum=0.4, jitter=1.0)


class RetriesExhausted(Exception):
    """`retry()` gave up; `last` is the final error."""

    def __init__(self, what: str, attempts: int, last: BaseException) -> None:
        super().__init__(f"{what}: gave up after {attempts} attempts: {last}")
        self.what = what
        self.attempts = attempts
        self.last = last


async def retry(
    operation: Callable[[], Awaitable[T]],
    *,
    retry_on: Callable[[BaseException], bool],
    attempts: int = DEFAULT_ATTEMPTS,
    backoff: Backoff = CONFLICT_BACKOFF,
    what: str = "operation",
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> T:
    """Await `operation()` up to `attempts` times while `retry_on(error)` says the error is retryable.

    Non-retryable errors propagate at once. When every attempt failed with a retryable error,
    RetriesExhausted is raised (chained to the last error) so callers can tell "gave up" apart
    from "failed".
    """
    if attempts < 1:
        raise ValueError("attempts must be >= 1")
    for attempt in range(attempts):
        try:
            return await operation()
        except Exception as exc:
            if not retry_on(exc):
                raise
            if attempt + 1 >= attempts:
                raise RetriesExhausted(what, attempts, exc) from exc
            delay = backoff.delay(attempt)
            log.debug("%s: attempt %d failed (%s); retrying in %.3f s", what, attempt + 1, exc, delay)
            await sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


#: Reconcile loops: 1, 2, 4, 8 … s (upstream starts at 500 ms and doubles before the first wait).
RECONCILE_BACKOFF = Backoff(initial=1.0, factor=2.0, maximum=60.0, jitter=0.0)


class BackoffTracker:
    """Per-key failure counts for reconcile loops: `failure(key)` returns the next delay.

    Keys are independent (one Configuration failing does not slow another); `success(key)`
    resets a key. With the default schedule: key 1 fails → 1, 2, 4 s; key 2 fails → 1 s;
    key 1 fails again → 8 s.
    """

    def __init__(self, backoff: Backoff = RECONCILE_BACKOFF) -> None:
        self.backoff = backoff
        self._failures: dict[Hashable, int] = {}

    def failure(self, key: Hashable) -> float:
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        return self.backoff.delay(n)

    def success(self, key: Hashable) -> None:
        self._failures.pop(key, None)

    def failures(self, key: Hashable) -> int:
        return self._failures.get(key, 0)

    def forget(self, key: Hashable) -> None:
        """Drop a key for good (its object is gone), so the table does not grow without bound."""
        self._failures.pop(key, None)

    def __len__(self) -> int:
        return len(self._failures)
