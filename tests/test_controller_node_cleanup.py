"""Node cleanup writes each Instance with optimistic concurrency: a slot an agent claims while the
controller is cleaning is kept (a merge patch of the whole spec from a stale copy would erase it,
upstream's #801 loop)."""

from __future__ import annotations

import copy

import pytest

from akri.controller.reconciler import BrokerController
from akri.kube.api import Kube
from akri.kube.resources import Instance
from akri.testing.apiserver import ApiServer

pytestmark = pytest.mark.slow


def instance() -> dict:
    return {
        "apiVersion": "akri.sh/v0",
        "kind": "Instance",
        "metadata": {"name": "cfg-123456", "namespace": "default"},
        "spec": {
            "configurationName": "cfg",
            "cdiName": "akri.sh/cfg=123456",
            "capacity": 4,
            "shared": True,
            "nodes": ["node-x", "node-y"],
            "deviceUsage": {
                "cfg-123456-0": "node-x",
                "cfg-123456-1": "C:cfg-0:node-x",
                "cfg-123456-2": "node-y",
            },
        },
    }


async def test_cleanup_from_a_stale_cache_keeps_a_concurrent_claim() -> None:
    async with ApiServer() as api:
        kube = Kube.from_config(api.kubeconfig_path)
        try:
            created = await kube.create(Instance, instance(), namespace="default")
            controller = BrokerController(kube)
            # the controller's cache holds the Instance as first seen ...
            controller.instances.cache[("default", "cfg-123456")] = copy.deepcopy(created)

            # ... while an agent on node-y claims slot 3 (a newer resourceVersion)
            def claim(obj: dict) -> None:
                obj["spec"]["deviceUsage"]["cfg-123456-3"] = "node-y"

            await kube.update_with_retry(Instance, "cfg-123456", "default", claim)
            await controller.reconcile_node("node-x")
            spec = (await kube.get(Instance, "cfg-123456", "default"))["spec"]
            assert spec["nodes"] == ["node-y"]
            assert spec["deviceUsage"] == {
                "cfg-123456-0": "",
                "cfg-123456-1": "",
                "cfg-123456-2": "node-y",
                "cfg-123456-3": "node-y",
            }
            assert controller.stats["instances_cleaned"] == 1
            # a second run finds nothing left to do
            controller.instances.cache[("default", "cfg-123456")] = await kube.get(
                Instance, "cfg-123456", "default"
            )
            await controller.reconcile_node("node-x")
            assert controller.stats["instances_cleaned"] == 1
        finally:
            await kube.close()


async def test_cleanup_skipped_when_the_node_is_ready_again() -> None:
    async with ApiServer() as api:
        kube = Kube.from_config(api.kubeconfig_path)
        try:
            created = await kube.create(Instance, instance(), namespace="default")
            controller = BrokerController(kube)
            controller.instances.cache[("default", "cfg-123456")] = created
            controller.nodes.cache[("", "node-x")] = {
                "metadata": {"name": "node-x"},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]},
            }
            await controller.reconcile_node("node-x")
            assert (await kube.get(Instance, "cfg-123456", "default"))["spec"]["nodes"] == [
                "node-x",
                "node-y",
            ]
        finally:
            await kube.close()
