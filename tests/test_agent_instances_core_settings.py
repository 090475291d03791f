"""AgentSettings: upstream's environment variables, and bad settings named clearly."""

from __future__ import annotations

import pytest

from akri.agent.core import AgentSettings, AgentSetupError
from akri.discovery.handler import HandlerSetupError


def test_from_env_reads_upstream_variables() -> None:
    s = AgentSettings.from_env({"AGENT_NODE_NAME": "node-a", "DISCOVERY_HANDLERS_DIRECTORY": "/var/lib/akri"})
    assert (s.node_name, str(s.discovery_handlers_directory)) == ("node-a", "/var/lib/akri")
    assert s.embedded_handlers == ()
    assert s.offline_grace_seconds == 300
    # the hold of a vanished handler's devices defaults to the offline grace period
    assert s.timings().hold_seconds == 300
    s = AgentSettings.from_env(
        {"AGENT_NODE_NAME": "n", "DISCOVERY_HANDLERS_DIRECTORY": "/d"},
        offline_grace_seconds=5,
        handler_hold_seconds=2,
    )
    assert (s.timings().hold_seconds, s.offline_grace_seconds) == (2, 5)


def test_embedded_debug_echo_from_env() -> None:
    env = {
        "AGENT_NODE_NAME": "n",
        "DISCOVERY_HANDLERS_DIRECTORY": "/d",
        "ENABLE_DEBUG_ECHO": "1",
        "DEBUG_ECHO_INSTANCES_SHARED": "false",
    }
    (handler,) = AgentSettings.from_env(env).embedded_handlers
    assert handler.name == "debugEcho" and handler.shared is False
    del env["DEBUG_ECHO_INSTANCES_SHARED"]
    with pytest.raises(HandlerSetupError, match="DEBUG_ECHO_INSTANCES_SHARED"):
        AgentSettings.from_env(env)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DISCOVERY_HANDLERS_DIRECTORY": "/d"}, "AGENT_NODE_NAME"),
        ({"AGENT_NODE_NAME": "a:b", "DISCOVERY_HANDLERS_DIRECTORY": "/d"}, "may not contain ':'"),
        ({"AGENT_NODE_NAME": "n"}, "DISCOVERY_HANDLERS_DIRECTORY"),
    ],
)
def test_bad_settings_are_named(env: dict, message: str) -> None:
    with pytest.raises(AgentSetupError, match=message):
        AgentSettings.from_env(env)


def test_negative_grace_is_refused() -> None:
    with pytest.raises(AgentSetupError, match="offline grace"):
        AgentSettings(node_name="n", discovery_handlers_directory="/d", offline_grace_seconds=-1)
