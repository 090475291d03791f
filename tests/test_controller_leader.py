"""Lease-based leader election against the API double, in process with short timings: one leader
among racing candidates, a leader that cannot renew stops acting, release lets a follower in at once."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from akri.controller.leader import LeaderConfig, LeaderElector, Lease, micro_time
from akri.kube.api import Kube
from akri.testing.apiserver import ApiServer

pytestmark = pytest.mark.slow

FAST = {"lease_duration": 1.5, "renew_deadline": 1.0, "retry_period": 0.2}


def config(identity: str) -> LeaderConfig:
    return LeaderConfig(namespace="default", name="test-lease", identity=identity, **FAST)


async def test_only_one_of_racing_candidates_acquires() -> None:
    async with ApiServer() as api:
        kubes = [Kube.from_config(api.kubeconfig_path) for _ in range(4)]
        try:
            electors = [LeaderElector(k, config(f"c{i}")) for i, k in enumerate(kubes)]
            results = await asyncio.gather(*(e.try_acquire_or_renew() for e in electors))
            assert sum(results) == 1
            winner = electors[results.index(True)]
            lease = await kubes[0].get(Lease, "test-lease", "default")
            assert lease["spec"]["holderIdentity"] == winner.identity
            assert lease["spec"]["leaseDurationSeconds"] == 2
            # the others keep failing while the holder renews
            assert await winner.try_acquire_or_renew()
            assert not any(
                await asyncio.gather(*(e.try_acquire_or_renew() for e in electors if e is not winner))
            )
        finally:
            for k in kubes:
                await k.close()


async def test_expired_lease_is_taken_over_and_transitions_counted() -> None:
    async with ApiServer() as api:
        kube = Kube.from_config(api.kubeconfig_path)
        try:
            await kube.create(
                Lease,
                {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": "test-lease", "namespace": "default"},
                    "spec": {
                        "holderIdentity": "dead",
                        "leaseDurationSeconds": 1,
                        "renewTime": micro_time(),
                        "leaseTransitions": 3,
                    },
                },
                "default",
            )
            elector = LeaderElector(kube, config("me"))
            assert not await elector.try_acquire_or_renew()  # first sight: counts from now
            await asyncio.sleep(1.1)
            assert await elector.try_acquire_or_renew()
            spec = (await kube.get(Lease, "test-lease", "default"))["spec"]
            assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("me", 4)
        finally:
            await kube.close()


async def test_leader_that_cannot_renew_stops_acting_then_resumes() -> None:
    async with ApiServer() as api:
        kube = Kube.from_config(api.kubeconfig_path, timeout=0.5)
        elector = LeaderElector(kube, config("solo"))
        terms: list[str] = []
        cancelled = asyncio.Event()
        leading = asyncio.Event()

        async def lead() -> None:
            terms.append("start")
            leading.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.set()
                raise

        task = asyncio.create_task(elector.run(lead))
        try:
            await asyncio.wait_for(leading.wait(), 10)
            leading.clear()
            await api.stop()  # renewals fail from now on
            await asyncio.wait_for(cancelled.wait(), 10)
            assert not elector.is_leader
            await api.start()
            await asyncio.wait_for(leading.wait(), 10)  # won again once the API is back
            assert terms == ["start", "start"]
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await kube.close()


async def test_cancelled_leader_releases_and_follower_takes_over_immediately() -> None:
    async with ApiServer() as api:
        k1, k2 = Kube.from_config(api.kubeconfig_path), Kube.from_config(api.kubeconfig_path)
        slow = {**FAST, "lease_duration": 30.0, "renew_deadline": 20.0}  # expiry would take 30 s
        first = LeaderElector(k1, LeaderConfig(namespace="default", name="test-lease", identity="a", **slow))
        second = LeaderElector(k2, LeaderConfig(namespace="default", name="test-lease", identity="b", **slow))
        led = {"a": asyncio.Event(), "b": asyncio.Event()}

        def work(name: str):
            async def lead() -> None:
                led[name].set()
                await asyncio.Event().wait()

            return lead

        t1 = asyncio.create_task(first.run(work("a")))
        t2 = None
        try:
            await asyncio.wait_for(led["a"].wait(), 10)
            t2 = asyncio.create_task(second.run(work("b")))
            await asyncio.sleep(0.5)
            assert not led["b"].is_set()
            t1.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t1
            await asyncio.wait_for(led["b"].wait(), 5)  # far sooner than the 30 s lease
        finally:
            for t in (t1, t2):
                if t is not None:
                    t.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await t
            await k1.close()
            await k2.close()


def test_timings_must_nest() -> None:
    with pytest.raises(ValueError, match="retry_period < renew_deadline < lease_duration"):
        LeaderConfig(namespace="n", lease_duration=5, renew_deadline=5, retry_period=1)
