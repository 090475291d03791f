"""Discovery requests: property resolution (§4.4), embedded and standalone handlers over real gRPC,
endpoint death and return, aggregation, and the "settled" rule that protects Instances."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import signal
from pathlib import Path

import grpc
import pytest
from e2e.procs import spawn_debug_echo_handler, until

from akri._proto import discovery_pb2 as pb
from akri._proto import discovery_pb2_grpc as pb_grpc
from akri.agent.discovery_requests import DiscoveryRequests, RequestTimings
from akri.agent.properties import UnsolvableProperty, resolve_properties
from akri.agent.registration import HandlerRegistry, RegistrationServer
from akri.discovery.handlers.debug_echo import DebugEchoHandler
from akri.discovery.registration import Registration, register_once
from akri.kube import Kube
from akri.model.configuration import Configuration
from akri.retry import Backoff
from akri.testing.apiserver import ApiServer, write_kubeconfig

pytestmark = pytest.mark.slow

DETAILS = "descriptions:\n  - bar0\n  - bar1\n"


def configuration(
    name: str = "akri-debug-echo-foo",
    handler: str = "debugEcho",
    details: str = DETAILS,
    properties: list | None = None,
    uid: str = "uid-1",
) -> Configuration:
    dh: dict = {"name": handler, "discoveryDetails": details}
    if properties is not None:
        dh["discoveryProperties"] = properties
    return Configuration.from_dict(
        {
            "apiVersion": "akri.sh/v0",
            "kind": "Configuration",
            "metadata": {"name": name, "namespace": "default", "uid": uid},
            "spec": {"discoveryHandler": dh},
        }
    )


# --- §4.4 property resolution ----------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def secret_ref(name: str, key: str, **kw) -> dict:
    return {"valueFrom": {"secretKeyRef": {"name": name, "key": key, **kw}}}


def cm_ref(name: str, key: str, **kw) -> dict:
    return {"valueFrom": {"configMapKeyRef": {"name": name, "key": key, **kw}}}


async def test_property_resolution_vectors() -> None:
    async with ApiServer() as api:
        store = api.store
        store.create_object(
            "secrets",
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "creds", "namespace": "default"},
                "data": {"user": b64(b"admin"), "blob": b64(b"\x00\xff\x10")},
            },
        )
        store.create_object(
            "secrets",
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "other-ns", "namespace": "cameras"},
                "data": {"pw": b64(b"s3cret")},
            },
        )
        store.create_object(
            "configmaps",
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "cm", "namespace": "default"},
                "data": {"both": "text", "plain": "hello"},
                "binaryData": {"both": b64(b"binary"), "bin": b64(b"\x01\x02")},
            },
        )
        kube = Kube.from_config(api.kubeconfig_path)
        try:
            props = configuration(
                properties=[
                    {"name": "literal", "value": "v"},
                    {"name": "value_wins", "value": "lit", **secret_ref("creds", "user")},
                    {"name": "user", **secret_ref("creds", "user")},
                    {"name": "blob", **secret_ref("creds", "blob")},
                    {"name": "ns_given", **secret_ref("other-ns", "pw", namespace="cameras")},
                    {"name": "data_first", **cm_ref("cm", "both")},
                    {"name": "plain", **cm_ref("cm", "plain")},
                    {"name": "bin", **cm_ref("cm", "bin")},
                    {"name": "no_secret", **secret_ref("absent", "k", optional=True)},
                    {"name": "no_key", **secret_ref("creds", "absent", optional=True)},
                    {"name": "no_cm", **cm_ref("absent", "k", optional=True)},
                    {"name": "empty"},
                ]
            ).spec.discovery_handler.discovery_properties
            resolved = await resolve_properties(kube, props)
            assert resolved == {
                "literal": b"v",
                "value_wins": b"lit",
                "user": b"admin",
                "blob": b"\x00\xff\x10",
                "ns_given": b"s3cret",
                "data_first": b"text",
                "plain": b"hello",
                "bin": b"\x01\x02",
                "empty": None,
            }
            # selector namespace defaults to "default", not the Configuration's namespace
            with pytest.raises(UnsolvableProperty, match=r"Secret default/other-ns not found"):
                await resolve_properties(
                    kube,
                    configuration(
                        properties=[{"name": "pw", **secret_ref("other-ns", "pw")}]
                    ).spec.discovery_handler.discovery_properties,
                )
            for ref, message in [
                (secret_ref("absent", "k"), r"\[0\] \(p\): Secret default/absent not found"),
                (secret_ref("creds", "nokey"), r"Secret default/creds has no key 'nokey'"),
                (cm_ref("cm", "nokey"), r"ConfigMap default/cm has no key 'nokey'"),
                (cm_ref("absent", "k"), r"ConfigMap default/absent not found"),
            ]:
                with pytest.raises(UnsolvableProperty, match=message):
                    await resolve_properties(
                        kube,
                        configuration(
                            properties=[{"name": "p", **ref}]
                        ).spec.discovery_handler.discovery_properties,
                    )
        finally:
            await kube.close()


async def test_secrets_are_read_only_when_named(tmp_path: Path) -> None:
    # a client whose API server does not exist: literal values must resolve without any request
    kube = Kube.from_config(write_kubeconfig("http://127.0.0.1:9", tmp_path / "kc"))
    try:
        props = configuration(properties=[{"name": "a", "value": "1"}, {"name": "b"}])
        assert await resolve_properties(kube, props.spec.discovery_handler.discovery_properties) == {
            "a": b"1",
            "b": None,
        }
        with pytest.raises(Exception):  # noqa: B017 - any connection error: it did try to read
            await resolve_properties(
                kube,
                configuration(
                    properties=[{"name": "s", **secret_ref("x", "k")}]
                ).spec.discovery_handler.discovery_properties,
            )
    finally:
        await kube.close()


# --- a tiny handler built from the raw protos ------------------------------------------------


class RawHandler(pb_grpc.DiscoveryHandlerServicer):
    """Records every DiscoverRequest; answers with `devices`, stays silent, or rejects the details."""

    def __init__(self, devices: list[str], mode: str = "send") -> None:
        self.devices = devices
        self.mode = mode
        self.requests: list[pb.DiscoverRequest] = []

    async def Discover(self, request, context):
        self.requests.append(request)
        if self.mode == "invalid":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "descriptions: is required")
        if self.mode == "send":
            yield pb.DiscoverResponse(devices=[pb.Device(id=d, properties={"ID": d}) for d in self.devices])
        await asyncio.Event().wait()  # keep the stream open, as handlers do


@contextlib.asynccontextmanager
async def raw_server(handler: RawHandler, bind: str):
    server = grpc.aio.server()
    pb_grpc.add_DiscoveryHandlerServicer_to_server(handler, server)
    port = server.add_insecure_port(bind)
    await server.start()
    try:
        yield port
    finally:
        await server.stop(0)


@contextlib.asynccontextmanager
async def agent_side(tmp_path: Path, timings: RequestTimings, api_kube: Kube | None = None):
    registry = HandlerRegistry()
    reg_server = RegistrationServer(registry, tmp_path)
    await reg_server.start()
    notified: list[tuple[str, str]] = []
    kube = api_kube or Kube.from_config(write_kubeconfig("http://127.0.0.1:9", tmp_path / "unused-kc"))
    requests = DiscoveryRequests(registry, kube, "node-a", notified.append, timings=timings)
    try:
        yield registry, requests, reg_server.socket_path, notified
    finally:
        await requests.close()
        await reg_server.stop()
        if api_kube is None:
            await kube.close()


FAST = RequestTimings(first_list_timeout=5.0, hold_seconds=5.0, reconnect_timeout=1.0)


async def test_embedded_handler_devices_and_names(tmp_path: Path) -> None:
    async with agent_side(tmp_path, FAST) as (registry, requests, _, notified):
        registry.register_embedded(DebugEchoHandler(shared=True, availability_file=tmp_path / "avail"))
        request = await requests.ensure(configuration())
        snap = await until(lambda: (s := request.snapshot()).devices and s, what="devices")
        assert snap.settled and not snap.held
        assert sorted(d.instance_name for d in snap.devices) == [
            "akri-debug-echo-foo-ab76e6",
            "akri-debug-echo-foo-d46b65",
        ]
        bar0 = snap.by_name()["akri-debug-echo-foo-d46b65"]
        assert bar0.cdi_name == "akri.sh/akri-debug-echo-foo=d46b65"
        assert dict(bar0.device.properties) == {"DEBUG_ECHO_DESCRIPTION": "bar0"}
        assert ("default", "akri-debug-echo-foo") in notified
        # same settings: the same request; changed details: a new one
        assert await requests.ensure(configuration()) is request
        other = await requests.ensure(configuration(details="descriptions: [video1]"))
        assert other is not request
        snap = await until(lambda: (s := other.snapshot()).devices and s, what="new devices")
        assert [d.instance_name for d in snap.devices] == ["akri-debug-echo-foo-cf97ff"]  # shared video1


async def test_local_devices_are_named_with_the_node(tmp_path: Path) -> None:
    async with agent_side(tmp_path, FAST) as (registry, requests, _, _):
        registry.register_embedded(DebugEchoHandler(shared=False, availability_file=tmp_path / "avail"))
        request = await requests.ensure(configuration(details="descriptions: [video1]"))
        snap = await until(lambda: (s := request.snapshot()).devices and s)
        assert [d.instance_name for d in snap.devices] == ["akri-debug-echo-foo-00776f"]  # video1 + node-a
        assert not snap.devices[0].shared


async def test_properties_and_details_reach_a_standalone_handler(tmp_path: Path) -> None:
    handler = RawHandler(["dev"])
    async with (
        ApiServer() as api,
        agent_side(tmp_path, FAST, Kube.from_config(api.kubeconfig_path)) as (_, requests, sock, _),
    ):
        api.store.create_object(
            "secrets",
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "creds", "namespace": "default"},
                "data": {"user": b64(b"admin")},
            },
        )
        path = tmp_path / "raw.sock"
        async with raw_server(handler, f"unix://{path}"):
            await register_once(sock, Registration("raw", str(path), False, False))
            request = await requests.ensure(
                configuration(
                    handler="raw",
                    details="x: 1",
                    properties=[{"name": "USER", **secret_ref("creds", "user")}, {"name": "NOTHING"}],
                )
            )
            await until(lambda: request.snapshot().devices, what="devices")
        sent = handler.requests[0]
        assert sent.discovery_details == "x: 1"
        assert sent.discovery_properties["USER"].vec == b"admin"
        assert not sent.discovery_properties["NOTHING"].HasField("vec")  # name sent, no bytes
        await requests.kube.close()


async def test_several_endpoints_aggregate_dedup_and_report_invalid_details(tmp_path: Path) -> None:
    one, two, bad = RawHandler(["a", "b"]), RawHandler(["b", "c"]), RawHandler([], mode="invalid")
    async with (
        agent_side(tmp_path, FAST) as (registry, requests, sock, _),
        raw_server(one, f"unix://{tmp_path / 'one.sock'}"),
        raw_server(two, "127.0.0.1:0") as port,
        raw_server(bad, f"unix://{tmp_path / 'bad.sock'}"),
    ):
        request = await requests.ensure(configuration(handler="raw"))
        await register_once(sock, Registration("raw", str(tmp_path / "one.sock"), False, True))
        await register_once(sock, Registration("raw", f"http://127.0.0.1:{port}", True, True))
        snap = await until(
            lambda: (s := request.snapshot()).settled and len(s.devices) == 3 and s, what="3 devices"
        )
        assert sorted(d.device.id for d in snap.devices) == ["a", "b", "c"]  # "b" from both, once
        # an endpoint registered later is asked too; its rejection is reported, not fatal
        await register_once(sock, Registration("raw", str(tmp_path / "bad.sock"), False, True))
        snap = await until(lambda: (s := request.snapshot()).errors and s, what="invalid details")
        assert "descriptions: is required" in snap.errors[0]
        assert snap.settled and len(snap.devices) == 3
        assert len(registry.endpoints("raw")) == 3  # INVALID_ARGUMENT keeps the endpoint


async def test_not_settled_until_first_lists_or_timeouts(tmp_path: Path) -> None:
    timings = RequestTimings(first_list_timeout=0.6, hold_seconds=1.2, reconnect_timeout=0.5)
    silent = RawHandler([], mode="silent")
    async with (
        agent_side(tmp_path, timings) as (_, requests, sock, notified),
        raw_server(silent, f"unix://{tmp_path / 'silent.sock'}"),
    ):
        request = await requests.ensure(configuration(handler="raw"))
        # no handler at all yet (an agent restarting before its handlers re-register)
        assert not request.snapshot().settled
        await asyncio.sleep(0.3)
        assert not request.snapshot().settled
        # a handler that accepts the call but has not answered yet
        await register_once(sock, Registration("raw", str(tmp_path / "silent.sock"), False, True))
        await until(lambda: silent.requests, what="Discover call")
        assert not request.snapshot().settled
        count = len(notified)
        # time alone settles it, and the request says so (a reconcile must run then)
        await until(lambda: request.snapshot().settled, what="settle by timeout")
        await until(lambda: len(notified) > count, what="notification")


async def test_standalone_handler_dies_is_dropped_and_is_used_again(tmp_path: Path) -> None:
    timings = RequestTimings(first_list_timeout=10.0, hold_seconds=30.0, reconnect_timeout=0.5)
    async with agent_side(tmp_path, timings) as (registry, requests, _, _):
        request = await requests.ensure(configuration())
        proc = spawn_debug_echo_handler(tmp_path, tmp_path / "avail")
        try:
            snap = await until(
                lambda: (s := request.snapshot()).settled and s.devices and s,
                limit=20,
                what="devices from the handler process",
            )
            names = sorted(d.instance_name for d in snap.devices)
            assert names == ["akri-debug-echo-foo-ab76e6", "akri-debug-echo-foo-d46b65"]
            uid = registry.endpoints("debugEcho")[0].uid
            assert uid == f"debugEcho@{tmp_path / 'debugEcho.sock'}"

            proc.send_signal(signal.SIGKILL)  # dies without a word
            proc.wait(10)
            await until(lambda: not registry.endpoints("debugEcho"), what="endpoint dropped")
            snap = request.snapshot()
            assert not snap.devices and sorted(snap.held) == names  # kept while it may come back

            proc = spawn_debug_echo_handler(tmp_path, tmp_path / "avail")
            snap = await until(
                lambda: (s := request.snapshot()).devices and not s.held and s,
                limit=20,
                what="devices after the handler came back",
            )
            assert sorted(d.instance_name for d in snap.devices) == names
            assert [ep.uid for ep in registry.endpoints("debugEcho")] == [uid]
        finally:
            proc.terminate()
            proc.wait(10)


class FailsOnce(DebugEchoHandler):
    """debugEcho whose first Discover stream breaks before sending anything."""

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.streams = 0

    async def discover(self, details, properties):
        self.streams += 1
        if self.streams == 1:
            raise RuntimeError("the device bus hiccuped")
        async for devices in super().discover(details, properties):
            yield devices


class BrokenObserver:
    """A metrics observer with a bug: it raises while a stream failure is being handled, i.e.
    outside the stream loop's own error handling."""

    def __init__(self) -> None:
        self.responses = 0

    def discovery_response(self, configuration: str, handler: str, first_after: float | None) -> None:
        self.responses += 1

    def discovery_failure(self, configuration: str, handler: str) -> None:
        raise ValueError("bug in the observer")


