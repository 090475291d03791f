"""`python -m akri.testing.apiserver --port PORT [--host H] [--kubeconfig FILE] [--tls]`

Serves until SIGTERM/SIGINT (then exits 0). Prints `listening on http://HOST:PORT` (flushed) once
the port is bound, so a test can start it with --port 0 and read the chosen port.

--tls serves HTTPS (`listening on https://HOST:PORT`) as a real cluster does: a throwaway CA
signs a certificate for HOST, localhost, 127.0.0.1 and ::1, and the kubeconfig carries the CA as
`certificate-authority-data` (clients verify the server against it; the token user is unchanged).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from .server import ApiServer
from .store import DEFAULT_HISTORY_SIZE, Store


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m akri.testing.apiserver", description="Kubernetes API server double for tests"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one (default)")
    parser.add_argument("--kubeconfig", metavar="FILE", help="write a kubeconfig pointing at the server")
    parser.add_argument("--namespace", default="default", help="namespace of the kubeconfig context")
    parser.add_argument("--tls", action="store_true",
                        help="serve HTTPS with a throwaway CA (written into the kubeconfig)")
    parser.add_argument(
        "--history-size",
        type=int,
        default=DEFAULT_HISTORY_SIZE,
        help="watch events kept per resource type for resuming watches (default %(default)s)",
    )
    parser.add_argument(
        "--bookmark-interval",
        type=float,
        default=60.0,
        help="seconds between watch BOOKMARK events (default %(default)s)",
    )
    parser.add_argument("--no-gc", action="store_true", help="disable ownerReference garbage collection")
    parser.add_argument("--log-level", default="WARNING")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    store = Store(history_size=args.history_size, garbage_collection=not args.no_gc)
    server = ApiServer(store, host=args.host, port=args.port, bookmark_interval=args.bookmark_interval,
                       tls=args.tls)
    await server.start()
    if args.kubeconfig:
        server.kubeconfig(args.kubeconfig, namespace=args.namespace)
    print(f"listening on {server.url}", flush=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    await server.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args))
    else:
        uvloop.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
