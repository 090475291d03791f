"""`Kube`: the one Kubernetes access layer (typed helpers over a lightkube AsyncClient).

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

from lightkube import AsyncClient
from lightkube.types import PatchType

from akri.kube.config import make_async_client
from akri.kube.errors import is_conflict, is_not_found
from akri.kube.resources import ALL_NAMESPACES
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


class Kube:
    """Typed helpers for get / list / create / replace / delete and guarded updates."""

    def __init__(
        self,
        client: AsyncClient,
        *,
        attempts: int = DEFAULT_ATTEMPTS,
        conflict_backoff: Backoff = CONFLICT_BACKOFF,
    ) -> None:
        self.client = client
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

    # --- reads -----------------------------------------------------------------------------

    async def get(self, res: type, name: str, namespace: str | None = None) -> Any:
        """The object, or raise ApiError (404 when missing)."""
        return await self.client.get(res, name, namespace=namespace)

    async def get_or_none(self, res: type, name: str, namespace: str | None = None) -> Any | None:
        try:
            return await self.client.get(res, name, namespace=namespace)
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise

    async def list(
        self, res: type, *, namespace: str | None = ALL_NAMESPACES, labels: Mapping[str, Any] | None = None
    ) -> tuple[list[Any], str | None]:
        """Every matching object and the list's resourceVersion (to start a watch from)."""
        it = self.client.list(res, namespace=namespace, labels=labels)
        items = [obj async for obj in it]
        rv: str | None
        try:
            rv = it.resourceVersion
        except Exception:  # NotReadyError: a server that sends no list metadata
            rv = None
        return items, rv

    # --- writes ----------------------------------------------------------------------------

    async def create(self, res: type, obj: Any, namespace: str | None = None) -> Any:
        if isinstance(obj, dict) and not isinstance(obj, res):
            obj = res(copy.deepcopy(obj))
        return await self.client.create(obj, namespace=namespace)

    async def replace(self, res: type, obj: Any, namespace: str | None = None) -> Any:
        """PUT the whole object. Carrying `metadata.resourceVersion` makes it conditional (409 if stale)."""
        if isinstance(obj, dict) and not isinstance(obj, res):
            obj = res(obj)
        return await self.client.replace(obj, namespace=namespace)

    async def merge_patch(
        self, res: type, name: str, patch: Mapping[str, Any], namespace: str | None = None
    ) -> Any:
        """JSON merge patch (for fields nobody else writes; shared fields use update_with_retry)."""
        return await self.client.patch(
            res, name, dict(patch), namespace=namespace, patch_type=PatchType.MERGE
        )

    async def delete(
        self,
        res: type,
        name: str,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        uid: str | None = None,
        missing_ok: bool = True,
    ) -> bool:
        """Delete; with `resource_version`/`uid` only if the object is still exactly that one (409 if not).

        Returns False when the object was already gone (and `missing_ok`).
        """
        try:
            if resource_version is None and uid is None:
                await self.client.delete(res, name, namespace=namespace)
            else:
                await self._delete_with_preconditions(res, name, namespace, resource_version, uid)
        except Exception as exc:
            if missing_ok and is_not_found(exc):
                return False
            raise
        return True

    async def _delete_with_preconditions(
        self, res: type, name: str, namespace: str | None, resource_version: str | None, uid: str | None
    ) -> None:
        # lightkube's delete() cannot send DeleteOptions.preconditions; build the same request it
        # would and add the body (the pieces used are lightkube's own request pipeline).
        generic = self.client._client
        br = generic.prepare_request("delete", res=res, name=name, namespace=namespace)
        pre: dict[str, str] = {}
        if resource_version is not None:
            pre["resourceVersion"] = resource_version
        if uid is not None:
            pre["uid"] = uid
        br.data = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": pre}
        resp = await generic.send(generic.build_adapter_request(br))
        generic.handle_response("delete", resp, br)

    async def update_with_retry(
        self,
        res: type,
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
            what=f"update {getattr(res, '__name__', res)} {namespace}/{name}",
        )

    async def add_finalizer(
        self, res: type, name: str, namespace: str | None, finalizer: str, *, current: Any | None = None
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
        self, res: type, name: str, namespace: str | None, finalizer: str, *, current: Any | None = None
    ) -> Any | None:
        def mutate(obj: dict[str, Any]) -> None:
            meta = obj.setdefault("metadata", {})
            fins = meta.get("finalizers") or []
            if finalizer in fins:
                meta["finalizers"] = [f for f in fins if f != finalizer]

        return await self.update_with_retry(res, name, namespace, mutate, current=current)


def has_finalizer(obj: Mapping[str, Any], finalizer: str) -> bool:
    return finalizer in ((obj.get("metadata") or {}).get("finalizers") or [])
