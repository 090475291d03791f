"""API errors, answered as `Status` objects with the reasons and messages the real API uses."""

from __future__ import annotations

from typing import Any

from .resources import ResourceType


class ApiError(Exception):
    """An error the server turns into a `kind: Status` body with `code` as the HTTP status."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            out["details"] = self.details
        return out


def _details(rt: ResourceType, name: str, *, kind: str | None = None, **extra: Any) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name}
    if rt.group:
        details["group"] = rt.group
    details["kind"] = kind or rt.plural
    details.update(extra)
    return details


def not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rt.group_resource} "{name}" not found', _details(rt, name))


def already_exists(rt: ResourceType, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{rt.group_resource} "{name}" already exists', _details(rt, name))


def conflict(rt: ResourceType, name: str, why: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {rt.group_resource} "{name}": {why}',
        _details(rt, name),
    )


STALE = "the object has been modified; please apply your changes to the latest version and try again"


def stale(rt: ResourceType, name: str) -> ApiError:
    return conflict(rt, name, STALE)


def invalid(
    rt: ResourceType,
    name: str,
    field: str,
    message: str,
    *,
    value: Any = None,
    cause: str = "FieldValueInvalid",
) -> ApiError:
    """422 Invalid naming the offending field, like the real API's field errors."""
    if cause == "FieldValueInvalid":
        text = f"{field}: Invalid value: {value!r}: {message}"
    elif cause == "FieldValueRequired":
        text = f"{field}: Required value: {message}"
    else:
        text = f"{field}: Forbidden: {message}"
    return ApiError(
        422,
        "Invalid",
        f'{rt.group_kind} "{name}" is invalid: {text}',
        _details(rt, name, kind=rt.kind, causes=[{"reason": cause, "message": text, "field": field}]),
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def expired(message: str) -> ApiError:
    # The real API uses reason "Expired" with code 410 (Gone) for a too-old resourceVersion;
    # clients key on the 410.
    return ApiError(410, "Expired", message)


def method_not_allowed() -> ApiError:
    return ApiError(
        405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
    )


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(
        415, "UnsupportedMediaType", f"the body of the request was in an unknown format: {content_type}"
    )


def path_not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def unprocessable(message: str) -> ApiError:
    """422 without a named object: what the real API answers when a JSON patch cannot be applied."""
    return ApiError(422, "Invalid", message)
