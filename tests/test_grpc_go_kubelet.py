"""Our device plugins (grpclib) against the kubelet's own gRPC stack (grpc-go).

The kubelet double (akri.testing.kubelet) speaks grpcio; the real kubelet speaks grpc-go. Here
deploy/ci/grpc-go-kubelet (a Go program built with grpc-go from Debian's packages, mirroring the
kubelet device manager's Register / dial / GetDevicePluginOptions / ListAndWatch and its
pod-resources List) takes the kubelet's place for a real `akri agent` process with embedded
debugEcho against the API double. It reports what it sees as JSON lines on stdout and performs
Allocate / GetPreferredAllocation when asked on stdin.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e.cluster import debug_echo_configuration
from e2e.fixtures import api_fixture, cluster_fixture, procs_fixture  # noqa: F401  (fixtures)
from e2e.procs import WAIT, AgentProcess, ProcessGroup, wait_for

from akri.agent.plugins.reclaimer import START_MESSAGE

pytestmark = [pytest.mark.slow, pytest.mark.grpcgo]

BUILD = Path(__file__).resolve().parent.parent / "deploy" / "ci" / "grpc-go-kubelet" / "build.sh"
DEBIAN_PACKAGES = ("golang-go golang-google-grpc-dev golang-goprotobuf-dev golang-google-protobuf-dev "
                   "protobuf-compiler")
FAST = ("--offline-grace-seconds", "1", "--slot-reclaim-interval", "1", "--slot-grace-period", "1")
CONFIG = "akri-debug-echo-foo"
BAR0, BAR1 = "akri-debug-echo-foo-d46b65", "akri-debug-echo-foo-ab76e6"
RESOURCES = {f"akri.sh/{n}" for n in (BAR0, BAR1, CONFIG)}
RESOLUTION = {"RESOLUTION_WIDTH": "800", "RESOLUTION_HEIGHT": "600"}


class GoKubelet:
    """The grpc-go kubelet process: its stdout events, collected by a thread, and its stdin commands."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.dir = workdir / "go-kubelet-device-plugins"  # what AgentProcess reads from a kubelet
        self.pod_resources_socket = workdir / "go-kubelet-pod-resources.sock"
        self.events: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self._next_id = 0
        self._events_log = (workdir / "go-kubelet.log").open("w")
        self._stderr = (workdir / "go-kubelet-stderr.log").open("w")
        self.proc = subprocess.Popen(
            [binary, "-dir", str(self.dir), "-pod-resources", str(self.pod_resources_socket)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        self._reader = threading.Thread(target=self._read, name="go-kubelet-stdout", daemon=True)
        self._reader.start()
        self.wait_event("serving", lambda e: e["event"] == "serving")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._events_log.write(line)
            self._events_log.flush()
            with self._changed:
                self.events.append(json.loads(line))
                self._changed.notify_all()
        with self._changed:  # end of output: let a waiter see that the process ended
            self._changed.notify_all()

    def wait_event(self, what: str, match: Callable[[dict[str, Any]], bool], *, after: int = 0,
                   timeout: float = WAIT) -> dict[str, Any]:
        """The first event from index `after` on that `match`es."""
        def probe() -> dict[str, Any] | None:
            if self.proc.poll() is not None:
                raise AssertionError(f"grpc-go kubelet exited with {self.proc.returncode}")
            return next((e for e in self.events[after:] if match(e)), None)
        with self._changed:
            if self._changed.wait_for(lambda: probe() is not None, timeout):
                return probe()  # type: ignore[return-value]
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; "
                             f"events: {self.events[after:]}")

    def command(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send one command on stdin and return its reply."""
        self._next_id += 1
        ident = self._next_id
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"id": ident, "op": op, **fields}) + "\n")
        self.proc.stdin.flush()
        return self.wait_event(f"reply to {op}", lambda e: e["event"] == "reply" and e.get("id") == ident,
                               timeout=30)

    def devices(self, resource: str, *, after: int = 0) -> dict[str, str] | None:
        """The last device list ListAndWatch delivered for `resource` (id -> health)."""
        with self._changed:
            lists = [e for e in self.events[after:] if e["event"] == "devices" and e["resource"] == resource]
        return {d["id"]: d["health"] for d in lists[-1]["devices"]} if lists else None

    def registered(self, *, after: int = 0) -> set[str]:
        with self._changed:
            return {e["resource"] for e in self.events[after:] if e["event"] == "register" and e["accepted"]}

    def stop(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # it ends when stdin closes
            try:
                self.proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(WAIT)
        self._reader.join(WAIT)
        self._events_log.close()
        self._stderr.close()


@pytest.fixture(scope="module")
def go_kubelet_binary() -> str:
    missing = [tool for tool in ("go", "protoc", "protoc-gen-go") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (Debian packages: {DEBIAN_PACKAGES})")
    result = subprocess.run(["bash", str(BUILD)], capture_output=True, text=True, timeout=600)
    if result.returncode == 3:  # build.sh: a tool or grpc-go's sources are missing
        pytest.skip(f"{result.stderr.strip()} (Debian packages: {DEBIAN_PACKAGES})")
    assert result.returncode == 0, f"building the grpc-go kubelet failed:\n{result.stderr}"
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture
def go_kubelet(go_kubelet_binary: str, procs: ProcessGroup) -> Iterator[GoKubelet]:
    kubelet = GoKubelet(go_kubelet_binary, procs.workdir)
    try:
        yield kubelet
    finally:
        kubelet.stop()


def healthy(kubelet: GoKubelet, name: str, count: int, *, after: int = 0) -> bool:
    return kubelet.devices(f"akri.sh/{name}", after=after) == {f"{name}-{i}": "Healthy" for i in range(count)}


def usage(cluster: Any, name: str) -> dict[str, str]:
    inst = cluster.instance(name)
    return dict(inst["spec"].get("deviceUsage") or {}) if inst else {}


def test_agent_plugins_with_the_grpc_go_kubelet(go_kubelet: GoKubelet, procs: ProcessGroup, cluster: Any,
                                                api: Any) -> None:
    kubelet = go_kubelet
    availability = procs.workdir / "availability"
    env = {"DEBUG_ECHO_INSTANCES_SHARED": "true", "DEBUG_ECHO_AVAILABILITY_FILE": str(availability)}
    agent: AgentProcess = procs.agent("node-a", api.kubeconfig_path, kubelet,  # type: ignore[arg-type]
                                      "--embedded", "debugEcho", *FAST, env=env).ready()
    cluster.apply_configuration(
        debug_echo_configuration(CONFIG, ["bar0", "bar1"], capacity=2, broker_properties=RESOLUTION))

    # Register -> grpc-go dials the plugin's socket (WithBlock), GetDevicePluginOptions, ListAndWatch
    wait_for("every plugin registered with the grpc-go kubelet", lambda: kubelet.registered() == RESOURCES)
    for event in kubelet.events:
        if event["event"] == "register":
            assert event["version"] == "v1beta1" and event["error"] == "", event
            assert event["plugin_options"] == {"pre_start_required": False,
                                               "get_preferred_allocation_available": True}, event
    wait_for("Instance devices via ListAndWatch",
             lambda: healthy(kubelet, BAR0, 2) and healthy(kubelet, BAR1, 2))
    wait_for("configuration devices via ListAndWatch",
             lambda: kubelet.devices(f"akri.sh/{CONFIG}") == {f"{CONFIG}-{i}": "Healthy" for i in range(2)})

    # GetPreferredAllocation, then Allocate of the preferred id: the broker environment
    preferred = kubelet.command("preferred", resource=f"akri.sh/{BAR0}", available=[f"{BAR0}-0", f"{BAR0}-1"],
                                must_include=[], size=1)
    assert preferred["ok"], preferred
    (chosen,) = preferred["response"]["container_responses"][0]["deviceIDs"]
    assert chosen in (f"{BAR0}-0", f"{BAR0}-1")
    reply = kubelet.command("allocate", resource=f"akri.sh/{BAR0}", ids=[chosen], pod="broker-0")
    assert reply["ok"], reply
    (container,) = reply["response"]["container_responses"]
    assert container["envs"] == {
        "DEBUG_ECHO_DESCRIPTION": "bar0", "DEBUG_ECHO_DESCRIPTION_D46B65": "bar0",
        "RESOLUTION_WIDTH": "800", "RESOLUTION_WIDTH_D46B65": "800",
        "RESOLUTION_HEIGHT": "600", "RESOLUTION_HEIGHT_D46B65": "600"}
    assert container["mounts"] == [] and container["devices"] == [] and container["cdi_devices"] == []
    assert usage(cluster, BAR0) == {chosen: "node-a"}

    # an id the plugin never offered: INVALID_ARGUMENT with our message, through grpc-go's status
    reply = kubelet.command("allocate", resource=f"akri.sh/{BAR0}", ids=["no-such-id"])
    assert (reply["ok"], reply["code"], reply["message"]) == (
        False, "InvalidArgument", f"Invalid device id 'no-such-id' for akri.sh/{BAR0}"), reply
    assert usage(cluster, BAR0) == {chosen: "node-a"}

    # pod-resources List (grpclib client -> grpc-go server): while the pod runs, the claim survives
    # rounds past the 1 s grace; once the pod is gone the slot is freed
    rounds = agent.text().count(START_MESSAGE)
    wait_for("three reclaim rounds", lambda: agent.text().count(START_MESSAGE) >= rounds + 3)
    assert usage(cluster, BAR0) == {chosen: "node-a"}
    assert "unreachable" not in agent.text()
    assert kubelet.command("remove_pod", pod="broker-0")["ok"]
    wait_for("slot of the ended pod freed", lambda: usage(cluster, BAR0) == {})

    # the kubelet restarts (its directory cleared, kubelet.sock served again): every plugin
    # registers again and its devices come back over a new ListAndWatch. It comes back as a
    # kubelet before 1.26, whose plugin connections carry grpc-go's default :authority (the
    # socket path) instead of "localhost"
    mark = len(kubelet.events)
    assert kubelet.command("restart", authority="")["ok"]
    wait_for("every plugin registered again", lambda: kubelet.registered(after=mark) == RESOURCES)
    wait_for("devices after the restart", lambda: healthy(kubelet, BAR0, 2, after=mark))
    reply = kubelet.command("allocate", resource=f"akri.sh/{BAR0}", ids=[f"{BAR0}-1"])
    assert reply["ok"], reply
    assert usage(cluster, BAR0) == {f"{BAR0}-1": "node-a"}

    # devices gone: each plugin's ListAndWatch ends, so the kubelet stops offering its devices
    mark = len(kubelet.events)
    availability.write_text("OFFLINE")
    wait_for("every ListAndWatch ended", lambda: RESOURCES == {
        e["resource"] for e in kubelet.events[mark:] if e["event"] == "stream_end" and e["current"]})
    assert not any(e["event"] == "register" for e in kubelet.events[mark:])
    assert agent.alive()
    assert agent.stop() == 0
