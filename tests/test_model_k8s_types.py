"""The committed Kubernetes type table (akri/model/k8s_types.json) behind the round-trip rule.

The table is generated from lightkube-models by `python -m akri.model.k8s_schema_gen`; these
tests keep it current and prove the validator needs neither lightkube nor msgspec at run time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from importlib import resources
from typing import Any

from akri.model import k8s_schema, k8s_schema_gen

PRIMITIVES = {"str", "int", "float", "bool", "datetime", "null", "any", "map"}


def committed() -> dict[str, Any]:
    return json.loads(resources.files("akri.model").joinpath(k8s_schema.TABLE_FILE).read_text())


def test_committed_table_is_what_the_installed_lightkube_models_give() -> None:
    fresh, table = k8s_schema_gen.build(), committed()
    # "source" names the exact release; a release with the same types needs no new file.
    assert table["source"].startswith("lightkube-models ")
    fresh.pop("source"), table.pop("source")
    assert table == fresh, "akri/model/k8s_types.json is out of date: run python -m akri.model.k8s_schema_gen"


def test_committed_file_is_the_generator_output() -> None:
    # Byte for byte what render() writes: a hand edit (or a reformat) shows up here.
    text = resources.files("akri.model").joinpath(k8s_schema.TABLE_FILE).read_text()
    assert text == k8s_schema_gen.render(committed())


def test_every_reference_resolves() -> None:
    # The walker reads an unknown name as free JSON, so a dangling reference would silently
    # stop checking that part of the object.
    table = committed()
    structs = table["structs"]
    assert set(table["roots"]) == set(k8s_schema.KINDS)
    assert set(table["roots"].values()) <= set(structs)

    def names(t: Any) -> set[str]:
        if isinstance(t, list):
            assert t[0] in ("list", "union") and len(t) >= 2, t
            return set().union(*(names(x) for x in t[1:]))
        return {t}

    used = set().union(*(names(t) for s in structs.values() for t in s["fields"].values()))
    assert used <= PRIMITIVES | set(structs), used - PRIMITIVES - set(structs)
    assert not PRIMITIVES & set(structs)
    for name, entry in structs.items():
        assert set(entry.get("required", ())) <= set(entry["fields"]), name
    # the table covers what the validator is known to need
    assert structs["PodSpec"]["required"] == ["containers"]
    assert structs["Container"]["fields"]["resources"] == "ResourceRequirements"
    assert structs["ContainerPort"]["fields"]["containerPort"] == "int"
    assert structs["ServicePort"]["fields"]["targetPort"] == ["union", "int", "str"]


def test_conform_reads_the_table() -> None:
    pod = {
        "containers": [{"name": "b", "image": "nginx", "ports": [{"containerPort": "80"}],
                        "resources": {"limits": {"cpu": 1, "memory": "30Mi"}}}],
        "nodeSelector": {"disk": 1},
        "xUnknown": True,
    }
    out, errors = k8s_schema.conform(pod, "PodSpec", "spec.pod")
    assert out == {"containers": [{"name": "b", "image": "nginx", "ports": [{"containerPort": "80"}],
                                   "resources": {"limits": {"cpu": 1, "memory": "30Mi"}}}],
                   "nodeSelector": {"disk": 1}}
    assert [(e.path, e.message) for e in errors] == [
        ("spec.pod.containers[0].ports[0].containerPort", "expected integer, got string"),
        ("spec.pod.nodeSelector.disk", "expected string, got integer"),
    ]
    _, errors = k8s_schema.conform({"ports": [{"port": 80, "targetPort": 1.5}]}, "ServiceSpec", "s")
    assert [(e.path, e.message) for e in errors] == [
        ("s.ports[0].targetPort", "expected integer or string, got number")]
    _, errors = k8s_schema.conform({"template": {}}, "JobSpec", "j")
    assert [(e.path, e.message) for e in errors] == []
    _, errors = k8s_schema.conform({}, "JobSpec", "j")
    assert [(e.path, e.message) for e in errors] == [("j.template", "required")]


BLOCKED = ("lightkube", "msgspec")
PROBE = textwrap.dedent(
    """
    import importlib.abc, json, sys

    BLOCKED = %r

    attempts = []

    class Block(importlib.abc.MetaPathFinder):
        # as if they were not installed (they are test-only), noting any attempt
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in BLOCKED:
                attempts.append(name)
                raise ImportError(f"{name} must not be imported by validation")
            return None

    sys.meta_path.insert(0, Block())

    from akri.commands.validate import check_document  # noqa: F401 (the `akri validate` path)
    from akri.model.validation import validate_configuration
    from akri.webhook import admission

    def configuration(pod):
        return {"apiVersion": "akri.sh/v0", "kind": "Configuration", "metadata": {"name": "c"},
                "spec": {"discoveryHandler": {"name": "debugEcho", "discoveryDetails": "descriptions: [foo]"},
                         "brokerSpec": {"brokerPodSpec": pod}}}

    good = configuration({"containers": [{"name": "b", "image": "nginx",
                                          "resources": {"limits": {"{{PLACEHOLDER}}": "1"}}}]})
    bad = configuration({"containers": [{"name": "b", "xUnknownSyntheticField": 1}]})
    results = {
        "good": [str(e) for e in validate_configuration(good)],
        "bad": [str(e) for e in validate_configuration(bad)],
    }
    for name, obj in (("webhookGood", good), ("webhookBad", bad)):
        body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                           "request": {"uid": "u", "operation": "CREATE", "object": obj}}).encode()
        results[name] = json.loads(admission.handle(body).body)["response"]["allowed"]
    results["loaded"] = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    results["attempts"] = attempts
    print(json.dumps(results))
    """
) % (BLOCKED,)


def test_validation_imports_neither_lightkube_nor_msgspec() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert results["good"] == [] and results["webhookGood"] is True
    assert results["bad"] and all("xUnknownSyntheticField" in e for e in results["bad"]), results["bad"]
    assert results["webhookBad"] is False
    assert results["loaded"] == [] and results["attempts"] == []
