"""Issuing X.509 certificates (EC P-256): the one implementation behind the webhook's
self-signed bundle (akri.webhook.certs) and the test doubles' throwaway PKI (akri.testing.certs).

Imports `cryptography`, so only those two import it: the agent and the handlers never do.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = dt.timedelta(days=30)
# Certificates start a little in the past: clocks of nodes and clients drift.
CLOCK_SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Issued:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())


def subject_alt_name(host: str) -> x509.GeneralName:
    """An IP address SAN for an address, a DNS name SAN otherwise."""
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def issue(subject: str, issuer: Issued | None = None, *, ca: bool = False, server: bool = False,
          hosts: Iterable[str] = (), validity: dt.timedelta = VALIDITY, now: dt.datetime | None = None,
          path_length: int | None = None) -> Issued:
    """A certificate for `subject`, self-signed when there is no `issuer`: a CA (`ca`, with
    `path_length`), a server certificate for `hosts` (`server`), or else a client certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    signing_key = issuer.key if issuer else key  # self-signed without an issuer
    now = now or dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.cert.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        # key identifiers as real CAs set them: strict verifiers (VERIFY_X509_STRICT) want them
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()),
                       critical=False)
        .add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=ca, crl_sign=ca, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          encipher_only=False, decipher_only=False), critical=True)
    )
    if not ca:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if server:
            names = list(dict.fromkeys(hosts))
            if not names:
                raise ValueError("a server certificate needs at least one host name or address")
            builder = builder.add_extension(
                x509.SubjectAlternativeName([subject_alt_name(h) for h in names]), critical=False)
    return Issued(builder.sign(signing_key, hashes.SHA256()), key)
