"""`Agent.run` watches its background tasks: one that dies (an exception its loop did not expect)
ends the agent with `TaskFailed`, logged with the traceback, so the process exits non-zero and
Kubernetes restarts it. A requested stop still ends it cleanly."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from akri.agent.core import AgentSettings
from akri.agent.main import Agent, AgentOptions, TaskFailed
from akri.agent.plugins.socket_watch import DirectoryWatch
from akri.testing.apiserver import ApiServer

pytestmark = pytest.mark.slow

WAIT = 10.0  # only guards against hanging


def make_agent(api: ApiServer, tmp_path: Path) -> Agent:
    plugins = tmp_path / "device-plugins"
    plugins.mkdir()
    settings = AgentSettings(node_name="node-a", discovery_handlers_directory=tmp_path / "handlers",
                             kubeconfig=str(api.kubeconfig_path))
    return Agent(AgentOptions(settings, metrics_host="127.0.0.1", metrics_port=0,
                              device_plugins_dir=str(plugins),
                              pod_resources_socket=str(tmp_path / "pod-resources.sock")))


async def test_a_dead_background_task_ends_the_agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    async def broken_wait(self: DirectoryWatch, seconds: float) -> bool:
        raise OSError(9, "Bad file descriptor")  # as a read of a broken inotify fd would

    monkeypatch.setattr(DirectoryWatch, "wait", broken_wait)
    async with ApiServer() as api:
        agent = make_agent(api, tmp_path)
        stop = asyncio.Event()  # never set: before, run() kept serving without its plugin loop
        with caplog.at_level(logging.ERROR, logger="akri.agent.main"), pytest.raises(TaskFailed) as failed:
            await asyncio.wait_for(agent.run(stop), WAIT)
    assert "akri-plugin-registration" in str(failed.value)
    assert isinstance(failed.value.__cause__, OSError)
    logged = [r for r in caplog.records if "akri-plugin-registration failed" in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # with the traceback
    # everything was stopped on the way out
    assert agent.plugins.task is None and agent.reclaimer.task is None
    assert agent.core.controller is not None and agent.core.controller.tasks == []


async def test_a_requested_stop_still_ends_cleanly(tmp_path: Path) -> None:
    async with ApiServer() as api:
        agent = make_agent(api, tmp_path)
        stop = asyncio.Event()
        run = asyncio.create_task(agent.run(stop))
        deadline = asyncio.get_running_loop().time() + WAIT
        while agent.core.controller is None or not agent.core.controller.configs.synced.is_set():
            assert asyncio.get_running_loop().time() < deadline, "agent never synced"
            await asyncio.sleep(0.05)
        stop.set()
        assert await asyncio.wait_for(run, WAIT) is None  # cancelled tasks are no failure
