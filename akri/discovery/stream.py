"""Running a handler's device-list stream, the same way for every caller.

The agent (embedded handlers), the standalone gRPC server and `akri discover` all consume
`device_lists(handler, details, properties)`: the handler's lists with consecutive
duplicates dropped (every list is complete, so an unchanged one says nothing), and the
handler's generator closed when the consumer stops. Conversions to and from the v0 wire
messages for the stream live here too.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from akri.discovery.device import Device, same_devices
from akri.discovery.handler import DiscoveryHandler


async def device_lists(
    handler: DiscoveryHandler, details: str, properties: Mapping[str, bytes | None] | None = None
) -> AsyncIterator[list[Device]]:
    """Yield the handler's complete device lists: the first at once, then only changes.

    InvalidDetails propagates from the first iteration. Closing or cancelling the consumer
    closes the handler's generator (its watches and sockets are released).
    """
    gen = handler.discover(details, dict(properties or {}))
    previous: list[Device] | None = None
    try:
        async for devices in gen:
            devices = list(devices)
            if previous is not None and same_devices(previous, devices):
                continue
            previous = devices
            yield devices
    finally:
        aclose = getattr(gen, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()


def properties_from_proto(props: Mapping[str, Any]) -> dict[str, bytes | None]:
    """DiscoverRequest.discovery_properties (name -> ByteData) to name -> bytes | None.

    ByteData.vec is `optional bytes`: an unset vec (a property with neither value nor
    valueFrom) is None, not b"".
    """
    return {name: (data.vec if data.HasField("vec") else None) for name, data in props.items()}


def properties_to_proto(props: Mapping[str, bytes | None]) -> dict[str, Any]:
    from akri._proto import discovery_pb2 as pb

    return {name: (pb.ByteData(vec=value) if value is not None else pb.ByteData())
            for name, value in props.items()}


def response_from_devices(devices: Iterable[Device]) -> Any:
    from akri._proto import discovery_pb2 as pb

    return pb.DiscoverResponse(devices=[d.to_proto() for d in devices])


def devices_from_response(response: Any) -> list[Device]:
    return [Device.from_proto(d) for d in response.devices]
