"""`akri webhook`: the Configuration admission webhook over HTTPS (spec §7).

Either serve a given certificate (`--tls-crt-file`, `--tls-key-file`, as upstream) or, with
`--self-signed`, make one for the Service, keep it in a Secret and register its CA in the
ValidatingWebhookConfiguration, so an install needs no hand-made certificates.
"""

from __future__ import annotations

import argparse
import os
import tempfile

from akri.commands.options import flag_type, port_number


async def serve(args: argparse.Namespace) -> None:
    import asyncio
    import contextlib
    import logging
    import signal
    from pathlib import Path

    from akri.webhook.server import CertReloader, WebhookServer, make_ssl_context

    log = logging.getLogger("akri.webhook")
    background: list[asyncio.Task[None]] = []
    kube = None
    if args.self_signed:
        from akri.kube.api import Kube
        from akri.kube.config import default_namespace
        from akri.webhook import bootstrap

        settings = bootstrap.SelfSignedSettings(
            namespace=args.namespace or default_namespace(),
            service=args.service_name,
            secret=args.secret_name or args.service_name,
            webhook_configuration=args.webhook_config_name or args.service_name,
            cluster_domain=args.cluster_domain,
        )
        kube = Kube.from_config(args.kubeconfig)
        bundle = await bootstrap.ensure_certificate_patiently(kube, settings)
        cert_dir = args.cert_dir or tempfile.mkdtemp(prefix="akri-webhook-")
        crt, key = bootstrap.write_files(bundle, cert_dir)
        background.append(asyncio.create_task(bootstrap.keep_ca_bundle(kube, settings, bundle)))
    else:
        crt, key = Path(args.tls_crt_file), Path(args.tls_key_file)
    ctx = make_ssl_context(crt, key)
    background.append(asyncio.create_task(CertReloader(ctx, Path(crt), Path(key)).run()))
    server = WebhookServer(ctx, host=args.host, port=args.port)
    await server.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    try:
        await stopping.wait()
    finally:
        log.info("stopping")
        for task in background:
            task.cancel()
        for task in background:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await server.stop()
        if kube is not None:
            await kube.close()


def run(args: argparse.Namespace) -> int:
    from akri import runtime
    if args.self_signed and (args.tls_crt_file or args.tls_key_file):
        raise SystemExit("akri webhook: --self-signed and --tls-crt-file/--tls-key-file exclude each other")
    if not args.self_signed and not (args.tls_crt_file and args.tls_key_file):
        raise SystemExit("akri webhook: give --tls-crt-file and --tls-key-file, or --self-signed")
    for path in (args.tls_crt_file, args.tls_key_file):
        if path and not os.path.isfile(path):
            raise SystemExit(f"akri webhook: {path}: no such file")
    from akri.kube.config import KubeConfigError
    from akri.webhook.bootstrap import BootstrapError

    try:
        runtime.run(serve(args))
    except (KubeConfigError, BootstrapError, OSError, ValueError) as e:
        raise SystemExit(f"akri webhook: {e}") from None
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "webhook",
        help="run the Configuration validating admission webhook (HTTPS POST /validate)",
        description="Validates akri.sh Configurations for the API server with the same rules as "
        "`akri validate`. Serve a given certificate, or --self-signed to make and register one.",
    )
    p.add_argument("--tls-crt-file", default=None, help="PEM certificate (chain) to serve")
    p.add_argument("--tls-key-file", default=None, help="PEM private key of the certificate")
    p.add_argument("--port", type=flag_type(port_number), default=8443, help="HTTPS port (default 8443)")
    p.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    g = p.add_argument_group("self-signed certificate (--self-signed)")
    g.add_argument("--self-signed", action="store_true",
                   help="make a certificate for the Service, keep it in a Secret, register its CA")
    g.add_argument("--service-name", default="akri-webhook-configuration",
                   help="the webhook's Service (default akri-webhook-configuration)")
    g.add_argument("--namespace", default=None,
                   help="namespace of the Service and Secret (default: POD_NAMESPACE, the service account's)")
    g.add_argument("--secret-name", default=None,
                   help="Secret holding the certificate (default: the Service name)")
    g.add_argument("--webhook-config-name", default=None,
                   help="ValidatingWebhookConfiguration to write the CA into (default: the Service name)")
    g.add_argument("--cluster-domain", default="cluster.local",
                   help="cluster DNS domain (default cluster.local)")
    g.add_argument("--cert-dir", default=None,
                   help="where to write tls.crt/tls.key (default: a temporary dir)")
    g.add_argument("--kubeconfig", default=None,
                   help="kubeconfig file (default: KUBECONFIG, in-cluster, ~/.kube/config)")
    p.set_defaults(func=run)
