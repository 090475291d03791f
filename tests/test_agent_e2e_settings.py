"""`akri agent` settings: flags with upstream's environment variables as fallbacks, and startup
errors that name the missing or bad setting and exit 2."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from akri.agent.main import AgentOptions
from akri.cli import build_parser, main
from akri.commands.agent import build_options
from akri.testing.apiserver import write_kubeconfig

BASE = {"AGENT_NODE_NAME": "node-a", "DISCOVERY_HANDLERS_DIRECTORY": "/var/lib/akri"}


def options(argv: list[str], env: dict[str, str]) -> AgentOptions:
    return build_options(build_parser().parse_args(["agent", *argv]), env)


def test_defaults_follow_upstream() -> None:
    opts = options([], BASE)
    assert opts.settings.node_name == "node-a"
    assert str(opts.settings.discovery_handlers_directory) == "/var/lib/akri"
    assert opts.metrics_port == 8080
    assert opts.device_plugins_dir == "/var/lib/kubelet/device-plugins"
    assert opts.pod_resources_socket == "/var/lib/kubelet/pod-resources/kubelet.sock"
    assert (opts.reclaim_interval, opts.reclaim_grace) == (10.0, 20.0)
    assert opts.settings.offline_grace_seconds == 300
    assert opts.settings.embedded_handlers == ()


def test_environment_then_flags() -> None:
    env = {**BASE, "METRICS_PORT": "9090", "AKRI_DEVICE_PLUGINS_DIR": "/k/dp",
           "AKRI_POD_RESOURCES_SOCKET": "/k/pr.sock", "AKRI_OFFLINE_GRACE_SECONDS": "30",
           "AKRI_EMBEDDED_HANDLERS": "udev"}
    opts = options([], env)
    assert (opts.metrics_port, opts.device_plugins_dir, opts.pod_resources_socket) == (
        9090, "/k/dp", "/k/pr.sock")
    assert opts.settings.offline_grace_seconds == 30
    assert [h.name for h in opts.settings.embedded_handlers] == ["udev"]
    opts = options(["--node-name", "node-b", "--metrics-port", "0", "--device-plugins-dir", "/x",
                    "--offline-grace-seconds", "5", "--handler-hold-seconds", "7",
                    "--slot-reclaim-interval", "1", "--slot-grace-period", "2"], env)
    assert (opts.settings.node_name, opts.metrics_port, opts.device_plugins_dir) == ("node-b", 0, "/x")
    assert opts.settings.timings().hold_seconds == 7
    assert (opts.reclaim_interval, opts.reclaim_grace) == (1.0, 2.0)


def test_embedded_handlers_from_flag_and_enable_debug_echo() -> None:
    env = {**BASE, "ENABLE_DEBUG_ECHO": "1", "DEBUG_ECHO_INSTANCES_SHARED": "false"}
    opts = options(["--embedded", "debugEcho", "udev"], env)
    handlers = opts.settings.embedded_handlers
    assert [h.name for h in handlers] == ["debugEcho", "udev"]  # debugEcho once
    assert handlers[0].shared is False and handlers[1].shared is False


def test_enable_debug_echo_with_any_value_even_empty() -> None:
    # upstream checks only that the variable is set
    env = {**BASE, "ENABLE_DEBUG_ECHO": "", "DEBUG_ECHO_INSTANCES_SHARED": "true"}
    handlers = options([], env).settings.embedded_handlers
    assert [(h.name, h.shared) for h in handlers] == [("debugEcho", True)]


@pytest.mark.parametrize(("argv", "env", "named"), [
    ([], {"DISCOVERY_HANDLERS_DIRECTORY": "/d"}, "AGENT_NODE_NAME"),
    ([], {"AGENT_NODE_NAME": "n"}, "DISCOVERY_HANDLERS_DIRECTORY"),
    (["--node-name", "a:b"], {"DISCOVERY_HANDLERS_DIRECTORY": "/d"}, "AGENT_NODE_NAME"),
    ([], {**BASE, "METRICS_PORT": "http"}, "METRICS_PORT"),
    ([], {**BASE, "METRICS_PORT": "70000"}, "METRICS_PORT"),
    ([], {**BASE, "AKRI_OFFLINE_GRACE_SECONDS": "-1"}, "AKRI_OFFLINE_GRACE_SECONDS"),
    ([], {**BASE, "AKRI_EMBEDDED_HANDLERS": "debugEcho,mqtt"}, "AKRI_EMBEDDED_HANDLERS"),
    ([], {**BASE, "ENABLE_DEBUG_ECHO": "yes"}, "DEBUG_ECHO_INSTANCES_SHARED"),
    (["--embedded", "debugEcho"], BASE, "DEBUG_ECHO_INSTANCES_SHARED"),
    (["--kubeconfig", "/nonexistent/kubeconfig"], BASE, "kubeconfig"),
])
def test_startup_errors_name_the_setting(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                         argv: list[str], env: dict[str, str], named: str) -> None:
    for var in ("AGENT_NODE_NAME", "DISCOVERY_HANDLERS_DIRECTORY", "METRICS_PORT", "ENABLE_DEBUG_ECHO",
                "DEBUG_ECHO_INSTANCES_SHARED", "AKRI_EMBEDDED_HANDLERS", "AKRI_OFFLINE_GRACE_SECONDS"):
        monkeypatch.delenv(var, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["agent", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("akri agent: ") and named in err, err


@pytest.mark.parametrize("argv", [["--slot-reclaim-interval", "0"], ["--slot-grace-period", "-1"],
                                  ["--metrics-port", "x"], ["--embedded", "mqtt"]])
def test_bad_flags_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["agent", *argv])
    assert exit_info.value.code == 2
    assert argv[0] in capsys.readouterr().err


@pytest.mark.slow
def test_process_exits_2_without_node_name(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "DISCOVERY_HANDLERS_DIRECTORY": str(tmp_path), "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "akri", "agent"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert "AGENT_NODE_NAME" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_taken_metrics_port_is_a_startup_error(tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig("http://127.0.0.1:1", tmp_path / "kubeconfig")  # never contacted
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "akri", "agent", "--node-name", "n",
                               "--discovery-handlers-directory", str(tmp_path / "akri"),
                               "--kubeconfig", str(kubeconfig), "--metrics-host", "127.0.0.1",
                               "--metrics-port", str(port)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"METRICS_PORT (--metrics-port) {port}" in done.stderr
    assert "Traceback" not in done.stderr
