"""parse_uevent on a uevent the kernel sends right now (not a stored fixture)."""

from __future__ import annotations

import os
import select
import socket
import time
import uuid
from pathlib import Path

import pytest

from akri._fast import pure

try:
    from akri._fast import _uevent as compiled
except ImportError:
    compiled = None

pytestmark = [
    pytest.mark.slow,
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: writes /sys/class/net/lo/uevent"),
]

NETLINK_KOBJECT_UEVENT = 15
GROUP_KERNEL = 1
LO_UEVENT = Path("/sys/class/net/lo/uevent")


def test_live_kernel_uevent_parses_identically_in_both_twins() -> None:
    tag = str(uuid.uuid4())
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_KOBJECT_UEVENT) as sock:
        sock.bind((0, GROUP_KERNEL))
        # a synthetic change event carrying our UUID and an argument, so we can pick it out
        LO_UEVENT.write_text(f"change {tag} AKRILIVE=yes")
        deadline = time.monotonic() + 10
        data = None
        while data is None and time.monotonic() < deadline:
            if select.select([sock], [], [], 0.5)[0]:
                msg = sock.recv(1 << 16)
                if tag.encode() in msg:
                    data = msg
    assert data is not None, "the kernel did not deliver the synthetic uevent within 10 s"
    props = pure.parse_uevent(data)
    assert props["ACTION"] == "change"
    assert props["DEVPATH"] == "/devices/virtual/net/lo"
    assert props["SUBSYSTEM"] == "net"
    assert props["SYNTH_UUID"] == tag
    assert props["SYNTH_ARG_AKRILIVE"] == "yes"
    if compiled is not None:
        assert list(compiled.parse_uevent(data).items()) == list(props.items())
