"""The aiohttp application: URL parsing, request decoding, responses and watch streams.

One catch-all route parses Kubernetes paths itself (`/api/v1/namespaces/{ns}/pods/{name}/status`,
`/apis/{group}/{version}/{plural}`, ...), so every type in the resource table is served by the same
code. Errors are answered as `Status` objects.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from dataclasses import dataclass
from typing import Any

import orjson
import yaml
from aiohttp import web

from . import discovery, errors, openapi
from .errors import ApiError, bad_request
from .resources import ResourceType
from .selectors import make_filter, parse_field_selector, parse_label_selector
from .store import Obj, Store, Watcher
from .tables import to_table, wants_table

log = logging.getLogger(__name__)

JSON = "application/json"
PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    "application/json-patch+json": "json",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
}
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


def truthy(value: str | None) -> bool:
    """Query booleans as the real API parses them: true/True/1 (kubernetes_asyncio sends "True")."""
    return value is not None and value.lower() in ("true", "1", "t", "yes")


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type=JSON)


def error_response(error: ApiError) -> web.Response:
    return json_response(error.status(), error.code)


@dataclass(slots=True)
class Target:
    rt: ResourceType
    namespace: str | None  # None: cluster-scoped type, or all namespaces
    name: str | None
    subresource: str | None


def _encode_continue(rv: str, key: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([rv, *key])).decode()


def _decode_continue(token: str) -> tuple[str, tuple[str, str]]:
    """(resourceVersion of the first page, last key returned)."""
    try:
        rv, ns, name = orjson.loads(base64.urlsafe_b64decode(token.encode()))
        return str(rv), (str(ns), str(name))
    except Exception:
        raise bad_request("continue key is not valid: expected a token from a previous list") from None


def _int_param(query: Any, name: str) -> int | None:
    value = query.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise bad_request(f"invalid value for query parameter {name}: {value!r} (want an integer)") from None


class ApiHandler:
    def __init__(self, store: Store, *, bookmark_interval: float = 60.0) -> None:
        self.store = store
        self.bookmark_interval = bookmark_interval

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._dispatch(request)
        except ApiError as e:
            return error_response(e)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug in the double must show up in the client, not kill the server
            log.exception("internal error serving %s %s", request.method, request.path)
            return error_response(ApiError(500, "InternalError", f"internal error: {e!r}"))

    # ------------------------------------------------------------------ routing

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        if not parts:
            return json_response(
                {"paths": ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/readyz", "/version"]}
            )
        head = parts[0]
        if head in ("healthz", "livez", "readyz") and len(parts) == 1:
            return web.Response(text="ok")
        if head == "version" and len(parts) == 1:
            return json_response(discovery.VERSION_INFO)
        if head == "openapi" and len(parts) >= 2 and parts[1] == "v3":
            return self._openapi(parts[2:])
        if head == "api":
            if len(parts) == 1:
                return json_response(discovery.api_versions(request.host))
            group, version, rest = "", parts[1], parts[2:]
        elif head == "apis":
            if len(parts) == 1:
                return json_response(discovery.api_group_list(self.store.registry))
            if len(parts) == 2:
                doc = discovery.api_group(self.store.registry, parts[1])
                if doc is None:
                    raise errors.path_not_found()
                return json_response(doc)
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise errors.path_not_found()
        if not rest:
            if request.method != "GET":
                raise errors.method_not_allowed()
            doc = discovery.api_resource_list(self.store.registry, group, version)
            if doc is None:
                raise errors.path_not_found()
            return json_response(doc)
        target = self._target(group, version, rest)
        return await self._serve(request, target)

    def _openapi(self, rest: list[str]) -> web.Response:
        if not rest:
            return json_response(openapi.root(self.store.registry))
        if rest[0] == "api" and len(rest) == 2:
            doc = openapi.group_version_doc(self.store.registry, "", rest[1])
        elif rest[0] == "apis" and len(rest) == 3:
            doc = openapi.group_version_doc(self.store.registry, rest[1], rest[2])
        else:
            doc = None
        if doc is None:
            raise errors.path_not_found()
        return json_response(doc)

    def _target(self, group: str, version: str, rest: list[str]) -> Target:
        namespace: str | None = None
        namespace_subresource = group == "" and len(rest) == 3 and rest[2] in ("status", "finalize")
        if rest[0] == "namespaces" and len(rest) >= 3 and not namespace_subresource:
            namespace, rest = rest[1], rest[2:]
        if len(rest) > 3:
            raise errors.path_not_found()
        rt = self.store.registry.lookup(group, version, rest[0])
        if rt is None:
            raise errors.path_not_found()
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else None
        if namespace is not None and not rt.namespaced:
            raise errors.path_not_found()
        if namespace is None and rt.namespaced and name is not None:
            raise errors.path_not_found()
        if subresource is not None and not (subresource == "status" and rt.status_subresource):
            raise errors.path_not_found()
        return Target(rt, namespace, name, subresource)

    async def _serve(self, request: web.Request, t: Target) -> web.StreamResponse:
        method, query = request.method, request.query
        dry_run = query.get("dryRun") == "All"
        if t.name is None:
            if method == "GET":
                if truthy(query.get("watch")):
                    return await self._watch(request, t)
                return self._list(request, t)
            if method == "POST":
                if t.rt.namespaced and t.namespace is None:
                    raise errors.method_not_allowed()
                obj = self.store.create(t.rt, t.namespace, await self._body(request), dry_run=dry_run)
                return self._object_response(request, t.rt, obj, 201)
            if method == "DELETE":
                return await self._delete_collection(request, t)
            raise errors.method_not_allowed()
        if method == "GET":
            if truthy(query.get("watch")) and t.subresource is None:
                return await self._watch(request, t)  # the old single-object watch form
            return self._object_response(request, t.rt, self.store.get(t.rt, t.namespace, t.name))
        if method == "PUT":
            obj, created = self.store.update(
                t.rt,
                t.namespace,
                t.name,
                await self._body(request),
                subresource=t.subresource,
                dry_run=dry_run,
            )
            return self._object_response(request, t.rt, obj, 201 if created else 200)
        if method == "PATCH":
            content_type = request.content_type
            patch_type = PATCH_TYPES.get(content_type)
            if patch_type is None:
                raise errors.unsupported_media_type(content_type)
            if patch_type == "apply" and query.get("force") not in (None, "", "true", "false"):
                raise bad_request("force must be true or false")
            obj, created = self.store.patch(
                t.rt,
                t.namespace,
                t.name,
                patch_type,
                await self._body(request),
                subresource=t.subresource,
                field_manager=query.get("fieldManager"),
                dry_run=dry_run,
            )
            return self._object_response(request, t.rt, obj, 201 if created else 200)
        if method == "DELETE" and t.subresource is None:
            options = await self._delete_options(request)
            obj, removed = self.store.delete(
                t.rt,
                t.namespace,
                t.name,
                propagation=options["policy"],
                preconditions=options["preconditions"],
                dry_run=dry_run or options["dry_run"],
            )
            if removed and not t.rt.return_deleted_object:
                meta = obj["metadata"]
                details = {"name": meta["name"], "kind": t.rt.plural, "uid": meta["uid"]}
                if t.rt.group:
                    details["group"] = t.rt.group
                return json_response(
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "metadata": {},
                        "status": "Success",
                        "details": details,
                    }
                )
            return self._object_response(request, t.rt, obj)
        raise errors.method_not_allowed()

    # ------------------------------------------------------------------ request decoding

    async def _body(self, request: web.Request) -> Any:
        raw = await request.read()
        content_type = request.content_type
        if not raw:
            raise bad_request("the request body is empty")
        if "protobuf" in content_type or "cbor" in content_type:
            raise errors.unsupported_media_type(content_type)
        if "yaml" in content_type:
            try:
                return yaml.safe_load(raw)
            except yaml.YAMLError as e:
                raise bad_request(f"the request body is not valid YAML: {e}") from None
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise bad_request(f"the request body is not valid JSON: {e}") from None

    async def _delete_options(self, request: web.Request) -> dict[str, Any]:
        """DeleteOptions from the body (official client) and/or query parameters (lightkube, kubectl)."""
        body: dict[str, Any] = {}
        if request.can_read_body:
            raw = await request.read()
            if raw.strip():
                try:
                    body = orjson.loads(raw)
                except orjson.JSONDecodeError as e:
                    raise bad_request(f"DeleteOptions body is not valid JSON: {e}") from None
                if not isinstance(body, dict):
                    raise bad_request("DeleteOptions body must be a JSON object")
        query = request.query
        policy = query.get("propagationPolicy") or body.get("propagationPolicy")
        orphan = query.get("orphanDependents")
        orphan_flag = truthy(orphan) if orphan is not None else body.get("orphanDependents")
        if policy is None and orphan_flag is not None:
            policy = "Orphan" if orphan_flag else "Background"
        preconditions = body.get("preconditions") or {}
        if not isinstance(preconditions, dict):
            raise bad_request("DeleteOptions.preconditions must be an object")
        return {"policy": policy, "preconditions": preconditions, "dry_run": body.get("dryRun") == ["All"]}

    def _selection(self, request: web.Request, t: Target) -> Any:
        query = request.query
        match = make_filter(
            parse_label_selector(query.get("labelSelector")),
            parse_field_selector(query.get("fieldSelector"), t.rt),
        )
        if t.name is not None:  # a watch on one object
            name, inner = t.name, match

            def match(obj: Obj) -> bool:
                return obj["metadata"]["name"] == name and (inner is None or inner(obj))

        return match

    # ------------------------------------------------------------------ responses

    def _object_response(
        self, request: web.Request, rt: ResourceType, obj: Obj, status: int = 200
    ) -> web.Response:
        if wants_table(request.headers.get("Accept", "")):
            return json_response(
                to_table(rt, [obj], {"resourceVersion": obj["metadata"].get("resourceVersion", "")}), status
            )
        return json_response(obj, status)

    def _list(self, request: web.Request, t: Target) -> web.Response:
        query = request.query
        limit = _int_param(query, "limit")
        token = query.get("continue")
        # Every page reports the first page's resourceVersion (as the real API's consistent pages do):
        # a watch from it then sees any change made while the pages were read.
        list_rv, after = _decode_continue(token) if token else (str(self.store.resource_version), None)
        items, last, remaining = self.store.list(
            t.rt,
            t.namespace,
            self._selection(request, t),
            limit=limit if limit and limit > 0 else None,
            continue_after=after,
        )
        list_meta: dict[str, Any] = {"resourceVersion": list_rv}
        if last is not None and remaining:
            list_meta["continue"] = _encode_continue(list_rv, last)
            list_meta["remainingItemCount"] = remaining
        if wants_table(request.headers.get("Accept", "")):
            return json_response(to_table(t.rt, items, list_meta))
        return json_response(
            {"apiVersion": t.rt.api_version, "kind": t.rt.list_kind, "metadata": list_meta, "items": items}
        )

    async def _delete_collection(self, request: web.Request, t: Target) -> web.Response:
        options = await self._delete_options(request)
        items, _, _ = self.store.list(t.rt, t.namespace, self._selection(request, t))
        deleted = []
        for obj in list(items):
            meta = obj["metadata"]
            try:
                result, _ = self.store.delete(
                    t.rt,
                    meta.get("namespace"),
                    meta["name"],
                    propagation=options["policy"],
                    dry_run=request.query.get("dryRun") == "All" or options["dry_run"],
                )
            except ApiError as e:
                if e.code == 404:
                    continue
                raise
            deleted.append(result)
        return json_response(
            {
                "apiVersion": t.rt.api_version,
                "kind": t.rt.list_kind,
                "metadata": {"resourceVersion": str(self.store.resource_version)},
                "items": deleted,
            }
        )

    # ------------------------------------------------------------------ watch

    def _bookmark(self, rt: ResourceType, initial_end: bool = False) -> bytes:
        meta: dict[str, Any] = {"resourceVersion": str(self.store.resource_version)}
        if initial_end:
            meta["annotations"] = {INITIAL_EVENTS_END: "true"}
        return (
            orjson.dumps(
                {
                    "type": "BOOKMARK",
                    "object": {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta},
                }
            )
            + b"\n"
        )

    async def _watch(self, request: web.Request, t: Target) -> web.StreamResponse:
        query = request.query
        timeout = _int_param(query, "timeoutSeconds")
        bookmarks = truthy(query.get("allowWatchBookmarks"))
        send_initial = truthy(query.get("sendInitialEvents"))
        table = wants_table(request.headers.get("Accept", ""))
        match = self._selection(request, t)
        response = web.StreamResponse(status=200, headers={"Content-Type": JSON})
        response.enable_chunked_encoding()
        try:
            watcher = self.store.watch(
                t.rt, t.namespace, match, None if send_initial else query.get("resourceVersion")
            )
        except ApiError as e:
            if e.code != 410:
                raise
            # As the real API: 200, then one ERROR event carrying the Status, then the end of the stream.
            await response.prepare(request)
            await response.write(orjson.dumps({"type": "ERROR", "object": e.status()}) + b"\n")
            await response.write_eof()
            return response
        try:
            await response.prepare(request)
            await self._stream(response, watcher, t.rt, timeout, bookmarks, send_initial, table)
            await response.write_eof()
        except (ConnectionResetError, ConnectionError):
            pass  # the client went away
        finally:
            self.store.unwatch(watcher)
        return response

    async def _stream(
        self,
        response: web.StreamResponse,
        watcher: Watcher,
        rt: ResourceType,
        timeout_seconds: int | None,
        bookmarks: bool,
        send_initial: bool,
        table: bool,
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_seconds if timeout_seconds and timeout_seconds > 0 else None
        next_bookmark = loop.time() + self.bookmark_interval
        initial_end_pending = send_initial and bookmarks
        while True:
            lines = [self._event_line(rt, type_, event, table) for type_, event in watcher.take()]
            now = loop.time()
            # A bookmark is only correct when nothing is pending: `take()` just emptied the queue.
            timed_out = deadline is not None and now >= deadline
            if initial_end_pending:
                lines.append(self._bookmark(rt, initial_end=True))
                initial_end_pending = False
            elif bookmarks and not watcher.closed and (timed_out or now >= next_bookmark):
                # Periodically, and just before a timeout (as the real API does).
                lines.append(self._bookmark(rt))
                next_bookmark = now + self.bookmark_interval
            if lines:
                await response.write(b"".join(lines))
            if timed_out or watcher.closed:
                return
            if watcher.pending:
                continue
            wake_at = [x for x in (deadline, next_bookmark if bookmarks else None) if x is not None]
            try:
                if wake_at:
                    await asyncio.wait_for(watcher.wakeup.wait(), max(0.0, min(wake_at) - loop.time()))
                else:
                    await watcher.wakeup.wait()
            except TimeoutError:
                pass

    def _event_line(self, rt: ResourceType, type_: str, event: Any, table: bool) -> bytes:
        if not table:
            return event.line(type_)
        return (
            orjson.dumps(
                {"type": type_, "object": to_table(rt, [event.obj], {"resourceVersion": str(event.rv)})}
            )
            + b"\n"
        )
