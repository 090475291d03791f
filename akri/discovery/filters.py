"""Filter lists in discovery details (upstream `discovery-utils/src/filtering.rs`).

A FilterList is `{items: [string], action: Include|Exclude}` (action defaults to Include).
Two evaluations exist upstream and both are kept because handlers depend on their
differences:

* `should_include` (OPC UA application names and custom handlers): Include keeps only listed
  values, Exclude keeps only unlisted ones, so `Include []` keeps nothing.
* `execute_filter` (ONVIF scopes, IP and MAC addresses) answers "filter this device out?":
  `Exclude []` keeps everything, and a device whose value is unknown (e.g. its IP could not be
  read) is filtered out by any other list.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from akri.discovery.handler import InvalidDetails
from akri.model.errors import type_name


class FilterAction(enum.StrEnum):
    INCLUDE = "Include"
    EXCLUDE = "Exclude"


@dataclass(frozen=True, slots=True)
class FilterList:
    items: tuple[str, ...]
    action: FilterAction = FilterAction.INCLUDE

    @classmethod
    def parse(cls, value: Any, field: str) -> FilterList:
        """Build a FilterList from parsed YAML; errors name `field` (e.g. `ipAddresses.items[1]`)."""
        if not isinstance(value, Mapping):
            raise InvalidDetails(
                field, f"must be an object with 'items' and optional 'action', got {type_name(value)}")
        if "items" not in value:
            # upstream (serde) requires the key; a missing list is more likely a typo than "nothing"
            raise InvalidDetails(f"{field}.items", "is required (a list of strings)")
        raw_items = value["items"]
        if raw_items is None:
            raw_items = []
        if not isinstance(raw_items, list):
            raise InvalidDetails(f"{field}.items", f"must be a list of strings, got {type_name(raw_items)}")
        for i, item in enumerate(raw_items):
            if not isinstance(item, str):
                raise InvalidDetails(f"{field}.items[{i}]", f"must be a string, got {type_name(item)}")
        raw_action = value.get("action", FilterAction.INCLUDE.value)
        try:
            action = FilterAction(raw_action)
        except ValueError:
            raise InvalidDetails(
                f"{field}.action", f"must be 'Include' or 'Exclude', got {raw_action!r}"
            ) from None
        unknown = sorted(str(k) for k in value if k not in ("items", "action"))
        if unknown:
            raise InvalidDetails(f"{field}.{unknown[0]}",
                                 "unknown key (a filter list has 'items' and 'action')")
        return cls(tuple(raw_items), action)

    @classmethod
    def parse_optional(cls, details: Mapping[str, Any], key: str, *, parent: str = "") -> FilterList | None:
        """The FilterList under `details[key]`, or None when the key is absent or null."""
        value = details.get(key)
        if value is None:
            return None
        return cls.parse(value, f"{parent}.{key}" if parent else key)

    def to_dict(self) -> dict[str, Any]:
        # upstream omits an empty items list when serializing
        out: dict[str, Any] = {"items": list(self.items)} if self.items else {}
        out["action"] = self.action.value
        return out


def should_include(filter_list: FilterList | None, item: str) -> bool:
    """Upstream `should_include`: no list keeps everything; otherwise exact membership decides."""
    if filter_list is None:
        return True
    contained = item in filter_list.items
    return contained if filter_list.action is FilterAction.INCLUDE else not contained


def _equal(value: str, pattern: str) -> bool:
    return value == pattern


def execute_filter(
    filter_list: FilterList | None,
    values: Iterable[str] | None,
    predicate: Callable[[str, str], bool] = _equal,
) -> bool:
    """ONVIF variant; True means FILTER OUT.

    `values` are what the device offers (its scopes, its IP, its MAC); None means unknown.
    `predicate(value, pattern)` says whether a value matches a list item (ONVIF compares IP and
    MAC case-insensitively and splits scope strings on whitespace).
    """
    if filter_list is None:
        return False
    if not filter_list.items and filter_list.action is FilterAction.EXCLUDE:
        return False
    if values is None:
        return True
    candidates = list(values)
    matched = any(predicate(value, pattern) for pattern in filter_list.items for value in candidates)
    return not matched if filter_list.action is FilterAction.INCLUDE else matched
