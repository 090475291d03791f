"""A kubelet double: the kubelet's device-plugin and pod-resources sides, over real gRPC.

What the real kubelet does and this double reproduces (k8s device manager, v1beta1):

* serves `v1beta1.Registration` on `<dir>/kubelet.sock`; `Register` checks the API version
  (`v1beta1`), that the resource is an extended resource name (`<domain>/<name>`, not in the
  kubernetes.io namespace) and that the endpoint is a socket in `<dir>`; then it dials
  `<dir>/<endpoint>`, calls `GetDevicePluginOptions` and only then answers, and follows
  `ListAndWatch` in the background, keeping each resource's device list and health;
* a new registration of a resource replaces the previous plugin connection; when a plugin's
  stream ends its devices are marked Unhealthy (kubelet's `markResourceUnhealthy`);
* at pod admission it offers a container only Healthy devices not allocated to another pod
  (devices of the same pod may be handed again: init-container reuse), asks
  `GetPreferredAllocation` first when the plugin advertised it, then calls `Allocate`;
* on start it deletes every socket in `<dir>` (plugins must notice and register again);
* serves `v1.PodResourcesLister` (List/Get/GetAllocatableResources) on its own socket. As in
  the kubelet, device ids are reported as the plugin named them (`instance-a-1`, no
  `akri.sh/` prefix) and `resource_name` carries the prefix (`akri.sh/instance-a`).

Use it as `async with KubeletDouble(tmpdir, pod_resources_socket=...) as kubelet:` in tests,
or run `python -m akri.testing.kubelet --dir D --pod-resources-socket S [--control-socket C]`
for end-to-end tests with subprocesses; the control socket serves a small JSON HTTP API
(GET /state, POST /allocate, POST /pods, DELETE /pods/<ns>/<name>, POST /restart).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
import signal
import stat
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc

from akri._proto import deviceplugin_pb2 as dp
from akri._proto import deviceplugin_pb2_grpc as dp_grpc
from akri._proto import podresources_pb2 as pr
from akri._proto import podresources_pb2_grpc as pr_grpc

log = logging.getLogger(__name__)

SUPPORTED_VERSIONS = ("v1beta1",)
HEALTHY = "Healthy"
UNHEALTHY = "Unhealthy"
KUBELET_SOCKET = "kubelet.sock"
DEFAULT_DEVICE_PLUGIN_DIR = "/var/lib/kubelet/device-plugins"
DEFAULT_POD_RESOURCES_SOCKET = "/var/lib/kubelet/pod-resources/kubelet.sock"
# kubelet dials a registering plugin with a 10 s timeout; tests want failures sooner
DIAL_TIMEOUT = 5.0

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


def extended_resource_problem(name: str) -> str | None:
    """Why `name` is not an extended resource name the kubelet accepts, or None."""
    prefix, sep, short = name.partition("/")
    if not sep or "/" in short:
        return "must be <domain>/<name>"
    if prefix == "kubernetes.io" or prefix.endswith(".kubernetes.io"):
        return "the kubernetes.io namespace is reserved"
    if len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix):
        return f"domain {prefix!r} is not a DNS subdomain"
    if len(short) > 63 or not _QUALIFIED_NAME.match(short):
        return f"name {short!r} is not a qualified name (<= 63 characters, alphanumeric at both ends)"
    if len("requests." + name) > 316:
        return "too long"
    return None


class KubeletError(Exception):
    """The double refused a request, or a plugin call failed."""


class AllocationError(KubeletError):
    """Admission failed: the double refused the devices, or the plugin's Allocate failed.

    `code` is the gRPC status of a failed plugin call (None when the double refused, as the
    kubelet's device manager would before calling the plugin).
    """

    def __init__(
        self,
        message: str,
        *,
        resource: str,
        device_ids: Sequence[str] = (),
        code: grpc.StatusCode | None = None,
        details: str = "",
    ) -> None:
        super().__init__(message)
        self.resource = resource
        self.device_ids = list(device_ids)
        self.code = code
        self.details = details


@dataclass(frozen=True)
class Registration:
    """One `Register` call, accepted or not."""

    resource_name: str
    endpoint: str
    version: str
    pre_start_required: bool
    get_preferred_allocation_available: bool
    accepted: bool
    error: str | None
    at: float  # time.monotonic()


@dataclass
class Allocation:
    """One successful `Allocate` (one pod admission for one container, or a test's batch)."""

    resource: str
    container_requests: list[list[str]]
    response: Any  # v1beta1.AllocateResponse
    pod: tuple[str, str] | None  # (namespace, name)
    preferred: list[str] | None = None  # what GetPreferredAllocation suggested, if asked


@dataclass
class _Plugin:
    """The kubelet's connection to one registered plugin endpoint."""

    resource: str
    path: str
    channel: grpc.aio.Channel
    stub: dp_grpc.DevicePluginStub
    options: Any
    devices: dict[str, str] = field(default_factory=dict)
    connected: bool = True
    updates: int = 0
    follower: asyncio.Task[None] | None = None


@dataclass
class _PodContainer:
    name: str
    devices: dict[str, list[str]]  # resource -> device ids


class KubeletDouble:
    """Kubelet device manager + pod-resources server for tests (see the module docstring)."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        pod_resources_socket: str | os.PathLike[str] | None = None,
        *,
        dial_timeout: float = DIAL_TIMEOUT,
    ) -> None:
        self.directory = Path(directory)
        self.socket_path = self.directory / KUBELET_SOCKET
        self.pod_resources_socket = Path(pod_resources_socket) if pod_resources_socket else None
        self.dial_timeout = dial_timeout
        self.registrations: list[Registration] = []
        self.allocations: list[Allocation] = []
        self.admission_errors: list[AllocationError] = []
        self.starts = 0
        self._plugins: dict[str, _Plugin] = {}
        # resource -> device id -> (namespace, pod) holding it; survives restarts (checkpoint)
        self._allocated: dict[str, dict[str, tuple[str, str] | None]] = {}
        self._pods: dict[tuple[str, str], dict[str, _PodContainer]] = {}
        self._server: grpc.aio.Server | None = None
        self._pr_server: grpc.aio.Server | None = None
        self._changed = asyncio.Event()

    # --- lifecycle ------------------------------------------------------------------------
    async def __aenter__(self) -> KubeletDouble:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Remove every socket in the directory (as a starting kubelet does), then serve."""
        if self._server is not None:
            raise KubeletError("kubelet double already running")
        self.directory.mkdir(parents=True, exist_ok=True)
        self._remove_sockets()
        server = grpc.aio.server()
        dp_grpc.add_RegistrationServicer_to_server(_RegistrationService(self), server)
        server.add_insecure_port(f"unix://{self.socket_path}")
        await server.start()
        self._server = server
        if self.pod_resources_socket is not None:
            self.pod_resources_socket.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                self.pod_resources_socket.unlink()
            pr_server = grpc.aio.server()
            pr_grpc.add_PodResourcesListerServicer_to_server(_PodResourcesService(self), pr_server)
            pr_server.add_insecure_port(f"unix://{self.pod_resources_socket}")
            await pr_server.start()
            self._pr_server = pr_server
        self.starts += 1
        self._notify()

    async def stop(self) -> None:
        """Stop serving and drop every plugin connection (allocations and pods are kept)."""
        for server in (self._server, self._pr_server):
            if server is not None:
                await server.stop(0)
        self._server = self._pr_server = None
        plugins, self._plugins = list(self._plugins.values()), {}
        for plugin in plugins:
            await self._close_plugin(plugin)
        self._notify()

    async def restart(self) -> None:
        """A kubelet restart: stop, delete every socket in the directory, serve again."""
        await self.stop()
        await self.start()

    @property
    def running(self) -> bool:
        return self._server is not None

    def _remove_sockets(self) -> None:
        for entry in self.directory.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if stat.S_ISSOCK(entry.lstat().st_mode):
                    entry.unlink()

    # --- observation ----------------------------------------------------------------------
    def resources(self) -> list[str]:
        """Resources with a registered plugin (connected or not), sorted."""
        return sorted(self._plugins)

    def devices(self, resource: str) -> dict[str, str]:
        """Device id -> health of a resource ({} when unknown)."""
        plugin = self._plugins.get(resource)
        return dict(plugin.devices) if plugin else {}

    def healthy(self, resource: str) -> list[str]:
        return sorted(d for d, h in self.devices(resource).items() if h == HEALTHY)

    def connected(self, resource: str) -> bool:
        plugin = self._plugins.get(resource)
        return plugin is not None and plugin.connected

    def endpoint(self, resource: str) -> str | None:
        plugin = self._plugins.get(resource)
        return plugin.path if plugin else None

    def options(self, resource: str) -> Any:
        plugin = self._plugins.get(resource)
        return plugin.options if plugin else None

    def updates(self, resource: str) -> int:
        """How many ListAndWatch messages the current connection has received."""
        plugin = self._plugins.get(resource)
        return plugin.updates if plugin else 0

    def accepted(self, resource: str) -> list[Registration]:
        return [r for r in self.registrations if r.accepted and r.resource_name == resource]

    def allocated(self, resource: str) -> dict[str, tuple[str, str] | None]:
        """Device id -> (namespace, pod) for devices the kubelet has handed out."""
        return dict(self._allocated.get(resource, {}))

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, predicate: Callable[[], Any], within: float = 10.0) -> Any:
        """Wait until `predicate()` is truthy (re-checked on every state change); returns it.

        TimeoutError after `within` seconds.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            value = predicate()
            if value:
                return value
            remaining = deadline - loop.time()
            if remaining <= 0:
                summary = {r: (p.connected, p.updates, p.devices) for r, p in self._plugins.items()}
                regs = [(r.resource_name, r.endpoint, r.accepted, r.error) for r in self.registrations[-6:]]
                raise TimeoutError(
                    f"kubelet double: condition not met within {within}s; "
                    f"plugins (connected, updates, devices): {summary}; last registrations: {regs}"
                )
            event = self._changed
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await event.wait()

    async def wait_for_devices(
        self, resource: str, expected: Mapping[str, str], within: float = 10.0
    ) -> None:
        """Until the connected plugin of `resource` lists exactly `expected` (id -> health)."""
        expected = dict(expected)
        await self.wait_for(lambda: self.connected(resource) and self.devices(resource) == expected, within)

    async def wait_for_registration(
        self, resource: str, count: int = 1, within: float = 10.0
    ) -> Registration:
        """Until the `count`-th accepted registration of `resource` has a live stream."""
        await self.wait_for(
            lambda: (
                len(self.accepted(resource)) >= count
                and self.connected(resource)
                and self.updates(resource) > 0
            ),
            within,
        )
        return self.accepted(resource)[-1]

    # --- registration ---------------------------------------------------------------------
    async def _register(self, request: Any) -> str | None:
        """Handle Register; returns an error message, or None when the plugin was connected."""
        options = request.options
        error = self._registration_problem(request)
        if error is None:
            error = await self._connect(request)
        self.registrations.append(
            Registration(
                resource_name=request.resource_name,
                endpoint=request.endpoint,
                version=request.version,
                pre_start_required=options.pre_start_required,
                get_preferred_allocation_available=options.get_preferred_allocation_available,
                accepted=error is None,
                error=error,
                at=time.monotonic(),
            )
        )
        self._notify()
        return error

    def _registration_problem(self, request: Any) -> str | None:
        if request.version not in SUPPORTED_VERSIONS:
            return (
                f"requested API version {request.version!r} is not supported by kubelet. "
                f"Supported versions are {list(SUPPORTED_VERSIONS)}"
            )
        problem = extended_resource_problem(request.resource_name)
        if problem:
            return f"the ResourceName {request.resource_name!r} is invalid: {problem}"
        endpoint = request.endpoint
        if not endpoint or "/" in endpoint or endpoint in (".", ".."):
            return f"endpoint {endpoint!r} must be a socket file name in {self.directory}"
        try:
            mode = (self.directory / endpoint).lstat().st_mode
        except FileNotFoundError:
            return f"endpoint {endpoint!r}: no such socket in {self.directory}"
        if not stat.S_ISSOCK(mode):
            return f"endpoint {endpoint!r} is not a socket"
        return None

    async def _connect(self, request: Any) -> str | None:
        path = str(self.directory / request.endpoint)
        channel = grpc.aio.insecure_channel(f"unix://{path}")
        stub = dp_grpc.DevicePluginStub(channel)
        try:
            async with asyncio.timeout(self.dial_timeout):
                await channel.channel_ready()
            options = await stub.GetDevicePluginOptions(dp.Empty(), timeout=self.dial_timeout)
        except (TimeoutError, grpc.aio.AioRpcError) as exc:
            await channel.close()
            return f"failed to dial device plugin {request.resource_name} at {path}: {exc}"
        plugin = _Plugin(
            resource=request.resource_name, path=path, channel=channel, stub=stub, options=options
        )
        old = self._plugins.get(plugin.resource)
        self._plugins[plugin.resource] = plugin
        if old is not None:
            await self._close_plugin(old)
        plugin.follower = asyncio.create_task(self._follow(plugin), name=f"kubelet-law-{plugin.resource}")
        return None

    async def _follow(self, plugin: _Plugin) -> None:
        """Read ListAndWatch until the stream ends; then the resource turns Unhealthy."""
        try:
            async for response in plugin.stub.ListAndWatch(dp.Empty()):
                plugin.devices = {d.ID: d.health for d in response.devices}
                plugin.updates += 1
                self._notify()
        except grpc.aio.AioRpcError as exc:
            log.info("ListAndWatch of %s ended: %s", plugin.resource, exc.code())
        except asyncio.CancelledError:
            pass
        finally:
            plugin.connected = False
            plugin.devices = dict.fromkeys(plugin.devices, UNHEALTHY)
            self._notify()

    async def _close_plugin(self, plugin: _Plugin) -> None:
        if plugin.follower is not None:
            plugin.follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await plugin.follower
        await plugin.channel.close()

    # --- admission ------------------------------------------------------------------------
    def _plugin_for(self, resource: str) -> _Plugin:
        plugin = self._plugins.get(resource)
        if plugin is None or not plugin.connected:
            raise AllocationError(f"no device plugin connected for {resource}", resource=resource)
        return plugin

    def _available(self, resource: str, pod: tuple[str, str] | None) -> list[str]:
        plugin = self._plugin_for(resource)
        held = self._allocated.get(resource, {})
        return sorted(
            d
            for d, h in plugin.devices.items()
            if h == HEALTHY and (d not in held or (pod is not None and held[d] == pod))
        )

    async def preferred_allocation(
        self, resource: str, available: Sequence[str], size: int, must_include: Sequence[str] = ()
    ) -> list[str]:
        """Call the plugin's GetPreferredAllocation for one container."""
        plugin = self._plugin_for(resource)
        request = dp.PreferredAllocationRequest(
            container_requests=[
                dp.ContainerPreferredAllocationRequest(
                    available_deviceIDs=list(available),
                    must_include_deviceIDs=list(must_include),
                    allocation_size=size,
                )
            ]
        )
        response = await plugin.stub.GetPreferredAllocation(request, timeout=10)
        return list(response.container_responses[0].deviceIDs) if response.container_responses else []

    async def allocate(
        self,
        resource: str,
        device_ids: Sequence[str] | None = None,
        *,
        count: int | None = None,
        container_requests: Sequence[Sequence[str]] | None = None,
        pod: str | None = None,
        namespace: str = "default",
        container: str = "broker",
    ) -> Any:
        """Admit devices of `resource` like the kubelet does; returns the AllocateResponse.

        Give exactly one of: `device_ids` (the ids the kubelet picked), `count` (let the
        double pick like the kubelet: preferred allocation first, then the lowest free ids),
        or `container_requests` (several containers in one Allocate call). The ids must be
        Healthy and not allocated to another pod, else AllocationError before the plugin is
        called. With `pod`, the pod is also declared to the pod-resources server.
        """
        if sum(x is not None for x in (device_ids, count, container_requests)) != 1:
            raise ValueError("give exactly one of device_ids, count, container_requests")
        pod_key = (namespace, pod) if pod is not None else None
        preferred: list[str] | None = None
        try:
            plugin = self._plugin_for(resource)
            if count is not None:
                available = self._available(resource, pod_key)
                if count > len(available):
                    raise AllocationError(
                        f"requested number of devices unavailable for {resource}. "
                        f"Requested: {count}, Available: {len(available)}",
                        resource=resource,
                    )
                chosen: list[str] = []
                if plugin.options.get_preferred_allocation_available:
                    preferred = await self.preferred_allocation(resource, available, count)
                    chosen = [d for d in preferred if d in available][:count]
                chosen += [d for d in available if d not in chosen][: count - len(chosen)]
                requests = [chosen]
            elif device_ids is not None:
                requests = [list(device_ids)]
            else:
                requests = [list(ids) for ids in container_requests or []]
            self._check_offerable(resource, requests, pod_key)
            try:
                response = await plugin.stub.Allocate(
                    dp.AllocateRequest(
                        container_requests=[dp.ContainerAllocateRequest(devices_ids=ids) for ids in requests]
                    ),
                    timeout=30,
                )
            except grpc.aio.AioRpcError as exc:
                raise AllocationError(
                    f"Allocate failed for {resource} {requests}: {exc.code().name} {exc.details()}",
                    resource=resource,
                    device_ids=[d for ids in requests for d in ids],
                    code=exc.code(),
                    details=exc.details() or "",
                ) from None
        except AllocationError as exc:
            self.admission_errors.append(exc)
            self._notify()
            raise
        holder = pod_key
        held = self._allocated.setdefault(resource, {})
        for ids in requests:
            for d in ids:
                held[d] = holder
        self.allocations.append(Allocation(resource, requests, response, pod_key, preferred))
        if pod is not None:
            for k, ids in enumerate(requests):
                name = container if len(requests) == 1 else f"{container}-{k}"
                self.add_pod(pod, namespace, name, resource, ids)
        self._notify()
        return response

    def _check_offerable(self, resource: str, requests: list[list[str]], pod: tuple[str, str] | None) -> None:
        plugin = self._plugin_for(resource)
        held = self._allocated.get(resource, {})
        for ids in requests:
            for d in ids:
                health = plugin.devices.get(d)
                if health is None:
                    raise AllocationError(
                        f"unknown device {d!r} for {resource}", resource=resource, device_ids=[d]
                    )
                if health != HEALTHY:
                    raise AllocationError(
                        f"device {d!r} of {resource} is {health}", resource=resource, device_ids=[d]
                    )
                if d in held and (pod is None or held[d] != pod):
                    raise AllocationError(
                        f"device {d!r} of {resource} is allocated to {held[d]}",
                        resource=resource,
                        device_ids=[d],
                    )

    def release(self, resource: str, device_ids: Sequence[str]) -> None:
        """Forget allocations of devices not tied to a pod (pods: use remove_pod)."""
        held = self._allocated.get(resource, {})
        for d in device_ids:
            held.pop(d, None)
        self._notify()

    # --- pod resources --------------------------------------------------------------------
    def add_pod(
        self, name: str, namespace: str, container: str, resource: str, device_ids: Sequence[str]
    ) -> None:
        """Declare that a container of a running pod uses `device_ids` of `resource`."""
        containers = self._pods.setdefault((namespace, name), {})
        c = containers.setdefault(container, _PodContainer(container, {}))
        ids = c.devices.setdefault(resource, [])
        ids.extend(d for d in device_ids if d not in ids)
        held = self._allocated.setdefault(resource, {})
        for d in device_ids:
            held[d] = (namespace, name)
        self._notify()

    def remove_pod(self, name: str, namespace: str = "default") -> None:
        """The pod ended: it leaves pod-resources and its devices may be offered again."""
        self._pods.pop((namespace, name), None)
        for held in self._allocated.values():
            for d in [d for d, p in held.items() if p == (namespace, name)]:
                del held[d]
        self._notify()

    def pods(self) -> dict[tuple[str, str], dict[str, dict[str, list[str]]]]:
        return {
            key: {c.name: {r: list(ids) for r, ids in c.devices.items()} for c in cs.values()}
            for key, cs in self._pods.items()
        }

    def _pod_message(self, key: tuple[str, str]) -> Any:
        namespace, name = key
        return pr.PodResources(
            name=name,
            namespace=namespace,
            containers=[
                pr.ContainerResources(
                    name=c.name,
                    devices=[
                        pr.ContainerDevices(resource_name=r, device_ids=ids) for r, ids in c.devices.items()
                    ],
                )
                for c in self._pods[key].values()
            ],
        )

    # --- state for the control API --------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "starts": self.starts,
            "resources": {
                r: {
                    "devices": p.devices,
                    "connected": p.connected,
                    "endpoint": os.path.basename(p.path),
                    "getPreferredAllocationAvailable": p.options.get_preferred_allocation_available,
                }
                for r, p in self._plugins.items()
            },
            "registrations": [
                {
                    "resourceName": r.resource_name,
                    "endpoint": r.endpoint,
                    "accepted": r.accepted,
                    "error": r.error,
                }
                for r in self.registrations
            ],
            "allocated": {
                r: {d: list(p) if p else None for d, p in held.items()} for r, held in self._allocated.items()
            },
            "pods": [{"namespace": ns, "name": n, "containers": cs} for (ns, n), cs in self.pods().items()],
            "admissionErrors": [str(e) for e in self.admission_errors],
        }


