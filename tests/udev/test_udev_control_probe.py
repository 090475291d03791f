"""`udevd_running`: a listening control socket means udevd runs, even when its accept queue is
full (a busy udevd at boot); a socket file nobody listens on does not."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

from akri.discovery.handlers.udev.monitor import choose_source, udevd_running


def test_missing_control_socket_is_not_running(tmp_path: Path) -> None:
    assert udevd_running(str(tmp_path / "control")) is False


def test_stale_control_socket_is_not_running(tmp_path: Path) -> None:
    path = str(tmp_path / "control")
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        s.bind(path)  # bound, never listening, then closed: what a crashed udevd leaves behind
    assert udevd_running(path) is False
    assert choose_source("auto", control=path) == "kernel"


def test_listening_control_socket_is_running_even_with_a_full_accept_queue(tmp_path: Path) -> None:
    path = str(tmp_path / "control")
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET))
        server.bind(path)
        server.listen(0)
        assert udevd_running(path) is True
        # fill the accept queue (the probe above is still in it: nobody accepts), until a
        # non-blocking connect is refused with EAGAIN, so a blocking one would wait
        for _ in range(8):
            client = stack.enter_context(socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET))
            client.setblocking(False)
            try:
                client.connect(path)
            except BlockingIOError:
                break
        else:
            raise AssertionError("the accept queue never filled")
        assert udevd_running(path) is True
        assert choose_source("auto", control=path) == "udev"