async def test_a_crashed_stream_task_is_restarted(tmp_path: Path, caplog) -> None:
    registry = HandlerRegistry()
    kube = Kube.from_config(write_kubeconfig("http://127.0.0.1:9", tmp_path / "kc"))
    observer = BrokenObserver()
    requests = DiscoveryRequests(registry, kube, "node-a", lambda key: None, timings=FAST, observer=observer)
    handler = FailsOnce(shared=True, availability_file=tmp_path / "avail")
    try:
        registry.register_embedded(handler)
        request = await requests.ensure(configuration())
        snap = await until(lambda: (s := request.snapshot()).devices and s, what="devices after the crash")
        assert len(snap.devices) == 2 and handler.streams == 2 and observer.responses >= 1
        assert "crashed; restarting it" in caplog.text and "bug in the observer" in caplog.text
    finally:
        await requests.close()
        await kube.close()


class BreaksOnSchedule(DebugEchoHandler):
    """debugEcho whose streams 1..`failing` break at once, stream `failing + 1` sends one list and
    then breaks, and later streams work."""

    def __init__(self, failing: int, **options) -> None:
        super().__init__(**options)
        self.failing = failing
        self.started: list[float] = []  # loop time each stream started

    async def discover(self, details, properties):
        self.started.append(asyncio.get_running_loop().time())
        n = len(self.started)
        if n <= self.failing:
            raise RuntimeError("the device bus is broken")
        async for devices in super().discover(details, properties):
            yield devices
            if n == self.failing + 1:
                raise RuntimeError("the device bus broke again")


