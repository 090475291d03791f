"""PathWatcher: a change to one file is seen, in inotify mode and in the polling fallback."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket

import pytest

from akri.discovery.filewatch import PathWatcher

WAIT = 10.0  # generous: only guards against hanging


def _bind_socket(path) -> None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.close()  # leaves the socket file behind, as a crashed agent would


async def _expect_change(watcher: PathWatcher, action) -> None:
    waiter = asyncio.create_task(watcher.changed())
    await asyncio.sleep(0)  # the watcher is waiting before the change happens
    action()
    await asyncio.wait_for(waiter, WAIT)


async def _expect_quiet(watcher: PathWatcher, seconds: float = 0.3) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(watcher.changed(), seconds)


@pytest.mark.parametrize("use_inotify", [True, False], ids=["inotify", "poll"])
async def test_create_write_replace_remove(tmp_path, use_inotify):
    target = tmp_path / "availability.txt"
    with PathWatcher(target, poll_interval=0.02, use_inotify=use_inotify) as watcher:
        assert watcher.mode == ("inotify" if use_inotify else "poll")
        await _expect_change(watcher, lambda: target.write_text("ONLINE"))
        await _expect_change(watcher, lambda: target.write_text("OFFLINE and more"))

        def replace() -> None:  # an editor's atomic save: a new file renamed over the old one
            (tmp_path / "tmp").write_text("ONLINE")
            os.replace(tmp_path / "tmp", target)

        await _expect_change(watcher, replace)
        await _expect_change(watcher, target.unlink)


@pytest.mark.parametrize("use_inotify", [True, False], ids=["inotify", "poll"])
async def test_recreated_socket_is_a_change(tmp_path, use_inotify):
    # a restarted agent removes its socket and binds a new one, possibly with the same inode
    sock = tmp_path / "agent-registration.sock"
    _bind_socket(sock)
    with PathWatcher(sock, poll_interval=0.02, use_inotify=use_inotify) as watcher:
        def recreate() -> None:
            sock.unlink()
            _bind_socket(sock)

        await _expect_change(watcher, recreate)


async def test_other_files_in_the_directory_are_ignored(tmp_path):
    target = tmp_path / "watched"
    with PathWatcher(target) as watcher:
        assert watcher.mode == "inotify"
        (tmp_path / "other").write_text("x")
        await _expect_quiet(watcher)
        await _expect_change(watcher, lambda: target.write_text("x"))


async def test_directory_removed_falls_back_to_polling_then_recovers(tmp_path):
    directory = tmp_path / "dir"
    directory.mkdir()
    target = directory / "file"
    with PathWatcher(target, poll_interval=0.02) as watcher:
        assert watcher.mode == "inotify"
        await _expect_change(watcher, lambda: shutil.rmtree(directory))
        assert watcher.mode == "poll"

        def recreate() -> None:
            directory.mkdir()
            target.write_text("back")

        await _expect_change(watcher, recreate)
        # the directory exists again, so events are used again
        await _expect_change(watcher, lambda: target.write_text("changed"))
        assert watcher.mode == "inotify"


async def test_missing_directory_polls(tmp_path):
    target = tmp_path / "not-yet" / "file"
    with PathWatcher(target, poll_interval=0.02) as watcher:
        assert watcher.mode == "poll"

        def create() -> None:
            target.parent.mkdir()
            target.write_text("x")

        await _expect_change(watcher, create)


class _ReaderDiesOnce(PathWatcher):
    """The first inotify reader fails as a read of a broken inotify fd would."""

    died = False

    async def _pump_events(self, ino, queue):
        if not self.died:
            self.died = True
            raise OSError(9, "Bad file descriptor")
        await super()._pump_events(ino, queue)


async def test_a_dead_inotify_reader_wakes_the_waiter_and_is_replaced(tmp_path, caplog):
    target = tmp_path / "watched"
    with _ReaderDiesOnce(target, poll_interval=0.02) as watcher:
        assert watcher.mode == "inotify"
        # before: the waiter slept forever on a queue nobody fills any more
        await asyncio.wait_for(watcher.changed(), WAIT)
        assert watcher.died
        assert watcher.mode == "poll"
        failure = [r for r in caplog.records if "inotify reader" in r.getMessage()]
        assert failure and failure[0].exc_info is not None  # logged with its traceback
        await _expect_change(watcher, lambda: target.write_text("x"))
        # the directory is still there, so polling started a fresh inotify watch
        await _expect_change(watcher, lambda: target.write_text("y"))
        assert watcher.mode == "inotify"
