"""The three PATCH dialects: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and an approximation
of Kubernetes strategic merge patch.

Strategic merge patch here is merge patch plus what built-in clients rely on: lists of objects
merged by their patch merge key (containers by name, conditions by type, ownerReferences by uid, ...),
`finalizers` merged as a set, and the `$patch: delete|replace`, `$deleteFromPrimitiveList/...`,
`$retainKeys` directives. `$setElementOrder` is accepted and ignored. The merge keys come from a
fixed table of the fields the real types declare, not from OpenAPI.

The functions never mutate their inputs; results may share unchanged subtrees with `target`.
"""

from __future__ import annotations

from typing import Any

from .errors import bad_request, unprocessable

# field name -> patch merge key, for lists of objects (from the built-in types' Go struct tags).
_MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "imagePullSecrets": "name",
    "resourceClaims": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "hostAliases": "ip",
    "podIPs": "ip",
    "hostIPs": "ip",
    "conditions": "type",
    "addresses": "type",
    "taints": "key",
    "ownerReferences": "uid",
}
_CONTAINER_LISTS = {"containers", "initContainers", "ephemeralContainers"}
# Lists of scalars whose patch strategy is "merge": a patch adds to the set instead of replacing it.
_SET_LISTS = {"finalizers"}


class JsonPatchError(Exception):
    pass


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes, everything else (lists too) replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# ---------------------------------------------------------------------------------------------
# Strategic merge patch (approximation, see module docstring)


def _merge_key(path: tuple[str, ...]) -> str | None:
    name = path[-1]
    if name == "ports":
        return "containerPort" if len(path) >= 2 and path[-2] in _CONTAINER_LISTS else "port"
    return _MERGE_KEYS.get(name)


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _strip_directives(v)
            for k, v in value.items()
            if not (
                k.startswith("$patch")
                or k.startswith("$setElementOrder/")
                or k == "$retainKeys"
                or k.startswith("$deleteFromPrimitiveList/")
            )
        }
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


_DELETE = object()


def strategic_merge_patch(target: Any, patch: Any, path: tuple[str, ...] = ()) -> Any:
    if not isinstance(patch, dict):
        return patch
    directive = patch.get("$patch")
    if directive == "replace":
        return _strip_directives(patch)
    if directive == "delete":
        return _DELETE
    if directive not in (None, "merge"):
        raise bad_request(f"unknown patch type: {directive!r}")
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list) and isinstance(value, list):
                result[field] = [v for v in result[field] if v not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value, (*path, key))
            if merged is _DELETE:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _merge_list(result.get(key), value, (*path, key))
        else:
            result[key] = value
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(current: Any, patch: list[Any], path: tuple[str, ...]) -> list[Any]:
    current = current if isinstance(current, list) else []
    if any(isinstance(p, dict) and p.get("$patch") == "replace" and len(p) == 1 for p in patch):
        return [_strip_directives(p) for p in patch if not (isinstance(p, dict) and p.get("$patch"))]
    name = path[-1]
    if name in _SET_LISTS:
        return current + [v for v in patch if v not in current]
    key = _merge_key(path)
    if key is None or not all(isinstance(p, dict) for p in patch):
        return _strip_directives(patch)
    result = list(current)
    for item in patch:
        wanted = item.get(key)
        index = next(
            (i for i, cur in enumerate(result) if isinstance(cur, dict) and cur.get(key) == wanted), None
        )
        if item.get("$patch") == "delete":
            if index is not None:
                result.pop(index)
        elif index is None:
            result.append(_strip_directives(item))
        else:
            result[index] = strategic_merge_patch(result[index], item, path)
    return result


# ---------------------------------------------------------------------------------------------
# JSON patch (RFC 6902)


def _parse_pointer(pointer: Any) -> list[str]:
    if not isinstance(pointer, str) or (pointer and not pointer.startswith("/")):
        raise JsonPatchError(f"invalid JSON pointer {pointer!r}")
    if pointer == "":
        return []
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]


def _list_index(container: list[Any], token: str, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise JsonPatchError(f"invalid array index {token!r}")
    index = int(token)
    if index > len(container) or (index == len(container) and not allow_end):
        raise JsonPatchError(f"array index {index} out of range (length {len(container)})")
    return index


def _resolve(doc: Any, tokens: list[str]) -> Any:
    cur = doc
    for token in tokens:
        if isinstance(cur, dict):
            if token not in cur:
                raise JsonPatchError(f"path element {token!r} does not exist")
            cur = cur[token]
        elif isinstance(cur, list):
            cur = cur[_list_index(cur, token, allow_end=False)]
        else:
            raise JsonPatchError(f"cannot traverse into a {type(cur).__name__} at {token!r}")
    return cur


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: unlike Python, true != 1 and 1 == 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _add(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent = _resolve(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_list_index(parent, last, allow_end=True), value)
    else:
        raise JsonPatchError(f"cannot add to a {type(parent).__name__}")
    return doc


def _remove(doc: Any, tokens: list[str]) -> tuple[Any, Any]:
    if not tokens:
        raise JsonPatchError("cannot remove the whole document")
    parent = _resolve(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise JsonPatchError(f"path element {last!r} does not exist")
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_list_index(parent, last, allow_end=False))
    raise JsonPatchError(f"cannot remove from a {type(parent).__name__}")


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def json_patch(doc: Any, operations: Any) -> Any:
    """Apply RFC 6902 `operations` to a copy of `doc`.

    A malformed patch is a 400 BadRequest; a patch that does not apply (missing path, failed
    `test`) is a 422, as in the real API.
    """
    if not isinstance(operations, list):
        raise bad_request("json patch must be a JSON array of operations")
    for i, op in enumerate(operations):
        if not isinstance(op, dict) or op.get("op") not in (
            "add",
            "remove",
            "replace",
            "move",
            "copy",
            "test",
        ):
            raise bad_request(f"json patch operation {i}: unknown or missing 'op' in {op!r}")
        if "path" not in op:
            raise bad_request(f"json patch operation {i}: missing 'path'")
        if op["op"] in ("add", "replace", "test") and "value" not in op:
            raise bad_request(f"json patch operation {i} ({op['op']}): missing 'value'")
        if op["op"] in ("move", "copy") and "from" not in op:
            raise bad_request(f"json patch operation {i} ({op['op']}): missing 'from'")
    doc = _copy(doc)
    for i, op in enumerate(operations):
        kind = op["op"]
        try:
            tokens = _parse_pointer(op["path"])
            if kind == "add":
                doc = _add(doc, tokens, _copy(op["value"]))
            elif kind == "remove":
                doc, _ = _remove(doc, tokens)
            elif kind == "replace":
                _resolve(doc, tokens)  # must exist
                if tokens:
                    doc, _ = _remove(doc, tokens)
                doc = _add(doc, tokens, _copy(op["value"]))
            elif kind == "move":
                source = _parse_pointer(op["from"])
                if tokens[: len(source)] == source and len(tokens) > len(source):
                    raise JsonPatchError("cannot move a value into one of its children")
                doc, value = _remove(doc, source)
                doc = _add(doc, tokens, value)
            elif kind == "copy":
                doc = _add(doc, tokens, _copy(_resolve(doc, _parse_pointer(op["from"]))))
            elif not _json_equal(_resolve(doc, tokens), op["value"]):
                raise JsonPatchError(f"test failed: value at {op['path']!r} is not {op['value']!r}")
        except JsonPatchError as e:
            raise unprocessable(
                f"json patch operation {i} ({kind} {op['path']!r}) does not apply: {e}"
            ) from None
    return doc
