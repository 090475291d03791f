"""AdmissionReview in, AdmissionReview out: the webhook's decision, without any HTTP (spec §7).

Upstream answers a review without `request` with HTTP 400 and panics on anything it cannot
parse as a Configuration. Here every input gets an answer: a body that is not a JSON
AdmissionReview with a `request` (and a `uid` to echo) is answered 400 with a short reason;
everything else is answered 200 with `allowed` true or false and, when denied, a message that
names the offending field. The checks are `akri.model.validation.validate_configuration`, the
same ones `akri validate` runs, so the webhook and the CLI never disagree.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

log = logging.getLogger(__name__)

# Nesting deeper than any real Configuration (a PodSpec is ~12 levels) is refused before any
# recursive code sees it: Python's recursion limit would otherwise turn it into a crash.
MAX_DEPTH = 100
# One message should stay readable in `kubectl` output.
MAX_ERRORS_IN_MESSAGE = 10

SUPPORTED_VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")
# Operations the webhook is registered for. Anything else (DELETE, CONNECT) is allowed
# untouched: there is no new object to validate, and denying a DELETE would wedge the resource.
VALIDATED_OPERATIONS = frozenset({"CREATE", "UPDATE"})

NO_OBJECT_MESSAGE = "AdmissionRequest object contains no data"

Validator = Callable[[Any], Sequence[Any]]


@dataclass(frozen=True, slots=True)
class Answer:
    """HTTP status, body bytes and content type for one /validate call."""

    status: int
    body: bytes
    content_type: str = "application/json"


def _bad_request(reason: str) -> Answer:
    return Answer(400, reason.encode() + b"\n", "text/plain")


def nesting_depth_exceeds(value: Any, limit: int) -> bool:
    """True when `value` nests lists/dicts deeper than `limit` (iterative: never recurses)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth + 1 > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _default_validator(obj: Any) -> Sequence[Any]:
    from akri.model.validation import validate_configuration

    return validate_configuration(obj)


def format_errors(errors: Sequence[Any]) -> str:
    """`path: message; path: message` (FieldError's own str), at most MAX_ERRORS_IN_MESSAGE."""
    parts = [str(err) for err in errors[:MAX_ERRORS_IN_MESSAGE]]
    if len(errors) > MAX_ERRORS_IN_MESSAGE:
        parts.append(f"... and {len(errors) - MAX_ERRORS_IN_MESSAGE} more")
    return "; ".join(parts)


def _review(api_version: str, uid: str, allowed: bool, message: str | None = None) -> Answer:
    response: dict[str, Any] = {"uid": uid, "allowed": allowed}
    if message is not None:
        response["status"] = {"message": message}
    body = {"apiVersion": api_version, "kind": "AdmissionReview", "response": response}
    return Answer(200, orjson.dumps(body))


def decide(request: dict[str, Any], validator: Validator) -> tuple[bool, str | None]:
    """(allowed, message) for one AdmissionRequest mapping."""
    operation = request.get("operation")
    if isinstance(operation, str) and operation not in VALIDATED_OPERATIONS:
        return True, None
    obj = request.get("object")
    if obj is None:
        return False, NO_OBJECT_MESSAGE
    if not isinstance(obj, dict):
        return False, f"request.object: must be a mapping (a Configuration), got {type(obj).__name__}"
    if nesting_depth_exceeds(obj, MAX_DEPTH):
        return False, f"request.object: nested deeper than {MAX_DEPTH} levels"
    try:
        errors = list(validator(obj))
    except Exception as e:  # a validator bug must deny this object, never take the webhook down
        log.exception("validator failed on %s", _describe(obj))
        return False, f"could not validate the Configuration: {type(e).__name__}: {e}"
    if errors:
        return False, format_errors(errors)
    return True, None


def _describe(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        return f"{meta.get('namespace')}/{meta.get('name')}"
    return "<no metadata>"


def handle(body: bytes, validator: Validator = _default_validator) -> Answer:
    """Answer one POST /validate body."""
    try:
        review = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        return _bad_request(f"body is not JSON: {e}")
    if not isinstance(review, dict):
        return _bad_request("body is not an AdmissionReview (a JSON object)")
    api_version = review.get("apiVersion")
    if api_version is None:
        api_version = SUPPORTED_VERSIONS[0]
    if api_version not in SUPPORTED_VERSIONS:
        return _bad_request(f"apiVersion: {api_version!r} is not one of {', '.join(SUPPORTED_VERSIONS)}")
    request = review.get("request")
    if not isinstance(request, dict):
        return _bad_request("request: missing or not an object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        return _bad_request("request.uid: missing or not a string")
    allowed, message = decide(request, validator)
    if allowed:
        log.debug("allowed %s", uid)
    else:
        obj = request.get("object")
        log.info("denied %s (%s): %s", uid, _describe(obj) if isinstance(obj, dict) else "-", message)
    return _review(api_version, uid, allowed, message)
