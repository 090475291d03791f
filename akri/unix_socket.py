"""Unix-socket chores shared by every gRPC server we run (registration, handlers, device plugins).

The sockets live in host directories shared with the kubelet and other pods, so they are
created with their final permissions (never world-writable, not even between bind and chmod)
and a leftover file is removed only when it really is a socket.
"""

from __future__ import annotations

import logging
import os
import socket
import stat
from pathlib import Path

log = logging.getLogger(__name__)


def socket_accepts(path: Path | str) -> bool:
    """True when a process is accepting connections on the unix socket at `path`."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def remove_stale_socket(path: Path, *, refuse_if_served: bool = False) -> None:
    """Remove a socket left behind by a previous process.

    Refuses (FileExistsError) to delete anything that is not a socket, and, with
    `refuse_if_served`, a socket some live process still serves (upstream deletes it anyway,
    silently cutting that process off).
    """
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise FileExistsError(f"{path} exists and is not a socket; refusing to replace it")
    if refuse_if_served and socket_accepts(path):
        raise FileExistsError(f"{path} is served by another running process; stop it first")
    log.info("removing stale socket %s", path)
    path.unlink()


def listen_unix(path: Path, mode: int, backlog: int = 128) -> socket.socket:
    """A non-blocking unix socket listening at `path` with permissions `mode`."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    bound = False
    try:
        # Linux creates the socket file with the socket inode's mode (minus the umask), so
        # fchmod before bind means the file never has more bits than `mode`, without touching
        # the process-wide umask (other threads, e.g. pyudev's or an executor's, create files too)
        os.fchmod(sock.fileno(), mode)
        sock.bind(str(path))
        bound = True
        os.chmod(path, mode)  # the umask may have taken bits away that `mode` wants
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        if bound:  # ours: do not leave a socket nobody serves
            path.unlink(missing_ok=True)
        raise
    return sock
