"""`akri controller` as a whole: metrics server, leader election, the reconciler while leading.

Nothing in here exits because a watch ended: informers resume or re-list by themselves (upstream
exits and relies on a Pod restart), and losing the Lease only stops the work until it is won
again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from akri.controller.leader import DEFAULT_LEASE_NAME, LeaderConfig, LeaderElector
from akri.controller.metrics import make_registry
from akri.controller.reconciler import BrokerController, Settings
from akri.kube.api import Kube
from akri.kube.config import default_namespace
from akri.metrics_server import DEFAULT_PORT, MetricsServer

log = logging.getLogger(__name__)

@dataclass
class ControllerOptions:
    kubeconfig: str | None = None
    metrics_host: str = "0.0.0.0"
    metrics_port: int = DEFAULT_PORT
    leader_election: bool = True
    lease_namespace: str = field(default_factory=default_namespace)
    lease_name: str = DEFAULT_LEASE_NAME
    identity: str = ""
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    settings: Settings = field(default_factory=Settings)


class ControllerProcess:
    """Holds the current leadership term's controller so metrics can read its Pod cache."""

    def __init__(self, options: ControllerOptions) -> None:
        self.options = options
        self.current: BrokerController | None = None

    def _pods(self) -> Iterator[dict[str, Any]]:
        current = self.current
        return current.broker_pods() if current is not None else iter(())

    async def _lead(self, kube: Kube) -> None:
        controller = BrokerController(kube, self.options.settings)
        self.current = controller
        try:
            await controller.run()
        finally:
            self.current = None

    async def run(self) -> None:
        opts = self.options
        kube = Kube.from_config(opts.kubeconfig)
        metrics = MetricsServer(make_registry(self._pods), opts.metrics_host, opts.metrics_port)
        await metrics.start()
        try:
            if opts.leader_election:
                elector = LeaderElector(kube, LeaderConfig(
                    namespace=opts.lease_namespace, name=opts.lease_name, identity=opts.identity,
                    lease_duration=opts.lease_duration, renew_deadline=opts.renew_deadline,
                    retry_period=opts.retry_period,
                ))
                log.info("controller %s starting; leader election on lease %s/%s", elector.identity,
                         opts.lease_namespace, opts.lease_name)
                await elector.run(lambda: self._lead(kube))
            else:
                log.info("controller starting without leader election")
                await self._lead(kube)
        finally:
            await metrics.stop()
            with contextlib.suppress(Exception):
                await kube.close()


async def run_until_signalled(options: ControllerOptions) -> None:
    """Run until SIGTERM/SIGINT, then stop cleanly (releasing the Lease)."""
    import signal

    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    assert task is not None
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await ControllerProcess(options).run()
