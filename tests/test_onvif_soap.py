"""ONVIF SOAP envelopes and answers (spec §5.4 steps 5-6): the UsernameToken vector, the
request shape, and parsing GetSystemDateAndTime / GetNetworkInterfaces / GetDeviceInformation
answers, faults and bad answers."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from akri.discovery.handlers.onvif import soap
from akri.discovery.handlers.onvif.soap import (
    DEVICE_WSDL,
    SOAP12,
    WSSE,
    WSU,
    NetworkInfo,
    SoapError,
    parse_device_information,
    parse_network_interfaces,
    parse_system_date_and_time,
)
from akri.discovery.handlers.onvif.xmlsafe import parse_xml
from akri.testing.onvif_camera import (
    HOSTILE_DATAGRAMS,
    check_username_token,
    device_information_response,
    fault_response,
    network_interfaces_response,
    system_date_and_time_response,
)


def test_username_token_vector():
    token = soap.username_token("user", "1234567", nonce=b"nonce", created="2000-01-01T12:34:56:789Z")
    assert token.nonce == "bm9uY2U="
    assert token.password_digest == "AGsoQQ+qNJu6Ha7h/QAPoQvYcV0="
    assert token.created == "2000-01-01T12:34:56:789Z"


def test_username_token_defaults_are_fresh():
    a = soap.username_token("u", "p")
    b = soap.username_token("u", "p")
    assert a.nonce != b.nonce and len(base64.b64decode(a.nonce)) == 16
    created = dt.datetime.fromisoformat(a.created.replace("Z", "+00:00"))
    assert abs(created - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=5)


def test_created_timestamp_format():
    when = dt.datetime(2024, 5, 1, 12, 34, 56, 789123, tzinfo=dt.UTC)
    assert soap.created_timestamp(when) == "2024-05-01T12:34:56.789Z"
    other_zone = when.astimezone(dt.timezone(dt.timedelta(hours=2)))
    assert soap.created_timestamp(other_zone) == "2024-05-01T12:34:56.789Z"


def test_request_without_and_with_security_header():
    plain = parse_xml(soap.request("GetSystemDateAndTime"), max_bytes=10_000)
    assert plain.find(f"{{{SOAP12}}}Body/{{{DEVICE_WSDL}}}GetSystemDateAndTime") is not None
    assert len(plain.find(f"{{{SOAP12}}}Header")) == 0
    token = soap.username_token("ad<min>", "pw")
    signed = parse_xml(soap.request("GetNetworkInterfaces", token), max_bytes=10_000)
    ut = signed.find(f"{{{SOAP12}}}Header/{{{WSSE}}}Security/{{{WSSE}}}UsernameToken")
    assert ut.find(f"{{{WSSE}}}Username").text == "ad<min>"  # escaped in the XML, intact here
    assert ut.find(f"{{{WSSE}}}Password").get("Type").endswith("#PasswordDigest")
    assert ut.find(f"{{{WSU}}}Created").text == token.created
    # the fake camera's check is independent of ours: it accepts the token
    now = dt.datetime.now(dt.UTC)
    assert check_username_token(signed.find(f"{{{SOAP12}}}Header"), "ad<min>", "pw", now) is None
    assert check_username_token(signed.find(f"{{{SOAP12}}}Header"), "ad<min>", "wrong", now) == \
        "wrong password digest"


def test_content_type_names_the_action():
    assert soap.content_type("GetNetworkInterfaces") == \
        'application/soap+xml; charset=utf-8; action="http://www.onvif.org/ver10/device/wsdl/GetNetworkInterfaces"'


def test_network_interfaces_upstream_vector():
    assert parse_network_interfaces(network_interfaces_response("192.168.1.36", "00:12:41:5c:a1:a5")) == \
        NetworkInfo("192.168.1.36", "00:12:41:5c:a1:a5")


def test_network_interfaces_first_address_in_document_order():
    answer = f"""<s:Envelope xmlns:s="{SOAP12}" xmlns:tds="{DEVICE_WSDL}" xmlns:tt="http://www.onvif.org/ver10/schema">
    <s:Body><tds:GetNetworkInterfacesResponse>
      <tds:NetworkInterfaces token="wlan0"><tt:Info><tt:HwAddress>AA:BB:CC:00:00:01</tt:HwAddress></tt:Info>
        <tt:IPv4><tt:Config><tt:DHCP>true</tt:DHCP></tt:Config></tt:IPv4></tds:NetworkInterfaces>
      <tds:NetworkInterfaces token="eth0"><tt:Info><tt:HwAddress>aa:bb:cc:00:00:02</tt:HwAddress></tt:Info>
        <tt:IPv4><tt:Config><tt:FromDHCP><tt:Address>10.1.2.3</tt:Address></tt:FromDHCP>
        <tt:LinkLocal><tt:Address>169.254.1.1</tt:Address></tt:LinkLocal></tt:Config></tt:IPv4>
      </tds:NetworkInterfaces>
    </tds:GetNetworkInterfacesResponse></s:Body></s:Envelope>""".encode()
    assert parse_network_interfaces(answer) == NetworkInfo("10.1.2.3", "AA:BB:CC:00:00:01")


def test_network_interfaces_without_values_are_unknown():
    assert parse_network_interfaces(network_interfaces_response(None, None)) == NetworkInfo(None, None)


def test_system_date_and_time():
    when = dt.datetime(2031, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
    assert parse_system_date_and_time(system_date_and_time_response(when)) == when
    no_clock = system_date_and_time_response(when).replace(b"<tt:Year>2031</tt:Year>", b"")
    assert parse_system_date_and_time(no_clock) is None  # alive, clock unknown


def test_device_information():
    info = parse_device_information(device_information_response("Acme", "Cam 1", "2.0", "SN1", "HW1"))
    assert (info.manufacturer, info.model, info.firmware_version, info.serial_number, info.hardware_id) == \
        ("Acme", "Cam 1", "2.0", "SN1", "HW1")


def test_fault_is_an_error_with_its_reason():
    with pytest.raises(SoapError) as err:
        parse_network_interfaces(fault_response("ter:NotAuthorized", "Sender not authorized"))
    assert err.value.reason == "fault"
    assert "ter:NotAuthorized" in str(err.value) and "Sender not authorized" in str(err.value)
    assert "NotAuthorized" in soap.describe_error_answer(fault_response("ter:NotAuthorized", "no"))
    assert soap.describe_error_answer(b"<html>500</html>") == ""


@pytest.mark.parametrize(("answer", "reason"), [
    (network_interfaces_response("10.0.0.1", "m")[:200], "malformed"),
    (b"", "malformed"),
    (HOSTILE_DATAGRAMS["billion-laughs"][0], "unsafe"),
    (HOSTILE_DATAGRAMS["external-entity"][0], "unsafe"),
    (b"<x>" + b"A" * soap.MAX_ANSWER + b"</x>", "oversized"),
    (network_interfaces_response("10.0.0.1", "m").replace(SOAP12.encode(), b"urn:x"), "wrong-namespace"),
    (network_interfaces_response("10.0.0.1", "m").replace(DEVICE_WSDL.encode(), b"urn:x"), "wrong-namespace"),
    (system_date_and_time_response(dt.datetime.now(dt.UTC)), "invalid"),  # answer to another call
])
def test_bad_answers(answer, reason):
    with pytest.raises(SoapError) as err:
        parse_network_interfaces(answer)
    assert err.value.reason == reason
