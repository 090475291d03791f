#!/usr/bin/env python3
"""Resident memory of an `akri agent` process: idle, and serving 10, 100 and 1,000 Instances.

    python bench/footprint.py [--counts 10 100 1000] [--settle 3] [--layers] [--no-site] [--plain-http]

The API double and the kubelet double run as separate processes; the agent embeds debugEcho
and gets one Configuration with N descriptions (N local Instances, N instance-level device
plugins plus one configuration-level plugin, all registered and streaming to the kubelet
double). Each count runs in a fresh agent, so earlier rounds leave nothing on its heap. The
figure is VmRSS of the agent process after it converged and `--settle` seconds passed (max of
a few samples). Also printed: the same interpreter's RSS with nothing imported and how long
convergence took.

The agent talks to the API double over HTTPS (verifying it against the CA in the kubeconfig),
as on a real cluster: the TLS context and handshake are part of a node's footprint.
--plain-http measures the agent over plain HTTP instead (the difference is TLS's cost).

--layers prints the RSS of the agent's imports layer by layer (interpreter, asyncio, grpc, ...):
what dominates.
--no-site runs the agent with `python -S` and an explicit sys.path, i.e. without the `.pth`
start-up hooks of this machine's site-packages (editable install, a CA injector), closer to
a container image.

Targets: idle <= 40 MiB, 100 Instances <= 60 MiB.
(bench/deploy_footprint.py measures every deployed process; this script is the agent's scaling.)
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _benchlib import add_plain_http_flag, peak_rss_kib, serve_instances, start_agent, start_apiserver
from e2e.cluster import Cluster
from e2e.procs import ProcessGroup, wait_for

TARGETS = {0: 40 * 1024, 100: 60 * 1024}  # KiB
RSS_CODE = "import re;print(re.search(r'VmRSS:\\s+(\\d+)', open('/proc/self/status').read()).group(1))"
LAYERS = [
    ("interpreter", "pass"),
    ("asyncio (+ ssl: libssl, libcrypto)", "import asyncio"),
    ("uvloop", "import uvloop"),
    ("grpclib + h2", "import grpclib.server, grpclib.client"),
    ("protobuf + the three protos (messages + grpclib stubs)", "import akri._proto.deviceplugin_grpc, "
     "akri._proto.discovery_grpc, akri._proto.podresources_grpc"),
    ("akri.kube (thin client: h11 + orjson)", "import akri.kube"),
    ("akri agent core + plugins + debugEcho", "import akri.agent.core, akri.agent.plugins, "
     "akri.discovery.handlers.debug_echo"),
    ("akri.agent.main (+ metrics registry)", "import akri.agent.main"),
    ("akri CLI (every subcommand's parser)", "import akri.cli, akri.commands.agent; akri.cli.build_parser()"),
]


def search_path() -> list[str]:
    """The source tree and site-packages, for `python -S`."""
    source = str(Path(__file__).resolve().parent.parent)
    return [source, *(p for p in sys.path if p.endswith("site-packages"))]


def launcher(no_site: bool) -> list[str]:
    """The command that runs the `akri` CLI."""
    if not no_site:
        return [sys.executable, "-m", "akri"]
    return [sys.executable, "-S", "-c", f"import sys; sys.path[:0] = {search_path()!r}; "
            "from akri.cli import main; sys.exit(main())"]


def python_rss_kib(code: str, no_site: bool) -> int:
    flags = ["-S"] if no_site else []
    if no_site:
        code = f"import sys; sys.path[:0] = {search_path()!r}\n" + code
    done = subprocess.run([sys.executable, *flags, "-c", code + "\n" + RSS_CODE], capture_output=True,
                          text=True, check=True)
    return int(done.stdout)


def measure(procs: ProcessGroup, cluster: Cluster, kubeconfig: Path, count: int, settle: float,
            run: int, no_site: bool) -> tuple[int, float]:
    """RSS (KiB) of a fresh agent serving `count` Instances, and seconds to converge."""
    kubelet = procs.kubelet(f"kubelet{run}")
    agent = start_agent(procs, kubeconfig, kubelet, "--embedded", "debugEcho", log_name=f"agent-{count}.log",
                        launcher=launcher(no_site))
    name = f"footprint-{count}"
    elapsed = serve_instances(cluster, kubelet, name, count) if count else 0.0
    rss = peak_rss_kib(agent.pid, settle)
    if count:
        cluster.delete_configuration(name)
        wait_for("Instances cleaned up", lambda: not cluster.instances(name), timeout=60 + count * 0.2,
                 interval=0.5)
    agent.stop()
    kubelet.stop()
    return rss, elapsed


def layer_costs(no_site: bool) -> str:
    """RSS after importing the agent's dependencies layer by layer (as `akri agent` does)."""
    code, lines, previous = "", [], 0
    for what, statement in LAYERS:
        code += statement + "\n"
        rss = python_rss_kib(code, no_site)
        lines.append(f"  {rss / 1024:6.1f} MiB  +{(rss - previous) / 1024:5.1f}  {what}")
        previous = rss
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", type=int, nargs="*", default=[10, 100, 1000],
                        help="Instance counts after the idle run (default 10 100 1000)")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds to sample RSS after convergence")
    parser.add_argument("--layers", action="store_true", help="print the RSS of each layer of imports")
    parser.add_argument("--no-site", action="store_true", help="run the agent with python -S")
    add_plain_http_flag(parser)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="akri-fp-", dir="/tmp"))
    base = python_rss_kib("pass", args.no_site)
    results: list[tuple[int, int, float]] = []
    try:
        with ProcessGroup(workdir) as procs:
            api = start_apiserver(procs, tls=not args.plain_http)
            cluster = Cluster(api.kubeconfig)
            for run, count in enumerate([0, *args.counts]):
                rss, elapsed = measure(procs, cluster, api.kubeconfig, count, args.settle, run, args.no_site)
                results.append((count, rss, elapsed))
                print(f"  {count:5d} Instances: {rss / 1024:6.1f} MiB"
                      + (f"  (converged in {elapsed:.1f} s)" if count else ""), flush=True)
            cluster.close()
    except BaseException:
        print(f"logs kept in {workdir}", file=sys.stderr)
        raise
    shutil.rmtree(workdir, ignore_errors=True)

    transport = "plain HTTP" if args.plain_http else "HTTPS"
    print(f"\nagent RSS (VmRSS), API over {transport}, python {sys.version.split()[0]}"
          f"{' -S' if args.no_site else ''}; "
          f"bare interpreter alike: {base / 1024:.1f} MiB")
    print(f"{'Instances':>10} {'RSS MiB':>8} {'above bare':>11} {'per Instance':>13} {'target':>8}")
    idle = results[0][1]
    for count, rss, _ in results:
        per = f"{(rss - idle) / count:.1f} KiB" if count else ""
        target = TARGETS.get(count)
        verdict = "" if target is None else f"{target / 1024:.0f} {'ok' if rss <= target else 'OVER'}"
        print(f"{count:>10} {rss / 1024:8.1f} {(rss - base) / 1024:11.1f} {per:>13} {verdict:>8}")
    if args.layers:
        print("\nRSS of the agent's imports, layer by layer (the running agent adds the rest):")
        print(layer_costs(args.no_site))
    return 0


if __name__ == "__main__":
    sys.exit(main())
