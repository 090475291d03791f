"""Instance-name digest: BLAKE2b with a 3-byte output, as 6 lowercase hex characters."""

from __future__ import annotations

from collections.abc import Iterable
from hashlib import blake2b


def _check(text: object) -> None:
    # without this, bytes would fail with AttributeError and the compiled twin with TypeError
    if not isinstance(text, str):
        raise TypeError(f"digest input must be str, not {type(text).__name__}")


def digest_hex(text: str) -> str:
    """Upstream Akri's device hash: blake2b(text, digest_size=3) in lowercase hex."""
    _check(text)
    return blake2b(text.encode("utf-8"), digest_size=3).hexdigest()


def digest_hex_batch(texts: Iterable[str]) -> list[str]:
    """`digest_hex` over many inputs at once (an agent renaming every device on a rescan)."""
    out = []
    for text in texts:
        _check(text)
        out.append(blake2b(text.encode("utf-8"), digest_size=3).hexdigest())
    return out
