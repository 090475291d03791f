"""The OPC UA handler in process against real asyncua servers and a real LDS on localhost."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from akri.discovery.device import Device
from akri.discovery.handlers.opcua import OPCUA_DISCOVERY_URL, OpcuaHandler
from akri.discovery.handlers.opcua.handler import Reachability
from akri.discovery.handlers.opcua.servers import ApplicationType

pytest.importorskip("asyncua", reason="the OPC UA tests need asyncua (pip install 'akri[opcua]')")
from akri.discovery.handlers.opcua.client import find_servers  # needs asyncua

pytestmark = pytest.mark.slow
WAIT = 10.0  # generous: only there so a broken test cannot hang


def details(*urls: str, names: str = "") -> str:
    text = "opcuaDiscoveryMethod:\n  standard:\n    discoveryUrls:\n"
    text += "".join(f"    - {u}\n" for u in urls)
    return text + names


def ids(devices: list[Device]) -> list[str]:
    return [d.id for d in devices]


async def test_servers_registered_with_the_lds_are_devices(opcua_lab):
    handler = OpcuaHandler()
    stream = handler.discover(details(opcua_lab.lds_url), {})
    try:
        devices = await asyncio.wait_for(anext(stream), WAIT)
    finally:
        await stream.aclose()
    # the LDS itself (DiscoveryServer) and the Client application are not devices; the asyncua
    # server (ClientAndServer) and the plain Server are
    assert devices == [
        Device(opcua_lab.thermometer_url, {OPCUA_DISCOVERY_URL: opcua_lab.thermometer_url}),
        Device(opcua_lab.pump_url, {OPCUA_DISCOVERY_URL: opcua_lab.pump_url}),
    ]
    assert handler.shared is True


async def test_a_server_found_through_the_lds_and_directly_is_one_device(opcua_lab):
    handler = OpcuaHandler()
    parsed = handler.validate(details(opcua_lab.lds_url, opcua_lab.thermometer_url))
    assert ids(await handler.discover_once(parsed, find_servers)) == [
        opcua_lab.thermometer_url, opcua_lab.pump_url]
    parsed = handler.validate(details(opcua_lab.thermometer_url))
    assert ids(await handler.discover_once(parsed, find_servers)) == [opcua_lab.thermometer_url]


async def test_application_names_filter_against_the_lds(opcua_lab):
    handler = OpcuaHandler()
    include = handler.validate(details(opcua_lab.lds_url, names="applicationNames: {items: [Pump]}\n"))
    exclude = handler.validate(details(opcua_lab.lds_url,
                                       names="applicationNames: {action: Exclude, items: [Pump]}\n"))
    assert ids(await handler.discover_once(include, find_servers)) == [opcua_lab.pump_url]
    assert ids(await handler.discover_once(exclude, find_servers)) == [opcua_lab.thermometer_url]


async def test_dead_and_silent_urls_are_logged_once_and_skipped(opcua_lab, caplog):
    async def accept_and_say_nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.read()  # until the client gives up and closes
        writer.close()

    silent = await asyncio.start_server(accept_and_say_nothing, "127.0.0.1", 0)
    silent_url = f"opc.tcp://127.0.0.1:{silent.sockets[0].getsockname()[1]}/"
    closed_url = f"opc.tcp://127.0.0.1:{opcua_lab.free_port()}/"
    handler = OpcuaHandler(timeout=0.5)
    parsed = handler.validate(details(closed_url, silent_url, opcua_lab.lds_url))
    reach = Reachability()
    caplog.set_level(logging.DEBUG, logger="akri.discovery.handlers.opcua")
    try:
        for _ in range(2):
            found = await asyncio.wait_for(handler.discover_once(parsed, find_servers, reach), WAIT)
            assert ids(found) == [opcua_lab.thermometer_url, opcua_lab.pump_url]
    finally:
        silent.close()
        await silent.wait_closed()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings  # once per failing URL, not once per round
    assert any(closed_url in w and "ConnectionRefusedError" in w for w in warnings)
    assert any(silent_url in w and "timed out" in w for w in warnings)
    assert sorted(reach.errors) == sorted([closed_url, silent_url])


async def test_changes_are_sent_as_complete_lists(opcua_lab):
    late_url = f"opc.tcp://127.0.0.1:{opcua_lab.free_port()}/late"
    handler = OpcuaHandler(discovery_interval=0.05)
    stream = handler.discover(details(opcua_lab.lds_url), {})
    try:
        first = await asyncio.wait_for(anext(stream), WAIT)
        assert ids(first) == [opcua_lab.thermometer_url, opcua_lab.pump_url]
        await asyncio.to_thread(opcua_lab.register, "Late Server", "urn:akri:test:late", (late_url,),
                                int(ApplicationType.SERVER))
        added = await asyncio.wait_for(anext(stream), WAIT)
        assert ids(added) == [opcua_lab.thermometer_url, opcua_lab.pump_url, late_url]
        await asyncio.to_thread(opcua_lab.expire, "urn:akri:test:late")
        removed = await asyncio.wait_for(anext(stream), WAIT)
        assert ids(removed) == ids(first)
    finally:
        await stream.aclose()
        await asyncio.to_thread(opcua_lab.expire, "urn:akri:test:late")


async def test_unresolvable_server_hosts_take_the_lds_address(opcua_lab):
    async def nothing_resolves(host: str) -> bool:
        return False

    handler = OpcuaHandler(resolver=nothing_resolves)
    # the LDS is asked by "localhost", so the rewritten URLs are recognisably its address
    lds_port = opcua_lab.lds_url.rsplit(":", 1)[1].rstrip("/")
    parsed = handler.validate(details(f"opc.tcp://localhost:{lds_port}"))
    assert ids(await handler.discover_once(parsed, find_servers)) == [
        f"opc.tcp://localhost:{lds_port}/akri/thermometer/", f"opc.tcp://localhost:{lds_port}/akri/pump"]


async def test_invalid_details_fail_before_the_first_list():
    from akri.discovery.handler import InvalidDetails

    stream = OpcuaHandler().discover(details("opc.tcp://127.0.0.1/"), {})
    with pytest.raises(InvalidDetails) as err:
        await anext(stream)
    assert err.value.field == "opcuaDiscoveryMethod.standard.discoveryUrls[0]"
