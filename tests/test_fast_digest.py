"""The Instance-name digest: compiled BLAKE2b vs its hashlib twin vs hashlib itself (spec §2)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from akri._fast import pure

try:
    from akri._fast import _digest as compiled
except ImportError:
    compiled = None

needs_compiled = pytest.mark.skipif(
    compiled is None, reason="akri._fast._digest is not built (run: python setup.py build_ext --inplace)"
)
MODULES = [
    pytest.param(lambda: compiled, id="compiled", marks=needs_compiled),
    pytest.param(lambda: pure, id="pure"),
]


@pytest.fixture(params=MODULES)
def impl(request: pytest.FixtureRequest):  # the module: digest_hex and digest_hex_batch
    return request.param()


def reference(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=3).hexdigest()


# spec §2: upstream's unit-test vectors, then values computed with the algorithm
SPEC_VECTORS = {
    "my_local_devicemy_node": "e77db4",
    "my_local_devicemy_other_node": "099763",
    "my_shared_device": "4294ea",
    "dev_1": "cb2ad7",
    "dev_2": "7bbc11",
    "foo": "359973",
    "node-a": "b494b6",
    "foo0": "8120fe",
    "foo1": "a19705",
    "bar0": "d46b65",
    "bar1": "ab76e6",
    "video1node-a": "00776f",
    "video1node-b": "dfdbf3",
    "video1": "cf97ff",
}


@pytest.mark.parametrize(("text", "digest"), SPEC_VECTORS.items())
def test_spec_vectors(impl, text: str, digest: str) -> None:
    assert impl.digest_hex(text) == digest


def test_batch_of_spec_vectors_keeps_order(impl) -> None:
    assert impl.digest_hex_batch(list(SPEC_VECTORS)) == list(SPEC_VECTORS.values())
    assert impl.digest_hex_batch(t for t in SPEC_VECTORS) == list(SPEC_VECTORS.values())
    assert impl.digest_hex_batch([]) == []


# lengths around BLAKE2b's 128-byte block, in 1-, 2-, 3- and 4-byte UTF-8 characters
LENGTHS = (0, 1, 31, 32, 33, 42, 43, 63, 64, 65, 127, 128, 129, 256, 257)
BOUNDARY = [c * n for c in ("a", "é", "€", "😀") for n in LENGTHS]


@pytest.mark.parametrize("text", BOUNDARY, ids=lambda t: f"{len(t.encode())}B")
def test_block_boundaries(impl, text: str) -> None:
    assert impl.digest_hex(text) == reference(text)


def test_long_multi_block_input(impl) -> None:
    text = "".join(chr(0x20 + i % 0x2FFF) for i in range(100_000))
    assert impl.digest_hex(text) == reference(text)


@pytest.mark.parametrize("bad", [b"dev_1", None, 42, ["dev_1"]])
def test_non_str_is_a_type_error(impl, bad: object) -> None:
    with pytest.raises(TypeError, match="digest input must be str"):
        impl.digest_hex(bad)
    with pytest.raises(TypeError, match="digest input must be str"):
        impl.digest_hex_batch(["ok", bad])


def test_lone_surrogate_cannot_be_utf8_encoded(impl) -> None:
    with pytest.raises(UnicodeEncodeError):
        impl.digest_hex("dev\udc80")


def test_str_subclass_hashes_its_text(impl) -> None:
    class DeviceId(str):
        pass

    assert impl.digest_hex(DeviceId("dev_1")) == "cb2ad7"


texts = st.text() | st.text(min_size=100, max_size=3000) | st.text(st.characters(max_codepoint=0x7F))


@needs_compiled
@settings(max_examples=1000, deadline=None)
@given(texts)
def test_compiled_equals_hashlib_on_any_text(text: str) -> None:
    assert compiled.digest_hex(text) == pure.digest_hex(text) == reference(text)


@needs_compiled
@settings(max_examples=200, deadline=None)
@given(st.lists(texts, max_size=20))
def test_compiled_batch_equals_hashlib(batch: list[str]) -> None:
    assert compiled.digest_hex_batch(batch) == pure.digest_hex_batch(batch) == [reference(t) for t in batch]


def test_the_package_exports_a_working_digest() -> None:
    """Whichever implementation akri._fast picked, it computes the spec's value."""
    from akri import _fast

    assert _fast.digest_hex("my_shared_device") == "4294ea"
    assert _fast.digest_hex_batch(["dev_1", "dev_2"]) == ["cb2ad7", "7bbc11"]
