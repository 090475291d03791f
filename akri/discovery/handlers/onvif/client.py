"""ONVIF device-service calls over HTTP (aiohttp), each bounded in time and size.

Our own small SOAP layer (`soap.py`) instead of onvif-zeep-async: the handler needs three
argument-less calls. Measured (RSS, Python 3.11): importing onvif-zeep-async adds 15 MB on
top of aiohttp, 25 MB once the device WSDL is loaded for a call; soap.py and the rest of
this package add about 3 MB. Upstream's memory limit for a whole discovery handler is
24 MiB. aiohttp, the one HTTP client here, is already a project dependency (about 9 MB).

Every call: POST with the SOAP 1.2 content type and action, total timeout (default 1 s, as
upstream), body read up to soap.MAX_ANSWER bytes, no compression (a gzip bomb cannot grow
past what we read), no proxies from the environment (cameras are on the local network),
HTTPS without certificate checks (cameras use self-signed certificates; upstream speaks
plain HTTP only). A failure raises SoapError with a counter key.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import TYPE_CHECKING, Any

from akri.discovery.handlers.onvif import soap
from akri.discovery.handlers.onvif.credentials import Credential
from akri.discovery.handlers.onvif.soap import DeviceInformation, NetworkInfo, SoapError
from akri.discovery.handlers.onvif.stats import OnvifStats

if TYPE_CHECKING:
    import aiohttp

DEFAULT_TIMEOUT = 1.0


class OnvifClient:
    """One HTTP session for the calls of one discovery stream. Use `async with`."""

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT, stats: OnvifStats | None = None,
                 max_answer: int = soap.MAX_ANSWER) -> None:
        self.timeout = timeout
        self.stats = stats if stats is not None else OnvifStats()
        self.max_answer = max_answer
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> OnvifClient:
        import aiohttp

        # force_close: camera web servers often mishandle keep-alive, and a round makes only
        # a couple of calls per camera every few seconds.
        connector = aiohttp.TCPConnector(force_close=True, limit=64, ssl=False)
        self._session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, trust_env=False,
            timeout=aiohttp.ClientTimeout(total=None))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(self, url: str, operation: str, credential: Credential | None = None,
                   *, clock_offset: dt.timedelta | None = None) -> bytes:
        """POST one operation; the answer's bytes when the camera said 200."""
        token = None
        if credential is not None:
            created = None
            if clock_offset is not None:
                created = soap.created_timestamp(dt.datetime.now(dt.UTC) + clock_offset)
            token = soap.username_token(credential.username, credential.password or "", created=created)
        self.stats.soap_calls += 1
        try:
            async with asyncio.timeout(self.timeout):  # not wait_for: gh-86296 on 3.11
                return await self._post(url, operation, soap.request(operation, token))
        except TimeoutError:
            raise SoapError("timeout", f"no answer within {self.timeout:g} s") from None

    async def _post(self, url: str, operation: str, body: bytes) -> bytes:
        import aiohttp

        assert self._session is not None, "use OnvifClient as an async context manager"
        headers = {"Content-Type": soap.content_type(operation), "Accept-Encoding": "identity"}
        try:
            async with self._session.post(url, data=body, headers=headers, allow_redirects=False) as resp:
                declared = resp.content_length
                if declared is not None and declared > self.max_answer:
                    raise SoapError("oversized", f"answer of {declared} bytes (limit {self.max_answer})")
                data = await self._read_capped(resp)
                if resp.status != 200:
                    raise SoapError("http-status", f"HTTP {resp.status}{soap.describe_error_answer(data)}",
                                    status=resp.status)
                return data
        except (aiohttp.ClientConnectionError, OSError) as exc:
            raise SoapError("connection", str(exc) or type(exc).__name__) from None
        except aiohttp.ClientError as exc:  # malformed HTTP (bad status line, headers, chunks)
            raise SoapError("malformed", f"bad HTTP answer: {exc}") from None
        except ValueError as exc:  # e.g. a URL aiohttp cannot use
            raise SoapError("invalid", str(exc)) from None

    async def _read_capped(self, resp: aiohttp.ClientResponse) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while chunk := await resp.content.read(64 * 1024):
            total += len(chunk)
            if total > self.max_answer:
                raise SoapError("oversized", f"answer over {self.max_answer} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def _checked(self, url: str, operation: str, parse: Any, credential: Credential | None,
                       clock_offset: dt.timedelta | None, quiet: bool) -> Any:
        try:
            return parse(await self.call(url, operation, credential, clock_offset=clock_offset))
        except SoapError as exc:
            self.stats.soap_failure(exc.reason, url, str(exc), quiet=quiet)
            raise

    async def get_system_date_and_time(self, url: str, credential: Credential | None = None,
                                       *, quiet: bool = False) -> dt.datetime | None:
        """Liveness: returns the camera's UTC clock (None if it did not say) or raises."""
        return await self._checked(url, "GetSystemDateAndTime", soap.parse_system_date_and_time,
                                   credential, None, quiet)

    async def get_network_interfaces(self, url: str, credential: Credential | None = None, *,
                                     clock_offset: dt.timedelta | None = None) -> NetworkInfo:
        return await self._checked(url, "GetNetworkInterfaces", soap.parse_network_interfaces,
                                   credential, clock_offset, False)

    async def get_device_information(self, url: str, credential: Credential | None = None, *,
                                     clock_offset: dt.timedelta | None = None) -> DeviceInformation:
        return await self._checked(url, "GetDeviceInformation", soap.parse_device_information,
                                   credential, clock_offset, False)
