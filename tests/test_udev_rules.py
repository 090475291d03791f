"""udev rule grammar and discovery details (spec §5.3): upstream's corpus and our positions."""

from __future__ import annotations

import pytest

from akri.discovery.handler import InvalidDetails
from akri.discovery.handlers.udev import UdevHandler
from akri.discovery.handlers.udev.handler import parse_details, parse_options
from akri.discovery.handlers.udev.rules import RuleError, parse_rule

# upstream discovery-handlers/udev/test/example.rules: expected filter count, then the rule
EXAMPLE_RULES = """\
1 SUBSYSTEM=="video4linux"
2 KERNEL=="video*", ENV{ID_SERIAL}=="?*"
3 ENV{ID_PATH}=="?*", KERNEL=="video*|vbi*", DRIVER=="some driver"
2 TAG=="uaccess",ENV{MAJOR}!=""
2 KERNEL=="video[0-9]", DEVPATH!="/sys/path/to/device"
2 ATTR{idProduct}=="1900", ENV{ID_MM_ERICSSON_MBM}=="1"
2 ATTR{idVendor}=="0bdd", ENV{a name}=="Keyboard that has a mouse"
2 KERNEL=="video[0-9]*", ENV{ID_V4L_CAPABILITIES}==":capture:"
1 SUBSYSTEMS=="pci"
2 ATTRS{idVendor}=="0bdd", DRIVERS!="a driver"
1 TAGS=="uaccess"
1 KERNELS=="card[0-9]*"
"""

# upstream discovery-handlers/udev/test/example-unsupported.rules: every line must fail
EXAMPLE_UNSUPPORTED = r"""RUN{builtin}+="uaccess"
LABEL="some label"
GOTO="end"
IMPORT{program}="v4l_id $devnode"
OPTIONS="some options"
OWNER="owner"
GROUP="group"
MODE="mode"
WAIT_FOR="queue/read_q"
ACTION=="this action"
NAME=="another_disk"
SYMLINK+="v4l/by-id/$env{ID_BUS}-$env{ID_SERIAL}-video-index$attr{index}"
TEST{key}=="value
PROGRAM=="some program"
RESULT=="some result"
CONST{key}=="value"
SECLABEL{key}=="value
SYSCTL{key}=="value"
TAG-="uaccess"
TAG+="uaccess"
TAG="uaccess"
TAG:="uaccess"
"""


@pytest.mark.parametrize("line", EXAMPLE_RULES.splitlines())
def test_upstream_example_rules_parse_to_the_expected_filter_count(line: str) -> None:
    count, rule = line.split(" ", 1)
    assert len(parse_rule(rule).filters) == int(count)


@pytest.mark.parametrize("rule", EXAMPLE_UNSUPPORTED.splitlines())
def test_upstream_unsupported_rules_are_rejected(rule: str) -> None:
    with pytest.raises(RuleError):
        parse_rule(rule)


def test_parse_vector_from_the_spec() -> None:
    rule = parse_rule('KERNEL=="video[0-9]*",SUBSYSTEM=="video4linux", ATTR{idVendor}=="05a9"')
    assert [(f.field, f.key, f.op, f.value) for f in rule.filters] == [
        ("KERNEL", None, "==", "video[0-9]*"),
        ("SUBSYSTEM", None, "==", "video4linux"),
        ("ATTR", "idVendor", "==", "05a9"),
    ]


@pytest.mark.parametrize(
    ("rule", "message", "column"),
    [
        ('ACTION=="add"', "unsupported field ACTION", 1),
        ('KERNEL=="video0", ACTION=="add"', "unsupported field ACTION", 19),
        ('RUN{builtin}+="uaccess"', "unsupported field RUN", 1),
        ('TYPO=="x"', "unknown field 'TYPO'", 1),
        ('TAG+="uaccess"', "unsupported operator '+='", 4),
        ('KERNEL="video0"', "unsupported operator '='", 7),
        ('SUBSYSTEM:="net"', "unsupported operator ':='", 10),
        ('KERNEL=="video0', "unterminated value of KERNEL", 9),
        ('KERNEL==video0', "expected '\"' to start the value of KERNEL", 9),
        ("KERNEL", "expected an operator", 7),
        ('ATTR=="1"', "ATTR needs a {key}", 5),
        ('ENV{}=="1"', "ENV needs a non-empty {key}", 4),
        ('KERNEL{x}=="1"', "KERNEL takes no {key}", 7),
        ('ATTRS{idVendor=="1"', "unterminated '{' after ATTRS", 6),
        ('ATTR{$kernel}=="1"', "substitutions", 6),
        ('ATTR{[net]address}=="1"', "[subsystem/kernel]attribute", 6),
        ('ENV{ID}==e"x"', "unsupported value prefix", 10),
        ('KERNEL=="a", KERNEL=="video[0-9"', "unterminated '['", 28),
        ('KERNEL=="x*|y\\"', "pattern ends in a backslash", 14),  # a glob value: '\' escapes
        ('ATTR{a}=="[[:digits:]]"', "unknown character class '[:digits:]'", 12),
    ],
)
def test_errors_name_the_problem_and_its_column(rule: str, message: str, column: int) -> None:
    with pytest.raises(RuleError) as info:
        parse_rule(rule)
    assert message in info.value.message
    assert info.value.column == column
    assert str(info.value).endswith(f"at column {column}")


