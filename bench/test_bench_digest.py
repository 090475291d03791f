"""Instance-name digest: compiled BLAKE2b vs the hashlib twin (ratios printed at the end).

* ``digest-batch-1000``: ``digest_hex_batch`` over 1000 local udev device ids (devpath +
  node name, as the agent hashes them for a node with many devices).
* ``digest-single``: one ``digest_hex`` call on one such id.
* ``digest-long``: one call on a 4 KiB id (multi-block; an ONVIF/OPC UA URL is far shorter,
  this only shows the compression loop itself).
"""

from __future__ import annotations

import pytest

from akri._fast import pure

try:
    from akri._fast import _digest as compiled
except ImportError:
    compiled = None

DEVICE_IDS = [
    f"/devices/pci0000:00/0000:00:14.0/usb{i % 4 + 1}/{i % 4 + 1}-{i % 12}/{i % 4 + 1}-{i % 12}:1.0"
    f"/video4linux/video{i}node-{i % 7}"
    for i in range(1000)
]


def module(impl: str):
    if impl == "compiled" and compiled is None:
        pytest.skip("akri._fast._digest is not built (python setup.py build_ext --inplace)")
    return compiled if impl == "compiled" else pure


@pytest.mark.parametrize("impl", ["compiled", "pure"])
def test_digest_batch(benchmark, impl: str) -> None:
    mod = module(impl)
    benchmark.group = "digest-batch-1000"
    benchmark.extra_info["impl"] = impl
    result = benchmark(mod.digest_hex_batch, DEVICE_IDS)
    assert result == pure.digest_hex_batch(DEVICE_IDS)


@pytest.mark.parametrize("impl", ["compiled", "pure"])
def test_digest_single(benchmark, impl: str) -> None:
    mod = module(impl)
    benchmark.group = "digest-single"
    benchmark.extra_info["impl"] = impl
    assert benchmark(mod.digest_hex, DEVICE_IDS[0]) == pure.digest_hex(DEVICE_IDS[0])


@pytest.mark.parametrize("impl", ["compiled", "pure"])
def test_digest_long(benchmark, impl: str) -> None:
    mod = module(impl)
    text = "opc.tcp://" + "x" * 4086
    benchmark.group = "digest-long"
    benchmark.extra_info["impl"] = impl
    assert benchmark(mod.digest_hex, text) == pure.digest_hex(text)
