#!/usr/bin/env python3
"""Smoke test of an INSTALLED akri wheel: run it with the interpreter of the environment the
wheel was installed into, from a directory outside the source tree.

    python deploy/ci/wheel_smoke.py [--samples deploy/samples]

Checks, each with a clear failure message:
1. `akri` is imported from site-packages, not from a source checkout;
2. `akri version --json` reports every Cython extension compiled and loaded;
3. the compiled hot paths and their pure-Python twins agree on known vectors (upstream's
   Instance-name digest, a kernel uevent datagram, a slot table);
4. the generated gRPC modules work end to end: `akri handler debugEcho` serves on a unix
   socket and a Discover call over real gRPC returns the devices of its details;
5. a Configuration's brokerPodSpec is checked by the packaged Kubernetes type table;
6. `akri crds` prints the two CRDs, and with --samples `akri validate` accepts the samples and
   `akri discover` finds the loopback interface (only where libudev and /sys/class/net/lo
   exist, as on any Linux host; build containers may lack libudev).

Used by deploy/ci/wheel-smoke.sh (.ci/run) and by cibuildwheel's test-command on every
platform the wheels are built for.
"""

from __future__ import annotations

import argparse
import ctypes.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SystemExit(f"wheel smoke test FAILED: {message}")


def akri(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("akri", path=os.path.dirname(sys.executable)) or shutil.which("akri")
    check(exe is not None, "the `akri` console script is not installed next to this python")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout)


def installed_from_site_packages() -> None:
    import akri

    where = Path(akri.__file__).resolve()
    check("site-packages" in where.parts, f"akri was imported from {where}, not from an installed wheel")
    print(f"ok: akri imported from {where.parent}")


def compiled_extensions() -> None:
    done = akri("version", "--json")
    check(done.returncode == 0, f"`akri version --json` failed: {done.stderr}")
    info = json.loads(done.stdout)
    check(info["compiled"] is True, f"Cython extensions not in use: {info}")
    check(all(info["compiledModules"].values()), f"an extension failed to load: {info['compiledModules']}")
    print(f"ok: compiled extensions {sorted(info['compiledModules'])}")


def twins_agree() -> None:
    from akri._fast import _digest, _slots, _uevent, pure

    for text, digest in (("my_shared_device", "4294ea"), ("", None)):
        got = _digest.digest_hex(text)
        check(got == pure.digest_hex(text), f"digest of {text!r}: compiled {got} != pure")
        check(digest is None or got == digest, f"digest of {text!r} is {got}, upstream's is {digest}")
    message = (
        b"add@/devices/virtual/net/lo\x00ACTION=add\x00DEVPATH=/devices/virtual/net/lo\x00"
        b"SUBSYSTEM=net\x00INTERFACE=lo\x00SEQNUM=7\x00"
    )
    parsed = _uevent.parse_uevent(message)
    check(parsed == pure.parse_uevent(message), "parse_uevent: compiled != pure")
    check(parsed["INTERFACE"] == "lo", f"parse_uevent gave {parsed}")
    healths = []
    for module in (_slots, pure):
        table = module.SlotTable("inst", "node-a", 3)
        table.load({"inst-1": "node-b"})
        healths.append(table.health())
    # spec §3.2: capacity 3, slot 1 used by another node, seen from node-a
    check(
        healths[0] == healths[1] == [True, False, True],
        f"SlotTable health: compiled {healths[0]}, pure {healths[1]}, expected [True, False, True]",
    )
    print("ok: compiled and pure twins agree")


