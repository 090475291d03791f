"""The agent's side of handler registration: a registry of handler endpoints and the
v0.Registration gRPC server on `$DISCOVERY_HANDLERS_DIRECTORY/agent-registration.sock`.

Endpoints are keyed like upstream: `<name>@<endpoint>` for standalone handlers (unix socket or
network) and `embedded-<name>` for handlers running inside the agent. Several endpoints may
share one handler name; every discovery request for that name uses all of them. A handler that
registers again with the same key replaces its entry (it restarted, or noticed the agent did).
An endpoint the agent can no longer reach is removed by the discovery side (`remove`); when the
handler comes back it registers again and is used again.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from grpclib import GRPCError, Status
from grpclib.server import Stream

from akri._proto import discovery_grpc as pb_grpc
from akri._proto import discovery_pb2 as pb
from akri.discovery.handler import DiscoveryHandler
from akri.discovery.registration import REGISTRATION_SOCKET
from akri.grpc_server import GrpcServer
from akri.unix_socket import remove_stale_socket

log = logging.getLogger(__name__)

#: owner and group may connect; never world-writable (any local user could register a handler)
SOCKET_MODE = 0o660


class EndpointKind(enum.Enum):
    EMBEDDED = "embedded"
    UDS = "uds"
    NETWORK = "network"


@dataclass(frozen=True, eq=False)
class HandlerEndpoint:
    """One place a handler of `name` can be asked to Discover."""

    name: str
    uid: str
    kind: EndpointKind
    shared: bool
    #: as registered (socket path or URL); "" for embedded handlers
    endpoint: str = ""
    #: gRPC target (`unix:///path` or `host:port`); None for embedded handlers
    target: str | None = None
    #: the handler object of an embedded handler
    handler: DiscoveryHandler | None = field(default=None, repr=False)

    def same_registration(self, other: HandlerEndpoint) -> bool:
        return (self.uid, self.kind, self.shared, self.target, self.handler) == (
            other.uid,
            other.kind,
            other.shared,
            other.target,
            other.handler,
        )


class InvalidRegistration(ValueError):
    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


def endpoint_from_request(
    req: pb.RegisterDiscoveryHandlerRequest, directory: str | os.PathLike[str] | None = None
) -> HandlerEndpoint:
    """Validate a RegisterDiscoveryHandlerRequest; InvalidRegistration names the bad field.

    With `directory`, a unix-socket endpoint must lie inside it (upstream's rule): the agent
    sends resolved discovery properties (Secret values among them) to the endpoint, so it must
    not be talked into dialling some other socket in its mounts, such as the kubelet's.
    """
    name = req.name.strip()
    if not name:
        raise InvalidRegistration("name", "must not be empty")
    raw = req.endpoint.strip()
    if not raw:
        raise InvalidRegistration("endpoint", "must not be empty")
    uid = f"{req.name}@{req.endpoint}"
    if req.endpoint_type == pb.RegisterDiscoveryHandlerRequest.UDS:
        path = raw.removeprefix("unix://")
        if not path.startswith("/"):
            raise InvalidRegistration(
                "endpoint", f"a unix socket endpoint must be an absolute path, got {raw!r}"
            )
        if directory is not None:
            where = Path(os.path.realpath(directory))
            if Path(os.path.realpath(path)).parent != where:
                raise InvalidRegistration(
                    "endpoint", f"a unix socket endpoint must be a socket in {where}, got {raw!r}"
                )
        return HandlerEndpoint(name, uid, EndpointKind.UDS, req.shared, raw, f"unix://{path}")
    if req.endpoint_type == pb.RegisterDiscoveryHandlerRequest.NETWORK:
        return HandlerEndpoint(name, uid, EndpointKind.NETWORK, req.shared, raw, network_target(raw))
    raise InvalidRegistration("endpoint_type", f"unknown endpoint type {req.endpoint_type}")


def network_target(endpoint: str) -> str:
    """`http://10.0.0.5:10000` (upstream's form) or `10.0.0.5:10000` → gRPC target `10.0.0.5:10000`."""
    text = endpoint if "://" in endpoint else f"http://{endpoint}"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise InvalidRegistration("endpoint", f"not a network address: {endpoint!r} ({exc})") from None
    if parts.scheme not in ("http", "grpc"):
        raise InvalidRegistration(
            "endpoint", f"unsupported scheme {parts.scheme!r} in {endpoint!r} (use http://)"
        )
    if not parts.hostname or port is None:
        raise InvalidRegistration("endpoint", f"expected http://<ip>:<port>, got {endpoint!r}")
    if parts.path not in ("", "/"):
        raise InvalidRegistration("endpoint", f"unexpected path in {endpoint!r}")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{port}"


class RegistryEvent(enum.Enum):
    ADDED = "added"  # a new key
    REPLACED = "replaced"  # same key registered again (the handler restarted or re-registered)
    REMOVED = "removed"


Listener = Callable[[RegistryEvent, HandlerEndpoint], None]


class HandlerRegistry:
    """name → {uid → endpoint}, in registration order, with change listeners."""

    def __init__(self) -> None:
        self._by_name: dict[str, dict[str, HandlerEndpoint]] = {}
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _emit(self, event: RegistryEvent, ep: HandlerEndpoint) -> None:
        for listener in list(self._listeners):
            try:
                listener(event, ep)
            except Exception:  # one broken listener must not break registration
                log.exception("registry listener failed on %s %s", event.value, ep.uid)

    def register(self, ep: HandlerEndpoint) -> RegistryEvent:
        endpoints = self._by_name.setdefault(ep.name, {})
        event = RegistryEvent.REPLACED if ep.uid in endpoints else RegistryEvent.ADDED
        endpoints[ep.uid] = ep
        log.info("discovery handler %s %s (%s, shared=%s)", ep.uid, event.value, ep.kind.value, ep.shared)
        self._emit(event, ep)
        return event

    def register_embedded(self, handler: DiscoveryHandler) -> HandlerEndpoint:
        ep = HandlerEndpoint(
            handler.name,
            f"embedded-{handler.name}",
            EndpointKind.EMBEDDED,
            bool(handler.shared),
            handler=handler,
        )
        self.register(ep)
        return ep

    def remove(self, ep: HandlerEndpoint) -> bool:
        """Drop `ep` if it is still the registered entry for its key (not a newer re-registration)."""
        endpoints = self._by_name.get(ep.name, {})
        if endpoints.get(ep.uid) is not ep:
            return False
        del endpoints[ep.uid]
        if not endpoints:
            del self._by_name[ep.name]
        log.info("discovery handler %s removed", ep.uid)
        self._emit(RegistryEvent.REMOVED, ep)
        return True

    def endpoints(self, name: str) -> list[HandlerEndpoint]:
        return list(self._by_name.get(name, {}).values())

    def get(self, name: str, uid: str) -> HandlerEndpoint | None:
        return self._by_name.get(name, {}).get(uid)

    def is_current(self, ep: HandlerEndpoint) -> bool:
        return self.get(ep.name, ep.uid) is ep

    def names(self) -> list[str]:
        return list(self._by_name)


class RegistrationService(pb_grpc.RegistrationBase):
    def __init__(self, registry: HandlerRegistry, directory: str | os.PathLike[str] | None = None) -> None:
        self.registry = registry
        self.directory = directory

    async def RegisterDiscoveryHandler(
        self, stream: Stream[pb.RegisterDiscoveryHandlerRequest, pb.Empty]
    ) -> None:
        request = await stream.recv_message()
        assert request is not None
        try:
            ep = endpoint_from_request(request, self.directory)
        except InvalidRegistration as exc:
            log.warning("rejected handler registration %r: %s", request.name, exc)
            raise GRPCError(Status.INVALID_ARGUMENT, str(exc)) from None
        self.registry.register(ep)
        await stream.send_message(pb.Empty())


class RegistrationServer:
    """Serves v0.Registration on `<directory>/agent-registration.sock`. Start inside the running loop."""

    def __init__(self, registry: HandlerRegistry, directory: str | os.PathLike[str]) -> None:
        self.registry = registry
        self.directory = Path(directory)
        self.socket_path = self.directory / REGISTRATION_SOCKET
        self._server: GrpcServer | None = None

    async def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        remove_stale_socket(self.socket_path)
        server = GrpcServer([RegistrationService(self.registry, self.directory)])
        await server.start_unix(self.socket_path, SOCKET_MODE)
        self._server = server
        log.info("registration server listening on %s", self.socket_path)

    async def stop(self, grace: float | None = 1.0) -> None:
        """Stop serving and remove the socket; calls in progress are cancelled and get `grace`
        seconds (None: no limit) to finish."""
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
