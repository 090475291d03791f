"""AdmissionReview handling (spec §7) with upstream's webhook vectors (`webhooks/.../main.rs` tests),
through `akri.webhook.admission.handle`, the function the HTTPS server calls."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from akri.webhook import admission

FIXTURES = Path(__file__).parent / "fixtures" / "upstream"
UID = "00000000-0000-0000-0000-000000000000"


def review(
    spec_extra: dict[str, Any] | None = None,
    *,
    handler: dict[str, Any] | None = None,
    operation: str = "CREATE",
    api_version: str = "admission.k8s.io/v1",
) -> dict[str, Any]:
    """Upstream's ADMISSION_REVIEW constant, with the brokerSpec / discoveryHandler to test."""
    obj = {
        "apiVersion": "akri.sh/v0",
        "kind": "Configuration",
        "metadata": {
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": ""},
            "creationTimestamp": "2021-01-01T00:00:00Z",
            "generation": 1,
            "managedFields": [],
            "name": "name",
            "namespace": "default",
            "uid": UID,
        },
        "spec": {
            "discoveryHandler": handler
            or {"name": "debugEcho", "discoveryDetails": 'descriptions:\n- "foo0"\n- "foo1"\n'},
            **(spec_extra or {}),
        },
    }
    return {
        "kind": "AdmissionReview",
        "apiVersion": api_version,
        "request": {
            "uid": UID,
            "kind": {"group": "akri.sh", "version": "v0", "kind": "Configuration"},
            "resource": {"group": "akri.sh", "version": "v0", "resource": "configurations"},
            "name": "name",
            "namespace": "default",
            "operation": operation,
            "userInfo": {"username": "admin", "uid": "admin", "groups": []},
            "object": obj,
            "oldObject": None,
            "dryRun": False,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"},
        },
    }


CONTAINER = {"image": "image", "name": "name", "resources": {"limits": {"{{PLACEHOLDER}}": "1"}}}
VALID_POD = {"brokerPodSpec": {"containers": [CONTAINER], "imagePullSecrets": [{"name": "name"}]}}
# Upstream's "misplaced resources" vectors put `resources` at PodSpec level; since Kubernetes 1.32
# PodSpec has pod-level `resources`, so the same mistake one level further is used: `limits` at
# PodSpec level, `resources` in the Job's Pod template instead of its spec.
INVALID_POD = {
    "brokerPodSpec": {
        "containers": [{"image": "image", "name": "name"}],
        "limits": {"{{PLACEHOLDER}}": "1"},
        "imagePullSecrets": [{"name": "name"}],
    }
}
VALID_JOB = {
    "brokerJobSpec": {
        "template": {"spec": {"containers": [CONTAINER], "imagePullSecrets": [{"name": "name"}]}}
    }
}
INVALID_JOB = {
    "brokerJobSpec": {
        "template": {
            "spec": {"containers": [CONTAINER], "imagePullSecrets": [{"name": "name"}]},
            "resources": {"limits": {"{{PLACEHOLDER}}": "1"}},
        }
    }
}
SERVICE = {"type": "ClusterIP", "ports": [{"name": "name", "port": 0, "targetPort": 0, "protocol": "TCP"}]}


def answer(body: Any) -> tuple[int, dict[str, Any] | bytes]:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    result = admission.handle(raw)
    if result.status != 200:
        return result.status, result.body
    return result.status, orjson.loads(result.body)


def verdict(body: Any) -> tuple[bool, str | None]:
    status, out = answer(body)
    assert status == 200, out
    assert isinstance(out, dict)
    assert out["apiVersion"] == body["apiVersion"] and out["kind"] == "AdmissionReview"
    response = out["response"]
    assert response["uid"] == UID
    return response["allowed"], (response.get("status") or {}).get("message")


@pytest.mark.parametrize("broker", [VALID_POD, VALID_JOB])
def test_valid_broker_specs_are_allowed(broker: dict) -> None:
    assert verdict(review({"brokerSpec": broker})) == (True, None)


def test_extended_review_with_services_allowed() -> None:
    body = review(
        {
            "brokerSpec": VALID_POD,
            "instanceServiceSpec": SERVICE,
            "configurationServiceSpec": SERVICE,
            "capacity": 1,
        },
        handler={"name": "debugEcho", "discoveryDetails": '{"descriptions": ["foo","bar"]}'},
    )
    assert verdict(body) == (True, None)


@pytest.mark.parametrize(
    ("broker", "path"),
    [
        (INVALID_POD, "spec.brokerSpec.brokerPodSpec.limits"),
        (INVALID_JOB, "spec.brokerSpec.brokerJobSpec.template.resources"),
    ],
)
def test_misplaced_resources_denied_naming_the_field(broker: dict, path: str) -> None:
    allowed, message = verdict(review({"brokerSpec": broker}))
    assert not allowed
    assert path in (message or "")


