"""akri.retry: back-off schedules, bounded retries, per-key reconcile back-off."""

from __future__ import annotations

import random

import pytest

from akri.retry import CONFLICT_BACKOFF, Backoff, BackoffTracker, RetriesExhausted, retry


def test_backoff_doubles_and_caps() -> None:
    b = Backoff(initial=1.0, factor=2.0, maximum=10.0)
    assert [b.delay(i) for i in range(6)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    # huge attempt numbers stay at the cap instead of overflowing
    assert b.delay(10_000) == 10.0


def test_jitter_stays_within_its_band() -> None:
    b = Backoff(initial=4.0, factor=2.0, maximum=100.0, jitter=0.5)
    rng = random.Random(7)
    samples = [b.delay(1, rng) for _ in range(500)]
    assert all(4.0 <= s <= 8.0 for s in samples)
    assert len(set(samples)) > 400  # actually random, so colliding writers spread out


def test_conflict_backoff_matches_upstream_random_delay_range() -> None:
    # upstream sleeps uniformly 0-200 ms between Instance update tries
    samples = [CONFLICT_BACKOFF.delay(a) for a in range(3) for _ in range(200)]
    assert all(0 <= s <= 0.2 for s in samples)
    assert max(samples) > 0.1


@pytest.mark.parametrize("kwargs", [{"initial": -1}, {"factor": 0.5}, {"jitter": 1.5}])
def test_backoff_rejects_nonsense(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)


class Conflict(Exception):
    pass


async def test_retry_retries_retryable_errors_then_succeeds() -> None:
    calls, sleeps = [], []

    async def op() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise Conflict()
        return "done"

    async def fake_sleep(d: float) -> None:
        sleeps.append(d)

    result = await retry(
        op,
        retry_on=lambda e: isinstance(e, Conflict),
        attempts=5,
        backoff=Backoff(initial=1, factor=3, maximum=100),
        sleep=fake_sleep,
    )
    assert result == "done"
    assert len(calls) == 3
    assert sleeps == [1, 3]


async def test_retry_is_bounded_and_chains_the_last_error() -> None:
    calls = []

    async def op() -> None:
        calls.append(1)
        raise Conflict(f"try {len(calls)}")

    async def no_sleep(_: float) -> None:
        pass

    with pytest.raises(RetriesExhausted) as info:
        await retry(
            op, retry_on=lambda e: isinstance(e, Conflict), attempts=4, sleep=no_sleep, what="write x"
        )
    assert len(calls) == 4
    assert info.value.attempts == 4
    assert str(info.value.last) == "try 4"
    assert info.value.__cause__ is info.value.last
    assert "write x" in str(info.value)


async def test_retry_does_not_retry_other_errors() -> None:
    calls = []

    async def op() -> None:
        calls.append(1)
        raise KeyError("nope")

    with pytest.raises(KeyError):
        await retry(op, retry_on=lambda e: isinstance(e, Conflict), attempts=5)
    assert len(calls) == 1


def test_tracker_matches_upstream_vector() -> None:
    # spec §4.6: config-1 errors → 1, 2, 4 s; config-2 first error → 1 s; config-1 again → 8 s
    t = BackoffTracker()
    assert [t.failure("config-1") for _ in range(3)] == [1, 2, 4]
    assert t.failure("config-2") == 1
    assert t.failure("config-1") == 8


def test_tracker_resets_on_success_and_caps() -> None:
    t = BackoffTracker(Backoff(initial=1, factor=2, maximum=5))
    assert [t.failure("k") for _ in range(5)] == [1, 2, 4, 5, 5]
    t.success("k")
    assert t.failures("k") == 0
    assert t.failure("k") == 1
    t.forget("k")
    assert len(t) == 0