class _RegistrationService(dp_grpc.RegistrationServicer):
    def __init__(self, kubelet: KubeletDouble) -> None:
        self.kubelet = kubelet

    async def Register(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        error = await self.kubelet._register(request)
        if error is not None:
            log.info("registration of %s refused: %s", request.resource_name, error)
            await context.abort(grpc.StatusCode.UNKNOWN, error)
        return dp.Empty()


class _PodResourcesService(pr_grpc.PodResourcesListerServicer):
    def __init__(self, kubelet: KubeletDouble) -> None:
        self.kubelet = kubelet

    async def List(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return pr.ListPodResourcesResponse(
            pod_resources=[self.kubelet._pod_message(k) for k in self.kubelet._pods]
        )

    async def Get(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        key = (request.pod_namespace, request.pod_name)
        if key not in self.kubelet._pods:
            await context.abort(
                grpc.StatusCode.UNKNOWN,
                f"pod {request.pod_name} in namespace {request.pod_namespace} not found",
            )
        return pr.GetPodResourcesResponse(pod_resources=self.kubelet._pod_message(key))

    async def GetAllocatableResources(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return pr.AllocatableResourcesResponse(
            devices=[
                pr.ContainerDevices(resource_name=r, device_ids=self.kubelet.healthy(r))
                for r in self.kubelet.resources()
            ]
        )


# --- standalone process -------------------------------------------------------------------


async def _control_app(kubelet: KubeletDouble) -> Any:
    from aiohttp import web
    from google.protobuf.json_format import MessageToDict

    async def state(_: web.Request) -> web.Response:
        return web.json_response(kubelet.state())

    async def allocate(request: web.Request) -> web.Response:
        body = await request.json()
        try:
            response = await kubelet.allocate(
                body["resource"],
                body.get("deviceIds"),
                count=body.get("count"),
                container_requests=body.get("containerRequests"),
                pod=body.get("pod"),
                namespace=body.get("namespace", "default"),
                container=body.get("container", "broker"),
            )
        except AllocationError as exc:
            return web.json_response(
                {"error": str(exc), "code": exc.code.name if exc.code else None}, status=409
            )
        except (KeyError, ValueError, TypeError) as exc:
            return web.json_response({"error": f"bad request: {exc!r}"}, status=400)
        return web.json_response(MessageToDict(response))

    async def add_pod(request: web.Request) -> web.Response:
        b = await request.json()
        try:
            kubelet.add_pod(
                b["name"],
                b.get("namespace", "default"),
                b.get("container", "broker"),
                b["resource"],
                b["deviceIds"],
            )
        except KeyError as exc:
            return web.json_response({"error": f"bad request: missing {exc}"}, status=400)
        return web.json_response({})

    async def remove_pod(request: web.Request) -> web.Response:
        kubelet.remove_pod(request.match_info["name"], request.match_info["namespace"])
        return web.json_response({})

    async def restart(_: web.Request) -> web.Response:
        await kubelet.restart()
        return web.json_response({"starts": kubelet.starts})

    app = web.Application()
    app.add_routes(
        [
            web.get("/state", state),
            web.post("/allocate", allocate),
            web.post("/pods", add_pod),
            web.delete("/pods/{namespace}/{name}", remove_pod),
            web.post("/restart", restart),
        ]
    )
    return app


async def _serve(args: argparse.Namespace) -> None:
    kubelet = KubeletDouble(args.dir, args.pod_resources_socket)
    await kubelet.start()
    runner = None
    if args.control_socket:
        from aiohttp import web

        runner = web.AppRunner(await _control_app(kubelet))
        await runner.setup()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(args.control_socket)
        await web.UnixSite(runner, args.control_socket).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"kubelet double serving {kubelet.socket_path}", flush=True)
    await stop.wait()
    if runner is not None:
        await runner.cleanup()
    await kubelet.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m akri.testing.kubelet", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--dir", required=True, help="device-plugin directory (kubelet.sock is served there)")
    parser.add_argument(
        "--pod-resources-socket", default=None, help="serve v1.PodResourcesLister on this socket"
    )
    parser.add_argument(
        "--control-socket", default=None, help="serve the JSON control API on this unix socket"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import uvloop

    uvloop.run(_serve(args))


if __name__ == "__main__":
    main()
