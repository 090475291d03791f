"""`akri controller`: broker Pods/Jobs, their Services, and cleanup of vanished nodes (spec §6)."""

from __future__ import annotations

import argparse
import os
from datetime import timedelta

from akri.commands.options import flag_type, port_number


def run(args: argparse.Namespace) -> int:
    from akri import runtime
    from akri.controller.leader import LeaderConfig
    from akri.controller.main import ControllerOptions, run_until_signalled
    from akri.controller.reconciler import Settings
    from akri.kube.config import default_namespace

    metrics_port = args.metrics_port
    if metrics_port is None:
        try:
            metrics_port = port_number(os.environ.get("METRICS_PORT") or "8080")
        except ValueError:
            bad = os.environ["METRICS_PORT"]
            raise SystemExit(f"akri controller: METRICS_PORT={bad!r} is not a port") from None
    options = ControllerOptions(
        kubeconfig=args.kubeconfig,
        metrics_port=metrics_port,
        leader_election=not args.no_leader_election,
        lease_namespace=args.lease_namespace or default_namespace(),
        lease_name=args.lease_name,
        identity=args.identity or "",
        lease_duration=args.lease_duration,
        renew_deadline=args.renew_deadline,
        retry_period=args.retry_period,
        settings=Settings(
            workers=args.workers,
            pending_grace=timedelta(seconds=args.pending_grace),
            ended_grace=timedelta(seconds=args.failed_grace),
        ),
    )
    try:  # bad timings are a usage error, reported before anything starts
        LeaderConfig(namespace=options.lease_namespace, lease_duration=args.lease_duration,
                     renew_deadline=args.renew_deadline, retry_period=args.retry_period)
    except ValueError as e:
        raise SystemExit(f"akri controller: {e}") from None
    from akri.kube.config import KubeConfigError

    try:
        runtime.run(run_until_signalled(options))
    except KubeConfigError as e:
        raise SystemExit(f"akri controller: {e}") from None
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "controller",
        help="run the Akri controller (broker Pods/Jobs, Services, node cleanup)",
        description="Watches Instances, broker Pods and Nodes; creates broker Pods or Jobs for every "
        "Instance, Services in front of running brokers, and removes vanished nodes from Instances. "
        "Uses the kubeconfig (--kubeconfig, KUBECONFIG, ~/.kube/config) or the in-cluster service account.",
    )
    p.add_argument("--kubeconfig", default=None,
                   help="kubeconfig file (default: KUBECONFIG, in-cluster, ~/.kube/config)")
    p.add_argument("--metrics-port", type=flag_type(port_number), default=None,
                   help="port of /metrics (default: env METRICS_PORT or 8080; 0 picks a free port)")
    p.add_argument("--workers", type=int, default=8, help="concurrent reconciles (default 8)")
    p.add_argument("--no-leader-election", action="store_true",
                   help="act without holding the Lease (only when a single replica runs)")
    p.add_argument("--lease-namespace", default=None,
                   help="namespace of the Lease (default: POD_NAMESPACE, the service account's, or default)")
    p.add_argument("--lease-name", default="akri-controller",
                   help="name of the Lease (default akri-controller)")
    p.add_argument("--identity", default=None,
                   help="this replica's holder identity (default: POD_NAME/host + random)")
    p.add_argument("--lease-duration", type=float, default=15.0, help="seconds a Lease is valid (default 15)")
    p.add_argument("--renew-deadline", type=float, default=10.0,
                   help="seconds the leader keeps acting without renewing (default 10)")
    p.add_argument("--retry-period", type=float, default=2.0,
                   help="seconds between Lease attempts (default 2)")
    p.add_argument("--pending-grace", type=float, default=300.0,
                   help="seconds a broker Pod may stay Pending before it is replaced (default 300)")
    p.add_argument("--failed-grace", type=float, default=0.0,
                   help="seconds an ended (Failed/Succeeded) broker Pod is kept before it is replaced "
                   "(default 0)")
    p.set_defaults(func=run)
