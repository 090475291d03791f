"""akri.testing.netns: namespaces that keep their traffic to themselves and leave nothing behind."""

from __future__ import annotations

import os
import secrets
import select
import shutil
import socket
import subprocess

import pytest

from akri.testing.netns import NetworkNamespace, joined_pair, uevent_socket

pytestmark = [
    pytest.mark.slow,
    pytest.mark.root,
    pytest.mark.netns,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and iproute2"),
]

GROUP_KERNEL = 1
WAIT = 10.0  # only there so a broken test cannot hang


def namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def test_delete_stops_its_processes_and_removes_the_namespace() -> None:
    with NetworkNamespace("akt-ns") as ns:
        assert ns.name in namespaces()
        sleeper = ns.popen("sleep", "60")
        # the process really runs in the namespace: it sees only the namespace's loopback
        links = subprocess.run(ns.exec_argv("ip", "-o", "link"), capture_output=True, text=True, check=True)
        assert [line.split(":")[1].strip() for line in links.stdout.splitlines()] == ["lo"]
    assert sleeper.poll() is not None
    assert ns.name not in namespaces()
    ns.delete()  # a second delete is harmless


def test_uevent_socket_hears_the_namespace_only() -> None:
    veth = "akn" + secrets.token_hex(4)
    devpath = f"/devices/virtual/net/{veth}".encode()
    with uevent_socket(GROUP_KERNEL) as host, NetworkNamespace("akt-ns") as ns, \
            ns.uevent_socket(GROUP_KERNEL) as inside:
        ns.ip("link", "add", veth, "type", "veth", "peer", "name", veth + "p")
        assert select.select([inside], [], [], WAIT)[0]
        assert inside.recv(1 << 16).startswith(b"add@" + devpath)
        assert veth not in os.listdir("/sys/class/net")
        while select.select([host], [], [], 0.2)[0]:
            assert devpath not in host.recv(1 << 16)


def test_joined_pair_carries_multicast_between_its_namespaces() -> None:
    group, port = "239.255.255.250", 3702
    with joined_pair("akt-a", "akt-b") as net:
        assert {net.a.name, net.b.name} <= namespaces()
        with net.b.inside():
            rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            rx.bind(("", port))
            membership = socket.inet_aton(group) + socket.inet_aton(net.b_address)
            rx.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
        with net.a.inside():
            tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with rx, tx:
            tx.sendto(b"hello", (group, port))  # over the route joined_pair added
            rx.settimeout(WAIT)
            data, source = rx.recvfrom(64)
        assert (data, source[0]) == (b"hello", net.a_address)
        assert net.add_address(7) == net.address(7)
        assert f"{net.address(7)}/24" in net.a.ip("-o", "addr", "show", "dev", net.a_veth)
    assert not {net.a.name, net.b.name} & namespaces()
