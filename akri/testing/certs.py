"""Throwaway certificates for tests and doubles: a CA, the server and client certificates it
signs (EC P-256), and a server-side `ssl.SSLContext` from them.

The API double's TLS mode (`ApiServer(tls=True)`, `python -m akri.testing.apiserver --tls`) and
tests/test_kube_client.py use them. Production certificates (the webhook's) are
akri/webhook/certs.py's business, not this module's.
"""

from __future__ import annotations

import datetime as dt
import os
import ssl
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from akri import certs
from akri.certs import Issued

# The names a client on this machine uses for a local server.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
VALIDITY = certs.VALIDITY


@dataclass(frozen=True, slots=True)
class Pem:
    cert: bytes
    key: bytes


def pem(issued: Issued) -> Pem:
    return Pem(issued.cert_pem(), issued.key_pem())


def issue(subject: str, issuer: Issued | None = None, *, ca: bool = False, server: bool = False,
          hosts: Iterable[str] = LOCAL_HOSTS, validity: dt.timedelta = VALIDITY) -> Issued:
    """akri.certs.issue with this machine's local names as the default server hosts."""
    return certs.issue(subject, issuer, ca=ca, server=server, hosts=hosts, validity=validity)


@dataclass(frozen=True, slots=True)
class ServerPki:
    """A throwaway CA (its certificate is what clients trust) and the server certificate it signed."""

    ca: Pem
    server: Pem

    @classmethod
    def for_hosts(cls, hosts: Iterable[str] = LOCAL_HOSTS, *, name: str = "akri-testing") -> ServerPki:
        ca = issue(f"{name}-ca", ca=True)
        return cls(ca=pem(ca), server=pem(issue(name, ca, server=True, hosts=hosts)))


def server_context(server: Pem, *, client_ca: bytes | None = None) -> ssl.SSLContext:
    """A TLS server context presenting `server`; with `client_ca`, clients must present a
    certificate that CA signed."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # ssl loads a certificate chain only from files: a private directory, gone once loaded
    with tempfile.TemporaryDirectory(prefix="akri-testing-tls-") as tmp:
        cert, key = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
        cert.write_bytes(server.cert)
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(server.key)
        ctx.load_cert_chain(cert, key)
    if client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cadata=client_ca.decode("ascii"))
    return ctx
