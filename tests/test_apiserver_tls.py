"""The API double over HTTPS (`ApiServer(tls=True)`, `python -m akri.testing.apiserver --tls`), as
every real cluster serves: our Kube client and the official `kubernetes` client verify it against
the throwaway CA its kubeconfig carries (and refuse it with any other CA), and an `akri agent`
process does its whole job against it."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path
from typing import Any

import pytest
import urllib3
import yaml
from e2e.cluster import Cluster, debug_echo_configuration
from e2e.fixtures import procs_fixture  # noqa: F401  (fixture)
from e2e.procs import ProcessGroup, wait_for
from kubernetes import client, config

from akri.kube import Configuration, Instance, Kube, TransportError
from akri.testing.apiserver import ApiServer, ApiServerThread
from akri.testing.certs import issue, pem

pytestmark = pytest.mark.slow


def with_other_ca(kubeconfig: Path, tmp_path: Path) -> Path:
    """The same kubeconfig, trusting a CA that did not sign the server's certificate."""
    doc = yaml.safe_load(kubeconfig.read_text())
    doc["clusters"][0]["cluster"]["certificate-authority-data"] = base64.b64encode(
        pem(issue("other-ca", ca=True)).cert).decode()
    path = tmp_path / "other-ca.kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    return path


def config_body(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"discoveryHandler": {"name": "debugEcho"}}}


async def test_our_client_verifies_the_double_against_the_kubeconfig_ca(tmp_path: Path) -> None:
    async with ApiServer(tls=True) as api:
        assert api.url.startswith("https://127.0.0.1:")
        cluster = yaml.safe_load(api.kubeconfig_path.read_text())["clusters"][0]["cluster"]
        assert cluster["server"] == api.url
        assert base64.b64decode(cluster["certificate-authority-data"]) == api.ca_pem

        async with Kube.from_config(api.kubeconfig_path) as kube:
            assert kube.client.ssl is not None and kube.client.ssl.verify_mode == ssl.CERT_REQUIRED
            await kube.create(Configuration, config_body("over-tls"))
            await api.restart()  # same certificate after a restart: the client reconnects
            assert (await kube.get(Configuration, "over-tls", "default"))["metadata"]["uid"]

        async with Kube.from_config(with_other_ca(api.kubeconfig_path, tmp_path)) as kube:
            with pytest.raises(TransportError, match="cannot verify the API server"):
                await kube.list(Instance)


def test_the_official_client_verifies_the_double(tmp_path: Path) -> None:
    with ApiServerThread(tls=True) as api:
        configuration = client.Configuration()
        config.load_kube_config(config_file=str(api.kubeconfig_path), client_configuration=configuration)
        assert configuration.verify_ssl and Path(configuration.ssl_ca_cert).read_bytes() == api.ca_pem
        with client.ApiClient(configuration) as api_client:
            custom = client.CustomObjectsApi(api_client)
            custom.create_namespaced_custom_object("akri.sh", "v0", "default", "configurations",
                                                   config_body("from-kubernetes"))
        assert api.store.get_object("configurations", "from-kubernetes", "default") is not None

        wrong = client.Configuration()
        config.load_kube_config(config_file=str(with_other_ca(api.kubeconfig_path, tmp_path)),
                                client_configuration=wrong)
        wrong.retries = 0
        with client.ApiClient(wrong) as api_client, pytest.raises(urllib3.exceptions.MaxRetryError) as info:
            client.VersionApi(api_client).get_code()
        assert isinstance(info.value.reason, urllib3.exceptions.SSLError)


def test_an_agent_process_serves_instances_over_https(procs: ProcessGroup) -> None:
    api = procs.apiserver(tls=True)
    assert api.url.startswith("https://")
    kubelet = procs.kubelet()
    procs.agent("node-a", api.kubeconfig, kubelet, "--embedded", "debugEcho",
                env={"DEBUG_ECHO_INSTANCES_SHARED": "false",
                     "DEBUG_ECHO_AVAILABILITY_FILE": str(procs.workdir / "availability")}).ready()
    cluster = Cluster(api.kubeconfig)
    try:
        cluster.apply_configuration(debug_echo_configuration("tls-echo", ["d0"], capacity=1))
        instances = wait_for("the Instance", lambda: cluster.instances("tls-echo") or None)
        assert [i["spec"]["nodes"] for i in instances.values()] == [["node-a"]]
    finally:
        cluster.close()
