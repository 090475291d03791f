"""Throwaway certificates for tests and doubles: a CA, the server and client certificates it
signs (EC P-256), and a server-side `ssl.SSLContext` from them.

The API double's TLS mode (`ApiServer(tls=True)`, `python -m akri.testing.apiserver --tls`) and
tests/test_kube_client.py use them. Production certificates (the webhook's) are
akri/webhook/certs.py's business, not this module's.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# The names a client on this machine uses for a local server.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
VALIDITY = dt.timedelta(days=30)


@dataclass(frozen=True, slots=True)
class Pem:
    cert: bytes
    key: bytes


@dataclass(frozen=True, slots=True)
class Issued:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def pem(self) -> Pem:
        return Pem(
            self.cert.public_bytes(serialization.Encoding.PEM),
            self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()),
        )


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def issue(subject: str, issuer: Issued | None = None, *, ca: bool = False, server: bool = False,
          hosts: Iterable[str] = LOCAL_HOSTS, validity: dt.timedelta = VALIDITY) -> Issued:
    """A certificate for `subject`, self-signed when there is no `issuer`: a CA (`ca`), a server
    certificate for `hosts` (`server`), or else a client certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    signing_key = issuer.key if issuer else key  # self-signed without an issuer
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.cert.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))  # tolerate a little clock skew
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        # key identifiers as real CAs set them: strict verifiers (VERIFY_X509_STRICT) want them
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()),
                       critical=False)
    )
    builder = builder.add_extension(
        x509.KeyUsage(digital_signature=True, key_cert_sign=ca, crl_sign=ca, content_commitment=False,
                      key_encipherment=False, data_encipherment=False, key_agreement=False,
                      encipher_only=False, decipher_only=False), critical=True)
    if not ca:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if server:
            names = list(dict.fromkeys(hosts))
            builder = builder.add_extension(x509.SubjectAlternativeName([_san(h) for h in names]),
                                            critical=False)
    return Issued(builder.sign(signing_key, hashes.SHA256()), key)


@dataclass(frozen=True, slots=True)
class ServerPki:
    """A throwaway CA (its certificate is what clients trust) and the server certificate it signed."""

    ca: Pem
    server: Pem

    @classmethod
    def for_hosts(cls, hosts: Iterable[str] = LOCAL_HOSTS, *, name: str = "akri-testing") -> ServerPki:
        ca = issue(f"{name}-ca", ca=True)
        return cls(ca=ca.pem(), server=issue(name, ca, server=True, hosts=hosts).pem())


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
