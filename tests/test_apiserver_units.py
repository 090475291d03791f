"""Pure parts of the API double: selectors, the three patch dialects, metadata validation."""

from __future__ import annotations

import pytest

from akri.testing.apiserver import ApiError
from akri.testing.apiserver.patch import json_patch, merge_patch, strategic_merge_patch
from akri.testing.apiserver.resources import ResourceRegistry
from akri.testing.apiserver.selectors import (
    fields_match,
    labels_match,
    parse_field_selector,
    parse_label_selector,
)
from akri.testing.apiserver.validation import validate_metadata

REGISTRY = ResourceRegistry()
PODS = REGISTRY.find("pods")
INSTANCES = REGISTRY.find("akrii")


def _obj(labels: dict[str, str]) -> dict:
    return {"metadata": {"name": "x", "labels": labels}}


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("a=b", {"a": "b"}, True),
        ("a==b", {"a": "b"}, True),
        ("a=b", {"a": "c"}, False),
        ("a!=b", {"a": "c"}, True),
        ("a!=b", {}, True),  # != matches objects without the label
        ("a!=b", {"a": "b"}, False),
        ("a in (x, y)", {"a": "y"}, True),
        ("a in (x,y)", {}, False),
        ("a notin (x,y)", {"a": "z"}, True),
        ("a notin (x,y)", {}, True),
        ("a notin (x,y)", {"a": "x"}, False),
        ("a", {"a": ""}, True),
        ("a", {"b": "1"}, False),
        ("!a", {"b": "1"}, True),
        ("!a", {"a": "1"}, False),
        ("a=", {"a": ""}, True),
        ("akri.sh/configuration=cfg,!akri.sh/gone", {"akri.sh/configuration": "cfg"}, True),
        ("a=b, c in (d), !e", {"a": "b", "c": "d"}, True),
        ("a=b,c=d", {"a": "b"}, False),
        ("n>3", {"n": "4"}, True),
        ("n<3", {"n": "4"}, False),
        ("", {"a": "b"}, True),
    ],
)
def test_label_selector_matches_like_the_real_api(
    selector: str, labels: dict[str, str], expected: bool
) -> None:
    assert labels_match(parse_label_selector(selector), _obj(labels)) is expected


@pytest.mark.parametrize(
    "selector", ["a in x", "a in (x", "=b", "a=b=c", "a b", "a in (x) y", "bad key!=1", "n>x"]
)
def test_bad_label_selector_is_400(selector: str) -> None:
    with pytest.raises(ApiError) as err:
        parse_label_selector(selector)
    assert err.value.code == 400 and err.value.reason == "BadRequest"


def test_field_selector_equality_inequality_and_escapes() -> None:
    pod = {"metadata": {"name": "p,1", "namespace": "ns"}, "spec": {"nodeName": "node-a"}}
    assert fields_match(parse_field_selector("spec.nodeName=node-a", PODS), pod)
    assert fields_match(parse_field_selector("spec.nodeName==node-a,metadata.namespace=ns", PODS), pod)
    assert not fields_match(parse_field_selector("spec.nodeName!=node-a", PODS), pod)
    assert fields_match(parse_field_selector(r"metadata.name=p\,1", PODS), pod)
    # Unscheduled pods have spec.nodeName "" for selectors.
    assert fields_match(parse_field_selector("spec.nodeName=", PODS), {"metadata": {"name": "q"}, "spec": {}})


def test_field_selector_rejects_fields_the_type_does_not_support() -> None:
    with pytest.raises(ApiError) as err:
        parse_field_selector("spec.nodeName=a", INSTANCES)
    assert err.value.code == 400 and "field label not supported: spec.nodeName" in err.value.message
    assert parse_field_selector("metadata.name=a", INSTANCES)


# RFC 7386 appendix A examples
@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_rfc7386(target: dict, patch: dict, result: dict) -> None:
    before = repr(target)
    assert merge_patch(target, patch) == result
    assert repr(target) == before  # inputs are not mutated


def test_json_patch_operations() -> None:
    doc = {"metadata": {"labels": {"a/b": "1"}}, "spec": {"nodes": ["n1"], "x": 1}}
    out = json_patch(
        doc,
        [
            {"op": "test", "path": "/spec/x", "value": 1},
            {"op": "add", "path": "/spec/nodes/-", "value": "n2"},
            {"op": "add", "path": "/spec/nodes/0", "value": "n0"},
            {"op": "replace", "path": "/metadata/labels/a~1b", "value": "2"},
            {"op": "copy", "from": "/spec/x", "path": "/spec/y"},
            {"op": "move", "from": "/spec/x", "path": "/spec/z"},
            {"op": "remove", "path": "/spec/nodes/1"},
        ],
    )
    assert out == {"metadata": {"labels": {"a/b": "2"}}, "spec": {"nodes": ["n0", "n2"], "y": 1, "z": 1}}
    assert doc["spec"] == {"nodes": ["n1"], "x": 1}


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "test", "path": "/spec/x", "value": 2}],
        [{"op": "test", "path": "/spec/flag", "value": 1}],  # true is not 1 in JSON
        [{"op": "remove", "path": "/spec/missing"}],
        [{"op": "replace", "path": "/spec/missing", "value": 1}],
        [{"op": "add", "path": "/metadata/labels/a", "value": "b"}],  # parent does not exist
        [{"op": "add", "path": "/spec/list/5", "value": 1}],
    ],
)
def test_json_patch_that_does_not_apply_is_422(ops: list) -> None:
    with pytest.raises(ApiError) as err:
        json_patch({"metadata": {}, "spec": {"x": 1, "flag": True, "list": []}}, ops)
    assert err.value.code == 422


