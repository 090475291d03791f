"""`akri discover`: Instances this node would get, from a Configuration and an embedded handler.

Names are checked against the spec's vectors (§2, §11a): debugEcho `bar0`/`bar1` shared ->
akri-debug-echo-foo-d46b65 / -ab76e6; not shared on node-a -> -7d2706 / -cf9bee.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from akri.cli import main
from akri.commands.discover import diff, instance_view, resolve_local_properties
from akri.discovery.device import Device, DeviceSpec, Mount
from akri.model.configuration import Configuration

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "deploy" / "samples" / "debug-echo.yaml"
WAIT = 10.0  # generous: only guards against hanging
SHARED_NAMES = ["akri-debug-echo-foo-d46b65", "akri-debug-echo-foo-ab76e6"]
NODE_A_NAMES = ["akri-debug-echo-foo-7d2706", "akri-debug-echo-foo-cf9bee"]


def config_yaml(name: str = "cfg", details: str = "descriptions: [bar0]", handler: str = "debugEcho",
                extra_spec: str = "") -> str:
    return (f"apiVersion: akri.sh/v0\nkind: Configuration\nmetadata: {{name: {name}}}\nspec:\n"
            f"  discoveryHandler:\n    name: {handler}\n    discoveryDetails: {json.dumps(details)}\n"
            f"{extra_spec}")


@pytest.fixture
def env(tmp_path, monkeypatch) -> dict[str, str]:
    """Environment of a discover run: its own availability file, nothing inherited that matters."""
    for key in ("DEBUG_ECHO_INSTANCES_SHARED", "AGENT_NODE_NAME", "AKRI_LOG"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("DEBUG_ECHO_AVAILABILITY_FILE", str(tmp_path / "availability.txt"))
    return dict(os.environ)


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "akri", "discover", *args], env=env, capture_output=True,
                          text=True, timeout=60)


# --- real processes


@pytest.mark.slow
def test_table_for_the_sample(env):
    result = run_cli("-f", str(SAMPLE), env=env)
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split()[:3] == ["NAME", "DEVICE", "ID"]
    assert [row.split()[0] for row in rows] == SHARED_NAMES
    assert rows[0].split()[1:5] == ["bar0", "true", "2", "akri.sh/akri-debug-echo-foo=d46b65"]
    assert "DEBUG_ECHO_DESCRIPTION=bar0,RESOLUTION_WIDTH=800,RESOLUTION_HEIGHT=600" in rows[0]


@pytest.mark.slow
def test_json_and_yaml_for_a_local_device_on_node_a(env):
    env = {**env, "DEBUG_ECHO_INSTANCES_SHARED": "false", "AGENT_NODE_NAME": "node-a"}
    as_json = run_cli("-f", str(SAMPLE), "-o", "json", env=env)
    assert as_json.returncode == 0, as_json.stderr
    instances = json.loads(as_json.stdout)
    assert [i["name"] for i in instances] == NODE_A_NAMES
    assert instances[0] == {
        "name": "akri-debug-echo-foo-7d2706",
        "namespace": "default",
        "configurationName": "akri-debug-echo-foo",
        "cdiName": "akri.sh/akri-debug-echo-foo=7d2706",
        "deviceId": "bar0",
        "shared": False,
        "node": "node-a",
        "capacity": 2,
        "brokerProperties": {"DEBUG_ECHO_DESCRIPTION": "bar0", "RESOLUTION_WIDTH": "800",
                             "RESOLUTION_HEIGHT": "600"},
        "mounts": [],
        "deviceSpecs": [],
    }
    as_yaml = run_cli("-f", str(SAMPLE), "-o", "yaml", "--node", "node-a", env=env)
    assert as_yaml.returncode == 0, as_yaml.stderr
    assert yaml.safe_load(as_yaml.stdout) == instances


@pytest.mark.slow
async def test_watch_reports_offline_and_online(env, tmp_path):
    availability = tmp_path / "availability.txt"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "akri", "discover", "-f", str(SAMPLE), "--watch", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)

    async def events(n: int) -> list[tuple[str, str]]:
        out = []
        for _ in range(n):
            line = await asyncio.wait_for(proc.stdout.readline(), WAIT)
            assert line, (await proc.stderr.read()).decode()
            event = json.loads(line)
            out.append((event["event"], event["instance"]["name"]))
        return out

    try:
        assert await events(2) == [("added", n) for n in SHARED_NAMES]
        availability.write_text("OFFLINE")
        assert await events(2) == [("removed", n) for n in SHARED_NAMES]
        availability.write_text("ONLINE")
        assert await events(2) == [("added", n) for n in SHARED_NAMES]
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), WAIT) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@pytest.mark.slow
def test_the_readme_command_finds_loopback(env):
    # README's main command: the udev sample matches `lo`, which every Linux machine has
    result = run_cli("-f", str(ROOT / "deploy" / "samples" / "udev-net-loopback.yaml"), "-o", "json",
                     "--node", "node-a", env=env)
    assert result.returncode == 0, result.stderr
    [instance] = json.loads(result.stdout)
    digest = hashlib.blake2b(b"/devices/virtual/net/lo" + b"node-a", digest_size=3).hexdigest()
    assert instance["name"] == f"akri-udev-net-loopback-{digest}"
    assert (instance["deviceId"], instance["shared"]) == ("/devices/virtual/net/lo", False)
    assert instance["brokerProperties"]["UDEV_DEVPATH"] == "/devices/virtual/net/lo"


def test_samples_are_valid_and_name_builtin_handlers():
    from akri.discovery.handlers import BUILTIN
    from akri.model.validation import validate_configuration

    samples = sorted((ROOT / "deploy" / "samples").glob("*.yaml"))
    handlers = set()
    for path in samples:
        for obj in yaml.safe_load_all(path.read_text()):
            assert validate_configuration(obj) == [], path
            handlers.add(obj["spec"]["discoveryHandler"]["name"])
    assert handlers == set(BUILTIN)  # one sample per built-in handler


# --- in-process: argument and input errors, property resolution, instance views


def discover(*args: str) -> int:
    return main(["--log-level", "WARNING", "discover", *args])


def test_invalid_configuration_names_the_field(env, tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(config_yaml(details="descriptions: foo"))
    assert discover("-f", str(path)) == 2
    err = capsys.readouterr().err
    assert "configuration/cfg: invalid: spec.discoveryHandler.discoveryDetails.descriptions" in err
    path.write_text(config_yaml(extra_spec="  capacity: many\n"))
    assert discover("-f", str(path)) == 2
    assert "spec.capacity" in capsys.readouterr().err


def test_unknown_handler(env, tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(config_yaml(handler="bluetooth"))
    assert discover("-f", str(path)) == 2
    err = capsys.readouterr().err
    assert "configuration/cfg: spec.discoveryHandler.name: unknown discovery handler 'bluetooth'" in err
    assert "debugEcho" in err  # the message lists what exists


def test_no_configuration_or_unreadable_file(env, tmp_path, capsys):
    path = tmp_path / "other.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    assert discover("-f", str(path)) == 2
    assert "no akri.sh/v0 Configuration" in capsys.readouterr().err
    assert discover("-f", str(tmp_path / "missing.yaml")) == 2
    assert "missing.yaml" in capsys.readouterr().err


def test_secret_reference_needs_a_cluster(env, tmp_path, capsys):
    ref = ("  discoveryHandler:\n    name: debugEcho\n    discoveryDetails: 'descriptions: [bar0]'\n"
           "    discoveryProperties:\n      - name: token\n        valueFrom:\n"
           "          secretKeyRef: {name: creds, key: token, optional: %s}\n")
    head = "apiVersion: akri.sh/v0\nkind: Configuration\nmetadata: {name: cfg}\nspec:\n"
    path = tmp_path / "c.yaml"
    path.write_text(head + ref % "false")
    assert discover("-f", str(path)) == 2
    err = capsys.readouterr().err
    assert "spec.discoveryHandler.discoveryProperties[0].valueFrom: Secret default/creds" in err
    assert "without a cluster" in err
    path.write_text(head + ref % "true")
    assert discover("-f", str(path), "-o", "json") == 0  # optional: left out, with a warning
    out, err = capsys.readouterr()
    assert "warning" in err and "'token' left out" in err
    assert [i["deviceId"] for i in json.loads(out)] == ["bar0"]


def test_every_configuration_in_the_file(env, tmp_path, capsys):
    path = tmp_path / "two.yaml"
    clash = "  brokerProperties: {DEBUG_ECHO_DESCRIPTION: from-config}\n"
    second = config_yaml("two", "descriptions: [x, y]", extra_spec=clash)
    path.write_text(config_yaml("one") + "---\n" + second)
    assert discover("-f", str(path), "-o", "json", "--node", "n1") == 0
    instances = json.loads(capsys.readouterr().out)
    assert [(i["configurationName"], i["deviceId"]) for i in instances] == [("one", "bar0"), ("two", "x"),
                                                                            ("two", "y")]
    # the Configuration's brokerProperties win over the device's
    assert instances[1]["brokerProperties"] == {"DEBUG_ECHO_DESCRIPTION": "from-config"}


def test_plain_values_are_bytes_and_unset_is_none():
    raw = yaml.safe_load(config_yaml())
    raw["spec"]["discoveryHandler"]["discoveryProperties"] = [
        {"name": "a", "value": "héllo"}, {"name": "b"},
        {"name": "c", "value": "wins", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]
    config = Configuration.from_dict(raw)
    warnings: list[str] = []
    resolved = resolve_local_properties(config, warnings.append)
    assert resolved == {"a": "héllo".encode(), "b": None, "c": b"wins"}
    assert warnings == []


def test_instance_view_of_a_local_device_with_specs():
    config = Configuration.from_dict(yaml.safe_load(config_yaml("my_config")))
    device = Device("my_local_device", {"MY_DEVICE_KEY": "device_value"},
                    mounts=(Mount("/in", "/out", True),),
                    device_specs=(DeviceSpec("/dev/a", "/dev/a", "rw"),))
    view = instance_view(config, device, shared=False, node="my_node")
    assert view["name"] == "my_config-e77db4"  # spec §2 vector
    assert view["cdiName"] == "akri.sh/my_config=e77db4"
    assert view["mounts"] == [{"containerPath": "/in", "hostPath": "/out", "readOnly": True}]
    assert view["deviceSpecs"] == [{"containerPath": "/dev/a", "hostPath": "/dev/a", "permissions": "rw"}]
    assert view["capacity"] == 1


def test_diff_events():
    a, b, b2, c = {"n": "a"}, {"n": "b"}, {"n": "b", "x": 1}, {"n": "c"}
    assert diff({"a": a, "b": b}, {"b": b2, "c": c}) == [("removed", a), ("modified", b2), ("added", c)]
    assert diff({"a": a}, {"a": dict(a)}) == []
