"""ONVIF discovery details (spec §5.4): upstream's canonical form, the new keys, and errors that
name the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from akri.discovery.filters import FilterAction
from akri.discovery.handler import InvalidDetails
from akri.discovery.handlers.onvif.details import DirectedProbe, parse_details

UPSTREAM = Path(__file__).parent / "fixtures" / "upstream" / "akri-onvif-video-configuration.yaml"


def test_empty_details_are_upstream_canonical():
    assert parse_details("{}").to_dict() == {"discoveryTimeoutSeconds": 1}
    assert parse_details("").to_dict() == {"discoveryTimeoutSeconds": 1}
    assert parse_details("{}").interval == 10


def test_upstream_configuration():
    doc = yaml.safe_load(UPSTREAM.read_text())
    details = parse_details(doc["spec"]["discoveryHandler"]["discoveryDetails"])
    assert details.ip_addresses.action is FilterAction.EXCLUDE
    assert details.ip_addresses.items == ("10.0.0.1", "10.0.0.2")
    assert details.scopes.items == ("onvif://www.onvif.org/name/GreatONVIFCamera",
                                    "onvif://www.onvif.org/name/AwesomeONVIFCamera")
    assert details.discovery_timeout_seconds == 2
    assert details.to_dict()["macAddresses"] == {"action": "Exclude"}


def test_new_keys():
    details = parse_details("directedProbes: [10.0.0.5, 'cam.local:3703', 10.0.0.5]\n"
                            "discoveryIntervalSeconds: 60\nuuids: {items: [ABC], action: Include}")
    assert details.directed_probes == (DirectedProbe("10.0.0.5"), DirectedProbe("cam.local", 3703))
    assert details.interval == 60
    assert details.uuids.items == ("ABC",)
    assert details.to_dict()["directedProbes"] == ["10.0.0.5", "cam.local:3703"]


def test_unknown_keys_are_kept_aside():
    assert parse_details("ipAddress: {items: []}").unknown_keys == ("ipAddress",)


@pytest.mark.parametrize(("details", "field", "words"), [
    ("discoveryTimeoutSeconds: 0", "discoveryTimeoutSeconds", "more than 0"),
    ("discoveryTimeoutSeconds: '1'", "discoveryTimeoutSeconds", "number"),
    ("discoveryTimeoutSeconds: true", "discoveryTimeoutSeconds", "number"),
    ("discoveryIntervalSeconds: -1", "discoveryIntervalSeconds", "more than 0"),
    ("directedProbes: 10.0.0.1", "directedProbes", "list"),
    ("directedProbes: [10.0.0.1, 7]", "directedProbes[1]", "string"),
    ("directedProbes: ['']", "directedProbes[0]", "empty"),
    ("directedProbes: ['10.0.0.1:0']", "directedProbes[0]", "port"),
    ("directedProbes: ['10.0.0.1:http']", "directedProbes[0]", "port"),
    ("directedProbes: ['10.0.0.1:70000']", "directedProbes[0]", "port"),
    ("directedProbes: [':3702']", "directedProbes[0]", "host is missing"),
    ("directedProbes: ['999.1.1.1']", "directedProbes[0]", "neither"),
    ("directedProbes: ['bad host']", "directedProbes[0]", "neither"),
    ("directedProbes: ['[fe80::1]:3702']", "directedProbes[0]", "IPv6"),
    ("directedProbes: ['0.0.0.0']", "directedProbes[0]", "0.0.0.0"),
    ("scopes: [a]", "scopes", "object"),
    ("ipAddresses: {items: [1]}", "ipAddresses.items[0]", "string"),
    ("macAddresses: {items: [], action: Drop}", "macAddresses.action", "Include"),
    ("- 1", "discoveryDetails", "mapping"),
])
def test_errors_name_the_field(details, field, words):
    with pytest.raises(InvalidDetails) as err:
        parse_details(details)
    assert err.value.field == field
    assert words in err.value.message
