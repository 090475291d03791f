"""Controller metrics on `/metrics` (spec §4.12): `akri_broker_pod_count{configuration,node}`.

Upstream counts +1 per Pod it creates and -1 per Pod it deletes, which drifts as soon as
someone else deletes a broker or the controller restarts. Here the gauge is computed at scrape
time from the controller's Pod cache: the number of broker Pods that exist, per Configuration
and target node. Process metrics (`process_*`) come from akri.metrics_registry.

The HTTP side is akri.metrics_server, shared with the agent.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from akri.controller.brokers import CONFIGURATION_LABEL, TARGET_NODE_LABEL
from akri.metrics_registry import Family, Registry, with_process_metrics
from akri.metrics_server import DEFAULT_PORT, MetricsServer

log = logging.getLogger(__name__)

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


class BrokerPodCollector:
    def __init__(self, pods: Callable[[], Iterable[Mapping[str, Any]]]) -> None:
        self._pods = pods

    def collect(self) -> Iterator[Family]:
        family = Family.gauge(BROKER_POD_COUNT, "Akri broker Pods by Configuration and node",
                              ["configuration", "node"])
        for (config, node), n in sorted(broker_pod_counts(self._pods()).items()):
            family.add([config, node], n)
        yield family


def make_registry(pods: Callable[[], Iterable[Mapping[str, Any]]]) -> Registry:
    registry = with_process_metrics()
    registry.register(BrokerPodCollector(pods))
    return registry


__all__ = ["DEFAULT_PORT", "BrokerPodCollector", "MetricsServer", "broker_pod_counts", "make_registry"]
