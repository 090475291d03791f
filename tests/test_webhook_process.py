"""`akri webhook` processes: serving given certificate files, and `--self-signed` against the API double
(Secret made once and reused by a second replica, CA written into the ValidatingWebhookConfiguration,
repaired after a `helm upgrade`-style overwrite), checked with the official `kubernetes` client."""

from __future__ import annotations

import base64
import http.client
import json
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from akri.testing.apiserver import ApiServerThread
from akri.webhook import bootstrap, certs

pytestmark = pytest.mark.slow

T = TypeVar("T")
FIXTURES = Path(__file__).parent / "fixtures" / "upstream"
NAME = "akri-webhook-configuration"
NS = "akri"


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 10.0) -> T:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except (ApiException, OSError) as e:
            last = e
        else:
            if last:
                return last
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args: list[str], log: Path) -> subprocess.Popen:
    out = log.open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "akri", "--log-level", "INFO", "webhook", "--host", "127.0.0.1", *args],
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


class ServiceConnection(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1 that checks the certificate for the Service's DNS name, as the API server does."""

    def __init__(self, port: int, ctx: ssl.SSLContext, server_name: str) -> None:
        super().__init__("127.0.0.1", port, context=ctx, timeout=5)
        self.server_name = server_name

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.server_name)


def post(port: int, ca_pem: bytes, obj: Any, *, host: str = f"{NAME}.{NS}.svc") -> dict:
    """POST a review to the webhook, verified against the CA bundle."""
    body = json.dumps(
        {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {"uid": "u-1", "operation": "CREATE", "object": obj},
        }
    ).encode()
    conn = ServiceConnection(port, ssl.create_default_context(cadata=ca_pem.decode()), host)
    try:
        conn.request("POST", "/validate", body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    assert resp.status == 200, data
    return json.loads(data)["response"]


def valid_configuration() -> dict:
    return yaml.safe_load((FIXTURES / "webhookValidConfiguration.yaml").read_text())


def invalid_configuration() -> dict:
    return yaml.safe_load((FIXTURES / "webhookInvalidConfiguration.yaml").read_text())


def test_serves_given_certificate_files(tmp_path: Path) -> None:
    bundle = certs.generate(certs.service_dns_names(NAME, NS))
    crt, key = bootstrap.write_files(bundle, tmp_path / "certs")
    port = free_port()
    proc = start(
        ["--tls-crt-file", str(crt), "--tls-key-file", str(key), "--port", str(port)], tmp_path / "log"
    )
    try:
        assert (
            wait_for("allowed", lambda: post(port, bundle.ca_pem, valid_configuration()))["allowed"] is True
        )
        denied = post(port, bundle.ca_pem, invalid_configuration())
        assert denied["allowed"] is False and "xUnknownSyntheticField" in denied["status"]["message"]
    finally:
        assert stop(proc) == 0, (tmp_path / "log").read_text()


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--tls-crt-file", "/nonexistent", "--tls-key-file", "/nonexistent"],
        ["--self-signed", "--tls-crt-file", "x"],
    ],
)
def test_bad_certificate_options_are_usage_errors(args: list[str], tmp_path: Path) -> None:
    proc = start(args, tmp_path / "log")
    assert proc.wait(timeout=30) != 0
    assert re.search(r"akri webhook: ", (tmp_path / "log").read_text())


def test_unreadable_certificate_is_a_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    proc = start(["--tls-crt-file", str(junk), "--tls-key-file", str(junk)], tmp_path / "log")
    assert proc.wait(timeout=30) != 0
    text = (tmp_path / "log").read_text()
    assert "not a PEM certificate" in text and "Traceback" not in text


def vwc() -> dict:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": NAME},
        "webhooks": [
            {
                "name": f"{NAME}.{NS}.svc",
                "admissionReviewVersions": ["v1", "v1beta1"],
                "sideEffects": "None",
                "clientConfig": {
                    "service": {"name": NAME, "namespace": NS, "port": 443, "path": "/validate"}
                },
                "rules": [
                    {
                        "operations": ["CREATE", "UPDATE"],
                        "apiGroups": ["akri.sh"],
                        "apiVersions": ["v0"],
                        "resources": ["configurations"],
                    }
                ],
                "failurePolicy": "Fail",
            }
        ],
    }


