"""Admission rules (spec §7): check-function vectors, udev permissions, samples, broken fixtures,
discovery-handler checks, and fuzzing (validation never raises)."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import akri.discovery.handlers as handlers
from akri.discovery.handler import InvalidDetails
from akri.model.configuration import Configuration
from akri.model.errors import FieldError
from akri.model.manifests import load_documents
from akri.model.roundtrip import check
from akri.model.validation import handler_validator, validate_configuration, validate_udev_details

UPSTREAM = Path(__file__).parent / "fixtures" / "upstream"
EXPECTED = "akri.test/expected-error"


def _docs(name: str) -> list[dict]:
    return [d.obj for d in load_documents((UPSTREAM / name).read_text(), name)]


def samples() -> list[dict]:
    objs = []
    for path in [*sorted(UPSTREAM.glob("*.yaml")), UPSTREAM / "config-a.json"]:
        if path.name.startswith("broken") or path.name == "webhookInvalidConfiguration.yaml":
            continue
        objs += [o for o in _docs(path.name) if o["kind"] == "Configuration"]
    return objs


def paths(obj: Any) -> list[str]:
    return [e.path for e in validate_configuration(obj)]


# --- upstream's check() vectors -------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_", "parsed", "ok"),
    [
        (None, None, True),
        ({}, None, False),
        ({"a": 1}, {"a": 1, "b": 2}, True),  # extra key only in the re-serialised object
        ({"a": 1, "b": 2}, {"a": 1}, False),  # extra key only in the input
        (1, "1", False),
        ("a", True, False),
        (True, 1, False),
        ("a", "b", False),
        (1, 2, False),
        (1.5, 1.5, True),
        (1, 1.0, False),
        (True, False, False),
        ([1, 2, 3], [1, 2], False),  # extra element in the input
        ([1, 2], [1, 2, 3], True),  # extra element in the re-serialised object
        ({"a": [{"b": "c"}]}, {"a": [{"b": "c", "d": 0}]}, True),
        ({"a": {"b": None}}, {"a": {}}, True),
        (None, {}, False),
    ],
)
def test_check_vectors(given_, parsed, ok):
    assert (check(given_, parsed) == []) is ok


def test_check_names_paths():
    errors = check({"spec": {"x": 1, "list": [1, {"y": True}]}}, {"spec": {"list": [1, {}]}})
    assert errors == [FieldError("spec.x", "unknown field"), FieldError("spec.list[1].y", "unknown field")]
    assert check({"a": 1}, {"a": "1"}) == [FieldError("a", "integer 1 given but parsed as string '1'")]


# --- udev details (§7 step 3) -------------------------------------------------------------------


@pytest.mark.parametrize("permissions", ["r", "w", "m", "rw", "rm", "wm", "rwm"])
def test_udev_permissions_accepted(permissions):
    assert validate_udev_details(f'{{"udevRules": [], "permissions": "{permissions}"}}') == []
    assert validate_udev_details(f"udevRules: []\npermissions: {permissions}\n") == []


@pytest.mark.parametrize("permissions", ["x", "rwx", "", "wr", "mr", "mwr", "RW"])
def test_udev_permissions_rejected(permissions):
    errors = validate_udev_details(f'{{"udevRules": [], "permissions": "{permissions}"}}')
    assert [e.path for e in errors] == ["spec.discoveryHandler.discoveryDetails.permissions"]


@pytest.mark.parametrize(
    ("details", "path"),
    [
        ('{"this is not valid json"}', "spec.discoveryHandler.discoveryDetails.udevRules"),
        ('{"udev_rules": [], "permissions": "x"}', "spec.discoveryHandler.discoveryDetails.udevRules"),
        ('udevRules: KERNEL=="null"', "spec.discoveryHandler.discoveryDetails.udevRules"),
        (
            "udevRules: []\ngroupRecursive: yes please",
            "spec.discoveryHandler.discoveryDetails.groupRecursive",
        ),
        ("- a list", "spec.discoveryHandler.discoveryDetails"),
        ("udevRules: [", "spec.discoveryHandler.discoveryDetails"),
    ],
)
def test_udev_details_rejected(details, path):
    assert path in [e.path for e in validate_udev_details(details)]


def test_udev_empty_details_pass():
    assert validate_udev_details("") == []


def _config(spec_overrides: dict | None = None, **handler: Any) -> dict:
    obj = {
        "apiVersion": "akri.sh/v0",
        "kind": "Configuration",
        "metadata": {"name": "cfg"},
        "spec": {"discoveryHandler": {"name": "myCustomHandler", "discoveryDetails": ""}},
    }
    obj["spec"]["discoveryHandler"].update(handler)
    obj["spec"].update(spec_overrides or {})
    return obj


def test_udev_rule_applies_to_handler_name_in_any_case():
    obj = _config(name="UDEV", discoveryDetails='{"udevRules": [], "permissions": "rwx"}')
    assert paths(obj) == ["spec.discoveryHandler.discoveryDetails.permissions"]
    assert paths(_config(name="notudev", discoveryDetails='{"permissions": "rwx"}')) == []


def test_udev_rules_checked_by_the_udev_handler():
    """Beyond §7's permission rule, the udev handler checks the rules themselves."""
    pytest.importorskip("akri.discovery.handlers.udev")
    handler_validator.cache_clear()
    assert paths(_config(name="udev", discoveryDetails="udevRules:\n- 'KERNEL==\"video[0-9]*\"'\n")) == []
    assert paths(_config(name="udev", discoveryDetails="udevRules:\n- 'TYPO==\"x\"'\n")) == [
        "spec.discoveryHandler.discoveryDetails.udevRules[0]"
    ]


