"""Admission rules for Configurations: the code behind `akri validate` and the webhook (spec §7).

`validate_configuration(obj)` returns every problem as a FieldError (empty list = valid):
1. `apiVersion`/`kind`/`metadata` are those of an akri.sh/v0 Configuration (metadata fields
   typed as Kubernetes' ObjectMeta; the name a DNS subdomain short enough for the kubelet
   resource names derived from it).
2. The spec parses as a typed Configuration (required fields, JSON types), plus the CRD's
   own constraints (property name pattern, exactly one of value/valueFrom, ...).
3. udev details: `udevRules` required and `permissions` one of r w m rw rm wm rwm.
   Built-in handlers then check their details themselves (`handler.validate`).
4. The round-trip rule: the object, re-serialised from the typed parse (Kubernetes specs
   keeping only the fields Kubernetes knows), must contain every value given. This rejects
   unknown fields anywhere, e.g. `xUnknownSyntheticField` in a brokerPodSpec.
Upstream's webhook panics on unparseable input; this never raises for any JSON-like input.
"""

from __future__ import annotations

import functools
import importlib
import logging
import re
from collections.abc import Callable
from typing import Any

from akri.model._parse import Reader, is_int
from akri.model.configuration import (
    BROKER_JOB_SPEC,
    BROKER_POD_SPEC,
    PROPERTY_NAME_PATTERN,
    ConfigurationSpec,
    read_configuration_spec,
)
from akri.model.constants import CONFIGURATION_KIND, GROUP_VERSION
from akri.model.errors import FieldError, join_path, type_name
from akri.model.k8s_schema import conform
from akri.model.roundtrip import check

log = logging.getLogger(__name__)

DETAILS_PATH = "spec.discoveryHandler.discoveryDetails"
# Python's `$` also matches before a final newline; the API server's RE2 `$` does not.
_PROPERTY_NAME = re.compile(PROPERTY_NAME_PATTERN.removeprefix("^").removesuffix("$"))
UDEV_PERMISSIONS = ("r", "w", "m", "rw", "rm", "wm", "rwm")
# Metadata the API server sets and upstream's webhook ignores (spec §7 step 4).
IGNORED_METADATA = ("creationTimestamp", "deletionTimestamp", "managedFields")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
# Instance resource names are akri.sh/<configuration>-<6 hex>; the part after the prefix of
# an extended resource name may have at most 63 characters.
MAX_CONFIGURATION_NAME = 63 - 7


def validate_configuration(obj: Any) -> list[FieldError]:
    """Every problem of a Configuration object (apiVersion, kind, metadata, spec); [] = valid."""
    try:
        errors = _validate(obj)
    except RecursionError:
        errors = [FieldError("", "object is nested too deeply")]
    return _dedupe(errors)


def _validate(obj: Any) -> list[FieldError]:
    if not isinstance(obj, dict):
        return [FieldError("", f"expected object, got {type_name(obj)}")]
    errors: list[FieldError] = []
    for key, expected in (("apiVersion", GROUP_VERSION), ("kind", CONFIGURATION_KIND)):
        value = obj.get(key)
        if value is None:
            errors.append(FieldError(key, f"required ({expected!r})"))
        elif value != expected:
            errors.append(FieldError(key, f"expected {expected!r}, got {value!r}"))

    metadata = _metadata(obj.get("metadata"), errors)

    reader = Reader()
    spec = read_configuration_spec(reader, obj.get("spec"), "spec")
    errors.extend(reader.errors)
    raw_spec = obj.get("spec")
    if isinstance(raw_spec, dict):
        errors.extend(_crd_constraints(raw_spec))
    if spec is None or reader.errors:
        return errors

    nested = _conform_nested(spec, errors)
    errors.extend(_udev_details(spec))
    errors.extend(_handler_details(spec, errors))

    if metadata is not None:
        reserialized = {
            "apiVersion": obj.get("apiVersion"),
            "kind": obj.get("kind"),
            "metadata": metadata,
            "spec": _with_nested(spec.to_dict(), nested),
        }
        given = _without_nulls(_without_ignored_metadata(obj))
        errors.extend(check(given, reserialized))
    return errors


