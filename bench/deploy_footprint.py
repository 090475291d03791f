#!/usr/bin/env python3
"""Resident memory (VmRSS) of every Akri process, as deployed, at idle and under load.

    python bench/deploy_footprint.py [--json bench/results/footprint.json] [--instances 100] [--plain-http]

Starts the Kubernetes API server double and the kubelet double (each its own process, not
measured; the API over HTTPS with a throwaway CA in the kubeconfig, as on a real cluster, unless
--plain-http) and then, one at a time, the processes deploy/ runs, each measured from
/proc/<pid>/status once it has settled:

* `akri handler debugEcho` and `akri handler udev`: idle, then serving one Discover stream
  (a real gRPC client, as the agent);
* `akri agent` (debugEcho embedded): idle with no Configuration, then with a Configuration
  whose discovery yields `--instances` devices, i.e. that many Instances and device plugins
  registered with the kubelet double; also `--embedded udev onvif` idle (the smallest-footprint
  overlay);
* `akri controller`: idle, holding the Lease, caches synced;
* `akri webhook --self-signed`: certificate made, stored and registered, serving.

Each figure is VmRSS in MiB after the process settled (`settle` seconds without RSS growth, at
most 20 s), plus VmHWM (peak). deploy/ takes its requests and limits from these numbers
(deploy/README.md, "Resources"); bench/compare.py checks them against bench/results/baseline.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _benchlib import (
    add_plain_http_flag,
    print_and_save,
    serve_instances,
    settled_rss,
    start_agent,
    start_apiserver,
)
from e2e.cluster import Cluster
from e2e.procs import LoggedProcess, ProcessGroup, wait_for

from akri.testing.netns import NetworkNamespace

AKRI = [sys.executable, "-m", "akri.cli"]
QUICK = os.environ.get("BENCH_QUICK", "").strip().lower() not in ("", "0", "false", "no")


@contextlib.contextmanager
def process(args: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[LoggedProcess]:
    proc = LoggedProcess(args, log, env)
    try:
        yield proc
    finally:
        proc.stop(timeout=15)


class Discover:
    """A Discover stream held open against a handler socket, as the agent holds it."""

    def __init__(self, socket_path: Path, details: str) -> None:
        import grpc

        from akri._proto import discovery_pb2, discovery_pb2_grpc

        self.channel = grpc.insecure_channel(f"unix://{socket_path}")
        stub = discovery_pb2_grpc.DiscoveryHandlerStub(self.channel)
        self.stream = stub.Discover(discovery_pb2.DiscoverRequest(discovery_details=details), timeout=300)
        self.first = next(iter(self.stream))

    def close(self) -> None:
        self.stream.cancel()
        self.channel.close()


@contextlib.contextmanager
def private_netns() -> Iterator[list[str]]:
    """A network namespace of our own with only loopback (multicast routed to it), as a command
    prefix; so ONVIF's WS-Discovery probes reach nothing outside it. Needs root."""
    with NetworkNamespace("akri-fp") as ns:
        ns.link_up("lo")
        ns.route_multicast("lo")
        yield ns.exec_argv()


def measure_handler(
    name: str, details: str | None, tmp: Path, prefix: list[str] | None = None
) -> dict[str, Any]:
    """Idle, then (with `details`) serving one Discover stream. `prefix` runs it inside a
    network namespace (`ip netns exec` execs the handler, so the pid measured is the handler's)."""
    directory = tmp / f"handler-{name}"
    directory.mkdir()
    env = {"DISCOVERY_HANDLERS_DIRECTORY": str(directory), "DEBUG_ECHO_INSTANCES_SHARED": "true"}
    with process([*(prefix or []), *AKRI, "handler", name], tmp / f"handler-{name}.log", env) as proc:
        sock = directory / f"{name}.sock"
        wait_for(f"{sock}", sock.exists, timeout=60)
        result: dict[str, Any] = {"idle": settled_rss(proc.proc)}
        if details is not None:
            stream = Discover(sock, details)
            try:
                result["serving"] = settled_rss(proc.proc)
                result["devices"] = len(stream.first.devices)
            finally:
                stream.close()
    return result


def kube_apply(kubeconfig: Path, objects: list[dict[str, Any]]) -> None:
    """Create objects through the API (a fresh event loop each call: this script is sync)."""
    from lightkube import AsyncClient, KubeConfig
    from lightkube.generic_resource import create_global_resource, create_namespaced_resource

    async def run() -> None:
        client = AsyncClient(KubeConfig.from_file(kubeconfig))
        try:
            for obj in objects:
                group, _, version = obj["apiVersion"].rpartition("/")
                plural = obj["kind"].lower() + "s"
                ns = obj["metadata"].get("namespace")
                factory = create_namespaced_resource if ns else create_global_resource
                res = factory(group, version, obj["kind"], plural)
                await client.create(res(obj), namespace=ns)
        finally:
            await client.close()

    asyncio.run(run())


