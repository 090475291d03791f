"""The CRDs: generated = deploy/crds, structural-schema rules, and the schema accepting upstream's samples.

No API server exists here, so `schema_errors` below applies an OpenAPI v3 schema the way the
apiextensions server validates custom objects (after pruning unknown fields), for the
keywords our CRDs use; `structural_problems` checks the rules that make a schema structural.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from akri.model import crds
from akri.model.manifests import load_documents

ROOT = Path(__file__).resolve().parent.parent
UPSTREAM = Path(__file__).parent / "fixtures" / "upstream"
KNOWN_KEYWORDS = {
    "type",
    "description",
    "properties",
    "required",
    "items",
    "additionalProperties",
    "default",
    "nullable",
    "oneOf",
    "pattern",
    "minimum",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-list-type",
    "x-kubernetes-map-type",
}
JSON_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool}


def _is_type(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, JSON_TYPES[kind])


def schema_errors(value: Any, schema: dict, path: str = "") -> list[str]:
    if value is None:
        return [] if schema.get("nullable") else [f"{path}: null not allowed"]
    errors: list[str] = []
    kind = schema.get("type")
    if kind and not _is_type(value, kind):
        return [f"{path}: expected {kind}"]
    if "pattern" in schema and isinstance(value, str) and not re.search(schema["pattern"], value):
        errors.append(f"{path}: does not match {schema['pattern']}")
    if "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{path}: below minimum")
    for branch in schema.get("oneOf", []):
        assert set(branch) == {"required"}, "oneOf branches only say what is required"
    if "oneOf" in schema:
        matches = sum(not schema_errors(value, b, path) for b in schema["oneOf"])
        if matches != 1:
            errors.append(f"{path}: matches {matches} of oneOf")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{path}.{key}: required")
        props = schema.get("properties", {})
        for key, item in value.items():
            if key in props:
                errors += schema_errors(item, props[key], f"{path}.{key}")
            elif "additionalProperties" in schema:
                errors += schema_errors(item, schema["additionalProperties"], f"{path}.{key}")
            # anything else is pruned by the API server, not rejected
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors += schema_errors(item, schema["items"], f"{path}[{i}]")
    return errors


def structural_problems(schema: dict, path: str = "", in_preserve: bool = False) -> list[str]:
    problems = [f"{path}: unknown keyword {k}" for k in schema if k not in KNOWN_KEYWORDS]
    preserve = in_preserve or schema.get("x-kubernetes-preserve-unknown-fields") is True
    if "type" not in schema and not preserve:
        problems.append(f"{path}: no type")
    if "properties" in schema and "additionalProperties" in schema:
        problems.append(f"{path}: properties and additionalProperties")
    if "default" in schema and schema_errors(schema["default"], schema, path):
        problems.append(f"{path}: default does not validate")
    if schema.get("x-kubernetes-list-type") == "set":
        if schema.get("type") != "array" or schema["items"].get("type") not in (
            "string",
            "integer",
            "boolean",
        ):
            problems.append(f"{path}: list-type set needs an array of scalars")
    if schema.get("x-kubernetes-map-type") == "granular" and schema.get("type") != "object":
        problems.append(f"{path}: map-type on a non-object")
    for branch in schema.get("oneOf", []):
        if set(branch) - {"required"}:
            problems.append(f"{path}: oneOf branch may not carry types or descriptions")
    for key, sub in schema.get("properties", {}).items():
        problems += structural_problems(sub, f"{path}.{key}", preserve)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            problems += structural_problems(schema[key], f"{path}.{key}", preserve)
    return problems


def _schema(crd: dict) -> dict:
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def _objects(kind: str, *names: str) -> list[dict]:
    out = []
    for path in [*sorted(UPSTREAM.glob("*.yaml")), UPSTREAM / "config-a.json"]:
        if (names and path.name not in names) or (not names and path.name.startswith("broken")):
            continue
        out += [d.obj for d in load_documents(path.read_text(), path.name) if d.obj.get("kind") == kind]
    return out


def test_deploy_files_equal_generated():
    for name, text in crds.crd_files().items():
        assert "&id" not in text  # no YAML anchors/aliases
        assert (ROOT / "deploy" / "crds" / name).read_text() == text, (
            "regenerate with: akri crds --output-dir deploy/crds"
        )


@pytest.mark.slow
def test_akri_crds_command_prints_both():
    out = subprocess.run(
        [sys.executable, "-m", "akri", "crds"], capture_output=True, text=True, check=True
    ).stdout
    docs = list(yaml.safe_load_all(out))
    assert docs == crds.crds()
    assert [d["metadata"]["name"] for d in docs] == ["configurations.akri.sh", "instances.akri.sh"]


@pytest.mark.slow
def test_akri_crds_output_dir(tmp_path):
    subprocess.run([sys.executable, "-m", "akri", "crds", "--output-dir", str(tmp_path / "out")], check=True)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        crds.CONFIGURATION_CRD_FILE,
        crds.INSTANCE_CRD_FILE,
    ]


@pytest.mark.parametrize("crd", crds.crds(), ids=lambda c: c["spec"]["names"]["kind"])
def test_crd_identity(crd):
    spec = crd["spec"]
    kind = spec["names"]["kind"]
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert spec["group"] == "akri.sh"
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["categories"] == ["all"]
    assert spec["names"]["shortNames"] == [{"Configuration": "akric", "Instance": "akrii"}[kind]]
    assert crd["metadata"]["name"] == f"{spec['names']['plural']}.akri.sh"
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v0", True, True)
    assert "status" not in version.get("subresources", {})
    assert structural_problems(_schema(crd)) == []


def test_printer_columns():
    config, instance = crds.crds()
    cols = {
        c["name"]: (c["type"], c["jsonPath"])
        for c in config["spec"]["versions"][0]["additionalPrinterColumns"]
    }
    assert cols == {"Capacity": ("string", ".spec.capacity"), "Age": ("date", ".metadata.creationTimestamp")}
    cols = {
        c["name"]: (c["type"], c["jsonPath"])
        for c in instance["spec"]["versions"][0]["additionalPrinterColumns"]
    }
    assert cols == {
        "Config": ("string", ".spec.configurationName"),
        "Shared": ("boolean", ".spec.shared"),
        "Nodes": ("string", ".spec.nodes"),
        "Age": ("date", ".metadata.creationTimestamp"),
    }
    assert instance["spec"]["versions"][0]["subresources"] == {}


def test_instance_schema_details():
    spec = _schema(crds.instance_crd())["properties"]["spec"]
    assert spec["required"] == ["configurationName", "cdiName", "capacity"]
    props = spec["properties"]
    assert props["nodes"]["x-kubernetes-list-type"] == "set"
    assert props["deviceUsage"]["x-kubernetes-map-type"] == "granular"
    assert (
        props["shared"]["default"],
        props["nodes"]["default"],
        props["deviceUsage"]["default"],
        props["brokerProperties"]["default"],
    ) == (False, [], {}, {})


def test_configuration_schema_details():
    spec = _schema(crds.configuration_crd())["properties"]["spec"]
    props = spec["properties"]
    assert props["capacity"]["default"] == 1
    assert props["brokerProperties"]["default"] == {}
    assert props["discoveryHandler"]["properties"]["discoveryDetails"]["default"] == ""
    for key in ("instanceServiceSpec", "configurationServiceSpec"):
        assert props[key]["x-kubernetes-preserve-unknown-fields"] is True and props[key]["nullable"] is True
    for key in ("brokerPodSpec", "brokerJobSpec"):
        assert props["brokerSpec"]["properties"][key]["x-kubernetes-preserve-unknown-fields"] is True
    item = props["discoveryHandler"]["properties"]["discoveryProperties"]["items"]
    assert item["oneOf"] == [{"required": ["value"]}, {"required": ["valueFrom"]}]
    selector = item["properties"]["valueFrom"]["properties"]["secretKeyRef"]
    assert selector["properties"]["namespace"]["default"] == "default"


@pytest.mark.parametrize("obj", _objects("Configuration"), ids=lambda o: o["metadata"]["name"])
def test_schema_accepts_configuration_samples(obj):
    assert schema_errors(obj, _schema(crds.configuration_crd())) == []


@pytest.mark.parametrize("obj", _objects("Instance"), ids=lambda o: o["metadata"]["name"])
def test_schema_accepts_instance_samples(obj):
    assert schema_errors(obj, _schema(crds.instance_crd())) == []


BROKEN_BY_SCHEMA = {  # broken fixtures the CRD schema itself catches (the rest need the webhook)
    "no-discovery-handler",
    "no-handler-name",
    "details-not-text",
    "capacity-string",
    "capacity-negative",
    "pod-and-job",
    "deployment-broker",
    "broker-property-number",
    "property-without-name",
    "property-bad-name",
    "property-value-and-source",
    "property-field-ref",
    "property-two-sources",
    "property-empty-source",
    "selector-without-name",
}


@pytest.mark.parametrize(
    "obj", _objects("Configuration", "broken-configurations.yaml"), ids=lambda o: o["metadata"]["name"]
)
def test_schema_on_broken_samples(obj):
    errors = schema_errors(obj, _schema(crds.configuration_crd()))
    assert bool(errors) is (obj["metadata"]["name"] in BROKEN_BY_SCHEMA), errors


def test_schema_rejects_bad_instances():
    schema = _schema(crds.instance_crd())
    good = {"spec": {"configurationName": "c", "cdiName": "akri.sh/c=1", "capacity": 1}}
    assert schema_errors(good, schema) == []
    assert schema_errors({"spec": {"configurationName": "c", "cdiName": "x"}}, schema) == [
        ".spec.capacity: required"
    ]
    assert schema_errors({"spec": {**good["spec"], "nodes": [1]}}, schema) == [
        ".spec.nodes[0]: expected string"
    ]
    assert schema_errors({"spec": {**good["spec"], "deviceUsage": {"c-0": None}}}, schema) == [
        ".spec.deviceUsage.c-0: null not allowed"
    ]
