"""Argument types shared by the subcommands: one parser per kind of value, one error style."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def port_number(text: str) -> int:
    """A TCP port 0-65535 (0: pick a free one); ValueError with a message that says why."""
    try:
        port = int(text)
    except ValueError:
        raise ValueError(f"must be a port number 0-65535, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"must be 0-65535, got {port}")
    return port


def flag_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """`parse` as an argparse `type=`: its ValueError message becomes argparse's error text."""
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert
