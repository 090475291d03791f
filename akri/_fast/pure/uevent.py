"""Parse one NETLINK_KOBJECT_UEVENT datagram into its KEY=VALUE properties.

Two wire formats arrive on that socket:

* kernel (multicast group 1): ``ACTION@DEVPATH\\0KEY=VALUE\\0...KEY=VALUE\\0``;
* libudev (group 2, re-broadcast by systemd-udevd after its rules ran): a 40-byte
  ``struct monitor_netlink_header`` (``"libudev\\0"``, magic 0xfeedcafe in network byte
  order, then header_size, properties_off, properties_len in host byte order, then four
  filter hashes) followed by the same ``KEY=VALUE\\0`` block at properties_off.

The rules below are the contract shared with the compiled twin (akri/_fast/_uevent.pyx);
both produce the same dict or raise ValueError with the same message on every input.

* Every property entry must end with NUL, contain ``=`` and have a non-empty key; an
  empty entry (two NULs in a row) is malformed, as in systemd's parser.
* Like libudev (sd-device ``device_new_from_nulstr``), an entry is cut at its first
  newline: some drivers send values with a stray trailing ``\\n``.
* A repeated key keeps its last value.
* Bytes are decoded as UTF-8 with ``surrogateescape``: sysfs names are bytes, and one odd
  byte must not drop a hotplug event. ``os.fsencode(value)`` gives the original bytes back.
  Text that needs to be valid UTF-8 downstream (protobuf strings) must check for
  surrogates itself.
* The result always has ACTION and DEVPATH. For kernel messages the header fills them in
  when absent and must agree with them when present. libudev messages must carry both.
"""

from __future__ import annotations

import struct

LIBUDEV_PREFIX = b"libudev\x00"
LIBUDEV_MAGIC = 0xFEEDCAFE
LIBUDEV_HEADER_SIZE = 40  # sizeof(struct monitor_netlink_header)

# magic is big-endian; header_size, properties_off and properties_len are host order
_MAGIC = struct.Struct(">I")
_OFFSETS = struct.Struct("=III")


def _entry_repr(entry: bytes) -> str:
    return repr(entry[:64]) + ("..." if len(entry) > 64 else "")


def _parse_properties(block: bytes, props: dict[str, str]) -> None:
    entries = block.split(b"\x00")
    # split() leaves the bytes after the last NUL as the final item: b"" when the block
    # is properly terminated, else an unterminated (probably truncated) entry
    for index, entry in enumerate(entries[:-1]):
        nl = entry.find(b"\n")
        if nl >= 0:
            entry = entry[:nl]
        eq = entry.find(b"=")
        if eq < 0:
            raise ValueError(f"uevent property {index} has no '=': {_entry_repr(entry)}")
        if eq == 0:
            raise ValueError(f"uevent property {index} has an empty key: {_entry_repr(entry)}")
        props[entry[:eq].decode("utf-8", "surrogateescape")] = entry[eq + 1 :].decode(
            "utf-8", "surrogateescape"
        )
    if entries[-1]:
        raise ValueError(
            f"uevent property {len(entries) - 1} is not NUL-terminated (truncated message?): "
            f"{_entry_repr(entries[-1])}"
        )


def _parse_libudev(data: bytes) -> dict[str, str]:
    size = len(data)
    if size < LIBUDEV_HEADER_SIZE:
        raise ValueError(f"libudev uevent header truncated: {size} bytes, need {LIBUDEV_HEADER_SIZE}")
    (magic,) = _MAGIC.unpack_from(data, 8)
    if magic != LIBUDEV_MAGIC:
        raise ValueError(f"libudev uevent has bad magic 0x{magic:08x} (expected 0x{LIBUDEV_MAGIC:08x})")
    header_size, off, length = _OFFSETS.unpack_from(data, 12)
    if header_size < LIBUDEV_HEADER_SIZE:
        raise ValueError(f"libudev uevent header_size {header_size} is below {LIBUDEV_HEADER_SIZE}")
    if off < header_size:
        raise ValueError(f"libudev uevent properties_off {off} lies inside the {header_size}-byte header")
    if off + length > size:
        raise ValueError(
            f"libudev uevent properties (off {off}, len {length}) run past the end of the {size}-byte message"
        )
    props: dict[str, str] = {}
    _parse_properties(data[off : off + length], props)
    for key in ("ACTION", "DEVPATH"):
        if key not in props:
            raise ValueError(f"libudev uevent has no {key} property")
    return props


def _parse_kernel(data: bytes) -> dict[str, str]:
    end = data.find(b"\x00")
    if end < 0:
        raise ValueError("kernel uevent header (ACTION@DEVPATH) is not NUL-terminated")
    header = data[:end]
    at = header.find(b"@")
    if at < 0:
        raise ValueError(f"kernel uevent header has no '@': {_entry_repr(header)}")
    if at == 0:
        raise ValueError(f"kernel uevent header has an empty action: {_entry_repr(header)}")
    if header[at + 1 : at + 2] != b"/":
        raise ValueError(f"kernel uevent header devpath does not start with '/': {_entry_repr(header)}")
    props: dict[str, str] = {}
    _parse_properties(data[end + 1 :], props)
    for key, value in (
        ("ACTION", header[:at].decode("utf-8", "surrogateescape")),
        ("DEVPATH", header[at + 1 :].decode("utf-8", "surrogateescape")),
    ):
        have = props.setdefault(key, value)
        if have != value:
            raise ValueError(f"kernel uevent header says {key} {value!r} but the property says {have!r}")
    return props


def parse_uevent(data: bytes) -> dict[str, str]:
    """Properties of one uevent datagram (kernel or libudev format); ValueError if malformed."""
    if type(data) is not bytes:
        # any bytes-like object (recv_into buffers); memoryview() rejects int and str
        data = memoryview(data).tobytes()
    if not data:
        raise ValueError("empty uevent")
    if data.startswith(LIBUDEV_PREFIX):
        return _parse_libudev(data)
    return _parse_kernel(data)
