"""listen_unix: the socket file has exactly the requested permissions whatever the process umask,
and the process umask is left alone (threads create files too)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from akri.unix_socket import listen_unix, remove_stale_socket, socket_accepts


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
@pytest.mark.parametrize("mode", [0o600, 0o660])
def test_socket_has_exactly_the_mode_and_the_umask_is_untouched(sockdir: Path, umask: int, mode: int) -> None:
    old = os.umask(umask)
    try:
        sock = listen_unix(sockdir / "s.sock", mode)
        try:
            assert stat.S_IMODE(os.stat(sockdir / "s.sock").st_mode) == mode
            assert os.umask(umask) == umask  # still what the test set
            assert socket_accepts(sockdir / "s.sock")
        finally:
            sock.close()
    finally:
        os.umask(old)


def test_a_served_socket_is_not_removed_a_stale_one_is(sockdir: Path) -> None:
    path = sockdir / "s.sock"
    sock = listen_unix(path, 0o600)
    with pytest.raises(FileExistsError):
        remove_stale_socket(path, refuse_if_served=True)
    sock.close()
    remove_stale_socket(path, refuse_if_served=True)
    assert not path.exists()
