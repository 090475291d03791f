#!/usr/bin/env python3
"""Hotplug latency of the udev discovery handler: `ip link add` of a veth -> the new list.

    sudo python bench/bench_udev_hotplug.py [--events 50] [--loop uvloop|asyncio] [--cli]

The clock starts when the `ip link add` command is written to a long-running `ip -batch`
process (so process start-up is not measured) and stops when the handler's stream yields a
list that contains the new interface (removal is measured the same way). A probe thread
also timestamps the kernel's own uevent, which splits the total into the kernel's part
(creating a veth takes it several ms) and the handler's part (uevent -> list). With --cli it
also times `akri discover --watch -f <config>`: from `ip link add` to the first output line
that names the interface. Upstream polls every 10 s: its latency is 0-10 s, 5 s on average.

Needs root (creates veth pairs named aktb<random><n>a/b, always deleted at the end).
Target: p99 under 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from akri.discovery.handlers.udev import UdevHandler

NET = "/devices/virtual/net/"


class IpBatch:
    """One `ip -force -batch -` process: each written line runs at once, without a fork."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(["ip", "-force", "-batch", "-"], stdin=subprocess.PIPE, text=True)

    def run(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


def percentiles(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    return (f"n={len(ms)} p50={statistics.median(ms):.2f} ms p99={p99:.2f} ms "
            f"min={ms[0]:.2f} ms max={ms[-1]:.2f} ms")


class KernelProbe:
    """A thread that timestamps kernel uevents the moment they arrive: name -> perf_counter."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 15)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self.sock.bind((0, 1))
        self.sock.settimeout(0.2)
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while self.running:
            try:
                data = self.sock.recv(1 << 16)
            except TimeoutError:
                continue
            stamp = time.perf_counter()
            header = data.split(b"\0", 1)[0].decode(errors="replace")
            action, _, devpath = header.partition("@")
            self.seen[f"{action} {devpath}"] = stamp

    def wait(self, key: str) -> float:
        deadline = time.monotonic() + 10
        while key not in self.seen:
            if time.monotonic() > deadline:
                raise TimeoutError(key)
            time.sleep(0.001)
        return self.seen[key]

    def close(self) -> None:
        self.running = False
        self.thread.join()
        self.sock.close()


def rules(prefix: str) -> str:
    return f"udevRules:\n- 'SUBSYSTEM==\"net\", KERNEL==\"{prefix}*\"'\n"


@dataclass
class Latencies:
    added: list[float] = field(default_factory=list)  # ip link add -> list with the device
    kernel: list[float] = field(default_factory=list)  # ip link add -> the kernel's uevent
    handler: list[float] = field(default_factory=list)  # the kernel's uevent -> list
    removed: list[float] = field(default_factory=list)  # ip link del -> list without it
    source: str = "?"


async def handler_latency(events: int) -> Latencies:
    prefix = "aktb" + uuid.uuid4().hex[:6]
    handler = UdevHandler(resync_seconds=3600)
    stream = handler.discover(rules(prefix), {})
    lists: asyncio.Queue[tuple[float, set[str]]] = asyncio.Queue()

    async def pump() -> None:
        async for devices in stream:
            lists.put_nowait((time.perf_counter(), {d.id for d in devices}))

    task = asyncio.create_task(pump())

    async def until(predicate: Callable[[set[str]], bool]) -> float:
        while True:
            stamp, ids = await asyncio.wait_for(lists.get(), 10)
            if predicate(ids):
                return stamp

    await until(lambda ids: True)
    ip = IpBatch()
    probe = KernelProbe()
    result = Latencies()
    try:
        for i in range(events):
            a, b = f"{prefix}{i}a", f"{prefix}{i}b"
            await asyncio.sleep(0.05)  # let the kernel finish tearing down the previous pair
            start = time.perf_counter()
            ip.run(f"link add {a} type veth peer name {b}")
            done = await until(lambda ids, a=a: NET + a in ids)
            uevent = probe.wait(f"add {NET}{a}")
            result.added.append(done - start)
            result.kernel.append(uevent - start)
            result.handler.append(done - uevent)
            start = time.perf_counter()
            ip.run(f"link del {a}")
            result.removed.append(await until(lambda ids, a=a: NET + a not in ids) - start)
    finally:
        probe.close()
        ip.close()
        cleanup(prefix, events)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await stream.aclose()
    result.source = handler.source_in_use or "?"
    return result


def cleanup(prefix: str, events: int) -> None:
    for i in range(events):
        subprocess.run(["ip", "link", "del", f"{prefix}{i}a"], capture_output=True)


def cli_latency(events: int, stderr_path: str = os.devnull) -> list[float] | str:
    akri = shutil.which("akri") or f"{sys.executable} -m akri"
    helptext = subprocess.run(f"{akri} discover --help", shell=True, capture_output=True, text=True).stdout
    if "--watch" not in helptext:
        return "`akri discover --watch` is not available yet"
    prefix = "aktc" + uuid.uuid4().hex[:6]
    config = f"""apiVersion: akri.sh/v0
kind: Configuration
metadata:
  name: bench-udev-hotplug
spec:
  discoveryHandler:
    name: udev
    discoveryDetails: |
      udevRules:
      - 'SUBSYSTEM=="net", KERNEL=="{prefix}*"'
  capacity: 1
"""
    samples: list[float] = []
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(config)
    proc = subprocess.Popen(f"exec {akri} discover --watch -f {f.name}", shell=True, stdout=subprocess.PIPE,
                            stderr=open(stderr_path, "w"), bufsize=0)
    ip = IpBatch()
    try:
        assert proc.stdout is not None
        time.sleep(2.0)  # let it start and print the initial (empty) list
        fd = proc.stdout.fileno()
        pending = b""

        def wait_line(*words: str) -> str | None:
            # our own line splitting: a buffered readline() could hold lines select() cannot see
            nonlocal pending
            wanted = [w.encode() for w in words]
            while True:
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    if all(w in line for w in wanted):
                        return None
                if not select.select([fd], [], [], 10)[0]:
                    return f"no line with {words} within 10 s"
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    return "akri discover exited"
                pending += chunk

        for i in range(events):
            a = f"{prefix}{i}a"
            time.sleep(0.05)  # let the kernel finish tearing down the previous pair
            start = time.perf_counter()
            ip.run(f"link add {a} type veth peer name {prefix}{i}b")
            if (problem := wait_line(a, "added")) is not None:
                return problem
            samples.append(time.perf_counter() - start)
            ip.run(f"link del {a}")
            if (problem := wait_line(a, "removed")) is not None:
                return problem
    finally:
        cleanup(prefix, events)
        ip.close()
        proc.terminate()
        proc.wait(10)
        os.unlink(f.name)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--cli", action="store_true", help="also time `akri discover --watch`")
    parser.add_argument("--cli-stderr", default=os.devnull, help="where the CLI's stderr goes")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (creates veth pairs)", file=sys.stderr)
        return 2
    if args.loop == "uvloop":
        import uvloop

        r = uvloop.run(handler_latency(args.events))
    else:
        r = asyncio.run(handler_latency(args.events))
    print(f"udev handler on {args.loop}, {r.source} events:")
    print(f"  veth added   -> list yielded (total):  {percentiles(r.added)}")
    print(f"    of which: ip -> kernel uevent:       {percentiles(r.kernel)}")
    print(f"    of which: kernel uevent -> list:     {percentiles(r.handler)}")
    print(f"  veth removed -> list yielded (total):  {percentiles(r.removed)}")
    if args.cli:
        result = cli_latency(args.events, args.cli_stderr)
        if isinstance(result, str):
            print(f"akri discover --watch: skipped ({result})")
        else:
            print(f"akri discover --watch, veth added -> line printed: {percentiles(result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
