"""parse_uevent: compiled vs pure twin, and both vs pyudev (libudev) on the same datagrams.

Groups (ratios are printed at the end of the run, see bench/conftest.py):

* ``uevent-parse-kernel`` / ``uevent-parse-libudev``: parse every captured fixture of that
  format once per call; bytes in memory, nothing else. Target: compiled >= 3x the twin.
* ``uevent-receive-libudev``: the captured udevd datagrams are sent on netlink group 2
  inside a private network namespace (untimed setup); the timed part receives them from
  the socket and turns each into a dict. pyudev's side is ``Monitor.poll()`` plus
  ``dict(device.properties)``: libudev parses the very same bytes. This is the fairest
  comparison: the same bytes, the same socket work, a dict at the end.
* ``uevent-receive-kernel``: real kernel add/remove uevents (veth pairs created and deleted
  in the namespace, untimed) received and parsed; pyudev uses a ``"kernel"`` monitor.
  libudev refuses kernel-group datagrams not sent by the kernel, so stored kernel
  messages cannot be replayed to it: live events are the only like-for-like option.
"""

from __future__ import annotations

import pytest
import pyudev
from conftest import rounds

from akri._fast import pure

try:
    from akri._fast import _uevent as compiled
except ImportError:
    compiled = None

GROUP_KERNEL, GROUP_UDEV = 1, 2
PARSERS = {"compiled": getattr(compiled, "parse_uevent", None), "pure": pure.parse_uevent}


def parser(impl: str):
    fn = PARSERS[impl]
    if fn is None:
        pytest.skip("akri._fast._uevent is not built (python setup.py build_ext --inplace)")
    return fn


@pytest.mark.parametrize("impl", ["compiled", "pure"])
@pytest.mark.parametrize("fmt", ["kernel", "libudev"])
def test_parse(benchmark, uevent_messages: dict[str, bytes], fmt: str, impl: str) -> None:
    parse = parser(impl)
    messages = [m for name, m in uevent_messages.items() if name.startswith(fmt + "-")]
    benchmark.group = f"uevent-parse-{fmt}"
    benchmark.extra_info["impl"] = impl
    benchmark.extra_info["messages_per_call"] = len(messages)

    def run() -> list[dict[str, str]]:
        return [parse(m) for m in messages]

    result = benchmark(run)
    assert [r["ACTION"] for r in result] == [pure.parse_uevent(m)["ACTION"] for m in messages]


def make_receiver(netns, impl: str, group: int):
    """A callable that receives one event from the namespace and returns its properties."""
    if impl == "pyudev":
        with netns.inside():
            source = "udev" if group == GROUP_UDEV else "kernel"
            monitor = pyudev.Monitor.from_netlink(pyudev.Context(), source)
        monitor.start()

        def receive() -> dict[str, str]:
            return dict(monitor.poll(timeout=5).properties)

        return receive, monitor
    parse = parser(impl)
    sock = netns.uevent_socket(group)
    sock.settimeout(5)  # like pyudev's poll(timeout): a poll() before each recv()

    def receive() -> dict[str, str]:
        return parse(sock.recv(1 << 16))

    return receive, sock


@pytest.mark.parametrize("impl", ["compiled", "pure", "pyudev"])
def test_receive_libudev(benchmark, netns, uevent_messages: dict[str, bytes], impl: str) -> None:
    messages = [m for name, m in uevent_messages.items() if name.startswith("libudev-")]
    receive, handle = make_receiver(netns, impl, GROUP_UDEV)
    sender = netns.uevent_socket(0)
    benchmark.group = "uevent-receive-libudev"
    benchmark.extra_info["impl"] = impl
    benchmark.extra_info["messages_per_call"] = len(messages)

    def send() -> None:
        for m in messages:
            sender.sendto(m, (0, GROUP_UDEV))

    def run() -> list[dict[str, str]]:
        return [receive() for _ in messages]

    try:
        result = benchmark.pedantic(run, setup=send, rounds=rounds(300, 10), warmup_rounds=1)
    finally:
        sender.close()
        if impl != "pyudev":
            handle.close()
    assert [r["DEVPATH"] for r in result] == [pure.parse_uevent(m)["DEVPATH"] for m in messages]


VETH_PAIRS = 4


@pytest.mark.parametrize("impl", ["compiled", "pure", "pyudev"])
def test_receive_kernel(benchmark, netns, impl: str) -> None:
    add = [f"link add akrib{i} type veth peer name akric{i}" for i in range(VETH_PAIRS)]
    delete = [f"link del akrib{i}" for i in range(VETH_PAIRS)]
    # count what one round produces (device + rx/tx queue objects, add and remove)
    counter = netns.uevent_socket(GROUP_KERNEL)
    counter.setblocking(False)
    netns.ip_batch(add + delete)
    per_round = 0
    while True:
        try:
            counter.recv(1 << 16)
        except BlockingIOError:
            break
        per_round += 1
    counter.close()
    assert per_round >= 4 * VETH_PAIRS, f"only {per_round} kernel uevents per round"

    receive, handle = make_receiver(netns, impl, GROUP_KERNEL)
    benchmark.group = "uevent-receive-kernel"
    benchmark.extra_info["impl"] = impl
    benchmark.extra_info["messages_per_call"] = per_round

    def run() -> list[dict[str, str]]:
        return [receive() for _ in range(per_round)]

    try:
        result = benchmark.pedantic(run, setup=lambda: netns.ip_batch(add + delete), rounds=rounds(25, 3))
    finally:
        if impl != "pyudev":
            handle.close()
    assert {r["ACTION"] for r in result} == {"add", "remove"}
