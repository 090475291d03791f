"""Configuration reconcile → Instances of this node (spec §4.6 to 4.8, with upstream's quirks fixed).

For every device a discovery request reports, the Instance `<configuration>-<digest>` exists,
is owned by its Configuration (controller ownerReference), lists this node in `spec.nodes` and
carries this node's finalizer; `capacity` and `brokerProperties` follow the Configuration.
Every write is a read-modify-write guarded by resourceVersion (`Kube.update_with_retry`), so
agents on several nodes adding themselves to one shared Instance never lose each other's entry.

A device that is no longer reported:
* local (not shared): this node leaves the Instance at once (the Instance is deleted when no
  node is left);
* shared: the Instance keeps this node for the offline grace period (default 300 s, upstream
  ≤ v0.12) and nothing changes if the device comes back within it.
Nothing is removed while the discovery request is not settled (just (re)started) or for
devices whose handler endpoint is restarting (`DiscoverySnapshot.held`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from akri.agent.discovery_requests import DiscoveredDevice, DiscoverySnapshot
from akri.kube.api import Kube
from akri.kube.errors import is_conflict
from akri.kube.resources import API_VERSION, Instance
from akri.model.configuration import Configuration
from akri.model.constants import CONFIGURATION_KIND, INSTANCE_KIND
from akri.model.usage import parse_usage
from akri.retry import retry

log = logging.getLogger(__name__)

DEFAULT_OFFLINE_GRACE_SECONDS = 300.0


def owner_reference(config: Configuration) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": CONFIGURATION_KIND,
        "name": config.name,
        "uid": config.uid,
        "controller": True,
    }


def broker_properties(config: Configuration, found: DiscoveredDevice) -> dict[str, str]:
    """Device properties overlaid with the Configuration's brokerProperties (the Configuration wins)."""
    return {**dict(found.device.properties), **config.spec.broker_properties}


def desired_spec_fields(config: Configuration, found: DiscoveredDevice) -> dict[str, Any]:
    return {
        "configurationName": config.name,
        "cdiName": found.cdi_name,
        "capacity": config.spec.capacity,
        "brokerProperties": broker_properties(config, found),
        "shared": found.shared,
    }


def new_instance(config: Configuration, found: DiscoveredDevice, node: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": INSTANCE_KIND,
        "metadata": {
            "name": found.instance_name,
            "namespace": config.namespace,
            "ownerReferences": [owner_reference(config)],
            "finalizers": [node],
        },
        "spec": {**desired_spec_fields(config, found), "nodes": [node], "deviceUsage": {}},
    }


def is_terminating(obj: dict[str, Any]) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def owned_by(obj: dict[str, Any], config: Configuration) -> bool:
    """Is `obj` an Instance of `config` (same namespace and name; same uid when it names one)?"""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    if meta.get("namespace") != config.namespace or spec.get("configurationName") != config.name:
        return False
    for ref in meta.get("ownerReferences") or []:
        if ref.get("kind") == CONFIGURATION_KIND and ref.get("controller") and config.uid and ref.get("uid"):
            return bool(ref.get("uid") == config.uid)
    return True


def nodes_of(obj: dict[str, Any]) -> list[str]:
    return list((obj.get("spec") or {}).get("nodes") or [])


def join(obj: dict[str, Any], config: Configuration, found: DiscoveredDevice, node: str) -> None:
    """Mutation: make `obj` the Instance `found` should be, with `node` in it."""
    if is_terminating(obj):
        return  # being deleted: the DELETED event brings a fresh reconcile
    spec = obj.setdefault("spec", {})
    spec.update(desired_spec_fields(config, found))
    nodes = spec.setdefault("nodes", [])
    if node not in nodes:
        nodes.append(node)
    spec.setdefault("deviceUsage", {})
    meta = obj.setdefault("metadata", {})
    finalizers = meta.setdefault("finalizers", [])
    if node not in finalizers:
        finalizers.append(node)
    refs = meta.get("ownerReferences") or []
    if not any(
        r.get("kind") == CONFIGURATION_KIND and r.get("uid") == config.uid and r.get("controller")
        for r in refs
    ):
        others = [r for r in refs if not (r.get("kind") == CONFIGURATION_KIND and r.get("controller"))]
        meta["ownerReferences"] = [*others, owner_reference(config)]


def leave(obj: dict[str, Any], node: str) -> None:
    """Mutation: take `node` out of the Instance (nodes, finalizer, and the slots it held)."""
    spec = obj.setdefault("spec", {})
    if node in (spec.get("nodes") or []):
        spec["nodes"] = [n for n in spec["nodes"] if n != node]
    usage = spec.get("deviceUsage") or {}
    mine = [slot for slot, value in usage.items() if _usage_node(value) == node]
    if mine:
        # a node that no longer serves the device cannot be using its slots
        spec["deviceUsage"] = {k: v for k, v in usage.items() if k not in mine}
    meta = obj.setdefault("metadata", {})
    if node in (meta.get("finalizers") or []):
        meta["finalizers"] = [f for f in meta["finalizers"] if f != node]


