"""`akri discover -f CONFIG.yaml`: what would the agent on this machine create?

Reads the Configurations in the file(s), runs each one's discovery handler embedded in this
process, and prints the Instances this node would get: the name the agent would give them
(the real digest for this node), the device id, shared, broker properties (device properties
overlaid with the Configuration's brokerProperties, which win), mounts, device specs, capacity
and CDI name. No cluster is needed.

Without --watch the first complete device list of every handler is printed and the command
exits. With --watch it keeps running and prints one JSON object per line per change:
`{"event": "added"|"removed"|"modified", "instance": {...}}`, starting with "added" for the
devices already present.

Exit status: 0 done; 1 a handler failed while discovering; 2 unusable input (unreadable file,
invalid Configuration, unknown handler, unresolvable discovery property).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import yaml

from akri.discovery.device import Device
from akri.discovery.handler import DiscoveryHandler, HandlerSetupError, InvalidDetails

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
DEFAULT_FIRST_LIST_TIMEOUT = 30.0


class UsageError(Exception):
    """Input the command cannot use; the message names the file, object and field."""


@dataclass
class Target:
    """One Configuration with its handler and resolved discovery properties."""

    config: Any  # akri.model.configuration.Configuration
    handler: DiscoveryHandler
    properties: dict[str, bytes | None]

    @property
    def label(self) -> str:
        return f"configuration/{self.config.name}"


# ---------------------------------------------------------------- reading the input


def load_configurations(paths: list[str]) -> list[Any]:
    """Every akri.sh Configuration in the files, checked with the admission webhook's rules."""
    from akri.model.configuration import Configuration
    from akri.model.constants import API_GROUP, CONFIGURATION_KIND
    from akri.model.manifests import ManifestError, expand_lists, read_documents
    from akri.model.validation import validate_configuration

    configs: list[Any] = []
    for path in paths:
        try:
            docs = read_documents(path)
        except ManifestError as exc:
            raise UsageError(str(exc)) from None
        for doc in docs:
            for obj in expand_lists(doc.obj):
                if not isinstance(obj, dict) or obj.get("kind") != CONFIGURATION_KIND:
                    continue
                api_version = obj.get("apiVersion")
                if isinstance(api_version, str) and api_version.split("/", 1)[0] != API_GROUP:
                    continue
                metadata = obj.get("metadata")
                name = metadata.get("name") if isinstance(metadata, dict) else None
                label = f"configuration/{name}" if isinstance(name, str) and name else \
                    f"configuration at {doc.source}:{doc.line}"
                errors = validate_configuration(obj)
                if errors:
                    raise UsageError(f"{label}: invalid: " + "; ".join(str(e) for e in errors))
                configs.append(Configuration.from_dict(obj))
    if not configs:
        raise UsageError(f"no akri.sh/v0 Configuration in {', '.join(paths)}")
    return configs


def resolve_local_properties(config: Any, warn: Callable[[str], None]) -> dict[str, bytes | None]:
    """discoveryProperties without a cluster (spec §4.4): a plain `value` is passed as UTF-8
    bytes, a property with neither value nor valueFrom as None. Secrets and ConfigMaps cannot
    be read here: an optional one is left out with a warning, a required one is an error."""
    resolved: dict[str, bytes | None] = {}
    for i, prop in enumerate(config.spec.discovery_handler.discovery_properties or []):
        path = f"spec.discoveryHandler.discoveryProperties[{i}]"
        if prop.value is not None:  # value wins over valueFrom, as upstream
            resolved[prop.name] = prop.value.encode()
            continue
        source = prop.value_from
        if source is None:
            resolved[prop.name] = None
            continue
        kind, ref = (("Secret", source.secret_key_ref) if source.secret_key_ref is not None
                     else ("ConfigMap", source.config_map_key_ref))
        what = f"{kind} {ref.namespace}/{ref.name} key {ref.key!r}"
        if ref.is_optional:
            warn(f"configuration/{config.name}: {path}.valueFrom: {what} cannot be read without a "
                 f"cluster; optional property {prop.name!r} left out")
            continue
        raise UsageError(
            f"configuration/{config.name}: {path}.valueFrom: {what} cannot be read without a cluster; "
            f"give property {prop.name!r} a plain `value` to try it here (or mark the reference optional)")
    return resolved


