"""Processes of an end-to-end run: `akri agent`, the kubelet double, standalone handlers and the
API double, each a real child process with its own log file.

    with ProcessGroup(tmp_path) as procs:
        kubelet = procs.kubelet("node-a")
        agent = procs.agent("node-a", kubeconfig, kubelet, "--embedded", "debugEcho")
        agent.wait_log("agent ready")
        kubelet.state()["resources"]

Every process is stopped by its own PID when the group closes (SIGTERM, then SIGKILL).
Reusable by tests and by the benchmark scripts (`sys.path.insert(0, "<repo>/tests")`).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
WAIT = 10.0  # generous: only there so that a broken run cannot hang


def wait_for(what: str, probe: Callable[[], T], timeout: float = WAIT, interval: float = 0.05) -> T:
    """Call `probe` until it returns something truthy; AssertionError naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")
        time.sleep(interval)


async def until(predicate: Callable[[], T], what: str = "condition", limit: float = WAIT,
                interval: float = 0.02) -> T:
    """`wait_for` for coroutines: await until `predicate()` is truthy and return it;
    AssertionError naming `what` after `limit` seconds (a guard against hanging, not a timing)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not (value := predicate()):
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {limit:.0f} s waiting for {what}")
        await asyncio.sleep(interval)
    return value


def rss_kib(pid: int) -> int:
    """VmRSS of a process, KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise LookupError(f"no VmRSS for pid {pid}")