def _usage_node(value: Any) -> str | None:
    try:
        return parse_usage(value).node if isinstance(value, str) else None
    except ValueError:
        return None


class InstanceReconciler:
    """Writes this node's view of one Configuration's devices into Instances."""

    def __init__(
        self,
        kube: Kube,
        node_name: str,
        instance_cache: Callable[[], Iterable[dict[str, Any]]],
        *,
        offline_grace_seconds: float = DEFAULT_OFFLINE_GRACE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube = kube
        self.node = node_name
        self.instance_cache = instance_cache
        self.offline_grace = offline_grace_seconds
        self.clock = clock
        # (namespace, instance) -> when this node first found the device missing (shared grace)
        self._missing_since: dict[tuple[str, str], float] = {}

    async def reconcile(self, config: Configuration, snapshot: DiscoverySnapshot) -> float | None:
        """Bring the Instances of `config` in line with `snapshot`. Returns seconds until a grace
        period ends (run again then), or None. Raises the first write error after trying all."""
        now = self.clock()
        ns = config.namespace
        desired = snapshot.by_name()
        cache = {
            (o["metadata"].get("namespace"), o["metadata"].get("name")): o for o in self.instance_cache()
        }
        errors: list[BaseException] = []
        for name, found in desired.items():
            self._missing_since.pop((ns, name), None)
            try:
                await self.ensure(config, found, cache.get((ns, name)))
            except Exception as exc:
                log.warning("instance %s/%s: cannot write: %s", ns, name, exc)
                errors.append(exc)
        requeue: float | None = None
        for obj in cache.values():
            name = obj["metadata"].get("name")
            if (
                name in desired
                or not owned_by(obj, config)
                or is_terminating(obj)
                or self.node not in nodes_of(obj)
            ):
                continue
            if name in snapshot.held or not snapshot.settled:
                continue
            if (obj.get("spec") or {}).get("shared"):
                since = self._missing_since.setdefault((ns, name), now)
                remaining = since + self.offline_grace - now
                if remaining > 0:
                    if since == now:
                        log.info(
                            "instance %s/%s: shared device not reported; keeping it for %.0f s",
                            ns,
                            name,
                            remaining,
                        )
                    requeue = remaining if requeue is None else min(requeue, remaining)
                    continue
                log.info("instance %s/%s: shared device gone for %.0f s; leaving it", ns, name, now - since)
            else:
                log.info("instance %s/%s: local device gone; leaving it", ns, name)
            try:
                await self.leave(ns, name, obj)
                self._missing_since.pop((ns, name), None)
            except Exception as exc:
                log.warning("instance %s/%s: cannot leave: %s", ns, name, exc)
                errors.append(exc)
        if errors:
            raise errors[0]
        return requeue

    def forget(self, config_key: tuple[str, str]) -> None:
        ns, name = config_key
        prefix = f"{name}-"
        for key in [k for k in self._missing_since if k[0] == ns and k[1].startswith(prefix)]:
            del self._missing_since[key]

    async def ensure(
        self, config: Configuration, found: DiscoveredDevice, current: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """Create the Instance, or join it (guarded read-modify-write) when it exists."""
        ns, name = config.namespace, found.instance_name
        if current is not None and is_terminating(current):
            return None  # the DELETED event triggers another pass that re-creates it
        if current is None:
            try:
                created = await self.kube.create(
                    Instance, new_instance(config, found, self.node), namespace=ns
                )
                log.info("instance %s/%s created (%s)", ns, name, "shared" if found.shared else "local")
                return created
            except Exception as exc:
                if not is_conflict(exc):
                    raise
                # it exists (another node, or our cache lags): join it below
        return await self.kube.update_with_retry(
            Instance, name, ns, lambda obj: join(obj, config, found, self.node), current=current
        )

    async def leave(self, namespace: str, name: str, current: dict[str, Any] | None = None) -> None:
        """Take this node out of an Instance; delete it (version-guarded) when no node is left."""
        first = [current]

        async def attempt() -> None:
            obj, first[0] = first[0], None
            if obj is None:
                obj = await self.kube.get_or_none(Instance, name, namespace)
            if obj is None:
                return
            written = await self.kube.update_with_retry(
                Instance, name, namespace, lambda o: leave(o, self.node), current=obj
            )
            if written is None or nodes_of(written) or is_terminating(written):
                return
            # no node sees the device any more; the version check keeps a node that joined
            # in the meantime (409 → read again and decide again)
            meta = written["metadata"]
            await self.kube.delete(
                Instance, name, namespace, resource_version=meta.get("resourceVersion"), uid=meta.get("uid")
            )
            log.info("instance %s/%s deleted (no node sees its device)", namespace, name)

        await retry(attempt, retry_on=is_conflict, what=f"leave instance {namespace}/{name}")
