"""The `Configuration` custom resource (`akri.sh/v0`, spec §1.1), typed.

`Configuration.from_dict` reads like upstream's Rust types do: required fields and JSON
types are enforced, unknown fields are ignored, defaults are filled in (capacity 1,
discoveryDetails "", brokerProperties {}). The stricter admission rules (CRD constraints and
the round-trip rule that rejects unknown fields) live in `akri.model.validation`.

Broker Pod/Job specs and Service specs stay plain JSON dicts (deep copies): the controller
builds Kubernetes objects from them and must not lose fields our types do not know.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from akri.model._parse import Reader
from akri.model.constants import CONFIGURATION_KIND, DEFAULT_NAMESPACE, GROUP_VERSION
from akri.model.errors import ValidationError, join_path
from akri.model.meta import AkriObject, ObjectMetadata

BROKER_POD_SPEC = "brokerPodSpec"
BROKER_JOB_SPEC = "brokerJobSpec"
BROKER_KINDS = (BROKER_POD_SPEC, BROKER_JOB_SPEC)
SECRET_KEY_REF = "secretKeyRef"
CONFIG_MAP_KEY_REF = "configMapKeyRef"
PROPERTY_SOURCES = (SECRET_KEY_REF, CONFIG_MAP_KEY_REF)
# CRD pattern of discovery property names (they become environment-variable-like keys).
PROPERTY_NAME_PATTERN = "^[_A-Za-z][_A-Za-z0-9]*$"


@dataclass(frozen=True)
class KeySelector:
    """A key of a Secret or ConfigMap. `namespace` defaults to "default", NOT to the
    Configuration's namespace (upstream behaviour, kept for compatibility)."""

    key: str
    name: str
    namespace: str = DEFAULT_NAMESPACE
    optional: bool | None = None  # as written; None (not given) means False

    @property
    def is_optional(self) -> bool:
        return bool(self.optional)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "name": self.name, "namespace": self.namespace}
        if self.optional is not None:
            out["optional"] = self.optional
        return out


@dataclass(frozen=True)
class DiscoveryPropertySource:
    """Exactly one of a Secret key or a ConfigMap key."""

    secret_key_ref: KeySelector | None = None
    config_map_key_ref: KeySelector | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.secret_key_ref is not None:
            return {SECRET_KEY_REF: self.secret_key_ref.to_dict()}
        if self.config_map_key_ref is not None:
            return {CONFIG_MAP_KEY_REF: self.config_map_key_ref.to_dict()}
        return {}


@dataclass(frozen=True)
class DiscoveryProperty:
    """A named value handed to the discovery handler: literal `value` or `value_from`."""

    name: str
    value: str | None = None
    value_from: DiscoveryPropertySource | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.value is not None:
            out["value"] = self.value
        if self.value_from is not None:
            out["valueFrom"] = self.value_from.to_dict()
        return out


@dataclass(frozen=True)
class DiscoveryHandlerInfo:
    name: str
    discovery_details: str = ""
    discovery_properties: list[DiscoveryProperty] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "discoveryDetails": self.discovery_details}
        if self.discovery_properties is not None:
            out["discoveryProperties"] = [p.to_dict() for p in self.discovery_properties]
        return out


@dataclass(frozen=True)
class ConfigurationSpec:
    discovery_handler: DiscoveryHandlerInfo
    capacity: int = 1
    broker_pod_spec: dict[str, Any] | None = None
    broker_job_spec: dict[str, Any] | None = None
    instance_service_spec: dict[str, Any] | None = None
    configuration_service_spec: dict[str, Any] | None = None
    broker_properties: dict[str, str] = field(default_factory=dict)

    @property
    def broker_kind(self) -> str | None:
        """"brokerPodSpec", "brokerJobSpec" or None (no broker)."""
        if self.broker_pod_spec is not None:
            return BROKER_POD_SPEC
        if self.broker_job_spec is not None:
            return BROKER_JOB_SPEC
        return None

    def to_dict(self) -> dict[str, Any]:
        """Canonical JSON: upstream's key order (discoveryHandler, capacity, brokerSpec,
        instanceServiceSpec, configurationServiceSpec, brokerProperties), absent optionals
        omitted, brokerProperties always present."""
        out: dict[str, Any] = {
            "discoveryHandler": self.discovery_handler.to_dict(),
            "capacity": self.capacity,
        }
        if self.broker_pod_spec is not None:
            out["brokerSpec"] = {BROKER_POD_SPEC: copy.deepcopy(self.broker_pod_spec)}
        elif self.broker_job_spec is not None:
            out["brokerSpec"] = {BROKER_JOB_SPEC: copy.deepcopy(self.broker_job_spec)}
        if self.instance_service_spec is not None:
            out["instanceServiceSpec"] = copy.deepcopy(self.instance_service_spec)
        if self.configuration_service_spec is not None:
            out["configurationServiceSpec"] = copy.deepcopy(self.configuration_service_spec)
        out["brokerProperties"] = dict(self.broker_properties)
        return out


