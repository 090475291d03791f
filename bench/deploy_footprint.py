#!/usr/bin/env python3
"""Resident memory (VmRSS) of every Akri process, as deployed, at idle and under load.

    python bench/deploy_footprint.py [--json bench/results/footprint.json] [--instances 100]

Starts the Kubernetes API server double and the kubelet double (each its own process, not
measured) and then, one at a time, the processes deploy/ runs, each measured from
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
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

AKRI = [sys.executable, "-m", "akri.cli"]
QUICK = os.environ.get("BENCH_QUICK", "").strip().lower() not in ("", "0", "false", "no")


def status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} for pid {pid}")


def settled_rss(proc: subprocess.Popen[Any], *, quiet: float = 2.0, limit: float = 20.0) -> dict[str, float]:
    """VmRSS once it has not grown for `quiet` seconds (or after `limit`), and VmHWM."""
    if proc.poll() is not None:
        raise RuntimeError(f"process {proc.args} exited with {proc.returncode}")
    start = time.monotonic()
    best = status_kib(proc.pid, "VmRSS")
    since = time.monotonic()
    while time.monotonic() - start < limit:
        time.sleep(0.2)
        if proc.poll() is not None:
            raise RuntimeError(f"process {proc.args} exited with {proc.returncode}")
        rss = status_kib(proc.pid, "VmRSS")
        if rss > best + 256:  # grew by more than 256 KiB: not settled yet
            best, since = rss, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return {
        "rss_mib": round(status_kib(proc.pid, "VmRSS") / 1024, 1),
        "hwm_mib": round(status_kib(proc.pid, "VmHWM") / 1024, 1),
    }


@contextlib.contextmanager
def process(args: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[Any]]:
    with open(log, "w") as out:
        proc = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def wait_for(predicate: Any, what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def wait_for_log(path: Path, pattern: str, timeout: float = 60.0) -> None:
    wait_for(
        lambda: path.exists() and re.search(pattern, path.read_text(errors="replace")),
        f"{pattern!r} in {path}",
        timeout,
    )


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
    name = f"akri-fp-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        subprocess.run(["ip", "-n", name, "route", "add", "224.0.0.0/4", "dev", "lo"], check=True)
        yield ["ip", "netns", "exec", name]
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


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
        wait_for(sock.exists, f"{sock}")
        result: dict[str, Any] = {"idle": settled_rss(proc)}
        if details is not None:
            stream = Discover(sock, details)
            try:
                result["serving"] = settled_rss(proc)
                result["devices"] = len(stream.first.devices)
            finally:
                stream.close()
    return result


def start_apiserver(tmp: Path) -> tuple[subprocess.Popen[Any], Path]:
    kubeconfig = tmp / "kubeconfig"
    log = tmp / "apiserver.log"
    out = open(log, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "akri.testing.apiserver", "--port", "0", "--kubeconfig", str(kubeconfig)],
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    wait_for_log(log, r"listening on http://")
    return proc, kubeconfig


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


def debug_echo_configuration(n: int) -> dict[str, Any]:
    return {
        "apiVersion": "akri.sh/v0",
        "kind": "Configuration",
        "metadata": {"name": "footprint", "namespace": "default"},
        "spec": {
            "discoveryHandler": {
                "name": "debugEcho",
                "discoveryDetails": yaml.safe_dump({"descriptions": [f"dev{i}" for i in range(n)]}),
            },
            "capacity": 1,
        },
    }


def count_instances(kubeconfig: Path) -> int:
    from lightkube import Client, KubeConfig

    from akri.kube.resources import Instance

    client = Client(KubeConfig.from_file(kubeconfig))
    return len(list(client.list(Instance, namespace="default")))


def measure_agent(kubeconfig: Path, tmp: Path, instances: int) -> dict[str, Any]:
    plugins, pod_resources = tmp / "device-plugins", tmp / "pod-resources" / "kubelet.sock"
    plugins.mkdir()
    pod_resources.parent.mkdir()
    result: dict[str, Any] = {}
    with process(
        [
            sys.executable,
            "-m",
            "akri.testing.kubelet",
            "--dir",
            str(plugins),
            "--pod-resources-socket",
            str(pod_resources),
        ],
        tmp / "kubelet.log",
    ):
        wait_for((plugins / "kubelet.sock").exists, "the kubelet double")
        for variant, extra in (
            ("embedded_udev_onvif", ["--embedded", "udev", "onvif"]),
            ("debug_echo", ["--embedded", "debugEcho"]),
        ):
            handlers = tmp / f"agent-{variant}"
            handlers.mkdir()
            args = [
                *AKRI,
                "agent",
                "--node-name",
                "node-a",
                "--discovery-handlers-directory",
                str(handlers),
                "--kubeconfig",
                str(kubeconfig),
                "--metrics-port",
                "0",
                "--device-plugins-dir",
                str(plugins),
                "--pod-resources-socket",
                str(pod_resources),
                *extra,
            ]
            with process(
                args, tmp / f"agent-{variant}.log", {"DEBUG_ECHO_INSTANCES_SHARED": "false"}
            ) as proc:
                wait_for((handlers / "agent-registration.sock").exists, "the agent's registration socket")
                result[f"agent_{variant}_idle"] = settled_rss(proc)
                if variant == "debug_echo":
                    kube_apply(kubeconfig, [debug_echo_configuration(instances)])
                    wait_for(lambda: count_instances(kubeconfig) >= instances, f"{instances} Instances", 120)
                    wait_for(
                        lambda: len([p for p in plugins.iterdir() if p.name != "kubelet.sock"]) > instances,
                        "a device plugin per Instance",
                        120,
                    )
                    result[f"agent_{instances}_instances"] = settled_rss(proc, quiet=3.0, limit=30.0)
    result["instances"] = instances
    return result


def measure_controller(kubeconfig: Path, tmp: Path) -> dict[str, Any]:
    log = tmp / "controller.log"
    with process(
        [
            *AKRI,
            "controller",
            "--kubeconfig",
            str(kubeconfig),
            "--metrics-port",
            "0",
            "--lease-namespace",
            "akri",
        ],
        log,
    ) as proc:
        wait_for_log(log, "caches synced")
        return settled_rss(proc)


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
    log = tmp / "webhook.log"
    args = [
        *AKRI,
        "webhook",
        "--self-signed",
        "--kubeconfig",
        str(kubeconfig),
        "--namespace",
        "akri",
        "--port",
        "0",
        "--host",
        "127.0.0.1",
        "--cert-dir",
        str(tmp / "webhook-certs"),
    ]
    with process(args, log) as proc:
        wait_for_log(log, r"trusts the webhook's CA")
        return settled_rss(proc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--instances", type=int, default=20 if QUICK else 100)
    args = parser.parse_args()
    results: dict[str, Any] = {"python": sys.version.split()[0], "quick": QUICK}
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
        api, kubeconfig = start_apiserver(tmp)
        try:
            results.update(measure_agent(kubeconfig, tmp, args.instances))
            results["controller_idle"] = measure_controller(kubeconfig, tmp)
            results["webhook_idle"] = measure_webhook(kubeconfig, tmp)
        finally:
            api.terminate()
            api.wait(10)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
