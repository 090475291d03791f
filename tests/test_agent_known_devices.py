"""The agent's memory of devices (what each Instance's plugin is given) follows discovery: a
device id that went away and backs no Instance any more is forgotten at the Configuration's next
reconcile, so churning ids (ONVIF with DHCP, re-plugged udev devices) do not grow it forever."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_agent_instances import CONFIG, agent, configuration_body, instances, until

from akri.testing.apiserver import ApiServer

pytestmark = pytest.mark.slow


async def test_devices_that_went_away_are_forgotten(tmp_path: Path) -> None:
    async with ApiServer() as api:
        api.store.create_object("configurations", configuration_body(descriptions=("dev0",)),
                                namespace="default")
        async with agent(api, tmp_path, "node-a", shared=False) as core:
            assert core.controller is not None
            for n in range(4):  # each round after the first: the old device is gone, a new id appears
                if n:
                    details = f"descriptions:\n  - dev{n}\n"
                    api.store.patch_object("configurations", CONFIG,
                                           {"spec": {"discoveryHandler": {"name": "debugEcho",
                                                                          "discoveryDetails": details}}},
                                           "default")
                wanted = f"dev{n}"

                def only_current(wanted: str = wanted) -> set[str] | None:
                    found = instances(api)
                    descriptions = [o["spec"]["brokerProperties"]["DEBUG_ECHO_DESCRIPTION"]
                                    for o in found.values()]
                    return set(found) if descriptions == [wanted] else None

                current = await until(only_current, what=f"only {wanted}'s Instance")
                known = core.controller._known_devices
                await until(lambda known=known, current=current: {name for _, name in known} == current,
                            what=f"only {wanted} remembered")
                (key,) = known
                assert known[key].id == f"dev{n}"
