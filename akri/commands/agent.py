"""`akri agent`: discovery → Instances → device plugins on one node (spec §3, §4).

Every setting is a flag with an environment fallback; upstream's variable names are kept
(AGENT_NODE_NAME, DISCOVERY_HANDLERS_DIRECTORY, METRICS_PORT, ENABLE_DEBUG_ECHO +
DEBUG_ECHO_INSTANCES_SHARED). A missing or bad setting is reported by name and exits 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

from akri.commands.options import flag_type, port_number

EXIT_USAGE = 2
EMBEDDABLE = ("debugEcho", "udev", "onvif", "opcua")

EMBEDDED_ENV = "AKRI_EMBEDDED_HANDLERS"
DEVICE_PLUGINS_DIR_ENV = "AKRI_DEVICE_PLUGINS_DIR"
POD_RESOURCES_SOCKET_ENV = "AKRI_POD_RESOURCES_SOCKET"
METRICS_PORT_ENV = "METRICS_PORT"
OFFLINE_GRACE_ENV = "AKRI_OFFLINE_GRACE_SECONDS"


class SettingError(ValueError):
    """A setting the agent cannot run with; the message names it."""


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"must be a number of seconds, got {text!r}") from None


def _seconds(text: str) -> float:
    value = _number(text)
    if not value >= 0:
        raise ValueError(f"must be a number of seconds >= 0, got {text!r}")
    return value


def _positive_seconds(text: str) -> float:
    value = _number(text)
    if not value > 0:
        raise ValueError(f"must be a number of seconds > 0, got {text!r}")
    return value


def _setting(flag_value: Any, env: Mapping[str, str], name: str, parse: Callable[[str], Any],
             default: Any) -> Any:
    """The flag if given, else the environment variable `name`, else `default`."""
    if flag_value is not None:
        return flag_value
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        return parse(text)
    except ValueError as exc:
        raise SettingError(f"{name}: {exc}") from None


def embedded_names(flags: list[str] | None, env: Mapping[str, str]) -> list[str]:
    """--embedded NAME... (or AKRI_EMBEDDED_HANDLERS=a,b), without duplicates, in order."""
    names = list(flags or [])
    if not names:
        names = [n.strip() for n in env.get(EMBEDDED_ENV, "").split(",") if n.strip()]
        unknown = [n for n in names if n not in EMBEDDABLE]
        if unknown:
            raise SettingError(f"{EMBEDDED_ENV}: unknown handler(s) {', '.join(unknown)} "
                               f"(embeddable: {', '.join(EMBEDDABLE)})")
    return list(dict.fromkeys(names))


def build_options(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> Any:
    """AgentOptions from flags and environment; raises SettingError, AgentSetupError,
    HandlerSetupError or HandlerLoadError naming the setting."""
    from akri.agent.core import AgentSettings
    from akri.agent.main import AgentOptions
    from akri.agent.plugins.manager import DEFAULT_DEVICE_PLUGIN_DIR
    from akri.agent.plugins.reclaimer import DEFAULT_POD_RESOURCES_SOCKET
    from akri.commands.handler import load_handler

    env = os.environ if env is None else env
    grace = _setting(args.offline_grace_seconds, env, OFFLINE_GRACE_ENV, _seconds, 300.0)
    overrides: dict[str, Any] = {"kubeconfig": args.kubeconfig, "offline_grace_seconds": grace}
    if args.node_name:
        overrides["node_name"] = args.node_name
    if args.discovery_handlers_directory:
        overrides["discovery_handlers_directory"] = args.discovery_handlers_directory
    if args.handler_hold_seconds is not None:
        overrides["handler_hold_seconds"] = args.handler_hold_seconds
    settings = AgentSettings.from_env(env, **overrides)  # ENABLE_DEBUG_ECHO → embedded debugEcho
    handlers = list(settings.embedded_handlers)
    have = {h.name for h in handlers}
    for name in embedded_names(args.embedded, env):
        if name not in have:
            handlers.append(load_handler(name))
            have.add(name)
    settings.embedded_handlers = tuple(handlers)
    return AgentOptions(
        settings=settings,
        metrics_host=args.metrics_host,
        metrics_port=_setting(args.metrics_port, env, METRICS_PORT_ENV, port_number, 8080),
        device_plugins_dir=(args.device_plugins_dir or env.get(DEVICE_PLUGINS_DIR_ENV)
                            or DEFAULT_DEVICE_PLUGIN_DIR),
        pod_resources_socket=(args.pod_resources_socket or env.get(POD_RESOURCES_SOCKET_ENV)
                              or DEFAULT_POD_RESOURCES_SOCKET),
        reclaim_interval=args.slot_reclaim_interval,
        reclaim_grace=args.slot_grace_period,
    )


def run(args: argparse.Namespace) -> int:
    from akri import runtime
    from akri.agent.core import AgentSetupError
    from akri.commands.handler import HandlerLoadError
    from akri.discovery.handler import HandlerSetupError
    from akri.kube.config import KubeConfigError

    try:
        options = build_options(args)
    except (SettingError, AgentSetupError, HandlerSetupError, HandlerLoadError) as exc:
        sys.stderr.write(f"akri agent: {exc}\n")
        return EXIT_USAGE
    from akri.agent.main import StartupError, TaskFailed, run_until_signalled

    try:
        runtime.run(run_until_signalled(options))
    except (KubeConfigError, StartupError) as exc:
        sys.stderr.write(f"akri agent: {exc}\n")
        return EXIT_USAGE
    except OSError as exc:  # a port or socket that cannot be bound
        sys.stderr.write(f"akri agent: {exc}\n")
        return 1
    except TaskFailed as exc:  # logged with its traceback; exit so that Kubernetes restarts the agent
        sys.stderr.write(f"akri agent: {exc}\n")
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "agent",
        help="run the Akri agent of one node (discovery, Instances, device plugins, slot reclaim)",
        description="Finds devices through discovery handlers for every Configuration, keeps one Instance "
        "per device, serves a device plugin per Instance (and per Configuration) to the kubelet and "
        "records slot claims in the Instances. SIGTERM stops it and leaves the Instances for the next agent.",
    )
    env = "(env %s)"
    p.add_argument("--node-name", default=None, help="this node's name " + env % "AGENT_NODE_NAME; required")
    p.add_argument("--discovery-handlers-directory", default=None,
                   help="directory of agent-registration.sock and handler sockets "
                        + env % "DISCOVERY_HANDLERS_DIRECTORY; required")
    p.add_argument("--kubeconfig", default=None,
                   help="kubeconfig file (default: KUBECONFIG, in-cluster, ~/.kube/config)")
    p.add_argument("--metrics-port", type=flag_type(port_number), default=None,
                   help="port of /metrics " + env % METRICS_PORT_ENV + "; default 8080; 0 picks a free port")
    p.add_argument("--metrics-host", default="0.0.0.0", help="address of /metrics (default 0.0.0.0)")
    p.add_argument("--device-plugins-dir", default=None,
                   help="kubelet device-plugin directory " + env % DEVICE_PLUGINS_DIR_ENV
                        + "; default /var/lib/kubelet/device-plugins")
    p.add_argument("--pod-resources-socket", default=None,
                   help="kubelet pod-resources socket " + env % POD_RESOURCES_SOCKET_ENV
                        + "; default /var/lib/kubelet/pod-resources/kubelet.sock")
    p.add_argument("--embedded", nargs="+", action="extend", choices=EMBEDDABLE, metavar="NAME",
                   help="run these discovery handlers inside the agent: " + ", ".join(EMBEDDABLE)
                        + " " + env % (EMBEDDED_ENV + "=a,b") + "; ENABLE_DEBUG_ECHO also embeds debugEcho "
                        "(its shared flag comes from DEBUG_ECHO_INSTANCES_SHARED)")
    p.add_argument("--offline-grace-seconds", type=flag_type(_seconds), default=None,
                   help="keep a shared device's Instance this long after its handler stops reporting it "
                        + env % OFFLINE_GRACE_ENV + "; default 300")
    p.add_argument("--handler-hold-seconds", type=flag_type(_seconds), default=None,
                   help="keep the devices of a handler that went away this long, for it to come back "
                        "(default: the offline grace period)")
    p.add_argument("--slot-reclaim-interval", type=flag_type(_positive_seconds), default=10.0,
                   help="seconds between slot reclaim rounds (default 10)")
    p.add_argument("--slot-grace-period", type=flag_type(_seconds), default=20.0,
                   help="a slot no container uses is freed after this many seconds (default 20)")
    p.set_defaults(func=run)
