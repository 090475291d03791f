"""Network namespaces of your own, for tests that send multicast or uevents: nothing outside
the namespace sees the traffic, and nothing outside reaches in.

    with NetworkNamespace("akri-mytest") as ns:
        ns.link_up("lo")
        sock = ns.uevent_socket(2)            # a netlink socket that lives in the namespace
        with ns.inside():                     # this thread only, switched back on exit
            monitor = make_a_socket_here()
        subprocess.run(ns.exec_argv("python", "-c", "..."))
        server = ns.popen("python", "-m", "http.server")   # stopped by delete()

    with joined_pair("akcam", "akagt") as net:   # two namespaces joined by a veth pair
        # net.a at net.a_address (10.250.<subnet>.1), net.b at net.b_address (.2); each has
        # lo up and a multicast route over the veth, so WS-Discovery works between them
        net.a.popen("python", "-m", "akri.testing.onvif_camera", "--host", net.a_address)

Needs root and iproute2 (`ip`). Names are `<prefix>-<8 hex>`; everything is removed by
delete() or at the end of the `with` block.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import secrets
import socket
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

CLONE_NEWNET = 0x40000000
NETLINK_KOBJECT_UEVENT = 15
MULTICAST = "224.0.0.0/4"
_libc: ctypes.CDLL | None = None


class NetnsError(RuntimeError):
    """An `ip` command failed; the message has the command and its stderr."""


def _run(args: list[str], stdin: str | None = None) -> str:
    done = subprocess.run(args, input=stdin, capture_output=True, text=True)
    if done.returncode != 0:
        raise NetnsError(f"{' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def _setns(fd: int, what: str) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)  # os.setns() arrives in Python 3.12
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns {what}: {os.strerror(errno)}")


def uevent_socket(group: int, *, rcvbuf: int = 1 << 22) -> socket.socket:
    """A NETLINK_KOBJECT_UEVENT socket bound to `group` (1: kernel, 2: udev, 0: send only) in
    the calling thread's network namespace; a large receive buffer so bursts are not dropped."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_KOBJECT_UEVENT)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.bind((0, group))
    except OSError:
        sock.close()
        raise
    return sock


class NetworkNamespace:
    """A named network namespace (`ip netns add <prefix>-<8 hex>`), deleted by delete()."""

    def __init__(self, prefix: str = "akri", *, tag: str | None = None) -> None:
        self.name = f"{prefix}-{tag or secrets.token_hex(4)}"
        _run(["ip", "netns", "add", self.name])
        self.processes: list[subprocess.Popen[Any]] = []
        self._deleted = False

    def __repr__(self) -> str:
        return f"NetworkNamespace({self.name!r})"

    def ip(self, *args: str) -> str:
        """`ip -n <name> ARGS...`; its stdout. NetnsError with ip's message when it fails."""
        return _run(["ip", "-n", self.name, *args])

    def ip_batch(self, commands: Iterable[str]) -> None:
        """Many `ip` commands (one per string, without the `ip`) in one process."""
        _run(["ip", "-n", self.name, "-batch", "-"], stdin="\n".join(commands) + "\n")

    def exec_argv(self, *argv: str) -> list[str]:
        """The command line that runs `argv` inside the namespace (`ip netns exec` execs it,
        so the pid of the process started is the program's own)."""
        return ["ip", "netns", "exec", self.name, *argv]

    def popen(self, *argv: str, **options: Any) -> subprocess.Popen[Any]:
        """subprocess.Popen(exec_argv(*argv), **options); delete() stops it."""
        proc = subprocess.Popen(self.exec_argv(*argv), **options)
        self.processes.append(proc)
        return proc

    def stop_processes(self, timeout: float = 5.0) -> None:
        """SIGTERM every process popen() started, SIGKILL after `timeout`; close their pipes."""
        for proc in self.processes:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout)
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()
        self.processes.clear()

    def link_up(self, device: str) -> None:
        self.ip("link", "set", device, "up")

    def route_multicast(self, device: str) -> None:
        """Send multicast out of `device` (the namespace has no default route to do it)."""
        self.ip("route", "add", MULTICAST, "dev", device)

    @contextlib.contextmanager
    def inside(self) -> Iterator[None]:
        """Run the block with the calling thread in the namespace (threads it starts there
        inherit it); sockets made here stay in the namespace after the block."""
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            target = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
            try:
                _setns(target, f"into {self.name}")
            finally:
                os.close(target)
            try:
                yield
            finally:
                _setns(home, "back home")
        finally:
            os.close(home)

    def uevent_socket(self, group: int, *, rcvbuf: int = 1 << 22) -> socket.socket:
        """uevent_socket() made inside the namespace: it sees the namespace's uevents only."""
        with self.inside():
            return uevent_socket(group, rcvbuf=rcvbuf)

    def delete(self) -> None:
        """Stop the processes popen() started, then remove the namespace (idempotent). Other
        processes still inside keep it alive until they end, but it has no name any more."""
        self.stop_processes()
        if self._deleted:
            return
        done = subprocess.run(["ip", "netns", "del", self.name], capture_output=True, text=True)
        if done.returncode != 0 and os.path.exists(f"/run/netns/{self.name}"):
            raise NetnsError(f"ip netns del {self.name}: {done.stderr.strip()}")
        self._deleted = True

    def __enter__(self) -> NetworkNamespace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.delete()


