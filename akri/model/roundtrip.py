"""Upstream's round-trip rule (spec §7): every value given must survive typed parsing.

`check(given, parsed)` walks the object as given: objects by key, arrays by index. Each
given value must be present in the parsed (re-serialised) object, with the same JSON type
and value; extra keys or elements on the parsed side (defaults) are fine. A given key that
the parsed side lacks is an unknown field. Unlike upstream, which stops at the first
difference, every difference is reported with its path.
"""

from __future__ import annotations

import math
from typing import Any

from akri.model.errors import FieldError, join_path, type_name

_ABSENT: Any = object()


def check(given: Any, parsed: Any, path: str = "") -> list[FieldError]:
    errors: list[FieldError] = []
    _check(given, parsed, path, errors)
    return errors


def _check(given: Any, parsed: Any, path: str, errors: list[FieldError]) -> None:
    if given is None:
        if parsed is not None and parsed is not _ABSENT:
            errors.append(FieldError(path, f"null given but parsed as {_show(parsed)}"))
        return
    if parsed is _ABSENT:
        errors.append(FieldError(path, "unknown field"))
        return
    if parsed is None:
        errors.append(FieldError(path, f"{_show(given)} given but parsed as null"))
        return
    if isinstance(given, dict):
        if not isinstance(parsed, dict):
            errors.append(FieldError(path, f"object given but parsed as {type_name(parsed)}"))
            return
        for key, value in given.items():
            _check(value, parsed.get(key, _ABSENT), join_path(path, key), errors)
        return
    if isinstance(given, list):
        if not isinstance(parsed, list):
            errors.append(FieldError(path, f"array given but parsed as {type_name(parsed)}"))
            return
        for i, value in enumerate(given):
            _check(value, parsed[i] if i < len(parsed) else _ABSENT, join_path(path, i), errors)
        return
    if not _same_scalar(given, parsed):
        errors.append(FieldError(path, f"{_show(given)} given but parsed as {_show(parsed)}"))


def _same_scalar(a: Any, b: Any) -> bool:
    # JSON types must match exactly: Python's True == 1 and 1 == 1.0 would hide mismatches.
    if type_name(a) != type_name(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return False
    return bool(a == b)


def _show(value: Any) -> str:
    if isinstance(value, dict | list):
        return type_name(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    return f"{type_name(value)} {text if len(text) <= 40 else text[:37] + '...'}"
