"""What every akri gRPC client call (grpclib) can fail with, and how to say it in a log line.

A call fails with GRPCError when the server answered with a status, StreamTerminatedError when
the connection or stream broke mid-call, and OSError when there was nobody to connect to
(a missing socket, a refused connection) or its deadline (`within`) ran out (TimeoutError).

Deadlines: never pass grpclib's per-call `timeout=`. grpclib enforces it with `task.cancel()` and
turns the CancelledError into TimeoutError without `uncancel()`: a real cancellation arriving in the
same loop tick as the deadline comes out as a mere TimeoutError (which RPC_ERRORS catches, so a
loop carries on and its shutdown hangs), and every timed-out call leaves `task.cancelling()` at 1.
`asyncio.timeout` (what `within` uses) un-cancels its own cancellation and lets a real one through.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from grpclib import GRPCError
from grpclib.client import Channel
from grpclib.exceptions import StreamTerminatedError

RPC_ERRORS: tuple[type[Exception], ...] = (GRPCError, StreamTerminatedError, OSError)

T = TypeVar("T")


async def within(seconds: float, call: Awaitable[T]) -> T:
    """`await call` (a grpclib stub call, connecting included), raising TimeoutError after
    `seconds`; a cancellation of the caller always propagates, even one in the deadline's tick."""
    async with asyncio.timeout(seconds):
        return await call


def describe(exc: BaseException) -> str:
    """`INVALID_ARGUMENT: name: must not be empty`, `ConnectionRefusedError: [Errno 111] ...`."""
    if isinstance(exc, GRPCError):
        return f"{exc.status.name}: {exc.message}" if exc.message else exc.status.name
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def channel(target: str) -> Channel:
    """A plaintext channel to a gRPC target: `unix:///abs/path`, `unix:path`, `host:port` or
    `[v6addr]:port` (the forms grpcio accepts, and HandlerEndpoint.target holds)."""
    if target.startswith("unix:"):
        path = target.removeprefix("unix:")
        if path.startswith("//"):
            path = path[2:]
        return Channel(path=path)
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"gRPC target {target!r}: expected host:port or unix:///path")
    return Channel(host.removeprefix("[").removesuffix("]"), int(port))


async def reachable(target: str, within: float) -> bool:
    """Does something accept connections at `target` within `within` seconds?"""
    ch = channel(target)
    try:
        async with asyncio.timeout(within):  # not wait_for: on 3.11 it can swallow a cancellation
            await ch.__connect__()  # grpclib's "connect now" (what its calls do first)
        return True
    except OSError:  # TimeoutError included
        return False
    finally:
        ch.close()
