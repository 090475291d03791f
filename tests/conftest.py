"""Fixtures shared by test modules in several directories."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def sockdir() -> Iterator[Path]:
    """A fresh directory for unix sockets: short, under /tmp, because a socket path is limited
    to 107 bytes and pytest's tmp_path is often longer."""
    path = Path(tempfile.mkdtemp(prefix="akri-s-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
