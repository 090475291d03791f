"""ownerReference garbage collection, after the real garbage collector's rules.

- Background (default): once an owner is really gone, each dependent whose owners are all gone is
  deleted (honouring its own finalizers); a dependent that still has a live owner only loses the
  dangling reference.
- Foreground: the owner carries the `foregroundDeletion` finalizer; its dependents are deleted and the
  finalizer is removed once no dependent with `blockOwnerDeletion: true` remains.
- Orphan: the owner carries the `orphan` finalizer; the references to it are removed from its
  dependents, then the finalizer.
- A dependent created with a reference to an owner that does not exist (wrong uid, deleted already)
  is collected too, as in a real cluster. References to kinds the server does not serve are ignored.
- Deleting a Namespace deletes everything in it (simplified: no Terminating phase).

Work runs "soon after" the write that caused it: queued and drained by a loop callback, so every
HTTP response is sent before the collection it triggers.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from .errors import ApiError
from .resources import ResourceType

if TYPE_CHECKING:
    from .store import Obj, Store

log = logging.getLogger(__name__)


class GarbageCollector:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._queue: deque[tuple[str, str]] = deque()
        self._scheduled = False

    # ------------------------------------------------------------------ triggers (from Store._commit)

    def notice(self, rt: ResourceType, type_: str, obj: Obj, prev: Obj | None) -> None:
        meta = obj["metadata"]
        uid = meta["uid"]
        refs = meta.get("ownerReferences") or []
        if type_ == "DELETED":
            if self.store._dependents.get(uid):
                self._queue.append(("dependents", uid))
            # A dependent going away may let a foreground owner finish.
            for ref in refs:
                self._queue.append(("owner", ref.get("uid", "")))
            if rt.kind == "Namespace" and not rt.group:
                self._queue.append(("namespace", meta["name"]))
        else:
            finalizers = meta.get("finalizers") or []
            if meta.get("deletionTimestamp") and (
                "orphan" in finalizers or "foregroundDeletion" in finalizers
            ):
                self._queue.append(("owner", uid))
            before = (prev or {}).get("metadata", {}).get("ownerReferences") or []
            if refs and refs != before:
                self._queue.append(("dependent", uid))
        if self._queue:
            self._schedule()

    def _schedule(self) -> None:
        if self._scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a Store used synchronously): call run_pending() to collect
        self._scheduled = True
        loop.call_soon(self.run_pending)

    def run_pending(self) -> None:
        """Drain the queue (work it causes is queued and drained too)."""
        self._scheduled = False
        while self._queue:
            what, ident = self._queue.popleft()
            try:
                if what == "dependent":
                    self._attempt_dependent(ident)
                elif what == "dependents":
                    for dep_uid in list(self.store._dependents.get(ident, ())):
                        self._attempt_dependent(dep_uid)
                elif what == "owner":
                    self._process_owner(ident)
                elif what == "namespace":
                    self._empty_namespace(ident)
            except Exception:  # one bad object must not stop collection
                log.exception("garbage collection of %s %s failed", what, ident)

    # ------------------------------------------------------------------ rules

    def _owner_state(self, dependent: Obj, ref: dict[str, Any]) -> str:
        """ "live", "absent", "foreground" (being deleted, waiting for dependents) or "unknown"."""
        group = ref.get("apiVersion", "").rpartition("/")[0]
        owner_rt = next(
            (rt for rt in self.store.registry if rt.group == group and rt.kind == ref.get("kind")), None
        )
        if owner_rt is None:
            return "unknown"
        if owner_rt.namespaced:
            namespace = dependent["metadata"].get("namespace")
            if not namespace:
                return "absent"  # a cluster-scoped object cannot be owned by a namespaced one
        else:
            namespace = ""
        owner = self.store.objects_of(owner_rt).get((namespace, ref.get("name", "")))
        if owner is None or owner["metadata"]["uid"] != ref.get("uid"):
            return "absent"
        meta = owner["metadata"]
        if meta.get("deletionTimestamp") and "foregroundDeletion" in (meta.get("finalizers") or []):
            return "foreground"
        return "live"

    def _attempt_dependent(self, uid: str) -> None:
        found = self.store.by_uid(uid)
        if found is None:
            return
        rt, obj = found
        refs = obj["metadata"].get("ownerReferences") or []
        if not refs:
            return
        states = [self._owner_state(obj, ref) for ref in refs]
        if "absent" not in states:
            return
        if all(state in ("absent", "foreground") for state in states):
            self._delete(rt, obj)
        else:
            keep = [ref for ref, state in zip(refs, states, strict=True) if state != "absent"]
            self._set_owner_refs(rt, obj, keep)

    def _process_owner(self, uid: str) -> None:
        found = self.store.by_uid(uid)
        if found is None:
            return
        rt, owner = found
        meta = owner["metadata"]
        if not meta.get("deletionTimestamp"):
            return
        finalizers = list(meta.get("finalizers") or [])
        dependents = self.store.dependents_of(uid)
        if "orphan" in finalizers:
            for dep_rt, dep in dependents:
                refs = dep["metadata"].get("ownerReferences") or []
                self._set_owner_refs(dep_rt, dep, [r for r in refs if r.get("uid") != uid])
            self._remove_finalizer(rt, owner, "orphan")
        elif "foregroundDeletion" in finalizers:
            blocking = False
            for dep_rt, dep in dependents:
                ref = next(
                    (r for r in dep["metadata"].get("ownerReferences") or [] if r.get("uid") == uid), {}
                )
                if not dep["metadata"].get("deletionTimestamp"):
                    dep = self._delete(dep_rt, dep)
                if dep is not None and ref.get("blockOwnerDeletion"):
                    blocking = True
            if not blocking:
                self._remove_finalizer(rt, owner, "foregroundDeletion")

    def _empty_namespace(self, namespace: str) -> None:
        for rt in self.store.registry:
            if not rt.namespaced:
                continue
            for (ns, _), obj in list(self.store.objects_of(rt).items()):
                if ns == namespace and not obj["metadata"].get("deletionTimestamp"):
                    self._delete(rt, obj)

    # ------------------------------------------------------------------ writes (through the store)

    def _delete(self, rt: ResourceType, obj: Obj) -> Obj | None:
        """Delete in the background; the object if it is still there (finalizers), else None."""
        meta = obj["metadata"]
        try:
            result, removed = self.store.delete(
                rt,
                meta.get("namespace"),
                meta["name"],
                propagation="Background",
                preconditions={"uid": meta["uid"]},
            )
        except ApiError as e:
            if e.code in (404, 409):
                return None
            raise
        return None if removed else result

    def _set_owner_refs(self, rt: ResourceType, obj: Obj, refs: list[dict[str, Any]]) -> None:
        meta = obj["metadata"]
        patch: dict[str, Any] = {
            "metadata": {"ownerReferences": refs or None, "resourceVersion": meta["resourceVersion"]}
        }
        self._patch(rt, obj, patch)

    def _remove_finalizer(self, rt: ResourceType, obj: Obj, finalizer: str) -> None:
        meta = obj["metadata"]
        remaining = [f for f in meta.get("finalizers") or [] if f != finalizer]
        self._patch(
            rt,
            obj,
            {"metadata": {"finalizers": remaining or None, "resourceVersion": meta["resourceVersion"]}},
        )

    def _patch(self, rt: ResourceType, obj: Obj, patch: dict[str, Any]) -> None:
        meta = obj["metadata"]
        try:
            self.store.patch(rt, meta.get("namespace"), meta["name"], "merge", patch)
        except ApiError as e:
            if e.code not in (404, 409):
                raise
