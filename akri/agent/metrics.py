"""Agent metrics on `/metrics` (spec §4.12), emitted for real (upstream defines them and never
touches them, §11.5).

* `akri_instance_count{configuration,is_shared}`: this node's Instances, counted at scrape
  time from the agent's Instance cache (a count kept by +1/-1 drifts across restarts).
* `akri_instance_slots{instance,state}`: slots of each of this node's Instances by state
  `used` (held by this node), `other_node` (held by another node) and `free`, from the
  Instance's `deviceUsage` as the agent last saw it.
* `akri_discovery_response_time{configuration}`: seconds from opening a Discover stream to
  the handler's first device list, buckets of upstream.
* `akri_discovery_response_result_total{discovery_handler_name,result}`: device lists
  received (`Success`) and Discover streams that failed (`Fail`). The exposition adds the
  `_total` suffix every Prometheus counter carries.
* `process_*` / `python_info`: resident memory, CPU, open fds (akri.metrics_registry).

The HTTP side is the controller's small asyncio server (one GET path; no web framework).
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator, Mapping

from akri.agent.node_instances import NodeInstance
from akri.metrics_registry import Counter, Family, Histogram, with_process_metrics
from akri.metrics_server import DEFAULT_PORT, MetricsServer
from akri.model.naming import slot_index
from akri.model.usage import parse_usage

__all__ = ["DEFAULT_PORT", "RESPONSE_TIME_BUCKETS", "AgentMetrics", "MetricsServer", "slot_states"]

RESPONSE_TIME_BUCKETS = (0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 60)
SUCCESS = "Success"
FAIL = "Fail"


def slot_states(device_usage: Mapping[str, str], capacity: int, node: str) -> dict[str, int]:
    """Count an Instance's slots by state as seen from `node` (absent and "" = free).
    Unreadable entries are skipped: a scrape must not fail on one odd Instance."""
    holders: dict[int, str] = {}
    for key, value in device_usage.items():
        try:
            index, holder = slot_index(key), parse_usage(value).node
        except ValueError:
            continue
        if holder is not None and 0 <= index < capacity:
            holders[index] = holder
    used = sum(1 for holder in holders.values() if holder == node)
    return {"used": used, "free": capacity - len(holders), "other_node": len(holders) - used}


class _InstanceCollector:
    """State gauges computed from this node's Instances at scrape time."""

    def __init__(self, node: str, instances: Callable[[], Iterable[NodeInstance]]) -> None:
        self.node = node
        self.instances = instances

    def collect(self) -> Iterator[Family]:
        count = Family.gauge("akri_instance_count", "Instances this node serves",
                             ["configuration", "is_shared"])
        slots = Family.gauge("akri_instance_slots", "Slots of this node's Instances by state",
                             ["instance", "state"])
        tally: Tally[tuple[str, str]] = Tally()
        for view in sorted(self.instances(), key=lambda v: v.name):
            spec = view.instance.spec
            tally[(spec.configuration_name, str(spec.shared).lower())] += 1
            for state, n in slot_states(spec.device_usage, spec.capacity, self.node).items():
                slots.add([view.name, state], n)
        for (config, shared), n in sorted(tally.items()):
            count.add([config, shared], n)
        yield count
        yield slots


class AgentMetrics:
    """The agent's registry; also the `DiscoveryObserver` of its discovery requests."""

    def __init__(self, node: str, instances: Callable[[], Iterable[NodeInstance]] = tuple) -> None:
        self.registry = with_process_metrics()
        self.response_time = Histogram(
            "akri_discovery_response_time",
            "Seconds from opening a Discover stream to the handler's first device list",
            ["configuration"], buckets=RESPONSE_TIME_BUCKETS, registry=self.registry)
        self.response_result = Counter(
            "akri_discovery_response_result",
            "Device lists received (Success) and Discover streams failed (Fail), per handler",
            ["discovery_handler_name", "result"], registry=self.registry)
        self._instances = _InstanceCollector(node, instances)
        self.registry.register(self._instances)

    def watch_instances(self, instances: Callable[[], Iterable[NodeInstance]]) -> None:
        """Where the Instance gauges read from (e.g. `AgentCore.node_instances.values`)."""
        self._instances.instances = instances

    # DiscoveryObserver (akri.agent.discovery_requests)
    def discovery_response(self, configuration: str, handler: str, first_after: float | None) -> None:
        self.response_result.labels(handler, SUCCESS).inc()
        if first_after is not None:
            self.response_time.labels(configuration).observe(first_after)

    def discovery_failure(self, configuration: str, handler: str) -> None:
        self.response_result.labels(handler, FAIL).inc()
