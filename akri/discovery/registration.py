"""Registering a standalone handler with the agent, and registering again when needed.

Upstream's handler retries every 10 s while the agent is away and re-registers only when a
discover loop notices the agent has gone. Here the registration socket's directory is
watched: when the agent (re)creates `agent-registration.sock` the handler registers within
milliseconds, and it also re-registers when the agent cancels a Discover stream (upstream's
trigger, kept for agents that restart without re-creating the socket file).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from grpclib.client import Channel

from akri.discovery.filewatch import PathWatcher
from akri.grpc_client import RPC_ERRORS, describe, within

log = logging.getLogger(__name__)

REGISTRATION_SOCKET = "agent-registration.sock"
# How long one RegisterDiscoveryHandler call may take before it counts as failed.
REGISTER_TIMEOUT_SECONDS = 5.0
# Retry back-off while the agent is away (doubling up to upstream's 10 s); a re-created socket
# cuts any wait short. The first retries are quick because a socket that just appeared may be
# bound but not yet listening.
RETRY_FIRST_SECONDS = 0.02
RETRY_MAX_SECONDS = 10.0
# Directory events of one agent start (bind, chmod) within this quiet time make one registration:
# every registration makes the agent query the handler again.
SOCKET_SETTLE_SECONDS = 0.02


@dataclass(frozen=True, slots=True)
class Registration:
    """What a handler tells the agent (v0.RegisterDiscoveryHandlerRequest)."""

    name: str
    endpoint: str
    network: bool  # False: UDS (endpoint is the socket path); True: "http://<ip>:<port>"
    shared: bool

    def to_proto(self):  # -> discovery_pb2.RegisterDiscoveryHandlerRequest
        from akri._proto import discovery_pb2 as pb

        kind = pb.RegisterDiscoveryHandlerRequest
        return kind(name=self.name, endpoint=self.endpoint,
                    endpoint_type=kind.NETWORK if self.network else kind.UDS, shared=self.shared)


async def register_once(socket_path: str | Path, registration: Registration,
                        rpc_timeout: float = REGISTER_TIMEOUT_SECONDS) -> None:
    """One RegisterDiscoveryHandler call on the agent's socket; raises one of RPC_ERRORS
    (GRPCError when the agent refused it, OSError when nobody listens or it timed out)."""
    from akri._proto import discovery_grpc as pb_grpc

    async with Channel(path=str(socket_path)) as channel:
        stub = pb_grpc.RegistrationStub(channel)
        await within(rpc_timeout, stub.RegisterDiscoveryHandler(registration.to_proto()))


class RegistrationClient:
    """Keeps one handler registered with the agent of this node. `await run()` until cancelled."""

    def __init__(self, directory: str | Path, registration: Registration, *,
                 poll_interval: float = 0.2) -> None:
        self.socket_path = Path(directory) / REGISTRATION_SOCKET
        self.registration = registration
        self.poll_interval = poll_interval
        self.registrations = 0  # successful calls so far
        self.last_registered: float | None = None  # time.monotonic() of the last success
        self._wake = asyncio.Event()
        self._registered = asyncio.Event()

    def reregister(self, reason: str = "requested") -> None:
        """Register again as soon as possible (e.g. the agent cancelled a Discover stream)."""
        log.info("will register %s again: %s", self.registration.name, reason)
        self._wake.set()

    async def wait_registered(self) -> None:
        await self._registered.wait()

    async def run(self) -> None:
        with PathWatcher(self.socket_path, poll_interval=self.poll_interval,
                         settle=SOCKET_SETTLE_SECONDS) as watcher:
            watch_task = asyncio.create_task(self._watch_socket(watcher), name="watch-agent-socket")
            try:
                await self._register_loop()
            finally:
                watch_task.cancel()
                await asyncio.gather(watch_task, return_exceptions=True)

    async def _watch_socket(self, watcher: PathWatcher) -> None:
        async for _ in watcher:
            if self.socket_path.exists():
                # created or replaced: a (re)started agent that does not know us yet
                self.reregister(f"{self.socket_path} appeared or changed")

    async def _register_loop(self) -> None:
        delay = RETRY_FIRST_SECONDS
        failures = 0
        while True:
            self._wake.clear()
            try:
                await register_once(self.socket_path, self.registration)
            except RPC_ERRORS as exc:
                failures += 1
                detail = describe(exc)
                # the first failure and then every tenth, so an absent agent does not flood the log
                if failures == 1 or failures % 10 == 0:
                    log.warning("cannot register %s with the agent at %s (%s); retrying",
                                self.registration.name, self.socket_path, detail)
                try:  # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation (gh-86296)
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                    delay = RETRY_FIRST_SECONDS  # the socket changed: start over quickly
                except TimeoutError:
                    delay = min(delay * 2, RETRY_MAX_SECONDS)
                continue
            failures = 0
            delay = RETRY_FIRST_SECONDS
            self.registrations += 1
            self.last_registered = time.monotonic()
            self._registered.set()
            log.info("registered discovery handler %s (endpoint %s, %s, shared=%s)", self.registration.name,
                     self.registration.endpoint, "network" if self.registration.network else "uds",
                     self.registration.shared)
            await self._wake.wait()
