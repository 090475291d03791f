"""With a real systemd-udevd: rule-made properties and tags, and udevd itself as the oracle.

systemd-udevd runs as a child of the test (see conftest). Its rules give veth devices named
akt* the properties and tag a USB camera would get from hwdb/v4l rules, so the handler must
read events from the udev source (the kernel's events come before udevd wrote them).

The oracle: for every row of a table of filters, a rules file makes udevd itself set
ENV{AKRI_ORACLE_<n>}="1" when the row matches a test device. Our matcher must agree with
udevd on every row, and both with the answer derived by hand from udev-rules.c.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import pyudev

from akri.discovery.handlers.udev import UdevHandler
from akri.discovery.handlers.udev.matcher import DeviceCache, rule_matches
from akri.discovery.handlers.udev.rules import parse_rule

pytestmark = [pytest.mark.slow, pytest.mark.root, pytest.mark.udevd]

FAKE_CAMERA_RULES = (
    'SUBSYSTEM=="net", ACTION=="add", KERNEL=="akt*", ENV{ID_MODEL}="FakeCam", '
    'ENV{ID_VENDOR_ID}="1d6b", ENV{ID_V4L_CAPABILITIES}=":capture:", TAG+="akri"\n'
)

MAC = "02:00:00:00:0a:01"

# (filter, does it hold on the oracle device?) - by hand from udev-rules.c. The device is a
# veth named akto<hex>a: subsystem net, no driver, no parent, mtu 1500, address MAC.
ORACLE_ROWS = [
    ('KERNEL=="akto*"', True),
    ('KERNEL!="akto*"', False),
    ('KERNEL=="x|akto*"', True),
    ('KERNEL!="x|akto*"', False),
    ('KERNEL!="x|y"', True),
    ('KERNEL=="x|"', False),
    ('KERNEL==""', False),
    ('KERNEL!=""', True),
    ('KERNEL=="?*"', True),
    ('KERNEL!="?*"', False),
    ('KERNEL=="*"', True),
    ('KERNEL=="akto[0-9a-f]*"', True),
    ('KERNEL=="akto[!0-9a-f]*"', False),
    ('KERNEL=="akto[^0-9a-f]*"', False),
    ('KERNEL=="AKTO*"', False),
    ('ATTR{mtu}=="1500"', True),
    ('ATTR{mtu}=="1500 "', False),
    ('ATTR{mtu}!="1500"', False),
    ('ATTR{mtu}=="1[0-9][0-9][0-9]|9000"', True),
    ('ATTR{mtu}=="?*"', True),
    ('ATTR{no_such_attribute}!="x"', False),
    ('ATTR{no_such_attribute}==""', False),
    (f'ATTR{{address}}=="{MAC[:9]}*|x"', True),
    ('ENV{AKRI_NO_SUCH}==""', True),
    ('ENV{AKRI_NO_SUCH}!=""', False),
    ('ENV{INTERFACE}=="akto*"', True),
    ('DRIVER==""', True),
    ('DRIVER!="veth"', True),
    ('SUBSYSTEM=="net|block"', True),
    ('SUBSYSTEM!="net"', False),
    ('SUBSYSTEM=="subsystem"', False),
    ('SUBSYSTEMS=="net", KERNELS=="akto*", ATTRS{mtu}=="1500"', True),
    ('SUBSYSTEMS=="pci"', False),
    ('KERNELS!="akto*"', False),
    ('DEVPATH=="/devices/virtual/net/akto*"', True),
    ('DEVPATH!="*/lo"', True),
]


def rules(*rules: str) -> str:
    return "udevRules:\n" + "".join(f"- '{r}'\n" for r in rules)


async def test_rule_made_properties_and_tags_are_matched(udevd, veth, open_stream: Callable) -> None:
    udevd.install_rules("90-akri-test.rules", FAKE_CAMERA_RULES)
    prefix = veth.new_prefix()
    handler = UdevHandler(resync_seconds=3600)
    rule = rules(f'SUBSYSTEM=="net", KERNEL=="{prefix}*", ENV{{ID_MODEL}}=="FakeCam", TAG=="akri"')
    stream = open_stream(handler.discover(rule, {}))
    assert await stream.next() == []
    assert handler.source_in_use == "udev"
    a, b = f"/devices/virtual/net/{prefix}a", f"/devices/virtual/net/{prefix}b"
    veth.add(f"{prefix}a", f"{prefix}b")
    await stream.until(lambda ids: ids == {a, b})
    veth.delete(f"{prefix}a")
    await stream.until(lambda ids: not ids)
    assert handler.rescans == 0


async def test_ancestor_filters_with_udev_events(udevd, veth, open_stream: Callable) -> None:
    udevd.install_rules("90-akri-test.rules", FAKE_CAMERA_RULES)
    prefix = veth.new_prefix()
    rule = rules(f'KERNEL=="{prefix}?", ATTRS{{address}}=="{MAC}", ENV{{ID_VENDOR_ID}}=="1d6b"')
    stream = open_stream(UdevHandler(resync_seconds=3600).discover(rule, {}))
    assert await stream.next() == []
    veth.add(f"{prefix}a", f"{prefix}b", address=MAC)  # only the "a" end has this address
    devices = await stream.until(bool)
    assert [d.id for d in devices] == [f"/devices/virtual/net/{prefix}a"]


def test_matcher_agrees_with_udevd_on_every_row(udevd, veth) -> None:
    lines = "".join(
        f'ACTION=="add", SUBSYSTEM=="net", KERNEL=="akto*", {row}, ENV{{AKRI_ORACLE_{i}}}="1"\n'
        for i, (row, _) in enumerate(ORACLE_ROWS)
    )
    udevd.install_rules("00-akri-oracle.rules", lines)  # first: before other rules add anything
    name = "akto" + veth.new_prefix()[3:] + "a"
    veth.add(name, name[:-1] + "b", address=MAC)
    udevd.settle()
    context = pyudev.Context()
    device = pyudev.Devices.from_name(context, "net", name)
    assert device.is_initialized
    udevd_says = [device.properties.get(f"AKRI_ORACLE_{i}") == "1" for i in range(len(ORACLE_ROWS))]
    cache = DeviceCache(context)
    ours = [rule_matches(parse_rule(row), cache.wrap(device), cache) for row, _ in ORACLE_ROWS]
    by_hand = [expected for _, expected in ORACLE_ROWS]
    rows = [row for row, _ in ORACLE_ROWS]
    assert list(zip(rows, udevd_says, strict=True)) == list(zip(rows, by_hand, strict=True))
    assert list(zip(rows, ours, strict=True)) == list(zip(rows, udevd_says, strict=True))
