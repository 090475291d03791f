"""Typed reading of JSON-like objects that collects every problem with its field path.

A `null` member is read as absent (the API server prunes nulls of non-nullable fields before
defaulting, so a typed reader must not treat them differently).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from akri.model.errors import FieldError, ValidationError, join_path, type_name

T = TypeVar("T")
_MISSING: Any = object()


def is_int(value: object) -> bool:
    """A JSON integer: Python's bool is an int subclass, JSON's true is not a number."""
    return isinstance(value, int) and not isinstance(value, bool)


class Reader:
    """Collects FieldErrors while typed values are pulled out of dicts."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    def raise_if_errors(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)

    def mapping(self, value: object, path: str) -> dict[str, Any] | None:
        if isinstance(value, dict):
            return value
        self.error(path, f"expected object, got {type_name(value)}")
        return None

    def _get(self, obj: dict[str, Any], key: str, path: str, required: bool) -> Any:
        value = obj.get(key)
        if value is None:
            if required:
                self.error(join_path(path, key), "required")
            return _MISSING
        return value

    def string(self, obj: dict[str, Any], key: str, path: str, *, required: bool = False,
               default: str | None = None, non_empty: bool = False) -> str | None:
        value = self._get(obj, key, path, required)
        if value is _MISSING:
            return default
        if not isinstance(value, str):
            self.error(join_path(path, key), f"expected string, got {type_name(value)}")
            return default
        if non_empty and not value:
            self.error(join_path(path, key), "must not be empty")
        return value

    def integer(self, obj: dict[str, Any], key: str, path: str, *, required: bool = False,
                default: int | None = None, minimum: int | None = None) -> int | None:
        value = self._get(obj, key, path, required)
        if value is _MISSING:
            return default
        if not is_int(value):
            self.error(join_path(path, key), f"expected integer, got {type_name(value)}")
            return default
        if minimum is not None and value < minimum:
            self.error(join_path(path, key), f"must be >= {minimum}, got {value}")
            return default
        return value

    def boolean(self, obj: dict[str, Any], key: str, path: str, *,
                default: bool | None = None) -> bool | None:
        value = self._get(obj, key, path, False)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            self.error(join_path(path, key), f"expected boolean, got {type_name(value)}")
            return default
        return value

    def string_map(self, obj: dict[str, Any], key: str, path: str) -> dict[str, str]:
        value = self._get(obj, key, path, False)
        if value is _MISSING:
            return {}
        here = join_path(path, key)
        if not isinstance(value, dict):
            self.error(here, f"expected object (map of strings), got {type_name(value)}")
            return {}
        out: dict[str, str] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                self.error(join_path(here, k), f"key must be a string, got {type_name(k)}")
            elif not isinstance(v, str):
                self.error(join_path(here, k), f"expected string, got {type_name(v)}")
            else:
                out[k] = v
        return out

    def string_list(self, obj: dict[str, Any], key: str, path: str) -> list[str]:
        value = self._get(obj, key, path, False)
        if value is _MISSING:
            return []
        here = join_path(path, key)
        if not isinstance(value, list):
            self.error(here, f"expected array of strings, got {type_name(value)}")
            return []
        out: list[str] = []
        for i, item in enumerate(value):
            if isinstance(item, str):
                out.append(item)
            else:
                self.error(join_path(here, i), f"expected string, got {type_name(item)}")
        return out

    def items(self, obj: dict[str, Any], key: str, path: str,
              read_item: Callable[[Any, str], T | None]) -> list[T] | None:
        """An optional array whose elements `read_item(value, path)` turns into T (None = bad)."""
        value = self._get(obj, key, path, False)
        if value is _MISSING:
            return None
        here = join_path(path, key)
        if not isinstance(value, list):
            self.error(here, f"expected array, got {type_name(value)}")
            return None
        out: list[T] = []
        for i, item in enumerate(value):
            parsed = read_item(item, join_path(here, i))
            if parsed is not None:
                out.append(parsed)
        return out