@pytest.mark.parametrize(
    "ops", [{"op": "add"}, [{"path": "/a"}], [{"op": "add", "path": "/a"}], [{"op": "x", "path": ""}]]
)
def test_malformed_json_patch_is_400(ops: object) -> None:
    with pytest.raises(ApiError) as err:
        json_patch({}, ops)
    assert err.value.code == 400


def test_strategic_merge_patch_merges_keyed_lists() -> None:
    pod = {
        "metadata": {"finalizers": ["a"], "ownerReferences": [{"uid": "1", "name": "o"}]},
        "spec": {
            "containers": [{"name": "c1", "image": "i1", "ports": [{"containerPort": 80, "name": "http"}]}],
            "tolerations": [{"key": "t1"}],
        },
        "status": {
            "conditions": [{"type": "Ready", "status": "False"}, {"type": "Initialized", "status": "True"}]
        },
    }
    out = strategic_merge_patch(
        pod,
        {
            "metadata": {"finalizers": ["b"]},
            "spec": {
                "containers": [
                    {"name": "c1", "image": "i2", "ports": [{"containerPort": 81}]},
                    {"name": "c2"},
                ],
                "tolerations": [{"key": "t2"}],
            },
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        },
    )
    assert out["metadata"]["finalizers"] == ["a", "b"]
    assert out["spec"]["containers"] == [
        {
            "name": "c1",
            "image": "i2",
            "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 81}],
        },
        {"name": "c2"},
    ]
    assert out["spec"]["tolerations"] == [{"key": "t2"}]  # no merge key: replaced
    assert out["status"]["conditions"] == [
        {"type": "Ready", "status": "True"},
        {"type": "Initialized", "status": "True"},
    ]


def test_strategic_merge_patch_directives() -> None:
    obj = {
        "metadata": {"finalizers": ["a", "b"]},
        "spec": {"containers": [{"name": "c1"}, {"name": "c2"}], "template": {"x": 1, "y": 2}},
    }
    out = strategic_merge_patch(
        obj,
        {
            "$setElementOrder/containers": [{"name": "c1"}],
            "metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]},
            "spec": {
                "containers": [{"name": "c2", "$patch": "delete"}],
                "template": {"$patch": "replace", "z": 3},
            },
        },
    )
    assert out == {
        "metadata": {"finalizers": ["b"]},
        "spec": {"containers": [{"name": "c1"}], "template": {"z": 3}},
    }


@pytest.mark.parametrize(
    ("meta", "field"),
    [
        ({"name": "Upper"}, "metadata.name"),
        ({"name": "a" * 254}, "metadata.name"),
        ({"name": "ok", "labels": {"a": "x" * 64}}, "metadata.labels"),
        ({"name": "ok", "labels": {"bad key": "v"}}, "metadata.labels"),
        ({"name": "ok", "labels": {"a": 1}}, "metadata.labels[a]"),
        ({"name": "ok", "annotations": {"a": 1}}, "metadata.annotations[a]"),
        ({"name": "ok", "finalizers": "x"}, "metadata.finalizers"),
        (
            {"name": "ok", "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "p"}]},
            "metadata.ownerReferences[0].uid",
        ),
    ],
)
def test_metadata_validation_names_the_field(meta: dict, field: str) -> None:
    with pytest.raises(ApiError) as err:
        validate_metadata(INSTANCES, {"metadata": meta})
    assert err.value.code == 422 and err.value.reason == "Invalid"
    assert err.value.details["causes"][0]["field"] == field


def test_service_names_are_dns_labels() -> None:
    services = REGISTRY.find("svc")
    validate_metadata(INSTANCES, {"metadata": {"name": "a.b"}})
    with pytest.raises(ApiError):
        validate_metadata(services, {"metadata": {"name": "a.b"}})


def test_registry_resolves_names_tests_use() -> None:
    assert REGISTRY.find("akrii") is INSTANCES
    assert REGISTRY.find("Instance") is INSTANCES
    assert REGISTRY.find("instances.akri.sh") is INSTANCES
    assert REGISTRY.find("akric").kind == "Configuration"
    assert REGISTRY.find("no").namespaced is False
    with pytest.raises(KeyError):
        REGISTRY.find("widgets")
