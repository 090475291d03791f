"""Object storage with the real API's write semantics, resourceVersions, watch history and watchers.

One cluster-wide resourceVersion counter (like etcd's revision) is bumped by every write. Stored
objects are never mutated after they are committed: a write builds a new dict, so events in the
history and objects being serialized by a response can share structure safely. Everything runs on
one asyncio loop and the write methods are synchronous, so a write, its event and the watcher
notifications happen atomically with respect to every request.
"""

from __future__ import annotations

import random
import uuid
from collections import deque
from collections.abc import Iterable
from typing import Any

from . import errors
from .errors import ApiError, bad_request
from .kinds import CreateDefaults, crd_resource_types
from .objects import Obj, clone, now_rfc3339
from .patch import json_patch, merge_patch, strategic_merge_patch
from .resources import ResourceRegistry, ResourceType
from .selectors import make_filter, parse_field_selector, parse_label_selector
from .validation import validate_metadata
from .watch import Event, Filter, Watcher

__all__ = ["Event", "Obj", "Store", "Watcher", "clone"]

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
DEFAULT_HISTORY_SIZE = 1000
PROPAGATION_POLICIES = ("Orphan", "Background", "Foreground")
ORPHAN_FINALIZER = "orphan"
FOREGROUND_FINALIZER = "foregroundDeletion"
# generateName suffix alphabet of the real API (no vowels, no confusable characters).
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