# --- upstream's webhook test objects ------------------------------------------------------------


def admission_object(broker_spec: dict, **spec: Any) -> dict:
    """The `request.object` of upstream's webhook tests (metadata as the API server sends it)."""
    return {
        "apiVersion": "akri.sh/v0",
        "kind": "Configuration",
        "metadata": {
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": ""},
            "creationTimestamp": "2021-01-01T00:00:00Z",
            "generation": 1,
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {".": {}}}}],
            "name": "name",
            "namespace": "default",
            "uid": "00000000-0000-0000-0000-000000000000",
        },
        "spec": {
            "discoveryHandler": {
                "name": "debugEcho",
                "discoveryDetails": 'descriptions:\n- "foo0"\n- "foo1"\n',
            },
            "brokerSpec": broker_spec,
            **spec,
        },
    }


POD_SPEC = {
    "containers": [
        {"image": "nginx:latest", "name": "broker", "resources": {"limits": {"{{PLACEHOLDER}}": "1"}}}
    ]
}
SERVICE = {"type": "ClusterIP", "ports": [{"name": "name", "port": 0, "targetPort": 0, "protocol": "TCP"}]}


def test_admission_object_valid():
    assert validate_configuration(admission_object({"brokerPodSpec": POD_SPEC})) == []
    assert (
        validate_configuration(
            admission_object(
                {"brokerPodSpec": POD_SPEC}, instanceServiceSpec=SERVICE, configurationServiceSpec=SERVICE
            )
        )
        == []
    )
    job = {
        "template": {"spec": {"containers": [{"name": "c", "image": "busybox"}], "restartPolicy": "Never"}},
        "backoffLimit": 4,
    }
    assert validate_configuration(admission_object({"brokerJobSpec": job})) == []


def test_admission_object_unknown_field_anywhere():
    pod = copy.deepcopy(POD_SPEC)
    pod["xUnknownSyntheticField"] = "bar"
    assert paths(admission_object({"brokerPodSpec": pod})) == [
        "spec.brokerSpec.brokerPodSpec.xUnknownSyntheticField"
    ]
    pod = copy.deepcopy(POD_SPEC)
    pod["containers"][0]["resources"]["xUnknown"] = {}
    assert paths(admission_object({"brokerPodSpec": pod})) == [
        "spec.brokerSpec.brokerPodSpec.containers[0].resources.xUnknown"
    ]
    svc = copy.deepcopy(SERVICE)
    svc["ports"][0]["xUnknown"] = 1
    assert paths(admission_object({"brokerPodSpec": POD_SPEC}, configurationServiceSpec=svc)) == [
        "spec.configurationServiceSpec.ports[0].xUnknown"
    ]
    obj = admission_object({"brokerPodSpec": POD_SPEC})
    obj["spec"]["discoveryHandler"]["discoveryProperties"] = [{"name": "p", "value": "v", "extra": 1}]
    assert paths(obj) == ["spec.discoveryHandler.discoveryProperties[0].extra"]


