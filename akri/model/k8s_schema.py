"""Which fields Kubernetes core types have, for checking user-supplied PodSpec/JobSpec/ServiceSpec.

The field lists come from k8s_types.json, a table generated from lightkube-models (itself
generated from the Kubernetes OpenAPI document) by `python -m akri.model.k8s_schema_gen`;
its docstring describes the format. Reading a committed table keeps lightkube, its models and
msgspec out of the runtime dependencies. `conform` reads a JSON value as the typed Kubernetes
object would: it returns the value with only the known fields kept, plus the type errors it
met (wrong JSON type, missing required field). Comparing the input with that result is
upstream's round-trip rule (spec §7).

lightkube-models types every map as an untyped `dict` ("map" in the table). In these objects
a map holds either strings (labels, annotations, nodeSelector, selector, ...), quantities
(resource limits/requests, overhead: a string, or a number as the API server accepts), or
free JSON (managedFields' fieldsV1, a few empty "marker" objects), decided below by field name.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import orjson

from akri.model._parse import is_int
from akri.model.errors import FieldError, join_path, type_name

TABLE_FILE = "k8s_types.json"
# Maps of resource quantities (value: string or number).
_QUANTITY_MAPS = frozenset({"limits", "requests", "overhead", "capacity", "allocatable", "hard", "used",
                            "allocatedResources"})
# Maps / marker objects whose content is free JSON.
_FREE_MAPS = frozenset({"fieldsV1"})
_FREE_OWNER_PREFIXES = ("WorkloadPodGroup",)

KINDS = ("PodSpec", "JobSpec", "ServiceSpec", "ObjectMeta")

# A type: a primitive name, a struct name, ["list", type] or ["union", type, ...].
# A struct, as walked: (name, ((JSON key, type, required), ...)).
_Struct = tuple[str, tuple[tuple[str, Any, bool], ...]]


@functools.cache
def _table() -> tuple[dict[str, str], dict[str, _Struct]]:
    """(kind -> root struct name, struct name -> struct), read once from the package data."""
    data = orjson.loads(resources.files(__package__).joinpath(TABLE_FILE).read_bytes())
    structs: dict[str, _Struct] = {}
    for name, entry in data["structs"].items():
        required = frozenset(entry.get("required", ()))
        structs[name] = (name, tuple((key, t, key in required) for key, t in entry["fields"].items()))
    return data["roots"], structs


def _structs() -> dict[str, _Struct]:
    return _table()[1]


def conform(value: Any, kind: str, path: str) -> tuple[Any, list[FieldError]]:
    """Read `value` as Kubernetes `kind` (one of KINDS): (value with known fields only, errors)."""
    roots, _ = _table()
    errors: list[FieldError] = []
    out = _walk(value, roots[kind], path, errors, None, None)
    return out, errors


def _walk(value: Any, t: Any, path: str, errors: list[FieldError], owner: str | None,
          field: str | None) -> Any:
    if isinstance(t, list):
        if t[0] == "union":
            return _walk_union(value, t[1:], path, errors, owner, field)
        if not isinstance(value, list):
            errors.append(FieldError(path, f"expected array, got {type_name(value)}"))
            return value
        item_type = t[1]
        return [_walk(item, item_type, join_path(path, i), errors, owner, field)
                for i, item in enumerate(value)]
    if t == "str" or t == "datetime":
        if not isinstance(value, str):
            errors.append(FieldError(path, f"expected string, got {type_name(value)}"))
        return value
    struct = _structs().get(t)
    if struct is not None:
        return _walk_struct(value, struct, path, errors)
    if t == "map":
        return _walk_map(value, path, errors, owner, field)
    if t == "int":
        if not is_int(value):
            errors.append(FieldError(path, f"expected integer, got {type_name(value)}"))
        return value
    if t == "float":
        if not (is_int(value) or isinstance(value, float)):
            errors.append(FieldError(path, f"expected number, got {type_name(value)}"))
        return value
    if t == "bool":
        if not isinstance(value, bool):
            errors.append(FieldError(path, f"expected boolean, got {type_name(value)}"))
        return value
    if t == "null":
        if value is not None:
            errors.append(FieldError(path, f"expected null, got {type_name(value)}"))
        return value
    # "any": free JSON.
    return value


def _walk_union(value: Any, types: list[Any], path: str, errors: list[FieldError], owner: str | None,
                field: str | None) -> Any:
    options = [x for x in types if x != "null"]
    if value is None and len(options) < len(types):
        return None
    if len(options) == 1:
        return _walk(value, options[0], path, errors, owner, field)
    # e.g. IntOrString: the first option that reads without error wins.
    for option in options:
        attempt: list[FieldError] = []
        out = _walk(value, option, path, attempt, owner, field)
        if not attempt:
            return out
    names = " or ".join(_type_label(o) for o in options)
    errors.append(FieldError(path, f"expected {names}, got {type_name(value)}"))
    return value


def _type_label(t: Any) -> str:
    if t == "int":
        return "integer"
    if t == "str":
        return "string"
    if t == "bool":
        return "boolean"
    if isinstance(t, list) and t[0] == "list":
        return "array"
    return "object"


def _walk_struct(value: Any, struct: _Struct, path: str, errors: list[FieldError]) -> Any:
    if not isinstance(value, dict):
        errors.append(FieldError(path, f"expected object, got {type_name(value)}"))
        return value
    out: dict[str, Any] = {}
    owner, fields = struct
    for name, t, required in fields:
        member = value.get(name)
        if member is None:
            if required:
                errors.append(FieldError(join_path(path, name), "required"))
            if name in value:
                out[name] = None
            continue
        out[name] = _walk(member, t, join_path(path, name), errors, owner, name)
    # Fields not in the struct are left out: the caller's round-trip comparison reports them.
    return out


def _walk_map(value: Any, path: str, errors: list[FieldError], owner: str | None, field: str | None) -> Any:
    free = field in _FREE_MAPS or (owner is not None and owner.startswith(_FREE_OWNER_PREFIXES))
    if not isinstance(value, dict):
        errors.append(FieldError(path, f"expected object, got {type_name(value)}"))
        return value
    if free:
        return value
    quantities = field in _QUANTITY_MAPS
    for key, item in value.items():
        here = join_path(path, key)
        if not isinstance(key, str):
            errors.append(FieldError(here, f"key must be a string, got {type_name(key)}"))
        elif quantities:
            if not (isinstance(item, str) or is_int(item) or isinstance(item, float)):
                errors.append(FieldError(here, f"expected quantity (string or number), "
                                               f"got {type_name(item)}"))
        elif not isinstance(item, str):
            errors.append(FieldError(here, f"expected string, got {type_name(item)}"))
    return value
