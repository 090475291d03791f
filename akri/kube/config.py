"""Where the Kubernetes API is and how to authenticate: kubeconfig file, KUBECONFIG, in-cluster.

Order (first that applies wins), the order kubectl users expect:
1. an explicit kubeconfig path (`--kubeconfig`);
2. the `KUBECONFIG` environment variable (the first existing file of a `:`-separated list);
3. the in-cluster service account (`KUBERNETES_SERVICE_HOST` + the mounted token);
4. `~/.kube/config`.

Supported in a kubeconfig: current-context or an explicit context; the cluster's server,
certificate-authority(-data), insecure-skip-tls-verify and tls-server-name; a user's token,
tokenFile, client-certificate(-data) + client-key(-data) and username/password. `exec` and
`auth-provider` users are refused with a KubeConfigError (no plugins are run).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import ssl
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from akri.kube.http import HttpClient

SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
DEFAULT_KUBECONFIG = "~/.kube/config"
SERVICE_ACCOUNT_NAMESPACE = f"{SERVICE_ACCOUNT}/namespace"

#: a token file is read again at least this often: the in-cluster token is a bound token that
#: the kubelet rotates (client-go re-reads it every minute too)
TOKEN_REREAD_SECONDS = 60.0


class KubeConfigError(RuntimeError):
    """No usable Kubernetes client configuration; the message says what was tried."""


@dataclass(frozen=True, slots=True)
class Cluster:
    server: str
    ca_file: str | None = None
    ca_data: bytes | None = None  # PEM
    insecure_skip_tls_verify: bool = False
    tls_server_name: str | None = None


@dataclass(frozen=True, slots=True)
class User:
    token: str | None = None
    token_file: str | None = None
    client_cert_file: str | None = None
    client_cert_data: bytes | None = None  # PEM
    client_key_file: str | None = None
    client_key_data: bytes | None = None  # PEM
    username: str | None = None
    password: str | None = None


@dataclass(frozen=True, slots=True)
class ClientConfig:
    cluster: Cluster
    user: User = field(default_factory=User)
    namespace: str = "default"
    source: str = ""  # where it came from, for error messages


# --- loading ---------------------------------------------------------------------------------


def _first_existing(paths: str) -> Path | None:
    for part in paths.split(os.pathsep):
        if part and Path(part).expanduser().is_file():
            return Path(part).expanduser()
    return None


def load_config(
    kubeconfig: str | os.PathLike[str] | None = None, *, context: str | None = None
) -> ClientConfig:
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
            return in_cluster_config(SERVICE_ACCOUNT)
        except KubeConfigError as exc:
            tried.append(f"in-cluster service account ({exc})")
        default = Path(DEFAULT_KUBECONFIG).expanduser()
        if default.is_file():
            path = default
        else:
            tried.append(f"{default} (no such file)")
    if path is None:
        raise KubeConfigError("no Kubernetes configuration found; tried: " + "; ".join(tried))
    try:
        return kubeconfig_file_config(path, context)
    except KubeConfigError as exc:
        raise KubeConfigError(f"kubeconfig {str(path)!r}: {exc}") from None


def in_cluster_config(service_account: str | os.PathLike[str] = SERVICE_ACCOUNT) -> ClientConfig:
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise KubeConfigError("KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT not set")
    account = Path(service_account)
    token_file = account / "token"
    try:
        token = token_file.read_text().strip()
        namespace = (account / "namespace").read_text().strip()
    except OSError as exc:
        raise KubeConfigError(str(exc)) from None
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return ClientConfig(
        Cluster(f"https://{host}:{port}", ca_file=str(account / "ca.crt")),
        User(token=token, token_file=str(token_file)),
        namespace=namespace or "default",
        source="in-cluster service account",
    )


def _named(doc: dict[str, Any], section: str, name: str, what: str) -> dict[str, Any]:
    for entry in doc.get(section) or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            value = entry.get(what)
            if not isinstance(value, dict):
                raise KubeConfigError(f"{section} entry {name!r} has no {what}")
            return value
    raise KubeConfigError(f"{what} {name!r} not found in {section}")


def _data(entry: dict[str, Any], key: str) -> bytes | None:
    value = entry.get(key)
    if value is None:
        return None
    try:
        # wrapped over lines is fine (Go's decoder skips \r and \n); anything else is an error
        return base64.b64decode("".join(str(value).split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KubeConfigError(f"{key}: not valid base64 ({exc})") from None


def kubeconfig_file_config(path: Path, context: str | None = None) -> ClientConfig:
    import yaml  # only for kubeconfig files: in-cluster processes never need it

    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise KubeConfigError(str(exc)) from None
    if not isinstance(doc, dict):
        raise KubeConfigError("not a kubeconfig (expected a mapping)")
    name = context or doc.get("current-context")
    if not name:
        raise KubeConfigError("no current context")
    ctx = _named(doc, "contexts", name, "context")
    if not ctx.get("cluster"):
        raise KubeConfigError(f"context {name!r} names no cluster")
    cluster = _named(doc, "clusters", ctx["cluster"], "cluster")
    user = _named(doc, "users", ctx["user"], "user") if ctx.get("user") else {}
    base = path.parent

    def relative(value: Any) -> str | None:  # paths in a kubeconfig are relative to the file
        return str(base / Path(str(value)).expanduser()) if value else None

    if not cluster.get("server"):
        raise KubeConfigError(f"cluster {ctx['cluster']!r} has no server")
    for plugin in ("exec", "auth-provider"):
        if user.get(plugin):
            raise KubeConfigError(
                f"user {ctx.get('user')!r} authenticates with {plugin!r}, which akri does not support; "
                "use a token, tokenFile or client certificate"
            )
    return ClientConfig(
        Cluster(
            str(cluster["server"]).rstrip("/"),
            ca_file=relative(cluster.get("certificate-authority")),
            ca_data=_data(cluster, "certificate-authority-data"),
            insecure_skip_tls_verify=bool(cluster.get("insecure-skip-tls-verify")),
            tls_server_name=cluster.get("tls-server-name") or None,
        ),
        User(
            token=str(user["token"]) if user.get("token") else None,
            token_file=relative(user.get("tokenFile")),
            client_cert_file=relative(user.get("client-certificate")),
            client_cert_data=_data(user, "client-certificate-data"),
            client_key_file=relative(user.get("client-key")),
            client_key_data=_data(user, "client-key-data"),
            username=str(user["username"]) if user.get("username") else None,
            password=str(user["password"]) if user.get("password") is not None else None,
        ),
        namespace=str(ctx.get("namespace") or "default"),
        source=f"kubeconfig {str(path)!r}",
    )


# --- TLS -------------------------------------------------------------------------------------


def ssl_context(config: ClientConfig) -> ssl.SSLContext:
    """The TLS context for the cluster: ONLY the cluster's CA when it names one (the system
    store costs ~1 MiB and trusts far more than the API server needs), the system CAs otherwise;
    plus the client certificate if the user has one."""
    cluster, user = config.cluster, config.user
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        if cluster.insecure_skip_tls_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif cluster.ca_data is not None:
            ctx.load_verify_locations(cadata=cluster.ca_data.decode("ascii", "replace"))
        elif cluster.ca_file is not None:
            ctx.load_verify_locations(cafile=cluster.ca_file)
        else:
            ctx.load_default_certs()
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise KubeConfigError(f"{config.source}: certificate authority: {exc}") from None
    try:
        _load_client_certificate(ctx, user)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise KubeConfigError(f"{config.source}: client certificate: {exc}") from None
    return ctx


def _load_client_certificate(ctx: ssl.SSLContext, user: User) -> None:
    has_cert = user.client_cert_file or user.client_cert_data is not None
    has_key = user.client_key_file or user.client_key_data is not None
    if not has_cert and not has_key:
        return
    if not (has_cert and has_key):
        raise ValueError("client-certificate and client-key must be given together")
    if user.client_cert_data is None and user.client_key_data is None:
        ctx.load_cert_chain(user.client_cert_file or "", user.client_key_file)
        return
    # ssl reads certificates only from files: write the inline PEM to a private directory
    # (0700, files 0600), load it and delete it at once; the context keeps the key in memory
    with tempfile.TemporaryDirectory(prefix="akri-kube-") as tmp:
        cert, key = user.client_cert_file, user.client_key_file
        if user.client_cert_data is not None:
            cert = _private_file(Path(tmp) / "client.crt", user.client_cert_data)
        if user.client_key_data is not None:
            key = _private_file(Path(tmp) / "client.key", user.client_key_data)
        ctx.load_cert_chain(cert or "", key)


def _private_file(path: Path, data: bytes) -> str:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return str(path)


# --- credentials -----------------------------------------------------------------------------


class Credentials:
    """The Authorization header: a static or file token (re-read every TOKEN_REREAD_SECONDS and
    on demand after a 401), or basic auth; None when the user authenticates by certificate."""

    def __init__(self, user: User, *, reread: float | None = None) -> None:
        self.user = user
        self.reread = TOKEN_REREAD_SECONDS if reread is None else reread
        self._token = user.token
        self._read_at = time.monotonic() if user.token else float("-inf")

    def header(self) -> str | None:
        user = self.user
        if user.token_file and time.monotonic() - self._read_at >= self.reread:
            self._read_token_file()
        if self._token:
            return f"Bearer {self._token}"
        if user.username is not None and user.password is not None:
            pair = f"{user.username}:{user.password}".encode()
            return "Basic " + base64.b64encode(pair).decode("ascii")
        return None

    def refresh(self) -> bool:
        """After a 401: read the token file again. True when that gave a different token."""
        if not self.user.token_file:
            return False
        before = self._token
        self._read_token_file()
        return self._token != before

    def _read_token_file(self) -> None:
        assert self.user.token_file
        # keep the last good token when the file is briefly missing (mid-rotation)
        with contextlib.suppress(OSError):
            self._token = Path(self.user.token_file).read_text().strip() or self._token
        self._read_at = time.monotonic()


def make_async_client(
    kubeconfig: str | os.PathLike[str] | None = None,
    *,
    context: str | None = None,
    timeout: float = 10.0,
) -> HttpClient:
    """An HTTP client for `kubeconfig` (or the environment); binds to no loop until first used."""
    from akri.kube.http import HttpClient

    return HttpClient(load_config(kubeconfig, context=context), timeout=timeout)


def default_namespace() -> str:
    """Our own namespace: POD_NAMESPACE, else the service account's, else "default"."""
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    with contextlib.suppress(OSError), open(SERVICE_ACCOUNT_NAMESPACE) as f:
        text = f.read().strip()
        if text:
            return text
    return "default"
