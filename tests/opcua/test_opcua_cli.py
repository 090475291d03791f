"""`akri discover` (a separate process) finds OPC UA servers through a real LDS on localhost."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
WAIT = 30.0  # generous (a fresh process imports akri and asyncua): only there so nothing hangs


def configuration(name: str, urls: list[str], names: str = "") -> str:
    details = "opcuaDiscoveryMethod:\n  standard:\n    discoveryUrls:\n"
    details += "".join(f"    - {u}\n" for u in urls) + names
    indented = "".join(f"      {line}\n" for line in details.splitlines())
    return (f"apiVersion: akri.sh/v0\nkind: Configuration\nmetadata:\n  name: {name}\nspec:\n"
            f"  discoveryHandler:\n    name: opcua\n    discoveryDetails: |\n{indented}  capacity: 2\n")


def env(**extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k != "AKRI_LOG"}
    out.update(extra)
    return out


def test_discover_through_the_lds_with_filters_and_a_dead_url(opcua_lab, tmp_path: Path):
    closed_url = f"opc.tcp://127.0.0.1:{opcua_lab.free_port()}/"
    path = tmp_path / "opcua.yaml"
    path.write_text("---\n".join([
        configuration("opcua-all", [closed_url, opcua_lab.lds_url]),
        configuration("opcua-include", [opcua_lab.lds_url],
                      "applicationNames:\n  action: Include\n  items: [Thermometer]\n"),
        configuration("opcua-exclude", [opcua_lab.lds_url],
                      "applicationNames:\n  action: Exclude\n  items: [Thermometer]\n"),
    ]))
    result = subprocess.run(
        [sys.executable, "-m", "akri", "discover", "-f", str(path), "-o", "json", "--node", "node-a"],
        capture_output=True, text=True, timeout=WAIT, env=env())
    assert result.returncode == 0, result.stderr
    views = json.loads(result.stdout)
    found = {(v["configurationName"], v["deviceId"]) for v in views}
    assert found == {
        ("opcua-all", opcua_lab.thermometer_url),
        ("opcua-all", opcua_lab.pump_url),
        ("opcua-include", opcua_lab.thermometer_url),
        ("opcua-exclude", opcua_lab.pump_url),
    }
    for view in views:
        assert view["shared"] is True
        assert view["brokerProperties"] == {"OPCUA_DISCOVERY_URL": view["deviceId"]}
        assert "node-a" not in view["name"]  # shared: the name does not depend on the node
    # the dead URL is reported, once, and did not keep the LDS's servers from being found
    warnings = [line for line in result.stderr.splitlines() if closed_url in line]
    assert len(warnings) == 1, result.stderr
    assert "WARNING" in warnings[0] and "skipped" in warnings[0]


class Lines:
    """Lines of a process's stdout, read on a thread so waits can time out."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.queue: queue.Queue[str] = queue.Queue()
        assert proc.stdout is not None
        stdout = proc.stdout
        self.thread = threading.Thread(target=lambda: [self.queue.put(line) for line in stdout], daemon=True)
        self.thread.start()

    def next_event(self) -> tuple[str, str]:
        obj = json.loads(self.queue.get(timeout=WAIT))
        return obj["event"], obj["instance"]["deviceId"]


def test_watch_reports_servers_registering_and_going_away(opcua_lab, tmp_path: Path):
    late_uri = "urn:akri:test:cli-late"
    late_url = f"opc.tcp://127.0.0.1:{opcua_lab.free_port()}/akri/late"
    path = tmp_path / "opcua.yaml"
    path.write_text(configuration("opcua-watch", [opcua_lab.lds_url]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "akri", "discover", "-f", str(path), "--watch"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env(AKRI_OPCUA_DISCOVERY_INTERVAL_SECONDS="0.1"))
    lines = Lines(proc)
    try:
        assert {lines.next_event(), lines.next_event()} == {
            ("added", opcua_lab.thermometer_url), ("added", opcua_lab.pump_url)}
        opcua_lab.register("Late Server", late_uri, (late_url,), 0)
        assert lines.next_event() == ("added", late_url)
        opcua_lab.expire(late_uri)
        assert lines.next_event() == ("removed", late_url)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(WAIT) == 0
    finally:
        opcua_lab.expire(late_uri)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        lines.thread.join(WAIT)  # it ends at EOF; then the pipes can be closed
        assert proc.stderr is not None
        proc.stderr.close()
        assert proc.stdout is not None
        proc.stdout.close()
