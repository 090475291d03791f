"""Discovery property resolution (spec §4.4): Configuration discoveryProperties → bytes for Discover.

* `value` → its UTF-8 bytes (a value wins over `valueFrom`);
* `valueFrom.secretKeyRef` → the Secret's `data[key]`, decoded from base64;
* `valueFrom.configMapKeyRef` → the ConfigMap's `data[key]` (UTF-8) if present, else `binaryData[key]`;
* a missing Secret/ConfigMap or key is an error unless the selector is `optional`, in which
  case the property is left out;
* neither `value` nor `valueFrom` → the name is sent with no bytes (ByteData without `vec`).

The selector's namespace defaults to "default", not the Configuration's namespace (upstream,
kept for compatibility; `akri.model` fills it in). A Secret is read only when a property names it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Sequence
from typing import Any

from akri.kube.api import Kube
from akri.kube.resources import ConfigMap, Secret
from akri.model.configuration import DiscoveryProperty, KeySelector

_PATH = "spec.discoveryHandler.discoveryProperties"


class UnsolvableProperty(LookupError):
    """A discovery property that cannot be resolved; the message names the property and source."""

    def __init__(self, index: int, prop: str, message: str) -> None:
        super().__init__(f"{_PATH}[{index}] ({prop}): {message}")
        self.property = prop


_MISSING = object()


def _b64(value: str, where: str, index: int, prop: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise UnsolvableProperty(index, prop, f"{where} is not valid base64: {exc}") from None


def _absent(sel: KeySelector, index: int, prop: str, problem: str) -> Any:
    """What a missing object or key means: left out when the selector is optional, else an error."""
    if sel.is_optional:
        return _MISSING
    raise UnsolvableProperty(index, prop, problem)


async def _from_secret(kube: Kube, sel: KeySelector, index: int, prop: str) -> Any:
    secret = await kube.get_or_none(Secret, sel.name, sel.namespace)
    where = f"Secret {sel.namespace}/{sel.name}"
    if secret is None:
        return _absent(sel, index, prop, f"{where} not found")
    data = secret.get("data") or {}
    if sel.key in data:
        return _b64(data[sel.key], f"{where} key {sel.key!r}", index, prop)
    return _absent(sel, index, prop, f"{where} has no key {sel.key!r}")


async def _from_config_map(kube: Kube, sel: KeySelector, index: int, prop: str) -> Any:
    cm = await kube.get_or_none(ConfigMap, sel.name, sel.namespace)
    where = f"ConfigMap {sel.namespace}/{sel.name}"
    if cm is None:
        return _absent(sel, index, prop, f"{where} not found")
    data = cm.get("data") or {}
    if sel.key in data:
        return data[sel.key].encode("utf-8")
    binary = cm.get("binaryData") or {}
    if sel.key in binary:
        return _b64(binary[sel.key], f"{where} binaryData key {sel.key!r}", index, prop)
    return _absent(sel, index, prop, f"{where} has no key {sel.key!r}")


async def _resolve_one(kube: Kube, index: int, prop: DiscoveryProperty) -> Any:
    if prop.value is not None:
        return prop.value.encode("utf-8")
    source = prop.value_from
    if source is None:
        return None
    if source.secret_key_ref is not None:
        return await _from_secret(kube, source.secret_key_ref, index, prop.name)
    if source.config_map_key_ref is not None:
        return await _from_config_map(kube, source.config_map_key_ref, index, prop.name)
    raise UnsolvableProperty(index, prop.name, "valueFrom names neither secretKeyRef nor configMapKeyRef")


async def resolve_properties(
    kube: Kube, properties: Sequence[DiscoveryProperty] | None
) -> dict[str, bytes | None]:
    """Resolve every property concurrently; the first hard error aborts (UnsolvableProperty or API error)."""
    if not properties:
        return {}
    values = await asyncio.gather(*(_resolve_one(kube, i, p) for i, p in enumerate(properties)))
    return {p.name: v for p, v in zip(properties, values, strict=True) if v is not _MISSING}