def test_both_pod_and_job_spec_denied_not_a_crash() -> None:
    # upstream panics ("Could not parse as Akri Configuration")
    allowed, message = verdict(review({"brokerSpec": {**VALID_JOB, **VALID_POD}}))
    assert not allowed
    assert "spec.brokerSpec" in (message or "")


PROPERTIES_ALLOWED = [
    [],
    [{"name": "nnnn", "value": "vvvv"}],
    [{"name": "nnnn", "value": ""}],
    [{"name": "nnnn", "valueFrom": {"secretKeyRef": {"name": "nnnn1", "key": "kkk", "optional": False}}}],
    [{"name": "nnnn", "valueFrom": {"configMapKeyRef": {"name": "nnnn1", "key": "kkk", "optional": False}}}],
]
PROPERTIES_DENIED = [  # upstream: every one of these panics the webhook (except the first)
    # upstream's webhook allows neither value nor valueFrom, but the CRD's oneOf makes the API server
    # refuse it anyway: the webhook says so first, naming the field
    [{"name": "nnnn"}],
    [{"value": "vvvv"}],
    [{"name": "nnnn", "valueFrom": {}}],
    [{"name": "nnnn", "valueFrom": {"fieldRef": {"fieldPath": "ffff"}}}],
    [{"name": "nnnn", "valueFrom": {"configMapKeyRef": {"name1": "nnnn1", "key": "kkk", "optional": False}}}],
    [
        {
            "name": "name1",
            "valueFrom": {
                "configMapKeyRef": {"name": "nnnn1", "key": "kkk", "optional": False},
                "secretKeyRef": {"name": "nnnn1", "key": "kkk", "optional": False},
            },
        }
    ],
]
DETAILS = 'descriptions:\n- "foo0"\n- "foo1"\n'


@pytest.mark.parametrize("properties", PROPERTIES_ALLOWED)
def test_discovery_properties_allowed(properties: list) -> None:
    handler = {"discoveryProperties": properties, "name": "debugEcho", "discoveryDetails": DETAILS}
    assert verdict(review(handler=handler)) == (True, None)


@pytest.mark.parametrize("properties", PROPERTIES_DENIED)
def test_discovery_properties_denied_naming_the_field(properties: list) -> None:
    handler = {"discoveryProperties": properties, "name": "debugEcho", "discoveryDetails": DETAILS}
    allowed, message = verdict(review(handler=handler))
    assert not allowed
    assert "spec.discoveryHandler.discoveryProperties[0]" in (message or "")


@pytest.mark.parametrize(
    ("details", "allowed"),
    [
        # upstream skips empty details; the udev handler cannot run without udevRules, so say it now
        ("", False),
        ('{"udevRules": [], "permissions": "r"}', True),
        ('{"udevRules": [], "permissions": "rwm"}', True),
        ('{"groupRecursive": false, "udevRules": ["KERNEL==\\"video[0-9]*\\""], "permissions": "rwm"}', True),
        ('{"udevRules": [], "permissions": "rwx"}', False),
        ('{"udevRules": [], "permissions": ""}', False),
        ('{"udev_rules": [], "permissions": "x"}', False),
        ('{"something":"else"}', False),
        ('{"rules": ["missing closing bracket"}', False),
        ('{"this is not valid json"}', False),
    ],
)
def test_udev_details_vectors(details: str, allowed: bool) -> None:
    got, message = verdict(review(handler={"name": "udev", "discoveryDetails": details}))
    assert got is allowed, message
    if not allowed:
        assert "spec.discoveryHandler.discoveryDetails" in (message or "")


def test_udev_rules_are_parsed_not_only_permissions() -> None:
    # upstream only checks permissions; a rule that does not parse would crash its handler later
    details = yaml.safe_dump(
        {"udevRules": ['KERNEL=="video[0-9]*"', 'ATTRS{idVendor}=="303a", NOPE'], "permissions": "rwm"}
    )
    allowed, message = verdict(review(handler={"name": "udev", "discoveryDetails": details}))
    assert not allowed
    assert "spec.discoveryHandler.discoveryDetails" in (message or "")


def test_unknown_field_in_pod_spec_denied() -> None:
    broker = copy.deepcopy(VALID_POD)
    broker["brokerPodSpec"]["xUnknownSyntheticField"] = "bar"
    allowed, message = verdict(review({"brokerSpec": broker}))
    assert not allowed
    assert "spec.brokerSpec.brokerPodSpec.xUnknownSyntheticField" in (message or "")


def test_upstream_sample_configurations() -> None:
    valid = yaml.safe_load((FIXTURES / "webhookValidConfiguration.yaml").read_text())
    invalid = yaml.safe_load((FIXTURES / "webhookInvalidConfiguration.yaml").read_text())
    body = review()
    body["request"]["object"] = valid
    assert verdict(body) == (True, None)
    body["request"]["object"] = invalid
    allowed, message = verdict(body)
    assert not allowed and "xUnknownSyntheticField" in (message or "")


