"""Instance-name digest: BLAKE2b with a 3-byte output, as 6 lowercase hex characters."""

from __future__ import annotations

from collections.abc import Iterable
from hashlib import blake2b


def digest_hex(text: str) -> str:
    """Upstream Akri's device hash: blake2b(text, digest_size=3) in lowercase hex."""
    return blake2b(text.encode("utf-8"), digest_size=3).hexdigest()


def digest_hex_batch(texts: Iterable[str]) -> list[str]:
    """`digest_hex` over many inputs at once (an agent renaming every device on a rescan)."""
    return [blake2b(t.encode("utf-8"), digest_size=3).hexdigest() for t in texts]