def make_handler(config: Any) -> DiscoveryHandler:
    from akri.commands.handler import HandlerLoadError, load_handler

    # debugEcho needs DEBUG_ECHO_INSTANCES_SHARED under the agent; trying it out here, the
    # Helm chart's default (shared) applies when the variable is unset.
    name = config.spec.discovery_handler.name
    options: dict[str, Any] = {"default_shared": True} if name == "debugEcho" else {}
    try:
        return load_handler(name, **options)
    except HandlerLoadError as exc:
        raise UsageError(f"configuration/{config.name}: spec.discoveryHandler.name: {exc}") from None
    except HandlerSetupError as exc:
        raise UsageError(f"configuration/{config.name}: discovery handler {name}: {exc}") from None


# ---------------------------------------------------------------- what the agent would create


def instance_view(config: Any, device: Device, *, shared: bool, node: str) -> dict[str, Any]:
    """The Instance the agent on `node` would create for `device` (plus the device id)."""
    from akri.model import naming

    digest = naming.device_digest(device.id, shared=shared, node=node)
    device_dict = device.to_dict()
    return {
        "name": f"{config.name}-{digest}",
        "namespace": config.namespace,
        "configurationName": config.name,
        "cdiName": naming.cdi_name(config.name, digest),
        "deviceId": device.id,
        "shared": shared,
        "node": node,
        "capacity": config.spec.capacity,
        "brokerProperties": {**device.properties, **config.spec.broker_properties},
        "mounts": device_dict["mounts"],
        "deviceSpecs": device_dict["deviceSpecs"],
    }


def instance_views(target: Target, devices: list[Device], node: str) -> dict[str, dict[str, Any]]:
    views: dict[str, dict[str, Any]] = {}
    for device in devices:
        view = instance_view(target.config, device, shared=bool(target.handler.shared), node=node)
        # duplicates share a name: the first wins, as in the agent's CDI kind
        views.setdefault(view["name"], view)
    return views


