#!/usr/bin/env python3
"""The whole agent's reaction times: a veth appears -> the kubelet sees its device plugin, and a
kubelet restart -> every plugin registered again.

    sudo python bench/bench_agent_hotplug.py [--events 50] [--restarts 20] [--udevd]

`akri agent --embedded udev debugEcho` runs as a process against the API double (a process)
and a kubelet double that runs inside this script, so the moment the kubelet double accepts
a registration is timestamped where it happens.

1. Hotplug (root): a udev Configuration matches veths named aktb<random><n>a. The clock starts
   when `ip link add` is written to a long-running `ip -batch` process and stops when the
   kubelet double has accepted the registration of `akri.sh/<instance>` and received its
   first ListAndWatch list. In between: the kernel's uevent (timestamped by a netlink probe,
   which splits off the kernel's own share), the udev handler's match, the Instance written to
   the API double, its watch event back to the agent, a plugin socket served and registered.
   Removal (`ip link del` -> the plugin's stream closed) is measured too. With --udevd a
   systemd-udevd child runs, so events come from udevd (after its rules ran) instead of the
   kernel. Target: p99 <= 100 ms. Upstream polls every 10 s.
2. Kubelet restart: with a debugEcho Configuration of `--devices` devices registered, the
   kubelet double restarts (it deletes every socket in its directory, as the kubelet does).
   The clock stops when every plugin has registered again and streams again.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

# the kubelet double's channels run in this process: keep gRPC's INFO chatter out of the report
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from bench_udev_hotplug import IpBatch, KernelProbe, percentiles  # noqa: E402
from e2e.cluster import Cluster, debug_echo_configuration, udev_configuration  # noqa: E402
from e2e.procs import ProcessGroup  # noqa: E402

from akri.model.naming import instance_name  # noqa: E402
from akri.testing.kubelet import KubeletDouble  # noqa: E402

NET = "/devices/virtual/net/"
NODE = "node-a"
UDEVD = "/lib/systemd/systemd-udevd"
WAIT = 10.0


class AgentRun:
    """The processes and the in-process kubelet double of one run."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs = ProcessGroup(workdir)
        self.kubelet = KubeletDouble(workdir / "device-plugins", workdir / "pod-resources.sock")

    async def start(self, embedded: list[str]) -> None:
        await self.kubelet.start()
        self.api = await asyncio.to_thread(self.procs.apiserver)
        self.cluster = Cluster(self.api.kubeconfig)
        env = {"DEBUG_ECHO_INSTANCES_SHARED": "false",
               "DEBUG_ECHO_AVAILABILITY_FILE": str(self.workdir / "availability")}
        self.agent = self.procs.agent(NODE, self.api.kubeconfig, _KubeletPaths(self.kubelet), "--embedded",
                                      *embedded, env=env)
        await asyncio.to_thread(self.agent.ready, 60)

    async def stop(self) -> None:
        await asyncio.to_thread(self.procs.close)
        await self.kubelet.stop()
        self.cluster.close()

    def registered(self, resource: str, after: int) -> bool:
        """A registration of `resource` accepted after the `after`-th one, with a live stream."""
        return (len(self.kubelet.accepted(resource)) > after and self.kubelet.connected(resource)
                and self.kubelet.updates(resource) > 0)


class _KubeletPaths:
    """What `AgentProcess` needs to know of a kubelet: its directory and pod-resources socket."""

    def __init__(self, kubelet: KubeletDouble) -> None:
        self.dir = kubelet.directory
        self.pod_resources_socket = kubelet.pod_resources_socket


async def hotplug(run: AgentRun, events: int) -> dict[str, list[float]]:
    prefix = "aktb" + uuid.uuid4().hex[:6]
    config = "bench-agent-hotplug"
    await asyncio.to_thread(run.cluster.apply_configuration,
                            udev_configuration(config, [f'SUBSYSTEM=="net", KERNEL=="{prefix}*a"']))
    await asyncio.to_thread(run.agent.wait_log, r"udev: 1 rule\(s\), 0 device\(s\)")
    ip, probe = IpBatch(), KernelProbe()
    result: dict[str, list[float]] = {"added": [], "kernel": [], "agent": [], "removed": []}
    try:
        for i in range(events):
            a, b = f"{prefix}{i}a", f"{prefix}{i}b"
            resource = f"akri.sh/{instance_name(config, NET + a, shared=False, node=NODE)}"
            await asyncio.sleep(0.05)  # let the previous pair's teardown finish
            start = time.perf_counter()
            ip.run(f"link add {a} type veth peer name {b}")
            await run.kubelet.wait_for(lambda r=resource: run.registered(r, 0), WAIT)
            done = time.perf_counter()
            uevent = probe.wait(f"add {NET}{a}")
            result["added"].append(done - start)
            result["kernel"].append(uevent - start)
            result["agent"].append(done - uevent)
            start = time.perf_counter()
            ip.run(f"link del {a}")
            await run.kubelet.wait_for(lambda r=resource: not run.kubelet.connected(r), WAIT)
            result["removed"].append(time.perf_counter() - start)
    finally:
        probe.close()
        ip.close()
        await asyncio.to_thread(delete_veths, prefix, events)
    await asyncio.to_thread(run.cluster.delete_configuration, config)
    return result


