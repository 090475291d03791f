# cython: language_level=3
"""Compiled twin of akri._fast.pure.digest (scaffolding; see pure/digest.py for the contract)."""

from hashlib import blake2b


def digest_hex(str text):
    return blake2b(text.encode("utf-8"), digest_size=3).hexdigest()


def digest_hex_batch(texts):
    return [blake2b(t.encode("utf-8"), digest_size=3).hexdigest() for t in texts]