def diff(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    for name, view in old.items():
        if name not in new:
            events.append(("removed", view))
    for name, view in new.items():
        if name not in old:
            events.append(("added", view))
        elif old[name] != view:
            events.append(("modified", view))
    return events


# ---------------------------------------------------------------- output


def _cell_properties(view: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in view["brokerProperties"].items()) or "-"


def _cell_devices(view: dict[str, Any]) -> str:
    parts = [f"{d['hostPath']}({d['permissions']})" if d["permissions"] else d["hostPath"]
             for d in view["deviceSpecs"]]
    parts += [f"{m['hostPath']}:{m['containerPath']}{'(ro)' if m['readOnly'] else ''}"
              for m in view["mounts"]]
    return ",".join(parts) or "-"


def render_table(views: list[dict[str, Any]]) -> str:
    header = ("NAME", "DEVICE ID", "SHARED", "CAPACITY", "CDI NAME", "DEVICES/MOUNTS", "BROKER PROPERTIES")
    rows = [header] + [
        (v["name"], v["deviceId"], str(v["shared"]).lower(), str(v["capacity"]), v["cdiName"],
         _cell_devices(v), _cell_properties(v))
        for v in views
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["   ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    return "\n".join(lines) + "\n"


def render(views: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return orjson.dumps(views, option=orjson.OPT_INDENT_2).decode() + "\n"
    if fmt == "yaml":
        return yaml.safe_dump(views, sort_keys=False, default_flow_style=False, allow_unicode=True)
    return render_table(views)


def write_line(obj: Any) -> None:
    sys.stdout.write(orjson.dumps(obj).decode() + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------- running the handlers


async def _lists(target: Target) -> AsyncIterator[list[Device]]:
    from akri.discovery.stream import device_lists

    async for devices in device_lists(target.handler, target.config.spec.discovery_handler.discovery_details,
                                      target.properties):
        yield devices


def _details_error(target: Target, exc: InvalidDetails) -> UsageError:
    from akri.model.validation import details_path

    return UsageError(f"{target.label}: invalid: {details_path(exc.field)}: {exc.message}")


async def first_lists(targets: list[Target], node: str, first_list_timeout: float) -> list[dict[str, Any]]:
    async def first(target: Target) -> list[dict[str, Any]]:
        stream = _lists(target)
        try:
            devices = await asyncio.wait_for(anext(stream), first_list_timeout)
        except StopAsyncIteration:
            devices = []
        except TimeoutError:
            raise RuntimeError(f"{target.label}: the {target.handler.name} handler sent no device list "
                               f"within {first_list_timeout:g} s") from None
        except InvalidDetails as exc:
            raise _details_error(target, exc) from None
        finally:
            await stream.aclose()
        return list(instance_views(target, devices, node).values())

    results = await asyncio.gather(*(first(t) for t in targets))
    return [view for views in results for view in views]


async def watch(targets: list[Target], node: str) -> None:
    """Print added/removed/modified events until stopped (SIGINT/SIGTERM) or every stream ends."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    async def follow(target: Target) -> None:
        current: dict[str, dict[str, Any]] = {}
        try:
            async for devices in _lists(target):
                new = instance_views(target, devices, node)
                for event, view in diff(current, new):
                    write_line({"event": event, "instance": view})
                current = new
        except InvalidDetails as exc:
            raise _details_error(target, exc) from None

    tasks = [asyncio.create_task(follow(t), name=f"watch-{t.config.name}") for t in targets]
    stopper = asyncio.create_task(stop.wait())
    pending: set[asyncio.Task[Any]] = set(tasks)
    try:
        while pending:
            done, pending = await asyncio.wait(pending | {stopper}, return_when=asyncio.FIRST_COMPLETED)
            if stopper in done:
                return
            pending.discard(stopper)
            for task in done:
                task.result()  # a failed handler ends the command with its error
    finally:
        for task in [*tasks, stopper]:
            task.cancel()
        await asyncio.gather(*tasks, stopper, return_exceptions=True)


async def _close_handlers(targets: list[Target]) -> None:
    for target in targets:
        with contextlib.suppress(Exception):
            await target.handler.close()


async def _main(args: argparse.Namespace, targets: list[Target], node: str) -> int:
    try:
        if args.watch:
            await watch(targets, node)
            return EXIT_OK
        views = await first_lists(targets, node, args.timeout)
        sys.stdout.write(render(views, args.output))
        if not views and args.output == "table":
            sys.stderr.write(f"no devices found on node {node}\n")
        return EXIT_OK
    finally:
        await _close_handlers(targets)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "log_level", None) is None and not os.environ.get("AKRI_LOG"):
        # stdout is the answer; handlers' progress logs are for --log-level INFO/DEBUG
        logging.getLogger().setLevel(logging.WARNING)
    node = args.node or os.environ.get("AGENT_NODE_NAME") or socket.gethostname()

    def warn(message: str) -> None:
        sys.stderr.write(f"akri discover: warning: {message}\n")

    try:
        configs = load_configurations(args.files)
        targets = []
        for config in configs:
            handler = make_handler(config)
            targets.append(Target(config, handler, resolve_local_properties(config, warn)))
    except UsageError as exc:
        sys.stderr.write(f"akri discover: {exc}\n")
        return EXIT_USAGE

    from akri import runtime

    try:
        return runtime.run(_main(args, targets, node))
    except UsageError as exc:
        sys.stderr.write(f"akri discover: {exc}\n")
        return EXIT_USAGE
    except Exception as exc:  # a handler failing at run time: report it, no traceback for users
        log.debug("discovery failed", exc_info=True)
        sys.stderr.write(f"akri discover: {exc}\n")
        return EXIT_FAILED


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "discover",
        help="run a Configuration's discovery handler here and print the Instances this node would get",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-f", "--filename", dest="files", metavar="FILE", action="append", required=True,
                   help="Configuration manifest (YAML or JSON, several documents allowed; '-' reads "
                        "standard input); repeat for more files")
    p.add_argument("--node", help="node name used in the Instance names of local devices "
                                  "(default: $AGENT_NODE_NAME, else this host's name)")
    p.add_argument("-o", "--output", choices=("table", "json", "yaml"), default="table",
                   help="output format (default table); --watch always prints JSON lines")
    p.add_argument("--watch", action="store_true",
                   help="keep running; print one JSON event per line for every change")
    p.add_argument("--timeout", type=float, default=DEFAULT_FIRST_LIST_TIMEOUT,
                   help=f"seconds to wait for each handler's first device list (default "
                        f"{DEFAULT_FIRST_LIST_TIMEOUT:g})")
    p.set_defaults(func=run)
