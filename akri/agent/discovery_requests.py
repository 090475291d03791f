"""Discovery requests: one per Configuration, asking every endpoint of its handler for devices.

A request resolves the Configuration's discovery properties once, calls Discover on every
registered endpoint with the handler's name (embedded handlers in-process, standalone ones over
gRPC) and keeps the latest complete list per endpoint. Its `snapshot()` aggregates them
(deduplicated by CDI name, first endpoint wins) and says how far the lists can be trusted:

* `settled` is False right after the request (re)starts, until every endpoint has sent its
  first list (or `first_list_timeout` passed; with no endpoint at all, until `hold_seconds`
  passed). Nothing may be removed before that: a restarting agent or handler must not delete
  Instances whose devices are still there (upstream does, spec §4.6).
* `held` names devices whose endpoint is restarting or unreachable: its last list is trusted
  for `hold_seconds` more, so the Instances stay while the handler comes back.

An endpoint whose stream breaks and that cannot be reached again is removed from the registry
(upstream: "marked closed"); when the handler registers again it is used again. Any change of
the snapshot calls `notify(key)`, including changes that only the passing of time causes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from grpclib import GRPCError, Status

from akri._proto import discovery_grpc as pb_grpc
from akri._proto import discovery_pb2 as pb
from akri.agent.properties import resolve_properties
from akri.agent.registration import EndpointKind, HandlerEndpoint, HandlerRegistry, RegistryEvent
from akri.discovery.device import Device
from akri.discovery.handler import InvalidDetails
from akri.discovery.stream import device_lists, devices_from_response, properties_to_proto
from akri.grpc_client import channel, reachable
from akri.kube.api import Kube
from akri.model import naming
from akri.model.configuration import Configuration
from akri.retry import Backoff

log = logging.getLogger(__name__)

ConfigKey = tuple[str, str]  # (namespace, name)

#: restart delays of a broken stream to an endpoint that is still reachable, and of a stream
#: task that crashed (a bug): 0.5 s, 1 s, 2 s ... 30 s
STREAM_BACKOFF = Backoff(initial=0.5, factor=2.0, maximum=30.0, jitter=0.5)


@dataclass(frozen=True, slots=True)
class DiscoveredDevice:
    """A device as one node sees it, with the names it gets (spec §2)."""

    device: Device
    shared: bool
    instance_name: str
    cdi_name: str


@dataclass(frozen=True)
class DiscoverySnapshot:
    devices: tuple[DiscoveredDevice, ...] = ()
    #: Instance names that must not be removed now (their endpoint is restarting or away)
    held: frozenset[str] = frozenset()
    #: False while endpoints have yet to send their first list: remove nothing
    settled: bool = False
    live_endpoints: int = 0
    #: handler errors such as invalid discovery details, for logs and status
    errors: tuple[str, ...] = ()

    def by_name(self) -> dict[str, DiscoveredDevice]:
        return {d.instance_name: d for d in self.devices}


class DiscoveryObserver(Protocol):
    """Hears how handlers answer (the agent's metrics, spec §4.12)."""

    def discovery_response(self, configuration: str, handler: str, first_after: float | None) -> None:
        """A device list arrived; `first_after` = seconds since the stream opened, for its first list."""

    def discovery_failure(self, configuration: str, handler: str) -> None:
        """A Discover stream failed (error, rejected details, unreachable endpoint)."""


@dataclass(frozen=True)
class RequestTimings:
    first_list_timeout: float = 30.0
    hold_seconds: float = 300.0
    reconnect_timeout: float = 3.0
    stream_backoff: Backoff = STREAM_BACKOFF


@dataclass(eq=False)
class _EndpointStream:
    ep: HandlerEndpoint
    started_at: float
    devices: list[Device] = field(default_factory=list)
    fresh: bool = False  # a list arrived on the current stream
    awaiting_first: bool = True  # registered (again) and no list yet: the request waits for it
    stale_since: float | None = None  # when the last list stopped being current
    dead: bool = False  # removed from the registry; its list is held for a while
    failed: str | None = None  # the handler rejected the request (invalid details)
    task: asyncio.Task[None] | None = None
    opened_at: float = 0.0  # when the current Discover call started (response-time metric)
    answered: bool = False  # the current Discover call has sent a list
    crashes: int = 0  # stream tasks in a row that died of a bug (reset by a list): the restart back-off
    last_crash: str | None = None  # what the previous crash was, so a repeat is logged in one line


def discovery_fingerprint(config: Configuration) -> tuple[Any, ...]:
    """What a request depends on; when it changes the request is restarted (upstream freezes it)."""
    dh = config.spec.discovery_handler
    props = tuple(repr(p) for p in dh.discovery_properties or ())
    return (config.uid, dh.name, dh.discovery_details, props)


class DiscoveryRequest:
    """Discovery for one Configuration on this node. Create through `DiscoveryRequests.ensure`."""

    def __init__(
        self,
        key: ConfigKey,
        handler_name: str,
        details: str,
        properties: Mapping[str, bytes | None],
        *,
        node_name: str,
        registry: HandlerRegistry,
        notify: Callable[[ConfigKey], None],
        timings: RequestTimings,
        fingerprint: tuple[Any, ...] = (),
        observer: DiscoveryObserver | None = None,
    ) -> None:
        self.key = key
        self.handler_name = handler_name
        self.details = details
        self.properties = dict(properties)
        self.node_name = node_name
        self.registry = registry
        self.notify = notify
        self.timings = timings
        self.fingerprint = fingerprint
        self.observer = observer
        self._loop = asyncio.get_running_loop()
        self.created_at = self._loop.time()
        self._streams: dict[str, _EndpointStream] = {}
        self._last: DiscoverySnapshot | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def configuration_name(self) -> str:
        return self.key[1]

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        for ep in self.registry.endpoints(self.handler_name):
            self._start_stream(ep)
        self._changed()

    async def stop(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        tasks = [st.task for st in self._streams.values() if st.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def endpoint_event(self, event: RegistryEvent, ep: HandlerEndpoint) -> None:
        if self._closed or ep.name != self.handler_name:
            return
        st = self._streams.get(ep.uid)
        if event is RegistryEvent.REMOVED:
            if st is not None and st.ep is ep and not st.dead:
                self._cancel(st)
                self._mark_stale(st)
                st.dead = True
                log.info(
                    "discovery %s/%s: endpoint %s is gone; keeping its %d device(s) for %.0f s",
                    *self.key,
                    ep.uid,
                    len(st.devices),
                    self.timings.hold_seconds,
                )
                self._changed()
            return
        if st is None or st.dead:
            self._start_stream(ep)
        elif not st.ep.same_registration(ep) or st.task is None or st.task.done() or not st.fresh:
            log.info(
                "discovery %s/%s: endpoint %s registered again; restarting its stream", *self.key, ep.uid
            )
            self._start_stream(ep)
        else:
            st.ep = ep  # same handler, stream healthy: keep it, but track the current registration
        self._changed()

    def _start_stream(self, ep: HandlerEndpoint) -> None:
        now = self._loop.time()
        st = self._streams.get(ep.uid)
        if st is None:
            st = self._streams[ep.uid] = _EndpointStream(ep, started_at=now)
        else:
            self._cancel(st)
            self._mark_stale(st)
            st.ep, st.dead, st.failed, st.started_at, st.awaiting_first = ep, False, None, now, True
        st.task = asyncio.create_task(self._run(st), name=f"discover {self.key[0]}/{self.key[1]} {ep.uid}")
        st.task.add_done_callback(lambda task: self._stream_task_done(st, task))

    def _stream_task_done(self, st: _EndpointStream, task: asyncio.Task[None]) -> None:
        """Supervise a stream task: `_run` returns only on purpose (details rejected, endpoint
        dropped); one that died of a bug is logged and started again after a back-off that grows
        with each crash in a row (a bug that strikes every time must not spin), so one
        endpoint's devices never silently freeze."""
        if task.cancelled() or self._closed or st.task is not task:
            return
        exc = task.exception()
        if exc is None:
            return
        delay = self.timings.stream_backoff.delay(st.crashes)
        st.crashes += 1
        try:
            what = f"{type(exc).__name__}: {exc}"
            if st.crashes == 1 or what != st.last_crash:  # a new failure: the whole traceback
                log.error("discovery %s/%s: stream of endpoint %s crashed; restarting it in %.2f s",
                          *self.key, st.ep.uid, delay, exc_info=exc)
            else:  # the same bug again: one line per back-off step
                log.error("discovery %s/%s: stream of endpoint %s crashed again (%d in a row: %s); "
                          "restarting it in %.2f s", *self.key, st.ep.uid, st.crashes, what, delay)
            st.last_crash = what
            self._mark_stale(st)
            self._changed()
        except Exception:  # whatever happens here, the restart below is still scheduled
            log.exception("discovery %s/%s: handling the crash of endpoint %s's stream failed",
                          *self.key, st.ep.uid)
        finally:
            self._loop.call_later(delay, self._restart_crashed, st, task)

    def _restart_crashed(self, st: _EndpointStream, task: asyncio.Task[None]) -> None:
        if not self._closed and st.task is task and not st.dead:
            self._start_stream(st.ep)

    @staticmethod
    def _cancel(st: _EndpointStream) -> None:
        if st.task is not None and st.task is not asyncio.current_task() and not st.task.done():
            st.task.cancel()

    # --- streams ---------------------------------------------------------------------------

    async def _run(self, st: _EndpointStream) -> None:
        failures = 0
        while True:
            st.opened_at, st.answered = self._loop.time(), False
            try:
                if st.ep.kind is EndpointKind.EMBEDDED:
                    await self._run_embedded(st)
                else:
                    await self._run_grpc(st)
                reason = "stream ended"
            except asyncio.CancelledError:
                raise
            except InvalidDetails as exc:
                self._observe_failure()
                self._failed(st, str(exc))
                return
            except GRPCError as exc:
                self._observe_failure()
                if exc.status == Status.INVALID_ARGUMENT:
                    self._failed(st, exc.message or "invalid discovery details")
                    return
                reason = f"{exc.status.name}: {exc.message}"
            except Exception as exc:
                self._observe_failure()
                reason = f"{type(exc).__name__}: {exc}"
                log.debug("discovery stream error", exc_info=True)
            if st.fresh:
                failures = 0
            self._mark_stale(st)
            self._changed()
            if st.ep.kind is not EndpointKind.EMBEDDED and not await self._reachable(st.ep):
                log.warning(
                    "discovery %s/%s: endpoint %s unreachable (%s); dropping it until it registers again",
                    *self.key,
                    st.ep.uid,
                    reason,
                )
                # → endpoint_event(REMOVED) in every request using it; False only when a newer
                # registration replaced this one meanwhile: then keep trying it
                if self.registry.remove(st.ep) or st.dead:
                    return
            delay = self.timings.stream_backoff.delay(failures)
            failures += 1
            log.warning(
                "discovery %s/%s: endpoint %s: %s; restarting in %.1f s", *self.key, st.ep.uid, reason, delay
            )
            await asyncio.sleep(delay)

    async def _run_embedded(self, st: _EndpointStream) -> None:
        assert st.ep.handler is not None
        async for devices in device_lists(st.ep.handler, self.details, self.properties):
            self._update(st, devices)

    async def _run_grpc(self, st: _EndpointStream) -> None:
        assert st.ep.target is not None
        request = pb.DiscoverRequest(
            discovery_details=self.details, discovery_properties=properties_to_proto(self.properties)
        )
        # leaving the block (cancellation included) resets the stream: the handler sees it end
        async with channel(st.ep.target) as ch, pb_grpc.DiscoveryHandlerStub(ch).Discover.open() as call:
            await call.send_message(request, end=True)
            async for response in call:
                self._update(st, devices_from_response(response))

    async def _reachable(self, ep: HandlerEndpoint) -> bool:
        assert ep.target is not None
        return await reachable(ep.target, self.timings.reconnect_timeout)

    def _observe_failure(self) -> None:
        if self.observer is not None:
            self.observer.discovery_failure(self.configuration_name, self.handler_name)

    def _update(self, st: _EndpointStream, devices: list[Device]) -> None:
        if self.observer is not None:
            first_after = None if st.answered else self._loop.time() - st.opened_at
            self.observer.discovery_response(self.configuration_name, self.handler_name, first_after)
        st.answered, st.crashes, st.last_crash = True, 0, None
        st.devices = list(devices)
        st.fresh, st.awaiting_first, st.stale_since, st.failed = True, False, None, None
        self._changed()

    def _failed(self, st: _EndpointStream, message: str) -> None:
        log.error(
            "discovery %s/%s: handler %s rejected the discovery details: %s", *self.key, st.ep.uid, message
        )
        self._mark_stale(st)
        st.failed, st.awaiting_first = message, False
        self._changed()

    def _mark_stale(self, st: _EndpointStream) -> None:
        if st.fresh or st.stale_since is None:
            st.stale_since = self._loop.time()
        st.fresh = False

    # --- aggregation -----------------------------------------------------------------------

    def _names(self, device: Device, shared: bool) -> DiscoveredDevice:
        digest = naming.device_digest(device.id, shared=shared, node=self.node_name)
        name = self.configuration_name
        return DiscoveredDevice(device, shared, f"{name}-{digest}", naming.cdi_name(name, digest))

    def snapshot(self) -> DiscoverySnapshot:
        snap, _ = self._compute(self._loop.time())
        return snap

    def _compute(self, now: float) -> tuple[DiscoverySnapshot, float | None]:
        hold = self.timings.hold_seconds
        devices: dict[str, DiscoveredDevice] = {}
        held: set[str] = set()
        errors: list[str] = []
        pending = False
        live = 0
        deadlines: list[float] = []
        for uid, st in list(self._streams.items()):
            if st.dead and st.stale_since is not None and now - st.stale_since >= hold:
                del self._streams[uid]  # its hold has run out
                continue
            if not st.dead:
                live += 1
            if st.failed:
                errors.append(f"{uid}: {st.failed}")
            if st.fresh:
                for device in st.devices:
                    found = self._names(device, st.ep.shared)
                    devices.setdefault(found.cdi_name, found)
                continue
            if st.stale_since is not None and now - st.stale_since < hold:
                held.update(self._names(d, st.ep.shared).instance_name for d in st.devices)
                deadlines.append(st.stale_since + hold)
            if st.awaiting_first and not st.dead and st.failed is None:
                first_list_due = st.started_at + self.timings.first_list_timeout
                if now < first_list_due:
                    pending = True
                    deadlines.append(first_list_due)
        if live == 0 and now < self.created_at + hold:
            settled = False
            deadlines.append(self.created_at + hold)
        else:
            settled = not pending
        snap = DiscoverySnapshot(tuple(devices.values()), frozenset(held), settled, live, tuple(errors))
        return snap, (min(deadlines) if deadlines else None)

    def _changed(self) -> None:
        if self._closed:
            return
        snap, deadline = self._compute(self._loop.time())
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if deadline is not None:
            # time alone changes the snapshot at `deadline` (a hold or a first-list wait ends)
            self._timer = self._loop.call_at(deadline + 0.01, self._changed)
        if snap != self._last:
            self._last = snap
            self.notify(self.key)


class NoDiscoveryRequest(LookupError):
    pass


class DiscoveryRequests:
    """All discovery requests of this agent, kept in step with the handler registry."""

    def __init__(
        self,
        registry: HandlerRegistry,
        kube: Kube,
        node_name: str,
        notify: Callable[[ConfigKey], None],
        *,
        timings: RequestTimings | None = None,
        observer: DiscoveryObserver | None = None,
    ) -> None:
        self.registry = registry
        self.kube = kube
        self.node_name = node_name
        self.notify = notify
        self.timings = timings or RequestTimings()
        self.observer = observer
        self._requests: dict[ConfigKey, DiscoveryRequest] = {}
        registry.subscribe(self._on_registry)

    def _on_registry(self, event: RegistryEvent, ep: HandlerEndpoint) -> None:
        for request in list(self._requests.values()):
            request.endpoint_event(event, ep)

    def get(self, key: ConfigKey) -> DiscoveryRequest | None:
        return self._requests.get(key)

    def keys(self) -> list[ConfigKey]:
        return list(self._requests)

    async def ensure(self, config: Configuration) -> DiscoveryRequest:
        """The running request for `config`; (re)created when missing or when its discovery
        settings changed. Raises UnsolvableProperty / API errors when properties cannot be read."""
        key = (config.namespace, config.name)
        fingerprint = discovery_fingerprint(config)
        request = self._requests.get(key)
        if request is not None and request.fingerprint == fingerprint:
            return request
        dh = config.spec.discovery_handler
        properties = await resolve_properties(self.kube, dh.discovery_properties)
        if request is not None:
            log.info("discovery settings of %s/%s changed; restarting its discovery", *key)
            await self.terminate(key)
        request = DiscoveryRequest(
            key,
            dh.name,
            dh.discovery_details,
            properties,
            node_name=self.node_name,
            registry=self.registry,
            notify=self.notify,
            timings=self.timings,
            fingerprint=fingerprint,
            observer=self.observer,
        )
        self._requests[key] = request
        if not self.registry.endpoints(dh.name):
            log.info("discovery %s/%s: no %r handler registered yet; waiting for one", *key, dh.name)
        request.start()
        return request

    async def terminate(self, key: ConfigKey) -> None:
        request = self._requests.pop(key, None)
        if request is not None:
            await request.stop()

    async def close(self) -> None:
        for key in list(self._requests):
            await self.terminate(key)


def describe(snapshot: DiscoverySnapshot) -> str:
    state = "settled" if snapshot.settled else "settling"
    return f"{len(snapshot.devices)} device(s), {len(snapshot.held)} held, {state}"
