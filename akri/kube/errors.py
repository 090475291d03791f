"""Classify errors from the Kubernetes API (lightkube raises httpx2 errors and ApiError)."""

from __future__ import annotations

import httpx2
from lightkube import ApiError


def status_code(exc: BaseException) -> int | None:
    """HTTP status of an API error, or None for errors that never got an answer."""
    if isinstance(exc, ApiError) and exc.status is not None and exc.status.code:
        return int(exc.status.code)
    if isinstance(exc, httpx2.HTTPStatusError):
        return exc.response.status_code
    return None


def is_not_found(exc: BaseException) -> bool:
    return status_code(exc) == 404


def is_conflict(exc: BaseException) -> bool:
    """409: stale resourceVersion on a write, or create of a name that exists."""
    return status_code(exc) == 409


def is_gone(exc: BaseException) -> bool:
    """410: a watch resourceVersion too old for the server; re-list."""
    return status_code(exc) == 410


def is_transient(exc: BaseException) -> bool:
    """Worth retrying later unchanged: no answer at all, throttling, or a server-side failure."""
    if isinstance(exc, httpx2.TransportError | OSError | TimeoutError):
        return True
    code = status_code(exc)
    return code is not None and (code == 429 or code >= 500)


def describe(exc: BaseException) -> str:
    code = status_code(exc)
    text = str(exc) or type(exc).__name__
    return f"HTTP {code}: {text}" if code is not None else f"{type(exc).__name__}: {text}"
