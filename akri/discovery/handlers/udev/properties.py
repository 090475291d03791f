"""From matched devices to the Devices Akri reports (spec §5.3 steps 4-6).

A matched device is reported by its own devpath and device node; a device without a node
(a USB interface, a network interface) by its nearest ancestor that has one ("member").
Members become one Device each, or, with ``groupRecursive``, one Device per top-most member
with every member below it. Unlike upstream, "below" means a path-segment boundary
(``/sys/device/parent2`` is not below ``/sys/device/parent``) and member numbering follows the
sorted devpaths, so the same devices always produce the same properties.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import NamedTuple

from akri.discovery.device import Device, DeviceSpec

UDEV_DEVPATH = "UDEV_DEVPATH"
UDEV_DEVNODE = "UDEV_DEVNODE"
USB_RESOURCE_PREFIX = "USB_RESOURCE"
PCI_RESOURCE_PREFIX = "PCI_RESOURCE"
VFIO_CONTAINER = "/dev/vfio/vfio"
VFIO_PERMISSIONS = "rwm"

# Accepted `permissions` values: upstream's list (note: "wr", "mr", "mwr" are refused).
PERMISSIONS = ("r", "w", "m", "rw", "rm", "rwm", "wm")
DEFAULT_PERMISSIONS = "rwm"

_HEX = re.compile(r"[0-9A-Fa-f]+")


class Member(NamedTuple):
    """A reported device: its devpath and its device node (None when no ancestor has one)."""

    devpath: str
    devnode: str | None


def resource_suffix(resource_name: str) -> str:
    """`akri.sh/udev-usb-keyboard` -> `AKRI_SH_UDEV-USB-KEYBOARD` (upstream's env-var form)."""
    return "".join("_" if c in "./" else c.upper() if c.isascii() else c for c in resource_name)


def usb_resource_var(resource_name: str) -> str:
    return f"{USB_RESOURCE_PREFIX}_{resource_suffix(resource_name)}"


def pci_resource_var(resource_name: str) -> str:
    return f"{PCI_RESOURCE_PREFIX}_{resource_suffix(resource_name)}"


def usb_address(devnode: str) -> str | None:
    """`/dev/bus/usb/001/010` -> `1:10` (bus:device without leading zeros), else None."""
    if not devnode.startswith("/dev/bus/usb/"):
        return None
    parts = devnode.split("/")
    bus, dev = parts[-2], parts[-1]
    if not (bus.isdigit() and dev.isdigit() and bus.isascii() and dev.isascii()):
        return None
    bus_n, dev_n = int(bus), int(dev)
    if bus_n >= 2**32 or dev_n >= 2**32:  # upstream parses u32
        return None
    return f"{bus_n}:{dev_n}"


def is_pci_address(segment: str) -> bool:
    """`dddd:bb:ss.f` with hex fields of any non-zero length (upstream's test)."""
    parts = segment.split(":", 2)
    if len(parts) != 3:
        return False
    slot_func = parts[2].split(".", 1)
    if len(slot_func) != 2:
        return False
    return all(_HEX.fullmatch(p) for p in (parts[0], parts[1], slot_func[0], slot_func[1]))


def pci_address(path: str) -> str | None:
    """The last PCI-address segment of a sysfs path, e.g. `0000:01:00.0`."""
    found = [s for s in path.split("/") if is_pci_address(s)]
    return found[-1] if found else None


def pci_device_path(path: str) -> str | None:
    """The path up to and including its last PCI-address segment (the PCI function's path)."""
    segments = path.split("/")
    for i in range(len(segments) - 1, -1, -1):
        if is_pci_address(segments[i]):
            return "/".join(segments[: i + 1])
    return None


def has_usb_segment(path: str) -> bool:
    return any(s.startswith("usb") for s in path.split("/"))


def iommu_group(devpath: str, *, sysfs_root: str = "/sys") -> str | None:
    """The IOMMU group number of the PCI device at `devpath` (basename of its iommu_group link)."""
    try:
        target = os.readlink(f"{sysfs_root}{devpath}/iommu_group")
    except OSError:
        return None
    return os.path.basename(target.rstrip("/")) or None


def group_members(members: Iterable[Member], *, recursive: bool) -> dict[str, list[Member]]:
    """Map each reported id (a devpath) to its members, each list sorted by devpath.

    Not recursive: one group per distinct devpath. Recursive: a member whose devpath lies
    below another member's devpath (at a '/' boundary) joins that top-most member's group.
    """
    unique = sorted(set(members))
    groups: dict[str, list[Member]] = {}
    if not recursive:
        for m in unique:
            groups.setdefault(m.devpath, []).append(m)
        return groups
    roots: set[str] = set()
    for m in unique:  # sorted: an ancestor path sorts before the paths below it
        root = m.devpath
        cut = m.devpath.rfind("/")
        while cut > 0:
            prefix = m.devpath[:cut]
            if prefix in roots:
                root = prefix  # keep going: a higher root wins
            cut = m.devpath.rfind("/", 0, cut)
        if root == m.devpath:
            roots.add(root)
        groups.setdefault(root, []).append(m)
    return groups


def build_device(
    device_id: str,
    members: list[Member],
    *,
    grouped: bool,
    permissions: str = DEFAULT_PERMISSIONS,
    resource_name: str | None = None,
    vfio: bool = False,
    sysfs_root: str = "/sys",
) -> Device:
    """One Device: properties, device specs for every node and, if asked, VFIO nodes."""
    properties: dict[str, str] = {}
    specs: list[DeviceSpec] = []
    usb_var = usb_resource_var(resource_name) if resource_name else None
    for i, member in enumerate(sorted(members)):
        suffix = f"_{i}" if grouped else ""
        node = member.devnode
        if not node:
            continue
        properties[UDEV_DEVNODE + suffix] = node
        specs.append(DeviceSpec(node, node, permissions))
        if usb_var:
            address = usb_address(node)
            if address:
                properties[usb_var + suffix] = address
    properties[UDEV_DEVPATH] = device_id
    pci_path = None if has_usb_segment(device_id) else pci_device_path(device_id)
    if resource_name and pci_path:
        properties[pci_resource_var(resource_name)] = pci_path.rsplit("/", 1)[-1]
    if vfio and pci_path:
        group = iommu_group(pci_path, sysfs_root=sysfs_root)
        if group is not None:
            specs.append(DeviceSpec(f"/dev/vfio/{group}", f"/dev/vfio/{group}", VFIO_PERMISSIONS))
            specs.append(DeviceSpec(VFIO_CONTAINER, VFIO_CONTAINER, VFIO_PERMISSIONS))
    unique_specs = tuple(dict.fromkeys(specs))
    return Device(id=device_id, properties=properties, device_specs=unique_specs)


def build_devices(
    members: Iterable[Member],
    *,
    group_recursive: bool = False,
    permissions: str = DEFAULT_PERMISSIONS,
    resource_name: str | None = None,
    vfio: bool = False,
    sysfs_root: str = "/sys",
) -> list[Device]:
    """The complete device list for a set of members, sorted by id."""
    groups = group_members(members, recursive=group_recursive)
    return [
        build_device(key, groups[key], grouped=group_recursive, permissions=permissions,
                     resource_name=resource_name, vfio=vfio, sysfs_root=sysfs_root)
        for key in sorted(groups)
    ]