def spec_to_dict(spec: ConfigurationSpec) -> dict[str, Any]:
    return spec.to_dict()


@dataclass(frozen=True)
class Configuration(AkriObject):
    metadata: ObjectMetadata
    spec: ConfigurationSpec
    api_version: str = GROUP_VERSION
    kind: str = CONFIGURATION_KIND

    KIND = CONFIGURATION_KIND
    # read_configuration_spec is defined further down: look it up when called
    read_spec = staticmethod(lambda reader, spec, path: read_configuration_spec(reader, spec, path))

    def spec_to_dict(self) -> dict[str, Any]:
        return self.spec.to_dict()


def parse_configuration_spec(spec: Any, path: str = "spec") -> ConfigurationSpec:
    """Read a Configuration `spec`; ValidationError with paths like `spec.discoveryHandler.name`."""
    reader = Reader()
    parsed = read_configuration_spec(reader, spec, path)
    reader.raise_if_errors()
    assert parsed is not None
    return parsed


def read_configuration_spec(reader: Reader, value: Any, path: str) -> ConfigurationSpec | None:
    if value is None:
        reader.error(path, "required")
        return None
    spec = reader.mapping(value, path)
    if spec is None:
        return None
    handler_path = join_path(path, "discoveryHandler")
    handler = _read_discovery_handler(reader, spec.get("discoveryHandler"), handler_path)
    capacity = reader.integer(spec, "capacity", path, default=1, minimum=0)
    pod_spec, job_spec = _read_broker_spec(reader, spec.get("brokerSpec"), join_path(path, "brokerSpec"))
    instance_svc = _optional_object(reader, spec, "instanceServiceSpec", path)
    configuration_svc = _optional_object(reader, spec, "configurationServiceSpec", path)
    broker_properties = reader.string_map(spec, "brokerProperties", path)
    if handler is None:
        return None
    return ConfigurationSpec(
        discovery_handler=handler,
        capacity=1 if capacity is None else capacity,
        broker_pod_spec=pod_spec,
        broker_job_spec=job_spec,
        instance_service_spec=instance_svc,
        configuration_service_spec=configuration_svc,
        broker_properties=broker_properties,
    )


def _optional_object(reader: Reader, obj: dict[str, Any], key: str, path: str) -> dict[str, Any] | None:
    value = obj.get(key)
    if value is None:
        return None
    found = reader.mapping(value, join_path(path, key))
    return copy.deepcopy(found) if found is not None else None


def _read_discovery_handler(reader: Reader, value: Any, path: str) -> DiscoveryHandlerInfo | None:
    if value is None:
        reader.error(path, "required")
        return None
    info = reader.mapping(value, path)
    if info is None:
        return None
    name = reader.string(info, "name", path, required=True)
    details = reader.string(info, "discoveryDetails", path, default="")
    properties = reader.items(info, "discoveryProperties", path, lambda v, p: _read_property(reader, v, p))
    if name is None:
        return None
    return DiscoveryHandlerInfo(name=name, discovery_details=details or "", discovery_properties=properties)


