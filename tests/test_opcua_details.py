"""OPC UA discovery details: upstream's serialization vectors and errors that name the field."""

from __future__ import annotations

import json

import pytest

from akri.discovery.filters import FilterAction
from akri.discovery.handler import InvalidDetails
from akri.discovery.handlers.opcua.details import DEFAULT_DISCOVERY_URL, parse_details
from akri.model.validation import validate_configuration

URLS = "opcuaDiscoveryMethod.standard.discoveryUrls"


def canonical(text: str) -> str:
    return json.dumps(parse_details(text).to_dict(), separators=(",", ":"))


def test_empty_standard_gets_the_default_lds_url():
    assert canonical("opcuaDiscoveryMethod: \n  standard: {}\n") == (
        '{"opcuaDiscoveryMethod":{"standard":{"discoveryUrls":["opc.tcp://localhost:4840/"]}}}')


def test_detailed_vector():
    text = """
opcuaDiscoveryMethod:
  standard:
    discoveryUrls:
    - opc.tcp://127.0.0.1:4855/
applicationNames:
  action: Include
  items:
  - "Some application name"
"""
    assert canonical(text) == (
        '{"opcuaDiscoveryMethod":{"standard":{"discoveryUrls":["opc.tcp://127.0.0.1:4855/"]}},'
        '"applicationNames":{"items":["Some application name"],"action":"Include"}}')


def test_null_standard_and_null_urls_mean_the_defaults():
    assert parse_details("opcuaDiscoveryMethod:\n  standard:\n").discovery_urls == (DEFAULT_DISCOVERY_URL,)
    assert parse_details("opcuaDiscoveryMethod: {standard: {discoveryUrls: null}}").discovery_urls == (
        DEFAULT_DISCOVERY_URL,)


def test_urls_keep_their_order_and_filter_is_parsed():
    details = parse_details(
        "opcuaDiscoveryMethod: {standard: {discoveryUrls: [opc.tcp://b:1/x, 'opc.tcp://[::1]:4840/']}}\n"
        "applicationNames: {action: Exclude, items: [Pump]}\n")
    assert details.discovery_urls == ("opc.tcp://b:1/x", "opc.tcp://[::1]:4840/")
    assert details.application_names is not None
    assert details.application_names.items == ("Pump",)
    assert details.application_names.action is FilterAction.EXCLUDE


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("", "opcuaDiscoveryMethod", "required"),
        ("applicationNames: {items: []}", "opcuaDiscoveryMethod", "required"),
        ("opcuaDiscoveryMethod: standard", "opcuaDiscoveryMethod", "single key 'standard'"),
        ("opcuaDiscoveryMethod: {}", "opcuaDiscoveryMethod", "standard"),
        ("opcuaDiscoveryMethod: {scan: {}}", "opcuaDiscoveryMethod.scan", "unknown key"),
        ("opcuaDiscoveryMethod: {standard: {}, scan: {}}", "opcuaDiscoveryMethod.scan", "unknown key"),
        ("opcuaDiscoveryMethod: {standard: [a]}", "opcuaDiscoveryMethod.standard", "must be an object"),
        ("opcuaDiscoveryMethod: {standard: {discoveryUrl: [opc.tcp://a:1/]}}",
         "opcuaDiscoveryMethod.standard.discoveryUrl", "unknown key"),
        ("opcuaDiscoveryMethod: {standard: {}}\napplicationName: {items: []}", "applicationName",
         "unknown key"),
        ("opcuaDiscoveryMethod: {standard: {discoveryUrls: opc.tcp://a:1/}}", URLS, "must be a list"),
        ("opcuaDiscoveryMethod: {standard: {discoveryUrls: []}}", URLS, "is empty"),
        ("opcuaDiscoveryMethod: {standard: {discoveryUrls: [opc.tcp://a:1/, 7]}}", f"{URLS}[1]",
         "must be a string"),
        ("opcuaDiscoveryMethod: {standard: {discoveryUrls: [opc.tcp://a:1/, 'tcp://127.0.0.1:4855/']}}",
         f"{URLS}[1]", "opc.tcp://"),
        ("opcuaDiscoveryMethod: {standard: {discoveryUrls: ['http://a:4840/']}}", f"{URLS}[0]", "opc.tcp://"),
        ("opcuaDiscoveryMethod: {standard: {discoveryUrls: ['opc.tcp://localhost/']}}", f"{URLS}[0]",
         "port explicitly"),
        ("opcuaDiscoveryMethod: {standard: {discoveryUrls: ['opc.tcp://a:99999/']}}", f"{URLS}[0]",
         "invalid port"),
        ("opcuaDiscoveryMethod: {standard: {discoveryUrls: ['opc.tcp://:4840/']}}", f"{URLS}[0]", "no host"),
        ("opcuaDiscoveryMethod: {standard: {}}\napplicationNames: {items: [1]}", "applicationNames.items[0]",
         "must be a string"),
        ("opcuaDiscoveryMethod: {standard: {}}\napplicationNames: {action: Maybe, items: []}",
         "applicationNames.action", "Include"),
        ("opcuaDiscoveryMethod: [", "discoveryDetails", "not valid YAML"),
    ],
)
def test_errors_name_the_field(text, field, words):
    with pytest.raises(InvalidDetails) as err:
        parse_details(text)
    assert err.value.field == field
    assert words in err.value.message


def test_admission_reports_the_details_path():
    config = {
        "apiVersion": "akri.sh/v0",
        "kind": "Configuration",
        "metadata": {"name": "opcua"},
        "spec": {
            "discoveryHandler": {
                "name": "opcua",
                "discoveryDetails": "opcuaDiscoveryMethod:\n  standard:\n    discoveryUrls: [opc.tcp://a/]\n",
            },
            "capacity": 1,
        },
    }
    errors = validate_configuration(config)
    assert [e.path for e in errors] == [
        "spec.discoveryHandler.discoveryDetails.opcuaDiscoveryMethod.standard.discoveryUrls[0]"]
    assert "port" in errors[0].message
