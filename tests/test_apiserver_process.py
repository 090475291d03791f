"""Running the API double as a process (`python -m akri.testing.apiserver`) and restarting it on the
same port with the same data, as clients see a real apiserver restart."""

from __future__ import annotations

import asyncio
import re
import selectors
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import orjson
import pytest
import yaml
from kubernetes import client, config
from lightkube import AsyncClient, KubeConfig
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.meta_v1 import ObjectMeta

from akri.testing.apiserver import ApiServer

pytestmark = pytest.mark.slow

Instance = create_namespaced_resource("akri.sh", "v0", "Instance", "instances")


def read_line(proc: subprocess.Popen, timeout: float = 10.0) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        assert sel.select(timeout), "no output from the API server process"
    return proc.stdout.readline()


def test_subprocess_serves_writes_kubeconfig_and_exits_on_sigterm(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    proc = subprocess.Popen(
        [sys.executable, "-m", "akri.testing.apiserver", "--port", "0", "--kubeconfig", str(kubeconfig)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        match = re.fullmatch(r"listening on (http://127\.0\.0\.1:(\d+))\n", read_line(proc))
        assert match, "expected a 'listening on URL' line"
        url = match.group(1)
        conf = yaml.safe_load(kubeconfig.read_text())
        assert conf["clusters"][0]["cluster"]["server"] == url
        assert conf["users"][0]["user"]["token"]  # lightkube needs a user
        configuration = client.Configuration()
        config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
        with client.ApiClient(configuration) as api_client:
            version = client.VersionApi(api_client).get_code()
            assert version.major == "1"
            co = client.CustomObjectsApi(api_client)
            co.create_namespaced_custom_object(
                "akri.sh", "v0", "default", "instances", {"metadata": {"name": "from-process"}, "spec": {}}
            )
            got = co.get_namespaced_custom_object("akri.sh", "v0", "default", "instances", "from-process")
            assert got["kind"] == "Instance" and got["apiVersion"] == "akri.sh/v0"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


async def test_restart_on_same_port_keeps_data_and_watch_history() -> None:
    async with ApiServer() as api:
        kube = AsyncClient(KubeConfig.from_file(api.kubeconfig_path))
        try:
            created = await kube.create(Instance(metadata=ObjectMeta(name="a"), spec={"nodes": []}))
            mark = created.metadata.resourceVersion
            port = api.port
            await api.stop()
            assert _refused(port)
            # A write while this server is down (as another apiserver on the same etcd would make).
            api.store.patch_object("instances", "a", {"spec": {"nodes": ["n1"]}})
            await api.start()
            assert api.port == port
            again = await kube.get(Instance, "a")  # the same client and kubeconfig keep working
            assert again.metadata.uid == created.metadata.uid and again.spec == {"nodes": ["n1"]}
            async with asyncio.timeout(10):
                async for type_, obj in kube.watch(Instance, resource_version=mark):
                    assert (type_, obj.spec) == ("MODIFIED", {"nodes": ["n1"]})
                    break
        finally:
            await kube.close()


async def test_open_watch_ends_cleanly_on_stop_and_resumes_after_start() -> None:
    async with ApiServer() as api, aiohttp.ClientSession(api.url) as http:
        path = "/apis/akri.sh/v0/namespaces/default/instances"
        mark = str(api.store.resource_version)
        api.store.create_object("instances", {"metadata": {"name": "before"}, "spec": {}})
        async with http.get(path, params={"watch": "true", "resourceVersion": mark}) as resp:
            first = orjson.loads(await asyncio.wait_for(resp.content.readline(), 10))
            assert (first["type"], first["object"]["metadata"]["name"]) == ("ADDED", "before")
            await api.stop()
            rest = await asyncio.wait_for(resp.content.read(), 10)  # end of stream, not a hang
            assert rest == b""
        api.store.create_object("instances", {"metadata": {"name": "during"}, "spec": {}})
        await api.start()
        last_seen = first["object"]["metadata"]["resourceVersion"]
        async with http.get(path, params={"watch": "true", "resourceVersion": last_seen}) as resp:
            event = orjson.loads(await asyncio.wait_for(resp.content.readline(), 10))
            assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "during")