def _read_property(reader: Reader, value: Any, path: str) -> DiscoveryProperty | None:
    prop = reader.mapping(value, path)
    if prop is None:
        return None
    name = reader.string(prop, "name", path, required=True)
    literal = reader.string(prop, "value", path)
    source = None
    if prop.get("valueFrom") is not None:
        source = _read_source(reader, prop["valueFrom"], join_path(path, "valueFrom"))
        if source is None:
            return None
    if name is None:
        return None
    return DiscoveryProperty(name=name, value=literal, value_from=source)


def _read_source(reader: Reader, value: Any, path: str) -> DiscoveryPropertySource | None:
    source = reader.mapping(value, path)
    if source is None:
        return None
    given = [k for k, v in source.items() if v is not None]
    unsupported = [k for k in given if k not in PROPERTY_SOURCES]
    for key in unsupported:
        reader.error(join_path(path, key),
                     f"unsupported source (use {SECRET_KEY_REF} or {CONFIG_MAP_KEY_REF})")
    chosen = [k for k in given if k in PROPERTY_SOURCES]
    if len(chosen) > 1:
        reader.error(path, f"only one of {SECRET_KEY_REF}, {CONFIG_MAP_KEY_REF} may be set")
        return None
    if not chosen:
        if not unsupported:
            reader.error(path, f"one of {SECRET_KEY_REF}, {CONFIG_MAP_KEY_REF} is required")
        return None
    key = chosen[0]
    selector = _read_selector(reader, source[key], join_path(path, key))
    if selector is None or unsupported:
        return None
    if key == SECRET_KEY_REF:
        return DiscoveryPropertySource(secret_key_ref=selector)
    return DiscoveryPropertySource(config_map_key_ref=selector)


def _read_selector(reader: Reader, value: Any, path: str) -> KeySelector | None:
    sel = reader.mapping(value, path)
    if sel is None:
        return None
    key = reader.string(sel, "key", path, required=True)
    name = reader.string(sel, "name", path, required=True)
    namespace = reader.string(sel, "namespace", path, default=DEFAULT_NAMESPACE)
    optional = reader.boolean(sel, "optional", path)
    if key is None or name is None:
        return None
    return KeySelector(key=key, name=name, namespace=namespace or DEFAULT_NAMESPACE, optional=optional)


def _read_broker_spec(reader: Reader, value: Any,
                      path: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """brokerSpec is a one-key map (upstream's Rust enum): brokerPodSpec or brokerJobSpec."""
    if value is None:
        return None, None
    broker = reader.mapping(value, path)
    if broker is None:
        return None, None
    given = [k for k, v in broker.items() if v is not None]
    ok = True
    for key in given:
        if key not in BROKER_KINDS:
            reader.error(join_path(path, key),
                         f"unknown broker kind (expected {BROKER_POD_SPEC} or {BROKER_JOB_SPEC})")
            ok = False
    chosen = [k for k in given if k in BROKER_KINDS]
    if len(chosen) > 1:
        reader.error(path, f"only one of {BROKER_POD_SPEC}, {BROKER_JOB_SPEC} may be set")
        return None, None
    if not chosen:
        if ok:
            reader.error(path, f"one of {BROKER_POD_SPEC}, {BROKER_JOB_SPEC} is required")
        return None, None
    kind = chosen[0]
    body = reader.mapping(broker[kind], join_path(path, kind))
    if body is None or not ok:
        return None, None
    body = copy.deepcopy(body)
    return (body, None) if kind == BROKER_POD_SPEC else (None, body)


def configuration_from_spec(name: str, spec: dict[str, Any], *, namespace: str = DEFAULT_NAMESPACE,
                            **metadata: Any) -> Configuration:
    """Build a Configuration from a spec dict (tests, `akri discover`); ValidationError if bad."""
    meta = {"name": name, "namespace": namespace, **metadata}
    return Configuration.from_dict({"apiVersion": GROUP_VERSION, "kind": CONFIGURATION_KIND,
                                    "metadata": meta, "spec": spec})


__all__ = [
    "BROKER_JOB_SPEC",
    "BROKER_POD_SPEC",
    "Configuration",
    "ConfigurationSpec",
    "DiscoveryHandlerInfo",
    "DiscoveryProperty",
    "DiscoveryPropertySource",
    "KeySelector",
    "ValidationError",
    "configuration_from_spec",
    "parse_configuration_spec",
    "spec_to_dict",
]
