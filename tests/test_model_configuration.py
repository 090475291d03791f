"""Typed Configuration: upstream's serialisation vectors (spec §1.1), defaults, parse errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from akri.model.configuration import (
    Configuration,
    ConfigurationSpec,
    DiscoveryHandlerInfo,
    KeySelector,
    configuration_from_spec,
    parse_configuration_spec,
    spec_to_dict,
)
from akri.model.errors import FieldError, ValidationError
from akri.model.manifests import load_documents

UPSTREAM = Path(__file__).parent / "fixtures" / "upstream"


def compact(obj) -> str:
    return json.dumps(obj, separators=(",", ":"))


def sample_configurations() -> list[dict]:
    objs = []
    for path in [*sorted(UPSTREAM.glob("*.yaml")), UPSTREAM / "config-a.json"]:
        if path.name.startswith("broken"):
            continue
        objs += [
            d.obj for d in load_documents(path.read_text(), str(path)) if d.obj.get("kind") == "Configuration"
        ]
    return objs


def test_required_field_vectors():
    with pytest.raises(ValidationError) as exc:
        parse_configuration_spec({})
    assert exc.value.errors == [FieldError("spec.discoveryHandler", "required")]
    with pytest.raises(ValidationError) as exc:
        parse_configuration_spec({"discoveryHandler": {}})
    assert exc.value.errors == [FieldError("spec.discoveryHandler.name", "required")]
    assert str(exc.value) == "spec.discoveryHandler.name: required"
    spec = parse_configuration_spec({"discoveryHandler": {"name": "random"}})
    assert spec.discovery_handler.name == "random"


def test_pod_spec_serialisation_vector():
    spec = parse_configuration_spec(
        {
            "discoveryHandler": {"name": "random"},
            "capacity": 4,
            "brokerSpec": {"brokerPodSpec": {"containers": [{"image": "nginx:latest", "name": "broker"}]}},
        }
    )
    assert compact(spec_to_dict(spec)) == (
        '{"discoveryHandler":{"name":"random","discoveryDetails":""},"capacity":4,"brokerSpec":{"brokerPodSpec":'
        '{"containers":[{"image":"nginx:latest","name":"broker"}]}},"brokerProperties":{}}'
    )


def test_key_order_and_defaults():
    spec = parse_configuration_spec(
        {
            "brokerProperties": {"A": "1"},
            "configurationServiceSpec": {"ports": [{"port": 80}]},
            "instanceServiceSpec": {"ports": [{"port": 81}]},
            "brokerSpec": {"brokerJobSpec": {"template": {}}},
            "discoveryHandler": {"discoveryDetails": "x: 1", "name": "h"},
        }
    )
    assert list(spec.to_dict()) == [
        "discoveryHandler",
        "capacity",
        "brokerSpec",
        "instanceServiceSpec",
        "configurationServiceSpec",
        "brokerProperties",
    ]
    assert spec.capacity == 1
    assert spec.broker_kind == "brokerJobSpec"
    assert spec.broker_job_spec == {"template": {}}
    assert spec.broker_pod_spec is None
    defaults = ConfigurationSpec(DiscoveryHandlerInfo("h"))
    assert defaults.to_dict() == {
        "discoveryHandler": {"name": "h", "discoveryDetails": ""},
        "capacity": 1,
        "brokerProperties": {},
    }
    assert defaults.broker_kind is None


def test_nulls_read_as_absent():
    spec = parse_configuration_spec(
        {
            "discoveryHandler": {"name": "h", "discoveryDetails": None, "discoveryProperties": None},
            "capacity": None,
            "brokerSpec": None,
            "brokerProperties": None,
        }
    )
    assert spec.to_dict() == {
        "discoveryHandler": {"name": "h", "discoveryDetails": ""},
        "capacity": 1,
        "brokerProperties": {},
    }


def test_discovery_properties():
    spec = parse_configuration_spec(
        {
            "discoveryHandler": {
                "name": "onvif",
                "discoveryProperties": [
                    {"name": "literal", "value": "x"},
                    {"name": "secret", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "user"}}},
                    {
                        "name": "map",
                        "valueFrom": {
                            "configMapKeyRef": {"name": "cm", "key": "k", "namespace": "ns", "optional": True}
                        },
                    },
                    {"name": "nothing"},
                ],
            }
        }
    )
    literal, secret, config_map, nothing = spec.discovery_handler.discovery_properties
    assert literal.value == "x" and literal.value_from is None
    assert secret.value_from.secret_key_ref == KeySelector(key="user", name="creds")
    # the namespace defaults to "default", not to the Configuration's namespace
    assert secret.value_from.secret_key_ref.namespace == "default"
    assert secret.value_from.secret_key_ref.is_optional is False
    assert config_map.value_from.config_map_key_ref.namespace == "ns"
    assert config_map.value_from.config_map_key_ref.is_optional is True
    assert nothing.value is None and nothing.value_from is None
    assert spec.to_dict()["discoveryHandler"]["discoveryProperties"] == [
        {"name": "literal", "value": "x"},
        {
            "name": "secret",
            "valueFrom": {"secretKeyRef": {"key": "user", "name": "creds", "namespace": "default"}},
        },
        {
            "name": "map",
            "valueFrom": {"configMapKeyRef": {"key": "k", "name": "cm", "namespace": "ns", "optional": True}},
        },
        {"name": "nothing"},
    ]


def _paths(spec) -> list[str]:
    with pytest.raises(ValidationError) as exc:
        parse_configuration_spec(spec)
    return [e.path for e in exc.value.errors]


@pytest.mark.parametrize(
    ("spec", "paths"),
    [
        (
            {"discoveryHandler": {"name": "h", "discoveryProperties": [{"value": "x"}]}},
            ["spec.discoveryHandler.discoveryProperties[0].name"],
        ),
        (
            {"discoveryHandler": {"name": "h", "discoveryProperties": [{"name": "p", "valueFrom": {}}]}},
            ["spec.discoveryHandler.discoveryProperties[0].valueFrom"],
        ),
        (
            {
                "discoveryHandler": {
                    "name": "h",
                    "discoveryProperties": [{"name": "p", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}],
                }
            },
            ["spec.discoveryHandler.discoveryProperties[0].valueFrom.fieldRef"],
        ),
        (
            {
                "discoveryHandler": {
                    "name": "h",
                    "discoveryProperties": [{"name": "p", "valueFrom": {"secretKeyRef": {"key": "k"}}}],
                }
            },
            ["spec.discoveryHandler.discoveryProperties[0].valueFrom.secretKeyRef.name"],
        ),
        (
            {
                "discoveryHandler": {
                    "name": "h",
                    "discoveryProperties": [
                        {
                            "name": "p",
                            "valueFrom": {
                                "secretKeyRef": {"key": "k", "name": "n"},
                                "configMapKeyRef": {"key": "k", "name": "n"},
                            },
                        }
                    ],
                }
            },
            ["spec.discoveryHandler.discoveryProperties[0].valueFrom"],
        ),
        (
            {
                "discoveryHandler": {"name": "h"},
                "brokerSpec": {"brokerPodSpec": {"containers": []}, "brokerJobSpec": {"template": {}}},
            },
            ["spec.brokerSpec"],
        ),
        ({"discoveryHandler": {"name": "h"}, "brokerSpec": {}}, ["spec.brokerSpec"]),
        (
            {"discoveryHandler": {"name": "h"}, "brokerSpec": {"brokerPodSpec": []}},
            ["spec.brokerSpec.brokerPodSpec"],
        ),
        ({"discoveryHandler": {"name": "h"}, "capacity": True}, ["spec.capacity"]),
        ({"discoveryHandler": {"name": "h"}, "capacity": 1.0}, ["spec.capacity"]),
        ({"discoveryHandler": {"name": "h"}, "capacity": -2}, ["spec.capacity"]),
        ({"discoveryHandler": {"name": 7}}, ["spec.discoveryHandler.name"]),
        ({"discoveryHandler": "debugEcho"}, ["spec.discoveryHandler"]),
        (
            {"discoveryHandler": {"name": "h"}, "brokerProperties": {"A": 1, "B": None}},
            ["spec.brokerProperties.A", "spec.brokerProperties.B"],
        ),
        ({"discoveryHandler": {"name": "h"}, "instanceServiceSpec": "x"}, ["spec.instanceServiceSpec"]),
        ({"capacity": "x"}, ["spec.discoveryHandler", "spec.capacity"]),
    ],
)
def test_parse_errors_name_the_field(spec, paths):
    assert _paths(spec) == paths


def test_not_an_object():
    assert _paths(["x"]) == ["spec"]
    assert _paths(None) == ["spec"]


def test_from_dict_whole_object():
    config = Configuration.from_dict(
        {
            "apiVersion": "akri.sh/v0",
            "kind": "Configuration",
            "metadata": {"name": "cfg", "uid": "u-1", "generation": 3, "labels": {"a": "b"}},
            "spec": {"discoveryHandler": {"name": "debugEcho"}},
        }
    )
    assert (config.name, config.namespace, config.uid, config.generation) == ("cfg", "default", "u-1", 3)
    assert config.metadata.labels == {"a": "b"}
    out = config.to_dict()
    assert out["metadata"] == {"name": "cfg", "uid": "u-1", "generation": 3, "labels": {"a": "b"}}
    assert out["spec"] == config.spec_to_dict()


def test_from_dict_errors_collect_every_field():
    with pytest.raises(ValidationError) as exc:
        Configuration.from_dict({"kind": "Instance", "metadata": {"generation": "1"}, "spec": {}})
    assert [e.path for e in exc.value.errors] == [
        "kind",
        "metadata.name",
        "metadata.generation",
        "spec.discoveryHandler",
    ]
    with pytest.raises(ValidationError) as exc:
        Configuration.from_dict("not an object")
    assert exc.value.errors[0].message == "expected object, got string"


def test_parsed_specs_are_copies():
    raw = {"discoveryHandler": {"name": "h"}, "brokerSpec": {"brokerPodSpec": {"containers": []}}}
    spec = parse_configuration_spec(raw)
    raw["brokerSpec"]["brokerPodSpec"]["containers"].append({"name": "late"})
    assert spec.broker_pod_spec == {"containers": []}
    spec.to_dict()["brokerSpec"]["brokerPodSpec"]["containers"].append({"name": "x"})
    assert spec.broker_pod_spec == {"containers": []}


def test_configuration_from_spec_helper():
    config = configuration_from_spec("cfg", {"discoveryHandler": {"name": "udev"}}, namespace="ns", uid="u")
    assert (config.name, config.namespace, config.uid) == ("cfg", "ns", "u")


@pytest.mark.parametrize("obj", sample_configurations(), ids=lambda o: o["metadata"]["name"])
def test_upstream_samples_parse_and_round_trip(obj):
    config = Configuration.from_dict(obj)
    assert config.name == obj["metadata"]["name"]
    again = Configuration.from_dict(config.to_dict())
    assert again.to_dict() == config.to_dict()
    # every field given survives (the samples spell out no defaults they do not mean)
    given = obj["spec"]
    assert config.spec_to_dict()["discoveryHandler"]["name"] == given["discoveryHandler"]["name"]
    for key in ("instanceServiceSpec", "configurationServiceSpec", "brokerSpec"):
        if key in given:
            assert config.spec_to_dict()[key] == given[key]


def test_sample_details():
    by_name = {o["metadata"]["name"]: Configuration.from_dict(o) for o in sample_configurations()}
    foo = by_name["akri-debug-echo-foo"]
    assert foo.spec.capacity == 2
    assert foo.spec.broker_properties == {"RESOLUTION_WIDTH": "800", "RESOLUTION_HEIGHT": "600"}
    assert foo.spec.broker_kind == "brokerPodSpec"
    fee = by_name["akri-debug-echo-fee"]
    assert fee.spec.broker_job_spec["backoffLimit"] == 4
    assert by_name["config-a"].namespace == "config-a-namespace"
    assert by_name["config-a"].spec.capacity == 5
    assert by_name["akri-udev-video"].spec.discovery_handler.name == "udev"