class Store:
    """All objects of all served types, keyed by group/resource, then (namespace, name)."""

    def __init__(
        self,
        registry: ResourceRegistry | None = None,
        *,
        history_size: int = DEFAULT_HISTORY_SIZE,
        garbage_collection: bool = True,
        namespaces: Iterable[str] = DEFAULT_NAMESPACES,
    ) -> None:
        from .gc import GarbageCollector  # gc imports this module

        self.registry = registry or ResourceRegistry()
        self.history_size = history_size
        self.resource_version = 0
        self._objects: dict[tuple[str, str], dict[tuple[str, str], Obj]] = {}
        self._history: dict[tuple[str, str], deque[Event]] = {}
        # For each type, every event with rv > floor is still in the history.
        self._floor: dict[tuple[str, str], int] = {}
        self._watchers: dict[tuple[str, str], set[Watcher]] = {}
        self._by_uid: dict[str, tuple[ResourceType, tuple[str, str]]] = {}
        self._dependents: dict[str, set[str]] = {}
        self._crd_types: dict[str, list[ResourceType]] = {}
        self._create_defaults = CreateDefaults()
        self.gc = GarbageCollector(self) if garbage_collection else None
        ns_type = self.registry.lookup("", "v1", "namespaces")
        if ns_type is not None:
            for ns in namespaces:
                self.create(ns_type, None, {"metadata": {"name": ns}})

    # ------------------------------------------------------------------ reads

    def objects_of(self, rt: ResourceType) -> dict[tuple[str, str], Obj]:
        return self._objects.setdefault(rt.key, {})

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        obj = self.objects_of(rt).get((self._ns(rt, namespace), name))
        if obj is None:
            raise errors.not_found(rt, name)
        return obj

    def by_uid(self, uid: str) -> tuple[ResourceType, Obj] | None:
        found = self._by_uid.get(uid)
        if found is None:
            return None
        rt, key = found
        obj = self._objects.get(rt.key, {}).get(key)
        return (rt, obj) if obj is not None else None

    def dependents_of(self, uid: str) -> list[tuple[ResourceType, Obj]]:
        return [d for dep in sorted(self._dependents.get(uid, ())) if (d := self.by_uid(dep)) is not None]

    def list(
        self,
        rt: ResourceType,
        namespace: str | None,
        match: Filter = None,
        *,
        limit: int | None = None,
        continue_after: tuple[str, str] | None = None,
    ) -> tuple[list[Obj], tuple[str, str] | None, int]:
        """Matching objects in key order; with `limit`, also the last key returned and how many remain.

        Pages are cut from the current state (not from a snapshot at the first page's version)."""
        items = self.objects_of(rt)
        keys = sorted(items)
        if namespace is not None and rt.namespaced:
            keys = [k for k in keys if k[0] == namespace]
        if continue_after is not None:
            keys = [k for k in keys if k > continue_after]
        out: list[Obj] = []
        last: tuple[str, str] | None = None
        for i, key in enumerate(keys):
            obj = items[key]
            if match is not None and not match(obj):
                continue
            if limit and len(out) == limit:
                remaining = sum(1 for k in keys[i:] if match is None or match(items[k]))
                return out, last, remaining
            out.append(obj)
            last = key
        return out, None, 0

    # ------------------------------------------------------------------ writes

    def create(
        self,
        rt: ResourceType,
        namespace: str | None,
        body: Obj,
        *,
        dry_run: bool = False,
        managed: dict[str, Any] | None = None,
    ) -> Obj:
        """POST. `body` is owned by the store from here on (callers pass a fresh parse or a clone)."""
        self._check_type(rt, body)
        meta = body["metadata"]
        if rt.namespaced:
            if namespace is None:
                raise bad_request("the namespace of the object is required for a namespaced resource")
            if meta.get("namespace") not in (None, "", namespace):
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if meta.get("resourceVersion"):
            raise ApiError(500, "InternalError", "resourceVersion should not be set on objects to be created")
        items = self.objects_of(rt)
        ns = meta.get("namespace", "")
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                raise errors.invalid(
                    rt, "", "metadata.name", "name or generateName is required", cause="FieldValueRequired"
                )
            for _ in range(100):
                meta["name"] = prefix + "".join(random.choices(_NAME_ALPHABET, k=5))
                if (ns, meta["name"]) not in items:
                    break
        name = meta["name"]
        for server_field in ("deletionTimestamp", "deletionGracePeriodSeconds", "managedFields", "selfLink"):
            meta.pop(server_field, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        meta["generation"] = 1
        if managed is not None:
            meta["managedFields"] = [managed]
        validate_metadata(rt, body)
        if (ns, name) in items:
            raise errors.already_exists(rt, name)
        self._create_defaults.apply(rt, body)
        if dry_run:
            return body
        return self._commit(rt, "ADDED", body, None)

    def update(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: Obj,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> tuple[Obj, bool]:
        """PUT. Returns (object, created)."""
        old = self.objects_of(rt).get((self._ns(rt, namespace), name))
        if old is None:
            if rt.create_on_update and subresource is None:
                self._check_type(rt, body)
                if body["metadata"].get("name", name) != name:
                    raise self._name_mismatch(body["metadata"]["name"], name)
                body["metadata"]["name"] = name
                body["metadata"].pop("resourceVersion", None)
                return self.create(rt, namespace, body, dry_run=dry_run), True
            raise errors.not_found(rt, name)
        if not rt.unconditional_update and not (
            isinstance(body, dict) and (body.get("metadata") or {}).get("resourceVersion")
        ):
            raise errors.invalid(
                rt, name, "metadata.resourceVersion", "must be specified for an update", value=0
            )
        return self._update(rt, old, body, subresource=subresource, dry_run=dry_run), False

    def patch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        patch_type: str,
        patch: Any,
        *,
        subresource: str | None = None,
        field_manager: str | None = None,
        dry_run: bool = False,
    ) -> tuple[Obj, bool]:
        """PATCH with patch_type "merge", "json", "strategic" or "apply". Returns (object, created)."""
        old = self.objects_of(rt).get((self._ns(rt, namespace), name))
        if patch_type == "apply":
            return self._apply(rt, namespace, name, old, patch, subresource, field_manager, dry_run)
        if old is None:
            raise errors.not_found(rt, name)
        if patch_type == "json":
            patched = json_patch(old, patch)
        else:
            if not isinstance(patch, dict):
                raise bad_request(f"a {patch_type} merge patch must be a JSON object")
            if patch_type == "strategic":
                if rt.custom:
                    raise errors.unsupported_media_type(
                        "application/strategic-merge-patch+json: strategic merge "
                        "patch is not supported for custom resources"
                    )
                patched = strategic_merge_patch(old, patch)
            else:
                patched = merge_patch(old, patch)
        if not isinstance(patched, dict):
            raise errors.unprocessable("the patched document is not an object")
        return self._update(rt, old, clone(patched), subresource=subresource, dry_run=dry_run), False

    def delete(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        *,
        propagation: str | None = None,
        preconditions: dict[str, Any] | None = None,
        dry_run: bool = False,
    ) -> tuple[Obj, bool]:
        """DELETE. Returns (object, removed): with finalizers the object stays, with deletionTimestamp."""
        old = self.get(rt, namespace, name)
        meta = old["metadata"]
        for field in ("uid", "resourceVersion"):
            want = (preconditions or {}).get(field)
            if want and want != meta.get(field):
                pretty = "UID" if field == "uid" else "ResourceVersion"
                raise errors.conflict(
                    rt,
                    name,
                    f"Precondition failed: {pretty} in precondition: {want}, "
                    f"{pretty} in object meta: {meta.get(field)}",
                )
        policy = propagation or rt.default_propagation
        if policy not in PROPAGATION_POLICIES:
            raise errors.invalid(
                rt,
                name,
                "propagationPolicy",
                'supported values: "Orphan", "Background", "Foreground"',
                value=policy,
                cause="FieldValueNotSupported",
            )
        finalizers = list(meta.get("finalizers") or [])
        if policy == "Orphan" and ORPHAN_FINALIZER not in finalizers:
            finalizers.append(ORPHAN_FINALIZER)
        if policy == "Foreground" and FOREGROUND_FINALIZER not in finalizers:
            finalizers.append(FOREGROUND_FINALIZER)
        if not finalizers:
            final = clone(old)
            if dry_run:
                return final, True
            return self._commit(rt, "DELETED", final, old), True
        if meta.get("deletionTimestamp") and finalizers == (meta.get("finalizers") or []):
            return old, False
        new = clone(old)
        new_meta = new["metadata"]
        new_meta["finalizers"] = finalizers
        if not new_meta.get("deletionTimestamp"):
            new_meta["deletionTimestamp"] = now_rfc3339()
            new_meta["deletionGracePeriodSeconds"] = 0
            new_meta["generation"] = new_meta.get("generation", 0) + 1
        if dry_run:
            return new, False
        return self._commit(rt, "MODIFIED", new, old), False

    # ------------------------------------------------------------------ watch

    def watch(self, rt: ResourceType, namespace: str | None, match: Filter, since: str | None) -> Watcher:
        """Subscribe. No (or "0") version: synthetic ADDED for the current objects, then live events.
        A version: exactly the later events, or 410 Expired when the history no longer reaches back."""
        watcher = Watcher(rt, namespace, match)
        if since in (None, "", "0"):
            items, _, _ = self.list(rt, namespace, match)
            for obj in items:
                watcher.pending.append(
                    ("ADDED", Event("ADDED", int(obj["metadata"]["resourceVersion"]), obj, None))
                )
        else:
            start = parse_resource_version(since)
            floor = self._floor.get(rt.key, 0)
            if start < floor:
                raise errors.expired(f"too old resource version: {start} ({floor + 1})")
            for event in self._history.get(rt.key, ()):
                if event.rv > start:
                    watcher.offer(event)
        if watcher.pending:
            watcher.wakeup.set()
        self._watchers.setdefault(rt.key, set()).add(watcher)
        return watcher

    def unwatch(self, watcher: Watcher) -> None:
        self._watchers.get(watcher.rt.key, set()).discard(watcher)

    def close_watches(self) -> int:
        """End every open watch stream (clients then re-watch): for tests of watch recovery."""
        count = 0
        for watchers in self._watchers.values():
            for watcher in list(watchers):
                watcher.close()
                count += 1
            watchers.clear()
        return count

    # ------------------------------------------------------------------ convenience API for tests

    def resource(self, name: str) -> ResourceType:
        """`instances`, `akrii`, `Instance`, `pods`, `instances.akri.sh`..."""
        return self.registry.find(name)

    def get_object(self, resource: str, name: str, namespace: str | None = None) -> Obj | None:
        rt = self.resource(resource)
        obj = self.objects_of(rt).get((self._ns(rt, namespace or "default"), name))
        return clone(obj) if obj is not None else None

    def list_objects(
        self,
        resource: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[Obj]:
        rt = self.resource(resource)
        match = make_filter(parse_label_selector(label_selector), parse_field_selector(field_selector, rt))
        return clone(self.list(rt, namespace, match)[0])

    def create_object(self, resource: str, obj: Obj, namespace: str | None = None) -> Obj:
        rt = self.resource(resource)
        body = clone(obj)
        ns = namespace or body.get("metadata", {}).get("namespace") or "default"
        return clone(self.create(rt, ns if rt.namespaced else None, body))

    def patch_object(
        self,
        resource: str,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        patch_type: str = "merge",
        subresource: str | None = None,
    ) -> Obj:
        rt = self.resource(resource)
        return clone(
            self.patch(rt, namespace or "default", name, patch_type, patch, subresource=subresource)[0]
        )

    def delete_object(
        self, resource: str, name: str, namespace: str | None = None, *, propagation: str | None = None
    ) -> Obj:
        rt = self.resource(resource)
        return clone(self.delete(rt, namespace or "default", name, propagation=propagation)[0])

    def set_pod_phase(self, namespace: str, name: str, phase: str) -> Obj:
        """What the kubelet would do: write status.phase through the status subresource."""
        return self.patch_object("pods", name, {"status": {"phase": phase}}, namespace, subresource="status")

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _ns(rt: ResourceType, namespace: str | None) -> str:
        return (namespace or "") if rt.namespaced else ""

    @staticmethod
    def _name_mismatch(body_name: str, url_name: str) -> ApiError:
        return bad_request(
            f"the name of the object ({body_name}) does not match the name on the URL ({url_name})"
        )

    @staticmethod
    def _check_type(rt: ResourceType, body: Any) -> None:
        """Fill apiVersion/kind from the URL when missing; reject a body of another type (400)."""
        if not isinstance(body, dict):
            raise bad_request(f"the body must be a JSON object of kind {rt.kind}")
        api_version, kind = body.get("apiVersion"), body.get("kind")
        if api_version and api_version != rt.api_version:
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({rt.api_version})"
            )
        if kind and kind != rt.kind:
            raise bad_request(f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})")
        body["apiVersion"] = rt.api_version
        body["kind"] = rt.kind
        meta = body.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise bad_request("metadata must be a JSON object")

    def _update(self, rt: ResourceType, old: Obj, new: Obj, *, subresource: str | None, dry_run: bool) -> Obj:
        """The shared tail of PUT, PATCH and the status subresource. `new` is owned by the store."""
        self._check_type(rt, new)
        old_meta = old["metadata"]
        name = old_meta["name"]
        meta = new["metadata"]
        if meta.get("name", name) != name:
            raise self._name_mismatch(meta["name"], name)
        if meta.get("namespace") not in (None, "", old_meta.get("namespace")) and rt.namespaced:
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        rv = meta.get("resourceVersion")
        if rv and rv != old_meta["resourceVersion"]:
            raise errors.stale(rt, name)
        if meta.get("uid") and meta["uid"] != old_meta["uid"]:
            raise errors.conflict(
                rt,
                name,
                f"Precondition failed: UID in precondition: {meta['uid']}, "
                f"UID in object meta: {old_meta['uid']}",
            )
        if subresource == "status":
            # Only status changes through /status (metadata and spec come from the stored object).
            result = clone(old)
            if "status" in new:
                result["status"] = new["status"]
            else:
                result.pop("status", None)
        else:
            result = new
            for field in (
                "name",
                "namespace",
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ):
                if field in old_meta:
                    meta[field] = old_meta[field]
                else:
                    meta.pop(field, None)
            if "managedFields" not in meta and "managedFields" in old_meta:
                meta["managedFields"] = clone(old_meta["managedFields"])
            if rt.status_subresource:
                # The main endpoint ignores status changes for types with a status subresource.
                if "status" in old:
                    result["status"] = clone(old["status"])
                else:
                    result.pop("status", None)
            validate_metadata(rt, result)
            if old_meta.get("deletionTimestamp"):
                added = [
                    f for f in meta.get("finalizers") or [] if f not in (old_meta.get("finalizers") or [])
                ]
                if added:
                    raise errors.invalid(
                        rt,
                        name,
                        "metadata.finalizers",
                        f"no new finalizers can be added if the object is being deleted, found "
                        f"new finalizers {added}",
                        cause="FieldValueForbidden",
                    )
        result["metadata"]["resourceVersion"] = old_meta["resourceVersion"]
        if _spec_changed(rt, old, result):
            result["metadata"]["generation"] = old_meta.get("generation", 0) + 1
        if result == old:
            return old  # a no-op write: no new resourceVersion, no event (as the real API)
        if dry_run:
            return result
        if result["metadata"].get("deletionTimestamp") and not result["metadata"].get("finalizers"):
            return self._commit(rt, "DELETED", result, old)
        return self._commit(rt, "MODIFIED", result, old)

    def _apply(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        old: Obj | None,
        patch: Any,
        subresource: str | None,
        field_manager: str | None,
        dry_run: bool,
    ) -> tuple[Obj, bool]:
        """Server-side apply, approximated: a merge (strategic for built-in types) of the applied
        configuration plus a managedFields entry. No field ownership, no conflicts, no removal of
        fields a manager stops applying."""
        if not field_manager:
            raise bad_request("PATCH: fieldManager is required for apply requests")
        if not isinstance(patch, dict):
            raise bad_request("the applied configuration must be an object")
        if not patch.get("apiVersion") or not patch.get("kind"):
            raise bad_request("apiVersion and kind must be set in the applied configuration")
        self._check_type(rt, patch)
        body_name = patch["metadata"].get("name")
        if body_name and body_name != name:
            raise self._name_mismatch(body_name, name)
        managed = {
            "manager": field_manager,
            "operation": "Apply",
            "apiVersion": rt.api_version,
            "time": now_rfc3339(),
            "fieldsType": "FieldsV1",
            "fieldsV1": _fields_v1({k: v for k, v in patch.items() if k not in ("apiVersion", "kind")}),
        }
        if subresource == "status":
            managed["subresource"] = "status"
        if old is None:
            if subresource is not None:
                raise errors.not_found(rt, name)
            body = clone(patch)
            body["metadata"]["name"] = name
            return self.create(rt, namespace, body, dry_run=dry_run, managed=managed), True
        merged = merge_patch(old, patch) if rt.custom else strategic_merge_patch(old, patch)
        merged = clone(merged)
        entries = [
            m
            for m in merged["metadata"].get("managedFields") or []
            if not (m.get("manager") == field_manager and m.get("operation") == "Apply")
        ]
        merged["metadata"]["managedFields"] = [*entries, managed]
        return self._update(rt, old, merged, subresource=subresource, dry_run=dry_run), False

    def _commit(self, rt: ResourceType, type_: str, obj: Obj, prev: Obj | None) -> Obj:
        """Give `obj` the next resourceVersion, store (or remove) it, record and publish the event."""
        self.resource_version += 1
        rv = self.resource_version
        meta = obj["metadata"]
        meta["resourceVersion"] = str(rv)
        key = (meta.get("namespace", ""), meta["name"])
        uid = meta["uid"]
        items = self.objects_of(rt)
        if type_ == "DELETED":
            items.pop(key, None)
            self._by_uid.pop(uid, None)
        else:
            items[key] = obj
            self._by_uid[uid] = (rt, key)
        self._index_owners(uid, prev, None if type_ == "DELETED" else obj)
        event = Event(type_, rv, obj, prev)
        history = self._history.get(rt.key)
        if history is None:
            history = self._history[rt.key] = deque()
        if len(history) >= self.history_size:
            self._floor[rt.key] = history.popleft().rv
        history.append(event)
        for watcher in self._watchers.get(rt.key, ()):
            watcher.offer(event)
        if rt.kind == "CustomResourceDefinition" and rt.group == "apiextensions.k8s.io":
            self._crd_changed(type_, obj)
        if self.gc is not None:
            self.gc.notice(rt, type_, obj, prev)
        return obj

    def _crd_changed(self, type_: str, crd: Obj) -> None:
        """Serve (or stop serving) the types a CustomResourceDefinition declares."""
        name = crd["metadata"]["name"]
        for rt in self._crd_types.pop(name, []):
            self.registry.remove(rt)
            if type_ == "DELETED":
                self._objects.pop(rt.key, None)
        if type_ == "DELETED":
            return
        added = []
        for rt in crd_resource_types(crd):
            if self.registry.lookup(rt.group, rt.version, rt.plural) is None:  # built-ins (akri.sh) stay
                self.registry.add(rt)
                added.append(rt)
        self._crd_types[name] = added

    def _index_owners(self, uid: str, prev: Obj | None, new: Obj | None) -> None:
        before = {r.get("uid") for r in (prev or {}).get("metadata", {}).get("ownerReferences") or []}
        after = {r.get("uid") for r in (new or {}).get("metadata", {}).get("ownerReferences") or []}
        for owner in before - after:
            deps = self._dependents.get(owner)
            if deps is not None:
                deps.discard(uid)
                if not deps:
                    del self._dependents[owner]
        for owner in after - before:
            self._dependents.setdefault(owner, set()).add(uid)


def parse_resource_version(value: str) -> int:
    try:
        rv = int(value)
        if rv < 0:
            raise ValueError
        return rv
    except ValueError:
        raise bad_request(f"invalid resource version: {value!r}") from None


def _spec_changed(rt: ResourceType, old: Obj, new: Obj) -> bool:
    """generation counts changes outside metadata (and outside status when /status owns it)."""
    skip = {"metadata", "apiVersion", "kind"}
    if rt.status_subresource:
        skip.add("status")
    keys = (old.keys() | new.keys()) - skip
    return any(old.get(k) != new.get(k) for k in keys)


def _fields_v1(value: Any) -> Any:
    if isinstance(value, dict):
        return {f"f:{k}": _fields_v1(v) for k, v in value.items()}
    return {}
