"""Controller metrics on `/metrics` (spec §4.12): `akri_broker_pod_count{configuration,node}`.

Upstream counts +1 per Pod it creates and -1 per Pod it deletes, which drifts as soon as
someone else deletes a broker or the controller restarts. Here the gauge is computed at scrape
time from the controller's Pod cache: the number of broker Pods that exist, per Configuration
and target node. Process metrics (`process_*`) come with prometheus_client.

The HTTP side is a few lines of asyncio rather than a web framework: one GET path, tiny
footprint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from akri.controller.brokers import CONFIGURATION_LABEL, TARGET_NODE_LABEL

log = logging.getLogger(__name__)

DEFAULT_PORT = 8080
BROKER_POD_COUNT = "akri_broker_pod_count"


def broker_pod_counts(pods: Iterable[Mapping[str, Any]]) -> Counter[tuple[str, str]]:
    """(configuration, node) -> number of broker Pods (Pods with both Akri labels)."""
    counts: Counter[tuple[str, str]] = Counter()
    for pod in pods:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        config, node = labels.get(CONFIGURATION_LABEL), labels.get(TARGET_NODE_LABEL)
        if config and node:
            counts[(config, node)] += 1
    return counts


class BrokerPodCollector(Collector):
    def __init__(self, pods: Callable[[], Iterable[Mapping[str, Any]]]) -> None:
        self._pods = pods

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(BROKER_POD_COUNT, "Akri broker Pods by Configuration and node",
                                   labels=["configuration", "node"])
        for (config, node), n in sorted(broker_pod_counts(self._pods()).items()):
            family.add_metric([config, node], n)
        yield family


def make_registry(pods: Callable[[], Iterable[Mapping[str, Any]]]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    registry.register(BrokerPodCollector(pods))
    return registry


class MetricsServer:
    """`GET /metrics` over plain HTTP/1.1 (one request per connection)."""

    def __init__(self, registry: CollectorRegistry, host: str = "0.0.0.0", port: int = DEFAULT_PORT) -> None:
        self.registry = registry
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        if self.port == 0:
            self.port = self._server.sockets[0].getsockname()[1]
        log.info("metrics on http://%s:%d/metrics", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            method, _, rest = head.partition(b" ")
            path = rest.split(b" ", 1)[0].split(b"?", 1)[0]
            if method not in (b"GET", b"HEAD"):
                status, ctype, body = b"405 Method Not Allowed", b"text/plain", b"method not allowed\n"
            elif path == b"/metrics":
                status, ctype, body = b"200 OK", CONTENT_TYPE_LATEST.encode(), generate_latest(self.registry)
            elif path in (b"/healthz", b"/"):
                status, ctype, body = b"200 OK", b"text/plain", b"ok\n"
            else:
                status, ctype, body = b"404 Not Found", b"text/plain", b"not found\n"
            writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: " + ctype + b"\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n")
            if method != b"HEAD":
                writer.write(body)
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            pass
        except Exception:
            log.exception("metrics request failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