CRASH_BACKOFF = Backoff(initial=0.05, factor=2.0, maximum=0.4, jitter=0.0)


async def test_a_stream_that_keeps_crashing_is_restarted_ever_more_slowly(tmp_path: Path, caplog) -> None:
    """Every stream failure crashes the stream task (the observer raises): the restarts back off
    0.05, 0.1, 0.2, 0.4, 0.4 s instead of spinning, and a list resets the back-off. The
    traceback is logged for the first crash, not for every repeat of the same one."""
    registry = HandlerRegistry()
    kube = Kube.from_config(write_kubeconfig("http://127.0.0.1:9", tmp_path / "kc"))
    timings = RequestTimings(first_list_timeout=5.0, hold_seconds=5.0, reconnect_timeout=1.0,
                             stream_backoff=CRASH_BACKOFF)
    requests = DiscoveryRequests(registry, kube, "node-a", lambda key: None, timings=timings,
                                 observer=BrokenObserver())
    handler = BreaksOnSchedule(failing=5, shared=True, availability_file=tmp_path / "avail")
    caplog.set_level("ERROR", logger="akri.agent.discovery_requests")
    try:
        registry.register_embedded(handler)
        request = await requests.ensure(configuration())
        await until(lambda: len(handler.started) >= 7 and request.snapshot().devices, what="working stream")
        crashes = [r for r in caplog.records if "crashed" in r.getMessage()]
        announced = [float(r.getMessage().rpartition("restarting it in ")[2].split()[0]) for r in crashes]
        assert announced == [0.05, 0.1, 0.2, 0.4, 0.4, 0.05]
        gaps = [b - a for a, b in itertools.pairwise(handler.started[:6])]
        assert all(gap >= CRASH_BACKOFF.base_delay(i) for i, gap in enumerate(gaps)), gaps
        # a traceback for the first crash and for the first after the list, one line for repeats
        assert [r.exc_info is not None for r in crashes] == [True, False, False, False, False, True]
        assert "crashed again (5 in a row: ValueError: bug in the observer)" in crashes[4].getMessage()
    finally:
        await requests.close()
        await kube.close()


