"""The controller's /metrics content (akri.controller.metrics) without processes:
`akri_broker_pod_count` computed from the Pod cache at scrape time, read back with
prometheus_client's parser, next to the process series."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from akri.controller.brokers import CONFIGURATION_LABEL, TARGET_NODE_LABEL
from akri.controller.metrics import broker_pod_counts, make_registry


def pod(name: str, labels: dict[str, str] | None) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}}


def broker(name: str, config: str, node: str) -> dict[str, Any]:
    return pod(name, {CONFIGURATION_LABEL: config, TARGET_NODE_LABEL: node, "app": "x"})


def test_broker_pod_counts_only_pods_with_both_labels() -> None:
    pods = [broker("a", "cfg", "node-a"), broker("b", "cfg", "node-a"), broker("c", "cfg", "node-b"),
            pod("plain", {"app": "x"}), pod("half", {CONFIGURATION_LABEL: "cfg"}), pod("none", None), {}]
    assert broker_pod_counts(pods) == {("cfg", "node-a"): 2, ("cfg", "node-b"): 1}


def test_exposition_follows_the_pod_cache() -> None:
    pods = [broker("a", "cfg", "node-a"), broker("b", "cfg", "node-a"), broker("c", "other", "node-b")]
    registry = make_registry(lambda: pods)

    def scrape() -> dict[str, Any]:
        return {f.name: f for f in text_string_to_metric_families(registry.render().decode())}

    families = scrape()
    family = families["akri_broker_pod_count"]
    assert family.type == "gauge"
    assert family.documentation == "Akri broker Pods by Configuration and node"
    assert {(s.labels["configuration"], s.labels["node"]): s.value for s in family.samples} == {
        ("cfg", "node-a"): 2, ("other", "node-b"): 1}
    assert families["process_resident_memory_bytes"].samples[0].value > 0

    pods.pop()  # the broker on node-b went away: its series goes too
    assert {(s.labels["configuration"], s.labels["node"])
            for s in scrape()["akri_broker_pod_count"].samples} == {("cfg", "node-a")}
