"""Which fields Kubernetes core types have, for checking user-supplied PodSpec/JobSpec/ServiceSpec.

The field lists come from lightkube-models (generated from the Kubernetes OpenAPI document;
a runtime dependency already) through `msgspec.inspect`. `conform` reads a JSON value as the
typed Kubernetes object would: it returns the value with only the known fields kept, plus
the type errors it met (wrong JSON type, missing required field). Comparing the input with
that result is upstream's round-trip rule (spec §7).

lightkube-models types every map as an untyped `dict`. In these objects a map holds either
strings (labels, annotations, nodeSelector, selector, ...), quantities (resource
limits/requests, overhead: a string, or a number as the API server accepts), or free JSON
(managedFields' fieldsV1, a few empty "marker" objects), decided below by field name.
"""

from __future__ import annotations

import functools
from typing import Any

from msgspec import inspect as mi

from akri.model._parse import is_int
from akri.model.errors import FieldError, join_path, type_name

# Maps of resource quantities (value: string or number).
_QUANTITY_MAPS = frozenset({"limits", "requests", "overhead", "capacity", "allocatable", "hard", "used",
                            "allocatedResources"})
# Maps / marker objects whose content is free JSON.
_FREE_MAPS = frozenset({"fieldsV1"})
_FREE_OWNER_PREFIXES = ("WorkloadPodGroup",)


@functools.cache
def _roots() -> dict[str, mi.Type]:
    # Imported lazily: lightkube's models take ~0.1 s to import.
    from lightkube.models import batch_v1, core_v1, meta_v1

    kinds = {
        "PodSpec": core_v1.PodSpec,
        "JobSpec": batch_v1.JobSpec,
        "ServiceSpec": core_v1.ServiceSpec,
        "ObjectMeta": meta_v1.ObjectMeta,
    }
    return dict(zip(kinds, mi.multi_type_info(list(kinds.values())), strict=True))


KINDS = ("PodSpec", "JobSpec", "ServiceSpec", "ObjectMeta")


def conform(value: Any, kind: str, path: str) -> tuple[Any, list[FieldError]]:
    """Read `value` as Kubernetes `kind` (one of KINDS): (value with known fields only, errors)."""
    errors: list[FieldError] = []
    out = _walk(value, _roots()[kind], path, errors, None, None)
    return out, errors


def _walk(value: Any, t: mi.Type, path: str, errors: list[FieldError], owner: str | None,
          field: str | None) -> Any:
    if isinstance(t, mi.UnionType):
        return _walk_union(value, t, path, errors, owner, field)
    if isinstance(t, mi.StructType):
        return _walk_struct(value, t, path, errors)
    if isinstance(t, mi.ListType):
        if not isinstance(value, list):
            errors.append(FieldError(path, f"expected array, got {type_name(value)}"))
            return value
        return [_walk(item, t.item_type, join_path(path, i), errors, owner, field)
                for i, item in enumerate(value)]
    if isinstance(t, mi.DictType):
        return _walk_map(value, path, errors, owner, field)
    if isinstance(t, mi.StrType | mi.DateTimeType):
        if not isinstance(value, str):
            errors.append(FieldError(path, f"expected string, got {type_name(value)}"))
        return value
    if isinstance(t, mi.IntType):
        if not is_int(value):
            errors.append(FieldError(path, f"expected integer, got {type_name(value)}"))
        return value
    if isinstance(t, mi.FloatType):
        if not (is_int(value) or isinstance(value, float)):
            errors.append(FieldError(path, f"expected number, got {type_name(value)}"))
        return value
    if isinstance(t, mi.BoolType):
        if not isinstance(value, bool):
            errors.append(FieldError(path, f"expected boolean, got {type_name(value)}"))
        return value
    if isinstance(t, mi.NoneType):
        if value is not None:
            errors.append(FieldError(path, f"expected null, got {type_name(value)}"))
        return value
    # AnyType and anything newer: free JSON.
    return value


def _walk_union(value: Any, t: mi.UnionType, path: str, errors: list[FieldError], owner: str | None,
                field: str | None) -> Any:
    options = [x for x in t.types if not isinstance(x, mi.NoneType)]
    if value is None and len(options) < len(t.types):
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


def _type_label(t: mi.Type) -> str:
    if isinstance(t, mi.IntType):
        return "integer"
    if isinstance(t, mi.StrType):
        return "string"
    if isinstance(t, mi.BoolType):
        return "boolean"
    if isinstance(t, mi.ListType):
        return "array"
    return "object"


def _walk_struct(value: Any, t: mi.StructType, path: str, errors: list[FieldError]) -> Any:
    if not isinstance(value, dict):
        errors.append(FieldError(path, f"expected object, got {type_name(value)}"))
        return value
    out: dict[str, Any] = {}
    owner = t.cls.__name__
    for f in t.fields:
        name = f.encode_name
        member = value.get(name)
        if member is None:
            if f.required:
                errors.append(FieldError(join_path(path, name), "required"))
            if name in value:
                out[name] = None
            continue
        out[name] = _walk(member, f.type, join_path(path, name), errors, owner, name)
    # Fields not in `t` are left out: the caller's round-trip comparison reports them.
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
