"""From FindServers answers to device URLs: upstream's rewrite vectors, type and name filters,
URL preference and duplicate removal. The resolver is injected where a name must not resolve
(no DNS query leaves the machine); the real resolver is checked on names that resolve locally."""

from __future__ import annotations

import pytest

from akri.discovery.filters import FilterAction, FilterList
from akri.discovery.handlers.opcua.servers import (
    Application,
    ApplicationType,
    device_urls,
    preferred_url,
    resolves,
    rewrite_unresolvable,
    unique,
)


class Resolver:
    """Answers from a fixed set of unresolvable names and records what it was asked."""

    def __init__(self, *unresolvable: str) -> None:
        self.unresolvable = set(unresolvable)
        self.asked: list[str] = []

    async def __call__(self, host: str) -> bool:
        self.asked.append(host)
        return host not in self.unresolvable


# ------------------------------------------------------------------ §5.5 rewrite vectors


async def test_unresolvable_host_takes_the_lds_address_and_keeps_its_path():
    urls = await device_urls(
        "opc.tcp://192.168.0.1:50000",
        [Application("OPC Test", ApplicationType.SERVER, ("opc.tcp://OPCTest.invalid:50000/OPCUA/Simluation",))],
        None, Resolver("opctest.invalid"))
    assert urls == ["opc.tcp://192.168.0.1:50000/OPCUA/Simluation"]


async def test_unresolvable_host_found_at_a_url_with_a_path_becomes_that_url():
    urls = await device_urls(
        "opc.tcp://192.168.0.1:50000/OPCUA/Simluation",
        [Application("OPC Test", ApplicationType.SERVER, ("opc.tcp://OPCTest.invalid:50000/OPCUA/Simluation",))],
        None, Resolver("opctest.invalid"))
    assert urls == ["opc.tcp://192.168.0.1:50000/OPCUA/Simluation"]


async def test_resolvable_url_is_unchanged():
    resolver = Resolver("opctest.invalid")
    urls = await device_urls(
        "opc.tcp://192.168.0.1:50000",
        [Application("OPC Test", ApplicationType.SERVER, ("opc.tcp://192.168.0.2:50000/OPCUA/Simluation",))],
        None, resolver)
    assert urls == ["opc.tcp://192.168.0.2:50000/OPCUA/Simluation"]
    assert resolver.asked == ["192.168.0.2"]


@pytest.mark.parametrize(
    ("queried", "server", "expected"),
    [
        # upstream's own unit-test form: LDS URL with a trailing slash
        ("opc.tcp://192.168.0.1:50000/", "opc.tcp://OPCTest:50000/OPCUA/Simluation",
         "opc.tcp://192.168.0.1:50000/OPCUA/Simluation"),
        # a server URL without a path leaves the queried URL as it is
        ("opc.tcp://192.168.0.1:4840/", "opc.tcp://OPCTest:4841", "opc.tcp://192.168.0.1:4840/"),
        # an IPv6 LDS address keeps its brackets
        ("opc.tcp://[fd00::1]:4840", "opc.tcp://opctest:4840/a/b", "opc.tcp://[fd00::1]:4840/a/b"),
    ],
)
def test_rewrite_forms(queried, server, expected):
    assert rewrite_unresolvable(queried, server) == expected


async def test_a_url_without_a_host_is_rewritten_and_resolution_is_asked_once_per_host():
    resolver = Resolver("box.invalid")
    apps = [
        Application("A", ApplicationType.SERVER, ("opc.tcp://box.invalid:4841/a",)),
        Application("B", ApplicationType.SERVER, ("opc.tcp://box.invalid:4842/b",)),
        Application("C", ApplicationType.SERVER, ("opc.tcp:///c",)),
    ]
    urls = await device_urls("opc.tcp://10.0.0.9:4840/", apps, None, resolver)
    assert urls == ["opc.tcp://10.0.0.9:4840/a", "opc.tcp://10.0.0.9:4840/b", "opc.tcp://10.0.0.9:4840/c"]
    assert resolver.asked == ["box.invalid"]


# ------------------------------------------------------------------ which applications are devices


async def test_servers_and_client_servers_are_devices_clients_and_discovery_servers_are_not():
    apps = [
        Application("LDS", ApplicationType.DISCOVERY_SERVER, ("opc.tcp://127.0.0.1:4840/",)),
        Application("Server", ApplicationType.SERVER, ("opc.tcp://127.0.0.1:4855/",)),
        Application("Panel", ApplicationType.CLIENT, ("opc.tcp://127.0.0.1:4856/",)),
        Application("Both", ApplicationType.CLIENT_AND_SERVER, ("opc.tcp://127.0.0.1:4857/",)),
        Application("Future", 9, ("opc.tcp://127.0.0.1:4858/",)),
        Application("NoUrls", ApplicationType.SERVER, ()),
    ]
    assert await device_urls("opc.tcp://127.0.0.1:4840/", apps, None, Resolver()) == [
        "opc.tcp://127.0.0.1:4855/", "opc.tcp://127.0.0.1:4857/"]


@pytest.mark.parametrize(
    ("filter_list", "expected"),
    [
        (None, ["opc.tcp://h:1/", "opc.tcp://h:2/"]),
        (FilterList(("beep",), FilterAction.INCLUDE), ["opc.tcp://h:1/"]),
        (FilterList(("beep",), FilterAction.EXCLUDE), ["opc.tcp://h:2/"]),
        # upstream's sample Configuration: Include with no items keeps nothing
        (FilterList((), FilterAction.INCLUDE), []),
        (FilterList((), FilterAction.EXCLUDE), ["opc.tcp://h:1/", "opc.tcp://h:2/"]),
        # exact, case-sensitive names
        (FilterList(("Beep", "boo"), FilterAction.INCLUDE), []),
    ],
)
async def test_application_names_filter(filter_list, expected):
    apps = [Application("beep", ApplicationType.SERVER, ("opc.tcp://h:1/",)),
            Application("boop", ApplicationType.SERVER, ("opc.tcp://h:2/",))]
    assert await device_urls("opc.tcp://h:4840/", apps, filter_list, Resolver()) == expected


def test_an_opc_tcp_url_is_preferred_else_the_first():
    assert preferred_url(["https://h:443/", "opc.tcp://h:4840/x", "opc.tcp://h:4841/"]) == "opc.tcp://h:4840/x"
    assert preferred_url(["https://h:443/", "opc.wss://h:443/"]) == "https://h:443/"
    assert preferred_url([]) is None


def test_repeated_urls_are_dropped_keeping_the_first_position():
    assert unique(["a", "a", "b", "a", "c", "b"]) == ["a", "b", "c"]


async def test_real_resolver_on_names_that_resolve_locally():
    assert await resolves("127.0.0.1")
    assert await resolves("::1")
    assert await resolves("localhost")
    # a label over 63 characters is refused before any query is sent
    assert not await resolves("a" * 64 + ".example")
