"""WS-Discovery messages (spec §5.4 steps 1-4): our Probe, and parsing ProbeMatches, Hello and
Bye, including every hostile datagram the handler must skip with the right counter key."""

from __future__ import annotations

import pytest

from akri.discovery.handlers.onvif.stats import OnvifStats
from akri.discovery.handlers.onvif.udp import classify
from akri.discovery.handlers.onvif.wsdiscovery import (
    MAX_DATAGRAM,
    MAX_XADDRS,
    NETWORK_WSDL,
    SOAP12,
    WSA,
    WSD,
    BadMessage,
    device_uuid,
    new_message_id,
    parse_message,
    probe_message,
)
from akri.discovery.handlers.onvif.xmlsafe import parse_xml
from akri.testing.onvif_camera import HOSTILE_DATAGRAMS, bye_message, hello_message, probe_match_message

# A camera's ProbeMatches in the shape of upstream's test vector (gSOAP-style prefixes, three
# XAddrs, several scopes, SOAP-ENV prefix).
CAMERA_PROBE_MATCH = f"""<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP12}" xmlns:wsa="{WSA}" xmlns:d="{WSD}"
    xmlns:dn="{NETWORK_WSDL}" xmlns:tds="http://www.onvif.org/ver10/device/wsdl">
  <SOAP-ENV:Header>
    <wsa:MessageID>urn:uuid:2bc6f06c-5566-7788-99ac-0012414fb745</wsa:MessageID>
    <wsa:RelatesTo>uuid:7b1d26aa-b02e-4ad2-8aab-4c928298ee0c</wsa:RelatesTo>
    <wsa:To SOAP-ENV:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:To>
    <wsa:Action SOAP-ENV:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</wsa:Action>
  </SOAP-ENV:Header>
  <SOAP-ENV:Body>
    <d:ProbeMatches>
      <d:ProbeMatch>
        <wsa:EndpointReference><wsa:Address>urn:uuid:2BC6F06C-5566-7788-99AC-0012414FB745</wsa:Address></wsa:EndpointReference>
        <d:Types>dn:NetworkVideoTransmitter tds:Device</d:Types>
        <d:Scopes>onvif://www.onvif.org/type/video_encoder onvif://www.onvif.org/name/GreatONVIFCamera
          onvif://www.onvif.org/hardware/DCS-8000LH</d:Scopes>
        <d:XAddrs>
          http://10.0.0.1:5357/svc
          https://10.0.0.2:5357/svc
          soap.udp://10.0.0.3:3702
        </d:XAddrs>
        <d:MetadataVersion>10</d:MetadataVersion>
      </d:ProbeMatch>
    </d:ProbeMatches>
  </SOAP-ENV:Body>
</SOAP-ENV:Envelope>""".encode()


def test_probe_is_well_formed_and_declares_the_type_prefix():
    message_id = new_message_id()
    data = probe_message(message_id)
    root = parse_xml(data, max_bytes=MAX_DATAGRAM)  # an undeclared element prefix would fail here
    probe = root.find(f"{{{SOAP12}}}Body/{{{WSD}}}Probe")
    assert probe is not None
    assert probe.find(f"{{{WSD}}}Types").text == "dn:NetworkVideoTransmitter"
    assert f'xmlns:dn="{NETWORK_WSDL}"'.encode() in data
    assert root.find(f"{{{SOAP12}}}Header/{{{WSA}}}MessageID").text == message_id
    assert root.find(f"{{{SOAP12}}}Header/{{{WSA}}}Action").text.endswith("/discovery/Probe")
    assert message_id.startswith("uuid:") and message_id != new_message_id()
    # our own Probe coming back (multicast loop) is "not for us", not an error
    assert parse_message(data).kind == "other"


def test_probe_match_vector():
    message = parse_message(CAMERA_PROBE_MATCH)
    assert message.kind == "ProbeMatches"
    assert message.relates_to == "uuid:7b1d26aa-b02e-4ad2-8aab-4c928298ee0c"
    (endpoint,) = message.endpoints
    assert endpoint.uuid == "2bc6f06c-5566-7788-99ac-0012414fb745"  # urn:uuid: stripped, lower-cased
    assert endpoint.is_video_transmitter
    assert endpoint.scopes == ("onvif://www.onvif.org/type/video_encoder",
                               "onvif://www.onvif.org/name/GreatONVIFCamera",
                               "onvif://www.onvif.org/hardware/DCS-8000LH")
    # every whitespace-separated XAddr that is an http(s) URL; soap.udp is not a device service
    assert endpoint.xaddrs == ("http://10.0.0.1:5357/svc", "https://10.0.0.2:5357/svc")
    assert endpoint.metadata_version == 10


