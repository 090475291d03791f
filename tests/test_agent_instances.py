"""AgentCore end to end against the API double: Configurations → Instances with upstream names,
owners and finalizers; shared devices across nodes; offline grace; restarts that must not churn."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

import kubernetes
import pytest
from e2e.procs import spawn_debug_echo_handler, until

from akri.agent.core import AgentCore, AgentSettings
from akri.agent.node_instances import NodeInstance
from akri.discovery.handlers.debug_echo import DebugEchoHandler
from akri.testing.apiserver import ApiServer

pytestmark = pytest.mark.slow

CONFIG = "akri-debug-echo-foo"
BAR0, BAR1 = f"{CONFIG}-d46b65", f"{CONFIG}-ab76e6"  # shared bar0 / bar1 (spec §11a)
LOCAL_BAR0_A = f"{CONFIG}-7d2706"  # bar0 local to node-a


def configuration_body(capacity: int = 2, descriptions: tuple[str, ...] = ("bar0", "bar1")) -> dict:
    details = "descriptions:\n" + "".join(f"  - {d}\n" for d in descriptions)
    return {
        "apiVersion": "akri.sh/v0",
        "kind": "Configuration",
        "metadata": {"name": CONFIG, "namespace": "default"},
        "spec": {
            "discoveryHandler": {"name": "debugEcho", "discoveryDetails": details},
            "capacity": capacity,
            "brokerProperties": {"RESOLUTION_WIDTH": "800", "RESOLUTION_HEIGHT": "600"},
        },
    }


class Recorder:
    """An instance listener, as the plugin side will be."""

    def __init__(self) -> None:
        self.changed: list[NodeInstance] = []
        self.removed: list[str] = []

    async def instance_changed(self, view: NodeInstance) -> None:
        self.changed.append(view)

    async def instance_removed(self, namespace: str, name: str) -> None:
        self.removed.append(name)

    def latest(self, name: str) -> NodeInstance | None:
        for view in reversed(self.changed):
            if view.name == name:
                return view
        return None


def instances(api: ApiServer) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in api.store.list_objects("instances", "default")}


def set_availability(path: Path, online: bool) -> None:
    path.write_text("ONLINE" if online else "OFFLINE")


@contextlib.asynccontextmanager
async def agent(
    api: ApiServer,
    tmp_path: Path,
    node: str,
    *,
    shared: bool = True,
    grace: float = 300.0,
    embedded: bool = True,
    hold: float | None = None,
    listener: Recorder | None = None,
):
    availability = tmp_path / f"{node}.availability"
    handlers = [DebugEchoHandler(shared=shared, availability_file=availability)] if embedded else []
    settings = AgentSettings(
        node_name=node,
        discovery_handlers_directory=tmp_path / node,
        kubeconfig=str(api.kubeconfig_path),
        embedded_handlers=handlers,
        offline_grace_seconds=grace,
        handler_hold_seconds=hold,
        reconnect_timeout=0.5,
    )
    core = AgentCore(settings)
    if listener is not None:
        core.add_instance_listener(listener)
    await core.start()
    try:
        yield core
    finally:
        await core.stop()


async def test_configuration_to_instances_with_the_official_client(tmp_path: Path) -> None:
    async with ApiServer() as api:
        cfg = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(config_file=str(api.kubeconfig_path), client_configuration=cfg)
        custom = kubernetes.client.CustomObjectsApi(kubernetes.client.ApiClient(cfg))
        created = await asyncio.to_thread(
            custom.create_namespaced_custom_object,
            "akri.sh",
            "v0",
            "default",
            "configurations",
            configuration_body(),
        )
        recorder = Recorder()
        async with agent(api, tmp_path, "node-a", listener=recorder):
            found = await until(lambda: len(i := instances(api)) == 2 and i, what="two Instances")
            assert set(found) == {BAR0, BAR1}
            bar0 = found[BAR0]
            assert bar0["spec"] == {
                "configurationName": CONFIG,
                "cdiName": f"akri.sh/{CONFIG}=d46b65",
                "capacity": 2,
                "brokerProperties": {
                    "DEBUG_ECHO_DESCRIPTION": "bar0",
                    "RESOLUTION_WIDTH": "800",
                    "RESOLUTION_HEIGHT": "600",
                },
                "shared": True,
                "nodes": ["node-a"],
                "deviceUsage": {},
            }
            assert bar0["metadata"]["ownerReferences"] == [
                {
                    "apiVersion": "akri.sh/v0",
                    "kind": "Configuration",
                    "name": CONFIG,
                    "uid": created["metadata"]["uid"],
                    "controller": True,
                }
            ]
            assert bar0["metadata"]["finalizers"] == ["node-a"]
            config = api.store.get_object("configurations", CONFIG, "default")
            assert config["metadata"]["finalizers"] == ["node-a"]

            # the plugin side hears about this node's Instances, with their devices
            view = await until(lambda: recorder.latest(BAR0), what="listener")
            assert view.device is not None and view.device.id == "bar0"
            assert view.instance.spec.capacity == 2 and view.configuration.name == CONFIG

            # capacity and brokerProperties changes reach existing Instances and the plugin side
            await asyncio.to_thread(
                custom.patch_namespaced_custom_object,
                "akri.sh",
                "v0",
                "default",
                "configurations",
                CONFIG,
                {
                    "spec": {
                        "capacity": 5,
                        "brokerProperties": {"RESOLUTION_WIDTH": "1024", "RESOLUTION_HEIGHT": None},
                    }
                },
            )
            await until(
                lambda: all(o["spec"]["capacity"] == 5 for o in instances(api).values()), what="capacity"
            )
            bar0 = instances(api)[BAR0]
            assert bar0["spec"]["brokerProperties"] == {
                "DEBUG_ECHO_DESCRIPTION": "bar0",
                "RESOLUTION_WIDTH": "1024",
            }
            assert bar0["metadata"]["uid"] == found[BAR0]["metadata"]["uid"]
            await until(
                lambda: (v := recorder.latest(BAR0)) and v.instance.spec.capacity == 5, what="plugin update"
            )

            # deleting the Configuration: finalizers come off, GC takes the Instances
            await asyncio.to_thread(
                custom.delete_namespaced_custom_object, "akri.sh", "v0", "default", "configurations", CONFIG
            )
            await until(
                lambda: api.store.get_object("configurations", CONFIG, "default") is None, what="config gone"
            )
            await until(lambda: not instances(api), what="instances collected")
            await until(lambda: sorted(recorder.removed) == sorted([BAR0, BAR1]), what="plugin removal")


async def test_shared_device_seen_by_two_nodes_and_offline_grace(tmp_path: Path) -> None:
    async with ApiServer() as api:
        api.store.create_object(
            "configurations", configuration_body(descriptions=("bar0",)), namespace="default"
        )
        async with agent(api, tmp_path, "node-a", grace=1.5), agent(api, tmp_path, "node-b", grace=1.5):
            inst = await until(
                lambda: (o := instances(api).get(BAR0)) and len(o["spec"]["nodes"]) == 2 and o,
                what="both nodes",
            )
            uid = inst["metadata"]["uid"]
            assert sorted(inst["spec"]["nodes"]) == ["node-a", "node-b"]
            assert sorted(inst["metadata"]["finalizers"]) == ["node-a", "node-b"]
            assert sorted(
                api.store.get_object("configurations", CONFIG, "default")["metadata"]["finalizers"]
            ) == ["node-a", "node-b"]

            # node-a stops seeing it: kept during the grace period, then node-a leaves
            set_availability(tmp_path / "node-a.availability", False)
            await asyncio.sleep(0.7)
            assert sorted(instances(api)[BAR0]["spec"]["nodes"]) == ["node-a", "node-b"]
            inst = await until(
                lambda: (o := instances(api)[BAR0])["spec"]["nodes"] == ["node-b"] and o,
                what="node-a leaves after grace",
            )
            assert inst["metadata"]["finalizers"] == ["node-b"] and inst["metadata"]["uid"] == uid

            # it comes back: node-a joins the same Instance again
            set_availability(tmp_path / "node-a.availability", True)
            inst = await until(
                lambda: len((o := instances(api)[BAR0])["spec"]["nodes"]) == 2 and o, what="rejoin"
            )
            assert inst["metadata"]["uid"] == uid

            # gone from both: deleted once the last node's grace has passed
            set_availability(tmp_path / "node-a.availability", False)
            set_availability(tmp_path / "node-b.availability", False)
            await until(lambda: BAR0 not in instances(api), what="deleted after grace")


async def test_shared_device_back_within_grace_changes_nothing(tmp_path: Path) -> None:
    async with ApiServer() as api:
        api.store.create_object(
            "configurations", configuration_body(descriptions=("bar0",)), namespace="default"
        )
        async with agent(api, tmp_path, "node-a", grace=2.0):
            before = await until(lambda: instances(api).get(BAR0), what="instance")
            set_availability(tmp_path / "node-a.availability", False)
            await asyncio.sleep(0.8)
            set_availability(tmp_path / "node-a.availability", True)
            await asyncio.sleep(2.5)  # past the grace period of the first disappearance
            after = instances(api)[BAR0]
            assert after["metadata"]["uid"] == before["metadata"]["uid"]
            assert (
                after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
            )  # not even a write


async def test_unplugged_local_device_is_removed_at_once(tmp_path: Path) -> None:
    async with ApiServer() as api:
        api.store.create_object(
            "configurations", configuration_body(descriptions=("bar0",)), namespace="default"
        )
        recorder = Recorder()
        async with agent(api, tmp_path, "node-a", shared=False, grace=300.0, listener=recorder):
            inst = await until(lambda: instances(api).get(LOCAL_BAR0_A), what="local instance")
            assert inst["spec"]["shared"] is False
            set_availability(tmp_path / "node-a.availability", False)
            await until(lambda: not instances(api), limit=5, what="removed without waiting for the grace")
            await until(lambda: recorder.removed == [LOCAL_BAR0_A], what="plugin told")
            # plugged in again: a new Instance
            set_availability(tmp_path / "node-a.availability", True)
            again = await until(lambda: instances(api).get(LOCAL_BAR0_A), what="re-created")
            assert again["metadata"]["uid"] != inst["metadata"]["uid"]


async def test_agent_restart_keeps_the_same_instances(tmp_path: Path) -> None:
    async with ApiServer() as api:
        api.store.create_object("configurations", configuration_body(), namespace="default")
        async with agent(api, tmp_path, "node-a", shared=False):
            first = await until(lambda: len(i := instances(api)) == 2 and i, what="instances")
        # the agent is away; a new one starts (its handler registry starts empty, too)
        async with agent(api, tmp_path, "node-a", shared=False) as core:
            await core.wait_synced()
            await until(
                lambda: (
                    core.requests.get(("default", CONFIG)) is not None
                    and core.requests.get(("default", CONFIG)).snapshot().settled
                ),
                what="settled",
            )
            await asyncio.sleep(0.3)
            second = instances(api)
        assert {n: o["metadata"]["uid"] for n, o in second.items()} == {
            n: o["metadata"]["uid"] for n, o in first.items()
        }


async def test_handler_restart_keeps_local_instances(tmp_path: Path) -> None:
    """A standalone handler process is killed and started again: upstream deletes and re-creates
    the Instances; here they stay (same uids) and the handler's endpoint is used again."""
    async with ApiServer() as api:
        api.store.create_object("configurations", configuration_body(), namespace="default")
        async with agent(api, tmp_path, "node-a", embedded=False, hold=30.0) as core:
            proc = spawn_debug_echo_handler(tmp_path / "node-a", tmp_path / "avail", shared=False)
            try:
                first = await until(lambda: len(i := instances(api)) == 2 and i, limit=20, what="instances")
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                await until(lambda: not core.registry.endpoints("debugEcho"), what="endpoint dropped")
                await asyncio.sleep(0.5)
                assert set(instances(api)) == set(first)
                proc = spawn_debug_echo_handler(tmp_path / "node-a", tmp_path / "avail", shared=False)
                await until(lambda: core.registry.endpoints("debugEcho"), limit=20, what="registered again")
                await until(
                    lambda: (s := core.requests.get(("default", CONFIG)).snapshot()).devices and not s.held,
                    limit=20,
                    what="fresh devices",
                )
                await asyncio.sleep(0.3)
                assert {n: o["metadata"]["uid"] for n, o in instances(api).items()} == {
                    n: o["metadata"]["uid"] for n, o in first.items()
                }
            finally:
                proc.terminate()
                proc.wait(10)


