"""Names derived by akri.model.naming: upstream's digest and name vectors (spec §2, §3.1, §6, §11a)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

import akri._fast
import akri._fast.pure
from akri.model import naming

# (device id, shared, node, digest): upstream unit-test vectors, then fixture/e2e values of §2.
DIGEST_VECTORS = [
    ("my_local_device", False, "my_node", "e77db4"),
    ("my_local_device", False, "my_other_node", "099763"),
    ("my_shared_device", True, None, "4294ea"),
    ("dev_1", True, None, "cb2ad7"),
    ("dev_2", True, None, "7bbc11"),
    ("foo", True, None, "359973"),
    ("", False, "node-a", "b494b6"),
    ("foo0", True, None, "8120fe"),
    ("foo1", True, None, "a19705"),
    ("bar0", True, None, "d46b65"),
    ("bar1", True, None, "ab76e6"),
    ("video1", False, "node-a", "00776f"),
    ("video1", False, "node-b", "dfdbf3"),
    ("video1", True, None, "cf97ff"),
]

IMPLEMENTATIONS = {
    "compiled-or-default": (akri._fast.digest_hex, akri._fast.digest_hex_batch),
    "pure": (akri._fast.pure.digest_hex, akri._fast.pure.digest_hex_batch),
}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def digest_impl(request, monkeypatch):
    """Run naming over the compiled digest and over its pure-Python twin."""
    one, batch = IMPLEMENTATIONS[request.param]
    monkeypatch.setattr(akri._fast, "digest_hex", one)
    monkeypatch.setattr(akri._fast, "digest_hex_batch", batch)
    return request.param


@pytest.mark.parametrize("impl", sorted(IMPLEMENTATIONS))
@pytest.mark.parametrize(("device_id", "shared", "node", "digest"), DIGEST_VECTORS)
def test_digest_functions_reproduce_vectors(impl, device_id, shared, node, digest):
    one, batch = IMPLEMENTATIONS[impl]
    text = device_id if shared else device_id + node
    assert one(text) == digest
    assert batch([text, text]) == [digest, digest]


@pytest.mark.parametrize(("device_id", "shared", "node", "digest"), DIGEST_VECTORS)
def test_device_digest_vectors(digest_impl, device_id, shared, node, digest):
    assert naming.device_digest(device_id, shared=shared, node=node) == digest


def test_upstream_instance_and_cdi_names(digest_impl):
    assert (
        naming.instance_name("my_config", "my_local_device", shared=False, node="my_node")
        == "my_config-e77db4"
    )
    assert naming.cdi_name("my_config", "e77db4") == "akri.sh/my_config=e77db4"
    assert (
        naming.cdi_name("my_config", device_id="my_local_device", shared=False, node="my_node")
        == "akri.sh/my_config=e77db4"
    )
    assert naming.cdi_kind("my-config") == "akri.sh/my-config"
    # shared digests ignore the node; local ones depend on it
    assert naming.instance_name("c", "d", shared=True, node="a") == naming.instance_name(
        "c", "d", shared=True, node="b"
    )
    assert naming.instance_name("c", "d", shared=False, node="a") != naming.instance_name(
        "c", "d", shared=False, node="b"
    )
    assert naming.instance_name("c", "d", shared=False, node="a") != naming.instance_name(
        "c", "d", shared=True, node="a"
    )


def test_worked_example_names(digest_impl):
    """Spec §11a: akri-debug-echo-foo with bar0/bar1 on node-a."""
    assert naming.instance_names("akri-debug-echo-foo", ["bar0", "bar1"], shared=True, node="node-a") == [
        "akri-debug-echo-foo-d46b65",
        "akri-debug-echo-foo-ab76e6",
    ]
    assert naming.instance_names("akri-debug-echo-foo", ["bar0", "bar1"], shared=False, node="node-a") == [
        "akri-debug-echo-foo-7d2706",
        "akri-debug-echo-foo-cf9bee",
    ]
    assert (
        naming.instance_name("akri-udev-dev-null", "/devices/virtual/mem/null", shared=False, node="node-a")
        == "akri-udev-dev-null-2a91a0"
    )
    assert naming.cdi_name("akri-debug-echo-foo", "d46b65") == "akri.sh/akri-debug-echo-foo=d46b65"
    instance = "akri-debug-echo-foo-d46b65"
    assert naming.resource_name(instance) == "akri.sh/akri-debug-echo-foo-d46b65"
    assert naming.resource_name("akri-debug-echo-foo") == "akri.sh/akri-debug-echo-foo"
    assert [naming.slot_id(instance, i) for i in range(2)] == [
        "akri-debug-echo-foo-d46b65-0",
        "akri-debug-echo-foo-d46b65-1",
    ]
    assert naming.broker_pod_name(instance, "node-a", True) == "node-a-akri-debug-echo-foo-d46b65-pod"
    assert naming.instance_service_name(instance) == "akri-debug-echo-foo-d46b65-svc"
    assert naming.configuration_service_name("akri-debug-echo-foo") == "akri-debug-echo-foo-svc"


def test_fixture_names(digest_impl):
    """Spec §9.3 fixtures: config-a's shared device `foo`, and local devices with empty id on node-a."""
    assert naming.instance_name("config-a", "foo", shared=True) == "config-a-359973"
    assert naming.instance_name("config-a", "", shared=False, node="node-a") == "config-a-b494b6"
    assert naming.instance_name("config-b", "", shared=False, node="node-a") == "config-b-b494b6"
    assert naming.broker_pod_name("config-a-359973", "node-a", True) == "node-a-config-a-359973-pod"
    assert naming.broker_pod_name("config-a-359973", "node-b", True) == "node-b-config-a-359973-pod"
    assert naming.broker_pod_name("config-a-b494b6", "node-a", False) == "config-a-b494b6-pod"
    assert naming.instance_service_name("config-a-359973") == "config-a-359973-svc"
    assert naming.configuration_service_name("config-a") == "config-a-svc"