def broken_configurations() -> list[tuple[str, dict, str]]:
    docs = yaml.safe_load_all((FIXTURES / "broken-configurations.yaml").read_text())
    return [
        (d["metadata"]["name"], d, d["metadata"]["annotations"]["akri.test/expected-error"])
        for d in docs
        if d
    ]


@pytest.mark.parametrize(
    ("name", "obj", "path"), broken_configurations(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_broken_configurations_denied_at_their_field(name: str, obj: dict, path: str) -> None:
    body = review()
    body["request"]["object"] = obj
    allowed, message = verdict(body)
    assert not allowed, name
    assert path in (message or ""), message


def test_v1beta1_review_answered_in_kind() -> None:
    assert verdict(review({"brokerSpec": VALID_POD}, api_version="admission.k8s.io/v1beta1")) == (True, None)


def test_delete_is_allowed_without_object() -> None:
    body = review(operation="DELETE")
    body["request"]["object"] = None
    assert verdict(body) == (True, None)


# --- malformed requests: 400 or a denial, never an exception ----------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"{",
        b"\xff\xfe",
        b"[]",
        b"42",
        b"null",
        b'"review"',
        b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}',
        b'{"request": null}',
        b'{"request": []}',
        b'{"request": "x"}',
        b'{"request": {"object": {}}}',
        b'{"request": {"uid": 5, "object": {}}}',
        b'{"apiVersion": "v1", "request": {"uid": "u"}}',
    ],
)
def test_malformed_review_is_400(raw: bytes) -> None:
    status, body = answer(raw)
    assert status == 400
    assert isinstance(body, bytes) and body.strip()


def test_missing_object_denied_with_upstream_message() -> None:
    body = review()
    del body["request"]["object"]
    assert verdict(body) == (False, "AdmissionRequest object contains no data")


@pytest.mark.parametrize("obj", [[], "configuration", 42, True, [{"kind": "Configuration"}]])
def test_object_not_a_mapping_denied(obj: Any) -> None:
    body = review()
    body["request"]["object"] = obj
    allowed, message = verdict(body)
    assert not allowed and "must be a mapping" in (message or "")


def test_deep_nesting_denied() -> None:
    # deeper than our limit (MAX_DEPTH) but within what the JSON parser reads: a reviewed denial
    levels = admission.MAX_DEPTH + 400
    raw = orjson.dumps(review({"brokerSpec": {"brokerPodSpec": {"containers": ["DEEP"]}}})).decode()
    raw = raw.replace('"DEEP"', '{"a":' * levels + '"x"' + "}" * levels)
    status, out = answer(raw.encode())
    assert status == 200 and isinstance(out, dict)
    assert out["response"]["allowed"] is False
    assert "nested deeper" in out["response"]["status"]["message"]


def test_deep_list_nesting_in_raw_json_denied() -> None:
    # lists count too, and no recursive walk may hit Python's recursion limit
    levels = admission.MAX_DEPTH + 400
    inner = "[" * levels + "]" * levels
    raw = json.dumps(review()).replace('"discoveryHandler":', f'"deep": {inner}, "discoveryHandler":', 1)
    status, out = answer(raw.encode())
    assert status == 200 and isinstance(out, dict)
    assert out["response"]["allowed"] is False
    assert "nested deeper" in out["response"]["status"]["message"]


def test_json_deeper_than_the_parser_reads_is_a_bad_request() -> None:
    # orjson (>= 3.10) refuses more than 1024 levels: no uid can be read, so 400, never a crash
    inner = "[" * 20000 + "]" * 20000
    raw = json.dumps(review()).replace('"discoveryHandler":', f'"deep": {inner}, "discoveryHandler":', 1)
    status, out = answer(raw.encode())
    assert status == 400 and isinstance(out, bytes)
    assert b"depth" in out


def test_wrong_types_everywhere_denied_not_raised() -> None:
    for obj in (
        {"spec": []},
        {"spec": {"discoveryHandler": "x"}},
        {"metadata": "x", "spec": {}},
        {"apiVersion": 1, "kind": None, "metadata": {"name": 5}, "spec": {"capacity": "many"}},
        {"spec": {"discoveryHandler": {"name": "udev", "discoveryDetails": ["not", "text"]}}},
    ):
        body = review()
        body["request"]["object"] = obj
        allowed, message = verdict(body)
        assert not allowed and message


def test_validator_bug_denies_instead_of_crashing() -> None:
    def broken(_: Any) -> list:
        raise KeyError("boom")

    result = admission.handle(orjson.dumps(review()), broken)
    out = orjson.loads(result.body)
    assert result.status == 200 and out["response"]["allowed"] is False
    assert "KeyError" in out["response"]["status"]["message"]


def test_many_errors_are_summarised() -> None:
    message = admission.format_errors([f"e{i}" for i in range(25)])
    assert message.count(";") == admission.MAX_ERRORS_IN_MESSAGE
    assert message.endswith("and 15 more")
