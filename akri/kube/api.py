"""`Kube`: the one Kubernetes access layer (typed helpers over akri.kube.http's HttpClient).

Every write to an object that several writers share (Instance `nodes`, `deviceUsage`,
finalizers) goes through `update_with_retry`: read, modify, write back WITH the
`metadata.resourceVersion` that was read (PUT), and on 409 Conflict re-read and try again after
a jittered delay, a bounded number of times. There is no server-side apply anywhere: mixing SSA
field managers with other writers is what produced upstream's 409 hot loop (issue #801).
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any, Final

from akri.kube.config import make_async_client
from akri.kube.errors import is_conflict, is_not_found
from akri.kube.http import HttpClient
from akri.kube.resources import ALL_NAMESPACES, Resource
from akri.retry import CONFLICT_BACKOFF, DEFAULT_ATTEMPTS, Backoff, retry

log = logging.getLogger(__name__)


class _Delete:
    """Sentinel a `mutate` function returns to ask for the object's deletion."""

    def __repr__(self) -> str:
        return "DELETE"


#: return this from an `update_with_retry` mutate function to delete the object instead
#: (guarded by the resourceVersion that was read, so a concurrent writer's change is not lost)
DELETE: Final = _Delete()

Mutate = Callable[[dict[str, Any]], Any]

#: `labels` of list/watch: a label selector string ("a=b,c"), or a mapping of label -> value
#: (equality) or None (the label exists)
Labels = str | Mapping[str, str | None]


def label_selector(labels: Labels | None) -> str | None:
    if labels is None or isinstance(labels, str):
        return labels or None
    return ",".join(k if v is None else f"{k}={v}" for k, v in labels.items()) or None