def grpc_round_trip() -> None:
    import asyncio

    from grpclib.client import Channel

    from akri._proto import discovery_grpc, discovery_pb2

    with tempfile.TemporaryDirectory(prefix="akri-smoke-") as tmp:
        env = {**os.environ, "DISCOVERY_HANDLERS_DIRECTORY": tmp, "DEBUG_ECHO_INSTANCES_SHARED": "true"}
        exe = shutil.which("akri", path=os.path.dirname(sys.executable)) or "akri"
        # its log goes to a file: a pipe nobody reads could fill up and stall it
        log = open(Path(tmp) / "handler.log", "w+")
        proc = subprocess.Popen(
            [exe, "handler", "debugEcho"], env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=log, text=True
        )
        try:
            sock = Path(tmp) / "debugEcho.sock"
            deadline = time.monotonic() + 30
            while not sock.exists():
                if proc.poll() is not None:
                    log.seek(0)
                    check(False, f"`akri handler debugEcho` exited: {log.read()}")
                check(time.monotonic() < deadline, "the handler's socket did not appear in 30 s")
                time.sleep(0.05)

            async def first_list() -> discovery_pb2.DiscoverResponse:
                request = discovery_pb2.DiscoverRequest(discovery_details="descriptions: [cam0, cam1]\n")
                async with Channel(path=str(sock)) as channel:
                    stub = discovery_grpc.DiscoveryHandlerStub(channel)
                    async with stub.Discover.open(timeout=30) as stream:
                        await stream.send_message(request, end=True)
                        response = await stream.recv_message()
                        await stream.cancel()
                check(response is not None, "Discover ended without a device list")
                return response

            first = asyncio.run(first_list())
            ids = sorted(d.id for d in first.devices)
            check(ids == ["cam0", "cam1"], f"Discover returned {ids}")
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            log.close()
    print("ok: akri handler debugEcho answered Discover over gRPC")


def broker_pod_spec_validation() -> None:
    # The round-trip rule reads the packaged Kubernetes type table (akri/model/k8s_types.json),
    # without lightkube or msgspec (test-only dependencies).
    from akri.model.validation import validate_configuration

    def configuration(pod: dict[str, object]) -> dict[str, object]:
        return {"apiVersion": "akri.sh/v0", "kind": "Configuration", "metadata": {"name": "smoke"},
                "spec": {"discoveryHandler": {"name": "debugEcho", "discoveryDetails": "descriptions: [a]"},
                         "brokerSpec": {"brokerPodSpec": pod}}}

    good = validate_configuration(configuration({"containers": [{"name": "b", "image": "nginx"}]}))
    check(good == [], f"a valid brokerPodSpec was refused: {good}")
    bogus = configuration({"containers": [{"name": "b", "xBogus": 1}]})
    bad = [str(e) for e in validate_configuration(bogus)]
    check(any("containers[0].xBogus" in e for e in bad), f"an unknown brokerPodSpec field passed: {bad}")
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("lightkube", "msgspec"))
    check(not loaded, f"validation imported {loaded}")
    print("ok: a brokerPodSpec is checked against the packaged Kubernetes type table")


def cli(samples: Path | None) -> None:
    done = akri("crds")
    check(done.returncode == 0, f"`akri crds` failed: {done.stderr}")
    names = sorted(d["metadata"]["name"] for d in yaml.safe_load_all(done.stdout) if d)
    check(names == ["configurations.akri.sh", "instances.akri.sh"], f"`akri crds` printed {names}")
    print("ok: akri crds")
    if samples is None:
        return
    files = sorted(str(p) for p in samples.glob("*.yaml"))
    check(bool(files), f"no samples in {samples}")
    done = akri("validate", "-f", *files)
    check(done.returncode == 0, f"`akri validate` refused the samples: {done.stdout}{done.stderr}")
    print(f"ok: akri validate accepts {len(files)} samples")
    loopback = samples / "udev-net-loopback.yaml"
    if ctypes.util.find_library("udev") and Path("/sys/class/net/lo").exists() and loopback.exists():
        done = akri("discover", "-f", str(loopback), "-o", "json", "--node", "smoke")
        check(done.returncode == 0, f"`akri discover` failed: {done.stderr}")
        check("/devices/virtual/net/lo" in done.stdout, f"`akri discover` did not find lo: {done.stdout}")
        print("ok: akri discover finds the loopback interface")
    else:
        print("skipped: akri discover (no libudev or no /sys/class/net/lo here)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=Path, default=None, help="deploy/samples of the source tree")
    args = parser.parse_args()
    installed_from_site_packages()
    compiled_extensions()
    twins_agree()
    grpc_round_trip()
    broker_pod_spec_validation()
    cli(args.samples.resolve() if args.samples else None)
    print("wheel smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
