"""`akri agent --embedded udev` end to end with a real systemd-udevd: a veth pair made by the test
becomes an Instance and a device plugin registered at the kubelet double; deleting it removes
both. Needs root (the veth pair is named akt<random> and always deleted)."""

from __future__ import annotations

from typing import Any

import pytest
from e2e.cluster import udev_configuration
from e2e.fixtures import api_fixture, cluster_fixture, procs_fixture  # noqa: F401  (fixtures)
from e2e.procs import ProcessGroup, wait_for
from e2e.udev_tier import VethFactory, udevd, veth  # noqa: F401  (fixtures)

from akri.model.naming import instance_name

pytestmark = [pytest.mark.slow, pytest.mark.root, pytest.mark.udevd]

FAST = ("--offline-grace-seconds", "1", "--slot-reclaim-interval", "1", "--slot-grace-period", "1")
CONFIG = "akri-udev-veth"


def test_hotplugged_veth_becomes_a_registered_plugin(udevd: Any, veth: VethFactory,  # noqa: F811
                                                     procs: ProcessGroup, cluster: Any, api: Any) -> None:
    kubelet = procs.kubelet("node-a")
    agent = procs.agent("node-a", api.kubeconfig_path, kubelet, "--embedded", "udev", *FAST).ready()
    prefix = veth.new_prefix()
    cluster.apply_configuration(udev_configuration(CONFIG, [f'KERNEL=="{prefix}*a"']))
    agent.wait_log(r"udev: 1 rule\(s\), 0 device\(s\), events from udev")  # udevd's events

    veth.add(f"{prefix}a", f"{prefix}b")
    devpath = f"/devices/virtual/net/{prefix}a"
    name = instance_name(CONFIG, devpath, shared=False, node="node-a")
    resource = f"akri.sh/{name}"
    wait_for("the veth's Instance", lambda: cluster.instance(name))
    spec = cluster.instance(name)["spec"]
    assert (spec["nodes"], spec["shared"], spec["capacity"]) == (["node-a"], False, 1)
    assert spec["brokerProperties"] == {"UDEV_DEVPATH": devpath}
    wait_for("its plugin at the kubelet", lambda: (kubelet.resource(resource) or {}).get("devices")
             == {f"{name}-0": "Healthy"})
    status, response = kubelet.allocate(resource, count=1, pod="broker")
    assert status == 200, response
    digest = name.rpartition("-")[2].upper()
    assert response["containerResponses"][0]["envs"] == {"UDEV_DEVPATH": devpath,
                                                        f"UDEV_DEVPATH_{digest}": devpath}
    assert sorted(kubelet.state()["resources"]) == sorted([resource, f"akri.sh/{CONFIG}"])

    veth.delete(f"{prefix}a")
    wait_for("the Instance gone with the veth", lambda: cluster.instance(name) is None)
    wait_for("its plugin gone", lambda: not kubelet.resource(resource)["connected"])
    assert f"instance default/{name} removed from this node" in agent.text()