def _metadata(value: Any, errors: list[FieldError]) -> dict[str, Any] | None:
    """Check metadata; return it typed as ObjectMeta (known fields only) for the round trip."""
    if value is None:
        errors.append(FieldError("metadata.name", "required"))
        return None
    if not isinstance(value, dict):
        errors.append(FieldError("metadata", f"expected object, got {type_name(value)}"))
        return None
    filtered = {k: v for k, v in value.items() if k not in IGNORED_METADATA}
    pruned, problems = conform(filtered, "ObjectMeta", "metadata")
    errors.extend(problems)
    name = value.get("name")
    if name is None:
        errors.append(FieldError("metadata.name", "required"))
    elif isinstance(name, str):
        if not _DNS_SUBDOMAIN.match(name) or len(name) > 253:
            errors.append(FieldError("metadata.name", "must be a lowercase DNS subdomain "
                                     "(a-z, 0-9, '-' and '.', starting and ending alphanumeric)"))
        elif len(name) > MAX_CONFIGURATION_NAME:
            errors.append(FieldError("metadata.name", f"at most {MAX_CONFIGURATION_NAME} characters: the "
                                     "kubelet resource akri.sh/<name>-<digest> of its Instances allows 63"))
    generation = value.get("generation")
    if is_int(generation) and generation < 0:  # its type is checked as ObjectMeta's above
        errors.append(FieldError("metadata.generation", "must not be negative"))
    return pruned if isinstance(pruned, dict) else None


def _crd_constraints(spec: dict[str, Any]) -> list[FieldError]:
    """What the CRD schema enforces beyond the typed parse."""
    errors: list[FieldError] = []
    handler = spec.get("discoveryHandler")
    if not isinstance(handler, dict):
        return errors
    if handler.get("name") == "":
        errors.append(FieldError("spec.discoveryHandler.name", "must not be empty"))
    properties = handler.get("discoveryProperties")
    if not isinstance(properties, list):
        return errors
    for i, prop in enumerate(properties):
        if not isinstance(prop, dict):
            continue
        path = join_path("spec.discoveryHandler.discoveryProperties", i)
        name = prop.get("name")
        if isinstance(name, str) and not _PROPERTY_NAME.fullmatch(name):
            errors.append(FieldError(join_path(path, "name"), f"{name!r} must match {PROPERTY_NAME_PATTERN}"))
        has_value = prop.get("value") is not None
        has_source = prop.get("valueFrom") is not None
        if has_value == has_source:
            errors.append(FieldError(path, "exactly one of value, valueFrom must be set"))
    return errors


def _conform_nested(spec: ConfigurationSpec, errors: list[FieldError]) -> dict[str, Any]:
    """Type-check the embedded Kubernetes specs; return them with only known fields."""
    out: dict[str, Any] = {}
    parts = (
        (BROKER_POD_SPEC, spec.broker_pod_spec, "PodSpec", f"spec.brokerSpec.{BROKER_POD_SPEC}"),
        (BROKER_JOB_SPEC, spec.broker_job_spec, "JobSpec", f"spec.brokerSpec.{BROKER_JOB_SPEC}"),
        ("instanceServiceSpec", spec.instance_service_spec, "ServiceSpec", "spec.instanceServiceSpec"),
        ("configurationServiceSpec", spec.configuration_service_spec, "ServiceSpec",
         "spec.configurationServiceSpec"),
    )
    for key, value, kind, path in parts:
        if value is not None:
            pruned, problems = conform(value, kind, path)
            errors.extend(problems)
            out[key] = pruned
    return out


def _with_nested(spec_dict: dict[str, Any], nested: dict[str, Any]) -> dict[str, Any]:
    for key, value in nested.items():
        if key in (BROKER_POD_SPEC, BROKER_JOB_SPEC):
            spec_dict["brokerSpec"] = {key: value}
        else:
            spec_dict[key] = value
    return spec_dict


