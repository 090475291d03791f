"""Helpers for objects as the store keeps them: plain JSON dicts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

Obj = dict[str, Any]


def clone(value: Any) -> Any:
    """Deep copy of a JSON value (orjson round trip: several times faster than copy.deepcopy)."""
    return orjson.loads(orjson.dumps(value))


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
