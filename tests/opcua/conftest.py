"""A real OPC UA lab on localhost for the OPC UA discovery handler (asyncua, no mocks).

`opcua_lab` (session scope) runs, on its own event loop in a background thread so that
subprocesses and other event loops can talk to it:

* a local discovery server (application type DiscoveryServer, "Akri Test LDS");
* a real asyncua Server "Thermometer" (asyncua's default type, ClientAndServer) that registers
  itself with the LDS through RegisterServer;
* two more applications registered with the LDS over the wire the way any remote server
  registers: "Pump" (type Server) and "Operator Panel" (type Client, never a device).

Distinct application URIs everywhere: with asyncua's default URI the registered server would be
shadowed by the LDS in FindServers. Ports are chosen free at run time. Starting an asyncua
server fills its standard address space (a few seconds on a busy 2-core machine), so the lab
is made once per session; tests that register more applications remove them again with
`expire()` (the LDS forgetting a registration, as a real LDS does when one is not renewed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

START_TIMEOUT = 120.0  # generous: only there so a broken fixture cannot hang


def free_port() -> int:
    """A localhost TCP port nobody listens on right now (also used as a closed port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Registration:
    name: str
    uri: str
    discovery_urls: tuple[str, ...]
    app_type: int  # asyncua.ua.ApplicationType value


class OpcuaLab:
    """The servers and the loop they run on; blocking methods for tests."""

    LDS_URI = "urn:akri:test:lds"
    THERMOMETER_URI = "urn:akri:test:thermometer"

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="opcua-lab", daemon=True)
        self.lds_url = f"opc.tcp://127.0.0.1:{free_port()}/"
        self.thermometer_url = f"opc.tcp://127.0.0.1:{free_port()}/akri/thermometer/"
        self.pump_url = f"opc.tcp://127.0.0.1:{free_port()}/akri/pump"
        self.panel_url = f"opc.tcp://127.0.0.1:{free_port()}/akri/panel"
        self._servers: list[Any] = []
        self.lds: Any = None

    def run(self, coro: Any, timeout: float = START_TIMEOUT) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.thread.start()
        self.run(self._start())

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.run(self._stop(), timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    async def _server(self, url: str, name: str, uri: str, app_type: Any) -> Any:
        from asyncua import Server, ua

        server = Server()
        await server.init()
        server.disable_clock(True)  # no once-a-second writes; stop() returns at once
        server.set_endpoint(url)
        server.set_server_name(name)
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        await server.set_application_uri(uri)  # a coroutine: without await it only warns
        server.application_type = app_type
        await server.start()
        self._servers.append(server)
        return server

    async def _start(self) -> None:
        from asyncua import ua

        self.lds = await self._server(self.lds_url, "Akri Test LDS", self.LDS_URI,
                                      ua.ApplicationType.DiscoveryServer)
        thermometer = await self._server(self.thermometer_url, "Thermometer", self.THERMOMETER_URI,
                                         ua.ApplicationType.ClientAndServer)
        objects = thermometer.get_objects_node()
        device = await objects.add_object(2, "Thermometer")
        await device.add_variable(2, "Temperature", 21.5)
        # period=0: register once, no renewal task (this LDS never expires registrations)
        await thermometer.register_to_discovery(self.lds_url, period=0)
        await self._register(Registration("Pump", "urn:akri:test:pump", (self.pump_url,),
                                          int(ua.ApplicationType.Server)))
        await self._register(Registration("Operator Panel", "urn:akri:test:panel", (self.panel_url,),
                                          int(ua.ApplicationType.Client)))

    async def _stop(self) -> None:
        for server in reversed(self._servers):
            with contextlib.suppress(Exception):
                await server.stop()

    # ------------------------------------------------------------ registrations

    async def _register(self, reg: Registration, at: str | None = None) -> None:
        """RegisterServer over the wire, as a server elsewhere on the network would."""
        from asyncua import Client, ua

        server = ua.RegisteredServer()
        server.ServerUri = reg.uri
        server.ProductUri = "urn:akri:test"
        server.ServerNames = [ua.LocalizedText(reg.name)]
        server.ServerType = ua.ApplicationType(reg.app_type)
        server.DiscoveryUrls = list(reg.discovery_urls)
        server.IsOnline = True
        client = Client(at or self.lds_url, timeout=10)
        await client.connect_sessionless()
        try:
            await client.uaclient.register_server(server)
        finally:
            await client.disconnect_sessionless()

    def register(self, name: str, uri: str, discovery_urls: tuple[str, ...], app_type: int) -> None:
        self.run(self._register(Registration(name, uri, discovery_urls, app_type)))

    free_port = staticmethod(free_port)

    def expire(self, uri: str) -> None:
        """Make the LDS forget a registration. A real LDS drops a server that stops renewing
        its registration; asyncua's LDS never does and has no other way to forget one."""
        async def forget() -> None:
            self.lds.iserver._known_servers.pop(uri, None)

        self.run(forget())


@pytest.fixture(scope="session")
def opcua_lab() -> Iterator[OpcuaLab]:
    pytest.importorskip("asyncua", reason="the OPC UA tests need asyncua (pip install 'akri[opcua]')")
    # the servers warn about security settings a test lab does not need
    asyncua_logger = logging.getLogger("asyncua")
    level = asyncua_logger.level
    asyncua_logger.setLevel(logging.ERROR)
    lab = OpcuaLab()
    try:
        lab.start()
        yield lab
    finally:
        lab.stop()
        asyncua_logger.setLevel(level)
