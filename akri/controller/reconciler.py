"""The controller's work while it leads: brokers, Services and node cleanup, level-triggered.

Six informers (Configurations, Instances, broker Pods, broker Jobs, Akri Services, Nodes) keep
a local copy of the cluster; their events only enqueue keys, and a reconcile compares what
exists with what should exist and fixes the difference:

* `("instance", ns, name)`: broker Pods (one per node in `spec.nodes`, spec §6.2, with the
  decision table of `decisions`) or the broker Job (spec §6.3) of one Instance;
* `("isvc", ns, instance)` / `("csvc", ns, configuration)`: the Instance / Configuration Service
  (spec §6.4);
* `("node", name)`: remove a vanished node from every Instance (spec §6.5).

Because reconciles look at state rather than at single events, nothing is lost when a watch
restarts or re-lists (the informers resume by themselves), a broker deleted or failed by
anyone is recreated, and a Pending broker is re-examined when its grace period ends even if no
event arrives. Re-creating the same broker is rate-limited per Pod name so a broker that keeps
failing (e.g. the kubelet refusing it at admission) cannot spin into a hot loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from akri.controller import decisions, node_watcher, services
from akri.controller.brokers import (
    CONFIGURATION_LABEL,
    CONTROLLER_LABEL,
    CONTROLLER_VALUE,
    INSTANCE_LABEL,
    TARGET_NODE_LABEL,
)
from akri.controller.decisions import InstanceAction, PodAction
from akri.controller.jobs import build_broker_job
from akri.controller.pods import build_broker_pod
from akri.controller.resources import Configuration, Instance, Job, Node, Pod, Service
from akri.kube.api import Kube
from akri.kube.errors import describe, is_conflict, is_not_found
from akri.kube.resources import Resource
from akri.kube.watch import Informer, WatchEvent
from akri.model.configuration import Configuration as ConfigurationModel
from akri.model.errors import ValidationError
from akri.model.naming import broker_job_name, configuration_service_name, instance_service_name
from akri.retry import Backoff, BackoffTracker
from akri.workqueue import WorkQueue

log = logging.getLogger(__name__)

Key = tuple[str, ...]
ObjKey = tuple[str, str]

#: delay before re-creating the same broker Pod again: 0.5 s doubling to 5 min, reset when it runs
RECREATE_BACKOFF = Backoff(initial=0.5, factor=2.0, maximum=300.0, jitter=0.2)
#: a reconcile that failed on an API error is retried after 1, 2, 4 ... 60 s
ERROR_BACKOFF = Backoff(initial=1.0, factor=2.0, maximum=60.0, jitter=0.2)


def _meta(obj: Any) -> dict[str, Any]:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    return meta if isinstance(meta, dict) else {}


def _labels(obj: Any) -> dict[str, Any]:
    labels = _meta(obj).get("labels")
    return labels if isinstance(labels, dict) else {}


def _spec(obj: Any) -> dict[str, Any]:
    spec = obj.get("spec") if isinstance(obj, dict) else None
    return spec if isinstance(spec, dict) else {}


def _key(obj: Any) -> ObjKey:
    meta = _meta(obj)
    return meta.get("namespace") or "", meta.get("name") or ""


@dataclass(frozen=True, slots=True)
class Settings:
    workers: int = 8
    pending_grace: timedelta = decisions.PENDING_GRACE
    ended_grace: timedelta = decisions.ENDED_GRACE
    recreate_backoff: Backoff = RECREATE_BACKOFF
    error_backoff: Backoff = ERROR_BACKOFF


class _Index:
    """owner key -> set of object keys, maintained from informer events."""

    def __init__(self) -> None:
        self._by_owner: dict[ObjKey, set[ObjKey]] = defaultdict(set)
        self._owner_of: dict[ObjKey, ObjKey] = {}

    def update(self, obj_key: ObjKey, owner: ObjKey | None) -> None:
        old = self._owner_of.get(obj_key)
        if old == owner:
            return
        if old is not None:
            members = self._by_owner.get(old)
            if members is not None:
                members.discard(obj_key)
                if not members:
                    del self._by_owner[old]
            del self._owner_of[obj_key]
        if owner is not None:
            self._by_owner[owner].add(obj_key)
            self._owner_of[obj_key] = owner

    def remove(self, obj_key: ObjKey) -> None:
        self.update(obj_key, None)

    def get(self, owner: ObjKey) -> set[ObjKey]:
        return set(self._by_owner.get(owner, ()))


class BrokerController:
    """One leadership term's worth of controller: build, `await run()`, cancel to stop."""

    def __init__(self, kube: Kube, settings: Settings | None = None) -> None:
        self.kube = kube
        self.settings = settings or Settings()
        self.configurations = Informer(kube, Configuration)
        self.instances = Informer(kube, Instance)
        self.pods = Informer(kube, Pod, labels=CONFIGURATION_LABEL)  # the label exists
        self.jobs = Informer(kube, Job, labels=INSTANCE_LABEL)  # the label exists
        self.services = Informer(kube, Service, labels={CONTROLLER_LABEL: CONTROLLER_VALUE})
        self.nodes = Informer(kube, Node, namespace=None)  # cluster-scoped
        self.queue = WorkQueue()
        self._pods_by_instance = _Index()
        self._pods_by_configuration = _Index()
        self._jobs_by_instance = _Index()
        self._instances_by_configuration = _Index()
        self._generations: dict[ObjKey, Any] = {}
        self._parsed: dict[ObjKey, tuple[str | None, ConfigurationModel | None]] = {}
        self._node_states: dict[str, node_watcher.NodeState] = {}
        self._recreate = BackoffTracker(self.settings.recreate_backoff)
        self._not_before: dict[ObjKey, float] = {}
        self._deleting: set[ObjKey] = set()  # broker Pods this controller deleted itself
        self._errors = BackoffTracker(self.settings.error_backoff)
        self.ready = asyncio.Event()
        self.stats: dict[str, int] = defaultdict(int)

    # --- running ---------------------------------------------------------------------------

    def broker_pods(self) -> Iterator[dict[str, Any]]:
        return self.pods.values()

    async def run(self) -> None:
        consumers = [
            (self.configurations, self._on_configuration),
            (self.instances, self._on_instance),
            (self.pods, self._on_pod),
            (self.jobs, self._on_job),
            (self.services, self._on_service),
            (self.nodes, self._on_node),
        ]
        tasks = [asyncio.create_task(self._consume(inf, handler), name=f"informer-{inf._name}")
                 for inf, handler in consumers]
        try:
            # reconciling before every cache is filled would take missing-from-cache for missing
            await asyncio.gather(*(inf.synced.wait() for inf, _ in consumers))
            log.info("caches synced: %d configurations, %d instances, %d broker pods, %d nodes",
                     len(self.configurations.cache), len(self.instances.cache), len(self.pods.cache),
                     len(self.nodes.cache))
            self.ready.set()
            tasks.append(asyncio.create_task(self.queue.run(self._reconcile, self.settings.workers),
                                             name="workers"))
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            self.queue.close()

    async def _consume(self, informer: Informer, handler: Callable[[WatchEvent], None]) -> None:
        async for event in informer.events():
            try:
                handler(event)
            except Exception:  # one odd object must not stop the watch
                log.exception("handling %s %s %s failed", informer._name, event.type, event.key)

    # --- event routing (synchronous: only indexes and queue keys) ---------------------------

    def _instances_of(self, ns: str, configuration: str) -> set[ObjKey]:
        return self._instances_by_configuration.get((ns, configuration))

    def _on_configuration(self, event: WatchEvent) -> None:
        key = event.key
        ns, name = key
        generation = _meta(event.obj).get("generation")
        if event.type == "DELETED":
            self._generations.pop(key, None)
            self._parsed.pop(key, None)
        else:
            changed = self._generations.get(key, object()) != generation
            self._generations[key] = generation
            if not changed and event.type == "MODIFIED":
                return  # metadata-only change (finalizers, labels): brokers do not depend on it
        self.queue.add(("csvc", ns, name))
        for _, inst in self._instances_of(ns, name):
            self.queue.add(("instance", ns, inst))
            self.queue.add(("isvc", ns, inst))

    def _on_instance(self, event: WatchEvent) -> None:
        ns, name = event.key
        if event.type == "DELETED":
            self._instances_by_configuration.remove(event.key)
        else:
            config = _spec(event.obj).get("configurationName")
            owner = (ns, config) if isinstance(config, str) else None
            self._instances_by_configuration.update(event.key, owner)
        self.queue.add(("instance", ns, name))
        self.queue.add(("isvc", ns, name))

    def _on_pod(self, event: WatchEvent) -> None:
        ns, _ = event.key
        labels = _labels(event.obj)
        instance, config = labels.get(INSTANCE_LABEL), labels.get(CONFIGURATION_LABEL)
        if event.type == "DELETED":
            self._pods_by_instance.remove(event.key)
            self._pods_by_configuration.remove(event.key)
        else:
            self._pods_by_instance.update(event.key, (ns, instance) if isinstance(instance, str) else None)
            self._pods_by_configuration.update(event.key, (ns, config) if isinstance(config, str) else None)
            if services.is_running(event.obj):
                self._recreate.success(event.key)  # it made it: the next failure starts from scratch
        if event.type == "DELETED" and event.key in self._deleting:
            self._deleting.discard(event.key)
        elif event.type == "DELETED" and TARGET_NODE_LABEL in labels and self._still_wanted(event.obj):
            self._note_recreate(event.key)  # deleted by someone else: recreate, rate-limited
        if isinstance(instance, str):
            self.queue.add(("instance", ns, instance))
            self.queue.add(("isvc", ns, instance))
        if isinstance(config, str):
            self.queue.add(("csvc", ns, config))

    def _on_job(self, event: WatchEvent) -> None:
        ns, _ = event.key
        instance = _labels(event.obj).get(INSTANCE_LABEL)
        if event.type == "DELETED":
            self._jobs_by_instance.remove(event.key)
        else:
            self._jobs_by_instance.update(event.key, (ns, instance) if isinstance(instance, str) else None)
        if isinstance(instance, str):
            self.queue.add(("instance", ns, instance))

    def _on_service(self, event: WatchEvent) -> None:
        ns, _ = event.key
        labels = _labels(event.obj)
        if isinstance(labels.get(INSTANCE_LABEL), str):
            self.queue.add(("isvc", ns, labels[INSTANCE_LABEL]))
        if isinstance(labels.get(CONFIGURATION_LABEL), str):
            self.queue.add(("csvc", ns, labels[CONFIGURATION_LABEL]))

    def _on_node(self, event: WatchEvent) -> None:
        _, name = event.key
        previous = self._node_states.get(name)
        if event.type == "DELETED":
            self._node_states.pop(name, None)
            if node_watcher.needs_cleaning_on_delete(previous):
                log.info("node %s deleted: removing it from Instances", name)
                self.queue.add(("node", name))
            return
        ready = node_watcher.is_ready(event.obj)
        if node_watcher.needs_cleaning_on_update(previous, ready):
            log.info("node %s is no longer Ready: removing it from Instances", name)
            self.queue.add(("node", name))
        self._node_states[name] = node_watcher.state_after_update(previous, ready)

    def _still_wanted(self, pod: Any) -> bool:
        """Whether the Instance still lists the node of a (deleted) broker Pod."""
        ns, _ = _key(pod)
        labels = _labels(pod)
        inst = self.instances.get(ns, labels.get(INSTANCE_LABEL, ""))
        if inst is None or _meta(inst).get("deletionTimestamp"):
            return False
        nodes = _spec(inst).get("nodes")
        return isinstance(nodes, list) and labels.get(TARGET_NODE_LABEL) in nodes

    def _note_recreate(self, pod_key: ObjKey) -> None:
        delay = self._recreate.failure(pod_key)
        self._not_before[pod_key] = time.monotonic() + delay

    # --- reconcile dispatch -------------------------------------------------------------------

    async def _reconcile(self, key: Hashable) -> None:
        assert isinstance(key, tuple)
        kind = key[0]
        try:
            if kind == "instance":
                await self.reconcile_instance(key[1], key[2])
            elif kind == "isvc":
                await self.reconcile_instance_service(key[1], key[2])
            elif kind == "csvc":
                await self.reconcile_configuration_service(key[1], key[2])
            elif kind == "node":
                await self.reconcile_node(key[1])
        except Exception as exc:
            delay = self._errors.failure(key)
            self.stats["errors"] += 1
            log.warning("reconcile %s failed (%s); retrying in %.1f s", key, describe(exc), delay)
            self.queue.add_after(key, delay)
        else:
            self._errors.success(key)

    def configuration_model(self, ns: str, name: str) -> ConfigurationModel | None:
        """The parsed Configuration from the cache (parsed once per resourceVersion)."""
        obj = self.configurations.get(ns, name)
        if obj is None:
            return None
        rv = _meta(obj).get("resourceVersion")
        cached = self._parsed.get((ns, name))
        if cached is not None and cached[0] == rv:
            return cached[1]
        try:
            model: ConfigurationModel | None = ConfigurationModel.from_dict(dict(obj))
        except ValidationError as exc:
            log.error("Configuration %s/%s is not usable: %s", ns, name, exc)
            model = None
        self._parsed[(ns, name)] = (rv, model)
        return model

    # --- brokers ------------------------------------------------------------------------------

    def _instance_pods(self, ns: str, name: str) -> list[dict[str, Any]]:
        pods = (self.pods.get(*k) for k in self._pods_by_instance.get((ns, name)))
        return [p for p in pods if p is not None]

    def _instance_jobs(self, ns: str, name: str) -> list[dict[str, Any]]:
        jobs = (self.jobs.get(*k) for k in self._jobs_by_instance.get((ns, name)))
        return [j for j in jobs if j is not None]

    async def reconcile_instance(self, ns: str, name: str) -> None:
        inst = self.instances.get(ns, name)
        broker_pods = [p for p in self._instance_pods(ns, name) if TARGET_NODE_LABEL in _labels(p)]
        if inst is None or _meta(inst).get("deletionTimestamp"):
            # gone: remove its brokers (owner-reference GC would too, but only eventually)
            await self._apply_pod_decisions(
                ns, name, None, decisions.decide([], InstanceAction.REMOVE, broker_pods, decisions.now_utc())
            )
            await self._delete_jobs(self._instance_jobs(ns, name))
            return
        spec = _spec(inst)
        config = self.configuration_model(ns, spec.get("configurationName") or "")
        if config is None:
            log.debug("Instance %s/%s: Configuration %s not found (yet)", ns, name,
                      spec.get("configurationName"))
            return
        if config.spec.broker_pod_spec is not None:
            nodes = [n for n in spec.get("nodes") or [] if isinstance(n, str)]
            now = decisions.now_utc()
            plan = decisions.decide(nodes, InstanceAction.UPDATE, broker_pods, now,
                                    pending_grace=self.settings.pending_grace,
                                    ended_grace=self.settings.ended_grace)
            await self._apply_pod_decisions(ns, name, (inst, config), plan)
            self._schedule_grace_checks(("instance", ns, name), broker_pods, now)
            await self._delete_jobs(self._instance_jobs(ns, name))
        elif config.spec.broker_job_spec is not None:
            await self._reconcile_job(ns, name, inst, config)
            await self._apply_pod_decisions(
                ns, name, None, decisions.decide([], InstanceAction.REMOVE, broker_pods, decisions.now_utc())
            )

    async def _apply_pod_decisions(self, ns: str, instance: str,
                                   owner: tuple[dict[str, Any], ConfigurationModel] | None,
                                   plan: Iterable[decisions.PodDecision]) -> None:
        plan = list(plan)
        for d in plan:
            if d.action.removes and d.pod_name:
                pod_key = (d.namespace or ns, d.pod_name)
                cached = self.pods.get(*pod_key)
                uid = _meta(cached).get("uid") if cached is not None else None
                if d.action is PodAction.REMOVE_AND_ADD:
                    self._note_recreate(pod_key)
                    log.info("replacing broker Pod %s/%s on %s", pod_key[0], pod_key[1], d.node)
                else:
                    self._recreate.forget(pod_key)
                    self._not_before.pop(pod_key, None)
                    log.info("removing broker Pod %s/%s (node %s)", pod_key[0], pod_key[1], d.node)
                self._deleting.add(pod_key)
                try:
                    deleted = await self._delete(Pod, pod_key[1], pod_key[0], uid=uid)
                except Exception:
                    deleted = False
                    raise
                finally:
                    if not deleted:  # no DELETED event will come for it
                        self._deleting.discard(pod_key)
                self.stats["pods_deleted"] += 1
        if owner is None:
            return
        inst, config = owner
        meta, spec = _meta(inst), _spec(inst)
        for d in plan:
            # a RemoveAndAdd is re-created when the deletion shows up as a watch event (creating
            # a Pod of the same name while the old one is terminating only gets 409)
            if d.action is not PodAction.ADD:
                continue
            pod = build_broker_pod(
                instance_name=instance,
                instance_uid=meta.get("uid") or "",
                namespace=ns,
                configuration_name=spec.get("configurationName") or config.name,
                node=d.node,
                shared=bool(spec.get("shared")),
                pod_spec=config.spec.broker_pod_spec or {},
            )
            pod_key = (ns, pod["metadata"]["name"])
            wait = self._not_before.get(pod_key, 0.0) - time.monotonic()
            if wait > 0:
                self.queue.add_after(("instance", ns, instance), wait)
                continue
            if await self._create(Pod, pod, ns):
                self.stats["pods_created"] += 1

    def _schedule_grace_checks(self, key: Key, pods: Iterable[dict[str, Any]], now: datetime) -> None:
        """Look again when the grace period of a waiting (Pending/ended) broker Pod runs out."""
        soonest: float | None = None
        for pod in pods:
            phase = services.pod_phase(pod) or "Pending"
            if phase in decisions.STARTING_PHASES or _meta(pod).get("deletionTimestamp"):
                continue
            grace = self.settings.pending_grace if phase == "Pending" else self.settings.ended_grace
            status = pod.get("status") if isinstance(pod.get("status"), dict) else {}
            start = decisions.parse_time(status.get("startTime")) or decisions.parse_time(
                _meta(pod).get("creationTimestamp"))
            if start is None:
                continue
            left = (start + grace - now).total_seconds()
            if left > 0 and (soonest is None or left < soonest):
                soonest = left
        if soonest is not None:
            self.queue.add_after(key, soonest + 0.05)

    async def _reconcile_job(self, ns: str, name: str, inst: dict[str, Any],
                             config: ConfigurationModel) -> None:
        generation = config.generation or 0
        wanted = broker_job_name(name, generation)
        jobs = self._instance_jobs(ns, name)
        await self._delete_jobs([j for j in jobs if _meta(j).get("name") != wanted])
        if any(_meta(j).get("name") == wanted for j in jobs):
            return
        spec = _spec(inst)
        job = build_broker_job(
            instance_name=name,
            instance_uid=_meta(inst).get("uid") or "",
            namespace=ns,
            configuration_name=spec.get("configurationName") or config.name,
            generation=generation,
            job_spec=config.spec.broker_job_spec or {},
        )
        log.info("creating broker Job %s/%s", ns, wanted)
        if await self._create(Job, job, ns):
            self.stats["jobs_created"] += 1

    async def _delete_jobs(self, jobs: Iterable[dict[str, Any]]) -> None:
        for job in jobs:
            ns, name = _key(job)
            if _meta(job).get("deletionTimestamp"):
                continue
            log.info("deleting broker Job %s/%s", ns, name)
            try:
                # Jobs orphan their Pods by default: ask for background deletion (upstream does)
                await self.kube.delete(Job, name, ns, propagation_policy="Background")
            except Exception as exc:
                if not is_not_found(exc):
                    raise
            self.stats["jobs_deleted"] += 1

    async def _create(self, res: Resource, obj: dict[str, Any], ns: str) -> bool:
        """Create; False when an object of that name exists already."""
        try:
            await self.kube.create(res, obj, namespace=ns)
        except Exception as exc:
            if is_conflict(exc):  # already there (our cache lags our own writes)
                return False
            raise
        return True

    async def _delete(self, res: Resource, name: str, ns: str, *, uid: str | None = None) -> bool:
        """Delete (only the object with `uid`, when given); False if it was already gone."""
        try:
            return await self.kube.delete(res, name, ns, uid=uid)
        except Exception as exc:
            if is_conflict(exc):  # precondition failed: a newer object of that name, not ours to delete
                return False
            raise

    # --- services -----------------------------------------------------------------------------

    async def reconcile_instance_service(self, ns: str, name: str) -> None:
        svc_name = instance_service_name(name)
        existing = self.services.get(ns, svc_name)
        inst = self.instances.get(ns, name)
        desired = None
        if inst is not None and not _meta(inst).get("deletionTimestamp"):
            config = self.configuration_model(ns, _spec(inst).get("configurationName") or "")
            uid = _meta(inst).get("uid")
            if config is not None and config.spec.instance_service_spec is not None and uid:
                pods = self._instance_pods(ns, name)
                if services.service_wanted(existing is not None, pods):
                    desired = services.build_instance_service(
                        instance_name=name, instance_uid=uid, namespace=ns,
                        service_spec=config.spec.instance_service_spec)
        await self._converge_service(ns, svc_name, existing, desired)

    async def reconcile_configuration_service(self, ns: str, name: str) -> None:
        svc_name = configuration_service_name(name)
        existing = self.services.get(ns, svc_name)
        config = self.configuration_model(ns, name)
        desired = None
        if config is not None and config.spec.configuration_service_spec is not None and config.uid:
            pods = (self.pods.get(*k) for k in self._pods_by_configuration.get((ns, name)))
            if services.service_wanted(existing is not None, [p for p in pods if p is not None]):
                desired = services.build_configuration_service(
                    configuration_name=name, configuration_uid=config.uid, namespace=ns,
                    service_spec=config.spec.configuration_service_spec)
        await self._converge_service(ns, svc_name, existing, desired)

    async def _converge_service(self, ns: str, name: str, existing: dict[str, Any] | None,
                                desired: dict[str, Any] | None) -> None:
        if desired is None:
            if existing is not None and not _meta(existing).get("deletionTimestamp"):
                log.info("deleting Service %s/%s (no broker alive)", ns, name)
                await self._delete(Service, name, ns, uid=_meta(existing).get("uid"))
                self.stats["services_deleted"] += 1
            return
        if existing is None:
            log.info("creating Service %s/%s", ns, name)
            if await self._create(Service, desired, ns):
                self.stats["services_created"] += 1
        elif services.needs_update(existing, desired):
            log.info("updating Service %s/%s", ns, name)
            await self.kube.replace(Service, services.merge_for_update(existing, desired), namespace=ns)

    # --- nodes --------------------------------------------------------------------------------

    async def reconcile_node(self, node: str) -> None:
        current = self.nodes.get("", node)
        if current is not None and node_watcher.is_ready(current):
            return  # back before we got to it
        targets = node_watcher.instances_to_clean(self.instances.values(), node)
        for ns, name in targets:
            log.info("removing node %s from Instance %s/%s", node, ns, name)
            await self.kube.update_with_retry(
                Instance, name, ns, lambda obj: node_watcher.forget_node(obj, node),
                current=self.instances.get(ns, name),
            )
            self.stats["instances_cleaned"] += 1