class LoggedProcess:
    """A child process whose stdout and stderr go to `log`."""

    def __init__(self, args: Sequence[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.args = list(args)
        self.log = log
        # a process started again with the same log appends to it; text() is this process's part
        self._offset = log.stat().st_size if log.exists() else 0
        self._out = log.open("ab")
        self.proc = subprocess.Popen(self.args, stdout=self._out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def text(self) -> str:
        with self.log.open("rb") as f:
            f.seek(self._offset)
            return f.read().decode(errors="replace")

    def wait_log(self, pattern: str, timeout: float = WAIT, *, after: int = 0) -> re.Match[str]:
        """The first match of regex `pattern` in the log (from character `after`)."""
        def probe() -> re.Match[str] | None:
            if not self.alive():
                raise AssertionError(f"{self.args[:4]} exited with {self.proc.returncode}:\n{self.text()}")
            return re.compile(pattern).search(self.text(), after)
        return wait_for(f"{pattern!r} in {self.log.name}", probe, timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = WAIT) -> int:
        """Signal the process and wait for it; SIGKILL when it does not end in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        self._out.close()
        return self.proc.returncode

    def kill(self) -> int:
        return self.stop(signal.SIGKILL)


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.path)
        self.sock = sock


class KubeletProcess(LoggedProcess):
    """`python -m akri.testing.kubelet` with its JSON control API on a unix socket."""

    def __init__(self, workdir: Path, name: str = "kubelet") -> None:
        self.dir = workdir / f"{name}-device-plugins"
        self.pod_resources_socket = workdir / f"{name}-pod-resources.sock"
        self.control_socket = workdir / f"{name}-control.sock"
        super().__init__([sys.executable, "-m", "akri.testing.kubelet", "--dir", str(self.dir),
                          "--pod-resources-socket", str(self.pod_resources_socket),
                          "--control-socket", str(self.control_socket)], workdir / f"{name}.log")
        self.wait_log("kubelet double serving")
        wait_for("kubelet control socket", self.control_socket.exists)

    def call(self, method: str, path: str, body: Any = None, timeout: float = 30.0) -> tuple[int, Any]:
        conn = _UnixHTTPConnection(str(self.control_socket), timeout)
        try:
            payload = None if body is None else json.dumps(body)
            conn.request(method, path, payload, {"Content-Type": "application/json"})
            response = conn.getresponse()
            return response.status, json.loads(response.read() or b"null")
        finally:
            conn.close()

    def state(self) -> dict[str, Any]:
        return self.call("GET", "/state")[1]

    def resource(self, name: str) -> dict[str, Any] | None:
        return self.state()["resources"].get(name)

    def accepted(self, resource: str) -> int:
        """How many registrations of `resource` were accepted."""
        registrations = self.state()["registrations"]
        return sum(1 for r in registrations if r["accepted"] and r["resourceName"] == resource)

    def allocate(self, resource: str, device_ids: Sequence[str] | None = None, *, count: int | None = None,
                 pod: str | None = None, namespace: str = "default") -> tuple[int, dict[str, Any]]:
        """(200, AllocateResponse as JSON) or (409, {"error": ...}) when admission failed."""
        body: dict[str, Any] = {"resource": resource, "namespace": namespace}
        if device_ids is not None:
            body["deviceIds"] = list(device_ids)
        if count is not None:
            body["count"] = count
        if pod is not None:
            body["pod"] = pod
        return self.call("POST", "/allocate", body)

    def remove_pod(self, name: str, namespace: str = "default") -> None:
        self.call("DELETE", f"/pods/{namespace}/{name}")

    def restart(self) -> int:
        return self.call("POST", "/restart")[1]["starts"]


class AgentProcess(LoggedProcess):
    """`akri agent` for one node, talking to `kubelet`'s sockets; /metrics on a free port."""

    def __init__(self, workdir: Path, node: str, kubeconfig: Path, kubelet: KubeletProcess, *extra: str,
                 env: dict[str, str] | None = None, log_name: str | None = None,
                 launcher: Sequence[str] = (sys.executable, "-m", "akri")) -> None:
        """`launcher`: the command that runs the `akri` CLI (its arguments follow)."""
        self.node = node
        self.handlers_dir = workdir / f"{node}-akri"
        self.kubelet = kubelet
        args = [*launcher, "--log-level", "INFO", "agent",
                "--node-name", node, "--discovery-handlers-directory", str(self.handlers_dir),
                "--kubeconfig", str(kubeconfig), "--metrics-port", "0", "--metrics-host", "127.0.0.1",
                "--device-plugins-dir", str(kubelet.dir), "--pod-resources-socket",
                str(kubelet.pod_resources_socket), *extra]
        super().__init__(args, workdir / (log_name or f"agent-{node}.log"), env)
        self._metrics_port: int | None = None

    @property
    def metrics_port(self) -> int:
        if self._metrics_port is None:
            match = self.wait_log(r"metrics on http://[^:]+:(\d+)/metrics")
            self._metrics_port = int(match.group(1))
        return self._metrics_port

    def metrics(self) -> str:
        conn = http.client.HTTPConnection("127.0.0.1", self.metrics_port, timeout=10)
        try:
            conn.request("GET", "/metrics")
            return conn.getresponse().read().decode()
        finally:
            conn.close()

    def metric(self, name: str, **labels: str) -> float | None:
        """The value of one sample of /metrics (labels must match exactly), or None."""
        return sample(self.metrics(), name, **labels)

    def ready(self, timeout: float = WAIT) -> AgentProcess:
        self.wait_log("agent ready", timeout)
        return self


def sample(text: str, name: str, **labels: str) -> float | None:
    """Find `name{labels}` in Prometheus text exposition."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, rest = head.partition("{")
        if metric != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', rest))
        if found == labels:
            return float(value)
    return None


class HandlerProcess(LoggedProcess):
    """`akri handler NAME` registering with the agent whose directory is `directory`."""

    def __init__(self, workdir: Path, name: str, directory: Path, *, env: dict[str, str] | None = None,
                 log_name: str | None = None) -> None:
        self.name = name
        self.directory = directory
        super().__init__([sys.executable, "-m", "akri", "--log-level", "INFO", "handler", name,
                          "--directory", str(directory)], workdir / (log_name or f"handler-{name}.log"), env)


class ApiServerProcess(LoggedProcess):
    """`python -m akri.testing.apiserver` (its data is lost when it stops: restart tests use
    `akri.testing.apiserver.ApiServerThread`, which keeps it)."""

    def __init__(self, workdir: Path, *extra: str, tls: bool = False) -> None:
        """`tls`: serve HTTPS with a throwaway CA that the kubeconfig carries."""
        self.kubeconfig = workdir / "apiserver.kubeconfig"
        super().__init__([sys.executable, "-m", "akri.testing.apiserver", "--port", "0",
                          "--kubeconfig", str(self.kubeconfig), *(["--tls"] if tls else []), *extra],
                         workdir / "apiserver.log")
        self.url = self.wait_log(r"listening on (https?://\S+)").group(1)


class ProcessGroup:
    """Starts the processes of a run in `workdir`; stops every one of them on close()."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.started: list[LoggedProcess] = []

    def _track(self, proc: T) -> T:
        self.started.append(proc)  # type: ignore[arg-type]
        return proc

    def kubelet(self, name: str = "kubelet") -> KubeletProcess:
        return self._track(KubeletProcess(self.workdir, name))

    def agent(self, node: str, kubeconfig: Path, kubelet: KubeletProcess, *extra: str,
              env: dict[str, str] | None = None, log_name: str | None = None,
              launcher: Sequence[str] = (sys.executable, "-m", "akri")) -> AgentProcess:
        return self._track(AgentProcess(self.workdir, node, kubeconfig, kubelet, *extra, env=env,
                                        log_name=log_name, launcher=launcher))

    def handler(self, name: str, directory: Path, *, env: dict[str, str] | None = None,
                log_name: str | None = None) -> HandlerProcess:
        return self._track(HandlerProcess(self.workdir, name, directory, env=env, log_name=log_name))

    def apiserver(self, *extra: str, tls: bool = False) -> ApiServerProcess:
        return self._track(ApiServerProcess(self.workdir, *extra, tls=tls))

    def close(self) -> None:
        for proc in reversed(self.started):
            proc.stop()
        self.started.clear()

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def logs(self) -> str:
        """Every log of the run, for a failure message."""
        return "\n".join(f"===== {p.log.name}\n{p.text()[-6000:]}" for p in self.started)


def spawn_debug_echo_handler(directory: Path, availability: Path, *, shared: bool = True) -> subprocess.Popen:
    """A bare `akri handler debugEcho` process (no log file), for tests that kill and restart it."""
    env = {
        **os.environ,
        "DISCOVERY_HANDLERS_DIRECTORY": str(directory),
        "DEBUG_ECHO_INSTANCES_SHARED": "true" if shared else "false",
        "DEBUG_ECHO_AVAILABILITY_FILE": str(availability),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "akri", "handler", "debugEcho"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