def _without_ignored_metadata(obj: dict[str, Any]) -> dict[str, Any]:
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        return obj
    return {**obj, "metadata": {k: v for k, v in metadata.items() if k not in IGNORED_METADATA}}


def _without_nulls(value: Any) -> Any:
    """Object members that are null count as absent (the API server prunes them)."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def details_path(field: str) -> str:
    """Path of a field inside discoveryDetails, as named by a handler's InvalidDetails."""
    if not field or field == "discoveryDetails":
        return DETAILS_PATH
    if field.startswith(("discoveryDetails.", "discoveryDetails[")):
        return f"spec.discoveryHandler.{field}"
    if field.startswith("["):
        return DETAILS_PATH + field
    return f"{DETAILS_PATH}.{field}"


def validate_udev_details(details: str) -> list[FieldError]:
    """§7 step 3: udev details must have `udevRules` (a list of strings) and, if given,
    `permissions` in r w m rw rm wm rwm. Empty details pass (upstream vector)."""
    from akri.discovery.handler import InvalidDetails, load_details

    if not details:
        return []
    try:
        data = load_details(details)
    except InvalidDetails as exc:
        return [FieldError(details_path(exc.field), exc.message)]
    errors: list[FieldError] = []
    rules = data.get("udevRules")
    if rules is None:
        errors.append(FieldError(details_path("udevRules"), "required (a list of udev rules)"))
    elif not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
        errors.append(FieldError(details_path("udevRules"), "must be a list of strings"))
    permissions = data.get("permissions")
    if permissions is not None and permissions not in UDEV_PERMISSIONS:
        allowed = ", ".join(UDEV_PERMISSIONS)
        errors.append(FieldError(details_path("permissions"),
                                 f"invalid device permissions {permissions!r} (one of {allowed})"))
    group = data.get("groupRecursive")
    if group is not None and not isinstance(group, bool):
        errors.append(FieldError(details_path("groupRecursive"), f"expected boolean, got {type_name(group)}"))
    return errors


def _udev_details(spec: ConfigurationSpec) -> list[FieldError]:
    if spec.discovery_handler.name.lower() != "udev":
        return []
    return validate_udev_details(spec.discovery_handler.discovery_details)


def _handler_details(spec: ConfigurationSpec, found: list[FieldError]) -> list[FieldError]:
    """Let a built-in handler check its details; custom handlers are not known here."""
    from akri.discovery.handler import InvalidDetails

    name = spec.discovery_handler.name
    validate = handler_validator(name)
    if validate is None:
        return []
    try:
        validate(spec.discovery_handler.discovery_details)
    except InvalidDetails as exc:
        error = FieldError(details_path(exc.field), exc.message)
    except Exception as exc:  # a handler bug must not take the webhook down
        log.warning("discovery handler %r failed to check its details: %r", name, exc)
        error = FieldError(DETAILS_PATH, f"rejected by the {name} handler: {exc}")
    else:
        return []
    if any(e.path == error.path for e in found):  # already reported (udev rule above)
        return []
    return [error]


@functools.cache
def handler_validator(name: str) -> Callable[[str], Any] | None:
    """`validate(details)` of the built-in handler `name`, or None (custom, or not installed)."""
    try:
        from akri.discovery.handlers import BUILTIN, HandlerUnavailable, UnknownHandler, get_handler
    except ImportError:
        return None
    try:
        return get_handler(name).validate
    except UnknownHandler:
        return None
    except (HandlerUnavailable, ImportError):
        return None
    except Exception:
        # Constructing a handler may need its runtime environment (debugEcho reads
        # DEBUG_ECHO_INSTANCES_SHARED) although checking details does not: use an instance
        # made without __init__.
        target = BUILTIN.get(name)
        if target is None:
            return None
        try:
            module_name, cls_name = target.split(":")
            cls = getattr(importlib.import_module(module_name), cls_name)
            return cls.__new__(cls).validate
        except Exception:
            return None


def _dedupe(errors: list[FieldError]) -> list[FieldError]:
    seen: set[FieldError] = set()
    out: list[FieldError] = []
    for e in errors:
        if e not in seen:
            seen.add(e)
            out.append(e)
    return out
