"""Errors from the Kubernetes API and how to classify them.

* `ApiError`: the server answered with an error status; carries the HTTP status and the decoded
  `Status` object (reason, message) when the body was one;
* `TransportError`: no (complete) answer: connection refused or dropped, TLS failure, timeout;
* `InvalidRequest`: the request cannot be sent as built (a local bug): never retried.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answer of the API server (HTTP status >= 400)."""

    def __init__(self, status: int, body: Any = None, *, method: str = "", path: str = "") -> None:
        self.status = status
        self.body = body if isinstance(body, dict) else {}
        self.reason: str = str(self.body.get("reason") or "")
        self.message: str = str(self.body.get("message") or "")
        self.method = method
        self.path = path
        super().__init__(self._text(body))

    def _text(self, body: Any) -> str:
        if self.message:
            return f"{self.reason}: {self.message}" if self.reason else self.message
        where = f" ({self.method} {self.path})" if self.method else ""
        if isinstance(body, str | bytes) and body:
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
            return text.strip()[:200] + where
        return f"HTTP {self.status}{where}"


class TransportError(ConnectionError):
    """The request got no complete answer (connect, TLS, read failure or timeout)."""


class InvalidRequest(ValueError):
    """The request breaks HTTP/1.1 (a header value with a control character, spaces in the path):
    a bug on our side, the same on every attempt, so neither retried nor transient."""


def status_code(exc: BaseException) -> int | None:
    """HTTP status of an API error, or None for errors that never got an answer."""
    if isinstance(exc, ApiError):
        return exc.status
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
    if isinstance(exc, TransportError | OSError | TimeoutError):
        return True
    code = status_code(exc)
    return code is not None and (code == 429 or code >= 500)


def describe(exc: BaseException) -> str:
    code = status_code(exc)
    text = str(exc) or type(exc).__name__
    return f"HTTP {code}: {text}" if code is not None else f"{type(exc).__name__}: {text}"
