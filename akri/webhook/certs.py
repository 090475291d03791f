"""Self-signed serving certificates for the admission webhook (upstream issue #569).

The API server only calls a webhook over HTTPS and checks the certificate against the
`caBundle` of the ValidatingWebhookConfiguration. Instead of a cert-gen Job (upstream's Helm
hooks, which fail on their own, #685), `akri webhook --self-signed` makes a small CA and a
serving certificate for the Service's DNS names, keeps both in a Secret so every replica
serves the same certificate, and writes the CA into the webhook configuration.

This module is the pure part: generating, encoding and checking a bundle.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from akri.certs import issue

# Keys of the Secret (type kubernetes.io/tls, plus the CA like cert-manager's `ca.crt`).
TLS_CRT = "tls.crt"
TLS_KEY = "tls.key"
CA_CRT = "ca.crt"

VALIDITY = dt.timedelta(days=3650)
# A bundle closer than this to expiry is replaced rather than reused.
RENEW_BEFORE = dt.timedelta(days=30)


def service_dns_names(service: str, namespace: str, cluster_domain: str = "cluster.local") -> list[str]:
    """Every name the API server (or a user) may use for the webhook Service."""
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.{cluster_domain}",
    ]


@dataclass(frozen=True, slots=True)
class CertBundle:
    """PEM bytes of the serving certificate, its key, and the CA that signed it."""

    cert_pem: bytes
    key_pem: bytes
    ca_pem: bytes

    def secret_data(self) -> dict[str, str]:
        """The `data` of a Secret holding this bundle (base64, as the API stores it)."""
        return {
            TLS_CRT: base64.b64encode(self.cert_pem).decode(),
            TLS_KEY: base64.b64encode(self.key_pem).decode(),
            CA_CRT: base64.b64encode(self.ca_pem).decode(),
        }

    @classmethod
    def from_secret_data(cls, data: Mapping[str, object] | None) -> CertBundle | None:
        """The bundle kept in a Secret's `data`, or None when a key is missing or not base64."""
        if not isinstance(data, Mapping):
            return None
        try:
            parts = [base64.b64decode(str(data[k]), validate=True) for k in (TLS_CRT, TLS_KEY, CA_CRT)]
        except (KeyError, ValueError):
            return None
        return cls(*parts)

    @property
    def ca_bundle_b64(self) -> str:
        """The value for `webhooks[].clientConfig.caBundle`."""
        return base64.b64encode(self.ca_pem).decode()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def generate(dns_names: Sequence[str], *, now: dt.datetime | None = None,
             validity: dt.timedelta = VALIDITY) -> CertBundle:
    """A fresh CA and a serving certificate (ECDSA P-256) valid for `dns_names`."""
    if not dns_names:
        raise ValueError("at least one DNS name is needed")
    now = now or _now()
    ca = issue(f"akri-webhook-ca ({dns_names[0]})", ca=True, path_length=0, validity=validity, now=now)
    server = issue(dns_names[-1], ca, server=True, hosts=dns_names, validity=validity, now=now)
    return CertBundle(cert_pem=server.cert_pem(), key_pem=server.key_pem(), ca_pem=ca.cert_pem())


def problems(bundle: CertBundle, dns_names: Sequence[str], *, now: dt.datetime | None = None,
             renew_before: dt.timedelta = RENEW_BEFORE) -> list[str]:
    """Why `bundle` cannot serve `dns_names` (empty: it can be reused as it is)."""
    now = now or _now()
    try:
        cert = x509.load_pem_x509_certificate(bundle.cert_pem)
        ca = x509.load_pem_x509_certificate(bundle.ca_pem)
        key = serialization.load_pem_private_key(bundle.key_pem, password=None)
    except (ValueError, TypeError) as e:
        return [f"unreadable certificate or key: {e}"]
    found: list[str] = []
    if cert.not_valid_after_utc - renew_before <= now:
        found.append(f"certificate expires {cert.not_valid_after_utc.isoformat()}")
    if cert.not_valid_before_utc > now:
        found.append(f"certificate not valid before {cert.not_valid_before_utc.isoformat()}")
    if ca.not_valid_after_utc <= now:
        found.append("CA certificate expired")
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        # akri.certs.issue writes a name that parses as an IP address as an IP SAN
        names = set(sans.get_values_for_type(x509.DNSName)) | {
            str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    except x509.ExtensionNotFound:
        names = set()
    missing = [n for n in dns_names if n not in names]
    if missing:
        found.append(f"certificate lacks DNS names {missing}")
    pub = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    if pub != cert.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo):
        found.append("key does not match certificate")
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        found.append("certificate is not signed by the CA")
    return found