def test_plain_values_with_a_backslash_are_literal_not_invalid() -> None:
    # no *?[ anywhere in the value: udev compares it with strcmp, backslash and all
    assert parse_rule('KERNEL=="a\\"').filters[0].value == "a\\"


@pytest.mark.parametrize(
    ("rule", "count"),
    [
        ("", 0),  # matches every device
        ("   ", 0),
        ('KERNEL=="a" SUBSYSTEM=="b"', 2),  # upstream silently dropped the second filter
        ('KERNEL=="a"SUBSYSTEM=="b"', 2),  # udev accepts this too (a style warning)
        ('KERNEL == "a" ,  SUBSYSTEM  !=  "b"', 2),
        ('KERNEL=="a",,SUBSYSTEM=="b",', 2),
        ('\tKERNEL=="a",\nSUBSYSTEM=="b"', 2),
        ('ENV{a name}=="x", ATTRS{device/vendor}=="0x8086"', 2),
        ('ATTR{[net/lo]address}=="00:00:00:00:00:00"', 1),
        ('KERNEL=="a,b#!@\'()=%{}"', 1),  # any character but '"' inside the quotes
    ],
)
def test_filters_are_separated_as_udev_separates_them(rule: str, count: int) -> None:
    assert len(parse_rule(rule).filters) == count


def test_subsystem_attribute_reference_is_parsed() -> None:
    rule = parse_rule('ATTRS{[pci/0000:00:03.0]vendor}=="0x1af4"')
    ref = rule.ancestor_tokens[0].subsystem_attribute
    assert ref is not None
    assert (ref.subsystem, ref.sysname, ref.attribute) == ("pci", "0000:00:03.0", "vendor")
    assert rule.referenced_devices == (ref,)


def test_rules_that_match_nothing_are_not_errors() -> None:
    parse_rule('KERNEL=="no-such-device-*", ATTR{no_such_attribute}=="x"')


# --- discovery details --------------------------------------------------------------------


def test_details_defaults_and_canonical_form() -> None:
    details = parse_details("udevRules: []")
    assert details.to_dict() == {"udevRules": [], "groupRecursive": False, "permissions": "rwm"}
    details = parse_details('udevRules: [\'KERNEL=="video[0-9]*"\']\ngroupRecursive: true\npermissions: rw\n')
    assert details.to_dict() == {"udevRules": ['KERNEL=="video[0-9]*"'], "groupRecursive": True,
                                 "permissions": "rw"}
    assert len(details.rules) == 1


@pytest.mark.parametrize("permissions", ["r", "w", "m", "rw", "rm", "rwm", "wm"])
def test_permission_whitelist(permissions: str) -> None:
    assert parse_details(f"udevRules: []\npermissions: {permissions}").permissions == permissions


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("", "udevRules"),
        ('{"udev_rules": [], "permissions": "rw"}', "udevRules"),
        ("udevRules: KERNEL", "udevRules"),
        ("udevRules: [1]", "udevRules[0]"),
        ('udevRules: [\'KERNEL=="a"\', \'KERNEL=="b"\', \'ACTION=="add"\']', "udevRules[2]"),
        ("udevRules: []\npermissions: wr", "permissions"),
        ("udevRules: []\npermissions: mwr", "permissions"),
        ("udevRules: []\npermissions: rwx", "permissions"),
        ("udevRules: []\ngroupRecursive: 'yes'", "groupRecursive"),
        ("udevRules: [", "discoveryDetails"),
    ],
)
def test_invalid_details_name_the_field(text: str, field: str) -> None:
    with pytest.raises(InvalidDetails) as info:
        UdevHandler(resync_seconds=1).validate(text)
    assert info.value.field == field


def test_rule_error_message_names_rule_index_and_column() -> None:
    with pytest.raises(InvalidDetails) as info:
        parse_details('udevRules: [\'KERNEL=="a"\', \'KERNEL=="b"\', \'ACTION=="add"\']')
    assert str(info.value) == "udevRules[2]: unsupported field ACTION at column 1"


def test_discovery_properties() -> None:
    assert parse_options({}) == parse_options(None)
    assert parse_options({}).resource_name is None and not parse_options({}).vfio
    opts = parse_options({"devicePluginResourceName": b"  akri.sh/udev-gpu \n", "vfioPassthrough": b"TRUE"})
    assert opts.resource_name == "akri.sh/udev-gpu" and opts.vfio
    assert not parse_options({"vfioPassthrough": b"yes"}).vfio
    assert parse_options({"devicePluginResourceName": b"   "}).resource_name is None
    with pytest.raises(InvalidDetails) as info:
        parse_options({"devicePluginResourceName": b"\xff"})
    assert info.value.field == "discoveryProperties.devicePluginResourceName"


def test_handler_identity() -> None:
    handler = UdevHandler(resync_seconds=1)
    assert handler.name == "udev"
    assert handler.shared is False


async def test_discover_rejects_bad_details_before_any_device() -> None:
    handler = UdevHandler(resync_seconds=1)
    with pytest.raises(InvalidDetails) as info:
        await anext(handler.discover('udevRules: [\'KERNEL=="video[0-9"\']', {}))
    assert info.value.field == "udevRules[0]"
