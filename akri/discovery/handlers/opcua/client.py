"""FindServers over OPC UA TCP with asyncua (the `akri[opcua]` extra).

This is the only module that imports asyncua (48 MB, ~0.2 s): the handler imports it when a
discovery starts, so checking discovery details never needs the library.
"""

from __future__ import annotations

import asyncio
import logging

from asyncua import Client

from akri.discovery.handlers.opcua.servers import Application

# asyncua logs every connection step at INFO: six lines per discovery URL per round. Unless
# someone configured its logger or asked for DEBUG, keep only its warnings; the handler logs
# what matters (failing URLs, changed lists).
_asyncua_log = logging.getLogger("asyncua")
if _asyncua_log.level == logging.NOTSET and logging.getLogger().getEffectiveLevel() > logging.DEBUG:
    _asyncua_log.setLevel(logging.WARNING)

# as upstream's discovery client identifies itself
CLIENT_NAME = "DiscoveryHandlerClient"
CLIENT_URI = "urn:DiscoveryHandlerClient"


async def find_servers(url: str, request_timeout: float) -> list[Application]:
    """FindServers on `url` without a session (none is needed for discovery services).

    `request_timeout` bounds the TCP connect and each request (upstream tests the TCP connection with
    3 s before asking); the whole exchange is bounded too, so a server that accepts the
    connection and then stalls cannot hold a discovery round.
    """
    client = Client(url, timeout=request_timeout)
    client.name = client.description = CLIENT_NAME
    client.application_uri = CLIENT_URI
    async with asyncio.timeout(request_timeout * 4):  # not wait_for: gh-86296 on 3.11
        descriptions = await client.connect_and_find_servers()
    return [
        Application(
            name=(d.ApplicationName.Text or "") if d.ApplicationName is not None else "",
            type=int(d.ApplicationType),
            discovery_urls=tuple(u for u in (d.DiscoveryUrls or ()) if u),
            uri=d.ApplicationUri or "",
        )
        for d in descriptions
    ]
