"""The shared stream helpers: duplicate lists dropped, handlers closed, wire conversions exact."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import pytest

from akri._proto import discovery_pb2 as pb
from akri.discovery.device import Device, DeviceSpec, Mount
from akri.discovery.handler import DiscoveryHandler, InvalidDetails
from akri.discovery.stream import (
    device_lists,
    devices_from_response,
    properties_from_proto,
    properties_to_proto,
    response_from_devices,
)

A = Device("a", {"K": "1"})
A2 = Device("a", {"K": "2"})
B = Device("b", {}, mounts=(Mount("/c", "/h", True),), device_specs=(DeviceSpec("/dev/x", "/dev/x", "rw"),))


class Scripted(DiscoveryHandler):
    """Yields the given lists, then records that it was closed."""

    name = "scripted"

    def __init__(self, lists: list[list[Device]]) -> None:
        self.lists = lists
        self.closed = False
        self.seen_properties: Mapping[str, bytes | None] | None = None

    def validate(self, details: str) -> None:
        if details == "bad":
            raise InvalidDetails("field", "bad")

    async def discover(
        self, details: str, properties: Mapping[str, bytes | None]
    ) -> AsyncIterator[list[Device]]:
        self.validate(details)
        self.seen_properties = properties
        try:
            for devices in self.lists:
                yield devices
        finally:
            self.closed = True


async def test_consecutive_equal_lists_are_dropped():
    handler = Scripted([[A, B], [B, A], [A2, B], [A2, B], [], []])
    got = [devices async for devices in device_lists(handler, "", {"p": b"v"})]
    assert got == [[A, B], [A2, B], []]  # order-insensitive: [B, A] is no change
    assert handler.seen_properties == {"p": b"v"}


async def test_consumer_stopping_closes_the_handler():
    handler = Scripted([[A], [B], [A]])
    stream = device_lists(handler, "")
    assert await anext(stream) == [A]
    await stream.aclose()
    assert handler.closed


async def test_invalid_details_surface_on_first_iteration():
    with pytest.raises(InvalidDetails):
        await anext(device_lists(Scripted([[A]]), "bad"))


def test_properties_keep_unset_apart_from_empty():
    wire = properties_to_proto({"value": b"x", "empty": b"", "unset": None})
    request = pb.DiscoverRequest(discovery_details="d", discovery_properties=wire)
    parsed = pb.DiscoverRequest.FromString(request.SerializeToString())
    assert properties_from_proto(parsed.discovery_properties) == {"value": b"x", "empty": b"", "unset": None}


def test_devices_survive_the_wire():
    response = pb.DiscoverResponse.FromString(response_from_devices([A, B]).SerializeToString())
    assert devices_from_response(response) == [A, B]