@dataclass
class JoinedPair:
    """Namespaces `a` and `b`, joined by the veth pair `a_veth` <-> `b_veth` in
    10.250.<subnet>.0/24; made by joined_pair()."""

    a: NetworkNamespace
    b: NetworkNamespace
    a_veth: str
    b_veth: str
    subnet: int

    def address(self, host: int) -> str:
        """10.250.<subnet>.<host>: an address that exists only in these namespaces."""
        return f"10.250.{self.subnet}.{host}"

    @property
    def a_address(self) -> str:
        return self.address(1)

    @property
    def b_address(self) -> str:
        return self.address(2)

    def add_address(self, host: int, *, side: str = "a") -> str:
        """Give `a`'s (or `b`'s) veth one more address in the subnet; returns it."""
        ns, veth = (self.a, self.a_veth) if side == "a" else (self.b, self.b_veth)
        ns.ip("addr", "add", f"{self.address(host)}/24", "dev", veth)
        return self.address(host)

    def delete(self) -> None:
        """Stop the processes started in either namespace, then delete both (the veth pair
        goes with them)."""
        try:
            self.a.stop_processes()
            self.b.stop_processes()
        finally:
            try:
                self.a.delete()
            finally:
                self.b.delete()

    def __enter__(self) -> JoinedPair:
        return self

    def __exit__(self, *exc: object) -> None:
        self.delete()


def joined_pair(a_prefix: str = "akri-a", b_prefix: str = "akri-b", *,
                subnet: int | None = None) -> JoinedPair:
    """Two new namespaces joined by a veth pair: `a` at 10.250.<subnet>.1, `b` at .2, both with
    lo up and multicast routed over the veth. `subnet` is random (1..254) unless given."""
    tag = secrets.token_hex(4)
    a_veth, b_veth = f"v{tag}a", f"v{tag}b"  # 10 characters: interface names stop at 15
    made: list[NetworkNamespace] = []
    try:
        made.append(NetworkNamespace(a_prefix, tag=tag))
        made.append(NetworkNamespace(b_prefix, tag=tag))
        a, b = made
        pair = JoinedPair(a, b, a_veth, b_veth, random.randint(1, 254) if subnet is None else subnet)
        # created directly inside the namespaces: nothing appears in the caller's namespace
        _run(["ip", "link", "add", a_veth, "netns", a.name, "type", "veth",
              "peer", "name", b_veth, "netns", b.name])
        for ns, veth, address in ((a, a_veth, pair.a_address), (b, b_veth, pair.b_address)):
            ns.ip("addr", "add", f"{address}/24", "dev", veth)
            ns.link_up(veth)
            ns.link_up("lo")
            ns.route_multicast(veth)
    except BaseException:
        for ns in made:
            ns.delete()
        raise
    return pair
