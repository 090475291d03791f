"""Errors that name the field at fault: one shape for parsing, `akri validate` and the webhook."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")


@dataclass(frozen=True)
class FieldError:
    """One problem at one place: `path` is a dotted JSON path such as `spec.capacity` or
    `spec.brokerSpec.brokerPodSpec.containers[0].image` ("" for the object itself)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ValidationError(ValueError):
    """Input that cannot be used; `.errors` lists every problem found, each with its path."""

    def __init__(self, errors: Iterable[FieldError]) -> None:
        self.errors: list[FieldError] = list(errors)
        super().__init__("; ".join(str(e) for e in self.errors) or "invalid")


def join_path(base: str, key: object) -> str:
    """Extend a field path: `a.b`, `a[0]`, or `a["key/with.dots"]` for keys that are not plain."""
    if isinstance(key, int) and not isinstance(key, bool):
        return f"{base}[{key}]"
    text = key if isinstance(key, str) else str(key)
    if _PLAIN_KEY.match(text):
        return f"{base}.{text}" if base else text
    return f"{base}[{json.dumps(text, ensure_ascii=False)}]"


def type_name(value: object) -> str:
    """The JSON name of a value's type, for messages ("expected string, got integer")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