def test_metadata_generation_rules():
    obj = admission_object({"brokerPodSpec": POD_SPEC})
    obj["metadata"]["generation"] = "1"
    assert paths(obj) == ["metadata.generation"]
    obj["metadata"]["generation"] = -1
    assert paths(obj) == ["metadata.generation"]
    del obj["metadata"]["generation"]  # offline files have none: fine here (upstream would panic)
    assert paths(obj) == []


def test_metadata_name_rules():
    obj = _config()
    obj["metadata"]["name"] = "a" * 56
    assert paths(obj) == []
    obj["metadata"]["name"] = "a" * 57
    assert paths(obj) == ["metadata.name"]
    obj["metadata"]["name"] = "My_Config"
    assert paths(obj) == ["metadata.name"]
    del obj["metadata"]["name"]
    assert paths(obj) == ["metadata.name"]
    del obj["metadata"]
    assert paths(obj) == ["metadata.name"]


def test_kubernetes_value_kinds():
    pod = {
        "containers": [
            {
                "name": "c",
                "image": "i",
                "resources": {"limits": {"cpu": 1, "memory": "30Mi", "nvidia.com/gpu": 1.5}},
                "ports": [{"containerPort": 80, "name": "http"}],
                "livenessProbe": {"httpGet": {"port": "http"}},
                "readinessProbe": {"tcpSocket": {"port": 8080}},
                "env": [
                    {"name": "A", "value": "b"},
                    {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                ],
            }
        ],
        "nodeSelector": None,
        "hostNetwork": True,
        "tolerations": [{"operator": "Exists"}],
    }
    assert paths(_config({"brokerSpec": {"brokerPodSpec": pod}})) == []
    bad = copy.deepcopy(pod)
    bad["containers"][0]["resources"]["limits"]["cpu"] = True
    bad["containers"][0]["livenessProbe"]["httpGet"]["port"] = 1.5
    bad["hostNetwork"] = "true"
    bad["nodeSelector"] = {"disk": 1}
    assert paths(_config({"brokerSpec": {"brokerPodSpec": bad}})) == [
        "spec.brokerSpec.brokerPodSpec.containers[0].livenessProbe.httpGet.port",
        "spec.brokerSpec.brokerPodSpec.containers[0].resources.limits.cpu",
        "spec.brokerSpec.brokerPodSpec.hostNetwork",
        "spec.brokerSpec.brokerPodSpec.nodeSelector.disk",
    ]


# --- samples and broken fixtures ------------------------------------------------------------


@pytest.mark.parametrize("obj", samples(), ids=lambda o: o["metadata"]["name"])
def test_upstream_samples_are_valid(obj):
    assert validate_configuration(obj) == []


def test_webhook_invalid_configuration_rejected():
    (obj,) = _docs("webhookInvalidConfiguration.yaml")
    errors = validate_configuration(obj)
    assert errors == [FieldError("spec.brokerSpec.brokerPodSpec.xUnknownSyntheticField", "unknown field")]


BROKEN = _docs("broken-configurations.yaml")


@pytest.mark.parametrize("obj", BROKEN, ids=lambda o: o["metadata"]["name"])
def test_broken_configurations_rejected_at_the_named_field(obj):
    expected = obj["metadata"]["annotations"][EXPECTED]
    assert paths(obj) == [expected]


def test_broken_fixture_set_is_complete():
    names = {o["metadata"]["name"] for o in BROKEN}
    assert len(names) == len(BROKEN) >= 25


# --- discovery handlers' own checks -------------------------------------------------------------


class StrictHandler:
    """A handler whose details must say `ok: true`."""

    def validate(self, details: str) -> None:
        if "ok: true" not in details:
            raise InvalidDetails("ok", "must be true")


class BuggyHandler:
    def validate(self, details: str) -> None:
        raise KeyError("boom")


class NeedsEnvironmentHandler:
    def __init__(self) -> None:
        raise RuntimeError("SOME_ENV must be set")

    def validate(self, details: str) -> None:
        raise InvalidDetails("discoveryDetails", "never valid")


@pytest.fixture
def test_handlers(monkeypatch):
    module = sys.modules[__name__].__name__
    monkeypatch.setitem(handlers.BUILTIN, "strict", f"{module}:StrictHandler")
    monkeypatch.setitem(handlers.BUILTIN, "buggy", f"{module}:BuggyHandler")
    monkeypatch.setitem(handlers.BUILTIN, "needsEnv", f"{module}:NeedsEnvironmentHandler")
    monkeypatch.setitem(handlers.BUILTIN, "missing", "akri.discovery.handlers.no_such_module:Handler")
    handler_validator.cache_clear()
    yield
    handler_validator.cache_clear()


def test_builtin_handler_details_errors(test_handlers):
    assert paths(_config(name="strict", discoveryDetails="ok: true")) == []
    assert validate_configuration(_config(name="strict", discoveryDetails="ok: false")) == [
        FieldError("spec.discoveryHandler.discoveryDetails.ok", "must be true")
    ]
    # constructing needs its runtime environment, checking details does not
    assert validate_configuration(_config(name="needsEnv", discoveryDetails="x")) == [
        FieldError("spec.discoveryHandler.discoveryDetails", "never valid")
    ]
    errors = validate_configuration(_config(name="buggy", discoveryDetails="x"))
    assert [e.path for e in errors] == ["spec.discoveryHandler.discoveryDetails"]
    assert "buggy" in errors[0].message


def test_unknown_or_unavailable_handlers_are_skipped(test_handlers):
    assert paths(_config(name="missing", discoveryDetails="anything: [")) == []
    assert paths(_config(name="someVendorHandler", discoveryDetails="anything: [")) == []


def test_debug_echo_details_checked_by_its_handler(monkeypatch):
    pytest.importorskip("akri.discovery.handlers.debug_echo")
    monkeypatch.delenv("DEBUG_ECHO_INSTANCES_SHARED", raising=False)
    handler_validator.cache_clear()
    try:
        assert paths(_config(name="debugEcho", discoveryDetails="descriptions: [a, b]")) == []
        bad = paths(_config(name="debugEcho", discoveryDetails="descriptions: 5"))
        assert bad == ["spec.discoveryHandler.discoveryDetails.descriptions"]
    finally:
        handler_validator.cache_clear()


# --- never crash -----------------------------------------------------------------------------

FIELD_NAMES = [
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "spec",
    "discoveryHandler",
    "discoveryDetails",
    "discoveryProperties",
    "value",
    "valueFrom",
    "secretKeyRef",
    "key",
    "capacity",
    "brokerSpec",
    "brokerPodSpec",
    "brokerJobSpec",
    "containers",
    "ports",
    "port",
    "resources",
    "limits",
    "instanceServiceSpec",
    "brokerProperties",
    "labels",
    "generation",
    "template",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(["akri.sh/v0", "Configuration", "udev", "debugEcho", "rwx", ""]),
)
keys = st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=8))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_random_json_never_crashes(value):
    errors = validate_configuration(value)
    assert all(isinstance(e, FieldError) for e in errors)
    if isinstance(value, dict):
        value = {**value, "apiVersion": "akri.sh/v0", "kind": "Configuration"}
        assert all(isinstance(e, FieldError) for e in validate_configuration(value))


