"""The metadata validation the real API applies to every object (names, labels, finalizers, owners).

Only the generic ObjectMeta rules: per-kind spec validation is out of scope for the double.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import ApiError, invalid
from .resources import ResourceType

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]\Z")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?\Z")


def dns_label_error(value: str) -> str | None:
    if len(value) > 63:
        return "must be no more than 63 characters"
    if not _DNS_LABEL.match(value):
        return (
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
            "and must start and end with an alphanumeric character"
        )
    return None


def dns_subdomain_error(value: str) -> str | None:
    if len(value) > 253:
        return "must be no more than 253 characters"
    if not _DNS_SUBDOMAIN.match(value):
        return (
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
            "'.', and must start and end with an alphanumeric character"
        )
    return None


def qualified_name_error(key: str) -> str | None:
    """Label/annotation key: optional DNS-subdomain prefix and '/', then a name of at most 63 chars."""
    prefix, slash, name = key.rpartition("/")
    if slash:
        if not prefix:
            return "prefix part must be non-empty"
        if err := dns_subdomain_error(prefix):
            return f"prefix part {err}"
    if not name:
        return "name part must be non-empty"
    if len(name) > 63:
        return "name part must be no more than 63 characters"
    if not _QUALIFIED_NAME.match(name):
        return (
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
            "end with an alphanumeric character"
        )
    return None


def label_value_error(value: str) -> str | None:
    if len(value) > 63:
        return "must be no more than 63 characters"
    if not _LABEL_VALUE.match(value):
        return (
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
            "'.', and must start and end with an alphanumeric character"
        )
    return None


def name_error(rt: ResourceType, name: str) -> str | None:
    return dns_label_error(name) if rt.name_format == "label" else dns_subdomain_error(name)


def validate_metadata(rt: ResourceType, obj: dict[str, Any]) -> None:
    """Raise 422 Invalid naming the first bad field of `obj["metadata"]`."""
    meta = obj["metadata"]
    name = meta.get("name") or ""

    def fail(field: str, value: Any, message: str) -> ApiError:
        return invalid(rt, name, f"metadata.{field}", message, value=value)

    if err := name_error(rt, name):
        raise fail("name", name, err)
    labels = meta.get("labels")
    if labels is not None:
        if not isinstance(labels, dict):
            raise fail("labels", labels, "must be a map of string keys to string values")
        for key, value in labels.items():
            if err := qualified_name_error(key):
                raise fail("labels", key, err)
            if not isinstance(value, str):
                raise fail(f"labels[{key}]", value, "must be a string")
            if err := label_value_error(value):
                raise fail("labels", value, err)
    annotations = meta.get("annotations")
    if annotations is not None:
        if not isinstance(annotations, dict):
            raise fail("annotations", annotations, "must be a map of string keys to string values")
        for key, value in annotations.items():
            if err := qualified_name_error(key):
                raise fail("annotations", key, err)
            if not isinstance(value, str):
                raise fail(f"annotations[{key}]", value, "must be a string")
    finalizers = meta.get("finalizers")
    if finalizers is not None:
        if not isinstance(finalizers, list) or not all(isinstance(f, str) for f in finalizers):
            raise fail("finalizers", finalizers, "must be a list of strings")
        for f in finalizers:
            if err := qualified_name_error(f):
                raise fail("finalizers", f, err)
    owners = meta.get("ownerReferences")
    if owners is not None:
        if not isinstance(owners, list):
            raise fail("ownerReferences", owners, "must be a list")
        controllers = 0
        for i, ref in enumerate(owners):
            if not isinstance(ref, dict):
                raise fail(f"ownerReferences[{i}]", ref, "must be an object")
            for required in ("apiVersion", "kind", "name", "uid"):
                if not ref.get(required):
                    raise invalid(
                        rt, name, f"metadata.ownerReferences[{i}].{required}", "", cause="FieldValueRequired"
                    )
            controllers += bool(ref.get("controller"))
        if controllers > 1:
            raise fail("ownerReferences", owners, "Only one reference can have Controller set to true")
