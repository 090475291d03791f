"""Typed Instance: upstream's serialisation vector (spec §1.2), fixtures, slots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from akri.model.errors import ValidationError
from akri.model.instance import Instance, InstanceSpec
from akri.model.manifests import load_documents
from akri.model.meta import ObjectMetadata
from akri.model.usage import FREE, ConfigurationUsage, NodeUsage

UPSTREAM = Path(__file__).parent / "fixtures" / "upstream"


def test_canonical_serialisation_vector():
    spec = InstanceSpec.from_dict({"configurationName": "foo", "cdiName": "akri.sh/foo=bar", "capacity": 1})
    assert json.dumps(spec.to_dict(), separators=(",", ":")) == (
        '{"configurationName":"foo","cdiName":"akri.sh/foo=bar","capacity":1,"brokerProperties":{},'
        '"shared":false,"nodes":[],"deviceUsage":{}}'
    )


def test_empty_spec_fails_naming_every_required_field():
    with pytest.raises(ValidationError) as exc:
        InstanceSpec.from_dict({})
    assert [e.path for e in exc.value.errors] == ["spec.configurationName", "spec.cdiName", "spec.capacity"]


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ({"configurationName": "c", "cdiName": "x", "capacity": "1"}, "spec.capacity"),
        ({"configurationName": "c", "cdiName": "x", "capacity": 1, "shared": "true"}, "spec.shared"),
        ({"configurationName": "c", "cdiName": "x", "capacity": 1, "nodes": ["a", 2]}, "spec.nodes[1]"),
        (
            {"configurationName": "c", "cdiName": "x", "capacity": 1, "deviceUsage": {"c-0": None}},
            "spec.deviceUsage.c-0",
        ),
    ],
)
def test_type_errors_name_the_field(spec, path):
    with pytest.raises(ValidationError) as exc:
        InstanceSpec.from_dict(spec)
    assert [e.path for e in exc.value.errors] == [path]


def _instances() -> dict[str, dict]:
    out = {}
    for name in ("akri-instance-onvif-camera.yaml", "akri-instance-usb-camera.yaml"):
        for doc in load_documents((UPSTREAM / name).read_text(), name):
            out[doc.obj["metadata"]["name"]] = doc.obj
    return out


def test_sample_instances():
    samples = _instances()
    shared = Instance.from_dict(samples["onvif-camera-ffffff"])
    assert shared.spec.shared is True
    assert shared.spec.nodes == ["linux-dev3", "linux-dev2"]
    assert shared.spec.slots() == [
        NodeUsage("linux-dev3"),
        FREE,
        ConfigurationUsage("onvif-camera-0", "linux-dev2"),
        FREE,
        FREE,
    ]
    local = Instance.from_dict(samples["usb-dev-video0-ffffff"])
    assert local.spec.shared is False
    assert local.spec.slots() == [FREE]
    assert local.namespace == "default"
    for obj, instance in (
        (samples["onvif-camera-ffffff"], shared),
        (samples["usb-dev-video0-ffffff"], local),
    ):
        out = instance.to_dict()
        assert out["metadata"] == obj["metadata"]
        assert out["spec"] == {**InstanceSpec.from_dict(obj["spec"]).to_dict(), **obj["spec"]}
        assert Instance.from_dict(out) == instance


def test_instance_built_in_code():
    instance = Instance(
        ObjectMetadata(name="config-a-359973", namespace="ns", finalizers=["node-a"]),
        InstanceSpec("config-a", "akri.sh/config-a=359973", 5, nodes=["node-a"]),
    )
    out = instance.to_dict()
    assert out["apiVersion"] == "akri.sh/v0" and out["kind"] == "Instance"
    assert out["metadata"] == {"name": "config-a-359973", "namespace": "ns", "finalizers": ["node-a"]}
    assert Instance.from_dict(out).spec == instance.spec


def test_wrong_kind_and_malformed_usage():
    with pytest.raises(ValidationError, match="kind"):
        Instance.from_dict(
            {
                "kind": "Configuration",
                "metadata": {"name": "x"},
                "spec": {"configurationName": "c", "cdiName": "x", "capacity": 1},
            }
        )
    spec = InstanceSpec.from_dict(
        {"configurationName": "c", "cdiName": "x", "capacity": 1, "deviceUsage": {"c-0": "C:only-two"}}
    )
    with pytest.raises(ValueError, match="c-0"):
        spec.slots()