@given(st.text(max_size=40), st.booleans(), st.text(max_size=20))
def test_batch_equals_one_by_one(device_id, shared, node):
    ids = [device_id, device_id + "x", ""]
    assert naming.instance_names("cfg", ids, shared=shared, node=node) == [
        naming.instance_name("cfg", d, shared=shared, node=node) for d in ids
    ]


def test_local_device_needs_a_node():
    with pytest.raises(ValueError, match="node"):
        naming.instance_name("cfg", "dev", shared=False, node=None)
    with pytest.raises(ValueError, match="node"):
        naming.instance_names("cfg", ["dev"], shared=False)
    with pytest.raises(TypeError):
        naming.cdi_name("cfg")


def test_instance_name_keeps_dots():
    assert naming.instance_name("my.config", "dev", shared=True).startswith("my.config-")


@pytest.mark.parametrize(
    ("slot", "index"),
    [("slot-1", 1), ("my-other-slot-2", 2), ("a-0", 0), ("x-10", 10), ("config-a-359973-4", 4)],
)
def test_slot_index(slot, index):
    assert naming.slot_index(slot) == index


@pytest.mark.parametrize(
    "slot", ["not-a-slot-id", "slot", "slot-", "slot-+1", "slot- 1", "slot-1x", "slot-\u0661", ""]
)
def test_slot_index_rejects(slot):
    with pytest.raises(ValueError):
        naming.slot_index(slot)


@given(st.text(max_size=30), st.integers(min_value=0, max_value=10**6))
def test_slot_id_round_trip(name, index):
    assert naming.slot_index(naming.slot_id(name, index)) == index


def test_broker_app_name_vectors():
    """Upstream `create_broker_app_name` vectors (spec §6.2/§6.3)."""
    assert naming.broker_app_name("instance.name", "node", True, "suffix") == "node-instance-name-suffix"
    assert naming.broker_app_name("instance.name", "node", False, "suffix") == "instance-name-suffix"
    assert naming.broker_app_name("1-0-0-1", "node", True, "suffix") == "node-1-0-0-1-suffix"
    assert naming.broker_app_name("instance.name", None, True, "suffix") == "instance-name-suffix"
    # the node name is not normalised
    assert naming.broker_app_name("i", "node.example", True, "pod") == "node.example-i-pod"


def test_broker_job_name_vectors():
    assert naming.broker_job_name("instance.name", 1) == "instance-name-1-job"
    assert naming.broker_app_name("instance.name", "node", True, "1-job") == "node-instance-name-1-job"
    assert naming.broker_job_name("config-a-359973", 7) == "config-a-359973-7-job"


def test_service_app_name_vectors():
    """Upstream `create_service_app_name` vectors (spec §6.4)."""
    assert naming.service_app_name("foo", "node.a", "suffix", True) == "node-a-suffix"
    assert naming.service_app_name("foo", "node.a", "suffix", False) == "foo-suffix"
    assert naming.configuration_service_name("my.config") == "my-config-svc"
    assert naming.instance_service_name("my.config-359973") == "my-config-359973-svc"


@pytest.mark.slow
def test_pure_python_mode_in_a_fresh_process():
    """AKRI_PURE_PYTHON=1 makes akri._fast use the twins; names are the same."""
    code = (
        "import json, akri._fast as f; from akri.model import naming as n;"
        "print(json.dumps([f.compiled_modules(), n.instance_name('my_config', 'my_local_device',"
        " shared=False, node='my_node'), n.instance_names('c', ['dev_1', 'dev_2'], shared=True)]))"
    )
    env = {**os.environ, "AKRI_PURE_PYTHON": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    modules, name, names = json.loads(out.stdout)
    assert modules["_digest"] is False
    assert name == "my_config-e77db4"
    assert names == ["c-cb2ad7", "c-7bbc11"]
