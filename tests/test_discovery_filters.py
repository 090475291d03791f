"""FilterList semantics (spec §5.1) with upstream's vectors, and parse errors that name the field."""

from __future__ import annotations

import pytest

from akri.discovery.filters import FilterAction, FilterList, execute_filter, should_include
from akri.discovery.handler import InvalidDetails, load_details

INCLUDE = FilterAction.INCLUDE
EXCLUDE = FilterAction.EXCLUDE


def fl(action: FilterAction, *items: str) -> FilterList:
    return FilterList(tuple(items), action)


# --- should_include: upstream discovery-utils/src/filtering.rs vectors

@pytest.mark.parametrize(
    ("filter_list", "item", "expected"),
    [
        (None, "beep", True),
        (fl(EXCLUDE, "beep", "bop"), "beep", False),
        (fl(EXCLUDE, "beep", "bop"), "boop", True),
        (fl(INCLUDE, "beep", "bop"), "beep", True),
        (fl(INCLUDE, "beep", "bop"), "boop", False),
        (fl(INCLUDE), "beep", False),  # Include [] keeps nothing
        (fl(EXCLUDE), "beep", True),  # Exclude [] keeps everything
    ],
)
def test_should_include(filter_list, item, expected):
    assert should_include(filter_list, item) is expected


# --- execute_filter (ONVIF): True means "filter out"

@pytest.mark.parametrize(
    ("filter_list", "values", "filtered_out"),
    [
        (None, ["10.0.0.1"], False),  # no list: keep
        (None, None, False),
        (fl(EXCLUDE), ["10.0.0.1"], False),  # Exclude []: keep
        (fl(EXCLUDE), None, False),  # ... even when the value is unknown
        (fl(INCLUDE, "10.0.0.1"), None, True),  # unknown value: filtered out
        (fl(EXCLUDE, "10.0.0.1"), None, True),
        (fl(INCLUDE, "10.0.0.1"), ["10.0.0.1"], False),
        (fl(INCLUDE, "10.0.0.2"), ["10.0.0.1"], True),  # Include: out when nothing matches
        (fl(INCLUDE), ["10.0.0.1"], True),
        (fl(EXCLUDE, "10.0.0.1"), ["10.0.0.1"], True),  # Exclude: out when something matches
        (fl(EXCLUDE, "10.0.0.2"), ["10.0.0.1"], False),
        (fl(INCLUDE, "b"), ["a", "b"], False),  # any of several values
    ],
)
def test_execute_filter(filter_list, values, filtered_out):
    assert execute_filter(filter_list, values) is filtered_out


def test_execute_filter_predicate_scopes_and_case():
    # ONVIF scopes: each value is a whitespace-separated scope string; an item matches a token
    scopes = ["onvif://www.onvif.org/name/foo onvif://www.onvif.org/hardware/bar"]
    tokens = lambda value, pattern: pattern in value.split()  # noqa: E731
    assert execute_filter(fl(INCLUDE, "onvif://www.onvif.org/name/foo"), scopes, tokens) is False
    assert execute_filter(fl(INCLUDE, "onvif://www.onvif.org/name"), scopes, tokens) is True
    # IP/MAC: case-insensitive equality
    nocase = lambda value, pattern: value.lower() == pattern.lower()  # noqa: E731
    assert execute_filter(fl(EXCLUDE, "00:12:41:5C:A1:A5"), ["00:12:41:5c:a1:a5"], nocase) is True
    assert execute_filter(fl(EXCLUDE, "00:12:41:5C:A1:A5"), ["00:12:41:5c:a1:a5"]) is False


# --- parsing from discovery details

def test_parse_defaults_and_round_trip():
    details = load_details(
        "ipAddresses:\n  items: [10.0.0.1, 10.0.0.2]\nscopes: {action: Exclude, items: []}\n")
    ips = FilterList.parse_optional(details, "ipAddresses")
    scopes = FilterList.parse_optional(details, "scopes")
    assert ips == FilterList(("10.0.0.1", "10.0.0.2"), INCLUDE)
    assert scopes == FilterList((), EXCLUDE)
    assert FilterList.parse_optional(details, "macAddresses") is None
    assert ips.to_dict() == {"items": ["10.0.0.1", "10.0.0.2"], "action": "Include"}
    assert scopes.to_dict() == {"action": "Exclude"}  # upstream omits empty items


@pytest.mark.parametrize(
    ("value", "field", "words"),
    [
        ("not a mapping", "ipAddresses", "object"),
        ({"action": "Exclude"}, "ipAddresses.items", "required"),
        ({"items": "10.0.0.1"}, "ipAddresses.items", "list"),
        ({"items": ["a", 3]}, "ipAddresses.items[1]", "string"),
        ({"items": [], "action": "exclude"}, "ipAddresses.action", "'Include' or 'Exclude'"),
        ({"items": [], "actoin": "Exclude"}, "ipAddresses.actoin", "unknown key"),
    ],
)
def test_parse_errors_name_the_field(value, field, words):
    with pytest.raises(InvalidDetails) as err:
        FilterList.parse_optional({"ipAddresses": value}, "ipAddresses")
    assert err.value.field == field
    assert words in err.value.message


def test_parse_nested_field_path():
    with pytest.raises(InvalidDetails) as err:
        FilterList.parse_optional({"applicationNames": {"items": [1]}}, "applicationNames", parent="opcua")
    assert err.value.field == "opcua.applicationNames.items[0]"
