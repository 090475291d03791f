"""The webhook over real HTTPS: an aiohttp server with TLS, a client that verifies the certificate the
way the API server does (against the CA bundle, for the Service's DNS name)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest
import yaml

from akri.webhook import bootstrap, certs
from akri.webhook.server import MAX_BODY, CertReloader, WebhookServer, make_ssl_context

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).parent / "fixtures" / "upstream"
SERVICE_NAME = "akri-webhook-configuration.akri.svc"


def review(obj: object, uid: str = "1234") -> dict:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {"uid": uid, "operation": "CREATE", "object": obj},
    }


class Client:
    def __init__(self, session: aiohttp.ClientSession, port: int) -> None:
        self.session = session
        self.url = f"https://127.0.0.1:{port}"

    async def post(self, body: bytes) -> tuple[int, bytes]:
        async with self.session.post(
            self.url + "/validate",
            data=body,
            server_hostname=SERVICE_NAME,
            headers={"Content-Type": "application/json"},
        ) as resp:
            return resp.status, await resp.read()

    async def review(self, obj: object) -> dict:
        status, body = await self.post(orjson.dumps(review(obj)))
        assert status == 200, body
        return orjson.loads(body)["response"]


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Client, certs.CertBundle, Path]]:
    bundle = certs.generate(certs.service_dns_names("akri-webhook-configuration", "akri"))
    crt, key = bootstrap.write_files(bundle, tmp_path)
    server = WebhookServer(make_ssl_context(crt, key), host="127.0.0.1", port=0)
    await server.start()
    trust = ssl.create_default_context(cadata=bundle.ca_pem.decode())
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trust)) as session:
        try:
            yield Client(session, server.port), bundle, tmp_path
        finally:
            await server.stop()


async def test_valid_and_invalid_upstream_samples(served) -> None:
    client, _, _ = served
    valid = yaml.safe_load((FIXTURES / "webhookValidConfiguration.yaml").read_text())
    invalid = yaml.safe_load((FIXTURES / "webhookInvalidConfiguration.yaml").read_text())
    assert await client.review(valid) == {"uid": "1234", "allowed": True}
    denied = await client.review(invalid)
    assert denied["allowed"] is False
    assert "spec.brokerSpec.brokerPodSpec.xUnknownSyntheticField" in denied["status"]["message"]


async def test_every_upstream_sample_configuration_is_allowed(served) -> None:
    client, _, _ = served
    samples = [p for p in sorted(FIXTURES.glob("*configuration.yaml"))] + [
        FIXTURES / "config-a.yaml",
        FIXTURES / "config-b.yaml",
    ]
    assert len(samples) >= 7
    for path in samples:
        for obj in yaml.safe_load_all(path.read_text()):
            if obj and obj.get("kind") == "Configuration":
                response = await client.review(obj)
                assert response["allowed"], (path.name, response)


async def test_broken_samples_denied_naming_their_field(served) -> None:
    client, _, _ = served
    docs = [d for d in yaml.safe_load_all((FIXTURES / "broken-configurations.yaml").read_text()) if d]
    assert docs
    for obj in docs:
        response = await client.review(obj)
        assert response["allowed"] is False, obj["metadata"]["name"]
        assert obj["metadata"]["annotations"]["akri.test/expected-error"] in response["status"]["message"]


async def test_malformed_requests_get_400_or_denial_and_the_server_keeps_serving(served) -> None:
    client, _, _ = served
    for body in (b"not json", b"[1, 2]", b'{"request": null}', b'{"request": {"object": {}}}', b"\x00\xff"):
        status, text = await client.post(body)
        assert status == 400 and text
    for obj in ([], "text", 7, {"spec": "x"}, {"a": {"b": {"c": None}}}):
        response = await client.review(obj)
        assert response["allowed"] is False and response["status"]["message"]
    status, _ = await client.post(b"{" * 50000)  # truncated, deeply open JSON
    assert status == 400
    deep = orjson.dumps(review({"spec": "DEEP"})).replace(b'"DEEP"', b'{"a":' * 500 + b"1" + b"}" * 500)
    status, body = await client.post(deep)  # well-formed, 500 levels deep: reviewed and denied
    assert status == 200 and orjson.loads(body)["response"]["allowed"] is False
    deeper = orjson.dumps(review({"spec": "DEEP"})).replace(b'"DEEP"', b'{"a":' * 20000 + b"1" + b"}" * 20000)
    status, _ = await client.post(deeper)  # beyond the parser's depth limit: a bad request
    assert status == 400
    big = review({"kind": "Configuration", "spec": {"x": "y" * (4 * 1024 * 1024)}})  # 4 MiB string
    response = await client.review(big["request"]["object"])
    assert response["allowed"] is False
    # still alive and right after all that
    valid = yaml.safe_load((FIXTURES / "webhookValidConfiguration.yaml").read_text())
    assert (await client.review(valid))["allowed"] is True


async def test_oversized_body_refused(served) -> None:
    client, _, _ = served
    status, _ = await client.post(b" " * (MAX_BODY + 1))
    assert status == 413


async def test_wrong_method_and_path_and_health(served) -> None:
    client, _, _ = served
    async with client.session.get(client.url + "/validate", server_hostname=SERVICE_NAME) as resp:
        assert resp.status == 405
    async with client.session.post(client.url + "/other", data=b"{}", server_hostname=SERVICE_NAME) as resp:
        assert resp.status == 404
    async with client.session.get(client.url + "/healthz", server_hostname=SERVICE_NAME) as resp:
        assert resp.status == 200


async def test_certificate_is_checked_against_the_service_name(served) -> None:
    client, _, _ = served
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        async with client.session.post(client.url + "/validate", data=b"{}", server_hostname="evil.example"):
            pass
    untrusting = ssl.create_default_context(cadata=certs.generate(["x"]).ca_pem.decode())
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=untrusting)) as other:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            async with other.post(client.url + "/validate", data=b"{}", server_hostname=SERVICE_NAME):
                pass


async def test_rotated_certificate_files_are_picked_up(tmp_path: Path) -> None:
    names = certs.service_dns_names("akri-webhook-configuration", "akri")
    first, second = certs.generate(names), certs.generate(names)
    crt, key = bootstrap.write_files(first, tmp_path)
    ctx = make_ssl_context(crt, key)
    server = WebhookServer(ctx, host="127.0.0.1", port=0)
    await server.start()
    reloader = CertReloader(ctx, crt, key)
    watcher = asyncio.create_task(reloader.run(interval=0.05))
    try:
        bootstrap.write_files(second, tmp_path)
        trust_second = ssl.create_default_context(cadata=second.ca_pem.decode())
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=trust_second, force_close=True)
        ) as s:
            for _ in range(200):  # wait for the reload (event wait, bounded)
                try:
                    async with s.get(
                        f"https://127.0.0.1:{server.port}/healthz", server_hostname=SERVICE_NAME
                    ) as r:
                        assert r.status == 200
                        break
                except aiohttp.ClientConnectorCertificateError:
                    await asyncio.sleep(0.05)
            else:
                pytest.fail("the new certificate was never served")
        assert reloader.reloads == 1
    finally:
        watcher.cancel()
        await server.stop()
