"""NodeInstances fan-out: a change or removal counts as delivered only once every listener took
it, so a listener that failed hears it again on the caller's retry (not only when the Instance
changes next)."""

from __future__ import annotations

from pathlib import Path

import pytest

from akri.agent.node_instances import ListenerFailed, NodeInstance, NodeInstances
from akri.model.instance import Instance
from akri.testing.apiserver import ApiServer


def view(name: str = "cfg-abc123", rv: str = "1") -> NodeInstance:
    obj = {"apiVersion": "akri.sh/v0", "kind": "Instance",
           "metadata": {"name": name, "namespace": "default", "resourceVersion": rv},
           "spec": {"configurationName": "cfg", "cdiName": "akri.sh/cfg=abc123", "capacity": 1,
                    "shared": False, "nodes": ["node-a"], "deviceUsage": {}}}
    return NodeInstance(Instance.from_dict(obj), None, None, obj)


class FlakyListener:
    """Fails its first `failures` calls of each kind, as a plugin whose socket cannot be served yet."""

    def __init__(self, failures: int = 1) -> None:
        self.failures = {"changed": failures, "removed": failures}
        self.changed: list[str] = []
        self.removed: list[str] = []

    def _maybe_fail(self, kind: str) -> None:
        if self.failures[kind] > 0:
            self.failures[kind] -= 1
            raise OSError("cannot serve the plugin socket")

    async def instance_changed(self, view: NodeInstance) -> None:
        self._maybe_fail("changed")
        self.changed.append(view.name)

    async def instance_removed(self, namespace: str, name: str) -> None:
        self._maybe_fail("removed")
        self.removed.append(name)


class Recorder(FlakyListener):
    def __init__(self) -> None:
        super().__init__(failures=0)


async def test_a_failed_change_is_delivered_again_on_retry() -> None:
    instances = NodeInstances()
    flaky, other = FlakyListener(), Recorder()
    instances.add_listener(flaky)
    instances.add_listener(other)
    with pytest.raises(ListenerFailed):
        await instances.publish(view())
    assert other.changed == ["cfg-abc123"]  # the others still heard it
    await instances.publish(view())  # the same state again: the retry
    assert flaky.changed == ["cfg-abc123"]
    await instances.publish(view())  # now delivered: nothing to do
    assert (flaky.changed, other.changed) == (["cfg-abc123"], ["cfg-abc123"] * 2)


async def test_a_failed_removal_keeps_the_instance_until_every_listener_took_it() -> None:
    instances = NodeInstances()
    flaky = FlakyListener(failures=0)
    instances.add_listener(flaky)
    await instances.publish(view())
    flaky.failures["removed"] = 1
    with pytest.raises(ListenerFailed):
        await instances.remove("default", "cfg-abc123")
    assert instances.get("default", "cfg-abc123") is not None
    await instances.remove("default", "cfg-abc123")
    assert flaky.removed == ["cfg-abc123"] and instances.get("default", "cfg-abc123") is None


@pytest.mark.slow
async def test_the_agent_retries_a_listener_that_failed(tmp_path: Path) -> None:
    """End to end: the Instance does not change, yet the failed listener hears it (back-off retry)."""
    from test_agent_instances import CONFIG, LOCAL_BAR0_A, agent, configuration_body, until

    async with ApiServer() as api:
        api.store.create_object("configurations", configuration_body(descriptions=("bar0",)),
                                namespace="default")
        flaky = FlakyListener()
        async with agent(api, tmp_path, "node-a", shared=False, listener=flaky):
            await until(lambda: flaky.changed == [LOCAL_BAR0_A], what="the change delivered on retry")
            assert flaky.failures["changed"] == 0
            api.store.delete_object("configurations", CONFIG, "default")
            await until(lambda: flaky.removed == [LOCAL_BAR0_A], what="the removal delivered on retry")