def measure_agent(procs: ProcessGroup, kubeconfig: Path, instances: int) -> dict[str, Any]:
    """Idle with each set of embedded handlers, then debugEcho's agent serving `instances`."""
    kubelet = procs.kubelet()
    result: dict[str, Any] = {}
    for variant, extra in (
        ("embedded_udev_onvif", ["--embedded", "udev", "onvif"]),
        ("debug_echo", ["--embedded", "debugEcho"]),
    ):
        agent = start_agent(procs, kubeconfig, kubelet, *extra, log_name=f"agent-{variant}.log")
        result[f"agent_{variant}_idle"] = settled_rss(agent.proc)
        if variant == "debug_echo":
            cluster = Cluster(kubeconfig)
            try:
                serve_instances(cluster, kubelet, "footprint", instances)
            finally:
                cluster.close()
            result[f"agent_{instances}_instances"] = settled_rss(agent.proc, quiet=3.0, limit=30.0)
        agent.stop()
    result["instances"] = instances
    return result


def measure_controller(kubeconfig: Path, tmp: Path) -> dict[str, Any]:
    args = [*AKRI, "controller", "--kubeconfig", str(kubeconfig), "--metrics-port", "0",
            "--lease-namespace", "akri"]
    with process(args, tmp / "controller.log") as proc:
        proc.wait_log("caches synced", 60)
        return settled_rss(proc.proc)


def measure_webhook(kubeconfig: Path, tmp: Path) -> dict[str, Any]:
    kube_apply(
        kubeconfig,
        [
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingWebhookConfiguration",
                "metadata": {"name": "akri-webhook-configuration"},
                "webhooks": [
                    {
                        "name": "akri-webhook-configuration.akri.svc",
                        "sideEffects": "None",
                        "admissionReviewVersions": ["v1"],
                        "clientConfig": {
                            "service": {
                                "name": "akri-webhook-configuration",
                                "namespace": "akri",
                                "path": "/validate",
                                "port": 443,
                            }
                        },
                    }
                ],
            }
        ],
    )
    args = [*AKRI, "webhook", "--self-signed", "--kubeconfig", str(kubeconfig), "--namespace", "akri",
            "--port", "0", "--host", "127.0.0.1", "--cert-dir", str(tmp / "webhook-certs")]
    with process(args, tmp / "webhook.log") as proc:
        proc.wait_log(r"trusts the webhook's CA", 60)
        return settled_rss(proc.proc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--instances", type=int, default=20 if QUICK else 100)
    add_plain_http_flag(parser)
    args = parser.parse_args()
    results: dict[str, Any] = {"python": sys.version.split()[0], "quick": QUICK,
                               "api_transport": "http" if args.plain_http else "https"}
    with tempfile.TemporaryDirectory(prefix="akri-footprint-") as name:
        tmp = Path(name)
        results["handler_debugEcho"] = measure_handler("debugEcho", "descriptions: [cam0, cam1]\n", tmp)
        results["handler_udev"] = measure_handler(
            "udev", 'udevRules:\n  - \'SUBSYSTEM=="net", KERNEL=="lo"\'\n', tmp
        )
        if os.geteuid() == 0:
            with private_netns() as prefix:
                results["handler_onvif"] = measure_handler(
                    "onvif", "discoveryTimeoutSeconds: 1\n", tmp, prefix
                )
        else:  # serving would multicast WS-Discovery probes on this machine's own network
            results["handler_onvif"] = measure_handler("onvif", None, tmp)
        # an OPC UA discovery URL on loopback where nothing listens: the handler's imports and
        # its probing loop, no traffic beyond this machine
        results["handler_opcua"] = measure_handler(
            "opcua",
            "opcuaDiscoveryMethod:\n  standard:\n    discoveryUrls: ['opc.tcp://127.0.0.1:48409/']\n",
            tmp,
        )
        with ProcessGroup(tmp / "cluster") as procs:
            kubeconfig = start_apiserver(procs, tls=not args.plain_http).kubeconfig
            results.update(measure_agent(procs, kubeconfig, args.instances))
            results["controller_idle"] = measure_controller(kubeconfig, tmp)
            results["webhook_idle"] = measure_webhook(kubeconfig, tmp)
    print_and_save(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