def test_several_probe_matches_in_one_answer():
    one = probe_match_message("urn:uuid:a", ["http://192.0.2.1/onvif/device_service"], ["s1"], "uuid:r")
    two = one.replace(b"</d:ProbeMatch>", b"</d:ProbeMatch>" + one.split(b"<d:ProbeMatches>")[1]
                      .split(b"</d:ProbeMatches>")[0].replace(b"urn:uuid:a", b"urn:uuid:b"), 1)
    message = parse_message(two)
    assert [e.uuid for e in message.endpoints] == ["a", "b"]


def test_hello_and_bye():
    hello = parse_message(hello_message("urn:uuid:CAFE", ["http://192.0.2.7/onvif/device_service"],
                                        ["onvif://www.onvif.org/name/x"]))
    assert hello.kind == "Hello"
    assert hello.endpoints[0].uuid == "cafe"
    assert hello.endpoints[0].xaddrs == ("http://192.0.2.7/onvif/device_service",)
    assert hello.message_id.startswith("uuid:")
    bye = parse_message(bye_message("urn:uuid:CAFE"))
    assert bye.kind == "Bye"
    assert bye.endpoints[0].uuid == "cafe"
    assert bye.endpoints[0].xaddrs == ()


def test_hello_from_another_kind_of_device_is_not_a_camera():
    printer = parse_message(hello_message("urn:uuid:p", ["http://192.0.2.9/wsd"], [],
                                          types="wsdp:Device pub:Computer"))
    assert not printer.endpoints[0].is_video_transmitter
    # upstream's quirky undeclared prefix still names the type
    quirky = parse_message(hello_message("urn:uuid:q", ["http://192.0.2.9/x"], [],
                                         types="netwsdl:NetworkVideoTransmitter"))
    assert quirky.endpoints[0].is_video_transmitter


def test_soap11_envelope_is_accepted():
    data = hello_message("urn:uuid:z", ["http://192.0.2.1/"], []).replace(
        SOAP12.encode(), b"http://schemas.xmlsoap.org/soap/envelope/")
    assert parse_message(data).kind == "Hello"


@pytest.mark.parametrize(("address", "uuid"), [
    ("urn:uuid:5F5A69C2-E0AE-504F-829B-00FCDAB169CC", "5f5a69c2-e0ae-504f-829b-00fcdab169cc"),
    ("uuid:abc", "abc"),
    ("urn:abc", "abc"),
    ("ABC", "abc"),
    ("urn:isbn:1", "isbn:1"),
])
def test_device_uuid(address, uuid):
    assert device_uuid(address) == uuid


def test_xaddrs_are_bounded_and_deduplicated():
    many = [f"http://192.0.2.1:{8000 + i}/onvif" for i in range(40)]
    endpoint = parse_message(hello_message("urn:uuid:x", [many[0], *many], [])).endpoints[0]
    assert len(endpoint.xaddrs) == MAX_XADDRS
    assert endpoint.xaddrs[0] == many[0] and endpoint.xaddrs[1] == many[1]
    bad = ["http://", "ftp://192.0.2.1/x", "http://192.0.2.1:99999/x", "http://" + "a" * 3000]
    assert parse_message(hello_message("urn:uuid:x", bad, [])).endpoints[0].xaddrs == ()


@pytest.mark.parametrize("name", sorted(HOSTILE_DATAGRAMS))
def test_hostile_datagrams_are_rejected_with_their_reason(name):
    data, reason = HOSTILE_DATAGRAMS[name]
    with pytest.raises(BadMessage) as err:
        parse_message(data)
    assert err.value.reason == reason


def test_classify_counts_instead_of_raising():
    stats = OnvifStats()
    for data, _ in HOSTILE_DATAGRAMS.values():
        assert classify(data, ("192.0.2.1", 3702), stats) is None
    expected: dict[str, int] = {}
    for _, reason in HOSTILE_DATAGRAMS.values():
        expected[reason] = expected.get(reason, 0) + 1
    assert dict(stats.skipped) == expected
    assert stats.datagrams == len(HOSTILE_DATAGRAMS)
    assert classify(probe_message(new_message_id()), ("192.0.2.1", 3702), stats) is None
    assert stats.ignored == 1
    assert classify(CAMERA_PROBE_MATCH, ("192.0.2.1", 3702), stats).kind == "ProbeMatches"
    assert stats.probe_matches == 1


def test_entity_bomb_is_refused_before_any_expansion():
    data, _ = HOSTILE_DATAGRAMS["billion-laughs"]
    assert len(data) < 2000  # 10**10 characters if it were expanded
    with pytest.raises(BadMessage, match="DTD"):
        parse_message(data)