def _locations(obj: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _locations(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _locations(v, (*prefix, i))
    return out


SAMPLES = samples()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_samples_never_crash_and_valid_means_usable(data):
    obj = copy.deepcopy(data.draw(st.sampled_from(SAMPLES)))
    where = data.draw(st.sampled_from(_locations(obj)[1:]))
    parent = obj
    for step in where[:-1]:
        parent = parent[step]
    action = data.draw(st.sampled_from(["replace", "delete", "add"]))
    if action == "replace":
        parent[where[-1]] = data.draw(json_values)
    elif action == "delete":
        del parent[where[-1]]
    elif isinstance(parent, dict):
        parent[data.draw(keys)] = data.draw(json_values)
    errors = validate_configuration(obj)
    assert all(isinstance(e, FieldError) and isinstance(e.path, str) for e in errors)
    if not errors:
        config = Configuration.from_dict(obj)  # whatever validates can be used by agent and controller
        assert Configuration.from_dict(config.to_dict()).to_dict() == config.to_dict()


def test_deep_nesting_is_an_error_not_a_crash():
    deep: Any = "x"
    for _ in range(5000):
        deep = [deep]
    obj = _config({"brokerSpec": {"brokerPodSpec": {"containers": [{"name": "c", "args": deep}]}}})
    errors = validate_configuration(obj)
    assert errors and all(isinstance(e, FieldError) for e in errors)
