"""Logging set-up shared by every `akri` subcommand."""

from __future__ import annotations

import logging
import os


def setup_logging(level: str | None = None) -> None:
    name = (level or os.environ.get("AKRI_LOG") or "INFO").upper()
    logging.basicConfig(
        level=getattr(logging, name, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