class Kube:
    """Typed helpers for get / list / create / replace / delete and guarded updates."""

    def __init__(
        self,
        client: HttpClient,
        *,
        attempts: int = DEFAULT_ATTEMPTS,
        conflict_backoff: Backoff = CONFLICT_BACKOFF,
    ) -> None:
        self.client = client
        self.namespace = client.config.namespace  # for namespaced kinds given no namespace
        self.attempts = attempts
        self.conflict_backoff = conflict_backoff

    @classmethod
    def from_config(
        cls,
        kubeconfig: str | os.PathLike[str] | None = None,
        *,
        context: str | None = None,
        timeout: float = 10.0,
    ) -> Kube:
        return cls(make_async_client(kubeconfig, context=context, timeout=timeout))

    async def close(self) -> None:
        await self.client.close()

    async def __aenter__(self) -> Kube:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _ns(self, res: Resource, namespace: str | None) -> str | None:
        return (namespace or self.namespace) if res.namespaced else None

    # --- reads -----------------------------------------------------------------------------

    async def get(self, res: Resource, name: str, namespace: str | None = None) -> Any:
        """The object, or raise ApiError (404 when missing)."""
        return await self.client.request("GET", res.path(self._ns(res, namespace), name))

    async def get_or_none(self, res: Resource, name: str, namespace: str | None = None) -> Any | None:
        try:
            return await self.get(res, name, namespace)
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise

    async def list(
        self, res: Resource, *, namespace: str | None = ALL_NAMESPACES, labels: Labels | None = None
    ) -> tuple[list[Any], str | None]:
        """Every matching object and the list's resourceVersion (to start a watch from).

        Items get the kind's apiVersion/kind (the API leaves them out of list items), so an
        object looks the same whether it came from a list, a get or a watch."""
        ns = namespace if namespace == ALL_NAMESPACES else self._ns(res, namespace)
        params: dict[str, Any] = {"labelSelector": label_selector(labels)}
        items: list[Any] = []
        rv: str | None = None
        while True:  # follow `continue` if the server pages on its own
            answer = await self.client.request("GET", res.path(ns), params=params)
            meta = answer.get("metadata") or {}
            rv = rv or meta.get("resourceVersion")
            for obj in answer.get("items") or []:
                obj.setdefault("apiVersion", res.api_version)
                obj.setdefault("kind", res.kind)
                items.append(obj)
            if not meta.get("continue"):
                return items, rv
            params["continue"] = meta["continue"]

    # --- writes ----------------------------------------------------------------------------

    def _body(self, res: Resource, obj: Mapping[str, Any]) -> dict[str, Any]:
        body = dict(obj)
        body.setdefault("apiVersion", res.api_version)
        body.setdefault("kind", res.kind)
        return body

    async def create(self, res: Resource, obj: Mapping[str, Any], namespace: str | None = None) -> Any:
        ns = self._ns(res, namespace or (obj.get("metadata") or {}).get("namespace"))
        return await self.client.request("POST", res.path(ns), body=self._body(res, obj))

    async def replace(self, res: Resource, obj: Mapping[str, Any], namespace: str | None = None) -> Any:
        """PUT the whole object. Carrying `metadata.resourceVersion` makes it conditional (409 if stale)."""
        meta = obj.get("metadata") or {}
        path = res.path(self._ns(res, namespace or meta.get("namespace")), meta.get("name") or "")
        return await self.client.request("PUT", path, body=self._body(res, obj))

    async def merge_patch(
        self, res: Resource, name: str, patch: Mapping[str, Any], namespace: str | None = None
    ) -> Any:
        """JSON merge patch (for fields nobody else writes; shared fields use update_with_retry)."""
        return await self.client.request(
            "PATCH", res.path(self._ns(res, namespace), name), body=dict(patch),
            content_type="application/merge-patch+json",
        )

    async def delete(
        self,
        res: Resource,
        name: str,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        uid: str | None = None,
        propagation_policy: str | None = None,
        missing_ok: bool = True,
    ) -> bool:
        """Delete; with `resource_version`/`uid` only if the object is still exactly that one (409 if not).

        `propagation_policy`: "Background", "Foreground" or "Orphan" for the object's dependents
        (the API's default depends on the kind: Jobs orphan their Pods).
        Returns False when the object was already gone (and `missing_ok`).
        """
        options: dict[str, Any] = {}
        pre = {k: v for k, v in (("resourceVersion", resource_version), ("uid", uid)) if v is not None}
        if pre:
            options["preconditions"] = pre
        if propagation_policy is not None:
            options["propagationPolicy"] = propagation_policy
        body = {"kind": "DeleteOptions", "apiVersion": "v1", **options} if options else None
        try:
            await self.client.request("DELETE", res.path(self._ns(res, namespace), name), body=body)
        except Exception as exc:
            if missing_ok and is_not_found(exc):
                return False
            raise
        return True

    async def update_with_retry(
        self,
        res: Resource,
        name: str,
        namespace: str | None,
        mutate: Mutate,
        *,
        current: Any | None = None,
        attempts: int | None = None,
    ) -> Any | None:
        """Read-modify-write guarded by resourceVersion; on 409 re-read and retry (jittered, bounded).

        `mutate(obj)` edits a private copy in place; when the copy equals what was read nothing is
        written. It may return DELETE to delete the object instead (conditional on the version read).
        `current` (e.g. from a watch cache) saves the first GET; later attempts always re-read.
        Returns the object as written (or as read when unchanged), None when it is (now) gone.
        Raises RetriesExhausted after `attempts` conflicts; other API errors propagate.
        """
        first = [current]

        async def attempt() -> Any | None:
            obj, first[0] = first[0], None
            if obj is None:
                obj = await self.get_or_none(res, name, namespace)
                if obj is None:
                    return None
            draft = copy.deepcopy(obj)
            verdict = mutate(draft)
            meta = obj.get("metadata") or {}
            if verdict is DELETE:
                await self.delete(
                    res, name, namespace, resource_version=meta.get("resourceVersion"), uid=meta.get("uid")
                )
                return None
            if draft == obj:
                return obj
            # the version that was read is what makes this write safe
            draft.setdefault("metadata", {})["resourceVersion"] = meta.get("resourceVersion")
            try:
                return await self.replace(res, draft, namespace=namespace)
            except Exception as exc:
                if is_not_found(exc):
                    return None
                raise

        return await retry(
            attempt,
            retry_on=is_conflict,
            attempts=attempts or self.attempts,
            backoff=self.conflict_backoff,
            what=f"update {res.kind} {namespace}/{name}",
        )

    async def add_finalizer(
        self, res: Resource, name: str, namespace: str | None, finalizer: str, *, current: Any | None = None
    ) -> Any | None:
        """Add `finalizer` unless present or the object is being deleted (the API refuses new ones)."""

        def mutate(obj: dict[str, Any]) -> None:
            meta = obj.setdefault("metadata", {})
            if meta.get("deletionTimestamp"):
                return
            fins = meta.setdefault("finalizers", [])
            if finalizer not in fins:
                fins.append(finalizer)

        return await self.update_with_retry(res, name, namespace, mutate, current=current)

    async def remove_finalizer(
        self, res: Resource, name: str, namespace: str | None, finalizer: str, *, current: Any | None = None
    ) -> Any | None:
        def mutate(obj: dict[str, Any]) -> None:
            meta = obj.setdefault("metadata", {})
            fins = meta.get("finalizers") or []
            if finalizer in fins:
                meta["finalizers"] = [f for f in fins if f != finalizer]

        return await self.update_with_retry(res, name, namespace, mutate, current=current)


def has_finalizer(obj: Mapping[str, Any], finalizer: str) -> bool:
    return finalizer in ((obj.get("metadata") or {}).get("finalizers") or [])