def test_self_signed_replicas_share_one_certificate_and_register_its_ca(tmp_path: Path) -> None:
    with ApiServerThread() as api:
        configuration = client.Configuration()
        config.load_kube_config(config_file=str(api.kubeconfig_path), client_configuration=configuration)
        with client.ApiClient(configuration) as api_client:
            core = client.CoreV1Api(api_client)
            admission = client.AdmissionregistrationV1Api(api_client)
            core.create_namespace({"metadata": {"name": NS}})
            common = ["--self-signed", "--namespace", NS, "--kubeconfig", str(api.kubeconfig_path)]
            port1, port2 = free_port(), free_port()
            first = start(
                [*common, "--port", str(port1), "--cert-dir", str(tmp_path / "c1")], tmp_path / "1.log"
            )
            try:
                secret = wait_for("secret", lambda: core.read_namespaced_secret(NAME, NS))
                assert secret.type == "kubernetes.io/tls"
                ca = base64.b64decode(secret.data["ca.crt"])
                assert post_when_up(port1, ca)["allowed"] is True
                # the configuration appears after the webhook started (e.g. applied later): CA is written
                admission.create_validating_webhook_configuration(vwc())
                bundle_b64 = wait_for(
                    "caBundle",
                    lambda: (
                        admission.read_validating_webhook_configuration(NAME)
                        .webhooks[0]
                        .client_config.ca_bundle
                    ),
                )
                assert base64.b64decode(bundle_b64) == ca
                # a second replica reuses the Secret instead of making another certificate
                second = start(
                    [*common, "--port", str(port2), "--cert-dir", str(tmp_path / "c2")], tmp_path / "2.log"
                )
                try:
                    assert post_when_up(port2, ca)["allowed"] is True
                    assert (tmp_path / "c1" / "tls.crt").read_bytes() == (
                        tmp_path / "c2" / "tls.crt"
                    ).read_bytes()
                    assert (
                        core.read_namespaced_secret(NAME, NS).metadata.resource_version
                        == secret.metadata.resource_version
                    )
                    denied = post(port2, ca, invalid_configuration())
                    assert denied["allowed"] is False
                finally:
                    assert stop(second) == 0, (tmp_path / "2.log").read_text()
            finally:
                assert stop(first) == 0, (tmp_path / "1.log").read_text()
            assert "using the certificate in Secret" in (tmp_path / "2.log").read_text()


def post_when_up(port: int, ca: bytes) -> dict:
    return wait_for(f"webhook on {port}", lambda: post(port, ca, valid_configuration()), timeout=20)


async def test_bootstrap_replaces_unusable_secret_and_repairs_ca_bundle() -> None:
    # in-process against the async API double: the same functions the command runs
    from akri.kube.api import Kube
    from akri.testing.apiserver import ApiServer

    async with ApiServer() as api:
        kube = Kube.from_config(api.kubeconfig_path)
        try:
            settings = bootstrap.SelfSignedSettings(namespace=NS)
            await kube.create(
                bootstrap.Secret,
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "type": "Opaque",
                    "metadata": {"name": NAME, "namespace": NS},
                    "data": {"other": base64.b64encode(b"keep").decode()},
                },
                NS,
            )
            bundle = await bootstrap.ensure_certificate(kube, settings)
            secret = await kube.get(bootstrap.Secret, NAME, NS)
            assert secret["type"] == "Opaque"  # the type of an existing Secret is kept
            assert certs.CertBundle.from_secret_data(secret["data"]) == bundle
            assert base64.b64decode(secret["data"]["other"]) == b"keep"
            # valid for other names only: replaced
            other = bootstrap.SelfSignedSettings(namespace=NS, service="renamed")
            renewed = await bootstrap.ensure_certificate(kube, other)
            assert renewed != bundle and certs.problems(renewed, other.dns_names) == []
            # idempotent once valid
            assert await bootstrap.ensure_certificate(kube, other) == renewed
            # the CA bundle: missing configuration -> None; ours -> True; after an overwrite -> True again
            assert await bootstrap.write_ca_bundle(kube, settings, bundle) is None
            body = vwc()
            body["webhooks"].append(
                {
                    **body["webhooks"][0],
                    "name": "someone.else",
                    "clientConfig": {"service": {"name": "x", "namespace": "y"}},
                }
            )
            await kube.create(bootstrap.ValidatingWebhookConfiguration, body)
            assert await bootstrap.write_ca_bundle(kube, settings, bundle) is True
            stored = await kube.get(bootstrap.ValidatingWebhookConfiguration, NAME)
            assert stored["webhooks"][0]["clientConfig"]["caBundle"] == bundle.ca_bundle_b64
            assert "caBundle" not in stored["webhooks"][1]["clientConfig"]  # not ours: untouched
            assert await bootstrap.write_ca_bundle(kube, other, bundle) is False  # no webhook for "renamed"
        finally:
            await kube.close()
