"""The one discovery-handler interface.

A handler turns (discovery details, discovery properties) into a stream of COMPLETE device
lists and says whether its devices are shared between nodes. The same object serves three
ways: embedded in the agent, behind the v0.DiscoveryHandler gRPC service (`akri handler`),
and under `akri discover`.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

import yaml

from akri.discovery.device import Device


class InvalidDetails(ValueError):
    """Discovery details (or properties) a handler cannot use. `field` names where.

    A standalone handler answers it with gRPC INVALID_ARGUMENT and keeps running.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


class HandlerSetupError(RuntimeError):
    """A handler cannot start in this environment (e.g. a required environment variable is
    missing or invalid). Commands report it as a usage error; it is not a discovery failure."""


def load_details(text: str, *, root: str = "discoveryDetails") -> dict[str, Any]:
    """Parse discovery details as YAML (so JSON works too); empty text is an empty mapping."""
    if text is None or not str(text).strip():
        return {}
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise InvalidDetails(root, f"not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidDetails(root, f"must be a mapping, got {type(data).__name__}")
    return data


class DiscoveryHandler(abc.ABC):
    """Base class of every discovery handler (debugEcho, udev, onvif, opcua, custom)."""

    #: Registration name, matched against Configuration.spec.discoveryHandler.name.
    name: ClassVar[str]

    #: True when one device is visible from several nodes (its Instance name omits the node).
    shared: bool = False

    @abc.abstractmethod
    def validate(self, details: str) -> Any:
        """Parse and check discovery details; raise InvalidDetails naming the field.

        Used by `akri validate` and the admission webhook without discovering anything.
        """

    @abc.abstractmethod
    def discover(self, details: str, properties: Mapping[str, bytes | None]) -> AsyncIterator[list[Device]]:
        """Yield the complete current device list: first at once, then on every change.

        Raises InvalidDetails (before the first yield) when the details are unusable.
        Implementations are async generators; the caller cancels them to stop.
        """

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release long-lived resources (sockets, monitors). Default: nothing."""
