"""Self-signed certificate bundles for the webhook: generation, reuse checks, Secret encoding."""

from __future__ import annotations

import datetime as dt

from cryptography import x509

from akri.webhook import certs

NAMES = certs.service_dns_names("akri-webhook-configuration", "akri")


def test_service_dns_names() -> None:
    assert NAMES == [
        "akri-webhook-configuration",
        "akri-webhook-configuration.akri",
        "akri-webhook-configuration.akri.svc",
        "akri-webhook-configuration.akri.svc.cluster.local",
    ]
    assert certs.service_dns_names("s", "n", "example.org")[-1] == "s.n.svc.example.org"


def test_generated_bundle_serves_every_name_and_chains_to_its_ca() -> None:
    bundle = certs.generate(NAMES)
    assert certs.problems(bundle, NAMES) == []
    cert = x509.load_pem_x509_certificate(bundle.cert_pem)
    ca = x509.load_pem_x509_certificate(bundle.ca_pem)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == NAMES
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert cert.issuer == ca.subject
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc) > dt.timedelta(days=3000)


def test_secret_data_round_trip_and_bad_data() -> None:
    bundle = certs.generate(NAMES)
    data = bundle.secret_data()
    assert set(data) == {"tls.crt", "tls.key", "ca.crt"}
    assert certs.CertBundle.from_secret_data(data) == bundle
    assert certs.CertBundle.from_secret_data(None) is None
    assert certs.CertBundle.from_secret_data({"tls.crt": data["tls.crt"]}) is None
    assert certs.CertBundle.from_secret_data({**data, "tls.key": "not base64!"}) is None


def test_problems_name_what_is_wrong() -> None:
    bundle = certs.generate(NAMES)
    other = certs.generate(NAMES)
    assert any("lacks DNS names" in p for p in certs.problems(bundle, [*NAMES, "extra.name"]))
    mixed = certs.CertBundle(bundle.cert_pem, other.key_pem, other.ca_pem)
    found = certs.problems(mixed, NAMES)
    assert "key does not match certificate" in found
    assert "certificate is not signed by the CA" in found
    assert certs.problems(certs.CertBundle(b"junk", b"junk", b"junk"), NAMES)[0].startswith("unreadable")


def test_bundle_close_to_expiry_is_not_reused() -> None:
    now = dt.datetime.now(dt.UTC)
    short = certs.generate(NAMES, validity=dt.timedelta(days=10))
    assert any("expires" in p for p in certs.problems(short, NAMES, now=now))
    assert certs.problems(short, NAMES, now=now, renew_before=dt.timedelta(days=1)) == []
    future = certs.generate(NAMES, now=now + dt.timedelta(days=1))
    assert any("not valid before" in p for p in certs.problems(future, NAMES, now=now))


def test_key_file_is_owner_only_even_over_a_looser_or_linked_file(tmp_path) -> None:
    from akri.webhook import bootstrap, certs

    bundle = certs.generate(certs.service_dns_names("akri-webhook", "akri"))
    outside = tmp_path / "outside"
    outside.write_text("not a key")
    (tmp_path / "tls.key").symlink_to(outside)  # a planted link must not be followed
    _, key = bootstrap.write_files(bundle, tmp_path)
    assert not key.is_symlink() and outside.read_text() == "not a key"
    assert key.stat().st_mode & 0o777 == 0o600
    assert key.read_bytes() == bundle.key_pem


def test_a_bundle_for_an_ip_address_is_reusable() -> None:
    # a name that parses as an address becomes an IP SAN; the bundle must still be seen as valid
    bundle = certs.generate(["10.0.0.5", "akri-webhook.akri.svc"])
    assert certs.problems(bundle, ["10.0.0.5", "akri-webhook.akri.svc"]) == []
