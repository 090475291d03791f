"""debugEcho (spec §5.2) used in-process, as the agent embeds it: details, OFFLINE/online, shared flag."""

from __future__ import annotations

import asyncio

import pytest

from akri.discovery.device import Device
from akri.discovery.handler import HandlerSetupError, InvalidDetails
from akri.discovery.handlers import get_handler
from akri.discovery.handlers.debug_echo import (
    AVAILABILITY_FILE_ENV,
    DEFAULT_AVAILABILITY_FILE,
    SHARED_ENV,
    DebugEchoHandler,
    parse_details,
    parse_shared,
)

WAIT = 10.0  # generous: only guards against hanging
DETAILS = "descriptions:\n  - bar0\n  - bar1\n"
BAR = [
    Device(id="bar0", properties={"DEBUG_ECHO_DESCRIPTION": "bar0"}),
    Device(id="bar1", properties={"DEBUG_ECHO_DESCRIPTION": "bar1"}),
]


# --- details

def test_details_upstream_vectors():
    assert parse_details(DETAILS).to_dict() == {"descriptions": ["bar0", "bar1"]}
    assert parse_details("descriptions: []").to_dict() == {"descriptions": []}
    assert parse_details('{"descriptions": ["foo1"]}').descriptions == ("foo1",)  # JSON is YAML


@pytest.mark.parametrize(
    ("details", "field", "words"),
    [
        ("", "descriptions", "required"),  # upstream: empty details fail
        ("other: 1", "descriptions", "required"),
        ("descriptions: foo", "descriptions", "list"),
        ("descriptions: [foo, 7]", "descriptions[1]", "string"),
        ("descriptions: [foo", "discoveryDetails", "YAML"),
        ("- foo", "discoveryDetails", "mapping"),
    ],
)
def test_invalid_details_name_the_field(details, field, words):
    with pytest.raises(InvalidDetails) as err:
        parse_details(details)
    assert err.value.field == field
    assert words in err.value.message


# --- shared flag and file from the environment

def test_shared_flag_parsing():
    assert parse_shared("true") is True
    assert parse_shared(" False ") is False
    assert parse_shared(None, default=True) is True
    with pytest.raises(HandlerSetupError, match=SHARED_ENV):
        parse_shared(None)
    with pytest.raises(HandlerSetupError, match="'yes'"):
        parse_shared("yes", default=True)  # a wrong value is never defaulted away


def test_handler_from_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(SHARED_ENV, raising=False)
    monkeypatch.delenv(AVAILABILITY_FILE_ENV, raising=False)
    with pytest.raises(HandlerSetupError):
        get_handler("debugEcho")  # `akri handler debugEcho` needs the variable, as upstream
    handler = get_handler("debugEcho", default_shared=True)
    assert handler.shared is True
    assert str(handler.availability_file) == DEFAULT_AVAILABILITY_FILE
    monkeypatch.setenv(SHARED_ENV, "false")
    monkeypatch.setenv(AVAILABILITY_FILE_ENV, str(tmp_path / "avail"))
    handler = get_handler("debugEcho", default_shared=True)
    assert handler.shared is False
    assert handler.availability_file == tmp_path / "avail"


# --- discovery

async def test_first_list_then_only_transitions(tmp_path):
    avail = tmp_path / "availability.txt"  # missing file: online
    handler = DebugEchoHandler(shared=True, availability_file=avail)
    stream = handler.discover(DETAILS, {})
    try:
        assert await asyncio.wait_for(anext(stream), WAIT) == BAR
        nxt = asyncio.ensure_future(anext(stream))
        avail.write_text("ONLINE")  # no transition: nothing is sent
        avail.write_text("still fine")
        await asyncio.sleep(0.3)
        assert not nxt.done()
        avail.write_text("device is OFFLINE now")  # contains OFFLINE
        assert await asyncio.wait_for(nxt, WAIT) == []
        avail.write_text("ONLINE")
        assert await asyncio.wait_for(anext(stream), WAIT) == BAR
        avail.write_text("OFFLINE")
        assert await asyncio.wait_for(anext(stream), WAIT) == []
        avail.unlink()  # missing again: online
        assert await asyncio.wait_for(anext(stream), WAIT) == BAR
    finally:
        await stream.aclose()


async def test_starts_offline_and_empty_descriptions(tmp_path):
    avail = tmp_path / "availability.txt"
    avail.write_text("OFFLINE")
    handler = DebugEchoHandler(shared=False, availability_file=avail)
    stream = handler.discover(DETAILS, {})
    try:
        assert await asyncio.wait_for(anext(stream), WAIT) == []
        avail.write_text("")
        assert await asyncio.wait_for(anext(stream), WAIT) == BAR
    finally:
        await stream.aclose()
    empty = handler.discover("descriptions: []", {})
    try:
        assert await asyncio.wait_for(anext(empty), WAIT) == []
    finally:
        await empty.aclose()


async def test_invalid_details_raise_before_any_list(tmp_path):
    handler = DebugEchoHandler(shared=True, availability_file=tmp_path / "a")
    with pytest.raises(InvalidDetails) as err:
        await anext(handler.discover("descriptions: 3", {}))
    assert err.value.field == "descriptions"


async def test_rewriting_offline_does_not_flap(tmp_path):
    # `echo OFFLINE > file` truncates first: a reader that reacted to the truncation would
    # report the devices online for a moment
    avail = tmp_path / "availability.txt"
    avail.write_text("OFFLINE")
    handler = DebugEchoHandler(shared=True, availability_file=avail)
    stream = handler.discover(DETAILS, {})
    try:
        assert await asyncio.wait_for(anext(stream), WAIT) == []
        nxt = asyncio.ensure_future(anext(stream))
        for _ in range(20):
            with avail.open("w") as f:  # truncate, then write, then close
                f.flush()
                await asyncio.sleep(0.005)
                f.write("OFFLINE")
        await asyncio.sleep(0.3)
        assert not nxt.done()
        nxt.cancel()
        await asyncio.gather(nxt, return_exceptions=True)
    finally:
        await stream.aclose()
