"""Leader election on a `coordination.k8s.io/v1` Lease (client-go's leaderelection, in asyncio).

Several controller replicas may run; only the holder of the Lease acts. The holder renews the
Lease every `retry_period`; if it cannot renew for `renew_deadline` it stops acting at once
(cancels its work) and becomes a candidate again. A candidate takes the Lease over once the
holder has not renewed it for `lease_duration`, measured on the candidate's own clock from when
it last saw the Lease change (so clock skew between nodes does not matter). Since
`renew_deadline < lease_duration`, a stalled leader has stopped before anyone else starts.
A leader shutting down cleanly releases the Lease so a follower takes over at once.

Every write is a PUT carrying the resourceVersion that was read: two candidates racing for an
expired Lease cannot both win.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from akri.kube.api import Kube
from akri.kube.errors import describe, is_conflict, is_not_found
from akri.kube.resources import Lease

log = logging.getLogger(__name__)


DEFAULT_LEASE_NAME = "akri-controller"


def default_identity() -> str:
    """Pod name (HOSTNAME in a Pod) plus a random suffix: a restarted Pod is a new candidate."""
    host = os.environ.get("POD_NAME") or os.environ.get("HOSTNAME") or socket.gethostname()
    return f"{host}_{uuid.uuid4().hex[:8]}"


def micro_time(moment: datetime | None = None) -> str:
    """Kubernetes MicroTime: RFC 3339 with microseconds, UTC."""
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class LeaderConfig:
    namespace: str
    name: str = DEFAULT_LEASE_NAME
    identity: str = ""
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError("leader election needs retry_period < renew_deadline < lease_duration")


class LeaderElector:
    def __init__(self, kube: Kube, config: LeaderConfig, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.kube = kube
        self.config = config
        self.identity = config.identity or default_identity()
        self._clock = clock
        self._observed: tuple[Any, ...] | None = None  # holder, renewTime, acquireTime, transitions
        self._observed_at = 0.0
        self._last_renew = 0.0
        self.is_leader = False
        self.transitions_seen = 0

    # --- one attempt ----------------------------------------------------------------------

    def _spec(self, old: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
        old = old or {}
        was_ours = old.get("holderIdentity") == self.identity
        transitions = int(old.get("leaseTransitions") or 0)
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.config.lease_duration)),
            "acquireTime": old.get("acquireTime") if was_ours and old.get("acquireTime") else micro_time(now),
            "renewTime": micro_time(now),
            "leaseTransitions": transitions if was_ours or not old.get("holderIdentity") else transitions + 1,
        }

    def _observe(self, spec: dict[str, Any]) -> None:
        record = (spec.get("holderIdentity"), spec.get("renewTime"), spec.get("acquireTime"),
                  spec.get("leaseTransitions"), spec.get("leaseDurationSeconds"))
        if record != self._observed:
            self._observed = record
            self._observed_at = self._clock()

    async def try_acquire_or_renew(self) -> bool:
        """One round: True when we hold the Lease afterwards."""
        cfg = self.config
        now = datetime.now(UTC)
        lease = await self.kube.get_or_none(Lease, cfg.name, cfg.namespace)
        if lease is None:
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": cfg.name, "namespace": cfg.namespace}, "spec": self._spec(None, now)}
            try:
                created = await self.kube.create(Lease, body, namespace=cfg.namespace)
            except Exception as exc:
                if is_conflict(exc):  # another candidate created it first
                    return False
                raise
            self._observe(created.get("spec") or {})
            return True
        spec = lease.get("spec") or {}
        self._observe(spec)
        holder = spec.get("holderIdentity")
        duration = spec.get("leaseDurationSeconds") or cfg.lease_duration
        if holder and holder != self.identity and self._observed_at + float(duration) > self._clock():
            return False  # held by someone else and not expired
        body = dict(lease)
        body["spec"] = {**spec, **self._spec(spec, now)}
        try:
            updated = await self.kube.replace(Lease, body, namespace=cfg.namespace)
        except Exception as exc:
            if is_conflict(exc) or is_not_found(exc):
                return False
            raise
        self._observe(updated.get("spec") or {})
        return True

    async def release(self) -> None:
        """Give the Lease up (only if we still hold it), so a follower need not wait it out."""
        try:
            lease = await self.kube.get_or_none(Lease, self.config.name, self.config.namespace)
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            body = dict(lease)
            body["spec"] = {**lease["spec"], "holderIdentity": "", "leaseDurationSeconds": 1,
                            "renewTime": micro_time()}
            await self.kube.replace(Lease, body, namespace=self.config.namespace)
            log.info("released lease %s/%s", self.config.namespace, self.config.name)
        except Exception as exc:
            log.warning("could not release lease: %s", describe(exc))

    async def _attempt(self) -> bool:
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation (gh-86296)
            async with asyncio.timeout(self.config.retry_period * 2):
                return await self.try_acquire_or_renew()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("lease %s/%s: %s", self.config.namespace, self.config.name, describe(exc))
            return False

    # --- the loop -------------------------------------------------------------------------

    async def _acquire(self) -> None:
        waiting_logged = False
        while not await self._attempt():
            if not waiting_logged:
                holder = self._observed[0] if self._observed else None
                log.info("%s: waiting for lease %s/%s (held by %s)", self.identity,
                         self.config.namespace, self.config.name, holder)
                waiting_logged = True
            await asyncio.sleep(self.config.retry_period)
        self._last_renew = self._clock()

    async def _renew_until_lost(self) -> None:
        while True:
            await asyncio.sleep(self.config.retry_period)
            if await self._attempt():
                self._last_renew = self._clock()
            elif self._clock() - self._last_renew >= self.config.renew_deadline:
                return

    async def run(self, lead: Callable[[], Awaitable[None]]) -> None:
        """Forever: acquire the Lease, run `lead()` while holding it, cancel it when the Lease
        is lost and go back to waiting. Cancelling `run` stops `lead()` and releases the Lease."""
        try:
            while True:
                await self._acquire()
                self.is_leader = True
                self.transitions_seen += 1
                log.info("%s: became leader (lease %s/%s)", self.identity, self.config.namespace,
                         self.config.name)
                work = asyncio.create_task(lead(), name="leader-work")
                renew = asyncio.create_task(self._renew_until_lost(), name="lease-renew")
                try:
                    done, _ = await asyncio.wait({work, renew}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    self.is_leader = False
                    for task in (work, renew):
                        task.cancel()
                    for task in (work, renew):
                        with contextlib.suppress(asyncio.CancelledError, Exception):
                            await task
                if work in done:
                    exc = work.exception() if not work.cancelled() else None
                    if exc is not None:
                        log.error("leader work failed: %s; giving up the lease", exc)
                    await self.release()
                    if exc is not None:
                        raise exc
                    return
                log.warning("%s: lost lease %s/%s; stopped acting", self.identity, self.config.namespace,
                            self.config.name)
        except asyncio.CancelledError:
            await asyncio.shield(self.release())
            raise
