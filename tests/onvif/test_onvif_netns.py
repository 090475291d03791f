"""`akri discover` with the ONVIF handler against fake camera processes, across two network
namespaces joined by a veth pair: multicast probes, directed probes, every filter, Hello and
Bye seen by `--watch`, and garbage datagrams that change nothing.

Cameras (in the camera namespace; multicast never leaves the two namespaces):
  A  10.250.n.1  scope name/CamA, MAC ...:aa, needs credentials admin/pw
  B  10.250.n.3  scope name/CamB, MAC ...:bb, no credentials
  C  10.250.n.5  does not join the multicast group: found only by a directed probe
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.netns, pytest.mark.root]

WAIT = 10.0  # generous: only guards against hanging
CREDENTIALS = """    discoveryProperties:
    - name: username_default
      value: admin
    - name: password_default
      value: pw
"""


@dataclass
class Cameras:
    net: Any
    a: Any
    b: Any
    c: Any


@pytest.fixture(scope="module")
def cameras(camera_net) -> Iterator[Cameras]:
    net = camera_net
    net.add_camera_address(3)
    net.add_camera_address(5)
    a = net.start_camera(1, "--scope", "onvif://www.onvif.org/name/CamA", "--mac", "02:00:00:00:00:aa",
                         "--username", "admin", "--password", "pw")
    b = net.start_camera(3, "--scope", "onvif://www.onvif.org/name/CamB", "--mac", "02:00:00:00:00:bb")
    c = net.start_camera(5, "--no-multicast", "--discovery-host", net.ip(5))
    yield Cameras(net, a, b, c)


def configuration(name: str, details: str, *, credentials: bool = True) -> str:
    return (textwrap.dedent(f"""\
        apiVersion: akri.sh/v0
        kind: Configuration
        metadata:
          name: {name}
        spec:
          discoveryHandler:
            name: onvif
            discoveryDetails: |
        """) + textwrap.indent(details.strip() + "\n", " " * 6)
        + (CREDENTIALS if credentials else "") + "  capacity: 1\n")


def write_configs(tmp_path: Path, *configs: str) -> Path:
    path = tmp_path / "onvif.yaml"
    path.write_text("---\n".join(configs))
    return path


def discover(net: Any, config: Path, *extra: str) -> list[dict[str, Any]]:
    args = net.exec_args(net.agent, sys.executable, "-m", "akri", "discover", "-f", str(config),
                         "--node", "node-a", "-o", "json", *extra)
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def by_config(views: list[dict[str, Any]]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for view in views:
        found.setdefault(view["configurationName"], set()).add(view["deviceId"])
    return found


def test_multicast_and_directed_probes(cameras, tmp_path):
    cams, net = cameras, cameras.net
    config = write_configs(
        tmp_path,
        configuration("multicast", "discoveryTimeoutSeconds: 1"),
        configuration("directed", f"directedProbes: ['{net.ip(5)}:3702']"),
        configuration("directed-only-c", f"directedProbes: ['{net.ip(5)}']\n"
                                         "uuids: {items: [" + cams.c.uuid.upper() + "]}"),
    )
    views = discover(net, config)
    found = by_config(views)
    assert found["multicast"] == {cams.a.device_id, cams.b.device_id}  # C does not hear multicast
    assert found["directed"] == {cams.a.device_id, cams.b.device_id, cams.c.device_id}
    assert found["directed-only-c"] == {cams.c.device_id}
    a = next(v for v in views if v["configurationName"] == "multicast" and v["deviceId"] == cams.a.device_id)
    assert a["shared"] is True
    assert a["brokerProperties"] == {
        "ONVIF_DEVICE_SERVICE_URL": cams.a.xaddr,
        "ONVIF_DEVICE_UUID": cams.a.uuid,
        "ONVIF_DEVICE_IP_ADDRESS": net.ip(1),           # read with a signed GetNetworkInterfaces
        "ONVIF_DEVICE_MAC_ADDRESS": "02:00:00:00:00:aa",
    }


def test_every_filter_includes_and_excludes(cameras, tmp_path):
    cams, net = cameras, cameras.net
    a, b = cams.a.device_id, cams.b.device_id
    cases = {
        "scopes-include": ("scopes: {items: [onvif://www.onvif.org/name/CamA]}", True, {a}),
        "scopes-exclude": ("scopes: {items: [onvif://www.onvif.org/name/CamA], action: Exclude}", True, {b}),
        "uuids-include": ("uuids: {items: [" + cams.b.uuid.upper() + "]}", True, {b}),
        "uuids-exclude": ("uuids: {items: [" + cams.b.uuid + "], action: Exclude}", True, {a}),
        "ip-include": (f"ipAddresses: {{items: [{net.ip(1)}]}}", True, {a}),
        "ip-exclude": (f"ipAddresses: {{items: [{net.ip(1)}], action: Exclude}}", True, {b}),
        "mac-include": ("macAddresses: {items: ['02:00:00:00:00:BB']}", True, {b}),
        "mac-exclude": ("macAddresses: {items: ['02:00:00:00:00:bb'], action: Exclude}", True, {a}),
        # without credentials A's address is unknown, and an unknown value is filtered out
        "ip-unknown": ("ipAddresses: {items: [10.0.0.1], action: Exclude}", False, {b}),
        "exclude-nothing": ("ipAddresses: {items: [], action: Exclude}", False, {a, b}),
    }
    config = write_configs(tmp_path, *(configuration(name, details, credentials=creds)
                                       for name, (details, creds, _) in cases.items()))
    found = by_config(discover(net, config))
    for name, (_, _, expected) in cases.items():
        assert found.get(name, set()) == expected, name


def test_watch_sees_hello_and_bye_and_survives_garbage(cameras, tmp_path):
    cams, net = cameras, cameras.net
    # one probe round at start, the next only after 60 s: within the test, only a Hello can
    # make a camera appear and only a Bye can make it go
    config = write_configs(tmp_path, configuration("watch", "discoveryIntervalSeconds: 60"))
    watch = net.watch(config)
    try:
        watch.wait_for("added", cams.a.device_id)
        watch.wait_for("added", cams.b.device_id)
        cams.b.command("bye")
        watch.wait_for("removed", cams.b.device_id)
        cams.b.command("hello")
        watch.wait_for("added", cams.b.device_id)

        cams.b.command("garbage 239.255.255.250 3702")
        cams.b.wait_for("garbage")
        cams.b.command("bye")
        watch.wait_for("removed", cams.b.device_id)
        cams.b.command("hello")
        watch.wait_for("added", cams.b.device_id)
        assert watch.proc.poll() is None
    finally:
        code, stderr = watch.stop()
    assert code == 0, stderr
    assert "skipped a WS-Discovery datagram" in stderr
