"""The controller's keyed work queue: dedupe, one worker per key at a time, delayed adds."""

from __future__ import annotations

import asyncio
import contextlib

from akri.workqueue import WorkQueue


async def run_queue(queue: WorkQueue, handler, workers: int = 4) -> asyncio.Task:
    return asyncio.create_task(queue.run(handler, workers))


async def stop(task: asyncio.Task) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_keys_added_before_processing_are_reconciled_once() -> None:
    queue = WorkQueue()
    seen: list[str] = []
    for key in ("a", "b", "a", "a", "b"):
        queue.add(key)
    assert len(queue) == 2
    done = asyncio.Event()

    async def handler(key: str) -> None:
        seen.append(key)
        if len(seen) == 2:
            done.set()

    task = await run_queue(queue, handler)
    await asyncio.wait_for(done.wait(), 10)
    await asyncio.sleep(0.05)
    assert sorted(seen) == ["a", "b"]
    assert queue.idle
    await stop(task)


async def test_same_key_never_runs_concurrently_and_is_rerun_once_when_added_meanwhile() -> None:
    queue = WorkQueue()
    running: set[str] = set()
    overlaps = 0
    calls = 0
    release = asyncio.Event()

    async def handler(key: str) -> None:
        nonlocal overlaps, calls
        calls += 1
        if key in running:
            overlaps += 1
        running.add(key)
        try:
            if calls == 1:
                await release.wait()
        finally:
            running.discard(key)

    queue.add("k")
    task = await run_queue(queue, handler, workers=4)
    await asyncio.sleep(0.05)
    for _ in range(5):  # added while the first run is in progress: one more run afterwards
        queue.add("k")
    await asyncio.sleep(0.05)
    assert calls == 1
    release.set()
    for _ in range(100):
        if queue.idle:
            break
        await asyncio.sleep(0.01)
    assert calls == 2 and overlaps == 0
    await stop(task)


async def test_add_after_earliest_wins_and_failing_handler_does_not_stop_workers() -> None:
    queue = WorkQueue()
    seen: list[tuple[str, float]] = []
    loop = asyncio.get_running_loop()
    start = loop.time()
    got_b = asyncio.Event()

    async def handler(key: str) -> None:
        seen.append((key, loop.time() - start))
        if key == "boom":
            raise RuntimeError("handler bug")
        if key == "b":
            got_b.set()

    task = await run_queue(queue, handler, workers=1)
    queue.add("boom")
    queue.add_after("b", 5.0)
    queue.add_after("b", 0.1)  # earlier schedule replaces the later one
    queue.add_after("b", 3.0)  # a later one does not postpone it
    await asyncio.wait_for(got_b.wait(), 10)
    await asyncio.sleep(0.2)
    keys = [k for k, _ in seen]
    assert keys == ["boom", "b"]
    assert 0.05 < seen[1][1] < 2.0
    await stop(task)
