"""`akri handler NAME`: run one discovery handler as a standalone process.

Serves v0.DiscoveryHandler on `$DISCOVERY_HANDLERS_DIRECTORY/<NAME>.sock` (or on
`$POD_IP:10000`), registers with the agent at `$DISCOVERY_HANDLERS_DIRECTORY/agent-registration.sock`
and stays registered across agent restarts. NAME is a built-in handler (debugEcho, udev,
onvif, opcua) or `package.module:ClassName` for a custom DiscoveryHandler subclass.
SIGTERM/SIGINT stop it and remove its socket.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import signal
import sys
from typing import Any

from akri import runtime
from akri.discovery.handler import DiscoveryHandler, HandlerSetupError

log = logging.getLogger(__name__)

EXIT_USAGE = 2


class HandlerLoadError(Exception):
    """NAME names no handler (unknown built-in, bad module path, missing optional dependency)."""


def load_handler(name: str, **options: Any) -> DiscoveryHandler:
    """A built-in handler by registration name, or a custom one by `module:Class`.

    Raises HandlerLoadError (unknown or unloadable) or HandlerSetupError (bad environment).
    """
    from akri.discovery.handlers import HandlerUnavailable, UnknownHandler, get_handler

    if ":" not in name:
        try:
            return get_handler(name, **options)
        except (UnknownHandler, HandlerUnavailable) as exc:
            raise HandlerLoadError(str(exc)) from None
    module_name, _, cls_name = name.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
    except (ImportError, AttributeError) as exc:
        raise HandlerLoadError(f"cannot load discovery handler {name!r}: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, DiscoveryHandler)):
        raise HandlerLoadError(f"{name!r} is not a DiscoveryHandler subclass")
    return cls(**options)


async def _serve_until_signalled(handler: DiscoveryHandler, args: argparse.Namespace) -> None:
    from akri.discovery.server import serve

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await serve(handler, directory=args.directory, pod_ip=args.pod_ip or None, port=args.port, stop=stop)


def run(args: argparse.Namespace) -> int:
    try:
        handler = load_handler(args.name)
    except HandlerLoadError as exc:
        sys.stderr.write(f"akri handler: {exc}\n")
        return EXIT_USAGE
    except HandlerSetupError as exc:
        sys.stderr.write(f"akri handler {args.name}: {exc}\n")
        return EXIT_USAGE
    if args.pod_ip:
        from akri.discovery.server import network_endpoint

        try:
            network_endpoint(args.pod_ip, args.port)
        except ValueError as exc:
            sys.stderr.write(f"akri handler: {exc}\n")
            return EXIT_USAGE
    try:
        runtime.run(_serve_until_signalled(handler, args))
    except OSError as exc:
        sys.stderr.write(f"akri handler {args.name}: {exc}\n")
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "handler",
        help="run a discovery handler as a standalone gRPC server that registers with the agent",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", metavar="NAME", help="debugEcho, udev, onvif, opcua, or module:Class")
    p.add_argument("--directory", default=os.environ.get("DISCOVERY_HANDLERS_DIRECTORY") or "/var/lib/akri",
                   help="directory of the handler and agent sockets (env DISCOVERY_HANDLERS_DIRECTORY; "
                        "default /var/lib/akri)")
    p.add_argument("--pod-ip", default=os.environ.get("POD_IP"),
                   help="serve on this IP (port --port) instead of a unix socket (env POD_IP)")
    p.add_argument("--port", type=int, default=10000, help="port for --pod-ip (default 10000, as upstream)")
    p.set_defaults(func=run)
