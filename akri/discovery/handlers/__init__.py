"""Built-in discovery handlers, imported lazily by name so an agent only loads what it runs."""

from __future__ import annotations

import importlib
from typing import Any

from akri.discovery.handler import DiscoveryHandler

# registration name -> "module:ClassName"
BUILTIN: dict[str, str] = {
    "debugEcho": "akri.discovery.handlers.debug_echo:DebugEchoHandler",
    "udev": "akri.discovery.handlers.udev:UdevHandler",
    "onvif": "akri.discovery.handlers.onvif:OnvifHandler",
    "opcua": "akri.discovery.handlers.opcua:OpcuaHandler",
}


class UnknownHandler(LookupError):
    def __init__(self, name: str) -> None:
        known = ", ".join(sorted(BUILTIN))
        super().__init__(f"unknown discovery handler {name!r} (built-in handlers: {known})")
        self.name = name


class HandlerUnavailable(RuntimeError):
    """A built-in handler whose optional dependencies are not installed."""


def get_handler(name: str, **options: Any) -> DiscoveryHandler:
    """Instantiate the built-in handler registered as `name`."""
    target = BUILTIN.get(name)
    if target is None:
        raise UnknownHandler(name)
    module_name, cls_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise HandlerUnavailable(f"discovery handler {name!r} cannot load: {exc}") from exc
    return getattr(module, cls_name)(**options)
