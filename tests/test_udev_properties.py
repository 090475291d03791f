"""From matched devices to reported Devices: grouping, numbering, USB/PCI/VFIO (spec §5.3 4-6)."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from akri.discovery.device import DeviceSpec
from akri.discovery.handlers.udev.properties import (
    Member,
    build_device,
    build_devices,
    group_members,
    iommu_group,
    pci_address,
    pci_resource_var,
    usb_address,
    usb_resource_var,
)


def test_grouping_vector_from_the_spec_in_every_insertion_order() -> None:
    members = [Member("/sys/device/parent/child1", "/dev/c1"),
               Member("/sys/device/parent/child1/child2", "/dev/c2"),
               Member("/sys/device/parent", "/dev/p")]
    for order in itertools.permutations(members):
        groups = group_members(order, recursive=True)
        assert list(groups) == ["/sys/device/parent"]
        assert [m.devpath for m in groups["/sys/device/parent"]] == [
            "/sys/device/parent", "/sys/device/parent/child1", "/sys/device/parent/child1/child2"]


def test_grouping_respects_the_path_segment_boundary() -> None:
    # upstream groups parent2 under parent (plain startsWith); it is a sibling
    members = [Member("/sys/device/parent", "/dev/p"), Member("/sys/device/parent2", "/dev/p2"),
               Member("/sys/device/parent/child1", "/dev/c1"), Member("/sys/device/parent-x/y", None)]
    groups = group_members(members, recursive=True)
    assert sorted(groups) == ["/sys/device/parent", "/sys/device/parent-x/y", "/sys/device/parent2"]
    assert len(groups["/sys/device/parent"]) == 2
    assert len(groups["/sys/device/parent2"]) == 1


def test_without_grouping_every_devpath_is_its_own_device() -> None:
    members = [Member("/a", "/dev/a"), Member("/a/b", "/dev/b"), Member("/a/b", "/dev/b")]
    assert {k: len(v) for k, v in group_members(members, recursive=False).items()} == {"/a": 1, "/a/b": 1}


def test_group_properties_are_numbered_by_sorted_devpath() -> None:
    members = [Member("/devices/x/usb1/1-1/c", "/dev/bus/usb/001/010"),
               Member("/devices/x/usb1/1-1", "/dev/bus/usb/001/002"),
               Member("/devices/x/usb1/1-1/b", None)]
    expected = {
        "UDEV_DEVPATH": "/devices/x/usb1/1-1",
        "UDEV_DEVNODE_0": "/dev/bus/usb/001/002",
        "USB_RESOURCE_AKRI_SH_UDEV-USB-KEYBOARD_0": "1:2",
        # member 1 (.../b) has no node: no property, its number is not reused
        "UDEV_DEVNODE_2": "/dev/bus/usb/001/010",
        "USB_RESOURCE_AKRI_SH_UDEV-USB-KEYBOARD_2": "1:10",
    }
    for order in itertools.permutations(members):
        [device] = build_devices(order, group_recursive=True, resource_name="akri.sh/udev-usb-keyboard",
                                 permissions="rw")
        assert dict(device.properties) == expected
        assert device.id == "/devices/x/usb1/1-1"
        assert device.device_specs == (DeviceSpec("/dev/bus/usb/001/002", "/dev/bus/usb/001/002", "rw"),
                                       DeviceSpec("/dev/bus/usb/001/010", "/dev/bus/usb/001/010", "rw"))
        assert device.mounts == ()


def test_ungrouped_device_properties() -> None:
    devices = build_devices([Member("/devices/virtual/mem/null", "/dev/null"),
                             Member("/devices/virtual/net/lo", None)])
    assert [d.id for d in devices] == ["/devices/virtual/mem/null", "/devices/virtual/net/lo"]
    null, lo = devices
    assert dict(null.properties) == {"UDEV_DEVPATH": "/devices/virtual/mem/null", "UDEV_DEVNODE": "/dev/null"}
    assert null.device_specs == (DeviceSpec("/dev/null", "/dev/null", "rwm"),)
    assert dict(lo.properties) == {"UDEV_DEVPATH": "/devices/virtual/net/lo"}
    assert lo.device_specs == ()


@pytest.mark.parametrize(
    ("name", "usb", "pci"),
    [
        ("akri.sh/udev-usb-keyboard", "USB_RESOURCE_AKRI_SH_UDEV-USB-KEYBOARD",
         "PCI_RESOURCE_AKRI_SH_UDEV-USB-KEYBOARD"),
        ("vendor.io/device", "USB_RESOURCE_VENDOR_IO_DEVICE", "PCI_RESOURCE_VENDOR_IO_DEVICE"),
        ("example.com/my-gpu", "USB_RESOURCE_EXAMPLE_COM_MY-GPU", "PCI_RESOURCE_EXAMPLE_COM_MY-GPU"),
    ],
)
def test_resource_variable_names(name: str, usb: str, pci: str) -> None:
    assert usb_resource_var(name) == usb
    assert pci_resource_var(name) == pci


@pytest.mark.parametrize(
    ("devnode", "address"),
    [("/dev/bus/usb/001/010", "1:10"), ("/dev/bus/usb/002/005", "2:5"), ("/dev/bus/usb/1/5", "1:5"),
     ("/dev/bus/usb/003/127", "3:127"), ("/dev/video0", None), ("/dev/bus/usb/", None),
     ("/dev/bus/usb/abc/def", None), ("", None), ("/dev/ttyUSB0", None)],
)
def test_usb_addresses(devnode: str, address: str | None) -> None:
    assert usb_address(devnode) == address


@pytest.mark.parametrize(
    ("path", "address"),
    [("/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0", "0000:01:00.0"),
     ("/sys/devices/pci0000:00/0000:03:00.0", "0000:03:00.0"),
     ("/devices/pci0000:00/0000:00:03.0/virtio2/net/eth0", "0000:00:03.0"),
     ("/dev/bus/usb/001/010", None), ("/dev/video0", None), ("/devices/pci0000:00", None)],
)
def test_pci_addresses(path: str, address: str | None) -> None:
    assert pci_address(path) == address


def _fake_sysfs(root: Path, pci_path: str, group: str) -> None:
    device = root / pci_path.lstrip("/")
    device.mkdir(parents=True)
    (root / "kernel" / "iommu_groups" / group).mkdir(parents=True)
    os.symlink(f"../../../../kernel/iommu_groups/{group}", device / "iommu_group")


def test_pci_resource_and_vfio_nodes(tmp_path: Path) -> None:
    pci = "/devices/pci0000:00/0000:00:01.0/0000:01:00.0"
    _fake_sysfs(tmp_path, pci, "17")
    assert iommu_group(pci, sysfs_root=str(tmp_path)) == "17"
    for device_id in (pci, pci + "/drm/card0"):  # the GPU itself, or a device below it
        device = build_device(device_id, [Member(device_id, "/dev/dri/card0")], grouped=False,
                              resource_name="vendor.io/device", vfio=True, sysfs_root=str(tmp_path))
        assert device.properties["PCI_RESOURCE_VENDOR_IO_DEVICE"] == "0000:01:00.0"
        assert device.device_specs == (
            DeviceSpec("/dev/dri/card0", "/dev/dri/card0", "rwm"),
            DeviceSpec("/dev/vfio/17", "/dev/vfio/17", "rwm"),
            DeviceSpec("/dev/vfio/vfio", "/dev/vfio/vfio", "rwm"),
        )


def test_no_vfio_without_the_property_or_without_an_iommu_group(tmp_path: Path) -> None:
    pci = "/devices/pci0000:00/0000:02:00.0"
    (tmp_path / pci.lstrip("/")).mkdir(parents=True)
    off = build_device(pci, [Member(pci, None)], grouped=False, vfio=False, sysfs_root=str(tmp_path))
    no_group = build_device(pci, [Member(pci, None)], grouped=False, vfio=True, sysfs_root=str(tmp_path))
    assert off.device_specs == () and no_group.device_specs == ()
    assert not any(k.startswith("PCI_RESOURCE") for k in off.properties)  # no resource name given


def test_usb_devices_behind_pci_get_no_pci_resource() -> None:
    usb = "/devices/pci0000:00/0000:00:14.0/usb1/1-1"
    device = build_device(usb, [Member(usb, "/dev/bus/usb/001/002")], grouped=False, resource_name="a.b/c")
    assert device.properties == {"UDEV_DEVPATH": usb, "UDEV_DEVNODE": "/dev/bus/usb/001/002",
                                 "USB_RESOURCE_A_B_C": "1:2"}