async def test_recovers_from_api_server_restarts(tmp_path: Path) -> None:
    async with ApiServer() as api:
        api.store.create_object(
            "configurations", configuration_body(descriptions=("bar0",)), namespace="default"
        )
        async with agent(api, tmp_path, "node-a", shared=False):
            await until(lambda: instances(api).get(LOCAL_BAR0_A), what="instance")
            # the API server goes away; the Configuration changes meanwhile (the store outlives it)
            await api.stop()
            api.store.patch_object("configurations", CONFIG, {"spec": {"capacity": 7}}, namespace="default")
            await asyncio.sleep(1.0)
            await api.start()
            await until(
                lambda: instances(api)[LOCAL_BAR0_A]["spec"]["capacity"] == 7,
                limit=30,
                what="capacity after restart",
            )
            # away again while the device is unplugged: the removal happens once it is back
            await api.stop()
            set_availability(tmp_path / "node-a.availability", False)
            await asyncio.sleep(1.0)
            await api.start()
            await until(lambda: not instances(api), limit=30, what="removal after restart")


async def test_instance_deleted_by_someone_else_comes_back(tmp_path: Path) -> None:
    async with ApiServer() as api:
        api.store.create_object(
            "configurations", configuration_body(descriptions=("bar0",)), namespace="default"
        )
        async with agent(api, tmp_path, "node-a"):
            inst = await until(lambda: instances(api).get(BAR0), what="instance")
            # the controller's node watcher takes node-a out: node-a still sees the device, so it rejoins
            api.store.patch_object("instances", BAR0, {"spec": {"nodes": []}}, namespace="default")
            await until(lambda: instances(api)[BAR0]["spec"]["nodes"] == ["node-a"], what="rejoined")
            # someone deletes it (the finalizer holds it until node-a lets go); it is created again
            api.store.delete_object("instances", BAR0, namespace="default")
            again = await until(
                lambda: (
                    (o := instances(api).get(BAR0)) and o["metadata"]["uid"] != inst["metadata"]["uid"] and o
                ),
                what="re-created",
            )
            assert again["spec"]["nodes"] == ["node-a"]