async def test_a_crash_handler_that_fails_still_restarts_the_stream(tmp_path: Path, caplog) -> None:
    """`notify` raising (a bug in the agent's callback) on every snapshot change crashes the stream
    task as soon as a list arrives, and makes the crash handling itself fail (the list turning
    into held devices is a change too); the stream is restarted all the same."""
    registry = HandlerRegistry()
    kube = Kube.from_config(write_kubeconfig("http://127.0.0.1:9", tmp_path / "kc"))
    armed = False

    def notify(key) -> None:
        if armed:
            raise RuntimeError("bug in notify")

    timings = RequestTimings(first_list_timeout=5.0, hold_seconds=5.0, reconnect_timeout=1.0,
                             stream_backoff=Backoff(initial=0.01, factor=1.0, maximum=0.01))
    requests = DiscoveryRequests(registry, kube, "node-a", notify, timings=timings,
                                 observer=BrokenObserver())
    handler = FailsOnce(shared=True, availability_file=tmp_path / "avail")
    try:
        await requests.ensure(configuration())
        armed = True
        registry.register_embedded(handler)
        await until(lambda: handler.streams >= 4, what="restarts")
        assert "handling the crash of endpoint embedded-debugEcho's stream failed" in caplog.text
    finally:
        armed = False
        await requests.close()
        await kube.close()