def delete_veths(prefix: str, events: int) -> None:
    for i in range(events):
        subprocess.run(["ip", "link", "del", f"{prefix}{i}a"], capture_output=True)


async def kubelet_restarts(run: AgentRun, restarts: int, devices: int) -> dict[str, list[float]]:
    config = "bench-kubelet-restart"
    await asyncio.to_thread(run.cluster.apply_configuration,
                            debug_echo_configuration(config, [f"d{i}" for i in range(devices)], capacity=2))
    names = [instance_name(config, f"d{i}", shared=False, node=NODE) for i in range(devices)]
    resources = [f"akri.sh/{n}" for n in [*names, config]]
    await run.kubelet.wait_for(lambda: all(run.registered(r, 0) for r in resources), 30)
    result: dict[str, list[float]] = {"first": [], "all": []}
    for _ in range(restarts):
        counts = {r: len(run.kubelet.accepted(r)) for r in resources}
        start = time.perf_counter()
        await run.kubelet.restart()
        await run.kubelet.wait_for(lambda c=counts: any(run.registered(r, c[r]) for r in resources), WAIT)
        result["first"].append(time.perf_counter() - start)
        await run.kubelet.wait_for(lambda c=counts: all(run.registered(r, c[r]) for r in resources), WAIT)
        result["all"].append(time.perf_counter() - start)
        await asyncio.sleep(0.2)
    return result


def start_udevd(workdir: Path) -> subprocess.Popen[bytes] | None:
    from akri.discovery.handlers.udev.monitor import udevd_running

    if udevd_running():
        print("systemd-udevd already runs: using it")
        return None
    if not os.access(UDEVD, os.X_OK):
        raise SystemExit(f"--udevd: {UDEVD} not found (Debian package udev)")
    with (workdir / "udevd.log").open("wb") as out:
        proc = subprocess.Popen([UDEVD], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + WAIT
    while not udevd_running():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("systemd-udevd did not start")
        time.sleep(0.05)
    return proc


async def bench(args: argparse.Namespace, workdir: Path) -> None:
    root = os.geteuid() == 0
    run = AgentRun(workdir)
    await run.start(["udev", "debugEcho"] if root else ["debugEcho"])
    try:
        if root and args.events:
            r = await hotplug(run, args.events)
            source = "udevd" if "events from udev" in run.agent.text() else "kernel"
            print(f"hotplug, {args.events} veths, uevents from {source}:")
            print(f"  veth added   -> plugin registered at the kubelet: {percentiles(r['added'])}")
            print(f"    of which: ip -> kernel uevent:                 {percentiles(r['kernel'])}")
            print(f"    of which: kernel uevent -> registered:         {percentiles(r['agent'])}")
            print(f"  veth removed -> plugin stream closed:             {percentiles(r['removed'])}")
        elif not root:
            print("hotplug: skipped (needs root to create veth pairs)")
        if args.restarts:
            r = await kubelet_restarts(run, args.restarts, args.devices)
            print(f"kubelet restart, {args.devices} Instances + 1 Configuration plugin, "
                  f"{args.restarts} restarts:")
            print(f"  restart -> first plugin registered again: {percentiles(r['first'])}")
            print(f"  restart -> all plugins registered again:  {percentiles(r['all'])}")
    finally:
        await run.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50, help="veths to add and remove (default 50)")
    parser.add_argument("--restarts", type=int, default=20, help="kubelet restarts (default 20)")
    parser.add_argument("--devices", type=int, default=10, help="debugEcho devices for the restarts")
    parser.add_argument("--udevd", action="store_true", help="run a systemd-udevd child for the hotplug part")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="akri-hp-", dir="/tmp"))
    udevd = start_udevd(workdir) if args.udevd and os.geteuid() == 0 else None
    import uvloop

    try:
        uvloop.run(bench(args, workdir))
    finally:
        if udevd is not None:
            udevd.terminate()
            udevd.wait(WAIT)
            if Path("/run/udev/control").exists():
                from akri.discovery.handlers.udev.monitor import udevd_running

                if not udevd_running():
                    Path("/run/udev/control").unlink(missing_ok=True)
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
