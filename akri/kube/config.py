"""Where the Kubernetes API is and how to authenticate: kubeconfig file, KUBECONFIG, in-cluster.

Order (first that applies wins), the order kubectl users expect:
1. an explicit kubeconfig path (`--kubeconfig`);
2. the `KUBECONFIG` environment variable (the first existing file of a `:`-separated list);
3. the in-cluster service account (`KUBERNETES_SERVICE_HOST` + the mounted token);
4. `~/.kube/config`.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import httpx2
from lightkube import AsyncClient
from lightkube.config.kubeconfig import DEFAULT_KUBECONFIG, SERVICE_ACCOUNT, KubeConfig, SingleConfig
from lightkube.core.exceptions import ConfigError


class KubeConfigError(RuntimeError):
    """No usable Kubernetes client configuration; the message says what was tried."""


def _first_existing(paths: str) -> Path | None:
    for part in paths.split(os.pathsep):
        if part and Path(part).expanduser().is_file():
            return Path(part).expanduser()
    return None


def load_config(
    kubeconfig: str | os.PathLike[str] | None = None, *, context: str | None = None
) -> SingleConfig:
    """Resolve the client configuration (see the module docstring for the order)."""
    tried: list[str] = []
    path: Path | None = None
    if kubeconfig:
        path = Path(kubeconfig).expanduser()
        if not path.is_file():
            raise KubeConfigError(f"kubeconfig: file {str(path)!r} does not exist")
    elif os.environ.get("KUBECONFIG"):
        path = _first_existing(os.environ["KUBECONFIG"])
        if path is None:
            tried.append(f"KUBECONFIG={os.environ['KUBECONFIG']!r} (no such file)")
    if path is None and not kubeconfig:
        try:
            return KubeConfig.from_service_account(SERVICE_ACCOUNT).get()
        except ConfigError as exc:
            tried.append(f"in-cluster service account ({exc})")
        default = Path(DEFAULT_KUBECONFIG).expanduser()
        if default.is_file():
            path = default
        else:
            tried.append(f"{default} (no such file)")
    if path is None:
        raise KubeConfigError("no Kubernetes configuration found; tried: " + "; ".join(tried))
    try:
        config = KubeConfig.from_file(path).get(context_name=context)
    except (ConfigError, KeyError, ValueError, OSError) as exc:
        raise KubeConfigError(f"kubeconfig {str(path)!r}: {exc}") from exc
    if config is None:
        raise KubeConfigError(f"kubeconfig {str(path)!r}: no current context")
    return config


def make_async_client(
    kubeconfig: str | os.PathLike[str] | None = None,
    *,
    context: str | None = None,
    timeout: float = 10.0,
) -> AsyncClient:
    """A lightkube AsyncClient for `kubeconfig` (or the environment). Create it inside the running loop."""
    config = load_config(kubeconfig, context=context)
    return AsyncClient(config, timeout=httpx2.Timeout(timeout))


SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def default_namespace() -> str:
    """Our own namespace: POD_NAMESPACE, else the service account's, else "default"."""
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    with contextlib.suppress(OSError), open(SERVICE_ACCOUNT_NAMESPACE) as f:
        text = f.read().strip()
        if text:
            return text
    return "default"
