#!/usr/bin/env python3
"""How fast a standalone handler notices things: agent restarts and debugEcho availability.

    python bench/bench_reregistration.py [--restarts 20] [--flips 40]

1. Re-registration: `akri handler debugEcho` runs as a real process; this script plays the
   agent (a v0.Registration server on $DISCOVERY_HANDLERS_DIRECTORY/agent-registration.sock),
   stops it, removes its socket and starts it again, `--restarts` times. The clock starts
   when the new server is listening and stops when RegisterDiscoveryHandler arrives. Run
   once with inotify and once with AKRI_FILE_WATCH=poll (stat every 200 ms). Upstream
   retries every 10 s: 0-10 s, 5 s on average. Goal here: under 1 s.
2. debugEcho availability: the handler embedded in this process; the clock starts before
   writing OFFLINE/ONLINE to the availability file and stops when the handler yields the new
   list. inotify vs polling (250 ms) in the same run. Upstream re-reads the file every 10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

from akri._proto import discovery_pb2 as pb
from akri._proto import discovery_pb2_grpc as pb_grpc
from akri.discovery.handlers.debug_echo import DebugEchoHandler

WAIT = 15.0


def summary(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    return f"n={len(ms)} p50={statistics.median(ms):.1f} ms p99={p99:.1f} ms max={ms[-1]:.1f} ms"


class Agent(pb_grpc.RegistrationServicer):
    def __init__(self, directory: Path) -> None:
        self.path = directory / "agent-registration.sock"
        self.arrived: asyncio.Queue[float] = asyncio.Queue()
        self.server: grpc.aio.Server | None = None

    async def RegisterDiscoveryHandler(self, request, context):  # the gRPC method name
        self.arrived.put_nowait(time.perf_counter())
        return pb.Empty()

    async def start(self) -> float:
        self.path.unlink(missing_ok=True)
        self.server = grpc.aio.server()
        pb_grpc.add_RegistrationServicer_to_server(self, self.server)
        self.server.add_insecure_port(f"unix://{self.path}")
        await self.server.start()
        return time.perf_counter()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(None)
            self.server = None
        self.path.unlink(missing_ok=True)


async def reregistration(restarts: int, watch_mode: str) -> list[float]:
    directory = Path(tempfile.mkdtemp(prefix="akri-bench-", dir="/tmp"))
    env = {**os.environ, "DISCOVERY_HANDLERS_DIRECTORY": str(directory),
           "DEBUG_ECHO_INSTANCES_SHARED": "true", "AKRI_LOG": "WARNING", "GRPC_VERBOSITY": "ERROR"}
    env.pop("POD_IP", None)
    if watch_mode == "poll":
        env["AKRI_FILE_WATCH"] = "poll"
    agent = Agent(directory)
    await agent.start()
    proc = subprocess.Popen([sys.executable, "-m", "akri", "handler", "debugEcho"], env=env)  # noqa: ASYNC220
    samples: list[float] = []
    try:
        await asyncio.wait_for(agent.arrived.get(), WAIT)  # first registration (start-up, not timed)
        for _ in range(restarts):
            await agent.stop()
            await asyncio.sleep(0.3)  # the agent is away for a moment
            agent = Agent(directory)
            listening = await agent.start()
            samples.append(await asyncio.wait_for(agent.arrived.get(), WAIT) - listening)
    finally:
        await agent.stop()
        proc.terminate()
        proc.wait(WAIT)
        shutil.rmtree(directory, ignore_errors=True)
    return samples


async def availability(flips: int, watch_mode: str) -> list[float]:
    directory = Path(tempfile.mkdtemp(prefix="akri-bench-", dir="/tmp"))
    avail = directory / "availability.txt"
    if watch_mode == "poll":
        os.environ["AKRI_FILE_WATCH"] = "poll"
    try:
        handler = DebugEchoHandler(shared=True, availability_file=avail)
        stream = handler.discover("descriptions: [a, b]", {})
        await anext(stream)
        samples: list[float] = []
        for i in range(flips):
            await asyncio.sleep(0.05)
            start = time.perf_counter()
            avail.write_text("OFFLINE" if i % 2 == 0 else "ONLINE")
            await asyncio.wait_for(anext(stream), WAIT)
            samples.append(time.perf_counter() - start)
        await stream.aclose()
    finally:
        os.environ.pop("AKRI_FILE_WATCH", None)
        shutil.rmtree(directory, ignore_errors=True)
    return samples


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restarts", type=int, default=20)
    parser.add_argument("--flips", type=int, default=40)
    args = parser.parse_args()
    results: dict[str, list[float]] = {}
    for mode in ("inotify", "poll"):
        results[f"re-registration after agent restart ({mode})"] = await reregistration(args.restarts, mode)
    for mode in ("inotify", "poll"):
        results[f"debugEcho availability change ({mode})"] = await availability(args.flips, mode)
    for name, samples in results.items():
        print(f"{name:50s} {summary(samples)}")
    for what in ("re-registration after agent restart", "debugEcho availability change"):
        ratio = statistics.median(results[f"{what} (poll)"]) / statistics.median(results[f"{what} (inotify)"])
        print(f"{what}: inotify is {ratio:.1f}x faster than polling (median)")


if __name__ == "__main__":
    asyncio.run(main())
