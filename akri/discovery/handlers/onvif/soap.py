"""The three ONVIF device-service calls the handler makes, as SOAP 1.2 envelopes, and the
parsing of their answers (spec §5.4).

    GetSystemDateAndTime   unauthenticated liveness check; also gives the camera's clock
    GetNetworkInterfaces   IPv4 address and MAC (authenticated when a credential exists)
    GetDeviceInformation   manufacturer, model, firmware, serial number

Authentication is WS-Security UsernameToken with PasswordDigest (ONVIF Core §5.9.4):
Password = base64(SHA1(nonce + created + password)), Nonce = base64(nonce).

Answers are checked down to the response element (SOAP envelope namespace, device-service
namespace); inside it, elements are matched by local name as upstream does.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from akri.discovery.handlers.onvif.xmlsafe import (
    SOAP11,
    SOAP12,
    XmlRejected,
    child,
    children,
    escape,
    local_name,
    namespace,
    soap_envelope,
    text,
)

DEVICE_WSDL = "http://www.onvif.org/ver10/device/wsdl"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
PASSWORD_DIGEST = ("http://docs.oasis-open.org/wss/2004/01/"
                   "oasis-200401-wss-username-token-profile-1.0#PasswordDigest")
BASE64_BINARY = ("http://docs.oasis-open.org/wss/2004/01/"
                 "oasis-200401-wss-soap-message-security-1.0#Base64Binary")

# A GetNetworkInterfaces answer of a camera with several interfaces is a few KiB.
MAX_ANSWER = 256 * 1024


class SoapError(Exception):
    """A call that gave no usable answer. `reason` is a counter key: timeout, connection,
    http-status, fault, malformed, unsafe, oversized, wrong-namespace, invalid."""

    def __init__(self, reason: str, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


@dataclass(frozen=True, slots=True)
class UsernameToken:
    username: str
    password_digest: str
    nonce: str          # base64
    created: str


@dataclass(frozen=True, slots=True)
class NetworkInfo:
    ip_address: str | None
    mac_address: str | None


@dataclass(frozen=True, slots=True)
class DeviceInformation:
    manufacturer: str
    model: str
    firmware_version: str
    serial_number: str
    hardware_id: str


def password_digest(nonce: bytes, created: str, password: str) -> str:
    return base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode()).digest()).decode()


def created_timestamp(now: dt.datetime) -> str:
    """UTC, RFC 3339 with milliseconds and `Z`, e.g. 2024-05-01T12:34:56.789Z."""
    now = now.astimezone(dt.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def username_token(username: str, password: str, *, nonce: bytes | None = None,
                   created: str | None = None) -> UsernameToken:
    nonce = os.urandom(16) if nonce is None else nonce
    created = created_timestamp(dt.datetime.now(dt.UTC)) if created is None else created
    return UsernameToken(username, password_digest(nonce, created, password),
                         base64.b64encode(nonce).decode(), created)


def security_header(token: UsernameToken) -> str:
    return (
        f'<wsse:Security s:mustUnderstand="1" xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}">'
        "<wsse:UsernameToken>"
        f"<wsse:Username>{escape(token.username)}</wsse:Username>"
        f'<wsse:Password Type="{PASSWORD_DIGEST}">{token.password_digest}</wsse:Password>'
        f'<wsse:Nonce EncodingType="{BASE64_BINARY}">{token.nonce}</wsse:Nonce>'
        f"<wsu:Created>{token.created}</wsu:Created>"
        "</wsse:UsernameToken></wsse:Security>"
    )


def request(operation: str, token: UsernameToken | None = None) -> bytes:
    """The SOAP 1.2 envelope for a device-service operation without arguments."""
    header = security_header(token) if token is not None else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<s:Envelope xmlns:s="{SOAP12}" xmlns:tds="{DEVICE_WSDL}">'
        f"<s:Header>{header}</s:Header>"
        f"<s:Body><tds:{operation}/></s:Body></s:Envelope>"
    ).encode()


def content_type(operation: str) -> str:
    return f'application/soap+xml; charset=utf-8; action="{DEVICE_WSDL}/{operation}"'


def _body(data: bytes) -> ET.Element:
    try:
        return soap_envelope(data, max_bytes=MAX_ANSWER)[1]
    except XmlRejected as exc:
        raise SoapError(exc.reason, str(exc)) from None


def fault_text(body: ET.Element) -> str | None:
    """`code (subcode): reason` of a SOAP Fault in `body`, or None when it holds none."""
    fault = body[0]
    if local_name(fault.tag) != "Fault" or namespace(fault.tag) not in (SOAP12, SOAP11):
        return None
    code = child(fault, "Code")
    values = [text(child(code, "Value"))]
    sub = child(code, "Subcode")
    while sub is not None and len(values) < 4:
        values.append(text(child(sub, "Value")))
        sub = child(sub, "Subcode")
    reason = child(fault, "Reason")
    reason_text = text(child(reason, "Text")) or text(child(fault, "faultstring"))
    codes = " / ".join(v for v in values if v) or text(child(fault, "faultcode")) or "?"
    return f"{codes}: {reason_text}" if reason_text else codes


def response_element(data: bytes, operation: str) -> ET.Element:
    """The `<tds:{operation}Response>` element of an answer; SoapError otherwise."""
    body = _body(data)
    fault = fault_text(body)
    if fault is not None:
        raise SoapError("fault", f"SOAP fault {fault}")
    content = body[0]
    expected = f"{operation}Response"
    if local_name(content.tag) != expected:
        raise SoapError("invalid", f"expected {expected}, got {local_name(content.tag)}")
    if namespace(content.tag) != DEVICE_WSDL:
        raise SoapError("wrong-namespace", f"{expected} in namespace {namespace(content.tag)!r}, "
                                           f"expected {DEVICE_WSDL}")
    return content


def describe_error_answer(data: bytes) -> str:
    """A short description of a non-200 answer: its SOAP fault if it carries one."""
    try:
        fault = fault_text(_body(data))
    except SoapError:
        return ""
    return f" (SOAP fault {fault})" if fault else ""


def parse_system_date_and_time(data: bytes) -> dt.datetime | None:
    """The camera's UTC clock, or None when the answer (valid otherwise) does not give it."""
    response = response_element(data, "GetSystemDateAndTime")
    utc = child(child(response, "SystemDateAndTime"), "UTCDateTime")
    date, time = child(utc, "Date"), child(utc, "Time")
    try:
        return dt.datetime(
            int(text(child(date, "Year"))), int(text(child(date, "Month"))), int(text(child(date, "Day"))),
            int(text(child(time, "Hour"))), int(text(child(time, "Minute"))),
            int(text(child(time, "Second"))), tzinfo=dt.UTC)
    except (ValueError, TypeError):
        return None


def parse_network_interfaces(data: bytes) -> NetworkInfo:
    """First IPv4 address (`NetworkInterfaces/IPv4/Config/*/Address`) and first MAC
    (`NetworkInterfaces/Info/HwAddress`), in document order, as upstream's XPath."""
    response = response_element(data, "GetNetworkInterfaces")
    ip = mac = None
    for interface in children(response, "NetworkInterfaces"):
        if mac is None:
            mac = text(child(child(interface, "Info"), "HwAddress")) or None
        if ip is None:
            config = child(child(interface, "IPv4"), "Config")
            for kind in config if config is not None else ():
                address = text(child(kind, "Address"))
                if address:
                    ip = address
                    break
    return NetworkInfo(ip, mac)


def parse_device_information(data: bytes) -> DeviceInformation:
    response = response_element(data, "GetDeviceInformation")
    return DeviceInformation(*(text(child(response, name)) for name in (
        "Manufacturer", "Model", "FirmwareVersion", "SerialNumber", "HardwareId")))
